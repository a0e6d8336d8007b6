import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { nativeFir } from '../../../codecs/native.js';
import { Resampler, type SampleRate } from '../../../codecs/resample.js';

const forcedFallback = process.env['BOTEDGE_NATIVE'] === '0';

/** Deterministic noise, with stretches at full scale so the clamp is exercised too. */
function signal(n: number, seed: number): Int16Array {
  let x = seed >>> 0;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const loud = Math.floor(i / 400) % 3 === 2;
    out[i] = loud ? (i % 7 < 3 ? 32767 : -32768) : ((x >>> 16) - 32768) >> 1;
  }
  return out;
}

/** Feeds `input` in frames of the given sizes (cycled) and returns everything written. */
function run(r: Resampler, input: Int16Array, sizes: number[]): Int16Array {
  const out: number[] = [];
  let at = 0;
  let k = 0;
  while (at < input.length) {
    const n = Math.min(sizes[k++ % sizes.length]!, input.length - at);
    const dst = new Int16Array(r.maxOutputLength(n));
    const w = r.process(input.subarray(at, at + n), dst);
    for (let i = 0; i < w; i++) out.push(dst[i]!);
    at += n;
  }
  return Int16Array.from(out);
}

const PAIRS: [SampleRate, SampleRate][] = [
  [8000, 16000],
  [16000, 8000],
  [8000, 24000],
  [24000, 8000],
  [8000, 48000],
  [48000, 8000],
  [16000, 48000],
  [48000, 16000],
];

describe('native resampler loops', () => {
  if (forcedFallback) {
    it('are not used when the addon is switched off', () => {
      assert.equal(nativeFir, undefined);
      assert.equal(new Resampler(8000, 16000).native, false);
    });
    return;
  }

  it('are built and selected by default', () => {
    assert.ok(nativeFir, 'the addon should export firUp/firDown');
    assert.equal(new Resampler(8000, 16000).native, true);
    assert.equal(new Resampler(8000, 16000, { native: false }).native, false);
  });

  for (const [from, to] of PAIRS) {
    it(`give exactly the TypeScript loops' samples, ${from} → ${to} Hz, in frames of any size`, () => {
      const input = signal(from / 2, from + to); // half a second
      for (const sizes of [[from / 50], [1, 7, 160, 3, 33], [999]]) {
        const js = run(new Resampler(from, to, { native: false }), input, sizes);
        const native = run(new Resampler(from, to), input, sizes);
        assert.equal(native.length, js.length);
        let diff = -1;
        for (let i = 0; i < js.length; i++) {
          if (js[i] !== native[i]) {
            diff = i;
            break;
          }
        }
        assert.equal(diff, -1, `first difference at sample ${diff} (frames ${sizes.join(',')}): ${js[diff]} vs ${native[diff]}`);
      }
    });
  }

  it('refuses arguments that would read or write out of bounds, with a RangeError', () => {
    const fir = nativeFir!;
    const work = new Float64Array(10);
    const c3 = new Float64Array(3);
    const t3 = Uint32Array.of(0, 1, 2);
    assert.throws(() => fir.firDown(c3, Uint32Array.of(0, 1, 5), 2, work, 4, 0, 6, new Int16Array(3)), RangeError);
    assert.throws(() => fir.firDown(c3, Uint32Array.of(0, 1, 5), 2, work, 4, 0, 6, new Int16Array(3)), /past the history/);
    assert.throws(() => fir.firDown(c3, Uint32Array.of(0, 1), 2, work, 4, 0, 6, new Int16Array(3)), /disagree/);
    assert.throws(() => fir.firDown(c3, t3, 2, work, 4, 0, 6, new Int16Array(2)), /dst too short/);
    assert.throws(() => fir.firDown(c3, t3, 2, work, 4, 0, 7, new Int16Array(4)), /work shorter/);
    const c4 = new Float64Array(4);
    const t4 = Uint32Array.of(0, 1, 0, 1);
    assert.throws(() => fir.firUp(c4, t4, Uint32Array.of(2, 2), 2, work, 4, 7, new Int16Array(14)), /work shorter/);
    assert.throws(() => fir.firUp(c4, t4, Uint32Array.of(2, 3), 2, work, 4, 6, new Int16Array(12)), /disagree/);
    assert.throws(() => fir.firUp(c4, Uint32Array.of(0, 1, 0, 9), Uint32Array.of(2, 2), 2, work, 4, 6, new Int16Array(12)), /past the history/);
    assert.throws(() => fir.firUp(c4, t4, Uint32Array.of(2, 2), 2, work, 4, 6, new Int16Array(11)), /dst too short/);
    assert.throws(() => fir.firUp(c4, t4, Uint32Array.of(2, 2), 2, work, 4, 6, new Int32Array(12) as unknown as Int16Array), TypeError);
  });
});
