/**
 * tdb replication across real OS processes and a real nats-server: concurrent overlapping writes
 * converge, late joiners and lossy replicas catch up exactly, and a nats-server restart in the
 * middle of traffic is survived.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NatsServer, Replica, settle, type ReplicaState } from './tdb/harness.js';

const T = { timeout: 30_000 };
let nats: NatsServer;
const replicas: Replica[] = [];

before(async () => {
  nats = await NatsServer.start();
});

after(async () => {
  await Promise.all(replicas.map((r) => r.kill()));
  await nats.stop();
});

async function start(name: string, db: string): Promise<Replica> {
  const r = Replica.spawn(name);
  replicas.push(r);
  await r.call({ cmd: 'open', db, writerId: name, natsUrl: nats.url });
  return r;
}

function assertConverged(states: ReplicaState[]): void {
  const digests = new Set(states.map((s) => s.digest));
  assert.equal(digests.size, 1, `replicas diverged: ${states.map((s) => `${s.origin}=${s.digest.slice(0, 12)} rows=${s.rows}`).join(', ')}`);
  assert.ok((states[0]?.rows ?? 0) > 0, 'something was written');
}

describe('tdb replication between processes', () => {
  it('3 processes writing the same rows concurrently end with identical contents', T, async () => {
    const rs = await Promise.all(['a', 'b', 'c'].map((n) => start(`conv-${n}`, 'conv')));
    const counts = await Promise.all(rs.map((r) => r.call<number>({ cmd: 'writeFor', ms: 3000, perTick: 4, keySpace: 200 })));
    const states = await settle(rs);
    assertConverged(states);
    assert.ok(counts.every((n) => n > 1000), `each wrote > 1000 rows: ${counts.join(', ')}`);
    for (const s of states) assert.equal(Object.values(s.stats.rejected).reduce((a, b) => a + b, 0), 0);
  });

  it('a process joining late and one losing messages both catch up exactly', T, async () => {
    const a = await start('late-a', 'late');
    const b = await start('late-b', 'late');
    const writing = Promise.all([a, b].map((r) => r.call({ cmd: 'writeFor', ms: 2500, perTick: 3, keySpace: 300 })));
    await new Promise((r) => setTimeout(r, 500)); // let history accumulate before the late joiner
    const late = await start('late-c', 'late');
    await b.call({ cmd: 'dropIncoming', n: 25 }); // b loses the next 25 changes it would receive
    await writing;
    // And traffic after the drop is armed, whatever the timing: on a slow host the late joiner's
    // start outlasted the writers once, nothing reached b after the drop, and it had no loss to see.
    await a.call({ cmd: 'writeFor', ms: 500, perTick: 3, keySpace: 300 });
    const states = await settle([a, b, late]);
    assertConverged(states);
    const bState = states[1] as ReplicaState;
    assert.ok(bState.stats.gaps > 0, 'b noticed its loss');
    assert.ok(bState.stats.resyncs >= 2, 'b repaired it with a snapshot');
  });

  it('replicas reconnect and converge after nats-server restarts mid-traffic', T, async () => {
    const rs = await Promise.all(['a', 'b', 'c'].map((n) => start(`restart-${n}`, 'restart')));
    const writing = Promise.all(rs.map((r) => r.call({ cmd: 'writeFor', ms: 3000, perTick: 3, keySpace: 150 })));
    await new Promise((r) => setTimeout(r, 800));
    await nats.stop();
    await new Promise((r) => setTimeout(r, 300)); // an outage, with writes continuing locally
    await nats.restart();
    await writing;
    const states = await settle(rs, 20_000);
    assertConverged(states);
  });
});
