/**
 * Two capacity runs of the same load, side by side: the native path and its fallback (issue 6
 * asks for both measured in one run). Pure: takes the two result.json objects, gives the figures
 * next to each other and the ratios fallback / native (> 1: the fallback costs more).
 */
import type { BenchResult } from './run.js';

export interface SideBySide {
  scenario: string;
  calls: number;
  figures: Record<string, { native: number; dgram: number; dgram_over_native: number | null }>;
}

const ratio = (dgram: number, native: number): number | null => (native > 0 ? Math.round((dgram / native) * 1000) / 1000 : null);

export function compareRuns(r: { native: BenchResult; dgram: BenchResult }): SideBySide {
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
    const dgram = get(r.dgram);
    figures[name] = { native, dgram, dgram_over_native: ratio(dgram, native) };
  }
  return { scenario: r.native.scenario.replace(/:rtp-native$/, ''), calls: r.native.calls_target, figures };
}
