import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { CLI, freePort, runSipp, sippWorkdir } from './harness.js';
import { nodeOfCalls, startCluster } from './cluster-harness.js';

const HOLD = fileURLToPath(new URL('../../../test/fixtures/sipp/uac_random_hold.xml', import.meta.url));
const WAIT_BYE = fileURLToPath(new URL('../../../test/fixtures/sipp/uac_wait_bye.xml', import.meta.url));

function sippLoad(proxyPort: number, calls: number, rate: number, mp: number, scenario = HOLD, service = 'service') {
  return runSipp(['-sf', scenario, `127.0.0.1:${proxyPort}`, '-s', service, '-m', String(calls), '-r', String(rate), '-i', '127.0.0.1', '-p', String(0), '-mp', String(mp)], sippWorkdir(), 90000);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cluster: the proxy steers calls by live load', { timeout: 150000 }, () => {
  it('spreads 300 calls of widely varying length evenly over 3 nodes (peaks within ±10% of the mean)', async () => {
    const c = await startCluster(['m1', 'm2', 'm3']);
    try {
      const unwatch = c.watch();
      const r = await sippLoad(c.proxyPort, 300, 30, 41000);
      unwatch();
      assert.equal(r.failed, 0, r.stdout.slice(-1500));
      assert.equal(r.successful, 300);
      const peaks = ['m1', 'm2', 'm3'].map((id) => c.peaks.get(id) ?? 0);
      const mean = peaks.reduce((a, b) => a + b, 0) / peaks.length;
      for (const p of peaks) assert.ok(Math.abs(p - mean) <= 0.1 * mean, `peaks ${peaks.join(', ')} (mean ${mean.toFixed(1)})`);
      const counts = [...nodeOfCalls(c.events).values()].reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());
      assert.equal([...counts.values()].reduce((a, b) => a + b, 0), 300);
    } finally {
      await c.stop();
    }
  });

  it('routes around a node killed with SIGKILL: later calls all succeed, other nodes are undisturbed', async () => {
    const c = await startCluster(['k1', 'k2', 'k3']);
    try {
      const load = sippLoad(c.proxyPort, 200, 20, 42000);
      await sleep(3000);
      const victim = c.nodes.get('k1')!;
      victim.proc.kill('SIGKILL');
      const killedAt = Date.now();
      const r = await load;
      const byCall = nodeOfCalls(c.events);
      const ended = new Map(c.events.of('ended').map((e) => [e.data.sipCallId as string, e.data]));
      // Every call created on a surviving node ended normally.
      for (const [call, node] of byCall) {
        if (node === 'k1') continue;
        assert.equal(ended.get(call)?.cause, 'caller-hangup', `call ${call} on ${node}`);
      }
      // Calls that arrived more than 3 s after the kill never went to the dead node and all succeeded.
      const late = c.events.of('created').filter((e) => (e.data.ts as number) > killedAt + 3000);
      assert.ok(late.length > 50, `${late.length} calls after the kill`);
      for (const e of late) assert.notEqual(e.data.nodeId, 'k1');
      // The only failures are calls that were up on the killed node (their BYE had nowhere to go).
      const onVictim = [...byCall.values()].filter((n) => n === 'k1').length;
      assert.ok(r.failed <= onVictim, `${r.failed} failed, ${onVictim} were on the killed node`);
      assert.equal(r.successful + r.failed, 200);
    } finally {
      await c.stop();
    }
  });

  it('drains a node under load: no new INVITE after the drain, its calls finish, it exits 0', async () => {
    const c = await startCluster(['d1', 'd2']);
    try {
      const load = sippLoad(c.proxyPort, 150, 20, 43000);
      await sleep(2500);
      const drained = c.nodes.get('d1')!;
      const exit = new Promise<number | null>((resolve) => drained.proc.once('exit', (code) => resolve(code)));
      const out = await new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, [CLI, 'drain', 'd1', '--nats', c.nats.url], { stdio: ['ignore', 'pipe', 'inherit'] });
        let s = '';
        p.stdout.on('data', (d: Buffer) => (s += d.toString()));
        p.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`drain exited ${code}`))));
      });
      const drainAt = Date.now();
      assert.match(out, /d1 draining/);
      const r = await load;
      assert.equal(r.failed, 0, r.stdout.slice(-1500));
      assert.equal(await exit, 0);
      const afterDrain = c.events.of('created').filter((e) => e.data.nodeId === 'd1' && (e.data.ts as number) > drainAt);
      assert.equal(afterDrain.length, 0);
      const onD1 = c.events.of('created').filter((e) => e.data.nodeId === 'd1').length;
      assert.ok(onD1 > 10, `${onD1} calls reached d1 before the drain`);
    } finally {
      await c.stop();
    }
  });

  it('sends new calls to a node that joins under load until it is balanced', async () => {
    const c = await startCluster(['j1', 'j2']);
    try {
      const load = sippLoad(c.proxyPort, 200, 20, 44000);
      await sleep(4000);
      await c.addNode('j3');
      // The node is in the members table once it says ready; give the proxy's replica a moment.
      const joinedAt = Date.now() + 100;
      const r = await load;
      assert.equal(r.failed, 0, r.stdout.slice(-1500));
      const after = c.events.of('created').filter((e) => (e.data.ts as number) > joinedAt);
      const firstSecond = after.filter((e) => (e.data.ts as number) < (after[0]!.data.ts as number) + 1000);
      const toNew = firstSecond.filter((e) => e.data.nodeId === 'j3').length;
      assert.ok(toNew >= 0.8 * firstSecond.length, `${toNew} of ${firstSecond.length} calls in the first second went to the new node`);
      assert.ok(after.filter((e) => e.data.nodeId === 'j3').length > 20);
    } finally {
      await c.stop();
    }
  });

  it('carries a BYE from the node side through the proxy to the caller', async () => {
    const port = await freePort();
    const wss = new WebSocketServer({ port, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => setTimeout(() => ws.close(1000, 'bye'), 500));
    let c: Awaited<ReturnType<typeof startCluster>> | undefined;
    try {
      c = await startCluster(['b1', 'b2'], { hangup: { url: `ws://127.0.0.1:${port}/` } });
      const r = await sippLoad(c.proxyPort, 10, 10, 45000, WAIT_BYE, 'hangup');
      assert.equal(r.successful, 10, r.stdout.slice(-1500));
      assert.equal(r.failed, 0);
      await c.events.until(() => c!.events.of('ended').length >= 10, 5000, '10 ended events');
      assert.equal(c.events.of('ended').filter((e) => e.data.cause === 'bot-hangup').length, 10);
    } finally {
      await c?.stop();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    }
  });
});
