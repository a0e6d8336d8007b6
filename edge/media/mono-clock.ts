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

/**
 * The `performance.now()` reading at which `us32` (a monoUs32-style stamp, e.g. an RTP datagram's
 * arrival as the native I/O thread read it) was taken: code that keeps time with performance.now()
 * can then use the stamp. A stamp that reads as later than now (the two clocks' calibration differ
 * by a µs or two) is now.
 */
export function perfMsOfUs32(us32: number): number {
  const now = performance.now();
  const ageUs = (Math.round((now + offsetMs) * 1000) - us32) >>> 0; // mod 2^32, as the stamp is
  return ageUs < 0x80000000 ? now - ageUs / 1000 : now;
}
