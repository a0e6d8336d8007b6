import type { IntervalHistogram } from 'node:perf_hooks';

/** An event-loop delay histogram read out, ms beyond its sampling period. */
export interface LoopDelaySummary {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Reads `monitorEventLoopDelay`'s histogram. It holds the time between the sampling timer's runs,
 * which includes the timer's own period: that is subtracted, so an idle loop reads ~0 and the
 * figures are how late the loop was (ns → ms, 2 decimals). All zero before the first sample.
 */
export function summarizeLoopDelay(h: IntervalHistogram, resolutionMs: number): LoopDelaySummary {
  if (h.count === 0) return { p50: 0, p99: 0, max: 0, mean: 0 };
  // Rounded after the subtraction: 1.11 − 1 in binary floating point is 0.1100000000000001.
  const ms = (ns: number) => Math.max(0, Math.round(ns / 1e4 - resolutionMs * 100) / 100);
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) };
}
