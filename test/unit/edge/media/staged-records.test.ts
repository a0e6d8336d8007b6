import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { STAGED_HEADER, StagedRecords } from '../../../../edge/media/staged-records.js';

describe('StagedRecords', () => {
  it('lays out each packet after its header, padded to 4 bytes, growing past its first buffer and keeping what it held', () => {
    const batch = new StagedRecords();
    const packet = new Uint8Array(175);
    const n = 1000; // 1000 × (12 + 176) bytes: more than the first 64 kB
    for (let i = 0; i < n; i++) {
      packet.fill(i & 0xff);
      batch.add(i, packet, 173, 0x7f000001, 40000 + i);
    }
    assert.equal(batch.count, n);
    assert.equal(batch.length, n * (STAGED_HEADER + 176));
    const view = new DataView(batch.bytes.buffer);
    for (const i of [0, 348, n - 1]) {
      const off = i * (STAGED_HEADER + 176);
      assert.deepEqual(
        [view.getUint32(off, true), view.getUint32(off + 4, true), view.getUint16(off + 8, true), view.getUint16(off + 10, true)],
        [i, 0x7f000001, 40000 + i, 173],
        `record ${i}'s header`,
      );
      assert.ok(batch.bytes.subarray(off + STAGED_HEADER, off + STAGED_HEADER + 173).every((b) => b === (i & 0xff)), `record ${i}'s packet`);
    }
    batch.clear();
    assert.equal(batch.length, 0);
    assert.equal(batch.count, 0);
  });
});
