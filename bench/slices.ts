/**
 * Latency over the window's time, in slices: per slice, the largest value and how many values were
 * over the budget. A p99 over budget says that the tail is there; the slices say whether it is one
 * event (a few slices, every call at once: a stall somewhere) or steady (every slice: a cost per
 * frame). Keyed by the frame's send stamp, so a stall shows in the slice where the late frames
 * should have left.
 */
import { usDiff } from './frame.js';

export interface SliceSeries {
  sliceMs: number;
  /** Largest value per slice, ms (0: no frame in it). */
  maxMs: number[];
  /** Values over `overMs` per slice. */
  over: number[];
  overMs: number;
  /** Slices with any value over budget, and how many values that was in all. */
  slicesOver: number;
  totalOver: number;
}

export class SliceRecorder {
  #maxUs = new Float64Array(0);
  #over = new Uint32Array(0);
  #fromUs = 0;
  readonly #sliceUs: number;
  readonly #overUs: number;

  constructor(
    readonly sliceMs: number,
    readonly overMs: number,
  ) {
    this.#sliceUs = sliceMs * 1000;
    this.#overUs = overMs * 1000;
  }

  /**
   * Starts a window from `fromUs` to `toUs` (µs mod 2^32 on the shared clock), a slice for every
   * `sliceMs` of it; forgets the last one.
   */
  start(fromUs: number, toUs: number): void {
    const slices = Math.max(1, Math.ceil(usDiff(toUs, fromUs) / this.#sliceUs));
    this.#fromUs = fromUs;
    this.#maxUs = new Float64Array(slices);
    this.#over = new Uint32Array(slices);
  }

  /** A value (µs) for the frame stamped `atUs`; ignored outside the window. */
  record(atUs: number, valueUs: number): void {
    const i = Math.floor(usDiff(atUs, this.#fromUs) / this.#sliceUs);
    if (i < 0 || i >= this.#maxUs.length) return;
    if (valueUs > this.#maxUs[i]!) this.#maxUs[i] = valueUs;
    if (valueUs > this.#overUs) this.#over[i]!++;
  }

  /** The last window's series. */
  series(): SliceSeries {
    const over = Array.from(this.#over);
    return {
      sliceMs: this.sliceMs,
      maxMs: Array.from(this.#maxUs, (us) => Math.round(us / 100) / 10),
      over,
      overMs: this.overMs,
      slicesOver: over.filter((c) => c > 0).length,
      totalOver: over.reduce((a, b) => a + b, 0),
    };
  }
}
