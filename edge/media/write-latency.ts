import { Histogram } from '../histogram.js';

/** A latency summary, ms (p50/p99 are their 10 µs bucket's upper edge, max exact). */
export interface WriteLatencySummary {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

/**
 * The node's own part of caller → bot latency, datagram by datagram: from the kernel's arrival
 * stamp (native/rtp_io.cc, SO_TIMESTAMPNS) to the moment every frame made from the datagrams of its
 * arena has been written to its bot's socket (NativeRtpIo calls `written`).
 *
 * That moment: the receive lane writes a per-call bot's frames as it goes and `ws` writes a frame
 * when it is sent, both while the arena is read; a mux connection's batch leaves right after
 * (NativeRtpIo.afterInbound, MuxConnection.flushScheduled) — or, without that hook, from a
 * setImmediate scheduled while the arena was read, which runs before the one that ends the turn,
 * and `written` is called there. A write to a loopback or LAN socket is on its way once the call
 * returns, so this is what the node adds, free of the stalls of whoever sent the packet or reads
 * the frame. What it cannot see: a frame that waits in a connection's backlog behind a bot that
 * does not read (loss or queue, seen elsewhere), an Opus call's frames (decoded by a worker, they
 * leave a turn or more later), and the kernel's own time on the way out.
 *
 * Pure: the stamps and the time come from the caller.
 */
export class WriteLatency {
  #stamps = new Uint32Array(4096);
  #n = 0;
  readonly #h = new Histogram();

  /** A datagram of the arena being read, stamped `arrivalUs` (µs mod 2^32 on CLOCK_MONOTONIC). */
  add(arrivalUs: number): void {
    if (this.#n === this.#stamps.length) {
      const grown = new Uint32Array(this.#stamps.length * 2);
      grown.set(this.#stamps);
      this.#stamps = grown;
    }
    this.#stamps[this.#n++] = arrivalUs;
  }

  /** The arena's frames were all written by `nowUs` (same clock): each datagram's latency is recorded. */
  written(nowUs: number): void {
    const stamps = this.#stamps;
    // µs mod 2^32, as the stamps are; `| 0` keeps a stamp a µs or two ahead of now (two clocks'
    // calibration) negative, which the histogram counts apart.
    for (let i = 0; i < this.#n; i++) this.#h.record((nowUs - stamps[i]!) | 0);
    this.#n = 0;
  }

  /** The window so far; `reset` starts a new one. */
  summary(reset: boolean): WriteLatencySummary {
    const s = { ...this.#h.summaryMs(), count: this.#h.count };
    if (reset) this.#h.reset();
    return s;
  }
}
