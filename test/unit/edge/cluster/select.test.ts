import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Member } from '../../../../edge/cluster/member.js';
import { PendingForwards, pickNode } from '../../../../edge/cluster/select.js';

const now = 1_000_000;
function media(id: string, calls: number, capacity = 100, extra: Partial<Member> = {}): Member {
  return { id, role: 'media', state: 'active', sip: `127.0.0.1:${5000 + id.length}`, rtp: '127.0.0.1', calls, capacity, cpu: 0, heartbeat: now - 100, callsTotal: 0, ...extra };
}
const none = () => 0;

describe('pickNode: argmin(calls / capacity) over live, active media nodes', () => {
  it('picks the node with the most headroom, relative to capacity', () => {
    assert.equal(pickNode([media('a', 50), media('b', 20), media('c', 30)], none, now)?.id, 'b');
    // 30/200 = 0.15 beats 20/100 = 0.2
    assert.equal(pickNode([media('a', 20), media('b', 30, 200)], none, now)?.id, 'b');
  });

  it('skips draining, dead, full, excluded and non-media members', () => {
    const members = [
      media('draining', 0, 100, { state: 'draining' }),
      media('dead', 0, 100, { heartbeat: now - 3001 }),
      media('full', 100, 100),
      media('tried', 0),
      { ...media('proxy', 0), role: 'proxy' as const },
      media('ok', 99),
    ];
    assert.equal(pickNode(members, none, now, new Set(['tried']))?.id, 'ok');
    assert.equal(pickNode(members.slice(0, 5), none, now, new Set(['tried'])), undefined);
  });

  it('counts INVITEs already sent but not yet in the row, so a burst spreads', () => {
    const members = [media('a', 10), media('b', 10), media('c', 10)];
    const pending = new PendingForwards();
    const picks: string[] = [];
    for (let i = 0; i < 30; i++) {
      const n = pickNode(members, (id) => pending.count(id, now), now)!;
      pending.add(n.id, now);
      picks.push(n.id);
    }
    const counts = Object.fromEntries(['a', 'b', 'c'].map((id) => [id, picks.filter((p) => p === id).length]));
    assert.deepEqual(counts, { a: 10, b: 10, c: 10 });
  });
});

describe('PendingForwards', () => {
  it('settles forwards that a later row already counts, keeps newer ones', () => {
    const p = new PendingForwards(200, 5000);
    p.add('a', 1000);
    p.add('a', 1500);
    p.settle('a', 1300); // published 300 ms after the first forward: counts it; not the second
    assert.equal(p.count('a', 1600), 1);
    p.settle('a', 1699);
    assert.equal(p.count('a', 1800), 1);
    p.settle('a', 1700);
    assert.equal(p.count('a', 1800), 0);
  });

  it('expires forwards the node never counted (refused INVITEs)', () => {
    const p = new PendingForwards(200, 5000);
    p.add('a', 1000);
    assert.equal(p.count('a', 5999), 1);
    assert.equal(p.count('a', 6001), 0);
  });
});
