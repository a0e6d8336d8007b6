// The node ticker (edge/media/ticker.ts) paces every bot's playout; its test sits with the bot tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ticker } from '../../../../edge/media/ticker.js';

/** Waits until `cond` holds (a loaded machine may stall a timer for a while), at most `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The median of the gaps between successive times: the period, unmoved by a stall or two. */
function medianStep(at: number[]): number {
  const steps = at
    .slice(1)
    .map((x, i) => x - at[i]!)
    .sort((a, b) => a - b);
  return steps[Math.floor(steps.length / 2)]!;
}

describe('Ticker', { timeout: 20000 }, () => {
  it('beats every period, isolates a throwing subscriber, and resumes after stop', async () => {
    const t = new Ticker(20);
    const at: number[] = [];
    const errs: unknown[] = [];
    t.onFirstError = (e) => errs.push(e);
    const bad = () => {
      throw new Error('bug');
    };
    const good = () => void at.push(performance.now());
    t.add(bad);
    t.add(good);
    await until(() => at.length >= 20, 5000, '20 ticks');
    t.delete(bad);
    t.delete(good);
    const step = medianStep(at);
    assert.ok(Math.abs(step - 20) < 2, `median period ${step.toFixed(2)} ms`);
    assert.equal(errs.length, 1, 'the throwing subscriber is reported once');
    assert.ok(t.errors >= 20, `${t.errors} errors counted`);
    const before = at.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(at.length, before, 'no ticks while stopped');
    t.add(good);
    await until(() => at.length - before >= 4, 5000, 'ticks again after add');
    t.stop();
  });

  it('runs every subscriber before any `after` in one tick, on time', async () => {
    const t = new Ticker(20);
    const order: string[] = [];
    const at: number[] = [];
    const a = () => void order.push('a');
    const b = () => {
      order.push('b');
      at.push(performance.now());
    };
    t.add(a, () => void order.push('a-after'));
    t.add(b, () => void order.push('b-after'));
    await until(() => order.length >= 24, 5000, '6 ticks');
    t.stop();
    for (let i = 0; i + 4 <= order.length; i += 4) assert.deepEqual(order.slice(i, i + 4), ['a', 'b', 'a-after', 'b-after']);
    const step = medianStep(at);
    assert.ok(step > 15 && step < 25, `median period ${step.toFixed(1)} ms`);
  });
});
