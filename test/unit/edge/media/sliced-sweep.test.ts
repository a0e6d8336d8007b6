import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SlicedSweep, sliceSize } from '../../../../edge/media/sliced-sweep.js';

describe('SlicedSweep', () => {
  it('visits every item once per lap, a slice at a time, continuing where the last slice stopped', () => {
    const items = new Map([1, 2, 3, 4, 5, 6, 7].map((n) => [n, n]));
    const sweep = new SlicedSweep(() => items.values());
    const seen: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const slice: number[] = [];
      sweep.visit(3, (n) => slice.push(n));
      seen.push(slice);
    }
    // The lap ends inside the third slice, which ends there; the fourth starts the next lap.
    assert.deepEqual(seen, [[1, 2, 3], [4, 5, 6], [7], [1, 2, 3]]);
  });

  it('sees items removed and added between slices', () => {
    const items = new Map([1, 2, 3, 4].map((n) => [n, n]));
    const sweep = new SlicedSweep(() => items.values());
    const seen: number[] = [];
    sweep.visit(2, (n) => seen.push(n));
    items.delete(3);
    items.set(5, 5);
    sweep.visit(10, (n) => seen.push(n));
    assert.deepEqual(seen, [1, 2, 4, 5]);
  });

  it('returns how many it visited, and visits nothing in an empty collection', () => {
    const items = new Map<number, number>();
    const sweep = new SlicedSweep(() => items.values());
    assert.equal(sweep.visit(5, () => assert.fail('nothing to visit')), 0);
    items.set(1, 1);
    assert.equal(sweep.visit(5, () => undefined), 1);
  });
});

describe('sliceSize', () => {
  it('spreads a lap over the slices of its period, at least one item a slice', () => {
    assert.equal(sliceSize(1000, 50, 1000), 50); // 20 slices a second, 50 calls each
    assert.equal(sliceSize(30, 50, 1000), 2);
    assert.equal(sliceSize(1, 50, 1000), 1);
    assert.equal(sliceSize(0, 50, 1000), 0);
  });
});
