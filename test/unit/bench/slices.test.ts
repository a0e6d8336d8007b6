import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SliceRecorder } from '../../../bench/slices.js';

describe('SliceRecorder (latency over the window\'s time)', () => {
  it('keeps each slice\'s largest value and its count over budget, by send stamp', () => {
    const r = new SliceRecorder(100, 30);
    const from = 5_000_000;
    r.record(from, 99_000); // before start(): no window yet
    r.start(from, from + 450_000); // 4.5 slices: 5
    r.record(from + 10_000, 12_000); // slice 0
    r.record(from + 99_999, 31_000); // slice 0, over
    r.record(from + 100_000, 30_000); // slice 1, at the budget: not over
    r.record(from + 350_000, 45_500); // slice 3, over
    r.record(from + 360_000, 20_000); // slice 3
    r.record(from - 1, 80_000); // before the window
    r.record(from + 500_000, 80_000); // after it
    const s = r.series();
    assert.deepEqual(s.maxMs, [31, 30, 0, 45.5, 0]);
    assert.deepEqual(s.over, [1, 0, 0, 1, 0]);
    assert.equal(s.slicesOver, 2);
    assert.equal(s.totalOver, 2);
    assert.equal(s.sliceMs, 100);
    assert.equal(s.overMs, 30);
  });

  it('counts across the 32-bit wrap of the µs clock, and starts afresh with each window', () => {
    const r = new SliceRecorder(100, 10);
    const from = 0xffff_ffff - 50_000; // the clock wraps 50 ms into the window
    r.start(from, (from + 400_000) % 0x1_0000_0000);
    r.record((from + 150_000) % 0x1_0000_0000, 11_000); // slice 1, after the wrap
    assert.deepEqual(r.series().over, [0, 1, 0, 0]);
    r.start(1_000, 201_000);
    assert.deepEqual(r.series(), { sliceMs: 100, maxMs: [0, 0], over: [0, 0], overMs: 10, slicesOver: 0, totalOver: 0 });
  });
});
