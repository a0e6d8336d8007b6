import assert from 'node:assert/strict';
import { createHistogram, type IntervalHistogram } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { summarizeLoopDelay } from '../../../edge/loop-delay.js';

describe('summarizeLoopDelay', () => {
  it('reads how late the loop was beyond the sampling period, in ms to 2 decimals, with no binary-fraction tails', () => {
    const h = createHistogram();
    // The sampler's intervals with a 1 ms period: 1.11 ms (0.11 late) ×98, 3.5 ms ×1, 21.004 ms ×1.
    for (let i = 0; i < 98; i++) h.record(1_110_000);
    h.record(3_500_000);
    h.record(21_004_000);
    const s = summarizeLoopDelay(h as unknown as IntervalHistogram, 1);
    assert.equal(s.p50, 0.11);
    assert.equal(s.p99, 2.5);
    assert.equal(s.max, 20);
    assert.equal(s.mean, 0.33);
  });

  it('reads zero before the first sample and never below zero', () => {
    assert.deepEqual(summarizeLoopDelay(createHistogram() as unknown as IntervalHistogram, 1), { p50: 0, p99: 0, max: 0, mean: 0 });
    const early = createHistogram();
    early.record(900_000);
    assert.equal(summarizeLoopDelay(early as unknown as IntervalHistogram, 1).p50, 0);
  });
});
