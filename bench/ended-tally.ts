import type { Qos } from '../edge/api/events.js';
import { summarizeQos, type QosSummary } from '../edge/media/qos.js';

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

  /** Across the calls that reported QoS (field names as the node's, like `edge_media_stats`). */
  qos(): QosSummary | undefined {
    return this.#qos.length === 0 ? undefined : summarizeQos(this.#qos);
  }
}
