import type { Qos } from '../edge/api/events.js';

/** The node's QoS of the callers' streams over a run, from its `ended` events (docs/nats-api.md). */
export interface EdgeQosSummary {
  calls: number;
  packets_expected: number;
  packets_lost: number;
  packets_late: number;
  loss_pct: number;
  /** Each call's interarrival jitter at its end, and the highest it reached, across calls (ms). */
  jitter_ms: { p50: number; p99: number; max: number };
  jitter_max_ms: { p50: number; p99: number; max: number };
  mos: { min: number; p50: number };
}

/**
 * What the media node says about each call in its `ended` events: media counters summed over the
 * run, QoS summarised across calls. Whole calls, not only the measuring window.
 */
export class EndedTally {
  events = 0;
  readonly media: Record<string, number> = {};
  readonly #qos: Qos[] = [];

  add(ev: { media?: Record<string, number>; qos?: Qos }): void {
    this.events++;
    for (const [k, v] of Object.entries(ev.media ?? {})) this.media[k] = (this.media[k] ?? 0) + v;
    if (ev.qos) this.#qos.push(ev.qos);
  }

  qos(): EdgeQosSummary | undefined {
    const q = this.#qos;
    if (q.length === 0) return undefined;
    const sum = (f: (x: Qos) => number) => q.reduce((n, x) => n + f(x), 0);
    const expected = sum((x) => x.packetsExpected);
    const lost = sum((x) => x.packetsLost);
    const spread = (f: (x: Qos) => number) => {
      const v = q.map(f).sort((a, b) => a - b);
      return { p50: at(v, 0.5), p99: at(v, 0.99), max: v[v.length - 1]! };
    };
    const mos = q.flatMap((x) => (x.mos === undefined ? [] : [x.mos])).sort((a, b) => a - b);
    return {
      calls: q.length,
      packets_expected: expected,
      packets_lost: lost,
      packets_late: sum((x) => x.packetsLate),
      loss_pct: expected > 0 ? Math.round((1e4 * lost) / expected) / 100 : 0,
      jitter_ms: spread((x) => x.jitterMs),
      jitter_max_ms: spread((x) => x.jitterMaxMs),
      mos: { min: mos[0] ?? 0, p50: at(mos, 0.5) },
    };
  }
}

function at(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
