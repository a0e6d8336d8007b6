import type { Qos } from '../edge/api/events.js';
import { summarizeQos } from '../edge/media/qos.js';

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
    if (this.#qos.length === 0) return undefined;
    const q = summarizeQos(this.#qos);
    return {
      calls: q.calls,
      packets_expected: q.packetsExpected,
      packets_lost: q.packetsLost,
      packets_late: q.packetsLate,
      loss_pct: q.lossPct,
      jitter_ms: q.jitterMs,
      jitter_max_ms: q.jitterMaxMs,
      mos: q.mos ?? { min: 0, p50: 0 },
    };
  }
}
