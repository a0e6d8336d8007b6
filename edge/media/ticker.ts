import { writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { ClockSubscribers, type SubscribeOptions } from './clock-subscribers.js';

/**
 * One 20 ms clock for all calls of a node (DESIGN.md: one timer per shard, not one per call).
 *
 * The beat comes from a tiny timing thread that sleeps in `Atomics.wait` (a futex) and posts one
 * message per period; setTimeout alone wakes on whole milliseconds of the loop's cached clock.
 * Every tick still runs on the main thread, in order.
 *
 * Wake-ups are not exact: the timing thread's futex wake, its message to the main thread and the
 * main thread's own wake-up each take ~0.1-0.2 ms and, now and then, 1-4 ms (another thread held
 * the core; measured in docs/benchmarks/bot-protocols.md). A packet's departure is its tick's start,
 * so that tail was the whole inter-departure jitter tail. So the beat is posted `leadMs` EARLY, and
 * the main thread, once it has it, waits out the rest in `Atomics.wait` (no CPU) until the beat is
 * due: the long hops' lateness is absorbed, and only one sub-millisecond futex wake stays between
 * the due time and the tick. The price: the event loop sits idle for up to `leadMs` per period
 * (other I/O waits that long; a barge-in read in that window takes effect one tick later).
 *
 * Ticks run in two phases: every subscriber's `fn` (the RTP sends), then every `after` (bot I/O,
 * reports), so no call's packet waits behind another call's WebSocket work.
 *
 * Each beat carries the absolute time it was due; a beat that arrives more than `maxCatchUp`
 * periods late (the event loop stalled) is skipped and counted instead of bursting seconds of audio
 * at once. If the thread cannot be started, setTimeout drives the same logic.
 *
 * `BOTEDGE_TICKER_TRACE=<file>`: records each beat's timing (due, posted by the thread, received,
 * tick start, tick end; epoch ms) and every GC into that JSON file, once a second. Diagnostics only.
 */
const BEAT_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const flags = new Int32Array(workerData.sab, 0, 2); // [0] running (0/1), [1] wake-up generation
const posted = new Float64Array(workerData.sab, 8, 1); // when the last beat was posted (diagnostics)
const period = workerData.period;
const lead = workerData.lead;
const now = () => performance.timeOrigin + performance.now();
let next = now() + period;
for (;;) {
  if (Atomics.load(flags, 0) === 0) {
    // Bounded waits: a thread parked in a futex cannot be terminated, and the process waits for it at exit.
    if (Atomics.wait(flags, 0, 0, 100) !== 'timed-out') next = now() + period;
    continue;
  }
  const gen = Atomics.load(flags, 1);
  const wait = next - lead - now();
  if (wait > 0 && Atomics.wait(flags, 1, gen, wait) !== 'timed-out') continue;
  if (Atomics.load(flags, 0) === 0) continue;
  posted[0] = now();
  parentPort.postMessage(next);
  next += period;
  if (now() - next > period * 50) next = now() + period; // the process was suspended: restart the beat
}
`;

const TRACE_FILE = process.env.BOTEDGE_TICKER_TRACE;

/** `BOTEDGE_TICKER_LEAD_MS` (0 to period/4; default 2): 0 restores wake-on-time, no idle window. */
function leadFromEnv(periodMs: number): number {
  const v = Number(process.env.BOTEDGE_TICKER_LEAD_MS ?? 2);
  return Number.isFinite(v) && v >= 0 ? Math.min(v, periodMs / 4) : 2;
}

export class Ticker {
  readonly #subscribers = new ClockSubscribers();
  #timer: NodeJS.Timeout | undefined;
  #nextAt = 0;
  #worker: Worker | undefined;
  #flags: Int32Array | undefined;
  #posted: Float64Array | undefined;
  /** Never notified: the main thread's precise sleep until a beat is due. */
  readonly #sleep = new Int32Array(new SharedArrayBuffer(4));
  #running = false;
  readonly #trace: { beats: number[][]; gcs: number[][] } | undefined;
  /** Ticks skipped because the event loop stalled. */
  skipped = 0;
  /** Subscriber calls that threw. */
  errors = 0;
  /** Told about the first subscriber error, so a bug is seen once instead of 50 times a second. */
  onFirstError: ((err: unknown) => void) | undefined;

  constructor(
    readonly periodMs = 20,
    private readonly maxCatchUp = 5,
    /** How early the timing thread posts a beat; the main thread sleeps the rest (see above). */
    readonly leadMs = leadFromEnv(periodMs),
  ) {
    if (TRACE_FILE) {
      const trace = (this.#trace = { beats: [] as number[][], gcs: [] as number[][] });
      new PerformanceObserver((l) => {
        for (const e of l.getEntries()) trace.gcs.push([performance.timeOrigin + e.startTime, e.duration, (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0]);
      }).observe({ entryTypes: ['gc'] });
      setInterval(() => writeFileSync(TRACE_FILE, JSON.stringify(trace)), 1000).unref();
    }
  }

  /**
   * Calls `fn` every period; `after`, if given, in the same tick once every subscriber's `fn` has
   * run. Put what must leave on time (RTP) in `fn` and the rest (bot I/O) in `after`.
   */
  add(fn: () => void, after?: () => void, opts?: SubscribeOptions): void {
    this.#subscribers.add(fn, after, opts);
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
        const sab = new SharedArrayBuffer(16);
        this.#flags = new Int32Array(sab, 0, 2);
        this.#posted = new Float64Array(sab, 8, 1);
        const w = new Worker(BEAT_SOURCE, { eval: true, workerData: { sab, period: this.periodMs, lead: this.leadMs } });
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
    const receivedAt = performance.timeOrigin + performance.now();
    const early = dueAt - receivedAt;
    if (-early > this.maxCatchUp * this.periodMs) {
      this.skipped++;
      return;
    }
    // Bounded by the lead: a clock oddity must never park the event loop for long.
    if (early > 0) Atomics.wait(this.#sleep, 0, 0, Math.min(early, this.leadMs));
    if (!this.#trace) {
      this.#runOnce();
      return;
    }
    const startAt = performance.timeOrigin + performance.now();
    this.#runOnce();
    this.#trace.beats.push([dueAt, this.#posted?.[0] ?? 0, receivedAt, startAt, performance.timeOrigin + performance.now()]);
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
    this.#subscribers.tick(this);
    this.#subscribers.after(this);
  }
}
