/**
 * ITU-T G.722 at 64 kbit/s: 16 kHz wideband audio as sub-band ADPCM. A quadrature mirror filter
 * splits each pair of input samples into a low band (0–4 kHz, 6 bits of ADPCM) and a high band
 * (4–8 kHz, 2 bits); one byte carries both. The block names in the comments (1L, 2H, …) are the
 * Recommendation's. https://www.itu.int/rec/T-REC-G.722
 *
 * On the wire (RFC 3551 §4.5.2): payload type 9, `G722/8000` — the RTP clock is 8 kHz although the
 * audio is sampled at 16 kHz, for historical reasons, so 20 ms is 160 bytes, 320 samples and a
 * timestamp step of 160.
 *
 * Encoder and decoder each hold the state of both bands (adaptive predictors and quantiser scale
 * factors): one per call and direction. No allocation per frame. With the native addon they run
 * native/g722.cc (the same blocks in C++, ~10× faster, identical output: native.test.ts);
 * without it, or with `{ native: false }`, this TypeScript.
 */
import { nativeG722 } from './native.js';

/** QMF coefficients (the 24-tap filter is symmetric: 12 of them). */
const QMF = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/** Low band: log-scale-factor steps (WL), the map from a 4-bit code to their index (RIL → IL4). */
const WL = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42 = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/** Inverse log table of the scale factor (ILB), shared by both bands. */
const ILB = [
  2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371,
  3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/** Low band quantiser decision levels (Q6) and the codes below (ILN) and above (ILP) zero. */
const Q6 = [
  0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195,
  2557, 2919, 0, 0,
];
const ILN = [0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 0];
const ILP = [0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0];
/** Low band inverse quantisers: 4-bit (the predictor's input) and 6-bit (the output at 64 kbit/s). */
const QM4 = [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
const QM6 = [
  -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456,
  -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232,
  9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/** High band: inverse quantiser, log-scale-factor steps, codes. */
const QM2 = [-7408, -1616, 7408, 1616];
const WH = [0, -214, 798];
const RH2 = [2, 1, 2, 1];
const IHN = [0, 1, 0];
const IHP = [0, 3, 2];

function sat16(x: number): number {
  return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

/**
 * One band's ADPCM state: the pole-zero predictor and the quantiser's scale factor. Plain number
 * fields and Int32Arrays, not arrays of numbers: this runs once per band per sample pair, 8,000
 * times a second per call and direction.
 */
class Band {
  s = 0;
  sz = 0;
  nb = 0;
  det: number;
  /** Reconstructed signal r[0..2], partial reconstruction p[0..2], pole coefficients a[1..2]. */
  readonly r = new Int32Array(3);
  readonly p = new Int32Array(3);
  readonly a = new Int32Array(3);
  /** Quantised differences d[0..6] and zero coefficients b[1..6]. */
  readonly d = new Int32Array(7);
  readonly b = new Int32Array(7);

  constructor(det: number) {
    this.det = det;
  }

  /** Takes on `other`'s state (a checkpoint, or back to one). */
  copyFrom(other: Band): void {
    this.s = other.s;
    this.sz = other.sz;
    this.nb = other.nb;
    this.det = other.det;
    this.r.set(other.r);
    this.p.set(other.p);
    this.a.set(other.a);
    this.d.set(other.d);
    this.b.set(other.b);
  }

  /** Blocks 3L/3H, LOGSCL/LOGSCH and SCALEL/SCALEH: adapts the scale factor to the code just sent. */
  scale(step: number, max: number, shift: number): void {
    let nb = ((this.nb * 127) >> 7) + step;
    if (nb < 0) nb = 0;
    else if (nb > max) nb = max;
    this.nb = nb;
    const i = (nb >> 6) & 31;
    const e = shift - (nb >> 11);
    this.det = (e < 0 ? ILB[i]! << -e : ILB[i]! >> e) << 2;
  }

  /** Block 4: reconstructs the signal, adapts the predictor to `dx`, and predicts the next sample (`s`). */
  update(dx: number): void {
    const r = this.r;
    const p = this.p;
    const a = this.a;
    const d = this.d;
    const b = this.b;
    // RECONS, PARREC
    const r0 = sat16(this.s + dx);
    const p0 = sat16(this.sz + dx);
    const sg0 = p0 >> 15;
    const sg1 = p[1]! >> 15;
    const sg2 = p[2]! >> 15;
    // UPPOL2
    const wd1 = sat16(a[1]! << 2);
    let wd2 = sg0 === sg1 ? -wd1 : wd1;
    if (wd2 > 32767) wd2 = 32767;
    let a2 = (sg0 === sg2 ? 128 : -128) + (wd2 >> 7) + ((a[2]! * 32512) >> 15);
    if (a2 > 12288) a2 = 12288;
    else if (a2 < -12288) a2 = -12288;
    // UPPOL1
    let a1 = sat16((sg0 === sg1 ? 192 : -192) + ((a[1]! * 32640) >> 15));
    const lim = sat16(15360 - a2);
    if (a1 > lim) a1 = lim;
    else if (a1 < -lim) a1 = -lim;
    // UPZERO, then DELAYA for the zero section (each b[i] only needs its own old value and d[i])
    const step = dx === 0 ? 0 : 128;
    const sgd = dx >> 15;
    for (let i = 6; i > 0; i--) {
      b[i] = sat16(((d[i]! >> 15) === sgd ? step : -step) + ((b[i]! * 32640) >> 15));
      d[i] = i === 1 ? dx : d[i - 1]!;
    }
    // DELAYA for the pole section
    r[2] = r[1]!;
    r[1] = r0;
    p[2] = p[1]!;
    p[1] = p0;
    a[1] = a1;
    a[2] = a2;
    // FILTEP
    const sp = sat16(((a1 * sat16(r0 + r0)) >> 15) + ((a2 * sat16(r[2]! + r[2]!)) >> 15));
    // FILTEZ
    let sz = 0;
    for (let i = 6; i > 0; i--) sz += (b[i]! * sat16(d[i]! + d[i]!)) >> 15;
    this.sz = sat16(sz);
    // PREDIC
    this.s = sat16(sp + this.sz);
  }
}

/**
 * The QMF's delay line, the last 24 samples, without shifting them: every sample is stored twice,
 * 24 apart, so the window `buf[h, h + 24)` is always contiguous as `h` walks round.
 */
class QmfLine {
  readonly buf = new Int32Array(48);
  #h = 0;

  copyFrom(other: QmfLine): void {
    this.buf.set(other.buf);
    this.#h = other.#h;
  }

  /** Appends two samples; returns where the window of the last 24 now starts. */
  push(a: number, b: number): number {
    const h = this.#h;
    const buf = this.buf;
    buf[h] = buf[h + 24] = a;
    buf[h + 1] = buf[h + 25] = b;
    this.#h = h === 22 ? 0 : h + 2;
    return this.#h;
  }
}

/** The TypeScript encoder. */
class JsEncoder {
  readonly #low = new Band(32);
  readonly #high = new Band(8);
  readonly #qmf = new QmfLine();
  #saved: { low: Band; high: Band; qmf: QmfLine } | undefined;

  checkpoint(): void {
    const saved = (this.#saved ??= { low: new Band(32), high: new Band(8), qmf: new QmfLine() });
    saved.low.copyFrom(this.#low);
    saved.high.copyFrom(this.#high);
    saved.qmf.copyFrom(this.#qmf);
  }

  rewind(): void {
    const saved = this.#saved;
    if (!saved) return;
    // Swap, so a second rewind comes back: the checkpoint becomes the state it left.
    const now = { low: this.#low, high: this.#high, qmf: this.#qmf };
    const keep = { low: new Band(32), high: new Band(8), qmf: new QmfLine() };
    keep.low.copyFrom(now.low);
    keep.high.copyFrom(now.high);
    keep.qmf.copyFrom(now.qmf);
    this.#low.copyFrom(saved.low);
    this.#high.copyFrom(saved.high);
    this.#qmf.copyFrom(saved.qmf);
    this.#saved = keep;
  }

  encode(pcm: Int16Array, out: Uint8Array): number {
    const n = pcm.length / 2;
    const qmf = this.#qmf;
    const x = qmf.buf;
    const low = this.#low;
    const high = this.#high;
    for (let j = 0; j < n; j++) {
      // Transmit QMF: two samples in, one low-band and one high-band sample out.
      const h = qmf.push(pcm[2 * j]!, pcm[2 * j + 1]!);
      let sumOdd = 0;
      let sumEven = 0;
      for (let i = 0; i < 12; i++) {
        sumOdd += x[h + 2 * i]! * QMF[i]!;
        sumEven += x[h + 2 * i + 1]! * QMF[11 - i]!;
      }
      const xlow = (sumEven + sumOdd) >> 14;
      const xhigh = (sumEven - sumOdd) >> 14;

      // Low band. 1L SUBTRA, QUANTL
      const el = sat16(xlow - low.s);
      const wdl = el >= 0 ? el : -(el + 1);
      // The first decision level above |el| (30: none). The levels rise with i: a binary search.
      let lo = 1;
      let hi = 30;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (wdl < (Q6[mid]! * low.det) >> 12) hi = mid;
        else lo = mid + 1;
      }
      const ilow = el < 0 ? ILN[lo]! : ILP[lo]!;
      // 2L INVQAL (4-bit), 3L, 4L
      const ril = ilow >> 2;
      const dlow = (low.det * QM4[ril]!) >> 15;
      low.scale(WL[RL42[ril]!]!, 18432, 8);
      low.update(dlow);

      // High band. 1H SUBTRA, QUANTH
      const eh = sat16(xhigh - high.s);
      const wdh = eh >= 0 ? eh : -(eh + 1);
      const mih = wdh >= (564 * high.det) >> 12 ? 2 : 1;
      const ihigh = eh < 0 ? IHN[mih]! : IHP[mih]!;
      // 2H INVQAH, 3H, 4H
      const dhigh = (high.det * QM2[ihigh]!) >> 15;
      high.scale(WH[RH2[ihigh]!]!, 22528, 10);
      high.update(dhigh);

      out[j] = (ihigh << 6) | ilow;
    }
    return n;
  }
}

/** The TypeScript decoder. */
class JsDecoder {
  readonly #low = new Band(32);
  readonly #high = new Band(8);
  readonly #qmf = new QmfLine();

  decode(codes: Uint8Array, out: Int16Array): number {
    const n = codes.length;
    const qmf = this.#qmf;
    const x = qmf.buf;
    const low = this.#low;
    const high = this.#high;
    for (let j = 0; j < n; j++) {
      const code = codes[j]!;
      const ilow = code & 0x3f;
      const ihigh = (code >> 6) & 0x03;

      // Low band: 5L INVQBL (6-bit) and RECONS, 6L LIMIT; 2L INVQAL (4-bit) feeds the predictor.
      let rlow = low.s + ((low.det * QM6[ilow]!) >> 15);
      if (rlow > 16383) rlow = 16383;
      else if (rlow < -16384) rlow = -16384;
      const ril = ilow >> 2;
      const dlow = (low.det * QM4[ril]!) >> 15;
      low.scale(WL[RL42[ril]!]!, 18432, 8);
      low.update(dlow);

      // High band: 2H INVQAH, 5H RECONS, 6H LIMIT.
      const dhigh = (high.det * QM2[ihigh]!) >> 15;
      let rhigh = dhigh + high.s;
      if (rhigh > 16383) rhigh = 16383;
      else if (rhigh < -16384) rhigh = -16384;
      high.scale(WH[RH2[ihigh]!]!, 22528, 10);
      high.update(dhigh);

      // Receive QMF: one low-band and one high-band sample in, two samples out.
      const h = qmf.push(rlow + rhigh, rlow - rhigh);
      let out1 = 0;
      let out2 = 0;
      for (let i = 0; i < 12; i++) {
        out2 += x[h + 2 * i]! * QMF[i]!;
        out1 += x[h + 2 * i + 1]! * QMF[11 - i]!;
      }
      out[2 * j] = sat16(out1 >> 11);
      out[2 * j + 1] = sat16(out2 >> 11);
    }
    return 2 * n;
  }
}

/** The native coder: its state is an Int32Array this object owns. */
class NativeCoder {
  readonly #state: Int32Array;
  #saved: Int32Array | undefined;

  checkpoint(): void {
    (this.#saved ??= new Int32Array(this.#state.length)).set(this.#state);
  }

  rewind(): void {
    const saved = this.#saved;
    if (!saved) return;
    // Swap, so a second rewind comes back: the checkpoint becomes the state it left.
    for (let i = 0; i < saved.length; i++) {
      const v = saved[i]!;
      saved[i] = this.#state[i]!;
      this.#state[i] = v;
    }
  }

  constructor(private readonly g722: NonNullable<typeof nativeG722>) {
    this.#state = new Int32Array(g722.stateWords);
    g722.reset(this.#state);
  }

  encode(pcm: Int16Array, out: Uint8Array): number {
    return this.g722.encode(this.#state, pcm, out);
  }

  decode(codes: Uint8Array, out: Int16Array): number {
    return this.g722.decode(this.#state, codes, out);
  }
}

/** 16 kHz PCM → G.722 at 64 kbit/s, one byte per two samples. */
export class G722Encoder {
  readonly #coder: { encode(pcm: Int16Array, out: Uint8Array): number; checkpoint(): void; rewind(): void };
  readonly backend: 'native' | 'js';

  /** `native: false` takes the TypeScript coder even when the addon has one. */
  constructor(options: { native?: boolean } = {}) {
    const native = options.native !== false ? nativeG722 : undefined;
    this.#coder = native ? new NativeCoder(native) : new JsEncoder();
    this.backend = native ? 'native' : 'js';
  }

  /** Encodes `pcm` (an even number of samples) into `out[0, pcm.length / 2)`; returns the bytes written. */
  encode(pcm: Int16Array, out: Uint8Array): number {
    if (pcm.length % 2 !== 0) throw new RangeError(`G.722: ${pcm.length} samples, not a whole number of pairs`);
    if (out.length < pcm.length / 2) throw new RangeError(`G.722: ${out.length} bytes of room for ${pcm.length / 2} codes`);
    return this.#coder.encode(pcm, out);
  }

  /**
   * Remembers the coder's state, so `rewind()` can encode something else in place of what is
   * encoded next: an ADPCM code depends on everything before it, so a frame replaced after it was
   * encoded (barge-in silencing a staged packet) must be encoded from the state before it, or the
   * far decoder, whose state never saw the first version, hears a transient.
   */
  checkpoint(): void {
    this.#coder.checkpoint();
  }

  /**
   * Back to the last checkpoint, which now holds the state it left, so a second `rewind()` returns
   * there (nothing before the first checkpoint).
   */
  rewind(): void {
    this.#coder.rewind();
  }
}

/** G.722 at 64 kbit/s → 16 kHz PCM, two samples per byte. */
export class G722Decoder {
  readonly #coder: { decode(codes: Uint8Array, out: Int16Array): number };
  readonly backend: 'native' | 'js';

  /** `native: false` takes the TypeScript coder even when the addon has one. */
  constructor(options: { native?: boolean } = {}) {
    const native = options.native !== false ? nativeG722 : undefined;
    this.#coder = native ? new NativeCoder(native) : new JsDecoder();
    this.backend = native ? 'native' : 'js';
  }

  /** Decodes `codes` into `out[0, 2 × codes.length)`; returns the samples written. */
  decode(codes: Uint8Array, out: Int16Array): number {
    if (out.length < 2 * codes.length) throw new RangeError(`G.722: ${out.length} samples of room for ${2 * codes.length}`);
    return this.#coder.decode(codes, out);
  }
}
