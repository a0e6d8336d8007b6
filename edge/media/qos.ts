import type { RtpReceiveCounts } from '../../codecs/rtp-stats.js';
import type { Qos } from '../api/events.js';

/**
 * Packet-loss robustness factors (Bpl) for the E-model, from ITU-T G.113 Appendix I: G.711 without
 * packet-loss concealment, which is what a bot gets from a G.711 call (a lost packet is 20 ms the
 * bot never hears), and G.711 with PLC, which stands in for Opus (its decoder conceals; G.113 gives
 * no Opus figures).
 */
export const BPL_NO_PLC = 4.3;
export const BPL_PLC = 25.1;

/**
 * Listening-quality MOS from the share of packets lost, by the ITU-T G.107 E-model with its default
 * values (Ro − Is = 93.2), a codec with no impairment of its own (Ie = 0, as for G.711) and random
 * loss (BurstR = 1). Delay (Id) is left out: one end of a call cannot measure mouth-to-ear delay.
 * No loss gives 4.41, the E-model's ceiling for narrowband.
 */
export function mosFromLoss(lossPct: number, bpl: number): number {
  const ieEff = lossPct > 0 ? (95 * lossPct) / (lossPct + bpl) : 0;
  const r = 93.2 - ieEff;
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  // The cubic dips just under 1 for R below ≈ 6.5; MOS has no value under 1.
  return Math.max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6);
}

/**
 * A span's QoS from its RTP receive counts and the packets dropped on arrival as late or
 * duplicate (`late`). MOS counts what the bot did not get: lost on the way or arrived too late
 * (a duplicate is received twice and dropped once, so it cancels out).
 */
export function qosReport(counts: RtpReceiveCounts, late: number, bpl: number): Qos {
  const { expected, received, lost } = counts;
  const qos: Qos = {
    packetsExpected: expected,
    packetsReceived: received,
    packetsLost: lost,
    packetsLate: late,
    lossPct: expected > 0 ? round2((100 * lost) / expected) : 0,
    jitterMs: round2(counts.jitterMs),
    jitterMaxMs: round2(counts.jitterMaxMs),
  };
  if (expected > 0) {
    const missed = Math.min(expected, Math.max(0, expected - received + late));
    qos.mos = round2(mosFromLoss((100 * missed) / expected, bpl));
  }
  return qos;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** QoS across calls: the status reply's live view, the bench's per-run view. */
export interface QosSummary {
  calls: number;
  packetsExpected: number;
  packetsLost: number;
  packetsLate: number;
  /** Lost over expected, all calls together, %. */
  lossPct: number;
  /** Each call's jitter (at the end of its span), across calls, ms. */
  jitterMs: { p50: number; p99: number; max: number };
  /** Each call's highest jitter, across calls, ms. */
  jitterMaxMs: { p50: number; p99: number; max: number };
  /** Across the calls that have a MOS; absent when none has. */
  mos?: { min: number; p50: number };
  /** Calls whose caller has reported on our stream over RTCP. */
  remoteReports: number;
}

export function summarizeQos(list: readonly Qos[]): QosSummary {
  const sum = (f: (q: Qos) => number) => list.reduce((n, q) => n + f(q), 0);
  const expected = sum((q) => q.packetsExpected);
  const lost = sum((q) => q.packetsLost);
  const spread = (f: (q: Qos) => number) => {
    const v = list.map(f).sort((a, b) => a - b);
    return { p50: at(v, 0.5), p99: at(v, 0.99), max: v[v.length - 1] ?? 0 };
  };
  const mos = list.flatMap((q) => (q.mos === undefined ? [] : [q.mos])).sort((a, b) => a - b);
  return {
    calls: list.length,
    packetsExpected: expected,
    packetsLost: lost,
    packetsLate: sum((q) => q.packetsLate),
    lossPct: expected > 0 ? round2((100 * lost) / expected) : 0,
    jitterMs: spread((q) => q.jitterMs),
    jitterMaxMs: spread((q) => q.jitterMaxMs),
    ...(mos.length > 0 ? { mos: { min: mos[0]!, p50: at(mos, 0.5) } } : {}),
    remoteReports: list.filter((q) => q.remote !== undefined).length,
  };
}

function at(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
