/**
 * Integer-ratio resampling of 16-bit PCM between telephone (8 kHz) and wideband bot rates
 * (16, 24, 48 kHz), with a windowed-sinc low-pass FIR in fixed point, polyphase so no zero is ever
 * multiplied.
 *
 * Filter: cutoff at the lower rate's Nyquist (4 kHz for 8 kHz ↔ anything), 24·F + 1 taps for a
 * ratio F, Kaiser window with β = 6 (≈ 60 dB stop band), designed in doubles, run with Int16
 * coefficients (Q14 upsampling, Q15 downsampling) and Int32 sums — codecs/fir.ts has the layout and
 * the proof that no sum can overflow. At every ratio this gives a ≈ 1.2 kHz wide transition centred
 * on the cutoff: flat to ≈ 3.4 kHz (the telephone band, within 0.03 dB), ≥ 50 dB down from ≈ 4.6 kHz,
 * ≥ 65 dB from 5 kHz; the Int16 filter is within −70 dB of the float design at every frequency
 * (test/unit/codecs/fir.test.ts). Each output sample is the sum rounded half up, (sum + 2^(s−1)) >> s,
 * clamped to 16 bits. The group delay is 12 samples at the lower rate (1.5 ms at 8 kHz).
 *
 * A Resampler is stateful: it keeps the last inputs of the previous frame as filter history, so a
 * stream cut into frames of any size gives the same output as the whole stream in one call (no clicks
 * at frame boundaries). One Resampler per direction per call; `process` allocates nothing once it has
 * seen its largest frame size. Per 20 ms frame at 8 ↔ 16 kHz: ≈ 0.8–1.1 µs native, ≈ 5–6 µs in V8
 * (docs/benchmarks/codecs.md).
 *
 * The tap loops run in the native addon when it is loaded (native/fir.cc: the same integer sums,
 * vectorised), with identical output by construction — an integer sum does not depend on the order
 * of its additions; `new Resampler(a, b, { native: false })` forces the TypeScript loops (tests,
 * benchmarks).
 */
import { fixedPolyphase, jsFir, type FirLoops, type FirPlan, type FixedFir } from './fir.js';
import { nativeFir } from './native.js';

export type SampleRate = 8000 | 16000 | 24000 | 32000 | 48000;

/** Zeroth-order modified Bessel function of the first kind, for the Kaiser window. */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

/**
 * Low-pass FIR of `taps` (odd) coefficients at cutoff `cutoff` (cycles per sample of the rate it
 * runs at), Kaiser-windowed, normalised to unit DC gain.
 */
export function designLowPass(taps: number, cutoff: number, beta = 6): Float64Array {
  const h = new Float64Array(taps);
  const mid = (taps - 1) / 2;
  const norm = besselI0(beta);
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const t = n - mid;
    const sinc = t === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * t) / (Math.PI * t);
    const r = t / mid;
    const w = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / norm;
    h[n] = sinc * w;
    sum += h[n]!;
  }
  for (let n = 0; n < taps; n++) h[n]! /= sum;
  // A cutoff of 1/(2F) makes this a Nyquist filter: the taps F, 2F, … from the centre are zero in
  // theory and ~1e-17 in floating point. Make them exactly zero, so the polyphase decomposition
  // (codecs/fir.ts) can drop them rather than multiply them.
  const peak = h.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let n = 0; n < taps; n++) if (Math.abs(h[n]!) < peak * 1e-12) h[n] = 0;
  return h;
}

const TAPS_PER_PHASE = 24;

export interface ResamplerState {
  fromRate: number;
  toRate: number;
  factor: number;
  /** Length of the prototype filter, zeros included (24·F + 1). */
  taps: number;
  /** Coefficients actually multiplied: the non-zero ones, 24·(F − 1) + 1. */
  coefficients: number;
  /** Fraction bits of the Int16 coefficients: 14 (upsampling) or 15 (downsampling). */
  fractionBits: number;
  history: number[];
  /** Downsampling only: inputs to skip before the next output sample. */
  untilNextOutput: number;
}

/**
 * One filter and one prepared plan per ratio and loops, shared by every resampler of that ratio: a
 * plan is read-only once prepared, and a node's thousand calls then run one copy of it that stays
 * in cache, where a plan each (and a filter designed per call at set-up) put a cache miss or
 * several into every call's frame (perf at 1,000 calls: a third of the FIR's samples on loading the
 * plan).
 */
const sharedPlans = new Map<string, { fir: FixedFir; plan: FirPlan }>();

export class Resampler {
  readonly fromRate: SampleRate;
  readonly toRate: SampleRate;
  readonly #up: boolean;
  readonly #factor: number;
  /** The filter in Int16, one run of coefficients per phase; undefined for a ratio of 1. */
  readonly #fir: FixedFir | undefined;
  /** Native loops, or the TypeScript ones (same samples), and the filter prepared for them. */
  readonly #loops: FirLoops;
  readonly #plan: FirPlan | undefined;
  /** How many past inputs the filter reads. */
  readonly #historyLength: number;
  /**
   * The last #historyLength inputs, oldest first, then room for a frame: the loops read history and
   * new inputs as one array. Grows once to the largest frame seen, then is reused.
   */
  #work: Int16Array;
  #untilNext = 0;

  /**
   * `native: false` takes the TypeScript loops even when the addon has them. `maxInput`: the most
   * samples one `process` call will be given, so the work buffer is sized once and never replaced
   * (the receive lane, edge/media/rx-lane.ts, keeps a pointer to it). `ownPlan`: a plan of its own
   * rather than the shared one (the native loops are chosen when a plan is made: bench/codecs.ts
   * compares them).
   */
  constructor(fromRate: SampleRate, toRate: SampleRate, options: { native?: boolean; maxInput?: number; ownPlan?: boolean } = {}) {
    const up = toRate >= fromRate;
    const factor = up ? toRate / fromRate : fromRate / toRate;
    if (!Number.isInteger(factor) || factor < 1 || factor > 6) {
      throw new RangeError(`Resampler: ${fromRate} Hz → ${toRate} Hz is not an integer ratio of 1 to 6`);
    }
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.#up = up;
    this.#factor = factor;
    this.#loops = options.native === false ? jsFir : (nativeFir ?? jsFir);
    if (factor === 1) {
      this.#fir = undefined;
      this.#plan = undefined;
      this.#historyLength = 0;
      this.#work = new Int16Array(0);
      return;
    }
    const key = `${factor}:${up ? 'up' : 'down'}:${this.#loops === jsFir ? 'js' : 'native'}`;
    let made = options.ownPlan ? undefined : sharedPlans.get(key);
    if (!made) {
      const fir = fixedPolyphase(designLowPass(TAPS_PER_PHASE * factor + 1, 0.5 / factor), factor, up);
      made = { fir, plan: this.#loops.prepare(fir) };
      if (!options.ownPlan) sharedPlans.set(key, made);
    }
    this.#fir = made.fir;
    this.#plan = made.plan;
    this.#historyLength = this.#fir.history;
    this.#work = new Int16Array(this.#historyLength + (options.maxInput ?? 0));
  }

  /**
   * For the receive lane: the native plan and the work buffer (history, then room for `maxInput`
   * samples), which the lane runs exactly as `process` does; `onWork` hears of a larger buffer (a
   * longer input than any before). Undefined for a ratio of 1 or the TypeScript loops.
   */
  get nativePlan(): { plan: FirPlan; work: Int16Array } | undefined {
    return this.#plan && this.native ? { plan: this.#plan, work: this.#work } : undefined;
  }

  /** Called with the new work buffer when an input longer than any before replaced it. */
  onWork: ((work: Int16Array) => void) | undefined;

  /** Downsampling: inputs to skip before the next output (0: the next input starts a new output). */
  get phase(): number {
    return this.#untilNext;
  }

  /** Whether the tap loops run natively. */
  get native(): boolean {
    return this.#loops !== jsFir;
  }

  /** The most samples `process` can write for `inputLength` input samples. */
  maxOutputLength(inputLength: number): number {
    return this.#up ? inputLength * this.#factor : Math.ceil(inputLength / this.#factor);
  }

  /**
   * Resamples `src` into `dst` and returns the number of samples written. When downsampling, an
   * input length that is not a multiple of the ratio is fine: the phase carries over to the next call.
   */
  process(src: Int16Array, dst: Int16Array): number {
    const need = this.maxOutputLength(src.length);
    if (dst.length < need) {
      throw new RangeError(`Resampler: output holds ${dst.length} samples, ${need} needed`);
    }
    const plan = this.#plan;
    if (!plan) {
      dst.set(src);
      return src.length;
    }
    const work = this.#stage(src);
    let written: number;
    if (this.#up) {
      written = this.#loops.up(plan, work, src.length, dst);
    } else {
      const start = this.#untilNext;
      written = this.#loops.down(plan, work, start, src.length, dst);
      this.#untilNext = start + written * this.#factor - src.length;
    }
    // The last inputs become the next call's history: a memmove within the buffer.
    work.copyWithin(0, src.length, src.length + this.#historyLength);
    return written;
  }

  /** Forgets the history, as if no sample had been seen (e.g. after a stream change). */
  reset(): void {
    this.#work.fill(0);
    this.#untilNext = 0;
  }

  state(): ResamplerState {
    const f = this.#fir;
    return {
      fromRate: this.fromRate,
      toRate: this.toRate,
      factor: this.#factor,
      taps: f?.taps ?? 0,
      coefficients: f?.coefs.length ?? 0,
      fractionBits: f?.shift ?? 0,
      history: [...this.#work.subarray(0, this.#historyLength)],
      untilNextOutput: this.#untilNext,
    };
  }

  /** Appends `src` to the history in the work buffer. */
  #stage(src: Int16Array): Int16Array {
    const H = this.#historyLength;
    if (this.#work.length < H + src.length) {
      const grown = new Int16Array(H + src.length);
      grown.set(this.#work.subarray(0, H));
      this.#work = grown;
      this.onWork?.(grown);
    }
    this.#work.set(src, H);
    return this.#work;
  }
}

/**
 * A whole clip at another rate, in one go (a prompt loaded once, not a stream): a new array, its
 * own filter state. The input itself when the rates are equal.
 */
export function resampleClip(pcm: Int16Array, fromRate: SampleRate, toRate: SampleRate): Int16Array {
  if (fromRate === toRate) return pcm;
  const r = new Resampler(fromRate, toRate);
  const out = new Int16Array(r.maxOutputLength(pcm.length));
  return out.subarray(0, r.process(pcm, out));
}
