import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Resampler, type SampleRate } from '../../../codecs/resample.js';
import { amplitudeAt, sine } from '../../fixtures/audio.js';

const AMPLITUDE = 10000;

function tone(rate: number, frequency: number, seconds = 1): Int16Array {
  return sine(rate, frequency, rate * seconds, AMPLITUDE);
}

/** Runs `input` through a fresh resampler in `frameMs` frames and returns the whole output. */
function run(from: SampleRate, to: SampleRate, input: Int16Array, frameMs = 20): Int16Array {
  const r = new Resampler(from, to);
  const frame = (from * frameMs) / 1000;
  const out = new Int16Array(r.maxOutputLength(input.length) + 8);
  const scratch = new Int16Array(r.maxOutputLength(frame));
  let n = 0;
  for (let i = 0; i < input.length; i += frame) {
    const written = r.process(input.subarray(i, i + frame), scratch);
    out.set(scratch.subarray(0, written), n);
    n += written;
  }
  return out.subarray(0, n);
}


function rmsAmplitude(signal: Int16Array): number {
  let sum = 0;
  for (const v of signal) sum += v * v;
  return Math.sqrt((2 * sum) / signal.length);
}

const db = (ratio: number): number => 20 * Math.log10(ratio);

/** Drops the filter's start-up transient: the first 100 ms. */
const steady = (s: Int16Array, rate: number): Int16Array => s.subarray(rate / 10, rate / 10 + (rate * 8) / 10);

describe('Resampler', () => {
  it('upsamples a 1 kHz tone from 8 to 16 kHz keeping its amplitude within 1 dB and its frequency', { timeout: 10000 }, () => {
    const out = steady(run(8000, 16000, tone(8000, 1000)), 16000);
    assert.ok(Math.abs(db(amplitudeAt(out, 16000, 1000) / AMPLITUDE)) < 1);
    assert.ok(Math.abs(db(rmsAmplitude(out) / AMPLITUDE)) < 1);
    // The 7 kHz image of zero-stuffing is filtered out: the tone is the only component left.
    assert.ok(db(amplitudeAt(out, 16000, 7000) / AMPLITUDE) < -40);
    let crossings = 0;
    for (let i = 1; i < out.length; i++) if ((out[i - 1]! < 0) !== (out[i]! < 0)) crossings++;
    assert.ok(Math.abs(crossings / 2 / (out.length / 16000) - 1000) < 5, `${crossings} zero crossings`);
  });

  it('attenuates a 6 kHz tone by at least 30 dB when downsampling from 16 to 8 kHz', { timeout: 10000 }, () => {
    const out = steady(run(16000, 8000, tone(16000, 6000)), 8000);
    assert.ok(db(rmsAmplitude(out) / AMPLITUDE) < -30, `${db(rmsAmplitude(out) / AMPLITUDE).toFixed(1)} dB`);
  });

  it('passes a 2 kHz tone from 16 to 8 kHz within 1 dB', { timeout: 10000 }, () => {
    const out = steady(run(16000, 8000, tone(16000, 2000)), 8000);
    assert.ok(Math.abs(db(amplitudeAt(out, 8000, 2000) / AMPLITUDE)) < 1);
  });

  it('upsamples 8 to 24 kHz and back with the telephone band intact and aliases removed', { timeout: 10000 }, () => {
    const up = steady(run(8000, 24000, tone(8000, 1000)), 24000);
    assert.ok(Math.abs(db(amplitudeAt(up, 24000, 1000) / AMPLITUDE)) < 1);
    const passed = steady(run(24000, 8000, tone(24000, 3000)), 8000);
    assert.ok(Math.abs(db(amplitudeAt(passed, 8000, 3000) / AMPLITUDE)) < 1);
    const aliased = steady(run(24000, 8000, tone(24000, 10000)), 8000);
    assert.ok(db(rmsAmplitude(aliased) / AMPLITUDE) < -30);
  });

  it('gives the same output for a stream in 20 ms frames, odd-sized frames or one call', { timeout: 10000 }, () => {
    const input = tone(16000, 1234, 1);
    const whole = run(16000, 8000, input, 1000);
    assert.deepEqual(run(16000, 8000, input, 20), whole);
    // 15 samples per frame: not a multiple of the ratio, so the decimation phase must carry over.
    const r = new Resampler(16000, 8000);
    const pieces: number[] = [];
    const scratch = new Int16Array(8);
    for (let i = 0; i < input.length; i += 15) {
      const n = r.process(input.subarray(i, i + 15), scratch);
      pieces.push(...scratch.subarray(0, n));
    }
    assert.deepEqual(Int16Array.from(pieces), whole);
    assert.deepEqual(run(8000, 16000, tone(8000, 700), 20), run(8000, 16000, tone(8000, 700), 1000));
  });

  it('clips instead of wrapping around when the filter overshoots full scale', { timeout: 10000 }, () => {
    const square = Int16Array.from({ length: 160 }, (_, i) => (i % 16 < 8 ? 32767 : -32768));
    const out = new Int16Array(320);
    new Resampler(8000, 16000).process(square, out);
    // A wrapped overshoot would show up as a full-scale sign flip in the middle of a flat run.
    for (let i = 40; i < 300; i++) assert.ok(Math.abs(out[i]! - out[i - 1]!) < 40000, `sample ${i}`);
  });

  it('refuses an output buffer that is too small and an unsupported ratio', { timeout: 10000 }, () => {
    assert.throws(() => new Resampler(8000, 16000).process(new Int16Array(160), new Int16Array(319)), RangeError);
    assert.throws(() => new Resampler(16000, 24000), RangeError);
  });

  it('shares one plan between resamplers of a ratio, and each keeps its own history', { timeout: 10000 }, () => {
    // Two calls' streams through two resamplers, frames interleaved as a node runs them: each comes
    // out as it does through a resampler with a plan of its own that saw nothing else.
    for (const native of [true, false]) {
      for (const [from, to] of [[8000, 16000], [16000, 8000]] as [SampleRate, SampleRate][]) {
        const a = tone(from, 440, 0.2);
        const b = tone(from, 1900, 0.2);
        const shared = [new Resampler(from, to, { native }), new Resampler(from, to, { native })];
        const own = [new Resampler(from, to, { native, ownPlan: true }), new Resampler(from, to, { native, ownPlan: true })];
        const frame = from / 50;
        const dst = new Int16Array(shared[0]!.maxOutputLength(frame));
        const dstOwn = new Int16Array(dst.length);
        for (let i = 0; i < a.length; i += frame) {
          for (const [k, input] of [a, b].entries()) {
            const n = shared[k]!.process(input.subarray(i, i + frame), dst);
            const m = own[k]!.process(input.subarray(i, i + frame), dstOwn);
            assert.equal(n, m);
            assert.deepEqual(dst.subarray(0, n), dstOwn.subarray(0, m), `${from} → ${to} (native ${native}), stream ${k}, frame at ${i}`);
          }
        }
      }
    }
  });

  it('forgets its history on reset', { timeout: 10000 }, () => {
    const r = new Resampler(8000, 16000);
    const a = new Int16Array(320);
    const b = new Int16Array(320);
    r.process(tone(8000, 500).subarray(0, 160), a);
    r.reset();
    r.process(new Int16Array(160), b);
    assert.ok(b.every((v) => v === 0));
  });
});
