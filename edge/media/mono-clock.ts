/**
 * One clock for every process on the machine. `performance.now()` is CLOCK_MONOTONIC minus a
 * per-process origin; `process.hrtime.bigint()` is CLOCK_MONOTONIC itself, which on Linux is one
 * clock for the whole machine (and the one the native I/O thread stamps arrivals with). Calibrating
 * the offset once at load gives a cheap, allocation-free reading that two processes — the load
 * generator and the instrumented bot, or JavaScript and the I/O thread — can subtract from each
 * other (to within a microsecond or two of calibration error).
 */
const offsetMs = Number(process.hrtime.bigint() / 1000n) / 1000 - performance.now();

/** Milliseconds on the machine-wide monotonic clock. */
export function monoMs(): number {
  return performance.now() + offsetMs;
}

/** Microseconds on the machine-wide monotonic clock, mod 2^32 (what fits in a frame marker). */
export function monoUs32(): number {
  return Math.round((performance.now() + offsetMs) * 1000) % 0x100000000;
}
