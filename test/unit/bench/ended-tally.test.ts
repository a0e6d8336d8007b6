import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EndedTally } from '../../../bench/ended-tally.js';

const qos = (expected: number, lost: number, jitterMs: number, mos?: number) => ({
  packetsExpected: expected,
  packetsReceived: expected - lost,
  packetsLost: lost,
  packetsLate: 1,
  lossPct: (100 * lost) / expected,
  jitterMs,
  jitterMaxMs: jitterMs * 2,
  ...(mos === undefined ? {} : { mos }),
});

describe('EndedTally (the bench\'s view of the node\'s ended events)', () => {
  it('sums media counters and summarises QoS across calls', () => {
    const t = new EndedTally();
    t.add({ media: { rtpReceived: 10, rtpSent: 5 }, qos: qos(1000, 0, 1, 4.41) });
    t.add({ media: { rtpReceived: 20 }, qos: qos(1000, 10, 3, 3.9) });
    t.add({ media: { rtpReceived: 1 } }); // a call that never had media
    assert.equal(t.events, 3);
    assert.deepEqual(t.media, { rtpReceived: 31, rtpSent: 5 });
    const s = t.qos()!;
    assert.equal(s.calls, 2);
    assert.deepEqual([s.packetsExpected, s.packetsLost, s.packetsLate, s.lossPct], [2000, 10, 2, 0.5]);
    assert.deepEqual(s.jitterMs, { p50: 3, p99: 3, max: 3 });
    assert.deepEqual(s.jitterMaxMs.max, 6);
    assert.deepEqual(s.mos, { min: 3.9, p50: 4.41 });
  });

  it('has no QoS summary when no call reported one', () => {
    const t = new EndedTally();
    t.add({});
    assert.equal(t.qos(), undefined);
  });
});
