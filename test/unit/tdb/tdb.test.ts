import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Tdb, type TdbChange, type TdbOptions } from '../../../tdb/tdb.js';
import { MemoryBus } from '../../../tdb/transport.js';
import { InvalidStateError, ReadKeyRequiredError, ReadOnlyError, SchemaError, SqlError, TdbOptionsError } from '../../../tdb/errors.js';
import { generateKeyGeneration } from '../../../tdb/keys.js';
import { ChangesEncoder, OP_UPSERT } from '../../../tdb/payload.js';
import { encodeFrame, FrameKind } from '../../../tdb/wire.js';

const T = { timeout: 10_000 };
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS node (id TEXT PRIMARY KEY, calls INTEGER NOT NULL, cap INTEGER);
  CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v TEXT);
  CREATE TABLE IF NOT EXISTS pair (a TEXT, b INTEGER, v BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID;
`;

const open: Tdb[] = [];
after(async () => {
  for (const db of open) await db.close();
});

async function replica(bus: MemoryBus, writerId: string, extra: Partial<TdbOptions> = {}): Promise<Tdb> {
  const db = await Tdb.open('unit', { transport: bus.endpoint(), writerId, schema: SCHEMA, heartbeatMs: 50, ...extra });
  open.push(db);
  return db;
}

/** Resolves when `pred` holds, polling on each turn of the event loop (no fixed sleeps). */
async function until(pred: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

function caughtUp(dbs: Tdb[]): boolean {
  for (const d of dbs) d.flush();
  for (const a of dbs) {
    const own = a.vector()[a.origin] ?? 0;
    for (const b of dbs) if (b !== a && (b.vector()[a.origin] ?? 0) < own) return false;
  }
  return true;
}

describe('tdb over an in-memory bus', () => {
  it('a write in one replica becomes visible in the other', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const b = await replica(bus, 'b');
    a.exec('INSERT INTO node (id, calls, cap) VALUES (?, ?, ?)', ['n1', 3, 100]);
    await until(() => b.get('SELECT calls FROM node WHERE id = ?', ['n1'])?.calls === 3, 'row on b');
    assert.deepEqual(b.query('SELECT * FROM node'), [{ id: 'n1', calls: 3, cap: 100 }]);
  });

  it('replicates updates, deletes, composite keys, blobs and primary-key changes', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const b = await replica(bus, 'b');
    a.transaction(() => {
      a.exec('INSERT INTO kv (k, v) VALUES (1, ?), (2, ?), (3, ?)', ['one', 'two', 'three']);
      a.exec('INSERT INTO pair VALUES (?, ?, ?)', ['x', 1, new Uint8Array([1, 2, 3])]);
    });
    a.exec('UPDATE kv SET v = ? WHERE k = 2', ['TWO']);
    a.exec('DELETE FROM kv WHERE k = 3');
    a.exec('UPDATE kv SET k = 10 WHERE k = 1');
    await until(() => caughtUp([a, b]), 'catch-up');
    assert.deepEqual(b.query('SELECT * FROM kv ORDER BY k'), [
      { k: 2, v: 'TWO' },
      { k: 10, v: 'one' },
    ]);
    assert.deepEqual(b.query('SELECT * FROM pair'), [{ a: 'x', b: 1, v: new Uint8Array([1, 2, 3]) }]);
    assert.equal(a.digest(), b.digest());
  });

  it('concurrent writes to the same rows converge to the same contents (LWW)', T, async () => {
    const bus = new MemoryBus();
    const dbs = [await replica(bus, 'a'), await replica(bus, 'b'), await replica(bus, 'c')];
    for (let round = 0; round < 50; round++) {
      for (const [i, db] of dbs.entries()) {
        db.exec('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)', [round % 7, `${db.writerId}-${round}`]);
        if ((round + i) % 5 === 0) db.exec('DELETE FROM kv WHERE k = ?', [(round + 3) % 7]);
      }
      if (round % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => caughtUp(dbs), 'catch-up');
    const digests = dbs.map((d) => d.digest());
    assert.equal(new Set(digests).size, 1, `digests differ: ${digests.join(' ')}`);
  });

  it('a lost message is detected as a gap and repaired from a snapshot', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const epB = bus.endpoint();
    let dropped = 0;
    epB.drop = (subject) => subject.endsWith('.changes') && dropped < 3 && ++dropped > 0;
    const b = await Tdb.open('unit', { transport: epB, writerId: 'b', schema: SCHEMA, heartbeatMs: 50 });
    open.push(b);
    for (let i = 0; i < 10; i++) {
      a.exec('INSERT INTO kv (k, v) VALUES (?, ?)', [i, `v${i}`]);
      await new Promise((r) => setImmediate(r));
    }
    await until(() => caughtUp([a, b]) && b.synced, 'repair');
    assert.equal(dropped, 3);
    assert.ok(b.stats().gaps >= 1);
    assert.ok(b.stats().resyncs >= 2, 'join + at least one repair');
    assert.equal(a.digest(), b.digest());
  });

  it('losing only the tail of a burst is noticed through the next heartbeat', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const epB = bus.endpoint();
    let lose = false;
    epB.drop = (subject, _d) => lose && subject.endsWith('.changes') && (lose = false) === false;
    const b = await Tdb.open('unit', { transport: epB, writerId: 'b', schema: SCHEMA, heartbeatMs: 50 });
    open.push(b);
    lose = true;
    a.exec('INSERT INTO kv (k, v) VALUES (1, ?)', ['last']);
    await until(() => b.get('SELECT v FROM kv WHERE k = 1')?.v === 'last', 'heartbeat-driven repair');
  });

  it('a late joiner receives everything written before it opened', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    for (let i = 0; i < 100; i++) a.exec('INSERT INTO kv (k, v) VALUES (?, ?)', [i, `v${i}`]);
    a.exec('DELETE FROM kv WHERE k < 10');
    const late = await replica(bus, 'late');
    assert.equal(late.get<{ n: number }>('SELECT count(*) AS n FROM kv')?.n, 90);
    assert.equal(late.digest(), a.digest());
  });

  it('snapshots larger than the bus payload limit travel in chunks', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    a.transaction(() => {
      for (let i = 0; i < 2000; i++) a.exec('INSERT INTO kv (k, v) VALUES (?, ?)', [i, 'x'.repeat(100)]);
    });
    const late = await replica(bus, 'late');
    assert.equal(late.get<{ n: number }>('SELECT count(*) AS n FROM kv')?.n, 2000);
  });

  it('owned rows are removed by survivors when their writer leaves', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const b = await replica(bus, 'b');
    b.exec('INSERT INTO node (id, calls) VALUES (?, ?)', ['b', 1], { owned: true });
    b.exec('INSERT INTO node (id, calls) VALUES (?, ?)', ['shared', 1]);
    await until(() => a.query('SELECT * FROM node').length === 2, 'rows on a');
    const events: TdbChange[] = [];
    const feed = a.changes();
    const lapsed = (async () => {
      for await (const ev of feed) {
        events.push(ev);
        if (ev.type === 'member-lapsed') return ev;
      }
      return undefined;
    })();
    await b.close();
    const ev = await lapsed;
    assert.deepEqual(ev, { type: 'member-lapsed', writerId: 'b', droppedRows: 1 });
    assert.deepEqual(a.query('SELECT id FROM node'), [{ id: 'shared' }]);
  });

  it('owned rows of a writer that stops heartbeating are dropped after the lapse period', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a', { lapseHeartbeats: 2 });
    const epB = bus.endpoint();
    const b = await Tdb.open('unit', { transport: epB, writerId: 'b', schema: SCHEMA, heartbeatMs: 50 });
    b.exec('INSERT INTO node (id, calls) VALUES (?, ?)', ['b', 1], { owned: true });
    await until(() => a.query('SELECT * FROM node').length === 1, 'row on a');
    epB.closed = true; // b "crashes": nothing more leaves it
    await until(() => a.query('SELECT * FROM node').length === 0, 'owned row dropped');
    epB.closed = false;
    await b.close();
  });

  it('the change feed reports remote upserts and deletes with the row', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const b = await replica(bus, 'b');
    const feed = b.changes();
    a.exec('INSERT INTO node (id, calls, cap) VALUES (?, ?, ?)', ['n', 1, 10]);
    a.exec('DELETE FROM node WHERE id = ?', ['n']);
    const rowEvent = async (): Promise<TdbChange> => {
      for (;;) {
        const ev = (await feed.next()).value as TdbChange;
        if (ev.type === 'upsert' || ev.type === 'delete') return ev;
      }
    };
    const first = await rowEvent();
    const second = await rowEvent();
    assert.equal(first.type, 'upsert');
    if (first.type === 'upsert') {
      assert.deepEqual(first.row, { id: 'n', calls: 1, cap: 10 });
      assert.deepEqual(first.key, ['n']);
      assert.equal(first.writerId, 'a');
      assert.equal(first.local, false);
    }
    assert.equal(second.type, 'delete');
    await feed.return?.();
  });

  it('a transaction that throws leaves nothing behind, locally or remotely', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const b = await replica(bus, 'b');
    assert.throws(
      () =>
        a.transaction(() => {
          a.exec('INSERT INTO kv (k, v) VALUES (1, ?)', ['x']);
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(a.query('SELECT * FROM kv').length, 0);
    a.exec('INSERT INTO kv (k, v) VALUES (2, ?)', ['y']);
    await until(() => caughtUp([a, b]), 'catch-up');
    assert.deepEqual(b.query('SELECT * FROM kv'), [{ k: 2, v: 'y' }]);
  });

  it('nested transactions roll back to their savepoint', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    a.transaction(() => {
      a.exec('INSERT INTO kv (k, v) VALUES (1, ?)', ['outer']);
      assert.throws(() =>
        a.transaction(() => {
          a.exec('INSERT INTO kv (k, v) VALUES (2, ?)', ['inner']);
          throw new Error('inner');
        }),
      );
    });
    assert.deepEqual(a.query('SELECT k FROM kv'), [{ k: 1 }]);
  });

  it('SQL errors are SqlError with SQLite\'s code, and the database stays usable', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    assert.throws(() => a.exec('INSERT INTO node (id) VALUES (?)', ['n']), (e: unknown) => e instanceof SqlError && (e.code & 0xff) === 19);
    assert.throws(() => a.query('SELECT * FROM nope'), SqlError);
    a.exec('INSERT INTO node (id, calls) VALUES (?, ?)', ['n', 0]);
    assert.equal(a.query('SELECT * FROM node').length, 1);
  });

  it('refuses to replicate a table without a primary key, but keeps _local_ tables local', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    a.exec('CREATE TABLE loose (x INTEGER)');
    assert.throws(() => a.exec('INSERT INTO loose VALUES (1)'), SchemaError);
    a.exec('CREATE TABLE _local_scratch (x INTEGER)');
    a.exec('INSERT INTO _local_scratch VALUES (1)');
    assert.equal(a.query('SELECT * FROM _local_scratch').length, 1);
  });

  it('a table created at run time reaches replicas with its first rows', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const b = await replica(bus, 'b');
    a.transaction(() => {
      a.exec('CREATE TABLE trunk (name TEXT PRIMARY KEY, channels INTEGER)');
      a.exec('INSERT INTO trunk VALUES (?, ?)', ['t1', 30]);
    });
    await until(() => caughtUp([a, b]), 'catch-up');
    assert.deepEqual(b.query('SELECT * FROM trunk'), [{ name: 't1', channels: 30 }]);
  });

  it('prepared statements run, read and finalize', T, async () => {
    const bus = new MemoryBus();
    const a = await replica(bus, 'a');
    const ins = a.prepare('INSERT INTO kv (k, v) VALUES (:k, :v)');
    for (let i = 0; i < 5; i++) ins.run({ ':k': i, ':v': `v${i}` });
    ins.finalize();
    const sel = a.prepare('SELECT v FROM kv WHERE k = ?');
    assert.deepEqual(sel.get([3]), { v: 'v3' });
    assert.equal(sel.all([9]).length, 0);
    sel.finalize();
    assert.throws(() => sel.get([1]), InvalidStateError);
  });

  it('a closed database throws InvalidStateError', T, async () => {
    const bus = new MemoryBus();
    const a = await Tdb.open('unit', { transport: bus.endpoint(), writerId: 'a', schema: SCHEMA });
    await a.close();
    await a.close();
    assert.throws(() => a.query('SELECT 1'), InvalidStateError);
  });

  it('validates options with errors that name the field', T, async () => {
    const bus = new MemoryBus();
    await assert.rejects(Tdb.open('bad name', { transport: bus.endpoint(), writerId: 'a' }), (e: unknown) => e instanceof TdbOptionsError && e.field === 'name');
    await assert.rejects(Tdb.open('x', { transport: bus.endpoint(), writerId: '' }), (e: unknown) => e instanceof TdbOptionsError && e.field === 'writerId');
    await assert.rejects(Tdb.open('x', { writerId: 'a' }), (e: unknown) => e instanceof TdbOptionsError && e.field === 'nats');
    await assert.rejects(Tdb.open('x', { transport: bus.endpoint(), writerId: 'a', heartbeatMs: 0 }), (e: unknown) => e instanceof TdbOptionsError && e.field === 'heartbeatMs');
  });
});

describe('tdb keys over an in-memory bus', () => {
  it('replicas with the keys replicate; the wire never shows the data', T, async () => {
    const bus = new MemoryBus();
    const keys = generateKeyGeneration('k1');
    const a = await replica(bus, 'a', { keys });
    const b = await replica(bus, 'b', { keys });
    const spy = bus.endpoint();
    const seen: Buffer[] = [];
    spy.subscribe('tdb.unit.changes', (d) => seen.push(Buffer.from(d)));
    a.exec('INSERT INTO kv (k, v) VALUES (1, ?)', ['top-secret-value']);
    await until(() => b.get('SELECT v FROM kv WHERE k = 1')?.v === 'top-secret-value', 'row on b');
    assert.ok(seen.length > 0);
    for (const frame of seen) assert.equal(frame.includes('top-secret-value'), false);
  });

  it('without the read key, open fails with ReadKeyRequiredError', T, async () => {
    const bus = new MemoryBus();
    const keys = generateKeyGeneration('k1');
    const a = await replica(bus, 'a', { keys });
    a.exec('INSERT INTO kv (k, v) VALUES (1, ?)', ['x']);
    await assert.rejects(Tdb.open('unit', { transport: bus.endpoint(), writerId: 'nokey', schema: SCHEMA }), ReadKeyRequiredError);
    const wrong = generateKeyGeneration('k1');
    await assert.rejects(Tdb.open('unit', { transport: bus.endpoint(), writerId: 'wrong', schema: SCHEMA, keys: wrong }), ReadKeyRequiredError);
  });

  it('a read-only replica reads but cannot write', T, async () => {
    const bus = new MemoryBus();
    const keys = generateKeyGeneration('k1');
    const { writeKey: _w, ...readOnly } = keys;
    const a = await replica(bus, 'a', { keys });
    const r = await replica(bus, 'r', { keys: readOnly });
    a.exec('INSERT INTO kv (k, v) VALUES (1, ?)', ['x']);
    await until(() => r.query('SELECT * FROM kv').length === 1, 'row on r');
    assert.equal(r.readOnly, true);
    assert.throws(() => r.exec('INSERT INTO kv (k, v) VALUES (2, ?)', ['y']), ReadOnlyError);
  });

  it('frames signed with another key, unsigned or tampered with are counted and ignored', T, async () => {
    const bus = new MemoryBus();
    const keys = generateKeyGeneration('k1');
    const a = await replica(bus, 'a', { keys });
    const captured: Uint8Array[] = [];
    const spy = bus.endpoint();
    spy.subscribe('tdb.unit.changes', (d) => captured.push(d));
    // A forger with the read key but its own signing key:
    const forger = await Tdb.open('unit', { transport: bus.endpoint(), writerId: 'forger', schema: SCHEMA, serveSnapshots: false, keys: { ...keys, writeKey: generateKeyGeneration('x').writeKey } });
    open.push(forger);
    forger.exec('INSERT INTO kv (k, v) VALUES (66, ?)', ['forged']);
    const unsigned = new ChangesEncoder();
    unsigned.add({ hlc: Date.now() * 2048, ddl: [], rows: [{ table: 'kv', op: OP_UPSERT, owner: undefined, values: [67, 'unsigned'] }] });
    spy.publish('tdb.unit.changes', encodeFrame('unit', { kind: FrameKind.Changes, writerId: 'plain', session: 's1', seq: 1, hlc: 1 }, unsigned.finish(), undefined));
    await until(() => a.stats().rejected.badSignature >= 1 && a.stats().rejected.unencrypted >= 1, 'rejections');
    // Tamper with a genuine frame: flip one ciphertext byte.
    const b = await replica(bus, 'b', { keys });
    b.exec('INSERT INTO kv (k, v) VALUES (1, ?)', ['genuine']);
    await until(() => captured.length > 0 && a.query('SELECT * FROM kv WHERE k = 1').length === 1, 'genuine frame');
    const frame = Uint8Array.from(captured.at(-1) as Uint8Array);
    frame[frame.length - 80] = (frame[frame.length - 80] as number) ^ 0xff;
    spy.publish('tdb.unit.changes', frame);
    spy.publish('tdb.unit.changes', Uint8Array.of(1, 2, 3));
    await until(() => a.stats().rejected.badSignature >= 2 && a.stats().rejected.malformed >= 1, 'tamper rejection');
    assert.equal(a.query('SELECT * FROM kv WHERE k IN (66, 67)').length, 0);
  });
});
