/**
 * tdb keys and tdbot across real processes and a real nats-server: a process without the read key
 * sees only ciphertext and cannot open the database; a read-only process's writes are rejected by
 * every peer; a tampered message is rejected; tdbot round-trips exec/query/subscribe and refuses
 * unauthorised requests with a structured error.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createKeyring, generateAppKeyPair } from '../../tdb/keys.js';
import { NatsServer, Replica, settle, type ReplicaState } from './tdb/harness.js';

const T = { timeout: 30_000 };
let nats: NatsServer;
let nc: NatsConnection;
const replicas: Replica[] = [];
const apps = { writer1: generateAppKeyPair(), writer2: generateAppKeyPair(), reader: generateAppKeyPair(), stranger: generateAppKeyPair() };
const keyring = createKeyring('secure', [
  { id: 'writer1', publicKey: apps.writer1.publicKey, write: true },
  { id: 'writer2', publicKey: apps.writer2.publicKey, write: true },
  { id: 'reader', publicKey: apps.reader.publicKey },
]);

before(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url });
});

after(async () => {
  await Promise.all(replicas.map((r) => r.kill()));
  await nc.close();
  await nats.stop();
});

async function start(app: keyof typeof apps, withKeys = true): Promise<Replica> {
  const r = Replica.spawn(app);
  replicas.push(r);
  await r.call({ cmd: 'open', db: 'secure', writerId: app, natsUrl: nats.url, ...(withKeys ? { keyring, app, privateKey: apps[app].privateKey } : {}) });
  return r;
}

describe('tdb keys between processes', () => {
  let w1: Replica;
  let w2: Replica;
  let reader: Replica;

  it('writers and a reader replicate; a listener without keys sees only ciphertext', T, async () => {
    const spy = Replica.spawn('spy');
    replicas.push(spy);
    await spy.call({ cmd: 'spy', subject: 'tdb.secure.>', natsUrl: nats.url });
    w1 = await start('writer1');
    w2 = await start('writer2');
    reader = await start('reader');
    await w1.call({ cmd: 'exec', sql: 'INSERT INTO kv (k, v, w) VALUES (1, ?, ?)', params: ['plaintext-marker-7f3a', 'writer1'] });
    await w2.call({ cmd: 'exec', sql: 'INSERT INTO kv (k, v, w) VALUES (2, ?, ?)', params: ['another-marker-c0de', 'writer2'] });
    await settle([w1, w2]);
    const rows = await reader.call<unknown[]>({ cmd: 'query', sql: 'SELECT k, v FROM kv ORDER BY k' });
    assert.deepEqual(rows, [
      { k: 1, v: 'plaintext-marker-7f3a' },
      { k: 2, v: 'another-marker-c0de' },
    ]);
    const seen = (await spy.call<string[]>({ cmd: 'rawSeen' })).map((b) => Buffer.from(b, 'base64'));
    assert.ok(seen.length >= 2, 'the spy saw the traffic');
    for (const frame of seen) {
      assert.equal(frame.includes('plaintext-marker'), false);
      assert.equal(frame.includes('another-marker'), false);
      assert.equal(frame.includes('writer1'), false, 'writer ids are inside the ciphertext');
    }
  });

  it('a process without a read key cannot open the database', T, async () => {
    await assert.rejects(start('stranger'), (e: Error) => e.name === 'ReadKeyRequiredError');
    await assert.rejects(start('stranger', false), (e: Error) => e.name === 'ReadKeyRequiredError');
  });

  it('a read-only process cannot write, and its forged changes are rejected by every peer', T, async () => {
    await assert.rejects(reader.call({ cmd: 'exec', sql: 'INSERT INTO kv (k, v) VALUES (3, ?)', params: ['nope'] }), (e: Error) => e.name === 'ReadOnlyError');
    await reader.call({ cmd: 'forge', sql: '' });
    // Synchronise on a later genuine write: once it has arrived, the forged frame (sent earlier) was handled.
    await w1.call({ cmd: 'exec', sql: 'INSERT INTO kv (k, v) VALUES (4, ?)', params: ['after-forge'] });
    const states = await settle([w1, w2]);
    for (const s of states) assert.ok(s.stats.rejected.badSignature >= 1, `${s.origin} counted the forgery`);
    for (const r of [w1, w2, reader]) assert.deepEqual(await r.call({ cmd: 'query', sql: 'SELECT * FROM kv WHERE k = 424242' }), []);
  });

  it('a tampered message is rejected and leaves the replicas identical', T, async () => {
    const captured: Uint8Array[] = [];
    const sub = nc.subscribe('tdb.secure.changes', { callback: (_e, m) => void captured.push(m.data) });
    await nc.flush();
    await w1.call({ cmd: 'exec', sql: 'UPDATE kv SET v = ? WHERE k = 1', params: ['genuine'] });
    await settle([w1, w2, reader]);
    sub.unsubscribe();
    const before = (await w2.call<ReplicaState>({ cmd: 'state' })).stats.rejected.badSignature;
    const frame = Uint8Array.from(captured.find((f) => f.length > 120) as Uint8Array);
    frame[frame.length - 70] = (frame[frame.length - 70] as number) ^ 0x55; // inside the ciphertext
    nc.publish('tdb.secure.changes', frame);
    await nc.flush();
    await w1.call({ cmd: 'exec', sql: 'INSERT INTO kv (k, v) VALUES (5, ?)', params: ['after-tamper'] });
    const states = await settle([w1, w2, reader]);
    assert.ok((states[1] as ReplicaState).stats.rejected.badSignature > before);
    assert.equal(new Set(states.map((s) => s.digest)).size, 1);
  });
});

describe('tdbot', () => {
  let tdbot: ChildProcess;
  const writerToken = 'w'.repeat(16) + '-writer';
  const readerToken = 'r'.repeat(16) + '-reader';

  async function call(subject: string, body: unknown): Promise<Record<string, unknown>> {
    const m = await nc.request(subject, JSON.stringify(body), { timeout: 5000 });
    return JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
  }

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tdbot-'));
    const acl = join(dir, 'acl.json');
    writeFileSync(acl, JSON.stringify({ clients: [{ id: 'app', token: writerToken, read: ['bots'], write: ['bots'] }, { id: 'viewer', token: readerToken, read: ['bots'] }] }));
    const config = join(dir, 'tdbot.json');
    writeFileSync(config, JSON.stringify({ dbs: { bots: { schema: 'CREATE TABLE IF NOT EXISTS calls (id TEXT PRIMARY KEY, state TEXT, data BLOB)' } } }));
    const cli = fileURLToPath(new URL('../../edge/cli.js', import.meta.url));
    tdbot = spawn(process.execPath, [cli, 'tdbot', '--nats', nats.url, '--acl', acl, '--config', config, '--writer-id', 'tdbot1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    tdbot.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    while (!out.includes('tdbot ready')) {
      const [ready] = await Promise.race([once(tdbot.stdout!, 'data'), once(tdbot, 'exit').then(() => [undefined])]);
      if (ready === undefined) throw new Error('tdbot exited before it was ready');
    }
  });

  after(async () => {
    if (tdbot.exitCode === null) {
      const exited = once(tdbot, 'exit');
      tdbot.kill('SIGTERM');
      await exited;
    }
  });

  it('exec and query round-trip, blobs included', T, async () => {
    const r = await call('tdbot.bots.exec', { token: writerToken, sql: 'INSERT INTO calls (id, state, data) VALUES (?, ?, ?)', params: ['c1', 'ringing', { $blob: 'AQID' }] });
    assert.deepEqual(r, { ok: true, changes: 1, lastInsertRowid: 1 });
    const q = await call('tdbot.bots.query', { token: readerToken, sql: 'SELECT * FROM calls WHERE id = ?', params: ['c1'] });
    assert.deepEqual(q, { ok: true, rows: [{ id: 'c1', state: 'ringing', data: { $blob: 'AQID' } }] });
  });

  it('subscribers receive changes as JSON events', T, async () => {
    const inbox = `_INBOX.tdbot-test.${Date.now()}`;
    const sub = nc.subscribe(inbox, { max: 1 });
    const r = await call('tdbot.bots.subscribe', { token: readerToken, deliver: inbox });
    assert.equal(r.ok, true);
    await call('tdbot.bots.exec', { token: writerToken, sql: "UPDATE calls SET state = 'answered' WHERE id = 'c1'" });
    for await (const m of sub) {
      const ev = JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
      assert.equal(ev.type, 'upsert');
      assert.deepEqual(ev.row, { id: 'c1', state: 'answered', data: { $blob: 'AQID' } });
    }
    assert.deepEqual(await call('tdbot.bots.unsubscribe', { token: readerToken, id: r.id }), { ok: true });
  });

  it('refuses unauthorised and malformed requests with structured errors', T, async () => {
    assert.deepEqual(await call('tdbot.bots.exec', { token: 'x'.repeat(20), sql: 'DELETE FROM calls' }), { error: { code: 'unauthorized', message: 'unknown token', field: 'token' } });
    const forbidden = await call('tdbot.bots.exec', { token: readerToken, sql: 'DELETE FROM calls' });
    assert.equal((forbidden.error as { code: string }).code, 'forbidden');
    const sneaky = await call('tdbot.bots.query', { token: readerToken, sql: 'DELETE FROM calls RETURNING *' });
    assert.equal((sneaky.error as { code: string }).code, 'forbidden');
    const bad = await call('tdbot.bots.query', { token: readerToken });
    assert.deepEqual(bad.error, { code: 'bad_request', message: (bad.error as { message: string }).message, field: 'sql' });
    const sqlErr = await call('tdbot.bots.query', { token: readerToken, sql: 'SELECT * FROM nope' });
    assert.equal((sqlErr.error as { code: string }).code, 'sql_error');
    const q = await call('tdbot.bots.query', { token: writerToken, sql: 'SELECT count(*) AS n FROM calls' });
    assert.deepEqual(q, { ok: true, rows: [{ n: 1 }] });
  });
});
