import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { QosSchema } from '../../../../edge/api/events.js';
import { BPL_NO_PLC, BPL_PLC, mosFromLoss, qosReport, summarizeQos } from '../../../../edge/media/qos.js';

const counts = (expected: number, received: number, jitterMs = 0, jitterMaxMs = 0) => ({
  expected,
  received,
  lost: Math.max(0, expected - received),
  jitterMs,
  jitterMaxMs,
});

describe('QoS report and E-model MOS', () => {
  it('gives the E-model ceiling, 4.41, without loss', () => {
    assert.equal(Math.round(mosFromLoss(0, BPL_NO_PLC) * 100) / 100, 4.41);
  });

  it('matches G.107 worked values: 1 % random loss is R 75.3 without PLC, R 89.5 with it', () => {
    // Ie,eff = 95 × Ppl / (Ppl + Bpl); R = 93.2 − Ie,eff; MOS = 1 + 0.035R + R(R − 60)(100 − R)·7e-6.
    const mos = (r: number) => 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;
    assert.ok(Math.abs(mosFromLoss(1, BPL_NO_PLC) - mos(93.2 - 95 / 5.3)) < 1e-9);
    assert.ok(Math.abs(mosFromLoss(1, BPL_PLC) - mos(93.2 - 95 / 26.1)) < 1e-9);
    assert.ok(mosFromLoss(1, BPL_NO_PLC) < mosFromLoss(1, BPL_PLC), 'concealment makes the same loss less audible');
    assert.ok(mosFromLoss(1, BPL_NO_PLC) > 3.7 && mosFromLoss(1, BPL_NO_PLC) < 3.9);
  });

  it('falls monotonically with loss and stays within 1–4.5', () => {
    let prev = 5;
    for (let loss = 0; loss <= 100; loss += 0.5) {
      const m = mosFromLoss(loss, BPL_NO_PLC);
      assert.ok(m <= prev && m >= 1 && m <= 4.5, `${loss} % → ${m}`);
      prev = m;
    }
    assert.ok(mosFromLoss(100, BPL_NO_PLC) < 1.5);
  });

  it('reports network loss, and weighs late packets into the MOS (a duplicate cancels out)', () => {
    // 1000 expected, 995 received of which 2 duplicates → 7 lost on the way; 4 late (2 of them the duplicates).
    const q = qosReport(counts(1000, 995, 1.234, 5.678), 4, BPL_NO_PLC);
    assert.equal(q.packetsLost, 5);
    assert.equal(q.lossPct, 0.5);
    assert.equal(q.packetsLate, 4);
    assert.equal(q.jitterMs, 1.23);
    assert.equal(q.jitterMaxMs, 5.68);
    // Missed by the bot: 1000 − 995 + 4 = 9 → 0.9 %.
    assert.equal(q.mos, Math.round(mosFromLoss(0.9, BPL_NO_PLC) * 100) / 100);
    assert.doesNotThrow(() => QosSchema.parse(q));
  });

  it('has no MOS for a span in which nothing was expected (a call on hold)', () => {
    const q = qosReport(counts(0, 0), 0, BPL_NO_PLC);
    assert.equal(q.mos, undefined);
    assert.equal(q.lossPct, 0);
    assert.doesNotThrow(() => QosSchema.parse(q));
  });

  it('summarises calls: loss over all packets, jitter and MOS across calls, callers that reported', () => {
    const a = { ...qosReport(counts(1000, 990, 2, 5), 0, BPL_NO_PLC), remote: { lossPct: 1, packetsLost: 3, jitterMs: 4 } };
    const b = qosReport(counts(3000, 3000, 6, 9), 0, BPL_NO_PLC);
    const held = qosReport(counts(0, 0), 0, BPL_NO_PLC);
    const s = summarizeQos([a, b, held]);
    assert.equal(s.calls, 3);
    assert.deepEqual([s.packetsExpected, s.packetsLost, s.lossPct], [4000, 10, 0.25]);
    assert.deepEqual(s.jitterMs, { p50: 2, p99: 6, max: 6 });
    assert.deepEqual(s.mos, { min: a.mos, p50: b.mos }, 'the call on hold has no MOS and is left out');
    assert.equal(s.remoteReports, 1);
    assert.equal(summarizeQos([]).mos, undefined);
  });
});
