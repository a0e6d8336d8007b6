/**
 * A hybrid logical clock fused into one float64: `wallMs * 1024 + logical`.
 *
 * One number keeps comparisons and the wire cheap. 2^10 logical ticks per millisecond is plenty (a
 * writer would need > 1M commits/s to overflow, and overflow just runs the clock a little ahead of
 * the wall clock, which HLC allows); today's `Date.now() * 1024` is ~1.8e15, well inside 2^53.
 * (Kulkarni et al., "Logical Physical Clocks", 2014: l = max(l, pt), c breaks ties.)
 */
export const HLC_TICKS_PER_MS = 1024;

export class Hlc {
  #last = 0;
  constructor(private readonly wallMs: () => number = Date.now) {}

  /** A timestamp for a local event, strictly greater than every earlier one and every observed one. */
  now(): number {
    const pt = Math.floor(this.wallMs()) * HLC_TICKS_PER_MS;
    this.#last = pt > this.#last ? pt : this.#last + 1;
    return this.#last;
  }

  /** Folds in a remote timestamp so our next `now()` orders after it. */
  observe(remote: number): void {
    if (remote > this.#last && Number.isFinite(remote)) this.#last = remote;
  }

  get last(): number {
    return this.#last;
  }
}

/** Milliseconds since the epoch of an HLC value (for display). */
export function hlcWallMs(hlc: number): number {
  return Math.floor(hlc / HLC_TICKS_PER_MS);
}

/**
 * Total order of row versions: clock first, then the origin (`writerId/session`) string. Returns
 * > 0 when (aHlc, aOrigin) wins.
 */
export function compareVersion(aHlc: number, aOrigin: string, bHlc: number, bOrigin: string): number {
  if (aHlc !== bHlc) return aHlc > bHlc ? 1 : -1;
  return aOrigin === bOrigin ? 0 : aOrigin > bOrigin ? 1 : -1;
}
