/**
 * Message framing on stream transports (RFC 3261 §18.3): a message ends after the blank line plus
 * Content-Length bytes, so Content-Length is mandatory. CRLFs between messages are keep-alives
 * (RFC 3261 §7.5, RFC 5626 §3.5.1) and are skipped.
 *
 * The framer only cuts; parseMessage() reads what it cuts. Once push() has thrown, the stream
 * cannot be resynchronised: every later push() throws the same error and the transport must
 * close the connection.
 */
import { SipParseError } from './errors.js';
import { headerKey } from './headers.js';
import { DEFAULT_MAX_HEADER_BYTES } from './message.js';
import { isUint, trimWs } from './uri.js';

export interface SipStreamFramerOptions {
  /** Largest header section accepted, in bytes. Default 65536. */
  maxHeaderBytes?: number;
  /** Largest Content-Length accepted, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

export class SipStreamFramer {
  #buf: Buffer = EMPTY;
  #failed: SipParseError | undefined;
  #maxHeaderBytes: number;
  #maxBodyBytes: number;
  /** Double-CRLF keep-alive pings seen (RFC 5626 §4.4.1: the transport answers each with CRLF). */
  pings = 0;

  constructor(opts?: SipStreamFramerOptions) {
    this.#maxHeaderBytes = opts?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.#maxBodyBytes = opts?.maxBodyBytes ?? 1024 * 1024;
  }

  /** Bytes held that do not yet form a complete message. */
  get buffered(): number {
    return this.#buf.length;
  }

  /** The error that broke the stream, once push() has met one. */
  get error(): SipParseError | undefined {
    return this.#failed;
  }

  /**
   * Feed bytes from the stream; returns the complete messages they finish (copies, owned by the
   * caller). Throws SipParseError when the stream cannot be framed; when the same chunk also
   * finished good messages before the bad one, those are returned first and the error is thrown
   * by the next push() (and is readable from {@link error} at once).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    const out: Uint8Array[] = [];
    try {
      this.#push(chunk, out);
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
      this.#failed = e;
      this.#buf = EMPTY;
      if (out.length === 0) throw e;
    }
    return out;
  }

  #push(chunk: Uint8Array, out: Uint8Array[]): void {
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // Copy on the first chunk too: the caller may reuse its buffer after push() returns.
    this.#buf = this.#buf.length === 0 ? Buffer.from(c) : Buffer.concat([this.#buf, c]);
    let buf = this.#buf;
    for (;;) {
      let s = 0;
      while (s + 1 < buf.length && buf[s] === 0x0d && buf[s + 1] === 0x0a) s += 2;
      if (s >= 4) this.pings += Math.floor(s / 4);
      buf = buf.subarray(s);
      if (buf.length === 0 || (buf.length === 1 && buf[0] === 0x0d)) break;
      const searchEnd = Math.min(buf.length, this.#maxHeaderBytes + 4);
      const end = buf.subarray(0, searchEnd).indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > this.#maxHeaderBytes) {
          throw new SipParseError('too-large', `header section over ${this.#maxHeaderBytes} bytes`, 0);
        }
        break;
      }
      const length = contentLength(buf.toString('latin1', 0, end + 2));
      if (length > this.#maxBodyBytes) {
        throw new SipParseError('too-large', `Content-Length ${length} over ${this.#maxBodyBytes} bytes`, 0);
      }
      const total = end + 4 + length;
      if (buf.length < total) break;
      out.push(Buffer.from(buf.subarray(0, total)));
      buf = buf.subarray(total);
      this.#buf = buf;
    }
    this.#buf = buf.length === 0 ? EMPTY : buf;
  }
}

/** The Content-Length of a header section (each line ending in CRLF); all values must agree. */
function contentLength(head: string): number {
  let found: string | undefined;
  let pos = head.indexOf('\r\n') + 2; // skip the start line
  while (pos < head.length) {
    const eol = head.indexOf('\r\n', pos);
    const line = head.slice(pos, eol);
    pos = eol + 2;
    const colon = line.indexOf(':');
    const c0 = line.charCodeAt(0);
    if (colon < 0 || c0 === 0x20 || c0 === 0x09) continue;
    if (headerKey(trimWs(line.slice(0, colon))) !== 'content-length') continue;
    let value = line.slice(colon + 1);
    // folded continuation lines belong to this value
    while (pos < head.length && (head.charCodeAt(pos) === 0x20 || head.charCodeAt(pos) === 0x09)) {
      const e = head.indexOf('\r\n', pos);
      value += ' ' + head.slice(pos, e);
      pos = e + 2;
    }
    value = trimWs(value);
    if (!isUint(value, 0xffffffff)) throw new SipParseError('content-length', 'Content-Length is not a number');
    if (found !== undefined && Number(found) !== Number(value)) {
      throw new SipParseError('content-length', 'conflicting Content-Length values');
    }
    found = value;
  }
  if (found === undefined) {
    throw new SipParseError('missing-header', 'Content-Length is mandatory on stream transports');
  }
  return Number(found);
}
