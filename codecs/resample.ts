/**
 * Integer-ratio resampling of 16-bit PCM between telephone (8 kHz) and wideband bot rates
 * (16, 24, 48 kHz), with a windowed-sinc low-pass FIR, polyphase so no zero is ever multiplied.
 *
 * Filter: cutoff at the lower rate's Nyquist (4 kHz for 8 kHz ↔ anything), 24·F + 1 taps for a
 * ratio F, Kaiser window with β = 6 (≈ 60 dB stop band). At every ratio this gives a ≈ 1.2 kHz wide
 * transition centred on the cutoff: flat to ≈ 3.4 kHz (the telephone band), ≥ 50 dB down from
 * ≈ 4.6 kHz. The group delay is 12 samples at the lower rate (1.5 ms at 8 kHz).
 *
 * A Resampler is stateful: it keeps the last inputs of the previous frame as filter history, so a
 * stream cut into frames of any size gives the same output as the whole stream in one call (no clicks
 * at frame boundaries). One Resampler per direction per call; `process` allocates
 * nothing once it has seen its largest frame size (≈ 9 µs per 20 ms frame at 8 ↔ 16 kHz in V8).
 *
 * The tap loops run in the native addon when it is loaded (native/fir.cc: the same sums in the same
 * order, several outputs at once), with identical output; `new Resampler(a, b, { native: false })`
 * forces the TypeScript loops (tests, benchmarks).
 */
import { nativeFir, type NativeFir } from './native.js';


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
  // theory and ~1e-17 in floating point. Make them exactly zero, so a loop may skip them (the native
  // one does) and still produce the same sums as one that multiplies them.
  const peak = h.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let n = 0; n < taps; n++) if (Math.abs(h[n]!) < peak * 1e-12) h[n] = 0;
  return h;
}

const TAPS_PER_PHASE = 24;

function clamp16(v: number): number {
  const r = Math.round(v);
  return r > 32767 ? 32767 : r < -32768 ? -32768 : r;
}

export interface ResamplerState {
  fromRate: number;
  toRate: number;
  factor: number;
  taps: number;
  history: number[];
  /** Downsampling only: inputs to skip before the next output sample. */
  untilNextOutput: number;
}

export class Resampler {
  readonly fromRate: SampleRate;
  readonly toRate: SampleRate;
  readonly #up: boolean;
  readonly #factor: number;
  /** Upsampling: one coefficient array per phase (scaled by F). Downsampling: one array. */
  readonly #phases: Float64Array[];
  /** The last inputs, oldest first. */
  readonly #history: Float64Array;
  #work = new Float64Array(0);
  #untilNext = 0;
  /**
   * Native loops, and for them each phase's non-zero coefficients flattened (`#flat`), the tap each
   * one sits at (`#taps`) and how many each phase has (`#lengths`); undefined: the TypeScript loops.
   */
  readonly #fir: NativeFir | undefined;
  readonly #flat: Float64Array;
  readonly #taps: Uint32Array;
  readonly #lengths: Uint32Array;

  constructor(fromRate: SampleRate, toRate: SampleRate, options: { native?: boolean } = {}) {
    const up = toRate >= fromRate;
    const factor = up ? toRate / fromRate : fromRate / toRate;
    if (!Number.isInteger(factor) || factor < 1 || factor > 6) {
      throw new RangeError(`Resampler: ${fromRate} Hz → ${toRate} Hz is not an integer ratio of 1 to 6`);
    }
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.#up = up;
    this.#factor = factor;
    if (factor === 1) {
      this.#phases = [];
      this.#history = new Float64Array(0);
      this.#fir = undefined;
      this.#flat = new Float64Array(0);
      this.#taps = new Uint32Array(0);
      this.#lengths = new Uint32Array(0);
      return;
    }
    const h = designLowPass(TAPS_PER_PHASE * factor + 1, 0.5 / factor);
    if (up) {
      // Zero-stuffed input x[m] sits at high-rate index mF, so output mF + p uses taps p, p+F, ...
      this.#phases = [];
      for (let p = 0; p < factor; p++) {
        const phase: number[] = [];
        for (let k = p; k < h.length; k += factor) phase.push(h[k]! * factor);
        this.#phases.push(Float64Array.from(phase));
      }
      this.#history = new Float64Array(this.#phases[0]!.length - 1);
    } else {
      this.#phases = [h];
      this.#history = new Float64Array(h.length - 1);
    }
    this.#fir = options.native === false ? undefined : nativeFir;
    const coefs: number[] = [];
    const taps: number[] = [];
    this.#lengths = Uint32Array.from(this.#phases, (phase) => {
      let n = 0;
      phase.forEach((c, i) => {
        if (c === 0) return;
        coefs.push(c);
        taps.push(i);
        n++;
      });
      return n;
    });
    this.#flat = Float64Array.from(coefs);
    this.#taps = Uint32Array.from(taps);
  }

  /** Whether the tap loops run natively. */
  get native(): boolean {
    return this.#fir !== undefined;
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
    if (this.#factor === 1) {
      dst.set(src);
      return src.length;
    }
    const written = this.#up ? this.#upsample(src, dst) : this.#downsample(src, dst);
    this.#remember(src);
    return written;
  }

  /** Forgets the history, as if no sample had been seen (e.g. after a stream change). */
  reset(): void {
    this.#history.fill(0);
    this.#untilNext = 0;
  }

  state(): ResamplerState {
    return {
      fromRate: this.fromRate,
      toRate: this.toRate,
      factor: this.#factor,
      taps: this.#phases.reduce((n, p) => n + p.length, 0),
      history: [...this.#history],
      untilNextOutput: this.#untilNext,
    };
  }

  /**
   * Copies history + `src` into one contiguous work buffer so the tap loops below have no branch
   * and no second index; the buffer grows once to the largest frame seen, then is reused.
   */
  #stage(src: Int16Array): Float64Array {
    const H = this.#history.length;
    if (this.#work.length < H + src.length) this.#work = new Float64Array(H + src.length);
    const work = this.#work;
    work.set(this.#history, 0);
    for (let i = 0; i < src.length; i++) work[H + i] = src[i]!;
    return work;
  }

  #upsample(src: Int16Array, dst: Int16Array): number {
    const F = this.#factor;
    const H = this.#history.length;
    const work = this.#stage(src);
    if (this.#fir) return this.#fir.firUp(this.#flat, this.#taps, this.#lengths, F, work, H, src.length, dst);
    let o = 0;
    for (let m = 0; m < src.length; m++) {
      const newest = H + m;
      for (let p = 0; p < F; p++) {
        const g = this.#phases[p]!;
        let acc = 0;
        for (let i = 0; i < g.length; i++) acc += g[i]! * work[newest - i]!;
        dst[o++] = clamp16(acc);
      }
    }
    return o;
  }

  #downsample(src: Int16Array, dst: Int16Array): number {
    const F = this.#factor;
    const h = this.#phases[0]!;
    const H = this.#history.length;
    const work = this.#stage(src);
    if (this.#fir) {
      const start = this.#untilNext;
      const o = this.#fir.firDown(this.#flat, this.#taps, F, work, H, start, src.length, dst);
      this.#untilNext = start + o * F - src.length;
      return o;
    }
    let o = 0;
    let i = this.#untilNext;
    for (; i < src.length; i += F) {
      const newest = H + i;
      let acc = 0;
      for (let k = 0; k < h.length; k++) acc += h[k]! * work[newest - k]!;
      dst[o++] = clamp16(acc);
    }
    this.#untilNext = i - src.length;
    return o;
  }

  #remember(src: Int16Array): void {
    const hist = this.#history;
    const H = hist.length;
    if (src.length >= H) {
      for (let i = 0; i < H; i++) hist[i] = src[src.length - H + i]!;
    } else {
      hist.copyWithin(0, src.length);
      for (let i = 0; i < src.length; i++) hist[H - src.length + i] = src[i]!;
    }
  }
}
