import { FrameError } from './errors.js';

/**
 * Compact binary encoding for tdb payloads: varints, float64, length-prefixed UTF-8 and bytes, and
 * tagged SQLite values. Chosen over JSON because a replicated row is encoded once and decoded on
 * every replica: no per-row key names, no base64 for blobs, no number-to-text round trips.
 *
 * Value tags (one byte):
 *   0 NULL | 1 integer (zig-zag varint, |v| < 2^53) | 2 float64 | 3 text (varint len, UTF-8)
 *   4 blob (varint len, bytes) | 5 int64 beyond 2^53 (8 bytes, little-endian, two's complement)
 */

/** What a column holds, as JavaScript sees it. */
export type SqlValue = null | number | bigint | string | Uint8Array;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  constructor(initial = 256) {
    this.#buf = new Uint8Array(initial);
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#pos;
  }

  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.#reserve(1);
    this.#buf[this.#pos++] = v;
    return this;
  }

  /** Unsigned varint (LEB128) for 0 <= v < 2^53. */
  varint(v: number): this {
    this.#reserve(8);
    while (v >= 0x80) {
      this.#buf[this.#pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#buf[this.#pos++] = v;
    return this;
  }

  f64(v: number): this {
    this.#reserve(8);
    this.#view.setFloat64(this.#pos, v, true);
    this.#pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.varint(b.length);
    return this.raw(b);
  }

  raw(b: Uint8Array): this {
    this.#reserve(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }

  str(s: string): this {
    // Worst case 3 bytes per UTF-16 unit; encodeInto avoids an intermediate array.
    this.#reserve(s.length * 3 + 8);
    if (s.length < 0x80) {
      const start = this.#pos;
      this.#pos += 1;
      const { written } = textEncoder.encodeInto(s, this.#buf.subarray(this.#pos));
      if (written < 0x80) {
        this.#buf[start] = written;
        this.#pos += written;
        return this;
      }
      this.#pos = start;
    }
    return this.bytes(textEncoder.encode(s));
  }

  value(v: SqlValue): this {
    if (v === null || v === undefined) return this.u8(0);
    switch (typeof v) {
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
          this.u8(1);
          return this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
        }
        this.u8(2);
        return this.f64(v);
      case 'string':
        this.u8(3);
        return this.str(v);
      case 'bigint':
        if (v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n) return this.value(Number(v));
        this.u8(5);
        this.#reserve(8);
        this.#view.setBigInt64(this.#pos, BigInt.asIntN(64, v), true);
        this.#pos += 8;
        return this;
      default:
        if (v instanceof Uint8Array) {
          this.u8(4);
          return this.bytes(v);
        }
        throw new TypeError(`cannot encode a ${typeof v} as an SQL value`);
    }
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

export class ByteReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #pos: number;
  readonly #end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = start;
    this.#end = end;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#end) throw new FrameError('malformed', `truncated: need ${n} bytes`, this.#pos);
  }

  u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++] as number;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) break;
        return result;
      }
      mul *= 0x80;
    }
    throw new FrameError('malformed', 'varint too long', this.#pos);
  }

  f64(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.#pos, true);
    this.#pos += 8;
    return v;
  }

  /** A view into the buffer (not a copy). */
  raw(n: number): Uint8Array {
    this.#need(n);
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  bytes(): Uint8Array {
    return this.raw(this.varint());
  }

  str(): string {
    const at = this.#pos;
    const b = this.bytes();
    try {
      return textDecoder.decode(b);
    } catch (err) {
      throw new FrameError('malformed', 'invalid UTF-8', at, { cause: err });
    }
  }

  value(): SqlValue {
    const at = this.#pos;
    const tag = this.u8();
    switch (tag) {
      case 0:
        return null;
      case 1: {
        const z = this.varint();
        return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      }
      case 2:
        return this.f64();
      case 3:
        return this.str();
      case 4:
        return this.bytes().slice();
      case 5: {
        this.#need(8);
        const v = this.#view.getBigInt64(this.#pos, true);
        this.#pos += 8;
        return v;
      }
      default:
        throw new FrameError('malformed', `unknown value tag ${tag}`, at);
    }
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.#pos !== this.#end) throw new FrameError('malformed', `${this.#end - this.#pos} trailing bytes`, this.#pos);
  }
}

/**
 * A string key for a primary key's values, unique per (type, value): used as the map key of the
 * per-row version table. Text is length-prefixed so no separator can collide.
 */
export function pkKey(table: string, values: readonly SqlValue[]): string {
  let key = table;
  for (const v of values) {
    if (v === null || v === undefined) key += '\0n';
    else if (typeof v === 'number') key += '\0i' + v;
    else if (typeof v === 'string') key += '\0s' + v.length + ':' + v;
    else if (typeof v === 'bigint') key += '\0i' + v.toString();
    else key += '\0b' + Buffer.from(v).toString('base64');
  }
  return key;
}
