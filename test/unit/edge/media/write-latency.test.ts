import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WriteLatency } from '../../../../edge/media/write-latency.js';

describe('WriteLatency', () => {
  it('records each datagram of a turn from its stamp to the turn’s end, and starts a new window on reset', () => {
    const t = new WriteLatency();
    // Turn 1 ends at 10,000 µs: 100 datagrams stamped 1 … 100 µs before it.
    for (let i = 1; i <= 100; i++) t.add(10_000 - i);
    t.written(10_000);
    // Turn 2: one datagram 30 ms old.
    t.add(50_000);
    t.written(80_000);
    const s = t.summary(true);
    assert.equal(s.count, 101);
    assert.equal(s.max, 30);
    assert.equal(s.p50, 0.06, 'the median of 1 … 100 µs and 30 ms, by its 10 µs bucket’s upper edge');
    assert.equal(s.p99, 0.11, 'the 100th of 101: 100 µs, in the bucket up to 110');
    assert.deepEqual(t.summary(false), { p50: 0, p99: 0, max: 0, count: 0 });
  });

  it('reads stamps modulo 2^32 across the wrap, and keeps any number of datagrams in a turn', () => {
    const t = new WriteLatency();
    // 10,000 datagrams (past the first buffer's 4096) stamped 2 ms before a turn end just past the wrap.
    const end = 1_500;
    for (let i = 0; i < 10_000; i++) t.add((end - 2_000 + 0x100000000) % 0x100000000);
    t.written(end);
    const s = t.summary(false);
    assert.equal(s.count, 10_000);
    assert.equal(s.max, 2);
    assert.equal(s.p99, 2);
  });

  it('does not carry a turn’s datagrams into the next', () => {
    const t = new WriteLatency();
    t.add(0);
    t.written(5_000);
    t.written(900_000);
    assert.deepEqual(t.summary(false), { p50: 5, p99: 5, max: 5, count: 1 });
  });
});
