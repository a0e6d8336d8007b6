/**
 * A latency histogram: fixed 10 µs buckets up to 2 s plus an overflow bucket, exact max.
 * Recording is one array increment (no allocation), so the load generator and the bot can record
 * every frame, and the media node every datagram (media/write-latency.ts); histograms cross process
 * boundaries as sparse [bucket, count] pairs and merge by addition.
 */
export const BUCKET_US = 10;
const BUCKETS = 200_000; // 2 s

export interface SparseHistogram {
  count: number;
  sumUs: number;
  maxUs: number;
  /** Values below zero (clock skew or a bug): counted, not bucketed. */
  negative: number;
  buckets: [number, number][];
}

export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS + 1);
  count = 0;
  sumUs = 0;
  maxUs = 0;
  negative = 0;

  record(us: number): void {
    if (us < 0) {
      this.negative++;
      if (us < -1000) return;
      us = 0;
    }
    const b = Math.min(BUCKETS, Math.floor(us / BUCKET_US));
    this.#counts[b]!++;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The value (µs) below which a fraction `q` of the recorded values lie; upper edge of its bucket. */
  quantileUs(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b <= BUCKETS; b++) {
      seen += this.#counts[b]!;
      if (seen >= rank) return Math.min((b + 1) * BUCKET_US, this.maxUs);
    }
    return this.maxUs;
  }

  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.sumUs = 0;
    this.maxUs = 0;
    this.negative = 0;
  }

  toSparse(): SparseHistogram {
    const buckets: [number, number][] = [];
    for (let b = 0; b <= BUCKETS; b++) if (this.#counts[b]! > 0) buckets.push([b, this.#counts[b]!]);
    return { count: this.count, sumUs: this.sumUs, maxUs: this.maxUs, negative: this.negative, buckets };
  }

  static fromSparse(s: SparseHistogram): Histogram {
    const h = new Histogram();
    h.merge(s);
    return h;
  }

  merge(s: SparseHistogram): void {
    for (const [b, c] of s.buckets) this.#counts[b]! += c;
    this.count += s.count;
    this.sumUs += s.sumUs;
    this.negative += s.negative;
    if (s.maxUs > this.maxUs) this.maxUs = s.maxUs;
  }

  /** Summary in milliseconds, rounded to 0.01 ms. */
  summaryMs(): { p50: number; p99: number; max: number } {
    const r = (us: number) => Math.round(us / 10) / 100;
    return { p50: r(this.quantileUs(0.5)), p99: r(this.quantileUs(0.99)), max: r(this.maxUs) };
  }

  /** Counts grouped into `width`-µs bins from 0 to `toUs`, for charts. */
  bins(width: number, toUs: number): number[] {
    const out = new Array<number>(Math.ceil(toUs / width)).fill(0);
    for (let b = 0; b <= BUCKETS; b++) {
      const c = this.#counts[b]!;
      if (c === 0) continue;
      const i = Math.min(out.length - 1, Math.floor((b * BUCKET_US) / width));
      out[i]! += c;
    }
    return out;
  }
}
