/**
 * The `native-mux` wire format (docs/bot-protocols.md#native-mux), shared by the media node and the
 * bot SDK. Pure: no sockets, no timers, no imports beyond Node's Buffer, so a bot can copy this file.
 *
 * One WebSocket per (media node, bot URL) carries many calls ("streams"). The handshake offers the
 * subprotocol `botedge-mux.v1`; the bot must select it.
 *
 * Binary messages, both directions: zero or more records back to back, nothing else.
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +---------------------------------------------------------------+
 *    |                 stream id (uint32, little-endian)             |
 *    +---------------------------------------------------------------+
 *    |                 byte length N (uint32, little-endian)         |
 *    +---------------------------------------------------------------+
 *    |         N bytes of 16-bit signed little-endian mono PCM       |
 *    :                (N even; padded to nothing)                    :
 *    +---------------------------------------------------------------+
 *
 * The 8-byte header keeps every record's samples 2-byte aligned when the message is. Records of one
 * stream keep their order; records of different streams in one message are unordered.
 *
 * Text messages, both directions: one JSON object each, with `"stream": <id>` on every per-call
 * message (the `native` protocol's messages otherwise, field for field), and no `stream` on
 * connection-level ones (a node `error` about input it cannot attribute to a call).
 */

export const MUX_SUBPROTOCOL = 'botedge-mux.v1';
export const RECORD_HEADER_BYTES = 8;

/** Why the rest of a binary message was dropped. */
export interface RecordProblem {
  kind: 'truncated-header' | 'truncated-record';
  /** Byte offset of the record that did not fit. */
  offset: number;
  reason: string;
}

/**
 * Calls `visit(stream, start, length)` for every record of a binary message, in order: its stream
 * and where its bytes are in `msg`. A record that does not fit ends the walk: the records before it
 * were visited, the problem is returned. Never throws (except what `visit` throws). Records of
 * stream `skip` are stepped over (the edge's receive lane marks the frames it took that way).
 */
export function walkRecords(msg: Buffer, visit: (stream: number, start: number, length: number) => void, skip?: number): RecordProblem | undefined {
  let off = 0;
  while (off < msg.length) {
    if (msg.length - off < RECORD_HEADER_BYTES) {
      return { kind: 'truncated-header', offset: off, reason: `binary message ends ${msg.length - off} bytes into a record header (of ${RECORD_HEADER_BYTES}) at offset ${off}` };
    }
    const stream = msg.readUInt32LE(off);
    const len = msg.readUInt32LE(off + 4);
    const start = off + RECORD_HEADER_BYTES;
    if (len > msg.length - start) {
      return { kind: 'truncated-record', offset: off, reason: `record for stream ${stream} at offset ${off} claims ${len} bytes, ${msg.length - start} left` };
    }
    if (stream !== skip) visit(stream, start, len);
    off = start + len;
  }
  return undefined;
}

/**
 * `walkRecords` with each record's bytes as a view into `msg`, valid only during the call. Records
 * of stream `skip` get no view (most of a message the receive lane took: a view per record is most
 * of the walk's cost).
 */
export function readRecords(msg: Buffer, visit: (stream: number, bytes: Buffer) => void, skip?: number): RecordProblem | undefined {
  return walkRecords(msg, (stream, start, len) => visit(stream, msg.subarray(start, start + len)), skip);
}

/**
 * Builds one binary message from many records. By default each `take()` hands over a buffer that
 * is never written again (the socket may still hold it); the next record starts a new one, sized
 * from the last message, so the hot path allocates once per message, not once per frame.
 *
 * `reuse: true` keeps one buffer for every message: `take()` returns a view of it that is valid only
 * until the next `add()`. Only for a consumer that is done with it when its call returns — a
 * WebSocket *client* without compression: `ws` masks every client frame into a new buffer as it
 * sends (RFC 6455 §5.3); the edge's mux connection masks in place and writes at once, and calls
 * `renew()` when the socket kept the buffer. That saves one allocation of the whole batch per
 * message, which is garbage the edge's GC would otherwise chase (docs/benchmarks/capacity.md).
 *
 * `headroom`: bytes kept free in front of every message, so a sender can put its frame header there
 * and write header and message from one buffer (edge/bot/masked-frames.ts).
 */
export class RecordWriter {
  #buf: Buffer | undefined;
  #len = 0;
  #records = 0;
  #next: number;

  constructor(
    initialBytes = 16 * 1024,
    private readonly reuse = false,
    private readonly headroom = 0,
  ) {
    this.#next = initialBytes;
  }

  get records(): number {
    return this.#records;
  }

  get bytes(): number {
    return this.#len;
  }

  /** Appends one record; `pcm` may be samples or their bytes. */
  add(stream: number, pcm: Int16Array | Uint8Array): void {
    const n = pcm.byteLength;
    const room = this.headroom;
    const need = this.#len + RECORD_HEADER_BYTES + n;
    let buf = this.#buf;
    if (!buf || buf.length < room + need) {
      const grown = Buffer.allocUnsafe(room + Math.max(need, this.#next, buf ? (buf.length - room) * 2 : 0));
      if (buf) buf.copy(grown, room, room, room + this.#len);
      this.#buf = buf = grown;
    }
    const at = room + this.#len;
    buf.writeUInt32LE(stream >>> 0, at);
    buf.writeUInt32LE(n, at + 4);
    buf.set(pcm instanceof Uint8Array ? pcm : new Uint8Array(pcm.buffer, pcm.byteOffset, n), at + RECORD_HEADER_BYTES);
    this.#len = need;
    this.#records++;
  }

  /** The message so far, or undefined when empty; the writer starts afresh. */
  take(): Buffer | undefined {
    const buf = this.#buf;
    if (!buf || this.#len === 0) return undefined;
    const out = buf.subarray(this.headroom, this.headroom + this.#len);
    // Room for a little growth without a copy next time.
    this.#next = Math.max(1024, Math.ceil(this.#len * 1.25));
    if (!this.reuse) this.#buf = undefined;
    this.#len = 0;
    this.#records = 0;
    return out;
  }

  /** With `reuse`: the last message's buffer is still someone's (a socket kept it); start a new one. */
  renew(): void {
    this.#buf = undefined;
  }
}

/** Little-endian PCM bytes → samples: a view when aligned, else one copy of the whole samples. */
export function samplesOf(bytes: Buffer): Int16Array {
  if (bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
  return new Int16Array(new Uint8Array(bytes.subarray(0, bytes.length & ~1)).buffer);
}

/** Adds `"stream":id` in front of a JSON object's fields (the object's own text is kept as is). */
export function tagJson(stream: number, json: string): string {
  return json.length > 2 ? `{"stream":${stream},${json.slice(1)}` : `{"stream":${stream}}`;
}

/** The first text message of every stream, node → bot. */
export interface MuxStart {
  type: 'start';
  stream: number;
  callId: string;
  sipCallId: string;
  from: string;
  to: string;
  headers: Record<string, string>;
  format: { encoding: 'L16'; sampleRate: number; channels: 1; frameMs: number };
}

/** Events node → bot (besides `start`), as in the `native` protocol plus `stream`. */
export type MuxNodeEvent =
  | { type: 'dtmf'; stream: number; digit: string; durationMs: number }
  | { type: 'mark'; stream: number; name: string; cleared?: true }
  | { type: 'overflow'; stream: number; droppedMs: number; totalDroppedMs: number }
  | { type: 'backpressure'; stream: number; framesDropped: number; totalFramesDropped: number }
  | { type: 'transfer'; stream: number; target: string; status: 'accepted' | 'failed'; sipStatus?: number; reason?: string }
  | { type: 'error'; stream?: number; reason: string }
  | { type: 'stop'; stream: number; reason: string };

/** Commands bot → node, as in the `native` protocol plus `stream`. */
export type MuxBotCommand =
  | { type: 'mark'; stream: number; name: string }
  | { type: 'clear'; stream: number }
  | { type: 'hangup'; stream: number; reason?: string }
  | { type: 'transfer'; stream: number; target: string }
  | { type: 'sendDtmf'; stream: number; digits: string; durationMs?: number };
