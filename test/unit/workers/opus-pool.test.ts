import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { LibopusDecoder, OpusEncoder, OpusError } from '../../../codecs/opus.js';
import { OpusPool, OpusPoolError } from '../../../workers/opus-pool.js';
import { amplitudeAt, sine } from '../../fixtures/audio.js';

function tone(rate: number, frequency: number, samples: number, start = 0): Int16Array {
  return sine(rate, frequency, samples, 8000, start);
}


const CALLS = 24;
const TICKS = 10;
const freqOf = (i: number): number => 300 + 50 * i;

describe('OpusPool', { timeout: 20000 }, () => {
  let pool: OpusPool;
  before(() => {
    pool = new OpusPool({ threads: 2 });
  });
  after(async () => {
    await pool.destroy();
  });

  it('encodes and decodes many calls with one request per worker per tick, matching inline libopus byte for byte', async () => {
    const inline = new Map<string, { enc: OpusEncoder; dec: LibopusDecoder }>();
    const ids = Array.from({ length: CALLS }, (_, i) => `call-${i}`);
    for (const id of ids) {
      pool.open(id, { encode: { sampleRate: 16000, bitrate: 24000 }, decode: { sampleRate: 16000 } });
      inline.set(id, { enc: new OpusEncoder({ sampleRate: 16000, bitrate: 24000 }), dec: new LibopusDecoder({ sampleRate: 16000 }) });
    }
    const shards = new Set(ids.map((id) => pool.shardOf(id)));
    assert.equal(shards.size, 2, 'the calls spread over both workers');

    const decoded = new Map<string, Int16Array[]>(ids.map((id) => [id, []]));
    const batchesBefore = pool.stats.batches;
    for (let t = 0; t < TICKS; t++) {
      // Tick: every call's outbound frame is encoded and its inbound packet decoded, one flush.
      const encoded = ids.map((id, i) => pool.encode(id, tone(16000, freqOf(i), 320, t * 320)));
      assert.equal(pool.pending, CALLS);
      await pool.flush();
      const packets = await Promise.all(encoded);
      const pcm = ids.map((id, i) => pool.decode(id, packets[i]!));
      await pool.flush();
      const frames = await Promise.all(pcm);
      ids.forEach((id, i) => {
        const ref = inline.get(id)!;
        const refPacket = ref.enc.encode(tone(16000, freqOf(i), 320, t * 320));
        assert.deepEqual([...packets[i]!], [...refPacket], `${id} tick ${t}: same packet as inline`);
        const refPcm = ref.dec.decode(refPacket);
        assert.deepEqual([...frames[i]!], [...refPcm], `${id} tick ${t}: same PCM as inline`);
        decoded.get(id)!.push(frames[i]!.slice());
      });
      // Results of one worker's batch are views into one transferred buffer.
      const a = ids.findIndex((id) => pool.shardOf(id) === 0);
      const b = ids.findIndex((id, i) => i > a && pool.shardOf(id) === 0);
      assert.equal(frames[a]!.buffer, frames[b]!.buffer);
    }
    // Two flushes per tick, each one request per worker.
    assert.equal(pool.stats.batches - batchesBefore, TICKS * 2 * 2);
    // Each call got its own tone back.
    ids.forEach((id, i) => {
      const all = new Int16Array(TICKS * 320);
      decoded.get(id)!.forEach((f, k) => all.set(f, k * 320));
      const steady = all.subarray(1600);
      const own = amplitudeAt(steady, 16000, freqOf(i));
      const other = amplitudeAt(steady, 16000, freqOf((i + 5) % CALLS));
      assert.ok(own > 4000 && other < own / 10, `${id}: own ${own.toFixed(0)} other ${other.toFixed(0)}`);
    });
    for (const id of ids) pool.close(id);
    await pool.flush();
  });

  it('keeps each call\'s results in submission order within a batch', async () => {
    pool.open('order', { encode: { sampleRate: 48000 }, decode: { sampleRate: 48000 } });
    const enc = new OpusEncoder({ sampleRate: 48000 });
    const packets = [0, 1, 2, 3].map((k) => enc.encode(tone(48000, 440, 960, k * 960)));
    const dec = new LibopusDecoder({ sampleRate: 48000 });
    const expected = packets.map((p) => dec.decode(p));
    const results = packets.map((p) => pool.decode('order', p));
    await pool.flush();
    const got = await Promise.all(results);
    got.forEach((pcm, k) => assert.deepEqual([...pcm], [...expected[k]!]));
    pool.close('order');
  });

  it('rejects a garbage packet with OpusError for that call only, and serves conceal and FEC', async () => {
    pool.open('good', { decode: {} });
    pool.open('bad', { decode: {} });
    const enc = new OpusEncoder();
    const packet = enc.encode(tone(48000, 440, 960));
    const good = pool.decode('good', packet);
    const bad = pool.decode('bad', Uint8Array.of(0x03, 0x00));
    const plc = pool.conceal('good');
    const fec = pool.decodeFec('good', enc.encode(tone(48000, 440, 960, 960)));
    const noEncoder = pool.encode('good', new Int16Array(960));
    // Handlers go on the rejecting promises before the flush settles them: awaited afterwards, a
    // rejection that lands a tick before the flush resolves counts as unhandled (and fails the run).
    const badRejected = assert.rejects(bad, (err: unknown) => err instanceof OpusError && err.kind === 'invalid-packet');
    const noEncoderRejected = assert.rejects(noEncoder, (err: unknown) => err instanceof OpusError && err.kind === 'invalid-state');
    await pool.flush();
    assert.equal((await good).length, 960);
    await badRejected;
    assert.equal((await plc).length, 960);
    assert.equal((await fec).length, 960);
    await noEncoderRejected;
    // The bad call's decoder still works afterwards.
    const again = pool.decode('bad', packet);
    await pool.flush();
    assert.equal((await again).length, 960);
    pool.close('good');
    pool.close('bad');
  });

  it('rejects frames of calls that are not open with OpusPoolError, and bad options at open()', async () => {
    await assert.rejects(pool.decode('nobody', new Uint8Array(3)), (err: unknown) => err instanceof OpusPoolError && err.kind === 'not-open');
    assert.throws(() => pool.open('x', { encode: { complexity: 42 } }), (err: unknown) => err instanceof OpusError && /complexity/.test(err.message));
    pool.open('closing', { decode: {} });
    pool.close('closing');
    await assert.rejects(pool.conceal('closing'), (err: unknown) => err instanceof OpusPoolError && err.kind === 'not-open');
  });
});

describe('OpusPool when a worker dies', { timeout: 20000 }, () => {
  it('fails that batch with worker-lost for each call, re-opens the calls and keeps serving', async () => {
    const filename = fileURLToPath(new URL('./crashing-opus-task.js', import.meta.url));
    const pool = new OpusPool({ threads: 1, filename });
    try {
      const ids = ['a', 'b', 'c'];
      for (const id of ids) pool.open(id, { encode: { sampleRate: 16000 }, decode: { sampleRate: 16000 } });
      const ok = ids.map((id) => pool.encode(id, tone(16000, 440, 320)));
      await pool.flush();
      for (const p of ok) assert.ok((await p).length > 0);

      const poison = Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 0, 0);
      const doomed = [pool.decode('a', poison), pool.encode('b', tone(16000, 440, 320)), pool.conceal('c')];
      const checks = doomed.map((p, k) =>
        assert.rejects(p, (err: unknown) => err instanceof OpusPoolError && err.kind === 'worker-lost' && err.callId === ids[k]),
      );
      await pool.flush();
      await Promise.all(checks);
      assert.equal(pool.stats.workerRestarts, 1);

      // The replacement worker has the calls re-opened before the next batch's frames.
      const after = ids.map((id) => pool.encode(id, tone(16000, 440, 320)));
      const plc = pool.conceal('a');
      await pool.flush();
      for (const p of after) assert.ok((await p).length > 0);
      assert.equal((await plc).length, 320);
    } finally {
      await pool.destroy();
    }
  });

  it('rejects what is queued when destroyed', async () => {
    const pool = new OpusPool({ threads: 1 });
    pool.open('z', { decode: {} });
    const p = assert.rejects(pool.conceal('z'), (err: unknown) => err instanceof OpusPoolError && err.kind === 'closed');
    await pool.destroy();
    await p;
    assert.throws(() => pool.open('y', {}), (err: unknown) => err instanceof OpusPoolError && err.kind === 'closed');
  });
});
