/**
 * Receive statistics for one incoming RTP stream, kept the way RFC 3550 keeps them for reception
 * reports: packets expected from the extended highest sequence number, packets received, the
 * cumulative and per-interval loss (appendix A.1, A.3) and the interarrival jitter (§6.4.1, A.8).
 * A pure processor: the caller passes each packet's SSRC, sequence number, timestamp and arrival.
 *
 * No probation for a new source (A.1's MIN_SEQUENTIAL): RtpPeer has already accepted its address.
 * A restarted sender — a new SSRC, or a jump of more than MAX_DROPOUT ahead or MAX_MISORDER back
 * that the next packet continues — starts a new run; the finished runs' counts are kept, so a
 * call's totals span every sender it had.
 */

const SEQ_MOD = 0x10000;
/** A.1's defaults: a jump ahead this large, or back this far, is not the same run of packets. */
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;

export interface RtpReceiveCounts {
  /** Packets the sequence numbers say were sent (highest − first + 1, over every run). */
  expected: number;
  /** Packets received, duplicates and late ones included, as RFC 3550 counts them. */
  received: number;
  /** expected − received, never below 0 (duplicates can make the difference negative). */
  lost: number;
  /** Interarrival jitter at the end of the span, ms. */
  jitterMs: number;
  /** Highest interarrival jitter reached in the span, ms. */
  jitterMaxMs: number;
}

/**
 * The words of a stream's state, in a Float64Array (every value is an integer below 2^53 or the
 * jitter): the receive lane (native/rx_lane.cc) updates the same array for the packets it takes, so
 * both keep one set of figures. The native side exports the same layout (`rxLaneLayout.rxWords`),
 * and edge/media/rx-lane.ts checks the two agree before using it.
 */
export const RX = {
  started: 0,
  ssrc: 1,
  /** The current run: its first sequence number, highest one, wraps (×2^16) and the packets it had. */
  base: 2,
  maxSeq: 3,
  cycles: 4,
  received: 5,
  /** A.1's bad_seq: the sequence number that would confirm a jump as a restart (none: 2^16 + 1). */
  badSeq: 6,
  /** Runs before the current one (a restarted sender). */
  doneExpected: 7,
  doneReceived: 8,
  /** Jitter in timestamp units (A.8 keeps it that way; converted to ms only when read). */
  jitter: 9,
  jitterMax: 10,
  intervalJitterMax: 11,
  timed: 12,
  lastArrivalUs: 13,
  lastTimestamp: 14,
  clockRate: 15,
} as const;
export const RX_WORDS = 16;

export class RtpReceiveStats {
  readonly #s: Float64Array;
  /** Totals when `interval()` was last read, and when the last reception report was built. */
  #priorExpected = 0;
  #priorReceived = 0;
  #reportExpected = 0;
  #reportReceived = 0;

  /**
   * `clockRate`: the payload's RTP clock, Hz (8000 for G.711, 48000 for Opus). `state`: where to
   * keep the figures (RX_WORDS words, cleared here), when something else shares them.
   */
  constructor(
    readonly clockRate: number,
    state: Float64Array = new Float64Array(RX_WORDS),
  ) {
    this.#s = state;
    state.fill(0);
    state[RX.badSeq] = SEQ_MOD + 1;
    state[RX.clockRate] = clockRate;
  }

  /**
   * One received packet. `arrivalUs`: when it was read, µs mod 2^32 on a monotonic clock.
   * `timed`: its timestamp is the sampling instant of its audio, so it counts toward jitter
   * (false for RFC 4733 events, which repeat their event's start). Returns false for a packet that
   * is not counted: the first of a jump that a second packet has not yet confirmed (A.1).
   */
  packet(ssrc: number, seq: number, timestamp: number, arrivalUs: number, timed: boolean): boolean {
    const s = this.#s;
    if (s[RX.started] !== 1 || ssrc !== s[RX.ssrc]) {
      this.#restart(ssrc, seq);
    } else {
      const maxSeq = s[RX.maxSeq]!;
      const ahead = (seq - maxSeq) & 0xffff;
      if (ahead < MAX_DROPOUT) {
        // In order, with a gap of fewer than MAX_DROPOUT: a smaller number means it wrapped.
        if (seq < maxSeq) s[RX.cycles]! += SEQ_MOD;
        s[RX.maxSeq] = seq;
      } else if (ahead <= SEQ_MOD - MAX_MISORDER) {
        // A large jump: one stray packet, or a sender that restarted. Follow it once the next
        // packet continues it.
        if (seq !== s[RX.badSeq]) {
          s[RX.badSeq] = (seq + 1) & 0xffff;
          return false;
        }
        this.#restart(ssrc, seq);
      }
      // Otherwise a duplicate or a late packet (up to MAX_MISORDER back): received, max unchanged.
    }
    s[RX.received]!++;
    if (timed) this.#time(timestamp, arrivalUs);
    return true;
  }

  /** A.8: J += (|D| − J) / 16, D the change in transit time between consecutive packets. */
  #time(timestamp: number, arrivalUs: number): void {
    const s = this.#s;
    if (s[RX.timed] === 1) {
      // Both differences mod 2^32: arrival stamps and RTP timestamps wrap.
      const arrived = (((arrivalUs - s[RX.lastArrivalUs]!) >>> 0) * this.clockRate) / 1e6;
      const d = arrived - ((timestamp - s[RX.lastTimestamp]!) | 0);
      const jitter = s[RX.jitter]! + (Math.abs(d) - s[RX.jitter]!) / 16;
      s[RX.jitter] = jitter;
      if (jitter > s[RX.jitterMax]!) s[RX.jitterMax] = jitter;
      if (jitter > s[RX.intervalJitterMax]!) s[RX.intervalJitterMax] = jitter;
    }
    s[RX.timed] = 1;
    s[RX.lastArrivalUs] = arrivalUs;
    s[RX.lastTimestamp] = timestamp;
  }

  #restart(ssrc: number, seq: number): void {
    const s = this.#s;
    s[RX.doneExpected]! += this.#runExpected();
    s[RX.doneReceived]! += s[RX.received]!;
    s[RX.started] = 1;
    s[RX.ssrc] = ssrc;
    s[RX.base] = seq;
    s[RX.maxSeq] = seq;
    s[RX.cycles] = 0;
    s[RX.received] = 0;
    s[RX.badSeq] = SEQ_MOD + 1;
    // A new sender has a new timestamp origin: its first packet has no transit to compare with.
    s[RX.timed] = 0;
  }

  #runExpected(): number {
    const s = this.#s;
    return s[RX.started] === 1 ? s[RX.cycles]! + s[RX.maxSeq]! - s[RX.base]! + 1 : 0;
  }

  /** Packets expected and received over every run so far. */
  get #expectedTotal(): number {
    return this.#s[RX.doneExpected]! + this.#runExpected();
  }

  get #receivedTotal(): number {
    return this.#s[RX.doneReceived]! + this.#s[RX.received]!;
  }

  /** Since the first packet. */
  get total(): RtpReceiveCounts {
    const expected = this.#expectedTotal;
    const received = this.#receivedTotal;
    return { expected, received, lost: Math.max(0, expected - received), jitterMs: this.#ms(this.#s[RX.jitter]!), jitterMaxMs: this.#ms(this.#s[RX.jitterMax]!) };
  }

  /** Since the previous call (or the first packet), for periodic samples (A.3's interval loss). */
  interval(): RtpReceiveCounts {
    const expected = this.#expectedTotal;
    const received = this.#receivedTotal;
    const e = expected - this.#priorExpected;
    const r = received - this.#priorReceived;
    this.#priorExpected = expected;
    this.#priorReceived = received;
    const jitterMaxMs = this.#ms(this.#s[RX.intervalJitterMax]!);
    this.#s[RX.intervalJitterMax] = this.#s[RX.jitter]!;
    return { expected: e, received: r, lost: Math.max(0, e - r), jitterMs: this.#ms(this.#s[RX.jitter]!), jitterMaxMs };
  }

  /**
   * The figures of an RTCP reception report block about the current sender (RFC 3550 §6.4.1, A.3):
   * fraction lost since the previous call, cumulative lost, extended highest sequence number,
   * jitter in timestamp units. Undefined before the first packet.
   */
  receptionReport(): { ssrc: number; fractionLost: number; cumulativeLost: number; extendedHighestSeq: number; jitter: number } | undefined;
  /** The same, written into `into` (an RTCP session's own block, reused report after report): false before any packet. */
  receptionReport<T extends { ssrc: number; fractionLost: number; cumulativeLost: number; extendedHighestSeq: number; jitter: number }>(into: T): boolean;
  receptionReport(into?: { ssrc: number; fractionLost: number; cumulativeLost: number; extendedHighestSeq: number; jitter: number }): unknown {
    const s = this.#s;
    if (s[RX.started] !== 1) return into ? false : undefined;
    const expected = this.#expectedTotal;
    const received = this.#receivedTotal;
    const e = expected - this.#reportExpected;
    const lost = e - (received - this.#reportReceived);
    this.#reportExpected = expected;
    this.#reportReceived = received;
    const r = into ?? { ssrc: 0, fractionLost: 0, cumulativeLost: 0, extendedHighestSeq: 0, jitter: 0 };
    r.ssrc = s[RX.ssrc]!;
    r.fractionLost = e === 0 || lost <= 0 ? 0 : Math.min(255, Math.floor((lost * 256) / e));
    r.cumulativeLost = expected - received;
    r.extendedHighestSeq = (s[RX.cycles]! + s[RX.maxSeq]!) >>> 0;
    r.jitter = Math.floor(s[RX.jitter]!);
    return into ? true : r;
  }

  #ms(units: number): number {
    return (units * 1000) / this.clockRate;
  }
}
