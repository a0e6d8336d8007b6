import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MAX_ABS_SUM, fixedPolyphase, jsFir, type FixedFir } from '../../../codecs/fir.js';
import { Resampler, designLowPass, type SampleRate } from '../../../codecs/resample.js';

const FACTORS = [2, 3, 6] as const;

const prototypeOf = (F: number): Float64Array => designLowPass(24 * F + 1, 0.5 / F);

/** The filter as one integer tap array at the higher rate (the phases interleaved back, zeros included). */
function integerTaps(f: FixedFir): number[] {
  const h = new Array<number>(f.taps).fill(0);
  let at = 0;
  for (let p = 0; p < f.factor; p++) {
    for (let j = 0; j < f.lengths[p]!; j++) h[p + (f.reach[p]! - j) * f.factor] = f.coefs[at + j]!;
    at += f.lengths[p]!;
  }
  return h;
}

/** |H(f)| of taps `h` at `cycles` per sample. */
function gain(h: ArrayLike<number>, cycles: number): number {
  let re = 0;
  let im = 0;
  for (let n = 0; n < h.length; n++) {
    re += h[n]! * Math.cos(2 * Math.PI * cycles * n);
    im -= h[n]! * Math.sin(2 * Math.PI * cycles * n);
  }
  return Math.hypot(re, im);
}

const db = (ratio: number): number => 20 * Math.log10(ratio);

/** Deterministic noise with full-scale square stretches (the clamp) and a few lone extremes. */
function signal(n: number, seed: number): Int16Array {
  let x = seed >>> 0;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const loud = Math.floor(i / 300) % 4 === 3;
    out[i] = loud ? (i % 5 < 2 ? 32767 : -32768) : ((x >>> 16) - 32768) >> (x & 1);
  }
  return out;
}

/**
 * The direct form, written from the definition and nothing of the polyphase layout: zero-stuff (up)
 * or keep every F-th output (down), convolve with the integer taps in doubles (exact at these
 * magnitudes), round half up, clamp.
 */
function reference(f: FixedFir, input: Int16Array): Int16Array {
  const F = f.factor;
  const h = integerTaps(f);
  const hi = f.up ? new Float64Array(input.length * F) : Float64Array.from(input);
  if (f.up) input.forEach((v, m) => (hi[m * F] = v));
  const out: number[] = [];
  for (let n = 0; n < hi.length; n += f.up ? 1 : F) {
    let acc = 0;
    for (let k = 0; k < h.length && k <= n; k++) acc += h[k]! * hi[n - k]!;
    const v = Math.floor((acc + 2 ** (f.shift - 1)) / 2 ** f.shift);
    out.push(Math.min(32767, Math.max(-32768, v)));
  }
  return Int16Array.from(out);
}

describe('fixed-point polyphase FIR', () => {
  it('keeps only the centre tap of phase 0 and 24 taps in every other phase, Q14 up and Q15 down', { timeout: 5000 }, () => {
    for (const F of FACTORS) {
      for (const up of [true, false]) {
        const f = fixedPolyphase(prototypeOf(F), F, up);
        assert.deepEqual([...f.lengths], [1, ...new Array<number>(F - 1).fill(24)], `F = ${F}`);
        assert.equal(f.reach[0], 12, 'the centre tap is 12 low-rate samples back: the group delay');
        assert.equal(f.shift, up ? 14 : 15);
        assert.equal(f.taps, 24 * F + 1);
      }
    }
  });

  it('keeps every output\'s Σ|c| within the bound that proves its int32 sum cannot overflow', { timeout: 5000 }, () => {
    for (const F of FACTORS) {
      for (const up of [true, false]) {
        const f = fixedPolyphase(prototypeOf(F), F, up);
        const perPhase: number[] = [];
        let at = 0;
        for (const len of f.lengths) {
          perPhase.push(f.coefs.subarray(at, at + len).reduce((s, c) => s + Math.abs(c), 0));
          at += len;
        }
        const worst = up ? Math.max(...perPhase) : perPhase.reduce((s, v) => s + v, 0);
        assert.ok(worst <= MAX_ABS_SUM, `F = ${F} ${up ? 'up' : 'down'}: Σ|c| = ${worst}`);
        assert.ok(2 ** 15 * worst + 2 ** (f.shift - 1) < 2 ** 31, 'the largest |sum|, rounding term included, is an int32');
      }
    }
  });

  it('stays within −70 dB of the float design at every frequency, the pass band and stop band unchanged', { timeout: 10000 }, () => {
    for (const F of FACTORS) {
      const h = prototypeOf(F);
      const high = 8000 * F;
      for (const up of [true, false]) {
        const f = fixedPolyphase(h, F, up);
        const scale = 2 ** f.shift * (up ? F : 1);
        const hq = integerTaps(f).map((c) => c / scale);
        for (let hz = 0; hz <= high / 2; hz += 25) {
          const exact = gain(h, hz / high);
          const fixed = gain(hq, hz / high);
          assert.ok(db(Math.abs(fixed - exact)) < -70, `F = ${F} ${up ? 'up' : 'down'} at ${hz} Hz`);
          if (hz <= 3400) assert.ok(Math.abs(db(fixed)) < 0.05, `pass band at ${hz} Hz: ${db(fixed).toFixed(3)} dB`);
          if (hz >= 4600) assert.ok(db(fixed) < -50, `stop band at ${hz} Hz: ${db(fixed).toFixed(1)} dB`);
        }
      }
    }
  });

  it('computes what the direct-form filter computes, over frames of any size', { timeout: 10000 }, () => {
    const pairs: [SampleRate, SampleRate][] = [
      [8000, 16000],
      [16000, 8000],
      [8000, 48000],
      [48000, 8000],
      [16000, 48000],
    ];
    for (const [from, to] of pairs) {
      const up = to > from;
      const F = up ? to / from : from / to;
      const input = signal(from / 4, from + to);
      const expected = reference(fixedPolyphase(prototypeOf(F), F, up), input);
      const r = new Resampler(from, to, { native: false });
      const got: number[] = [];
      const sizes = [1, 7, 160, 3, 33, 999];
      for (let at = 0, k = 0; at < input.length; k++) {
        const n = Math.min(sizes[k % sizes.length]!, input.length - at);
        const dst = new Int16Array(r.maxOutputLength(n));
        const w = r.process(input.subarray(at, at + n), dst);
        got.push(...dst.subarray(0, w));
        at += n;
      }
      assert.deepEqual(Int16Array.from(got), expected, `${from} → ${to} Hz`);
    }
  });

  it('clamps, never wraps, the largest sum the bound allows (Σ|c| = 65535, inputs full scale with the coefficients\' signs)', { timeout: 5000 }, () => {
    // One phase of 3 coefficients summing |c| to 65535: the input that matches their signs drives
    // the sum to 2^15 · 65535 = 2^31 − 2^15, just inside int32.
    const coefs = Int16Array.of(32767, -32767, 1);
    const f: FixedFir = { up: false, factor: 2, shift: 15, coefs: Int16Array.of(...coefs), lengths: Uint32Array.of(3, 0), reach: Uint32Array.of(2, 0), history: 4, taps: 7 };
    const plan = jsFir.prepare(f);
    // Output for newest input i reads x[i − 4], x[i − 2], x[i]: oldest first, as the coefficients.
    const work = new Int16Array(f.history + 2);
    work.set([-32768, 0, 32767, 0, -32768, 0], 0); // signs against the coefficients: the most negative sum
    const dst = new Int16Array(1);
    assert.equal(jsFir.down(plan, work, 0, 1, dst), 1);
    assert.equal(dst[0], -32768);
    work.set([32767, 0, -32768, 0, 32767, 0], 0);
    jsFir.down(plan, work, 0, 1, dst);
    assert.equal(dst[0], 32767);
  });

  it('refuses a filter too loud for Int16 coefficients even in Q14', { timeout: 5000 }, () => {
    const loud = Float64Array.from({ length: 7 }, () => 1);
    assert.throws(() => fixedPolyphase(loud, 2, false), RangeError);
  });
});
