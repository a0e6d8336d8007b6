/**
 * The benchmark's frame marker for a bot that speaks 16 kHz PCM (`--bot-rate 16000`): tone-coded
 * bits that survive the media node's resampling (codecs/resample.ts, 8 → 16 kHz toward the bot and
 * 16 → 8 kHz back) and G.711 µ-law, where bench/frame.ts's byte marker does not (its exact µ-law
 * codes are smeared by the low-pass FIR).
 *
 * Why tones: the resampler is a linear-phase FIR that passes 0–3.4 kHz at unit gain and delays
 * everything by 12 samples at 8 kHz, and µ-law adds noise ≈ 38 dB below the signal. A sum of tones
 * inside the pass band comes out as the same tones, delayed. Presence or absence of each tone is one
 * bit, read by its amplitude, which neither the delay nor the phase shift changes.
 *
 * Frame (20 ms; 160 samples at 8 kHz from the caller, 320 at 16 kHz from the bot):
 *
 *   48 tones at k × 62.5 Hz, k = 6..53 (375 – 3312.5 Hz), each 600 peak or absent
 *     tone 14 (1250 Hz)   pilot, always present: the amplitude every other tone is judged against
 *     the other 47        bits 0..11 call tag, 12..19 frame sequence, 20..43 send time
 *                         (µs mod 2^24), 44..46 check (number of 1 bits in 0..43, inverted, mod 8)
 *
 * Reading: only the part of the frame the FIR computed from this frame's own samples carries the
 * marker cleanly — its first 24 samples at 8 kHz (48 at 16 kHz) still mix in the previous frame. The
 * reader takes 128 samples at 8 kHz from inside the clean part (16 ms: samples 28..155; at 16 kHz
 * every other sample of 56..310) and takes each tone's bin of one 128-point DFT of them. 62.5 Hz is the bin
 * spacing of 128 samples at 8 kHz, so every tone has a whole number of cycles in the window and the
 * tones are exactly orthogonal wherever the window starts. Taking every other 16 kHz sample is a
 * valid 8 kHz sampling here: the upsampler left nothing above 4 kHz but its ≥ 50 dB-down images,
 * and those fold back onto the tone they came from.
 *
 * A frame is marked only when: the pilot is within a factor 2 of its nominal amplitude; every
 * other tone is clearly on (≥ 0.7 × pilot, ≤ 1.4 ×) or clearly off (≤ 0.3 ×); the tones hold at
 * least 95 % of the window's energy (speech, a 400 Hz tone or noise spreads energy between the
 * bins); and the check bits match. Silence, the SIPp recording and the 8 kHz path's tone fail the
 * first or third test by a wide margin (test/unit/bench/tone-mark.test.ts).
 *
 * Send times are 24 bits (16.7 s at 1 µs); the reader turns them back into 32-bit stamps on the
 * shared clock (bench/clock.ts) with its own reading of that clock: fine while a frame is younger than
 * ±8 s. The caller keeps its own send time of each sequence number, so the bot's frame need not carry it.
 *
 * Pure: no I/O, no timers. Module-level scratch buffers: not re-entrant, like the rest of a
 * single-threaded bench process.
 */
import { ULAW_DECODE_TABLE, ULAW_ENCODE_TABLE } from '../codecs/g711.js';

export type ToneRate = 8000 | 16000;

/** What one marked frame carries. */
export interface ToneMark {
  /** Call tag, 12 bits (the caller's tag mod 4096). */
  tag: number;
  /** Frame sequence, 8 bits. */
  seq: number;
  /** Send time, µs mod 2^24 on the shared clock. */
  us24: number;
}

export const TAG_BITS = 12;
export const SEQ_BITS = 8;
export const US_BITS = 24;
const CHECK_BITS = 3;
const DATA_BITS = TAG_BITS + SEQ_BITS + US_BITS;
const BITS = DATA_BITS + CHECK_BITS;

const STEP_HZ = 62.5;
const FIRST_K = 6;
const TONES = BITS + 1;
const PILOT = 14;
/** Peak of one tone. 48 tones all on sum to at most 28 800: no pattern can clip, before or after the FIR (ripple ≪ 1 %). */
export const TONE_AMPLITUDE = 600;

/** Reading window: 128 samples at 8 kHz (16 ms), so 62.5 Hz is one bin. */
const N = 128;
/** First window sample at 8 kHz: past the FIR's 24-sample reach into the previous frame, with 4 to spare. */
const WINDOW_AT_8K = 28;

const PILOT_MIN = 0.5 * TONE_AMPLITUDE;
const PILOT_MAX = 2 * TONE_AMPLITUDE;
const ON_MIN = 0.7;
const ON_MAX = 1.4;
const OFF_MAX = 0.3;
const MIN_TONE_ENERGY = 0.95;

/** Tone index (0..47) of each bit, the pilot skipped. */
const BIT_TONE = new Uint8Array(BITS);
for (let b = 0, t = 0; b < BITS; t++) if (t !== PILOT) BIT_TONE[b++] = t;

const FREQ = Float64Array.from({ length: TONES }, (_, t) => (FIRST_K + t) * STEP_HZ);
/** Newman phases: keep a sum of many tones from peaking where they line up (less µ-law noise). */
const PHASE = Float64Array.from({ length: TONES }, (_, t) => (Math.PI * t * t) / TONES);

/**
 * Writing a frame is the bench's per-frame cost in the generator and the bot (10 000 marked frames/s
 * each at 1,000 calls, on the core the SUT is kept off), so the sums are precomputed. The 12 tag
 * bits and the pilot are the same in every frame of a call: summed once per tag (from three tables
 * of 4-bit groups) and cached. The other 35 bits (sequence, send time, check) come in 8-bit groups,
 * one table per group holding the frame for each of its 256 values, so a frame is the tag's base
 * plus 5 table adds (with 4-bit groups it was 9: the bot's 16 kHz writer was its largest cost).
 * The tables are Int16: each is rounded once and fits (a group's 8 tones peak at 4,800), so a frame
 * is off by at most 6 of 32,768 — far below µ-law's own step and the reader's thresholds — and
 * needs no rounding or float conversion per sample; the sum of all 48 tones cannot pass ±28,800.
 */
const TAG_GROUP_BITS = 4;
const TAG_GROUPS = TAG_BITS / TAG_GROUP_BITS;
const GROUP_BITS = 8;
/** Groups of the bits after the tag: 12..19, 20..27, 28..35, 36..43, 44..46. */
const GROUPS = Math.ceil((BITS - TAG_BITS) / GROUP_BITS);

/** The frame holding the tones of `bits` (bit indices, each on), the pilot too when `pilot`. */
function sumOf(tones: Float64Array[], samples: number, bits: number[], pilot: boolean): Float64Array {
  const sum = new Float64Array(samples);
  if (pilot) sum.set(tones[PILOT]!);
  for (const b of bits) {
    const t = tones[BIT_TONE[b]!]!;
    for (let i = 0; i < samples; i++) sum[i]! += t[i]!;
  }
  return sum;
}

/** Bit indices of `value`'s 1 bits, counted from `first`, within the mark's bits. */
function bitsOf(value: number, first: number, width: number): number[] {
  const bits: number[] = [];
  for (let j = 0; j < width; j++) if (((value >> j) & 1) !== 0 && first + j < BITS) bits.push(first + j);
  return bits;
}

/** One frame writer per rate: its group tables and, per call tag, the pilot + tag groups summed. */
interface Writer {
  readonly samples: number;
  /** [tag group][4-bit value]: the pilot folded into group 0. */
  readonly tagTables: Float64Array[][];
  /** [group][8-bit value]. */
  readonly tables: Int16Array[][];
  readonly bases: Map<number, Int32Array>;
}

function writerOf(rate: ToneRate): Writer {
  const samples = rate / 50;
  const tones = Array.from({ length: TONES }, (_, t) =>
    Float64Array.from({ length: samples }, (_, i) => TONE_AMPLITUDE * Math.sin((2 * Math.PI * FREQ[t]! * i) / rate + PHASE[t]!)),
  );
  const tagTables = Array.from({ length: TAG_GROUPS }, (_, g) =>
    Array.from({ length: 1 << TAG_GROUP_BITS }, (_, v) => sumOf(tones, samples, bitsOf(v, g * TAG_GROUP_BITS, TAG_GROUP_BITS), g === 0)),
  );
  const tables = Array.from({ length: GROUPS }, (_, g) =>
    Array.from({ length: 1 << Math.min(GROUP_BITS, BITS - TAG_BITS - g * GROUP_BITS) }, (_, v) =>
      Int16Array.from(sumOf(tones, samples, bitsOf(v, TAG_BITS + g * GROUP_BITS, GROUP_BITS), false), (x) => Math.round(x)),
    ),
  );
  return { samples, tagTables, tables, bases: new Map() };
}
const WRITER_8K = writerOf(8000);
const WRITER_16K = writerOf(16000);

function popcount(v: number): number {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x &= x - 1) n++;
  return n;
}

/**
 * Check bits: the number of 1 bits, inverted, mod 8. One tone misread changes the count by one, so
 * it always shows; inverted, so the all-zero mark has its check tones on and a lone tone at the
 * pilot's frequency is not a mark.
 */
function checkOf(lo: number, hiData: number): number {
  return ~(popcount(lo) + popcount(hiData)) & 0x7;
}

/** The pilot and the 12-bit tag, the same in every frame of a call: summed once per tag. */
function baseOf(w: Writer, tag: number): Int32Array {
  let base = w.bases.get(tag);
  if (!base) {
    const sum = new Float64Array(w.samples);
    for (let g = 0; g < TAG_GROUPS; g++) {
      const part = w.tagTables[g]![(tag >>> (g * TAG_GROUP_BITS)) & 0xf]!;
      for (let i = 0; i < w.samples; i++) sum[i]! += part[i]!;
    }
    base = Int32Array.from(sum, (x) => Math.round(x));
    w.bases.set(tag, base);
  }
  return base;
}

const synth = new Int32Array(320);

/** The frame of a mark, as integer samples in `synth` (the first `w.samples`). */
function synthesise(w: Writer, tag: number, seq: number, us: number): Int32Array {
  const t = tag & 0xfff;
  const u = us & 0xffffff;
  // The 35 bits after the tag, 12..46: sequence, send time, check — as five 8-bit group values.
  const lo = (t | ((seq & 0xff) << 12) | ((u & 0xfff) << 20)) >>> 0;
  const hiData = u >>> 12;
  const check = checkOf(lo, hiData);
  const tables = w.tables;
  const g0 = tables[0]![seq & 0xff]!;
  const g1 = tables[1]![u & 0xff]!;
  const g2 = tables[2]![(u >>> 8) & 0xff]!;
  const g3 = tables[3]![(u >>> 16) & 0xff]!;
  const g4 = tables[4]![check]!;
  const base = baseOf(w, t);
  const sum = synth; // a local: the hot loop below reads no module binding
  const samples = w.samples;
  for (let i = 0; i < samples; i++) sum[i] = base[i]! + g0[i]! + g1[i]! + g2[i]! + g3[i]! + g4[i]!;
  return sum;
}

/** Writes a marked caller frame: 160 µ-law bytes at 8 kHz. */
export function writeToneUlaw(out: Uint8Array, tag: number, seq: number, us: number): void {
  const s = synthesise(WRITER_8K, tag, seq, us);
  for (let i = 0; i < 160; i++) out[i] = ULAW_ENCODE_TABLE[s[i]! + 32768]!;
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const pcm16 = new Int16Array(320);
const pcm16Bytes = new Uint8Array(pcm16.buffer);

/** Writes a marked bot frame: 320 samples of little-endian 16-bit PCM at 16 kHz (640 bytes). */
export function writeTonePcm16k(out: Uint8Array, tag: number, seq: number, us: number): void {
  const s = synthesise(WRITER_16K, tag, seq, us);
  if (LITTLE_ENDIAN) {
    // Samples into a scratch frame, then one copy: no view made per frame, whatever out's alignment.
    const v16 = pcm16;
    for (let i = 0; i < 320; i++) v16[i] = s[i]!;
    out.set(pcm16Bytes);
    return;
  }
  for (let i = 0; i < 320; i++) {
    const v = s[i]!;
    out[2 * i] = v & 0xff;
    out[2 * i + 1] = (v >> 8) & 0xff;
  }
}

const win = new Float64Array(N);
const amp = new Float64Array(TONES);

/**
 * The amplitudes come from one 128-point real DFT instead of 48 Goertzel filters: the tones sit
 * exactly on bins 6..53 of it, and an FFT computes them all in about a quarter of the arithmetic.
 * Reading marks is the generator's and the bot's largest cost (10 000 frames/s each way at 200
 * calls, on the core they share), so it keeps the harness out of the figures it measures. The 128
 * real samples are packed as 64 complex ones (even + i·odd), transformed, and split back.
 */
const HALF = N / 2;
const LOG2_HALF = Math.log2(HALF);
const BITREV = Uint8Array.from({ length: HALF }, (_, i) => {
  let r = 0;
  for (let b = 0; b < LOG2_HALF; b++) r |= ((i >> b) & 1) << (LOG2_HALF - 1 - b);
  return r;
});
/** e^(−2πi·j/64) for the 64-point transform, and e^(−2πi·k/128) for the real split. */
const TW_RE = Float64Array.from({ length: HALF / 2 }, (_, j) => Math.cos((2 * Math.PI * j) / HALF));
const TW_IM = Float64Array.from({ length: HALF / 2 }, (_, j) => -Math.sin((2 * Math.PI * j) / HALF));
const SPLIT_RE = Float64Array.from({ length: HALF }, (_, k) => Math.cos((2 * Math.PI * k) / N));
const SPLIT_IM = Float64Array.from({ length: HALF }, (_, k) => -Math.sin((2 * Math.PI * k) / N));
const re = new Float64Array(HALF);
const im = new Float64Array(HALF);

/**
 * Twiddles of the stages from size 8 up, laid end to end (stage `size` at offset size/2 − 4): the
 * butterflies read them in order instead of striding through TW_RE/TW_IM. Sizes 2 and 4 need none
 * (their twiddles are 1 and −i) and are written out below.
 */
const STAGE_RE = new Float64Array(HALF - 4);
const STAGE_IM = new Float64Array(HALF - 4);
for (let size = 8; size <= HALF; size <<= 1) {
  for (let j = 0; j < size / 2; j++) {
    STAGE_RE[size / 2 - 4 + j] = TW_RE[(j * HALF) / size]!;
    STAGE_IM[size / 2 - 4 + j] = TW_IM[(j * HALF) / size]!;
  }
}

/** Amplitudes of every tone over `win` into `amp`; returns the window's energy. */
function measure(): number {
  let energy = 0;
  for (let n = 0; n < HALF; n++) {
    const j = BITREV[n]!;
    const a = win[2 * n]!;
    const b = win[2 * n + 1]!;
    energy += a * a + b * b;
    re[j] = a;
    im[j] = b;
  }
  // Iterative radix-2 decimation in time; sizes 2 and 4 fused (twiddles 1 and −i).
  for (let base = 0; base < HALF; base += 4) {
    const r0 = re[base]!, i0 = im[base]!, r1 = re[base + 1]!, i1 = im[base + 1]!;
    const r2 = re[base + 2]!, i2 = im[base + 2]!, r3 = re[base + 3]!, i3 = im[base + 3]!;
    const ar = r0 + r1, ai = i0 + i1, br = r0 - r1, bi = i0 - i1;
    const cr = r2 + r3, ci = i2 + i3, dr = r2 - r3, di = i2 - i3;
    re[base] = ar + cr;
    im[base] = ai + ci;
    re[base + 2] = ar - cr;
    im[base + 2] = ai - ci;
    // (dr + i·di)·(−i) = di − i·dr
    re[base + 1] = br + di;
    im[base + 1] = bi - dr;
    re[base + 3] = br - di;
    im[base + 3] = bi + dr;
  }
  for (let size = 8; size <= HALF; size <<= 1) {
    const half = size >> 1;
    const tw = half - 4;
    for (let base = 0; base < HALF; base += size) {
      for (let j = 0; j < half; j++) {
        const wr = STAGE_RE[tw + j]!;
        const wi = STAGE_IM[tw + j]!;
        const a = base + j;
        const b = a + half;
        const br = re[b]!;
        const bi = im[b]!;
        const tr = br * wr - bi * wi;
        const ti = br * wi + bi * wr;
        const ar = re[a]!;
        const ai = im[a]!;
        re[b] = ar - tr;
        im[b] = ai - ti;
        re[a] = ar + tr;
        im[a] = ai + ti;
      }
    }
  }
  // X[k] = E[k] + e^(−2πik/128)·O[k], with E = (Z[k] + conj Z[64−k]) / 2, O = (Z[k] − conj Z[64−k]) / 2i.
  for (let t = 0; t < TONES; t++) {
    const k = FIRST_K + t;
    const zr = re[k]!;
    const zi = im[k]!;
    const cr = re[HALF - k]!;
    const ci = -im[HALF - k]!;
    const er = (zr + cr) / 2;
    const ei = (zi + ci) / 2;
    const or = (zi - ci) / 2;
    const oi = -(zr - cr) / 2;
    const xr = er + SPLIT_RE[k]! * or - SPLIT_IM[k]! * oi;
    const xi = ei + SPLIT_RE[k]! * oi + SPLIT_IM[k]! * or;
    // A tone of peak A on bin k has |X_k| = A·N/2.
    amp[t] = (2 / N) * Math.sqrt(xr * xr + xi * xi);
  }
  return energy;
}

/** Decodes what `measure` left in `amp`; undefined unless every test in the header passes. */
function decode(energy: number, into: ToneMark): ToneMark | undefined {
  const pilot = amp[PILOT]!;
  if (!(pilot >= PILOT_MIN && pilot <= PILOT_MAX)) return undefined;
  // Parseval over a whole number of cycles: a tone of peak A holds A²·N/2 of the window's energy.
  let toneEnergy = 0;
  for (let t = 0; t < TONES; t++) toneEnergy += amp[t]! * amp[t]!;
  if (toneEnergy * (N / 2) < MIN_TONE_ENERGY * energy) return undefined;
  let lo = 0;
  let hi = 0;
  for (let b = 0; b < BITS; b++) {
    const r = amp[BIT_TONE[b]!]! / pilot;
    let bit: number;
    if (r <= OFF_MAX) bit = 0;
    else if (r >= ON_MIN && r <= ON_MAX) bit = 1;
    else return undefined;
    if (b < 32) lo |= bit << b;
    else hi |= bit << (b - 32);
  }
  lo >>>= 0;
  const hiData = hi & 0xfff;
  if (checkOf(lo, hiData) !== hi >>> 12) return undefined;
  into.tag = lo & 0xfff;
  into.seq = (lo >>> 12) & 0xff;
  into.us24 = ((lo >>> 20) | (hiData << 12)) >>> 0;
  return into;
}

/** The Goertzel coefficient of the pilot's bin. */
const PILOT_COEF = 2 * Math.cos((2 * Math.PI * (FIRST_K + PILOT)) / N);

/**
 * The pilot's amplitude over `win`: its one DFT bin (Goertzel), the same value `measure` finds for
 * it. Decode's first test, done first: an unmarked frame (silence, the filler of `--mark-every`)
 * costs one bin instead of the whole transform.
 */
function pilotAmplitude(): number {
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < N; i++) {
    const s0 = win[i]! + PILOT_COEF * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (2 / N) * Math.sqrt(Math.max(0, s1 * s1 + s2 * s2 - PILOT_COEF * s1 * s2));
}

function readWindow(into: ToneMark): ToneMark | undefined {
  // A little slack around decode's bounds: the two ways of computing the bin differ in rounding.
  const pilot = pilotAmplitude();
  if (pilot < PILOT_MIN * 0.99 || pilot > PILOT_MAX * 1.01) return undefined;
  return decode(measure(), into);
}

/** Reads the mark of a µ-law frame at 8 kHz (what the caller gets back); undefined when unmarked. */
export function readToneUlaw(payload: Uint8Array, into: ToneMark): ToneMark | undefined {
  if (payload.length < WINDOW_AT_8K + N) return undefined;
  // Most frames back at the caller are the node's silence (the bot answers only marked frames): a
  // byte compare rejects them, where the pilot's bin costs 128 multiply-adds. µ-law 0xff and 0x7f are 0.
  let silent = true;
  for (let i = WINDOW_AT_8K; i < WINDOW_AT_8K + N; i++) {
    if ((payload[i]! & 0x7f) !== 0x7f) {
      silent = false;
      break;
    }
  }
  if (silent) return undefined;
  for (let i = 0; i < N; i++) win[i] = ULAW_DECODE_TABLE[payload[WINDOW_AT_8K + i]!]!;
  return readWindow(into);
}

/** Reads the mark of a 16 kHz little-endian PCM frame (what the bot gets); undefined when unmarked. */
export function readTonePcm16k(pcm: Uint8Array, into: ToneMark): ToneMark | undefined {
  if (pcm.length < 2 * (2 * (WINDOW_AT_8K + N))) return undefined;
  let any = 0;
  for (let i = 0; i < N; i++) {
    const at = 4 * (WINDOW_AT_8K + i); // sample 2·(28 + i) at 16 kHz, 2 bytes each
    const v = ((pcm[at + 1]! << 8) | pcm[at]!) << 16 >> 16;
    win[i] = v;
    any |= v;
  }
  // The caller's pauses reach the bot as exact zeros (µ-law silence, resampled): no pilot to look for.
  return any === 0 ? undefined : readWindow(into);
}

/**
 * A caller frame that carries no mark (`--mark-every`): a 1 kHz tone at −18 dBFS, exactly on a bin
 * that is no tone's, so the pilot test rejects it at once.
 */
export function writeFillerUlaw(out: Uint8Array): void {
  for (let i = 0; i < 160; i++) out[i] = ULAW_ENCODE_TABLE[Math.round(4000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)) + 32768]!;
}

/**
 * The full 32-bit stamp (µs mod 2^32, bench/clock.ts) of a 24-bit one, given the reader's clock:
 * the stamp within ±2^23 µs (8.4 s) of `nowUs32`.
 */
export function unwrapUs24(us24: number, nowUs32: number): number {
  let age = (nowUs32 - us24) & 0xffffff;
  if (age >= 0x800000) age -= 0x1000000;
  return (nowUs32 - age) >>> 0;
}
