/**
 * One 20 ms clock for all calls of a node (DESIGN.md: one timer per shard, not one per call).
 * setTimeout drifts and wakes late under load, so each wake-up runs every tick that is due,
 * measured against the monotonic clock; after a long stall (more than `maxCatchUp` ticks) it
 * resynchronises instead of bursting seconds of audio at once.
 */
export class Ticker {
  readonly #subscribers = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #nextAt = 0;
  /** Ticks skipped because the event loop stalled. */
  skipped = 0;
  /** Subscriber calls that threw. */
  errors = 0;
  /** Told about the first subscriber error, so a bug is seen once instead of 50 times a second. */
  onFirstError: ((err: unknown) => void) | undefined;

  constructor(
    readonly periodMs = 20,
    private readonly maxCatchUp = 5,
  ) {}

  add(fn: () => void): void {
    this.#subscribers.add(fn);
    if (!this.#timer) this.#start();
  }

  delete(fn: () => void): void {
    this.#subscribers.delete(fn);
    if (this.#subscribers.size === 0) this.stop();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #start(): void {
    this.#nextAt = performance.now() + this.periodMs;
    this.#schedule();
  }

  #schedule(): void {
    const delay = Math.max(0, this.#nextAt - performance.now());
    this.#timer = setTimeout(() => this.#run(), delay);
  }

  #run(): void {
    const now = performance.now();
    let due = Math.floor((now - this.#nextAt) / this.periodMs) + 1;
    if (due > this.maxCatchUp) {
      this.skipped += due - 1;
      this.#nextAt += (due - 1) * this.periodMs;
      due = 1;
    }
    for (let i = 0; i < due; i++) {
      for (const fn of this.#subscribers) {
        try {
          fn();
        } catch (err) {
          // A subscriber's bug must not stop every other call's audio: count it, report the first.
          this.errors++;
          if (this.errors === 1) this.onFirstError?.(err);
        }
      }
      this.#nextAt += this.periodMs;
    }
    if (this.#subscribers.size > 0) this.#schedule();
    else this.#timer = undefined;
  }
}
