import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RECORD_HEADER_BYTES, RecordWriter, readRecords, samplesOf, tagJson } from '../../../sdk/mux-wire.js';

function collect(msg: Buffer) {
  const out: { stream: number; samples: number[] }[] = [];
  const problem = readRecords(msg, (stream, bytes) => out.push({ stream, samples: [...samplesOf(bytes)] }));
  return { out, problem };
}

describe('native-mux records', { timeout: 5000 }, () => {
  it('round-trips frames of several streams in one message, in order', () => {
    const w = new RecordWriter(8);
    w.add(1, Int16Array.from([1, -2, 3]));
    w.add(7, Int16Array.from([32767, -32768]));
    w.add(1, new Uint8Array([4, 0]));
    assert.equal(w.records, 3);
    const msg = w.take()!;
    assert.equal(msg.length, 3 * RECORD_HEADER_BYTES + 6 + 4 + 2);
    const { out, problem } = collect(msg);
    assert.equal(problem, undefined);
    assert.deepEqual(out, [
      { stream: 1, samples: [1, -2, 3] },
      { stream: 7, samples: [32767, -32768] },
      { stream: 1, samples: [4] },
    ]);
  });

  it('lays a record out as stream id, byte length (uint32 LE) and the PCM bytes', () => {
    const w = new RecordWriter();
    w.add(0x01020304, Int16Array.from([0x0506]));
    assert.deepEqual([...w.take()!], [4, 3, 2, 1, 2, 0, 0, 0, 6, 5]);
  });

  it('hands over a fresh buffer each take, so a message still in the socket is never rewritten', () => {
    const w = new RecordWriter();
    w.add(1, Int16Array.from([1]));
    const a = w.take()!;
    w.add(2, Int16Array.from([2]));
    const b = w.take()!;
    assert.notEqual(a.buffer, b.buffer);
    assert.equal(a.readUInt32LE(0), 1);
    assert.equal(w.take(), undefined, 'empty writer gives nothing');
  });

  it('with reuse, writes every message into the same buffer (for a consumer that copies as it sends)', () => {
    // Above Buffer's pool size, so every buffer is its own ArrayBuffer and identity means reuse.
    const w = new RecordWriter(16 * 1024, true);
    w.add(1, Int16Array.of(1, 2));
    const first = w.take()!;
    const firstCopy = Buffer.from(first);
    const got: number[][] = [];
    readRecords(firstCopy, (id, bytes) => got.push([id, ...samplesOf(bytes)]));
    assert.deepEqual(got, [[1, 1, 2]]);
    w.add(2, Int16Array.of(3));
    const second = w.take()!;
    assert.equal(second.buffer, first.buffer, 'no new buffer for the second message');
    assert.equal(second.byteOffset, first.byteOffset);
    got.length = 0;
    readRecords(second, (id, bytes) => got.push([id, ...samplesOf(bytes)]));
    assert.deepEqual(got, [[2, 3]]);
    // A message larger than the buffer grows it once, then that buffer is kept.
    for (let i = 0; i < 40; i++) w.add(i, new Int16Array(320).fill(i));
    const big = w.take()!;
    assert.equal(big.length, 40 * (RECORD_HEADER_BYTES + 640));
    assert.notEqual(big.buffer, first.buffer, 'grown');
    w.add(7, Int16Array.of(7));
    const after = w.take()!;
    assert.equal(after.buffer, big.buffer);
    assert.equal(after.byteOffset, big.byteOffset);
  });

  it('accepts an empty message and zero-length records', () => {
    assert.deepEqual(collect(Buffer.alloc(0)), { out: [], problem: undefined });
    const w = new RecordWriter();
    w.add(3, new Int16Array(0));
    assert.deepEqual(collect(w.take()!).out, [{ stream: 3, samples: [] }]);
  });

  it('visits the whole records before a truncated header and reports where it broke', () => {
    const w = new RecordWriter();
    w.add(1, Int16Array.from([9]));
    const msg = Buffer.concat([w.take()!, Buffer.from([1, 0, 0])]);
    const { out, problem } = collect(msg);
    assert.deepEqual(out, [{ stream: 1, samples: [9] }]);
    assert.equal(problem?.kind, 'truncated-header');
    assert.equal(problem?.offset, 10);
  });

  it('reports a record whose length runs past the message end', () => {
    const msg = Buffer.alloc(12);
    msg.writeUInt32LE(5, 0);
    msg.writeUInt32LE(640, 4);
    const { out, problem } = collect(msg);
    assert.deepEqual(out, []);
    assert.equal(problem?.kind, 'truncated-record');
  });

  it('steps over the records of the stream it is told to skip, and still reports a truncated one after them', () => {
    const w = new RecordWriter(8);
    w.add(0xffffffff, Int16Array.of(9, 9));
    w.add(2, Int16Array.of(5));
    w.add(0xffffffff, Int16Array.of(9));
    const msg = Buffer.concat([w.take()!, Buffer.from([1, 0, 0, 0, 50, 0, 0, 0, 1])]);
    const seen: number[] = [];
    const problem = readRecords(msg, (id) => seen.push(id), 0xffffffff);
    assert.deepEqual(seen, [2]);
    assert.equal(problem?.kind, 'truncated-record');
    const all: number[] = [];
    readRecords(msg, (id) => all.push(id));
    assert.deepEqual(all, [0xffffffff, 2, 0xffffffff], 'without `skip` every record is visited');
  });

  it('reads samples from an odd byte offset by copying', () => {
    const raw = Buffer.from([0, 1, 0, 2, 0]);
    assert.deepEqual([...samplesOf(raw.subarray(1, 5))], [1, 2]);
  });

  it('tags a JSON object with its stream in front', () => {
    assert.equal(tagJson(5, '{"type":"clear"}'), '{"stream":5,"type":"clear"}');
    assert.deepEqual(JSON.parse(tagJson(5, '{}')), { stream: 5 });
  });
});
