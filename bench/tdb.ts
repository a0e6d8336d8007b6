/**
 * tdb benchmark, side by side with Redis on this machine (issue 4). Not a test: a measurement.
 *
 *   npm run bench:tdb -- --out DIR        (writes DIR/tdb.json; default DIR = bench-results)
 *
 * Starts its own nats-server and redis-server on free loopback ports and stops them by PID.
 * 1. point read: tdb local SELECT by primary key vs Redis GET over loopback (sequential round trips);
 * 2. replication latency at 5,000 writes/s: write in process A → change event in process B, vs
 *    Redis SET+PUBLISH → subscriber process (both clocks: CLOCK_MONOTONIC, shared by processes);
 * 3. sustained replicated writes with 3 replicas writing overlapping keys as fast as they can, until
 *    every replica has applied every write; CPU of the three replicas per replicated write;
 * 4. divergence: rows that differ between the replicas afterwards (must be 0).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as natsConnect } from '@nats-io/transport-node';
import { Tdb } from '../tdb/index.js';

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as { port: number }).port;
  s.close();
  return p;
}

async function waitPort(port: number, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = tcpConnect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} never opened`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

class Worker {
  #id = 0;
  #pending = new Map<number, (m: { ok: boolean; result?: unknown; error?: string }) => void>();
  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: { id?: number; ok: boolean; result?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      this.#pending.get(m.id)?.(m);
      this.#pending.delete(m.id);
    });
  }
  static fork(): Worker {
    return new Worker(fork(fileURLToPath(new URL('./tdb-worker.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }
  call<T>(cmd: Record<string, unknown>): Promise<T> {
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (m) => (m.ok ? resolve(m.result as T) : reject(new Error(m.error))));
      this.proc.send({ ...cmd, id });
    });
  }
  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

async function main(): Promise<void> {
  const out = arg('--out', 'bench-results');
  const loadAtStart = loadavg().map((x) => +x.toFixed(2));
  const rows = Number(arg('--rows', '30000'));
  const natsPort = await freePort();
  const redisPort = await freePort();
  const children: ChildProcess[] = [];
  const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort)], { stdio: 'ignore' });
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.push(nats, redis);
  const workers: Worker[] = [];
  try {
    await waitPort(natsPort);
    await waitPort(redisPort);
    const natsUrl = `nats://127.0.0.1:${natsPort}`;

    // 1. point reads
    const nc = await natsConnect({ servers: natsUrl });
    const db = await Tdb.open('benchread', { nats: nc, writerId: 'reader', schema: 'CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)' });
    db.transaction(() => {
      for (let i = 0; i < 1000; i++) db.exec('INSERT INTO kv (k, v) VALUES (?, ?)', [i, `value-${i}`]);
    });
    const N = 200_000;
    for (let i = 0; i < 20_000; i++) db.get('SELECT v FROM kv WHERE k = ?', [i % 1000]);
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) db.get('SELECT v FROM kv WHERE k = ?', [i % 1000]);
    const readUs = Number(process.hrtime.bigint() - t0) / 1000 / N;
    await db.close();
    await nc.close();

    const redisW = Worker.fork();
    workers.push(redisW);
    // Redis GET: sequential round trips from a client in this process (what a local lookup costs).
    const { redisGetUs } = await (async () => {
      const sock = tcpConnect(redisPort, '127.0.0.1');
      await once(sock, 'connect');
      sock.setNoDelay(true);
      let waiting: (() => void) | undefined;
      let buf = '';
      sock.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        // Replies are "+OK\r\n" or "$N\r\n...\r\n": one complete reply per request.
        const m = /^(\+[^\r]*\r\n|\$-1\r\n|\$(\d+)\r\n)/.exec(buf);
        if (!m) return;
        const need = m[2] !== undefined ? m[0].length + Number(m[2]) + 2 : m[0].length;
        if (buf.length < need) return;
        buf = buf.slice(need);
        waiting?.();
      });
      const cmd = (...a: string[]) =>
        new Promise<void>((r) => {
          waiting = r;
          sock.write(`*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`);
        });
      for (let i = 0; i < 1000; i++) await cmd('SET', `k${i}`, `value-${i}`);
      const M = 20_000;
      for (let i = 0; i < 2000; i++) await cmd('GET', `k${i % 1000}`);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < M; i++) await cmd('GET', `k${i % 1000}`);
      const us = Number(process.hrtime.bigint() - t0) / 1000 / M;
      sock.destroy();
      return { redisGetUs: us };
    })();

    // 2. replication latency at 5,000 writes/s
    const RATE = 5000;
    const MS = 4000;
    // Both sides run at the rate for WARMUP_MS before the measured MS: a freshly forked process's
    // first ~0.5 s (JIT, WASM tier-up, first major GCs) is a start-up transient, not the latency of
    // a replica at 5,000 writes/s (docs/benchmarks/tdb.md). Redis gets the same warm-up.
    const WARMUP_MS = Number(arg('--warmup-ms', '1000'));
    const [a, b] = [Worker.fork(), Worker.fork()];
    workers.push(a, b);
    await a.call({ cmd: 'open', natsUrl, db: 'benchlat', writerId: 'A' });
    await b.call({ cmd: 'open', natsUrl, db: 'benchlat', writerId: 'B' });
    const collecting = b.call<{ n: number; p50_ms: number; p99_ms: number; max_ms: number }>({ cmd: 'collectLatency', count: (RATE * MS) / 1000 - 50, timeoutMs: WARMUP_MS + MS + 5000 });
    await a.call({ cmd: 'writeRate', rate: RATE, ms: MS, warmupMs: WARMUP_MS });
    const tdbLat = await collecting;

    const subbing = redisW.call<{ n: number; p50_ms: number; p99_ms: number; max_ms: number }>({ cmd: 'redisSub', port: redisPort, count: (RATE * MS) / 1000 - 50, timeoutMs: WARMUP_MS + MS + 5000, warmupMs: WARMUP_MS });
    await new Promise((r) => setTimeout(r, 300)); // let SUBSCRIBE land
    const pubW = Worker.fork();
    workers.push(pubW);
    await pubW.call({ cmd: 'redisPub', port: redisPort, rate: RATE, ms: MS, warmupMs: WARMUP_MS });
    const redisLat = await subbing;

    // 3. sustained replicated writes, 3 replicas writing overlapping keys
    const reps = [Worker.fork(), Worker.fork(), Worker.fork()];
    workers.push(...reps);
    const origins = await Promise.all(reps.map((w, i) => w.call<{ origin: string }>({ cmd: 'open', natsUrl, db: 'benchtput', writerId: `R${i}` })));
    const cpuBefore = await Promise.all(reps.map((w) => w.call<{ cpu: NodeJS.CpuUsage }>({ cmd: 'state' })));
    const tStart = performance.now();
    const written = await Promise.all(reps.map((w) => w.call<{ rows: number; cpu_us: number }>({ cmd: 'writeMax', rows, keySpace: 20_000, batch: 100 })));
    const states = await Promise.all(reps.map((w) => w.call<{ origin: string; vector: Record<string, number> }>({ cmd: 'state' })));
    const target: Record<string, number> = {};
    for (const s of states) target[s.origin] = s.vector[s.origin] ?? 0;
    const cpuAfter = await Promise.all(reps.map((w) => w.call<NodeJS.CpuUsage>({ cmd: 'waitVector', target, timeoutMs: 60_000 })));
    const elapsedS = (performance.now() - tStart) / 1000;
    const totalRows = written.reduce((n, w) => n + w.rows, 0);
    const cpuUs = cpuAfter.reduce((n, c, i) => n + (c.user + c.system) - ((cpuBefore[i]?.cpu.user ?? 0) + (cpuBefore[i]?.cpu.system ?? 0)), 0);
    const finalStates = await Promise.all(reps.map((w) => w.call<{ digest: string; stats: unknown }>({ cmd: 'state' })));

    // 4. divergence
    const hashes = await Promise.all(reps.map((w) => w.call<string[]>({ cmd: 'rowHashes' })));
    const byKey = hashes.map((h) => new Map(h.map((line) => [line.slice(0, line.indexOf('|')), line])));
    const keys = new Set(byKey.flatMap((m) => [...m.keys()]));
    let diverged = 0;
    for (const k of keys) if (new Set(byKey.map((m) => m.get(k) ?? '')).size > 1) diverged++;

    const result = {
      read_us: +readUs.toFixed(3),
      redis_get_us: +redisGetUs.toFixed(3),
      read_speedup_vs_redis: +(redisGetUs / readUs).toFixed(1),
      repl_rate_per_s: RATE,
      repl_warmup_ms: WARMUP_MS,
      repl_samples: tdbLat.n,
      repl_p50_ms: +tdbLat.p50_ms.toFixed(3),
      repl_p99_ms: +tdbLat.p99_ms.toFixed(3),
      repl_max_ms: +tdbLat.max_ms.toFixed(3),
      redis_pubsub_samples: redisLat.n,
      redis_pubsub_p50_ms: +redisLat.p50_ms.toFixed(3),
      redis_pubsub_p99_ms: +redisLat.p99_ms.toFixed(3),
      replicas: reps.length,
      replicated_rows_written: totalRows,
      replicated_writes_per_s: Math.round(totalRows / elapsedS),
      cpu_us_per_replicated_write: +(cpuUs / totalRows).toFixed(1),
      diverged_rows: diverged,
      digests_equal: new Set(finalStates.map((s) => s.digest)).size === 1,
      loadavg_at_start: loadAtStart,
      loadavg_at_end: loadavg().map((x) => +x.toFixed(2)),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version },
      date: new Date().toISOString(),
      origins: origins.map((o) => o.origin),
    };
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'tdb.json'), JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    for (const w of workers) w.kill();
    for (const c of children) if (c.pid && c.exitCode === null) c.kill('SIGTERM');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:tdb failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
