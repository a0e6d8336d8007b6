import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { callsWithin, parseProcLimits, readFileLimit } from '../../../edge/file-limit.js';

describe('open-files limit', () => {
  it('reads /proc/<pid>/limits, unlimited as -1', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax processes             unlimited            unlimited            processes\nMax open files            1024                 524288               files\n';
    assert.deepEqual(parseProcLimits(text), { soft: 1024, hard: 524288 });
    assert.deepEqual(parseProcLimits('Max open files            unlimited            unlimited            files'), { soft: -1, hard: -1 });
    assert.equal(parseProcLimits('nothing here'), undefined);
  });

  it('counts three descriptors a call after 256 for the rest', () => {
    assert.equal(callsWithin(1024), 256);
    assert.equal(callsWithin(6256), 2000);
    assert.equal(callsWithin(100), 0);
    assert.equal(callsWithin(-1), Number.POSITIVE_INFINITY);
  });

  it("reads this process's limit, which Node has already raised to the hard one", () => {
    const now = readFileLimit()!;
    assert.ok(now.soft === now.hard || now.hard === -1, `soft ${now.soft}, hard ${now.hard}`);
  });
});
