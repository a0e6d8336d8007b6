/**
 * ITU-T G.711 µ-law and A-law, as lookup tables.
 *
 * Decoding is one 256-entry Int16Array lookup per byte. Encoding is one lookup in a 65536-entry
 * Uint8Array indexed by `sample + 32768` (64 KiB per law, built once at module load): it costs less
 * than the segment search it replaces and is exact for every 16-bit input, where a 16384-entry table
 * indexed by `sample >> 2` would round small negative samples differently from the reference
 * algorithm.
 *
 * The batch functions write into caller-provided arrays and allocate nothing, so they can run per
 * 20 ms frame on the media hot path. They convert `src.length` samples; `dst` must be at least as long.
 */

/** µ-law bias (33 << 2) and clip level of the reference encoder (G.711 §3, Sun/CCITT g711.c). */
const ULAW_BIAS = 0x84;
const ULAW_CLIP = 32635;

/** Decodes one µ-law byte (G.711 Table 2a) to a linear 16-bit sample. */
function ulawDecodeOne(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
  return u & 0x80 ? -magnitude : magnitude;
}

/** Encodes one linear 16-bit sample to µ-law; the encoder the tables are built from. */
function ulawEncodeOne(sample: number): number {
  let s = sample;
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > ULAW_CLIP) s = ULAW_CLIP;
  s += ULAW_BIAS;
  // Exponent = position of the highest set bit above bit 7 (s is at most 0x7fff after the bias).
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decodes one A-law byte (G.711 Table 1a; even bits inverted on the wire) to a linear sample. */
function alawDecodeOne(code: number): number {
  const a = code ^ 0x55;
  const segment = (a & 0x70) >> 4;
  let t = (a & 0x0f) << 4;
  if (segment === 0) t += 8;
  else t = (t + 0x108) << (segment - 1);
  return a & 0x80 ? t : -t;
}

/** Segment end points of A-law over 13-bit magnitudes. */
const ALAW_SEGMENT_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff] as const;

/** Encodes one linear 16-bit sample to A-law. */
function alawEncodeOne(sample: number): number {
  let s = sample >> 3;
  let mask: number;
  if (s >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    s = -s - 1;
  }
  let segment = 0;
  while (segment < 8 && s > (ALAW_SEGMENT_END[segment] ?? 0)) segment++;
  if (segment >= 8) return 0x7f ^ mask;
  const aval = (segment << 4) | ((segment < 2 ? s >> 1 : s >> segment) & 0x0f);
  return aval ^ mask;
}

function buildDecodeTable(decodeOne: (code: number) => number): Int16Array {
  const table = new Int16Array(256);
  for (let code = 0; code < 256; code++) table[code] = decodeOne(code);
  return table;
}

function buildEncodeTable(encodeOne: (sample: number) => number): Uint8Array {
  const table = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) table[i] = encodeOne(i - 32768);
  return table;
}

/** µ-law byte → linear sample. */
export const ULAW_DECODE_TABLE: Int16Array = buildDecodeTable(ulawDecodeOne);
/** A-law byte → linear sample. */
export const ALAW_DECODE_TABLE: Int16Array = buildDecodeTable(alawDecodeOne);
/** Linear sample + 32768 → µ-law byte. */
export const ULAW_ENCODE_TABLE: Uint8Array = buildEncodeTable(ulawEncodeOne);
/** Linear sample + 32768 → A-law byte. */
export const ALAW_ENCODE_TABLE: Uint8Array = buildEncodeTable(alawEncodeOne);

function checkLengths(srcLength: number, dstLength: number): void {
  if (dstLength < srcLength) {
    throw new RangeError(`G.711: destination holds ${dstLength} samples, source has ${srcLength}`);
  }
}

/** µ-law bytes → linear samples; writes `src.length` samples into `dst`. */
export function ulawDecode(src: Uint8Array, dst: Int16Array): void {
  checkLengths(src.length, dst.length);
  const table = ULAW_DECODE_TABLE;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
}

/** Linear samples → µ-law bytes; writes `src.length` bytes into `dst`. */
export function ulawEncode(src: Int16Array, dst: Uint8Array): void {
  checkLengths(src.length, dst.length);
  const table = ULAW_ENCODE_TABLE;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]! + 32768]!;
}

/** A-law bytes → linear samples; writes `src.length` samples into `dst`. */
export function alawDecode(src: Uint8Array, dst: Int16Array): void {
  checkLengths(src.length, dst.length);
  const table = ALAW_DECODE_TABLE;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
}

/** Linear samples → A-law bytes; writes `src.length` bytes into `dst`. */
export function alawEncode(src: Int16Array, dst: Uint8Array): void {
  checkLengths(src.length, dst.length);
  const table = ALAW_ENCODE_TABLE;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]! + 32768]!;
}

/** The batch G.711 functions, implemented natively (codecs/native.ts) or by this module. */
export interface G711Impl {
  ulawDecode(src: Uint8Array, dst: Int16Array): void;
  ulawEncode(src: Int16Array, dst: Uint8Array): void;
  alawDecode(src: Uint8Array, dst: Int16Array): void;
  alawEncode(src: Int16Array, dst: Uint8Array): void;
}

/** The pure TypeScript implementation. */
export const jsG711: G711Impl = Object.freeze({ ulawDecode, ulawEncode, alawDecode, alawEncode });
