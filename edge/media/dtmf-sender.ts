import { digitToEvent } from '../../codecs/telephone-event.js';

/**
 * Turns digits to send into one RFC 4733 telephone-event packet per 20 ms tick. Pure: `next()`
 * is called once per tick and says what that tick sends.
 *
 * Per digit (RFC 4733 §2.5.1): packets every tick carrying the same RTP timestamp (the event's
 * start), the marker bit on the first, `duration` growing by one tick; the last packet has the E
 * bit and is sent three times (§2.5.1.4: end packets are retransmitted for loss). Then `gapMs` of
 * normal audio before the next digit. Volume 10 (-10 dBm0), a usual level for DTMF.
 */
export type DtmfStep =
  | { kind: 'event'; event: number; end: boolean; durationUnits: number; marker: boolean; volume: number; startsEvent: boolean }
  | { kind: 'gap' };

const TICK_UNITS = 160; // 20 ms at 8 kHz
const END_REPEATS = 3;

export class DtmfSender {
  #queue: { event: number; ticks: number }[] = [];
  #cur: { event: number; ticks: number; sent: number; ends: number } | undefined;
  #gap = 0;

  constructor(readonly gapMs = 60) {}

  /** Queues digits (0-9 * # A-D; anything else is skipped). Returns how many were queued. */
  enqueue(digits: string, durationMs: number): number {
    let n = 0;
    const ticks = Math.max(2, Math.round(durationMs / 20));
    for (const d of digits) {
      const event = digitToEvent(d);
      if (event === undefined) continue;
      this.#queue.push({ event, ticks });
      n++;
    }
    return n;
  }

  /** True while digits are being sent or wait (including the gaps between them). */
  get active(): boolean {
    return this.#cur !== undefined || this.#queue.length > 0 || this.#gap > 0;
  }

  /** What this tick sends: a telephone-event packet, a gap tick, or nothing (idle). */
  next(): DtmfStep | undefined {
    if (!this.#cur) {
      if (this.#gap > 0) {
        this.#gap--;
        return { kind: 'gap' };
      }
      const q = this.#queue.shift();
      if (!q) return undefined;
      this.#cur = { ...q, sent: 0, ends: 0 };
    }
    const c = this.#cur;
    const startsEvent = c.sent === 0 && c.ends === 0;
    if (c.sent < c.ticks - 1) {
      c.sent++;
      return { kind: 'event', event: c.event, end: false, durationUnits: c.sent * TICK_UNITS, marker: startsEvent, volume: 10, startsEvent };
    }
    c.ends++;
    const step: DtmfStep = { kind: 'event', event: c.event, end: true, durationUnits: c.ticks * TICK_UNITS, marker: startsEvent, volume: 10, startsEvent };
    if (c.ends >= END_REPEATS) {
      this.#cur = undefined;
      this.#gap = Math.round(this.gapMs / 20);
    }
    return step;
  }

  clear(): void {
    this.#queue = [];
    this.#cur = undefined;
    this.#gap = 0;
  }
}
