import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { jsFir, type FixedFir } from '../../../codecs/fir.js';
import { readFileSync } from 'node:fs';
import { nativeFir, nativeFirKernel } from '../../../codecs/native.js';
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

  it('run across outputs with AVX2 where the CPU has it, unless BOTEDGE_FIR_SIMD=0 (scripts/test.sh runs this file both ways)', () => {
    const avx2 = /\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
    assert.equal(nativeFirKernel, avx2 && process.env['BOTEDGE_FIR_SIMD'] !== '0' ? 'avx2' : 'portable');
  });

  it('are built and selected by default', () => {
    assert.ok(nativeFir, 'the addon should export firPrepare/firUp/firDown');
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

  it('give the same samples as the TypeScript loops for a filter of any shape (not only 1 + 24 · (F − 1) taps), empty phases included', () => {
    const fir = nativeFir!;
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 40; trial++) {
      const up = trial % 2 === 0;
      const F = 2 + rnd(5);
      const lengths = Uint32Array.from({ length: F }, () => (rnd(4) === 0 ? 0 : 1 + rnd(30)));
      const reach = Uint32Array.from(lengths, (len) => Math.max(len - 1, 0) + rnd(5));
      const total = lengths.reduce((s, v) => s + v, 0);
      // Coefficients small enough for the bound whatever the shape: Σ|c| ≤ 150 · 400 < 65535.
      const coefs = Int16Array.from({ length: total }, () => rnd(801) - 400);
      const history = Math.max(...Array.from(reach, (r, q) => (up ? r : q + F * r)));
      const f: FixedFir = { up, factor: F, shift: 1 + rnd(15), coefs, lengths, reach, history, taps: 0 };
      const n = rnd(700);
      const work = new Int16Array(history + n);
      for (let i = 0; i < work.length; i++) work[i] = rnd(65536) - 32768;
      const start = rnd(F + 2);
      const a = new Int16Array(n * F + 1);
      const b = new Int16Array(n * F + 1);
      const wa = up ? jsFir.up(jsFir.prepare(f), work, n, a) : jsFir.down(jsFir.prepare(f), work, start, n, a);
      const wb = up ? fir.up(fir.prepare(f), work, n, b) : fir.down(fir.prepare(f), work, start, n, b);
      assert.equal(wb, wa, `trial ${trial}: count`);
      assert.deepEqual(b, a, `trial ${trial}: ${up ? 'up' : 'down'} F = ${F}, lengths ${lengths.join(',')}`);
    }
  });

  it('give the same clamped samples at the int32 bound (Σ|c| = 65535, full-scale inputs with the coefficients\' signs)', () => {
    const fir = nativeFir!;
    // Up, F = 2: phase 0 is one coefficient, phase 1 sums |c| to exactly 65535 over 24 taps.
    const phase1 = Int16Array.from({ length: 24 }, (_, j) => (j % 2 ? -1 : 1) * (j < 23 ? 2730 : 65535 - 23 * 2730));
    const f: FixedFir = { up: true, factor: 2, shift: 15, coefs: Int16Array.of(32767, ...phase1), lengths: Uint32Array.of(1, 24), reach: Uint32Array.of(12, 23), history: 23, taps: 49 };
    const n = 64;
    const work = new Int16Array(f.history + n);
    // Alternating full scale: every other output's window matches the coefficients' signs (the largest
    // positive sum), the ones between oppose them (the largest negative one).
    for (let i = 0; i < work.length; i++) work[i] = i % 2 ? -32768 : 32767;
    const a = new Int16Array(2 * n);
    const b = new Int16Array(2 * n);
    jsFir.up(jsFir.prepare(f), work, n, a);
    fir.up(fir.prepare(f), work, n, b);
    assert.deepEqual(b, a);
    const odd = Array.from(a.filter((_, i) => i % 2 === 1));
    assert.ok(odd.includes(32767) && odd.includes(-32768), 'both clamps reached, neither wrapped');
  });

  it('refuse filters that could overflow or read out of bounds, and calls that would, with a RangeError', () => {
    const fir = nativeFir!;
    const good: FixedFir = { up: true, factor: 2, shift: 14, coefs: Int16Array.of(100, 1, 2, 3), lengths: Uint32Array.of(1, 3), reach: Uint32Array.of(1, 2), history: 2, taps: 5 };
    const bad = (patch: Partial<FixedFir>): FixedFir => ({ ...good, ...patch });
    assert.throws(() => fir.prepare(bad({ coefs: Int16Array.of(100, 30000, 30000, 5536) })), /overflow int32/);
    assert.throws(() => fir.prepare(bad({ up: false, coefs: Int16Array.of(20000, 20000, 20000, 5536), reach: Uint32Array.of(0, 2), history: 5 })), /overflow int32/);
    assert.throws(() => fir.prepare(bad({ history: 1 })), /past the history/);
    assert.throws(() => fir.prepare(bad({ up: false, history: 4 })), /past the history/, 'down: sub-filter 1 reaches 1 + 2 · 2 = 5 back');
    assert.throws(() => fir.prepare(bad({ reach: Uint32Array.of(1, 1) })), /past the newest input/);
    assert.throws(() => fir.prepare(bad({ lengths: Uint32Array.of(1, 2) })), /disagree/);
    assert.throws(() => fir.prepare(bad({ lengths: Uint32Array.of(1, 3, 0) })), /one length and one reach per phase/);
    assert.throws(() => fir.prepare(bad({ shift: 16 })), /shift/);
    assert.throws(() => fir.prepare(bad({ factor: 7, lengths: new Uint32Array(7), reach: new Uint32Array(7), coefs: new Int16Array(0) })), /factor/);
    assert.throws(() => fir.prepare(bad({ coefs: new Float64Array(4) as unknown as Int16Array })), TypeError);

    const upPlan = fir.prepare(good);
    const downPlan = fir.prepare(bad({ up: false, history: 5 }));
    assert.throws(() => fir.up(upPlan, new Int16Array(2 + 9), 10, new Int16Array(20)), /work shorter/);
    assert.throws(() => fir.up(upPlan, new Int16Array(2 + 10), 10, new Int16Array(19)), /dst too short/);
    assert.throws(() => fir.down(downPlan, new Int16Array(5 + 9), 0, 10, new Int16Array(5)), /work shorter/);
    assert.throws(() => fir.down(downPlan, new Int16Array(5 + 10), 1, 10, new Int16Array(4)), /dst too short/);
    assert.throws(() => fir.up(downPlan, new Int16Array(20), 10, new Int16Array(20)), /downsampling plan/);
    assert.throws(() => fir.down(upPlan, new Int16Array(20), 0, 10, new Int16Array(20)), /upsampling plan/);
    assert.throws(() => fir.up({} as typeof upPlan, new Int16Array(20), 10, new Int16Array(20)), TypeError);
    assert.throws(() => fir.up(upPlan, new Int32Array(20) as unknown as Int16Array, 10, new Int16Array(20)), TypeError);
    assert.equal(fir.up(upPlan, new Int16Array(2 + 10), 10, new Int16Array(20)), 20);
    assert.equal(fir.down(downPlan, new Int16Array(5 + 10), 1, 10, new Int16Array(5)), 5);
  });
});
