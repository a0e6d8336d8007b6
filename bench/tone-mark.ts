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
 * Writing a frame is the bench's per-frame cost in the generator and the bot (10 000 frames/s at
 * 200 calls, on the core the SUT is kept off), so the sums are precomputed: bits in groups of 4,
 * one table per group holding the frame for each of its 16 values (the pilot folded into group 0),
 * and the pilot and tag groups summed once per call. A frame is then 9 table adds. The tables are
 * integers: each is rounded once, so a frame is off by at most 5 of 32 768 — far below µ-law's own
 * step and the reader's thresholds — and needs no rounding or float conversion per sample.
 */
const GROUP_BITS = 4;
const GROUPS = Math.ceil(BITS / GROUP_BITS);

function groupTables(rate: ToneRate): Int32Array[][] {
  const samples = rate / 50;
  const tone = (t: number) => Float64Array.from({ length: samples }, (_, i) => TONE_AMPLITUDE * Math.sin((2 * Math.PI * FREQ[t]! * i) / rate + PHASE[t]!));
  const tones = Array.from({ length: TONES }, (_, t) => tone(t));
  return Array.from({ length: GROUPS }, (_, g) =>
    Array.from({ length: 1 << GROUP_BITS }, (_, value) => {
      const sum = new Float64Array(samples);
      if (g === 0) for (let i = 0; i < samples; i++) sum[i] = tones[PILOT]![i]!;
      for (let j = 0; j < GROUP_BITS; j++) {
        const b = g * GROUP_BITS + j;
        if (b >= BITS || ((value >> j) & 1) === 0) continue;
        const t = tones[BIT_TONE[b]!]!;
        for (let i = 0; i < samples; i++) sum[i]! += t[i]!;
      }
      return Int32Array.from(sum, (v) => Math.round(v));
    }),
  );
}
/** One frame writer per rate: its group tables and, per call tag, the pilot + tag groups summed. */
interface Writer {
  readonly tables: Int32Array[][];
  readonly samples: number;
  readonly bases: Map<number, Int32Array>;
}
const WRITER_8K: Writer = { tables: groupTables(8000), samples: 160, bases: new Map() };
const WRITER_16K: Writer = { tables: groupTables(16000), samples: 320, bases: new Map() };

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

/** The 47 bits of a mark: [lo 32 bits, hi 15 bits]. */
function pack(tag: number, seq: number, us: number): [number, number] {
  const t = tag & 0xfff;
  const s = seq & 0xff;
  const u = us & 0xffffff;
  // bits 0..11 tag, 12..19 seq, 20..43 us, 44..46 check
  const lo = (t | (s << 12) | ((u & 0xfff) << 20)) >>> 0;
  const hiData = u >>> 12; // 12 bits: 32..43
  const check = checkOf(lo, hiData);
  return [lo, hiData | (check << 12)];
}

const synth = new Int32Array(320);
/** Groups 0..2 are the pilot and the 12-bit tag, the same in every frame of a call: summed once per tag. */
const TAG_GROUPS = TAG_BITS / GROUP_BITS;

function baseOf(w: Writer, tag: number): Int32Array {
  let base = w.bases.get(tag);
  if (!base) {
    base = new Int32Array(w.samples);
    for (let g = 0; g < TAG_GROUPS; g++) {
      const part = w.tables[g]![(tag >>> (g * GROUP_BITS)) & 0xf]!;
      for (let i = 0; i < w.samples; i++) base[i]! += part[i]!;
    }
    w.bases.set(tag, base);
  }
  return base;
}

function synthesise(w: Writer, tag: number, seq: number, us: number): Int32Array {
  const [lo, hi] = pack(tag, seq, us);
  const sum = synth; // a local: the hot loop below reads no module binding
  const samples = w.samples;
  sum.set(baseOf(w, lo & 0xfff));
  for (let g = TAG_GROUPS; g < GROUPS; g++) {
    // 32 is a multiple of GROUP_BITS: no group straddles the two words.
    const b = g * GROUP_BITS;
    const value = b < 32 ? (lo >>> b) & 0xf : (hi >>> (b - 32)) & 0xf;
    const part = w.tables[g]![value]!;
    for (let i = 0; i < samples; i++) sum[i] = (sum[i]! + part[i]!) | 0;
  }
  return sum;
}

/** Writes a marked caller frame: 160 µ-law bytes at 8 kHz. */
export function writeToneUlaw(out: Uint8Array, tag: number, seq: number, us: number): void {
  const s = synthesise(WRITER_8K, tag, seq, us);
  for (let i = 0; i < 160; i++) out[i] = ULAW_ENCODE_TABLE[s[i]! + 32768]!;
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Writes a marked bot frame: 320 samples of little-endian 16-bit PCM at 16 kHz (640 bytes). */
export function writeTonePcm16k(out: Uint8Array, tag: number, seq: number, us: number): void {
  const s = synthesise(WRITER_16K, tag, seq, us);
  if (LITTLE_ENDIAN && (out.byteOffset & 1) === 0) {
    // 320 sample stores instead of 640 byte stores.
    const v16 = new Int16Array(out.buffer, out.byteOffset, 320);
    for (let i = 0; i < 320; i++) v16[i] = s[i]!;
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

/** Amplitudes of every tone over `win` into `amp`; returns the window's energy. */
function measure(): number {
  let energy = 0;
  for (let i = 0; i < N; i++) energy += win[i]! * win[i]!;
  for (let n = 0; n < HALF; n++) {
    const j = BITREV[n]!;
    re[j] = win[2 * n]!;
    im[j] = win[2 * n + 1]!;
  }
  // Iterative radix-2 decimation in time.
  for (let size = 2; size <= HALF; size <<= 1) {
    const half = size >> 1;
    const step = HALF / size;
    for (let base = 0; base < HALF; base += size) {
      for (let j = 0; j < half; j++) {
        const wr = TW_RE[j * step]!;
        const wi = TW_IM[j * step]!;
        const a = base + j;
        const b = a + half;
        const tr = re[b]! * wr - im[b]! * wi;
        const ti = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - tr;
        im[b] = im[a]! - ti;
        re[a]! += tr;
        im[a]! += ti;
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
  for (let i = 0; i < N; i++) win[i] = ULAW_DECODE_TABLE[payload[WINDOW_AT_8K + i]!]!;
  return readWindow(into);
}

/** Reads the mark of a 16 kHz little-endian PCM frame (what the bot gets); undefined when unmarked. */
export function readTonePcm16k(pcm: Uint8Array, into: ToneMark): ToneMark | undefined {
  if (pcm.length < 2 * (2 * (WINDOW_AT_8K + N))) return undefined;
  for (let i = 0; i < N; i++) {
    const at = 4 * (WINDOW_AT_8K + i); // sample 2·(28 + i) at 16 kHz, 2 bytes each
    win[i] = ((pcm[at + 1]! << 8) | pcm[at]!) << 16 >> 16;
  }
  return readWindow(into);
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
