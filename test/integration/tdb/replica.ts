/**
 * A tdb replica in its own OS process, driven by the integration tests over IPC (protocol.ts).
 * Started with child_process.fork from dist/test/integration/tdb/replica.js.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { generateKeyPairSync } from 'node:crypto';
import { openKeyring } from '../../../tdb/keys.js';
import { ChangesEncoder, OP_UPSERT } from '../../../tdb/payload.js';
import { Tdb, type SqlValue } from '../../../tdb/tdb.js';
import { natsTransport, type TdbTransport } from '../../../tdb/transport.js';
import { encodeFrame, FrameKind } from '../../../tdb/wire.js';
import type { Command, Reply } from './protocol.js';

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v TEXT, w TEXT, n INTEGER NOT NULL DEFAULT 0);
  CREATE TABLE IF NOT EXISTS pair (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;
`;

let nc: NatsConnection | undefined;
let db: Tdb | undefined;
let dropIncoming = 0;
let keyGen: import('../../../tdb/keys.js').KeyGeneration | undefined;
const raw: Buffer[] = [];

function lossy(t: TdbTransport): TdbTransport {
  return {
    ...t,
    maxPayload: t.maxPayload,
    subscribe(subject, onMessage, opts) {
      return t.subscribe(
        subject,
        (data, reply) => {
          if (subject.endsWith('.changes') && dropIncoming > 0) {
            dropIncoming--;
            return;
          }
          onMessage(data, reply);
        },
        opts,
      );
    },
    request: (s, d, ms) => t.request(s, d, ms),
    publish: (s, d) => t.publish(s, d),
    flush: () => t.flush(),
    onReconnect: (cb) => t.onReconnect(cb),
  };
}

function must(): Tdb {
  if (!db) throw new Error('not open');
  return db;
}

async function writeFor(ms: number, perTick: number, keySpace: number): Promise<number> {
  const d = must();
  const end = Date.now() + ms;
  let n = 0;
  while (Date.now() < end) {
    for (let i = 0; i < perTick; i++) {
      const k = Math.floor(Math.random() * keySpace);
      const r = Math.random();
      if (r < 0.8) d.exec('INSERT OR REPLACE INTO kv (k, v, w, n) VALUES (?, ?, ?, ?)', [k, `${d.writerId}:${n}`, d.writerId, n]);
      else if (r < 0.9) d.exec('UPDATE kv SET n = n + 1, w = ? WHERE k = ?', [d.writerId, k]);
      else if (r < 0.95) d.exec('DELETE FROM kv WHERE k = ?', [k]);
      else d.transaction(() => {
        d.exec('INSERT OR REPLACE INTO pair (a, b, v) VALUES (?, ?, ?)', [`p${k % 5}`, k, d.writerId]);
        d.exec('DELETE FROM pair WHERE a = ? AND b = ?', [`p${(k + 1) % 5}`, (k + 7) % keySpace]);
      });
      n++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return n;
}

async function handle(c: Command): Promise<unknown> {
  switch (c.cmd) {
    case 'open': {
      nc = await connect({ servers: c.natsUrl, name: c.writerId, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const keys = c.keyring ? openKeyring(c.keyring, c.app ?? '', c.privateKey ?? '') : undefined;
      keyGen = keys?.generations.get(keys.current);
      db = await Tdb.open(c.db, {
        transport: lossy(natsTransport(nc)),
        writerId: c.writerId,
        schema: SCHEMA,
        heartbeatMs: c.heartbeatMs ?? 200,
        syncTimeoutMs: 1000,
        ...(keys ? { keys } : {}),
      });
      return { origin: db.origin };
    }
    case 'writeFor':
      return writeFor(c.ms, c.perTick, c.keySpace);
    case 'exec':
      return must().exec(c.sql, c.params as SqlValue[] | undefined);
    case 'query':
      return must().query(c.sql, c.params as SqlValue[] | undefined);
    case 'flush':
      must().flush();
      await nc?.flush();
      return null;
    case 'state': {
      const d = must();
      return {
        origin: d.origin,
        vector: d.vector(),
        digest: d.digest(),
        rows: (d.get<{ n: number }>('SELECT count(*) AS n FROM kv')?.n ?? 0) + (d.get<{ n: number }>('SELECT count(*) AS n FROM pair')?.n ?? 0),
        synced: d.synced,
        stats: d.stats(),
      };
    }
    case 'waitVector': {
      const d = must();
      const deadline = Date.now() + c.timeoutMs;
      for (;;) {
        const v = d.vector();
        const behind = Object.entries(c.target).filter(([o, seq]) => (v[o] ?? 0) < seq);
        if (behind.length === 0 && d.synced) return null;
        if (Date.now() > deadline) throw new Error(`still behind on ${JSON.stringify(behind)} have ${JSON.stringify(v)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    case 'dropIncoming':
      dropIncoming = c.n;
      return null;
    case 'forge': {
      // What a process holding the read key but not the write key could try: sign with its own key.
      if (!keyGen || !nc) throw new Error('forge needs an open keyed database');
      const enc = new ChangesEncoder();
      enc.add({ hlc: Date.now() * 4096, ddl: [], rows: [{ table: 'kv', op: OP_UPSERT, owner: undefined, values: [424242, 'forged', 'forger', 0] }] });
      const { privateKey } = generateKeyPairSync('ed25519');
      const frame = encodeFrame(must().name, { kind: FrameKind.Changes, writerId: 'forger', session: 'f0', seq: 1, hlc: Date.now() * 4096 }, enc.finish(), { ...keyGen, writeKey: privateKey });
      nc.publish(`tdb.${must().name}.changes`, frame);
      await nc.flush();
      return null;
    }
    case 'spy': {
      // A process with no keys at all, just listening on the subject.
      nc ??= await connect({ servers: c.natsUrl });
      nc.subscribe(c.subject, {
        callback: (_e, m) => {
          raw.push(Buffer.from(m.data));
        },
      });
      await nc.flush();
      return null;
    }
    case 'rawSeen':
      return raw.map((b) => b.toString('base64'));
    case 'close':
      await db?.close();
      await nc?.drain();
      return null;
  }
}

process.on('message', (m: Command & { id: number }) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, ok: true, result } satisfies Reply),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      process.send?.({ id: m.id, ok: false, error: { name: e.name, message: e.message } } satisfies Reply);
    },
  );
});
process.on('disconnect', () => process.exit(0));
