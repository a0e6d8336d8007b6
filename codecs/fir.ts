/**
 * The resampler's filter in fixed point: a polyphase FIR whose coefficients are Int16 and whose
 * sums are Int32, laid out so that every output is a dot product of contiguous coefficients with
 * contiguous inputs; and the TypeScript loops that run it (native/fir.cc is their twin).
 *
 * Integer sums are exact, so they do not depend on the order of the additions: the native loops may
 * vectorise (SSE2 `pmaddwd` sums pairs of products) and still give the TypeScript loops' samples,
 * bit for bit, by construction — no floating-point ordering to keep in step. codecs/resample.ts
 * designs the filter (in doubles) and keeps the stream state; this module decomposes and quantises
 * it (`fixedPolyphase`) and runs it (`jsFir`).
 */

/**
 * A polyphase filter of `factor` phases, each a run of Int16 coefficients, oldest input first (the
 * taps reversed), standing for c / 2^`shift`.
 *
 * Upsampling by F: output mF + p = Σ_j coefs_p[j] · x[m − reach_p + j], for j < lengths[p].
 * Downsampling by F (outputs at every F-th input, x[i] the newest): sub-filter q reads every F-th
 * input, q behind: Σ_q Σ_j coefs_q[j] · x[i − q − F·(reach_q − j)]. Read as F deinterleaved input
 * streams, each sub-filter is again a contiguous dot product.
 */
export interface FixedFir {
  readonly up: boolean;
  readonly factor: number;
  /** Fraction bits: 15 or 14 (see `fixedPolyphase`). */
  readonly shift: number;
  /** Every phase's coefficients, back to back. */
  readonly coefs: Int16Array;
  /** Coefficients per phase. */
  readonly lengths: Uint32Array;
  /** Per phase, how far back its oldest input lies: in inputs (up) or in steps of F inputs (down). */
  readonly reach: Uint32Array;
  /** Past inputs the loops read before the first new one: the oldest any tap reaches. */
  readonly history: number;
  /** Length of the prototype filter, zeros included. */
  readonly taps: number;
}

/** A filter made ready for one set of loops: the FixedFir itself (TypeScript) or a checked native copy. */
export type FirPlan = { readonly [planBrand]: true };
declare const planBrand: unique symbol;

/**
 * The loops, TypeScript or native. Each call reads one work buffer: `fir.history` past inputs, then
 * `n` new ones.
 */
export interface FirLoops {
  /** Checks `fir` once (native: also copies it), for every later call. */
  prepare(fir: FixedFir): FirPlan;
  /** Upsampling: writes n · factor outputs; returns that count. */
  up(plan: FirPlan, work: Int16Array, n: number, dst: Int16Array): number;
  /** Downsampling: the outputs whose newest input is new input start, start + F, … < n; returns how many. */
  down(plan: FirPlan, work: Int16Array, start: number, n: number, dst: Int16Array): number;
}

/**
 * The largest Σ|c| of the coefficients one output sums for which no Int32 sum can overflow.
 *
 * Proof: an input x is in [−2^15, 2^15 − 1], so |c·x| ≤ 2^15·|c| (and ≤ 2^30: a product never
 * overflows). Every partial sum, in any order — the loops' own order, `pmaddwd`'s pairs, a vector
 * loop's lanes — sums a subset of one output's products, so its magnitude is ≤ 2^15 · Σ|c|. With the
 * rounding term 2^(shift−1) ≤ 2^14 added: 2^15 · (2^16 − 1) + 2^14 = 2^31 − 2^14 < 2^31 − 1, and
 * the negative side ≥ −2^31 + 2^15. Also rules out `pmaddwd`'s one overflow, (−2^15)² + (−2^15)²:
 * that needs two coefficients of −2^15, Σ|c| = 2^16. JavaScript's `|0` and `>>` (ToInt32) are then
 * exact, as is C++'s int32 arithmetic (no undefined behaviour).
 */
export const MAX_ABS_SUM = 65535;

/**
 * Decomposes the prototype low-pass `h` (symmetric, 24·F + 1 taps, run at the higher rate) into F
 * phases, drops every exactly-zero tap at either end of a phase, and quantises to Int16.
 *
 * Zeros: a Nyquist filter's taps F, 2F, … from the centre are exactly zero (designLowPass makes them
 * so); they all fall in one phase, 0, which keeps only its centre tap. So upsampling phase 0 is a
 * scaled, delayed copy of the input and every other phase a 24-tap interpolator; downsampling's
 * sub-filter 0 is one tap on every F-th input and each other one has 24 taps: 24·(F − 1) + 1
 * multiplies per output (upsampling: per F outputs), every non-zero tap and nothing else.
 *
 * Precision: the largest `shift` ≤ 15 whose coefficients fit Int16 and keep every output's Σ|c| ≤
 * MAX_ABS_SUM. Downsampling sums one filter, Σ|h| = 1.65 (F = 2) to 1.82 (F = 6): Q15, Σ|c| = 54 047
 * to 59 621. Upsampling multiplies h by F, so phase 0's one tap is ≈ 1.0002 — not an Int16 in Q15 —
 * and an interpolating phase sums |c| to 2.30 at F = 2 and 6 (75 300 in Q15: a full-scale input with
 * the coefficients' signs would sum to 2.3 · 2^30 > 2^31). So Q14, Σ|c| ≤ 37 660. Each coefficient
 * is rounded on its own, half away from zero, so symmetric taps stay symmetric and the phase linear.
 * Measured against the float design: |H_q − H| ≤ −71 dB at every frequency (F = 6 down; −77 to
 * −80 dB otherwise), the pass band to 3.4 kHz within 0.03 dB, the stop band from 5 kHz at −65.8 dB
 * or lower (float: −67.6). test/unit/codecs/fir.test.ts holds it to −70 dB, 0.05 dB and ≥ 50 dB
 * from 4.6 kHz.
 */
export function fixedPolyphase(h: Float64Array, factor: number, up: boolean): FixedFir {
  const F = factor;
  const phases: { reach: number; values: number[] }[] = [];
  for (let p = 0; p < F; p++) {
    // Tap t of phase p is h[p + tF]: it reads input m − t (up) or input i − p − tF (down).
    const taps: number[] = [];
    for (let k = p; k < h.length; k += F) taps.push(up ? h[k]! * F : h[k]!);
    let lo = 0;
    let hi = taps.length - 1;
    while (lo <= hi && taps[lo] === 0) lo++;
    while (hi >= lo && taps[hi] === 0) hi--;
    if (lo > hi) {
      phases.push({ reach: 0, values: [] });
      continue;
    }
    const values: number[] = [];
    for (let t = hi; t >= lo; t--) values.push(taps[t]!);
    phases.push({ reach: hi, values });
  }
  const quantise = (v: number, shift: number): number => Math.sign(v) * Math.round(Math.abs(v) * 2 ** shift);
  for (let shift = 15; shift >= 14; shift--) {
    const q = phases.map((ph) => ph.values.map((v) => quantise(v, shift)));
    const absSums = q.map((c) => c.reduce((s, v) => s + Math.abs(v), 0));
    const worst = up ? Math.max(...absSums) : absSums.reduce((s, v) => s + v, 0);
    if (worst > MAX_ABS_SUM || q.some((c) => c.some((v) => v > 32767 || v < -32767))) continue;
    return {
      up,
      factor: F,
      shift,
      coefs: Int16Array.from(q.flat()),
      lengths: Uint32Array.from(q, (c) => c.length),
      reach: Uint32Array.from(phases, (ph) => ph.reach),
      history: Math.max(...phases.map((ph, p) => (up ? ph.reach : p + F * ph.reach))),
      taps: h.length,
    };
  }
  throw new RangeError(`fixedPolyphase: the filter's gain is too high for Int16 coefficients in Q14 (factor ${F})`);
}

/** (acc + 2^(shift−1)) >> shift, clamped to 16 bits: round half up, as native/fir.cc's Round16. */
function round16(acc: number, half: number, shift: number): number {
  const v = (acc + half) >> shift;
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

/** dot4's four sums; one per module (and thread): the loops are synchronous and never re-entered. */
const sums = new Int32Array(4);

/**
 * Adds to sums[k], k < 4, the dot product Σ_j coefs[at + j] · work[base + stride·(k + j)]: four
 * outputs whose windows are one `stride` apart, so each coefficient and each input is loaded once
 * for all four (a sliding window in x0…x3). Against one output at a time in V8, best of 12 runs of
 * a 20 ms frame: 3.5 vs 4.6 µs at 8 → 16 kHz, 2.8 vs 5.7 µs at 16 → 8 kHz.
 */
function dot4(coefs: Int16Array, at: number, len: number, work: Int16Array, base: number, stride: number): void {
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let x0 = work[base]!;
  let x1 = work[base + stride]!;
  let x2 = work[base + 2 * stride]!;
  let x = base + 3 * stride;
  for (let j = 0; j < len; j++, x += stride) {
    const c = coefs[at + j]!;
    const x3 = work[x]!;
    a0 = (a0 + c * x0) | 0;
    a1 = (a1 + c * x1) | 0;
    a2 = (a2 + c * x2) | 0;
    a3 = (a3 + c * x3) | 0;
    x0 = x1;
    x1 = x2;
    x2 = x3;
  }
  sums[0] = (sums[0]! + a0) | 0;
  sums[1] = (sums[1]! + a1) | 0;
  sums[2] = (sums[2]! + a2) | 0;
  sums[3] = (sums[3]! + a3) | 0;
}

/** One output's Σ_j coefs[at + j] · work[base + stride·j]. */
function dot1(coefs: Int16Array, at: number, len: number, work: Int16Array, base: number, stride: number): number {
  let acc = 0;
  for (let j = 0; j < len; j++) acc = (acc + coefs[at + j]! * work[base + stride * j]!) | 0;
  return acc;
}

/**
 * The TypeScript loops: every output the same integer sum as native/fir.cc's. The `| 0` after each
 * add tells V8 the sum stays an int32 (true by MAX_ABS_SUM), which spares it an overflow check per
 * add. Downsampling reads the interleaved input with a stride of F rather than deinterleaving it
 * first: with no SIMD here, a stride costs nothing and the copy would.
 */
export const jsFir: FirLoops = Object.freeze({
  prepare(fir: FixedFir): FirPlan {
    return fir as unknown as FirPlan;
  },

  up(plan: FirPlan, work: Int16Array, n: number, dst: Int16Array): number {
    const { coefs, lengths, reach, factor: F, shift, history } = plan as unknown as FixedFir;
    const half = 1 << (shift - 1);
    let at = 0;
    for (let p = 0; p < F; p++) {
      const len = lengths[p]!;
      const from = history - reach[p]!; // phase p's oldest input for m = 0
      let m = 0;
      for (; m + 3 < n; m += 4) {
        sums.fill(0);
        dot4(coefs, at, len, work, from + m, 1);
        const o = m * F + p;
        dst[o] = round16(sums[0]!, half, shift);
        dst[o + F] = round16(sums[1]!, half, shift);
        dst[o + 2 * F] = round16(sums[2]!, half, shift);
        dst[o + 3 * F] = round16(sums[3]!, half, shift);
      }
      for (; m < n; m++) dst[m * F + p] = round16(dot1(coefs, at, len, work, from + m, 1), half, shift);
      at += len;
    }
    return n * F;
  },

  down(plan: FirPlan, work: Int16Array, start: number, n: number, dst: Int16Array): number {
    const { coefs, lengths, reach, factor: F, shift, history } = plan as unknown as FixedFir;
    const half = 1 << (shift - 1);
    const end = history + n;
    let o = 0;
    let i = history + start; // the next output's newest input
    for (; i + 3 * F < end; i += 4 * F, o += 4) {
      sums.fill(0);
      let at = 0;
      for (let q = 0; q < F; q++) {
        const len = lengths[q]!;
        dot4(coefs, at, len, work, i - q - F * reach[q]!, F);
        at += len;
      }
      dst[o] = round16(sums[0]!, half, shift);
      dst[o + 1] = round16(sums[1]!, half, shift);
      dst[o + 2] = round16(sums[2]!, half, shift);
      dst[o + 3] = round16(sums[3]!, half, shift);
    }
    for (; i < end; i += F) {
      let acc = 0;
      let at = 0;
      for (let q = 0; q < F; q++) {
        const len = lengths[q]!;
        acc = (acc + dot1(coefs, at, len, work, i - q - F * reach[q]!, F)) | 0;
        at += len;
      }
      dst[o++] = round16(acc, half, shift);
    }
    return o;
  },
});
