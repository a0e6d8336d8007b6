import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClockSubscribers, LAZY_EVERY } from '../../../../edge/media/clock-subscribers.js';

/** A clock's error counter, as Ticker and NativeClock keep it. */
function owner(): { errors: number; onFirstError: (err: unknown) => void; first: unknown[] } {
  const first: unknown[] = [];
  return { errors: 0, onFirstError: (err) => first.push(err), first };
}

describe('ClockSubscribers', () => {
  it('skips a tick whose word the lane set, clears the word, and runs every after-tick of a subscriber that is not lazy', () => {
    const subs = new ClockSubscribers();
    const table = new Float64Array(8);
    const log: string[] = [];
    subs.add(() => log.push('tick'), () => log.push('after'), { skip: { table, index: 5 } });
    const o = owner();
    table[5] = 1;
    subs.tick(o);
    subs.after(o);
    assert.equal(table[5], 0);
    subs.tick(o);
    subs.after(o);
    assert.deepEqual(log, ['after', 'tick', 'after']);
  });

  it('runs a lazy after-tick every beat its tick ran, and every LAZY_EVERY-th beat the lane did it, the subscribers spread over the beats', () => {
    const subs = new ClockSubscribers();
    const table = new Float64Array(LAZY_EVERY);
    const afters = Array.from({ length: LAZY_EVERY }, () => 0);
    for (let i = 0; i < LAZY_EVERY; i++) subs.add(() => undefined, () => afters[i]!++, { skip: { table, index: i }, lazyAfter: true });
    const o = owner();
    const beats = 4 * LAZY_EVERY;
    const perBeat: number[] = [];
    for (let b = 0; b < beats; b++) {
      table.fill(1); // the lane played every slot out
      subs.tick(o);
      const before = afters.reduce((x, y) => x + y, 0);
      subs.after(o);
      perBeat.push(afters.reduce((x, y) => x + y, 0) - before);
    }
    assert.deepEqual(perBeat, Array(beats).fill(1), 'one subscriber per beat');
    assert.deepEqual(afters, Array(LAZY_EVERY).fill(4), 'each every LAZY_EVERY-th beat');
    // A beat whose tick ran (JavaScript ticked the call: marks may be due) runs every after-tick.
    table.fill(0);
    subs.tick(o);
    subs.after(o);
    assert.deepEqual(afters, Array(LAZY_EVERY).fill(5));
  });

  it('counts a throwing subscriber, reports it once, and runs the others', () => {
    const subs = new ClockSubscribers();
    let ran = 0;
    const bad = () => {
      throw new Error('bug in one call');
    };
    subs.add(bad, bad, undefined);
    subs.add(() => ran++, () => ran++, undefined);
    const o = owner();
    for (let b = 0; b < 3; b++) {
      subs.tick(o);
      subs.after(o);
    }
    assert.equal(ran, 6);
    assert.equal(o.errors, 6);
    assert.equal(o.first.length, 1);
    subs.delete(bad);
    assert.equal(subs.size, 1);
  });
});
