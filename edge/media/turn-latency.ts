import { Histogram } from '../histogram.js';

/** A latency summary, ms (p50/p99 are their 10 µs bucket's upper edge, max exact). */
export interface TurnLatencySummary {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

/**
 * The node's own part of caller → bot latency, datagram by datagram: from the kernel's arrival
 * stamp (native/rtp_io.cc, SO_TIMESTAMPNS) to the end of the event-loop turn that handled it.
 *
 * Why the turn's end: every frame made from the turn's packets has been written to its bot's
 * socket by then — the receive lane writes a per-call bot's frames as it goes, `ws` writes a
 * frame when it is sent, and a mux connection's batch leaves from a setImmediate scheduled
 * during the turn, which runs before the one that ends it (NativeRtpIo's `#turned`). A write to a
 * loopback or LAN socket is on its way once the call returns, so this is an upper bound of what
 * the node adds, free of the stalls of whoever sent the packet or reads the frame. What it cannot
 * see: a frame that waits in a connection's backlog behind a bot that does not read (counted as
 * loss or queue elsewhere), and the time the frame spends in the kernel on its way out.
 *
 * Pure: the stamps and the turn's end time come from the caller.
 */
export class TurnLatency {
  #stamps = new Uint32Array(4096);
  #n = 0;
  readonly #h = new Histogram();

  /** A datagram of this turn, stamped `arrivalUs` (µs mod 2^32 on CLOCK_MONOTONIC). */
  add(arrivalUs: number): void {
    if (this.#n === this.#stamps.length) {
      const grown = new Uint32Array(this.#stamps.length * 2);
      grown.set(this.#stamps);
      this.#stamps = grown;
    }
    this.#stamps[this.#n++] = arrivalUs;
  }

  /** The turn ended at `nowUs` (same clock): each of its datagrams' latency is recorded. */
  turnEnded(nowUs: number): void {
    const stamps = this.#stamps;
    // µs mod 2^32, as the stamps are; `| 0` keeps a stamp a µs or two ahead of now (two clocks'
    // calibration) negative, which the histogram counts apart.
    for (let i = 0; i < this.#n; i++) this.#h.record((nowUs - stamps[i]!) | 0);
    this.#n = 0;
  }

  /** The window so far; `reset` starts a new one. */
  summary(reset: boolean): TurnLatencySummary {
    const s = { ...this.#h.summaryMs(), count: this.#h.count };
    if (reset) this.#h.reset();
    return s;
  }
}
