/**
 * Two capacity runs of the same load, side by side: the native path and its fallback (issue 6
 * asks for both measured in one run). The fallback is either the node:dgram RTP I/O with the rest
 * of the addon on (`--rtp-io both`) or the media node with no addon at all (`--addon both`:
 * TypeScript G.711, resampler and playout, node:dgram). Pure: takes the two result.json objects,
 * gives the figures next to each other and the ratios fallback / native (> 1: the fallback costs
 * more).
 */
import type { BenchResult } from './run.js';

export type FallbackKind = 'dgram' | 'no-addon';

export interface SideBySide {
  scenario: string;
  calls: number;
  /** Which fallback ran against the native path. */
  fallback: FallbackKind;
  figures: Record<string, { native: number; fallback: number; fallback_over_native: number | null }>;
}

const ratio = (fallback: number, native: number): number | null => (native > 0 ? Math.round((fallback / native) * 1000) / 1000 : null);

export function compareRuns(r: { native: BenchResult; fallback: BenchResult; kind: FallbackKind }): SideBySide {
  const pick: Record<string, (x: BenchResult) => number> = {
    cpu_us_per_call_second: (x) => x.cpu_us_per_call_second,
    rss_kb_per_call: (x) => x.rss_kb_per_call,
    loss_caller_to_bot: (x) => x.loss_caller_to_bot,
    loss_bot_to_caller: (x) => x.loss_bot_to_caller,
    caller_to_bot_p99_ms: (x) => x.latency_ms.caller_to_bot.p99,
    bot_to_caller_p99_ms: (x) => x.latency_ms.bot_to_caller.p99,
    event_loop_delay_p99_ms: (x) => x.event_loop_delay_ms?.p99 ?? 0,
    calls_failed: (x) => x.calls_failed,
  };
  const figures: SideBySide['figures'] = {};
  for (const [name, get] of Object.entries(pick)) {
    const native = get(r.native);
    const fallback = get(r.fallback);
    figures[name] = { native, fallback, fallback_over_native: ratio(fallback, native) };
  }
  return { scenario: r.native.scenario.replace(/:rtp-native$/, ''), calls: r.native.calls_target, fallback: r.kind, figures };
}
