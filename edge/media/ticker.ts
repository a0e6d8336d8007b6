import { Worker } from 'node:worker_threads';

/**
 * One 20 ms clock for all calls of a node (DESIGN.md: one timer per shard, not one per call).
 *
 * The beat comes from a tiny timing thread that sleeps in `Atomics.wait` (a futex: sub-millisecond
 * wake-ups) and posts one message per period. setTimeout alone wakes on whole milliseconds of the
 * loop's cached clock, so packets leave up to ~1-2 ms early or late (measured: inter-departure p99
 * 3.6-3.9 ms off 20 ms; docs/benchmarks/bot-protocols.md); the thread costs no CPU while it sleeps
 * and keeps no work off the main thread: every tick still runs here, in order.
 *
 * Each beat carries the absolute time it was due; a beat that arrives more than `maxCatchUp`
 * periods late (the event loop stalled) is skipped and counted instead of bursting seconds of audio
 * at once. If the thread cannot be started, setTimeout drives the same logic.
 */
const BEAT_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const flags = new Int32Array(workerData.sab); // [0] running (0/1), [1] wake-up generation
const period = workerData.period;
const now = () => performance.timeOrigin + performance.now();
let next = 0;
for (;;) {
  if (Atomics.load(flags, 0) === 0) {
    // Bounded waits: a thread parked in a futex cannot be terminated, and the process waits for it at exit.
    if (Atomics.wait(flags, 0, 0, 100) !== 'timed-out') next = now() + period;
    continue;
  }
  const gen = Atomics.load(flags, 1);
  const wait = next - now();
  if (wait > 0 && Atomics.wait(flags, 1, gen, wait) !== 'timed-out') continue;
  if (Atomics.load(flags, 0) === 0) continue;
  parentPort.postMessage(next);
  next += period;
  if (now() - next > period * 50) next = now() + period; // the process was suspended: restart the beat
}
`;

export class Ticker {
  readonly #subscribers = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #nextAt = 0;
  #worker: Worker | undefined;
  #flags: Int32Array | undefined;
  #running = false;
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
    if (!this.#running) this.#start();
  }

  delete(fn: () => void): void {
    this.#subscribers.delete(fn);
    if (this.#subscribers.size === 0) this.stop();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flags) {
      Atomics.store(this.#flags, 0, 0);
      Atomics.add(this.#flags, 1, 1);
      Atomics.notify(this.#flags, 1);
    }
  }

  #start(): void {
    this.#running = true;
    if (this.#beat()) return;
    this.#nextAt = performance.now() + this.periodMs;
    this.#schedule();
  }

  /** Starts (or resumes) the timing thread; false when it cannot run here. */
  #beat(): boolean {
    try {
      if (!this.#worker) {
        const sab = new SharedArrayBuffer(8);
        this.#flags = new Int32Array(sab);
        const w = new Worker(BEAT_SOURCE, { eval: true, workerData: { sab, period: this.periodMs } });
        w.on('message', (dueAt: number) => this.#onBeat(dueAt));
        w.unref(); // the clock never keeps the process alive (after on('message'), which refs it again)
        w.on('error', () => {
          // Fall back to setTimeout for good.
          this.#worker = undefined;
          this.#flags = undefined;
          if (this.#running) {
            this.#nextAt = performance.now() + this.periodMs;
            this.#schedule();
          }
        });
        this.#worker = w;
      }
      Atomics.store(this.#flags!, 0, 1);
      Atomics.notify(this.#flags!, 0);
      return true;
    } catch {
      this.#worker = undefined;
      this.#flags = undefined;
      return false;
    }
  }

  #onBeat(dueAt: number): void {
    if (!this.#running) return;
    if (performance.timeOrigin + performance.now() - dueAt > this.maxCatchUp * this.periodMs) {
      this.skipped++;
      return;
    }
    this.#runOnce();
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
      this.#runOnce();
      this.#nextAt += this.periodMs;
    }
    if (this.#running && this.#subscribers.size > 0) this.#schedule();
    else this.#timer = undefined;
  }

  #runOnce(): void {
    for (const fn of this.#subscribers) {
      try {
        fn();
      } catch (err) {
        // A subscriber's bug must not stop every other call's audio: count it, report the first.
        this.errors++;
        if (this.errors === 1) this.onFirstError?.(err);
      }
    }
  }
}
