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
  readonly #maxUs: Float64Array;
  readonly #over: Uint32Array;
  #fromUs = 0;
  #active = false;

  constructor(
    readonly sliceMs: number,
    readonly overMs: number,
    slices: number,
  ) {
    this.#maxUs = new Float64Array(slices);
    this.#over = new Uint32Array(slices);
  }

  /** Starts a window at `fromUs` (µs mod 2^32 on the shared clock); forgets the last one. */
  start(fromUs: number): void {
    this.#fromUs = fromUs;
    this.#active = true;
    this.#maxUs.fill(0);
    this.#over.fill(0);
  }

  /** A value (µs) for the frame stamped `atUs`; ignored outside the window's slices. */
  record(atUs: number, valueUs: number): void {
    if (!this.#active) return;
    const i = Math.floor(usDiff(atUs, this.#fromUs) / (this.sliceMs * 1000));
    if (i < 0 || i >= this.#maxUs.length) return;
    if (valueUs > this.#maxUs[i]!) this.#maxUs[i] = valueUs;
    if (valueUs > this.overMs * 1000) this.#over[i]!++;
  }

  /** The series up to `slices` slices (the window's length). */
  series(slices: number): SliceSeries {
    const n = Math.min(slices, this.#maxUs.length);
    const over = Array.from(this.#over.subarray(0, n));
    return {
      sliceMs: this.sliceMs,
      maxMs: Array.from(this.#maxUs.subarray(0, n), (us) => Math.round(us / 100) / 10),
      over,
      overMs: this.overMs,
      slicesOver: over.filter((c) => c > 0).length,
      totalOver: over.reduce((a, b) => a + b, 0),
    };
  }
}
