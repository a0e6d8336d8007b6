import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';

/**
 * A client's binary WebSocket messages written straight to the socket, masked in place
 * (RFC 6455 §5.2–5.3), for the `native-mux` connection's batches (decision 0022).
 *
 * Why not `ws.send`: a client must mask what it sends, and `ws` never masks a caller's Buffer in
 * place — it allocates header + payload and masks into that. For a mux batch (≈ 90 kB at 1,000
 * calls, a few hundred a second) that is a copy and an external allocation of the whole batch per
 * message, which is most of what drives the node's scavenges. Here the batch is built with
 * `MASKED_HEADROOM` free bytes in front of it, the header goes there, the payload is masked where
 * it lies, and the frame leaves in one `write`.
 *
 * Interleaving with `ws`'s own writes (text messages, pings, pongs, the close) is safe: both write
 * whole frames through the same stream, synchronously, on this thread — `ws`'s sender queues
 * nothing of its own without compression, which the mux connection never negotiates.
 */

/** Bytes a payload must have free in front of it: the longest client header (2 + 8 + 4 key). */
export const MASKED_HEADROOM = 16;

/** What the frame sender needs of the socket (a net.Socket or tls.TLSSocket). */
export interface FrameSocket {
  write(chunk: Uint8Array): boolean;
  readonly writableLength: number;
}

type MaskFn = (source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number) => void;

/** `bufferutil`'s masking (the native module `ws` itself uses), or a plain loop when it is not built. */
function loadMask(): { mask: MaskFn; native: boolean } {
  if (process.env['WS_NO_BUFFER_UTIL'] === undefined) {
    try {
      const bu = createRequire(import.meta.url)('bufferutil') as { mask: MaskFn };
      return { mask: bu.mask, native: true };
    } catch {
      // Not built (an install without a compiler): the loop below is correct, only slower.
    }
  }
  return { mask: maskLoop, native: false };
}

/** XORs `length` bytes of `source` with the repeating 4-byte key into `output` from `offset`. */
export function maskLoop(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void {
  for (let i = 0; i < length; i++) output[offset + i] = source[i]! ^ mask[i & 3]!;
}

const masking = loadMask();

/** Masks a payload where it lies — or unmasks a received one: XOR is its own inverse. */
export function maskInPlace(payload: Uint8Array, key: Uint8Array): void {
  masking.mask(payload, key, payload, 0, payload.length);
}

/** Whether masking runs in `bufferutil`'s native code (for tests). */
export const nativeMasking = masking.native;

/** Fresh keys, 1,024 at a time from the CSPRNG (one call per thousand frames, as `ws` does). */
const KEY_POOL = Buffer.alloc(4096);
let keyAt = KEY_POOL.length;

function nextKey(): Buffer {
  if (keyAt === KEY_POOL.length) {
    randomFillSync(KEY_POOL);
    keyAt = 0;
  }
  const key = KEY_POOL.subarray(keyAt, keyAt + 4);
  keyAt += 4;
  return key;
}

/**
 * Writes a frame's header (RFC 6455 §5.2) at the start of `out`: `first` (FIN, opcode), then the
 * length in 1, 3 or 9 bytes with the mask bit when `masked` (the key, 4 bytes more, is the
 * caller's). Returns the bytes written: 2, 4 or 10. Lengths are below 2^32 (the upper half of a
 * 64-bit length is written as zeros).
 */
export function writeFrameHeader(out: Uint8Array, first: number, len: number, masked: boolean): number {
  const m = masked ? 0x80 : 0;
  out[0] = first;
  if (len < 126) {
    out[1] = m | len;
    return 2;
  }
  if (len < 65536) {
    out[1] = m | 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
    return 4;
  }
  out[1] = m | 127;
  out[2] = out[3] = out[4] = out[5] = 0;
  out[6] = len >>> 24;
  out[7] = (len >>> 16) & 0xff;
  out[8] = (len >>> 8) & 0xff;
  out[9] = len & 0xff;
  return 10;
}

/**
 * Writes `payload` as one masked binary message (FIN, opcode 2) on `socket`. The `MASKED_HEADROOM`
 * bytes before `payload` in its ArrayBuffer are overwritten with the header, and `payload` itself
 * is masked: neither may be read again. Returns true when the socket kept the buffer (its write
 * did not complete at once: the kernel's buffer was full, or earlier writes were waiting), so the
 * caller must build its next message in another.
 */
export function writeMaskedBinary(socket: FrameSocket, payload: Uint8Array): boolean {
  const len = payload.byteLength;
  const head = len < 126 ? 6 : len < 65536 ? 8 : 14;
  if (payload.byteOffset < head) throw new RangeError(`a masked frame needs ${head} free bytes before its payload, not ${payload.byteOffset}`);
  const frame = new Uint8Array(payload.buffer, payload.byteOffset - head, head + len);
  writeFrameHeader(frame, 0x82, len, true);
  const key = nextKey();
  frame.set(key, head - 4);
  if (len > 0) maskInPlace(payload, key);
  socket.write(frame);
  return socket.writableLength > 0;
}
