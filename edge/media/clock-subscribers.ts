/**
 * A media clock's subscribers (Ticker, NativeClock): each answered call's tick and after-tick,
 * run once per beat, in two phases (every tick, then every after-tick: RTP leaves before any bot
 * I/O). A throw is counted on the clock and reported once (runGuarded), and the others still run.
 *
 * At a thousand calls, visiting the calls is itself a cost: each visit touches a call's closure,
 * media, bot stream and block. Two shortcuts skip visits that would do nothing:
 * - `skip`: a word of the receive lane's table (rx-lane.ts LANE.txDone) that the lane's tick sets
 *   when it played the call's slot out. The call's tick would only take note, so it is not called;
 *   the word is cleared here.
 * - `lazyAfter`: the after-tick is housekeeping that can wait 100 ms (a `native-mux` call: its
 *   frames leave in the connection's batch, its reports go at most once a second). In a beat whose
 *   tick was skipped it runs only every LAZY_EVERY-th beat, the subscribers spread over the phases
 *   so that some call of a connection still maintains it every beat.
 */
import { runGuarded, type ErrorCounter } from './rtp-socket.js';

/** A word of the receive lane's table (rx-lane.ts LANE.txDone): 1 when the lane's tick played a call's slot out. */
export interface TickSkip {
  readonly table: Float64Array;
  readonly index: number;
}

/** Beats between a lazy after-tick's runs when the lane does the call's ticks. */
export const LAZY_EVERY = 5;

export interface SubscribeOptions {
  /** The lane's word for this subscriber: a beat it marks done does not call `fn`. */
  skip?: TickSkip | undefined;
  /** `after` may wait: see above. */
  lazyAfter?: boolean | undefined;
}

interface Subscriber {
  readonly fn: () => void;
  readonly after: (() => void) | undefined;
  readonly skip: TickSkip | undefined;
  readonly lazy: boolean;
  readonly phase: number;
  /** This beat's `fn` was skipped. */
  skipped: boolean;
}

export class ClockSubscribers {
  readonly #subscribers = new Map<() => void, Subscriber>();
  #added = 0;
  #beats = 0;

  get size(): number {
    return this.#subscribers.size;
  }

  add(fn: () => void, after: (() => void) | undefined, opts: SubscribeOptions | undefined): void {
    this.#subscribers.set(fn, { fn, after, skip: opts?.skip, lazy: opts?.lazyAfter === true, phase: this.#added++ % LAZY_EVERY, skipped: false });
  }

  delete(fn: () => void): void {
    this.#subscribers.delete(fn);
  }

  /** Phase 1 of a beat: every subscriber's `fn` the lane has not done. */
  tick(owner: ErrorCounter): void {
    for (const s of this.#subscribers.values()) {
      const k = s.skip;
      if (k !== undefined && k.table[k.index] === 1) {
        k.table[k.index] = 0;
        s.skipped = true;
        continue;
      }
      s.skipped = false;
      runGuarded(owner, s.fn);
    }
  }

  /** Phase 2, once the beat's packets have left: every `after` that is due. */
  after(owner: ErrorCounter): void {
    const phase = this.#beats++ % LAZY_EVERY;
    for (const s of this.#subscribers.values()) {
      if (s.after === undefined || (s.skipped && s.lazy && s.phase !== phase)) continue;
      runGuarded(owner, s.after);
    }
  }
}
