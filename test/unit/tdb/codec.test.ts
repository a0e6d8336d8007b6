import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteReader, ByteWriter, pkKey, type SqlValue } from '../../../tdb/codec.js';
import { FrameError } from '../../../tdb/errors.js';
import { compareVersion, Hlc, HLC_TICKS_PER_MS } from '../../../tdb/hlc.js';
import { ChangesEncoder, decodeChanges, decodeSnapshot, encodeSnapshot, OP_DELETE, OP_UPSERT, type TxChange } from '../../../tdb/payload.js';

const T = { timeout: 5000 };
const VALUES: SqlValue[] = [null, 0, 1, -1, 2 ** 40, -(2 ** 52), 1.5, -0, NaN, Infinity, '', 'héllo ✓', 'x'.repeat(300), new Uint8Array([0, 255, 7]), 2n ** 62n, -(2n ** 63n)];

describe('tdb codec', () => {
  it('every SQL value round-trips', T, () => {
    const w = new ByteWriter(4);
    for (const v of VALUES) w.value(v);
    const r = new ByteReader(w.finish());
    for (const v of VALUES) assert.deepEqual(r.value(), v);
    r.end();
  });

  it('varints round-trip up to 2^53', T, () => {
    const nums = [0, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
    const w = new ByteWriter();
    for (const n of nums) w.varint(n);
    const r = new ByteReader(w.finish());
    for (const n of nums) assert.equal(r.varint(), n);
  });

  it('every truncation of a valid encoding is a FrameError, never a RangeError', T, () => {
    const w = new ByteWriter();
    for (const v of VALUES) w.value(v);
    const full = w.finish();
    for (let len = 0; len < full.length; len++) {
      const r = new ByteReader(full.subarray(0, len));
      assert.throws(() => {
        for (let i = 0; i < VALUES.length; i++) r.value();
      }, FrameError);
    }
  });

  it('unknown value tags and invalid UTF-8 are malformed', T, () => {
    assert.throws(() => new ByteReader(Uint8Array.of(9)).value(), (e: unknown) => e instanceof FrameError && e.kind === 'malformed');
    assert.throws(() => new ByteReader(Uint8Array.of(3, 2, 0xc3, 0x28)).value(), FrameError);
  });

  it('primary-key map keys do not collide across types or separators', T, () => {
    const keys = [pkKey('t', [1]), pkKey('t', ['1']), pkKey('t', ['a\0sb']), pkKey('t', ['a', 'b']), pkKey('t', [null]), pkKey('u', [1])];
    assert.equal(new Set(keys).size, keys.length);
  });
});

describe('tdb payloads', () => {
  it('a changes payload round-trips', T, () => {
    const txs: TxChange[] = [
      { hlc: 123.0, ddl: ['CREATE TABLE x (a PRIMARY KEY)'], rows: [{ table: 'x', op: OP_UPSERT, owner: 'w1', values: [1, 'a', null] }] },
      { hlc: 124, ddl: [], rows: [{ table: 'x', op: OP_DELETE, owner: undefined, values: [1] }] },
    ];
    const enc = new ChangesEncoder();
    for (const tx of txs) enc.add(tx);
    assert.deepEqual(decodeChanges(enc.finish()), txs);
  });

  it('a snapshot payload round-trips', T, () => {
    const s = {
      vector: new Map([['a/1', 5], ['b/2', 9]]),
      tables: new Map([['x', 'CREATE TABLE x (a PRIMARY KEY)']]),
      rows: [
        { table: 'x', op: OP_UPSERT as typeof OP_UPSERT, hlc: 10, origin: 'a/1', owner: 'a', values: [1] as SqlValue[] },
        { table: 'x', op: OP_DELETE as typeof OP_DELETE, hlc: 11, origin: 'b/2', owner: undefined, values: [2] as SqlValue[] },
      ],
    };
    assert.deepEqual(decodeSnapshot(encodeSnapshot(s)), s);
  });

  it('truncated payloads are FrameErrors', T, () => {
    const enc = new ChangesEncoder();
    enc.add({ hlc: 1, ddl: [], rows: [{ table: 'x', op: OP_UPSERT, owner: undefined, values: [1, 'abc'] }] });
    const full = enc.finish();
    for (let len = 0; len < full.length; len++) assert.throws(() => decodeChanges(full.subarray(0, len)), FrameError);
    assert.throws(() => decodeChanges(Uint8Array.of(...full, 0)), FrameError);
  });
});

describe('hybrid logical clock', () => {
  it('is strictly increasing even when the wall clock stalls or steps back', T, () => {
    let wall = 1000;
    const c = new Hlc(() => wall);
    const a = c.now();
    const b = c.now();
    wall = 900;
    const d = c.now();
    assert.ok(a < b && b < d);
    assert.equal(Math.floor(a / HLC_TICKS_PER_MS), 1000);
  });

  it('orders after every observed remote timestamp', T, () => {
    const c = new Hlc(() => 1000);
    c.observe(5000 * HLC_TICKS_PER_MS + 7);
    assert.ok(c.now() > 5000 * HLC_TICKS_PER_MS + 7);
  });

  it('breaks clock ties by origin', T, () => {
    assert.ok(compareVersion(5, 'b/1', 5, 'a/9') > 0);
    assert.ok(compareVersion(5, 'a/1', 6, 'a/1') < 0);
    assert.equal(compareVersion(5, 'a/1', 5, 'a/1'), 0);
  });
});
