/**
 * The benchmark's marked audio frame: 20 ms of µ-law (160 bytes) that carries, in its first 36
 * samples, who sent it and when — and still reads back after the media node decodes it to PCM, the
 * bot echoes the PCM, and the node encodes it to µ-law again.
 *
 * Why this survives the trip: G.711 µ-law decode → encode returns the same code for every code but
 * 0x7F (−0 and +0 both decode to 0 and encode as 0xFF). The marker is written only with codes that
 * round-trip (checked at load against the real codec tables), four bits per sample. The rest of the
 * frame is a quiet 400 Hz tone, so the audio is real audio, not silence the edge could shortcut.
 *
 *   sample  0..3    magic (4 fixed codes)
 *   sample  4..11   call tag        u32, 8 nibbles, most significant first
 *   sample 12..19   frame sequence  u32
 *   sample 20..27   caller send time, µs on the shared monotonic clock, mod 2^32
 *   sample 28..35   bot send time (0 from the caller; the instrumented bot stamps it on the way back)
 *   sample 36..159  tone
 *
 * Pure: no I/O. The caller side works on µ-law bytes, the bot side on little-endian PCM bytes.
 */
import { ULAW_DECODE_TABLE, ULAW_ENCODE_TABLE } from '../codecs/g711.js';

export const FRAME_SAMPLES = 160;
export const MARK_SAMPLES = 36;
const MAGIC_AT = 0;
const TAG_AT = 4;
const SEQ_AT = 12;
const CALLER_TS_AT = 20;
const BOT_TS_AT = 28;

function roundTrips(code: number): boolean {
  const pcm = ULAW_DECODE_TABLE[code]!;
  return ULAW_ENCODE_TABLE[pcm + 32768] === code;
}

/** Sixteen round-tripping µ-law codes, one per nibble value; loud, so never mistaken for the tone. */
const NIBBLE_CODE = new Uint8Array(16);
/** µ-law code → nibble value, or 255 when the code is not a nibble code. */
const CODE_NIBBLE = new Uint8Array(256).fill(255);
const MAGIC = new Uint8Array(4);
{
  // Codes 0x80..0x9F are the loudest positive samples; take every other one.
  let n = 0;
  for (let code = 0x80; code < 0xa0 && n < 16; code += 2) {
    if (!roundTrips(code)) continue;
    NIBBLE_CODE[n] = code;
    CODE_NIBBLE[code] = n;
    n++;
  }
  if (n < 16) throw new Error('frame: not enough round-tripping µ-law codes for the marker');
  // Magic: loud negative codes, also round-tripping, distinct from the nibble codes.
  const magic = [0x05, 0x13, 0x0b, 0x1d];
  for (let i = 0; i < 4; i++) {
    const code = magic[i]!;
    if (!roundTrips(code)) throw new Error(`frame: magic code ${code} does not round-trip`);
    MAGIC[i] = code;
  }
}

/** The tone that fills the rest of every frame, as µ-law (400 Hz, −20 dBFS, phase-continuous over 20 ms). */
const TONE = new Uint8Array(FRAME_SAMPLES);
for (let i = 0; i < FRAME_SAMPLES; i++) {
  const v = Math.round(3277 * Math.sin((2 * Math.PI * 400 * i) / 8000));
  TONE[i] = ULAW_ENCODE_TABLE[v + 32768]!;
}

export interface FrameMark {
  tag: number;
  seq: number;
  /** Caller send time, µs mod 2^32. */
  callerUs: number;
  /** Bot send time, µs mod 2^32 (0 when not stamped). */
  botUs: number;
}

function writeU32(out: Uint8Array, at: number, value: number): void {
  const v = value >>> 0;
  for (let i = 0; i < 8; i++) out[at + i] = NIBBLE_CODE[(v >>> (28 - 4 * i)) & 0xf]!;
}

function readU32(codeAt: (i: number) => number, at: number): number {
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const n = CODE_NIBBLE[codeAt(at + i)]!;
    if (n === 255) return -1;
    v = ((v << 4) | n) >>> 0;
  }
  return v;
}

/** Writes a whole caller frame (marker + tone) into `out` (160 µ-law bytes). */
export function writeCallerFrame(out: Uint8Array, tag: number, seq: number, callerUs: number): void {
  out.set(TONE, 0);
  out.set(MAGIC, MAGIC_AT);
  writeU32(out, TAG_AT, tag);
  writeU32(out, SEQ_AT, seq);
  writeU32(out, CALLER_TS_AT, callerUs);
  writeU32(out, BOT_TS_AT, 0);
}

/** Reads the marker of a µ-law frame; undefined when it carries none (silence, foreign audio). */
export function readUlawFrame(payload: Uint8Array, into: FrameMark): FrameMark | undefined {
  if (payload.length < MARK_SAMPLES) return undefined;
  for (let i = 0; i < 4; i++) if (payload[MAGIC_AT + i] !== MAGIC[i]) return undefined;
  const at = (i: number) => payload[i]!;
  const tag = readU32(at, TAG_AT);
  const seq = readU32(at, SEQ_AT);
  const callerUs = readU32(at, CALLER_TS_AT);
  const botUs = readU32(at, BOT_TS_AT);
  if (tag < 0 || seq < 0 || callerUs < 0 || botUs < 0) return undefined;
  into.tag = tag;
  into.seq = seq;
  into.callerUs = callerUs;
  into.botUs = botUs;
  return into;
}

function pcmCode(pcm: Uint8Array, sample: number): number {
  const lo = pcm[2 * sample]!;
  const hi = pcm[2 * sample + 1]!;
  const v = ((hi << 8) | lo) << 16 >> 16;
  return ULAW_ENCODE_TABLE[v + 32768]!;
}

/** Reads the marker of a PCM frame (little-endian 16-bit), as the bot receives it. */
export function readPcmFrame(pcm: Uint8Array, into: FrameMark): FrameMark | undefined {
  if (pcm.length < MARK_SAMPLES * 2) return undefined;
  for (let i = 0; i < 4; i++) if (pcmCode(pcm, MAGIC_AT + i) !== MAGIC[i]) return undefined;
  const at = (i: number) => pcmCode(pcm, i);
  const tag = readU32(at, TAG_AT);
  const seq = readU32(at, SEQ_AT);
  const callerUs = readU32(at, CALLER_TS_AT);
  if (tag < 0 || seq < 0 || callerUs < 0) return undefined;
  into.tag = tag;
  into.seq = seq;
  into.callerUs = callerUs;
  into.botUs = 0;
  return into;
}

/** Stamps the bot send time into a PCM frame in place (the bot does this as it echoes). */
export function stampBotTime(pcm: Uint8Array, botUs: number): void {
  const v = botUs >>> 0;
  for (let i = 0; i < 8; i++) {
    const s = ULAW_DECODE_TABLE[NIBBLE_CODE[(v >>> (28 - 4 * i)) & 0xf]!]!;
    const at = 2 * (BOT_TS_AT + i);
    pcm[at] = s & 0xff;
    pcm[at + 1] = (s >> 8) & 0xff;
  }
}

/** Difference a − b of two µs stamps taken mod 2^32, as a signed number of µs. */
export function usDiff(a: number, b: number): number {
  return ((a - b) | 0);
}
