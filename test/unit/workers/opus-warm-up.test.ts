import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WARM_UP_ROUNDS, warmUpEnabled, warmUpOpus } from '../../../workers/opus-warm-up.js';
import { OpusPool } from '../../../workers/opus-pool.js';

describe('Opus warm-up (the codec rehearsed when a worker starts)', () => {
  it('runs every round through real encoders and a decoder, and the tone comes back at its level', () => {
    const r = warmUpOpus(100, 60_000);
    assert.equal(r.rounds, 100);
    // The check's tone, decoded, against itself (0.93 after the rehearsal's speech): a codec that
    // decoded silence or noise would be far off.
    assert.ok(r.level > 0.8 && r.level < 1.25, `decoded level ${r.level}`);
    assert.ok(r.ms > 0);
  });

  it('stops at its time bound, whatever the rounds asked', () => {
    const r = warmUpOpus(1_000_000, 50);
    assert.ok(r.rounds > 0 && r.rounds < 1_000_000, `${r.rounds} rounds in ${r.ms} ms`);
  });

  it('is on unless BOTEDGE_OPUS_WARM_UP=0', () => {
    assert.equal(warmUpEnabled({}), true);
    assert.equal(warmUpEnabled({ BOTEDGE_OPUS_WARM_UP: '1' }), true);
    assert.equal(warmUpEnabled({ BOTEDGE_OPUS_WARM_UP: '0' }), false);
    assert.ok(WARM_UP_ROUNDS > 0);
  });

  for (const on of [true, false]) {
    it(`a pool's worker ${on ? 'rehearses as it starts (ready() waits for it) and reports it once' : 'skips the rehearsal with BOTEDGE_OPUS_WARM_UP=0'}; its calls are served either way`, async () => {
      const before = process.env['BOTEDGE_OPUS_WARM_UP'];
      // A worker takes the environment as it is when it starts.
      if (on) delete process.env['BOTEDGE_OPUS_WARM_UP'];
      else process.env['BOTEDGE_OPUS_WARM_UP'] = '0';
      const pool = new OpusPool({ threads: 1 });
      try {
        await pool.ready();
        const { warmUpRounds, warmUpMs } = pool.stats;
        if (on) {
          // Every round, unless the host was so slow that the time bound stopped it first.
          assert.ok(warmUpRounds > 0 && warmUpRounds <= WARM_UP_ROUNDS && warmUpMs > 0, JSON.stringify(pool.stats));
        } else {
          assert.equal(warmUpRounds, 0);
          assert.equal(warmUpMs, 0);
        }
        pool.open('a', { encode: { sampleRate: 16000 }, decode: { sampleRate: 16000 } });
        const packet = pool.encode('a', new Int16Array(320).fill(1200));
        await pool.flush();
        const decoded = pool.decode('a', await packet);
        await pool.flush();
        assert.equal((await decoded).length, 320);
        // Reported once: the calls' flushes left the figure as ready() found it.
        assert.equal(pool.stats.warmUpRounds, warmUpRounds);
      } finally {
        await pool.destroy();
        if (before === undefined) delete process.env['BOTEDGE_OPUS_WARM_UP'];
        else process.env['BOTEDGE_OPUS_WARM_UP'] = before;
      }
    });
  }
});
