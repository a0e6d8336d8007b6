import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SendQueue } from '../../../../edge/bot/send-queue.js';

describe('bounded send queue for a slow bot', () => {
  it('drops the oldest audio beyond the bound, counts it, and keeps order', () => {
    const q = new SendQueue<number, string>(3);
    for (let i = 1; i <= 5; i++) q.pushAudio(i);
    assert.equal(q.audioDropped, 2);
    assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()].map((x) => x && (x.kind === 'audio' ? x.audio : x.event)), [3, 4, 5, undefined]);
  });

  it('never drops an event while audio can go instead', () => {
    const q = new SendQueue<number, string>(2);
    q.pushAudio(1);
    q.pushEvent('mark-a');
    q.pushAudio(2);
    q.pushAudio(3);
    const out: (number | string)[] = [];
    for (let it = q.shift(); it; it = q.shift()) out.push(it.kind === 'audio' ? it.audio : it.event);
    assert.deepEqual(out, ['mark-a', 2, 3]);
    assert.equal(q.eventsDropped, 0);
  });

  it('bounds events too, oldest first', () => {
    const q = new SendQueue<number, number>(1, 2);
    q.pushEvent(1);
    q.pushEvent(2);
    q.pushEvent(3);
    assert.equal(q.eventsDropped, 1);
    assert.equal(q.length, 2);
    const first = q.shift();
    assert.equal(first?.kind === 'event' ? first.event : -1, 2);
  });
});
