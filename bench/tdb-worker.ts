/**
 * A tdb (or Redis) replica process for bench/tdb.ts, driven over IPC. Not a test: measures.
 */
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { connect as tcpConnect, type Socket } from 'node:net';
import { Tdb } from '../tdb/index.js';

type Cmd =
  | { cmd: 'open'; natsUrl: string; db: string; writerId: string }
  | { cmd: 'writeRate'; rate: number; ms: number; warmupMs?: number }
  | { cmd: 'collectLatency'; count: number; timeoutMs: number }
  | { cmd: 'writeMax'; rows: number; keySpace: number; batch: number }
  | { cmd: 'state' }
  | { cmd: 'waitVector'; target: Record<string, number>; timeoutMs: number }
  | { cmd: 'rowHashes' }
  | { cmd: 'redisSub'; port: number; count: number; timeoutMs: number; warmupMs?: number }
  | { cmd: 'redisPub'; port: number; rate: number; ms: number; warmupMs?: number }
  | { cmd: 'close' };

let nc: NatsConnection | undefined;
let db: Tdb | undefined;
const nowNs = () => Number(process.hrtime.bigint());
const SCHEMA = `CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v TEXT, w TEXT, t INTEGER);
CREATE TABLE IF NOT EXISTS lat (k INTEGER PRIMARY KEY, t INTEGER);`;

function must(): Tdb {
  if (!db) throw new Error('not open');
  return db;
}

/** Paced writes: every millisecond, the writes due by now (one transaction each). */
async function paced(rate: number, ms: number, write: (i: number) => void): Promise<number> {
  const start = performance.now();
  let done = 0;
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) * rate) / 1000);
    while (done < due) write(done++);
    await new Promise((r) => setTimeout(r, 1));
  }
  return done;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summary(lat: number[]): { n: number; p50_ms: number; p99_ms: number; max_ms: number } {
  const s = lat.sort((a, b) => a - b);
  return { n: s.length, p50_ms: percentile(s, 50) / 1e6, p99_ms: percentile(s, 99) / 1e6, max_ms: (s.at(-1) ?? NaN) / 1e6 };
}

class Resp {
  #buf = '';
  #waiters: Array<(line: string) => void> = [];
  constructor(readonly sock: Socket, onPush?: (payload: string) => void) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      if (onPush) {
        // Pub/sub pushes: *3\r\n$7\r\nmessage\r\n$N\r\nchannel\r\n$M\r\npayload\r\n
        for (;;) {
          const m = /^\*3\r\n\$\d+\r\n(\w+)\r\n\$\d+\r\n[^\r]*\r\n(?:\$\d+\r\n([^\r]*)\r\n|:(\d+)\r\n)/.exec(this.#buf);
          if (!m) break;
          this.#buf = this.#buf.slice(m[0].length);
          if (m[1] === 'message' && m[2] !== undefined) onPush(m[2]);
        }
        return;
      }
      for (;;) {
        const line = this.#take();
        if (line === undefined) break;
        this.#waiters.shift()?.(line);
      }
    });
  }
  #take(): string | undefined {
    const i = this.#buf.indexOf('\r\n');
    if (i < 0) return undefined;
    if (this.#buf[0] === '$') {
      const len = Number(this.#buf.slice(1, i));
      if (len < 0) {
        this.#buf = this.#buf.slice(i + 2);
        return '';
      }
      if (this.#buf.length < i + 2 + len + 2) return undefined;
      const v = this.#buf.slice(i + 2, i + 2 + len);
      this.#buf = this.#buf.slice(i + 2 + len + 2);
      return v;
    }
    const v = this.#buf.slice(0, i);
    this.#buf = this.#buf.slice(i + 2);
    return v;
  }
  send(...args: string[]): void {
    this.sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  }
  cmd(...args: string[]): Promise<string> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.send(...args);
    });
  }
}

async function redis(port: number, onPush?: (p: string) => void): Promise<Resp> {
  const sock = tcpConnect(port, '127.0.0.1');
  await new Promise((r, j) => sock.once('connect', r).once('error', j));
  return new Resp(sock, onPush);
}

async function handle(c: Cmd): Promise<unknown> {
  switch (c.cmd) {
    case 'open':
      nc = await natsConnect({ servers: c.natsUrl, name: c.writerId });
      db = await Tdb.open(c.db, { nats: nc, writerId: c.writerId, schema: SCHEMA, heartbeatMs: 500 });
      return { origin: db.origin };
    case 'writeRate': {
      const d = must();
      // Warm-up at the same rate first (JIT, WASM tier-up, first GCs of a fresh process), on keys
      // < 0 that the collector ignores; then the measured writes on keys 0..999.
      const warm = Math.floor(((c.warmupMs ?? 0) * c.rate) / 1000);
      const n = await paced(c.rate, (c.warmupMs ?? 0) + c.ms, (i) =>
        d.exec('INSERT OR REPLACE INTO lat (k, t) VALUES (?, ?)', [i < warm ? -1 - (i % 1000) : i % 1000, nowNs()]),
      );
      d.flush();
      return n - warm;
    }
    case 'collectLatency': {
      const d = must();
      const lat: number[] = [];
      const feed = d.changes();
      const timer = setTimeout(() => void feed.return?.(), c.timeoutMs);
      for await (const ev of feed) {
        if (ev.type === 'upsert' && ev.table === 'lat' && Number(ev.row.k) >= 0) {
          lat.push(nowNs() - Number(ev.row.t));
          if (lat.length >= c.count) break;
        }
      }
      clearTimeout(timer);
      return summary(lat);
    }
    case 'writeMax': {
      const d = must();
      const cpu0 = process.cpuUsage();
      let n = 0;
      while (n < c.rows) {
        for (let i = 0; i < c.batch && n < c.rows; i++, n++) {
          d.exec('INSERT OR REPLACE INTO kv (k, v, w, t) VALUES (?, ?, ?, ?)', [Math.floor(Math.random() * c.keySpace), `value-${n}`, d.writerId, n]);
        }
        await new Promise((r) => setImmediate(r));
      }
      d.flush();
      const cpu = process.cpuUsage(cpu0);
      return { rows: n, cpu_us: cpu.user + cpu.system };
    }
    case 'state': {
      const d = must();
      return { origin: d.origin, vector: d.vector(), digest: d.digest(), stats: d.stats(), cpu: process.cpuUsage() };
    }
    case 'waitVector': {
      const d = must();
      const deadline = Date.now() + c.timeoutMs;
      for (;;) {
        const v = d.vector();
        if (Object.entries(c.target).every(([o, s]) => (v[o] ?? 0) >= s) && d.synced) return process.cpuUsage();
        if (Date.now() > deadline) throw new Error(`still behind: ${JSON.stringify(c.target)} vs ${JSON.stringify(v)}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    case 'rowHashes':
      return must().query<{ k: number; v: string; w: string; t: number }>('SELECT k, v, w, t FROM kv').map((r) => `${r.k}|${r.v}|${r.w}|${r.t}`);
    case 'redisSub': {
      const lat: number[] = [];
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      const sub = await redis(c.port, (payload) => {
        if (payload.startsWith('w')) return; // warm-up
        lat.push(nowNs() - Number(payload));
        if (lat.length >= c.count) resolve();
      });
      sub.send('SUBSCRIBE', 'bench');
      process.send?.({ ready: true });
      await Promise.race([done, new Promise((r) => setTimeout(r, c.timeoutMs))]);
      sub.sock.destroy();
      return summary(lat);
    }
    case 'redisPub': {
      const r = await redis(c.port);
      // SET then PUBLISH, pipelined: the Redis way to "write and tell the others".
      const warm = Math.floor(((c.warmupMs ?? 0) * c.rate) / 1000);
      const n = await paced(c.rate, (c.warmupMs ?? 0) + c.ms, (i) => {
        const t = (i < warm ? 'w' : '') + String(nowNs());
        void r.cmd('SET', `lat:${i % 1000}`, t);
        void r.cmd('PUBLISH', 'bench', t);
      });
      await r.cmd('PING');
      r.sock.destroy();
      return n - warm;
    }
    case 'close':
      await db?.close();
      await nc?.drain();
      return null;
  }
}

process.on('message', (m: Cmd & { id: number }) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, ok: true, result }),
    (err: unknown) => process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
