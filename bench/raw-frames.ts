import type { Socket } from 'node:net';
import { maskInPlace, writeFrameHeader } from '../edge/bot/masked-frames.js';

/**
 * The bench echo bot's per-call connections, read and written on their socket once `ws` has done
 * the handshake (`--bot-io raw`, the default; decision 0024).
 *
 * Why: at 500 per-call calls the echo bot is three quarters of the harness's core, and a quarter of
 * a core of that is `ws`'s own stream machinery (its Receiver is a Writable fed each chunk; its
 * Sender corks, writes header and payload, uncorks into a `writev`) on 25,000 frames a second. The
 * harness shares one core, so that cost lands in the latency the bench measures end to end. Here a
 * frame is parsed where it lies in the chunk the socket read, unmasked in place, and the echo goes
 * back in one `write` with its server header laid over the 4 bytes of the client's mask key, which
 * sit right in front of the payload: no copy, no allocation.
 *
 * It reads what the node's per-call protocols send (RFC 6455 §5): masked, unfragmented text and
 * binary messages, ping, pong, close. Anything else closes the connection with 1002 and a reason,
 * logged once. The node under test still speaks to it through `ws` (or its native writer): only
 * the bot's side is bare.
 */

export interface RawFrameHandler {
  /** A text message (the protocol's JSON: start, stop, mark, dtmf). */
  text(payload: Buffer): void;
  /**
   * A binary message, unmasked in place. `sendBinary(payload)` while this runs (or later, if the
   * payload is kept) writes it back without a copy.
   */
  binary(payload: Buffer): void;
}

const FIN = 0x80;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
/** Larger messages are refused (1009): the node sends a 20 ms frame at a time, 1,920 bytes at most. */
export const MAX_RAW_PAYLOAD = 1 << 20;

/** Why a connection was closed by this reader (tests; the log line carries the same). */
export class RawFrameError extends Error {
  constructor(
    readonly code: 1002 | 1009,
    message: string,
  ) {
    super(message);
    this.name = 'RawFrameError';
  }
}

let loggedOnce = false;
const KEY = Buffer.alloc(4);

export class RawFrameConnection {
  #parts: Buffer[] = [];
  #partsLength = 0;
  /** The bytes the split frame needs before it can be parsed (as far as its header has told). */
  #need = 0;
  #closed = false;
  /** What closed it, when this reader did. */
  error: RawFrameError | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly handler: RawFrameHandler,
  ) {}

  /**
   * Takes a `ws` server-side socket over from `ws` (call it inside the `connection` listener, before
   * any data event: `ws` has put any bytes that came with the upgrade back into the stream). `ws`
   * keeps its close and error listeners, so the WebSocket still emits `close` when the socket does.
   */
  static takeOver(socket: Socket, handler: RawFrameHandler): RawFrameConnection {
    socket.removeAllListeners('data');
    const conn = new RawFrameConnection(socket, handler);
    socket.on('data', (chunk: Buffer) => conn.feed(chunk));
    return conn;
  }

  /** Parses every whole frame in `chunk` (with what was left over from the last one). */
  feed(chunk: Buffer): void {
    let data = chunk;
    if (this.#partsLength > 0) {
      // A frame split across reads: gathered until it is all there, then joined once.
      this.#parts.push(chunk);
      this.#partsLength += chunk.length;
      if (this.#partsLength < this.#need) return;
      data = Buffer.concat(this.#parts, this.#partsLength);
      this.#parts = [];
      this.#partsLength = 0;
    }
    let at = 0;
    while (!this.#closed && at < data.length) {
      const used = this.#frame(data, at);
      if (used === 0) {
        // Kept as a copy: a view would pin the whole chunk while the rest of the frame is awaited.
        if (!this.#closed) {
          this.#parts = [Buffer.from(data.subarray(at))];
          this.#partsLength = data.length - at;
        }
        return;
      }
      at += used;
    }
  }

  /**
   * Writes a binary message. A payload handed out by `binary` has at least 4 free bytes in front of
   * it (the client's mask key); a header that fits there goes there and the frame leaves in one
   * write. Otherwise the header is written on its own, corked with the payload.
   */
  sendBinary(payload: Buffer): void {
    if (this.#closed) return;
    const len = payload.length;
    const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
    if (hdr <= 4 && payload === this.#handedOut) {
      const frame = Buffer.from(payload.buffer, payload.byteOffset - hdr, hdr + len);
      writeFrameHeader(frame, FIN | OP_BINARY, len, false);
      this.socket.write(frame);
      return;
    }
    const head = Buffer.allocUnsafe(hdr);
    writeFrameHeader(head, FIN | OP_BINARY, len, false);
    this.socket.cork();
    this.socket.write(head);
    this.socket.write(payload);
    this.socket.uncork();
  }

  /**
   * The payload `binary` was last given, which has its spent mask key in front of it (one, not a
   * set of them: a WeakSet holding 25,000 new entries a second cost more than the rest of a frame's
   * parse). A payload echoed later than the next message goes the corked way.
   */
  #handedOut: Buffer | undefined;

  /** Parses one frame at `at`; returns the bytes it took, or 0 when it is not all there yet. */
  #frame(data: Buffer, at: number): number {
    const left = data.length - at;
    if (left < 2) return this.#short(2);
    const b0 = data[at]!;
    const b1 = data[at + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    if ((b1 & 0x80) === 0) return this.#fail(1002, 'an unmasked frame from the client');
    if (!fin || op === 0) return this.#fail(1002, 'a fragmented message (the bench bot reads whole ones)');
    let len = b1 & 0x7f;
    let hdr = 2;
    if (len === 126) {
      if (left < 4) return this.#short(4);
      len = data.readUInt16BE(at + 2);
      hdr = 4;
    } else if (len === 127) {
      if (left < 10) return this.#short(10);
      const big = data.readBigUInt64BE(at + 2);
      if (big > BigInt(MAX_RAW_PAYLOAD)) return this.#fail(1009, `a ${big}-byte message`);
      len = Number(big);
      hdr = 10;
    }
    if (len > MAX_RAW_PAYLOAD) return this.#fail(1009, `a ${len}-byte message`);
    if (left < hdr + 4 + len) return this.#short(hdr + 4 + len);
    // The key copied out, not viewed: one Buffer object fewer per frame.
    const k = at + hdr;
    KEY[0] = data[k]!;
    KEY[1] = data[k + 1]!;
    KEY[2] = data[k + 2]!;
    KEY[3] = data[k + 3]!;
    const start = k + 4;
    const payload = data.subarray(start, start + len);
    if (len > 0) maskInPlace(payload, KEY);
    switch (op) {
      case OP_BINARY:
        this.#handedOut = payload;
        this.handler.binary(payload);
        break;
      case OP_TEXT:
        this.handler.text(payload);
        break;
      case OP_PING:
        this.#control(OP_PONG, payload);
        break;
      case OP_PONG:
        break;
      case OP_CLOSE:
        // Answer with the peer's status code (RFC 6455 §5.5.1) and end our side.
        this.#control(OP_CLOSE, payload.subarray(0, Math.min(2, payload.length)));
        this.#closed = true;
        this.socket.end();
        break;
      default:
        return this.#fail(1002, `opcode ${op}`);
    }
    return hdr + 4 + len;
  }

  /** Notes how many bytes the frame being read needs; 0 (nothing parsed). */
  #short(need: number): number {
    this.#need = need;
    return 0;
  }

  #control(op: number, payload: Buffer): void {
    // Control payloads are at most 125 bytes (RFC 6455 §5.5): a 2-byte header.
    const frame = Buffer.allocUnsafe(2 + payload.length);
    writeFrameHeader(frame, FIN | op, payload.length, false);
    payload.copy(frame, 2);
    this.socket.write(frame);
  }

  /** Closes with `code` and a reason (logged for the first connection only: one cause, many calls). */
  #fail(code: 1002 | 1009, what: string): number {
    this.error = new RawFrameError(code, `bench echo bot: closing a connection: ${what}`);
    if (!loggedOnce) {
      loggedOnce = true;
      process.stderr.write(`${this.error.message}\n`);
    }
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    this.#control(OP_CLOSE, body);
    this.#closed = true;
    this.socket.end();
    return 0;
  }
}
