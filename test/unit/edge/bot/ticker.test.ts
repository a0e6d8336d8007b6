// The node ticker (edge/media/ticker.ts) paces every bot's playout; its test sits with the bot tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ticker } from '../../../../edge/media/ticker.js';

describe('Ticker', { timeout: 10000 }, () => {
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
    await new Promise((r) => setTimeout(r, 410));
    t.delete(bad);
    t.delete(good);
    assert.ok(at.length >= 18 && at.length <= 21, `${at.length} ticks in 410 ms`);
    const steps = at.slice(1).map((x, i) => x - at[i]!);
    const mean = steps.reduce((a, b) => a + b, 0) / steps.length;
    assert.ok(Math.abs(mean - 20) < 1, `mean period ${mean.toFixed(2)} ms`);
    assert.equal(errs.length, 1);
    assert.ok(t.errors >= 18);
    const before = at.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(at.length, before, 'no ticks while stopped');
    t.add(good);
    await new Promise((r) => setTimeout(r, 110));
    t.stop();
    assert.ok(at.length - before >= 4, 'ticks again after add');
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
    await new Promise((r) => setTimeout(r, 110));
    t.stop();
    assert.ok(order.length >= 12, `${order.length} calls`);
    for (let i = 0; i + 4 <= order.length; i += 4) assert.deepEqual(order.slice(i, i + 4), ['a', 'b', 'a-after', 'b-after']);
    const steps = at.slice(1).map((x, i) => x - at[i]!);
    assert.ok(steps.every((d) => d > 10 && d < 30), `periods ${steps.map((d) => d.toFixed(1)).join(',')}`);
  });
});
