import { createHash, randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { ByteWriter, pkKey, type SqlValue } from './codec.js';
import {
  FrameError,
  InvalidStateError,
  ReadKeyRequiredError,
  ReadOnlyError,
  SchemaError,
  SqlError,
  TdbOptionsError,
  TimeoutError,
  type RejectKind,
} from './errors.js';
import { compareVersion, Hlc } from './hlc.js';
import { normalizeKeys, type KeyGeneration, type TdbKeys } from './keys.js';
import {
  ChangesEncoder,
  decodeChanges,
  decodeChunk,
  decodeChunkRequest,
  decodeHeartbeat,
  decodeSnapshot,
  encodeChunk,
  encodeChunkRefusal,
  encodeChunkRequest,
  encodeHeartbeat,
  encodeSnapshot,
  OP_DELETE,
  OP_UPSERT,
  type RowChange,
  type SnapshotPayload,
  type SnapshotRow,
  type TxChange,
} from './payload.js';
import { loadSqlite, type Database, type PreparedStatement, type Sqlite3Static } from './sqlite.js';
import { natsTransport, NoRespondersError, TransportTimeoutError, type TdbTransport } from './transport.js';
import { decodeFrame, encodeFrame, FrameKind, type DecodedFrame } from './wire.js';

export type { SqlValue } from './codec.js';

/** Positional (`?`) or named (`:name`, `$name`, `@name`) parameters. */
export type BindParams = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;
export type Row = Record<string, SqlValue>;

/** Minimal logger interface (pino-compatible), injected: tdb is a library and logs nothing by default. */
export interface TdbLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface TdbOptions {
  /** The NATS connection (the caller keeps ownership). Either this or `transport`. */
  nats?: NatsConnection;
  /** A custom bus (tests, fault injection). Takes precedence over `nats`. */
  transport?: TdbTransport;
  /** This process's writer id: stamped on its changes, owner of its owned rows. [A-Za-z0-9_.:-], 1-64 chars. */
  writerId: string;
  /** The database's keys (see keys.ts, `openKeyring`). Absent = unencrypted, unsigned database. */
  keys?: TdbKeys | KeyGeneration;
  /** DDL run before syncing (idempotent: use IF NOT EXISTS). Every replica should declare the same tables. */
  schema?: string;
  /** Heartbeat period in ms (default 1000). Heartbeats reveal lost trailing changes and keep membership. */
  heartbeatMs?: number;
  /** A writer silent for this many heartbeat periods has lapsed (default 3). */
  lapseHeartbeats?: number;
  /** Delete a lapsed writer's owned rows automatically (default true; needs the write key). */
  dropOwnedOnLapse?: boolean;
  /** How long to wait for a snapshot reply, in ms (default 2000). */
  syncTimeoutMs?: number;
  /** Out-of-order frames buffered per database before a full resync instead (default 10000). */
  maxPendingFrames?: number;
  /** Subject prefix (default 'tdb'): subjects are `<prefix>.<db>.changes|snapshot|chunk.<session>`. */
  subjectPrefix?: string;
  /** Serve snapshots to peers (default true when this process can sign them). */
  serveSnapshots?: boolean;
  /** Change events buffered per `changes()` iterator before the oldest are dropped (default 10000). */
  maxQueuedChanges?: number;
  logger?: TdbLogger;
}

export interface ResolvedTdbOptions {
  writerId: string;
  heartbeatMs: number;
  lapseHeartbeats: number;
  dropOwnedOnLapse: boolean;
  syncTimeoutMs: number;
  maxPendingFrames: number;
  subjectPrefix: string;
  serveSnapshots: boolean;
  maxQueuedChanges: number;
}

const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const DB_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

export function resolveTdbOptions(name: string, o: TdbOptions): ResolvedTdbOptions {
  if (!DB_NAME_RE.test(name)) throw new TdbOptionsError('name', 'must be 1-64 characters of [A-Za-z0-9_-] (a NATS subject token)');
  if (!o.nats && !o.transport) throw new TdbOptionsError('nats', 'or transport is required');
  if (typeof o.writerId !== 'string' || !ID_RE.test(o.writerId)) throw new TdbOptionsError('writerId', 'must be 1-64 characters of [A-Za-z0-9_.:-]');
  const int = (field: keyof TdbOptions, v: number | undefined, def: number, min: number): number => {
    if (v === undefined) return def;
    if (!Number.isInteger(v) || v < min) throw new TdbOptionsError(field, `must be an integer >= ${min}`);
    return v;
  };
  const prefix = o.subjectPrefix ?? 'tdb';
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) throw new TdbOptionsError('subjectPrefix', 'must be dot-separated subject tokens');
  const canSign = !o.keys || !!normalizeKeys(o.keys).generations.get(normalizeKeys(o.keys).current)?.writeKey;
  return {
    writerId: o.writerId,
    heartbeatMs: int('heartbeatMs', o.heartbeatMs, 1000, 10),
    lapseHeartbeats: int('lapseHeartbeats', o.lapseHeartbeats, 3, 1),
    dropOwnedOnLapse: o.dropOwnedOnLapse ?? true,
    syncTimeoutMs: int('syncTimeoutMs', o.syncTimeoutMs, 2000, 10),
    maxPendingFrames: int('maxPendingFrames', o.maxPendingFrames, 10000, 1),
    subjectPrefix: prefix,
    serveSnapshots: (o.serveSnapshots ?? true) && canSign,
    maxQueuedChanges: int('maxQueuedChanges', o.maxQueuedChanges, 10000, 1),
  };
}

/** A change to a replicated row, or a change in the replica's situation. */
export type TdbChange =
  | { type: 'upsert'; table: string; key: SqlValue[]; row: Row; writerId: string; hlc: number; local: boolean }
  | { type: 'delete'; table: string; key: SqlValue[]; writerId: string; hlc: number; local: boolean }
  /** A snapshot from a peer was merged (after joining, a gap or an overflow); `rows` changed here. */
  | { type: 'resync'; reason: 'join' | 'gap' | 'overflow' | 'reconnect'; rows: number }
  | { type: 'member-up'; writerId: string }
  | { type: 'member-lapsed'; writerId: string; droppedRows: number }
  /** This iterator fell behind and lost `dropped` events; re-read what it depends on. */
  | { type: 'overflow'; dropped: number };

export interface TdbStats {
  framesSent: number;
  framesReceived: number;
  txApplied: number;
  rowsApplied: number;
  /** Remote rows ignored because the local version was newer (LWW). */
  rowsStale: number;
  duplicates: number;
  gaps: number;
  resyncs: number;
  snapshotsServed: number;
  rejected: Record<RejectKind, number>;
}

export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface TdbStatement {
  run(params?: BindParams): RunResult;
  all<T extends Row = Row>(params?: BindParams): T[];
  get<T extends Row = Row>(params?: BindParams): T | undefined;
  finalize(): void;
}

export interface TdbSnapshot {
  /** Last sequence applied per origin (`writerId/session`). */
  vector: Record<string, number>;
  rows: number;
  /** The encoded (plaintext) snapshot payload, as sent to peers inside an encrypted frame. */
  bytes: Uint8Array;
}

export interface WriteOptions {
  /** Mark the rows this statement writes as owned by this writer (removed when it lapses). */
  owned?: boolean;
}

interface TableInfo {
  name: string;
  cols: string[];
  pkIdx: number[];
  /** INTEGER PRIMARY KEY of a rowid table: the pre-update hook's rowid is the key. */
  rowidPk: boolean;
  sql: string;
  upsert?: PreparedStatement;
  del?: PreparedStatement;
  select?: PreparedStatement;
}

interface RowVersion {
  hlc: number;
  origin: string;
  owner: string | undefined;
  table: string;
  pk: SqlValue[];
  deleted: boolean;
}

interface PendingRow {
  table: TableInfo;
  pk: SqlValue[];
  deleted: boolean;
  owned: boolean;
}

interface UnknownTableEvent {
  table: string;
  op: number;
  oldVals: SqlValue[] | undefined;
  newVals: SqlValue[] | undefined;
  owned: boolean;
}

interface CachedStmt {
  stmt: PreparedStatement;
  readonly: boolean;
  cols?: string[];
  nParams?: number;
}

/** Bound on the fast path: NULL, int32 integers (as INTEGER) and non-integers (as REAL), as oo1 would. */
function simpleParam(v: unknown): boolean {
  return v === null || (typeof v === 'number' && (v === (v | 0) || !Number.isInteger(v)));
}

/** The raw WASM exports #read uses (numbers in, numbers out, no wrappers). */
interface RawExports {
  sqlite3_step(p: number): number;
  sqlite3_reset(p: number): number;
  sqlite3_clear_bindings(p: number): number;
  sqlite3_bind_double(p: number, i: number, v: number): number;
  sqlite3_bind_null(p: number, i: number): number;
  sqlite3_bind_int(p: number, i: number, v: number): number;
  sqlite3_column_count(p: number): number;
  sqlite3_column_type(p: number, i: number): number;
  sqlite3_column_double(p: number, i: number): number;
  sqlite3_column_text(p: number, i: number): number;
  sqlite3_column_blob(p: number, i: number): number;
  sqlite3_column_bytes(p: number, i: number): number;
}

const textDecoder = new TextDecoder();
const STMT_CACHE_MAX = 256;
const LOCAL_TABLE_PREFIX = '_local_';

function zeroRejects(): Record<RejectKind, number> {
  return { malformed: 0, unsigned: 0, badSignature: 0, unencrypted: 0, unknownKey: 0, decrypt: 0, schema: 0 };
}

function quoteId(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Sync AsyncIterable queue for change feeds. */
class ChangeStream implements AsyncIterableIterator<TdbChange> {
  #queue: TdbChange[] = [];
  #waiter: ((r: IteratorResult<TdbChange>) => void) | undefined;
  #dropped = 0;
  #done = false;
  constructor(
    readonly includeLocal: boolean,
    private readonly max: number,
    private readonly onEnd: (s: ChangeStream) => void,
  ) {}

  push(ev: TdbChange): void {
    if (this.#done) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: ev, done: false });
      return;
    }
    if (this.#queue.length >= this.max) {
      this.#queue.shift();
      this.#dropped++;
    }
    this.#queue.push(ev);
  }

  end(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<TdbChange>> {
    if (this.#dropped > 0) {
      const dropped = this.#dropped;
      this.#dropped = 0;
      return Promise.resolve({ value: { type: 'overflow', dropped }, done: false });
    }
    const ev = this.#queue.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  return(): Promise<IteratorResult<TdbChange>> {
    this.end();
    this.onEnd(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

type SyncState = 'syncing' | 'synced' | 'resyncing';

/**
 * A named in-memory SQLite database replicated over NATS (docs/tdb.md).
 *
 * Reads are local calls. Each local write transaction is captured with SQLite's pre-update hook
 * (docs/decisions/0002-tdb-change-capture.md), committed locally, stamped with a hybrid logical
 * clock and published as one change; every replica applies it with per-row last-writer-wins on
 * (clock, origin), so all replicas converge whatever the arrival order. Per-origin sequence
 * numbers detect loss; a gap is repaired by merging a snapshot from a peer.
 */
export class Tdb {
  readonly name: string;
  readonly writerId: string;
  /** `writerId/session`: this open database's identity on the wire. */
  readonly origin: string;
  readonly options: ResolvedTdbOptions;

  readonly #sqlite: Sqlite3Static;
  readonly #db: Database;
  readonly #transport: TdbTransport;
  readonly #keys: TdbKeys | undefined;
  readonly #writeGen: KeyGeneration | undefined;
  readonly #session: string;
  readonly #log: TdbLogger | undefined;
  readonly #hlc = new Hlc();
  readonly #subjects: { changes: string; snapshot: string; direct: string; chunk: string; base: string };

  #closed = false;
  #state: SyncState = 'syncing';
  #tables = new Map<string, TableInfo>();
  readonly #meta = new Map<string, RowVersion>();
  readonly #vector = new Map<string, number>();
  readonly #buffered = new Map<string, Map<number, DecodedFrame>>();
  #bufferedCount = 0;
  #seq = 0;

  // capture state of the open local transaction
  #txDepth = 0;
  #applying = false;
  #pending = new Map<string, PendingRow>();
  #unknown: UnknownTableEvent[] = [];
  #owned = false;
  #schemaChanged = false;

  #outbound: TxChange[] = [];
  #flushScheduled = false;

  readonly #stmts = new Map<string, CachedStmt>();
  /** BEGIN / COMMIT / ROLLBACK, prepared once: oo1's exec() parses and prepares its SQL on every call. */
  readonly #ctlStmts = new Map<string, PreparedStatement>();
  readonly #streams = new Set<ChangeStream>();
  readonly #members = new Map<string, number>();
  readonly #subs: Array<{ unsubscribe(): void }> = [];
  #snapSub: { unsubscribe(): void } | undefined;
  readonly #served = new Map<string, { chunks: Uint8Array[]; expires: number }>();
  #heartbeatTimer: NodeJS.Timeout | undefined;
  /** Origins we know we are behind on → the sequence we must reach. */
  readonly #behind = new Map<string, number>();
  #resyncTimer: NodeJS.Timeout | undefined;
  #resyncFailures = 0;
  #sawEncrypted = false;
  readonly #stats: TdbStats = {
    framesSent: 0,
    framesReceived: 0,
    txApplied: 0,
    rowsApplied: 0,
    rowsStale: 0,
    duplicates: 0,
    gaps: 0,
    resyncs: 0,
    snapshotsServed: 0,
    rejected: zeroRejects(),
  };
  readonly #loggedRejects = new Set<string>();

  private constructor(name: string, sqlite: Sqlite3Static, options: TdbOptions, resolved: ResolvedTdbOptions) {
    this.name = name;
    this.options = resolved;
    this.writerId = resolved.writerId;
    this.#sqlite = sqlite;
    this.#transport = options.transport ?? natsTransport(options.nats as NatsConnection);
    this.#keys = options.keys ? normalizeKeys(options.keys) : undefined;
    this.#writeGen = this.#keys?.generations.get(this.#keys.current);
    this.#session = randomBytes(6).toString('hex');
    this.origin = `${this.writerId}/${this.#session}`;
    this.#log = options.logger;
    const base = `${resolved.subjectPrefix}.${name}`;
    this.#subjects = {
      base,
      changes: `${base}.changes`,
      snapshot: `${base}.snapshot`,
      direct: `${base}.snapshot.${this.#session}`,
      chunk: `${base}.chunk.${this.#session}`,
    };
    this.#db = new sqlite.oo1.DB(':memory:', 'c');
  }

  /**
   * Opens (joins) the named database: runs `schema`, subscribes, merges a snapshot from a peer
   * (none = first member), then serves snapshots itself. Rejects with `ReadKeyRequiredError` when
   * the database is encrypted and this process cannot read it.
   */
  static async open(name: string, options: TdbOptions): Promise<Tdb> {
    const resolved = resolveTdbOptions(name, options);
    const sqlite = await loadSqlite();
    const db = new Tdb(name, sqlite, options, resolved);
    try {
      await db.#start(options.schema);
    } catch (err) {
      await db.close();
      throw err;
    }
    return db;
  }

  async #start(schema: string | undefined): Promise<void> {
    if (schema) {
      try {
        this.#db.exec(schema);
      } catch (err) {
        throw this.#sqlError(err);
      }
    }
    this.#refreshSchema();
    this.#installHook();
    this.#subs.push(this.#transport.subscribe(this.#subjects.changes, (data) => this.#onChangesMessage(data)));
    this.#subs.push(this.#transport.subscribe(this.#subjects.chunk, (data, reply) => this.#onChunkRequest(data, reply)));
    this.#transport.onReconnect(() => this.#onReconnect());
    // The subscription must be live at the server before we ask for a snapshot, or changes
    // published in between would be in neither.
    await this.#transport.flush();
    const merged = await this.#syncFromPeer('join');
    if (!merged && this.#sawEncrypted && !this.#keys) {
      throw new ReadKeyRequiredError(`database ${this.name} is encrypted and this process holds no read key`);
    }
    this.#state = 'synced';
    this.#drainBuffered();
    for (const v of this.#meta.values()) if (v.owner && !v.deleted && v.owner !== this.writerId) this.#seeMember(v.owner, false);
    if (this.options.serveSnapshots) {
      // Joiners ask the queue group (any one member answers); a replica that lost an origin's
      // changes asks that origin directly, since it surely holds its own writes.
      this.#snapSub = this.#transport.subscribe(this.#subjects.snapshot, (data, reply) => this.#onSnapshotRequest(data, reply), { queue: 'tdb-snapshot' });
      this.#subs.push(this.#transport.subscribe(this.#subjects.direct, (data, reply) => this.#onSnapshotRequest(data, reply)));
    }
    if (this.#canWrite()) this.#publishHeartbeat(false);
    this.#heartbeatTimer = setInterval(() => this.#tick(), this.options.heartbeatMs);
    this.#heartbeatTimer.unref();
  }

  // ---------------------------------------------------------------- public API: SQL

  /** Runs a statement (or, without params, a script of several). Writes replicate on return. */
  exec(sql: string, params?: BindParams, opts?: WriteOptions): RunResult {
    this.#assertOpen();
    if (params === undefined && !opts) {
      const cached = this.#stmts.get(sql);
      if (!cached && this.#isScript(sql)) return this.#execScript(sql);
    }
    const c = this.#cached(sql);
    return this.#run(c, params, opts?.owned ?? false, (s) => {
      s.step();
      return this.#runResult();
    });
  }

  /** Rows as objects keyed by column name. */
  query<T extends Row = Row>(sql: string, params?: BindParams): T[] {
    this.#assertOpen();
    const c = this.#cached(sql);
    if (c.readonly) return this.#read(c, params, Infinity) as T[];
    return this.#run(c, params, false, (s) => {
      const rows: T[] = [];
      while (s.step()) rows.push(s.get({}) as T);
      return rows;
    });
  }

  /** The first row, or undefined. */
  get<T extends Row = Row>(sql: string, params?: BindParams): T | undefined {
    this.#assertOpen();
    const c = this.#cached(sql);
    if (c.readonly) return this.#read(c, params, 1)[0] as T | undefined;
    return this.#run(c, params, false, (s) => (s.step() ? (s.get({}) as T) : undefined));
  }

  /** A prepared statement the caller keeps (and finalizes). */
  prepare(sql: string): TdbStatement {
    this.#assertOpen();
    let stmt: PreparedStatement;
    try {
      stmt = this.#db.prepare(sql);
    } catch (err) {
      throw this.#sqlError(err);
    }
    const c: CachedStmt = { stmt, readonly: this.#sqlite.capi.sqlite3_stmt_readonly(stmt) !== 0 };
    let finalized = false;
    const check = () => {
      this.#assertOpen();
      if (finalized) throw new InvalidStateError('statement finalized');
    };
    return {
      run: (params, ) => {
        check();
        return this.#run(c, params, false, (s) => {
          s.step();
          return this.#runResult();
        });
      },
      all: <T extends Row = Row>(params?: BindParams) => {
        check();
        return this.#run(c, params, false, (s) => {
          const rows: T[] = [];
          while (s.step()) rows.push(s.get({}) as T);
          return rows;
        });
      },
      get: <T extends Row = Row>(params?: BindParams) => {
        check();
        return this.#run(c, params, false, (s) => (s.step() ? (s.get({}) as T) : undefined));
      },
      finalize: () => {
        if (finalized) return;
        finalized = true;
        if (!this.#closed) stmt.finalize();
      },
    };
  }

  /**
   * Runs `fn` in one transaction: all its writes commit and replicate together, or none do if it
   * throws. `fn` must be synchronous (SQLite is; awaiting inside would let remote changes interleave).
   * Nested calls are savepoints.
   */
  transaction<T>(fn: (db: this) => T, opts?: WriteOptions): T {
    this.#assertOpen();
    const outerOwned = this.#owned;
    if (this.#txDepth > 0) {
      const savedPending = new Map(this.#pending);
      const savedUnknown = this.#unknown.length;
      this.#txDepth++;
      this.#owned = opts?.owned ?? outerOwned;
      this.#db.exec('SAVEPOINT tdb_nested');
      try {
        const r = fn(this);
        if (r instanceof Promise) throw new TypeError('transaction callback must be synchronous');
        this.#db.exec('RELEASE tdb_nested');
        return r;
      } catch (err) {
        this.#db.exec('ROLLBACK TO tdb_nested; RELEASE tdb_nested');
        this.#pending = savedPending;
        this.#unknown.length = savedUnknown;
        throw err;
      } finally {
        this.#txDepth--;
        this.#owned = outerOwned;
      }
    }
    this.#begin(opts?.owned ?? false);
    try {
      const r = fn(this);
      if (r instanceof Promise) throw new TypeError('transaction callback must be synchronous');
      this.#commit();
      return r;
    } catch (err) {
      this.#rollback();
      throw err;
    }
  }

  // ---------------------------------------------------------------- public API: replication

  /** Remote changes (and, with `includeLocal`, this process's own) as they are applied. */
  changes(opts?: { includeLocal?: boolean }): AsyncIterableIterator<TdbChange> {
    this.#assertOpen();
    const s = new ChangeStream(opts?.includeLocal ?? false, this.options.maxQueuedChanges, (x) => this.#streams.delete(x));
    this.#streams.add(s);
    return s;
  }

  /** The replica's state as a snapshot (what peers receive when they join or resync). */
  snapshot(): TdbSnapshot {
    this.#assertOpen();
    const payload = this.#buildSnapshot();
    return { vector: Object.fromEntries(payload.vector), rows: payload.rows.length, bytes: encodeSnapshot(payload) };
  }

  /**
   * Deletes every row owned by `writerId` (a writer whose membership lapsed), as a replicated
   * write. Returns how many rows were removed. Runs automatically on lapse unless disabled.
   */
  dropOwner(writerId: string): number {
    this.#assertOpen();
    const victims: RowVersion[] = [];
    for (const v of this.#meta.values()) if (v.owner === writerId && !v.deleted) victims.push(v);
    if (victims.length === 0) return 0;
    return this.transaction(() => {
      let n = 0;
      for (const v of victims) {
        const t = this.#tables.get(v.table);
        if (!t) continue;
        this.#stmtDel(t).bind(v.pk as SqlValue[]).stepReset();
        n += this.#db.changes();
      }
      return n;
    });
  }

  /** Writers heard from recently (heartbeat or change), this one included when it can write. */
  members(): string[] {
    const out = [...this.#members.keys()];
    if (this.#canWrite()) out.push(this.writerId);
    return [...new Set(out)].sort();
  }

  /** Last sequence applied per origin, this process's own included. */
  vector(): Record<string, number> {
    return { ...Object.fromEntries(this.#vector), [this.origin]: this.#seq };
  }

  /** Publishes committed changes now instead of at the end of this turn of the event loop. */
  flush(): void {
    this.#assertOpen();
    this.#flush();
  }

  /** True once the initial snapshot merged and no resync is in progress. */
  get synced(): boolean {
    return this.#state === 'synced';
  }

  get readOnly(): boolean {
    return !this.#canWrite();
  }

  stats(): TdbStats {
    return { ...this.#stats, rejected: { ...this.#stats.rejected } };
  }

  /**
   * SHA-256 of an ordered dump of every replicated table (rows sorted by primary key): equal on
   * two replicas iff they hold the same contents.
   */
  digest(): string {
    this.#assertOpen();
    const h = createHash('sha256');
    for (const t of [...this.#tables.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const w = new ByteWriter(4096);
      w.str(t.name);
      const order = t.pkIdx.map((i) => quoteId(t.cols[i] as string)).join(', ');
      const stmt = this.#db.prepare(`SELECT * FROM ${quoteId(t.name)} ORDER BY ${order}`);
      try {
        const vals: SqlValue[] = [];
        while (stmt.step()) {
          stmt.get(vals as never);
          for (const v of vals) w.value(v);
          vals.length = 0;
        }
      } finally {
        stmt.finalize();
      }
      h.update(w.finish());
    }
    return h.digest('hex');
  }

  /** Flushes pending changes, says goodbye (peers drop owned rows at once), and closes. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#state !== 'syncing') {
      this.#flush();
      if (this.#canWrite()) this.#publishHeartbeat(true);
    }
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#resyncTimer);
    for (const s of this.#subs) s.unsubscribe();
    this.#snapSub?.unsubscribe();
    for (const s of this.#streams) s.end();
    this.#streams.clear();
    await this.#transport.flush().catch(() => undefined);
    for (const c of this.#stmts.values()) c.stmt.finalize();
    this.#stmts.clear();
    for (const st of this.#ctlStmts.values()) st.finalize();
    this.#ctlStmts.clear();
    for (const t of this.#tables.values()) this.#finalizeTable(t);
    this.#db.close();
  }

  // ---------------------------------------------------------------- local writes

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError(`database ${this.name} is closed`);
  }

  #canWrite(): boolean {
    return !this.#keys || !!this.#writeGen?.writeKey;
  }

  #sqlError(err: unknown): Error {
    if (err instanceof this.#sqlite.SQLite3Error) return new SqlError(err.message, err.resultCode, { cause: err });
    return err instanceof Error ? err : new Error(String(err));
  }

  /** Steps a cached transaction-control statement on the raw WASM exports; throws `SqlError` on failure. */
  #ctl(sql: 'BEGIN' | 'COMMIT' | 'ROLLBACK'): void {
    let s = this.#ctlStmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#ctlStmts.set(sql, s);
    }
    const x = this.#sqlite.wasm.exports as unknown as RawExports;
    const p = s.pointer as number;
    const rc = x.sqlite3_step(p);
    if (rc !== 101) {
      const msg = this.#sqlite.capi.sqlite3_errmsg(this.#db);
      x.sqlite3_reset(p);
      throw new SqlError(`sqlite3 result code ${rc}: ${msg}`, rc);
    }
    x.sqlite3_reset(p);
  }

  #isScript(sql: string): boolean {
    // More than one statement, or DDL: let SQLite's exec walk it.
    const trimmed = sql.trim().replace(/;\s*$/, '');
    return trimmed.includes(';') || /^\s*(create|alter|drop)\b/i.test(sql);
  }

  #cached(sql: string): CachedStmt {
    let c = this.#stmts.get(sql);
    if (c) return c;
    let stmt: PreparedStatement;
    try {
      stmt = this.#db.prepare(sql);
    } catch (err) {
      throw this.#sqlError(err);
    }
    c = { stmt, readonly: this.#sqlite.capi.sqlite3_stmt_readonly(stmt) !== 0 };
    if (this.#stmts.size >= STMT_CACHE_MAX) {
      const [oldest, old] = this.#stmts.entries().next().value as [string, CachedStmt];
      this.#stmts.delete(oldest);
      old.stmt.finalize();
    }
    this.#stmts.set(sql, c);
    return c;
  }

  /**
   * The read path, on SQLite's raw WASM exports: the oo1/capi wrappers convert and check every
   * argument on every call, which is most of a point read's cost (5.5 µs → 1.7 µs measured; see
   * docs/benchmarks/tdb.md). Numeric positional parameters are bound here; others through oo1.
   */
  #read(c: CachedStmt, params: BindParams | undefined, limit: number): Row[] {
    const x = this.#sqlite.wasm.exports as unknown as RawExports;
    const s = c.stmt;
    const p = s.pointer as number;
    const rows: Row[] = [];
    try {
      if (params !== undefined) {
        // int32 integers bind as INTEGER, other non-integers as REAL, exactly as oo1 would.
        if (Array.isArray(params) && params.length === (c.nParams ??= s.parameterCount) && params.every(simpleParam)) {
          for (let i = 0; i < params.length; i++) {
            const v = params[i] as number | null;
            if (v === null) x.sqlite3_bind_null(p, i + 1);
            else if (v === (v | 0)) x.sqlite3_bind_int(p, i + 1, v);
            else x.sqlite3_bind_double(p, i + 1, v);
          }
        } else s.bind(params as never);
      }
      const cols = (c.cols ??= s.getColumnNames());
      const n = cols.length;
      while (rows.length < limit) {
        const rc = x.sqlite3_step(p);
        if (rc === 101) break; // SQLITE_DONE
        if (rc !== 100) throw new SqlError(this.#sqlite.capi.sqlite3_errmsg(this.#db), rc);
        const row: Row = {};
        for (let i = 0; i < n; i++) row[cols[i] as string] = this.#column(x, p, i);
        rows.push(row);
      }
      return rows;
    } catch (err) {
      throw this.#sqlError(err);
    } finally {
      x.sqlite3_reset(p);
      x.sqlite3_clear_bindings(p);
    }
  }

  #column(x: RawExports, p: number, i: number): SqlValue {
    switch (x.sqlite3_column_type(p, i)) {
      case 1: {
        const v = x.sqlite3_column_double(p, i);
        if (Number.isSafeInteger(v)) return v;
        return this.#sqlite.capi.sqlite3_column_int64(p, i);
      }
      case 2:
        return x.sqlite3_column_double(p, i);
      case 3: {
        const ptr = x.sqlite3_column_text(p, i);
        const len = x.sqlite3_column_bytes(p, i);
        return textDecoder.decode(this.#sqlite.wasm.heap8u().subarray(ptr, ptr + len));
      }
      case 4: {
        const ptr = x.sqlite3_column_blob(p, i);
        const len = x.sqlite3_column_bytes(p, i);
        return this.#sqlite.wasm.heap8u().slice(ptr, ptr + len);
      }
      default:
        return null;
    }
  }

  /** The full row with this primary key (or undefined), read on the raw exports when the key is numeric. */
  #selectRow(t: TableInfo, pk: SqlValue[]): SqlValue[] | undefined {
    const sel = this.#stmtSelect(t);
    const x = this.#sqlite.wasm.exports as unknown as RawExports;
    const p = sel.pointer as number;
    try {
      if (pk.every(simpleParam)) {
        for (let i = 0; i < pk.length; i++) {
          const v = pk[i] as number | null;
          if (v === null) x.sqlite3_bind_null(p, i + 1);
          else if (v === (v | 0)) x.sqlite3_bind_int(p, i + 1, v);
          else x.sqlite3_bind_double(p, i + 1, v);
        }
      } else sel.bind(pk as SqlValue[]);
      const rc = x.sqlite3_step(p);
      if (rc === 101) return undefined;
      if (rc !== 100) throw new SqlError(`sqlite3 result code ${rc}: ${this.#sqlite.capi.sqlite3_errmsg(this.#db)}`, rc);
      const n = x.sqlite3_column_count(p);
      const values: SqlValue[] = new Array(n);
      for (let i = 0; i < n; i++) values[i] = this.#column(x, p, i);
      return values;
    } finally {
      x.sqlite3_reset(p);
      x.sqlite3_clear_bindings(p);
    }
  }

  #runResult(): RunResult {
    const capi = this.#sqlite.capi;
    const id = capi.sqlite3_last_insert_rowid(this.#db);
    return { changes: capi.sqlite3_changes(this.#db), lastInsertRowid: id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : id };
  }

  #run<R>(c: CachedStmt, params: BindParams | undefined, owned: boolean, body: (s: PreparedStatement) => R): R {
    const s = c.stmt;
    if (c.readonly) {
      try {
        if (params !== undefined) s.bind(params as never);
        return body(s);
      } catch (err) {
        throw this.#sqlError(err);
      } finally {
        s.reset(true);
      }
    }
    if (!this.#canWrite()) throw new ReadOnlyError(`database ${this.name}: this process holds no write key`);
    const wrap = this.#txDepth === 0;
    if (wrap) this.#begin(owned);
    const prevOwned = this.#owned;
    if (owned) this.#owned = true;
    try {
      if (params !== undefined) s.bind(params as never);
      const r = body(s);
      s.reset(true);
      if (wrap) this.#commit();
      return r;
    } catch (err) {
      s.resetNoThrow(true);
      if (wrap) this.#rollback();
      throw this.#sqlError(err);
    } finally {
      this.#owned = prevOwned;
    }
  }

  #execScript(sql: string): RunResult {
    if (!this.#canWrite()) {
      // A read-only process may still run read-only scripts; SQLite tells us by refusing nothing,
      // so check statement by statement is overkill: scripts are writes or DDL by construction.
      throw new ReadOnlyError(`database ${this.name}: this process holds no write key`);
    }
    const wrap = this.#txDepth === 0;
    if (wrap) this.#begin(false);
    try {
      this.#db.exec(sql);
      this.#schemaChanged = true;
      const r = this.#runResult();
      if (wrap) this.#commit();
      return r;
    } catch (err) {
      if (wrap) this.#rollback();
      throw this.#sqlError(err);
    }
  }

  #begin(owned: boolean): void {
    this.#ctl('BEGIN');
    this.#txDepth = 1;
    this.#owned = owned;
    this.#pending = new Map();
    this.#unknown = [];
    this.#schemaChanged = false;
  }

  #rollback(): void {
    this.#txDepth = 0;
    this.#owned = false;
    this.#pending = new Map();
    this.#unknown = [];
    try {
      this.#ctl('ROLLBACK');
    } catch {
      // SQLite may already have rolled back (e.g. after SQLITE_FULL); nothing left to undo.
    }
    if (this.#schemaChanged) this.#refreshSchema();
    this.#schemaChanged = false;
  }

  #commit(): void {
    let ddl: string[] = [];
    if (this.#schemaChanged || this.#unknown.length > 0) {
      const before = new Set(this.#tables.keys());
      this.#refreshSchema();
      ddl = [...this.#tables.values()].filter((t) => !before.has(t.name)).map((t) => t.sql);
      for (const ev of this.#unknown) this.#resolveUnknown(ev);
    }
    const pending = this.#pending;
    const rows: RowChange[] = [];
    for (const [key, p] of pending) {
      let values: SqlValue[] | undefined;
      if (!p.deleted) {
        values = this.#selectRow(p.table, p.pk);
      }
      const prev = this.#meta.get(key);
      if (!values && !p.deleted && !prev) continue; // inserted and gone again (or a failed insert): nothing to say
      const owner = p.owned ? this.writerId : prev && !prev.deleted ? prev.owner : undefined;
      if (values) rows.push({ table: p.table.name, op: OP_UPSERT, owner, values });
      else rows.push({ table: p.table.name, op: OP_DELETE, owner, values: p.pk });
    }
    this.#ctl('COMMIT');
    this.#txDepth = 0;
    this.#owned = false;
    this.#pending = new Map();
    this.#unknown = [];
    if (rows.length === 0 && ddl.length === 0) return;
    const hlc = this.#hlc.now();
    for (const row of rows) {
      const t = this.#tables.get(row.table) as TableInfo;
      const pk = row.op === OP_UPSERT ? t.pkIdx.map((i) => row.values[i] ?? null) : row.values;
      this.#meta.set(pkKey(row.table, pk), { hlc, origin: this.origin, owner: row.owner, table: row.table, pk, deleted: row.op === OP_DELETE });
    }
    this.#outbound.push({ hlc, ddl, rows });
    this.#scheduleFlush();
    if (this.#streams.size > 0) for (const row of rows) this.#emitRow(row, this.writerId, hlc, true);
  }

  #installHook(): void {
    const capi = this.#sqlite.capi;
    // The typings omit the third (user data) argument the binding requires.
    const setHook = capi.sqlite3_preupdate_hook as unknown as (db: Database, cb: Parameters<typeof capi.sqlite3_preupdate_hook>[1], pApp: number) => void;
    setHook(this.#db, (_ctx, pdb, op, zDb, zTbl, k1, k2) => {
      if (this.#applying || this.#txDepth === 0 || zDb !== 'main') return;
      const t = this.#tables.get(zTbl);
      if (!t || t.pkIdx.length === 0) {
        if (zTbl.startsWith('sqlite_') || zTbl.startsWith(LOCAL_TABLE_PREFIX)) return;
        const n = capi.sqlite3_preupdate_count(pdb);
        const read = (fn: typeof capi.sqlite3_preupdate_old_js) => Array.from({ length: n }, (_, i) => fn(pdb, i) as SqlValue);
        this.#unknown.push({
          table: zTbl,
          op,
          oldVals: op === capi.SQLITE_INSERT ? undefined : read(capi.sqlite3_preupdate_old_js),
          newVals: op === capi.SQLITE_DELETE ? undefined : read(capi.sqlite3_preupdate_new_js),
          owned: this.#owned,
        });
        return;
      }
      if (op === capi.SQLITE_DELETE) this.#touch(t, t.rowidPk ? [Number(k1)] : this.#readPk(t, pdb, false), true);
      else if (op === capi.SQLITE_INSERT) this.#touch(t, t.rowidPk ? [Number(k2)] : this.#readPk(t, pdb, true), false);
      else {
        const oldPk = t.rowidPk ? [Number(k1)] : this.#readPk(t, pdb, false);
        const newPk = t.rowidPk ? [Number(k2)] : this.#readPk(t, pdb, true);
        if (pkKey(t.name, oldPk) !== pkKey(t.name, newPk)) this.#touch(t, oldPk, true);
        this.#touch(t, newPk, false);
      }
    }, 0);
  }

  #readPk(t: TableInfo, pdb: number, fromNew: boolean): SqlValue[] {
    const capi = this.#sqlite.capi;
    const fn = fromNew ? capi.sqlite3_preupdate_new_js : capi.sqlite3_preupdate_old_js;
    return t.pkIdx.map((i) => fn(pdb, i) as SqlValue);
  }

  #touch(t: TableInfo, pk: SqlValue[], deleted: boolean): void {
    const key = pkKey(t.name, pk);
    const prev = this.#pending.get(key);
    this.#pending.set(key, { table: t, pk, deleted, owned: this.#owned || (prev?.owned ?? false) });
  }

  #resolveUnknown(ev: UnknownTableEvent): void {
    const t = this.#tables.get(ev.table);
    if (!t) return; // dropped again within the transaction
    const saved = this.#owned;
    this.#owned = ev.owned;
    const pick = (vals: SqlValue[]) => t.pkIdx.map((i) => vals[i] ?? null);
    if (ev.oldVals) this.#touch(t, pick(ev.oldVals), true);
    if (ev.newVals) this.#touch(t, pick(ev.newVals), false);
    this.#owned = saved;
  }

  #refreshSchema(): void {
    const next = new Map<string, TableInfo>();
    const list = this.#db.exec({
      sql: "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
      rowMode: 'array',
      returnValue: 'resultRows',
    }) as Array<[string, string]>;
    for (const [name, sql] of list) {
      if (name.startsWith(LOCAL_TABLE_PREFIX)) continue;
      const info = this.#db.exec({ sql: `PRAGMA table_info(${quoteId(name)})`, rowMode: 'object', returnValue: 'resultRows' }) as Array<{
        name: string;
        type: string;
        pk: number;
      }>;
      const cols = info.map((c) => c.name);
      const pks = info.map((c, i) => ({ i, pk: c.pk, type: c.type })).filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
      const withoutRowid = /\bWITHOUT\s+ROWID\b/i.test(sql);
      const old = this.#tables.get(name);
      const same = old && old.sql === sql;
      if (pks.length === 0) {
        // Refused at write time (a SchemaError), not here: a table may exist but stay unused.
        next.set(name, { name, cols, pkIdx: [], rowidPk: false, sql });
        if (old && !same) this.#finalizeTable(old);
        continue;
      }
      const rowidPk = !withoutRowid && pks.length === 1 && pks[0]?.type.toUpperCase() === 'INTEGER';
      if (same) next.set(name, old);
      else {
        if (old) this.#finalizeTable(old);
        next.set(name, { name, cols, pkIdx: pks.map((p) => p.i), rowidPk, sql });
      }
    }
    for (const [name, t] of this.#tables) if (!next.has(name)) this.#finalizeTable(t);
    this.#tables = next;
    for (const t of next.values()) {
      if (t.pkIdx.length === 0 && this.#txDepth > 0 && this.#hasPendingFor(t.name)) {
        throw new SchemaError(t.name, 'has no PRIMARY KEY; tdb replicates tables with a primary key (prefix the name with _local_ to keep it local)');
      }
    }
  }

  #hasPendingFor(table: string): boolean {
    return this.#unknown.some((e) => e.table === table);
  }

  #finalizeTable(t: TableInfo): void {
    t.upsert?.finalize();
    t.del?.finalize();
    t.select?.finalize();
    t.upsert = t.del = t.select = undefined;
  }

  #pkWhere(t: TableInfo): string {
    return t.pkIdx.map((i) => `${quoteId(t.cols[i] as string)} IS ?`).join(' AND ');
  }

  #stmtSelect(t: TableInfo): PreparedStatement {
    t.select ??= this.#db.prepare(`SELECT * FROM ${quoteId(t.name)} WHERE ${this.#pkWhere(t)}`);
    return t.select;
  }

  #stmtDel(t: TableInfo): PreparedStatement {
    t.del ??= this.#db.prepare(`DELETE FROM ${quoteId(t.name)} WHERE ${this.#pkWhere(t)}`);
    return t.del;
  }

  #stmtUpsert(t: TableInfo): PreparedStatement {
    t.upsert ??= this.#db.prepare(
      `INSERT OR REPLACE INTO ${quoteId(t.name)} (${t.cols.map(quoteId).join(', ')}) VALUES (${t.cols.map(() => '?').join(', ')})`,
    );
    return t.upsert;
  }

  // ---------------------------------------------------------------- publishing

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // setImmediate, not a timer: everything committed in this turn of the event loop leaves in one
    // frame (one signature, one encryption, one NATS message), and nothing waits longer than a turn.
    setImmediate(() => {
      this.#flushScheduled = false;
      if (!this.#closed) this.#flush();
    });
  }

  #flush(): void {
    if (this.#outbound.length === 0) return;
    const txs = this.#outbound;
    this.#outbound = [];
    const limit = Math.max(1024, Math.floor(this.#transport.maxPayload / 2));
    let enc = new ChangesEncoder();
    let hlc = 0;
    for (const tx of txs) {
      enc.add(tx);
      hlc = tx.hlc;
      if (enc.size >= limit) {
        this.#publishChanges(enc.finish(), hlc);
        enc = new ChangesEncoder();
      }
    }
    if (enc.txCount > 0) this.#publishChanges(enc.finish(), hlc);
  }

  #publishChanges(payload: Uint8Array, hlc: number): void {
    this.#seq++;
    const frame = encodeFrame(this.name, { kind: FrameKind.Changes, writerId: this.writerId, session: this.#session, seq: this.#seq, hlc }, payload, this.#writeGen);
    this.#transport.publish(this.#subjects.changes, frame);
    this.#stats.framesSent++;
  }

  #publishHeartbeat(leaving: boolean): void {
    try {
      const frame = encodeFrame(
        this.name,
        { kind: FrameKind.Heartbeat, writerId: this.writerId, session: this.#session, seq: this.#seq, hlc: this.#hlc.now() },
        encodeHeartbeat(leaving),
        this.#writeGen,
      );
      this.#transport.publish(this.#subjects.changes, frame);
    } catch (err) {
      this.#log?.warn({ db: this.name, err }, 'heartbeat publish failed');
    }
  }

  #tick(): void {
    if (this.#closed) return;
    this.#flush();
    if (this.#canWrite()) this.#publishHeartbeat(false);
    const now = performance.now();
    const lapseMs = this.options.heartbeatMs * this.options.lapseHeartbeats;
    for (const [w, seen] of this.#members) if (now - seen > lapseMs) this.#lapse(w);
    for (const [id, s] of this.#served) if (s.expires < now) this.#served.delete(id);
  }

  #seeMember(writerId: string, emit = true): void {
    if (writerId === this.writerId) return;
    const known = this.#members.has(writerId);
    this.#members.set(writerId, performance.now());
    if (!known && emit) this.#emit({ type: 'member-up', writerId });
  }

  #lapse(writerId: string): void {
    this.#members.delete(writerId);
    let dropped = 0;
    if (this.options.dropOwnedOnLapse && this.#canWrite() && this.#state !== 'syncing') {
      try {
        dropped = this.dropOwner(writerId);
      } catch (err) {
        this.#log?.error({ db: this.name, writerId, err }, 'dropping a lapsed writer\'s rows failed');
      }
    }
    this.#log?.info({ db: this.name, writerId, dropped }, 'writer lapsed');
    this.#emit({ type: 'member-lapsed', writerId, droppedRows: dropped });
  }

  // ---------------------------------------------------------------- receiving

  #reject(err: unknown): void {
    const kind: RejectKind = err instanceof FrameError ? err.kind : 'malformed';
    this.#stats.rejected[kind]++;
    if (!this.#loggedRejects.has(kind)) {
      this.#loggedRejects.add(kind);
      this.#log?.warn({ db: this.name, kind, err: err instanceof Error ? err.message : String(err) }, 'rejected a frame (logged once per kind; see stats)');
    }
  }

  #onChangesMessage(data: Uint8Array): void {
    if (this.#closed) return;
    let frame: DecodedFrame;
    try {
      frame = decodeFrame(this.name, data, this.#keys);
    } catch (err) {
      if (err instanceof FrameError && err.kind === 'unknownKey' && !this.#keys) this.#sawEncrypted = true;
      this.#reject(err);
      return;
    }
    if (frame.session === this.#session) return; // our own, echoed back
    if (frame.kind === FrameKind.Snapshot) {
      this.#reject(new FrameError('malformed', 'snapshot frame on the changes subject'));
      return;
    }
    this.#stats.framesReceived++;
    this.#hlc.observe(frame.hlc);
    const origin = `${frame.writerId}/${frame.session}`;
    if (frame.kind === FrameKind.Heartbeat) {
      let leaving = false;
      try {
        leaving = decodeHeartbeat(frame.payload).leaving;
      } catch (err) {
        this.#reject(err);
        return;
      }
      if (this.#state === 'syncing') {
        if (!leaving) this.#seeMember(frame.writerId, false);
        return;
      }
      const last = this.#vector.get(origin) ?? 0;
      if (frame.seq > last && frame.seq > (this.#behind.get(origin) ?? 0)) {
        // The heartbeat says we missed the writer's latest changes: the tail of a burst was lost.
        this.#stats.gaps++;
        this.#requestResync('gap', origin, frame.seq);
      }
      if (leaving) {
        if (this.#members.has(frame.writerId)) this.#lapse(frame.writerId);
      } else this.#seeMember(frame.writerId);
      return;
    }
    this.#seeMember(frame.writerId, this.#state !== 'syncing');
    if (this.#state === 'syncing') {
      this.#buffer(origin, frame);
      return;
    }
    const last = this.#vector.get(origin) ?? 0;
    if (frame.seq <= last) {
      this.#stats.duplicates++;
      return;
    }
    if (frame.seq === last + 1) {
      this.#applyFrame(origin, frame);
      this.#drainOrigin(origin);
      return;
    }
    this.#stats.gaps++;
    this.#buffer(origin, frame);
    this.#requestResync('gap', origin, frame.seq - 1);
  }

  #buffer(origin: string, frame: DecodedFrame): void {
    let m = this.#buffered.get(origin);
    if (!m) this.#buffered.set(origin, (m = new Map()));
    if (m.has(frame.seq)) return;
    m.set(frame.seq, frame);
    this.#bufferedCount++;
    if (this.#bufferedCount > this.options.maxPendingFrames) {
      // Too far behind to replay: forget the backlog, a snapshot will cover it.
      const origins = [...this.#buffered.entries()].map(([o, m]) => [o, Math.max(...m.keys())] as const);
      this.#buffered.clear();
      this.#bufferedCount = 0;
      if (this.#state !== 'syncing') for (const [o, seq] of origins) this.#requestResync('overflow', o, seq);
    }
  }

  #drainOrigin(origin: string): void {
    const m = this.#buffered.get(origin);
    if (!m) return;
    let last = this.#vector.get(origin) ?? 0;
    for (const seq of [...m.keys()]) {
      if (seq <= last) {
        m.delete(seq);
        this.#bufferedCount--;
      }
    }
    for (;;) {
      const next = m.get(last + 1);
      if (!next) break;
      m.delete(last + 1);
      this.#bufferedCount--;
      this.#applyFrame(origin, next);
      last++;
    }
    if (m.size === 0) this.#buffered.delete(origin);
  }

  /** After a snapshot: apply what is contiguous; true if gaps remain. */
  #drainBuffered(): boolean {
    for (const origin of [...this.#buffered.keys()]) this.#drainOrigin(origin);
    return this.#buffered.size > 0;
  }

  #applyFrame(origin: string, frame: DecodedFrame): void {
    let txs: TxChange[];
    try {
      txs = decodeChanges(frame.payload);
    } catch (err) {
      // Signed by a writer but undecodable: count it and move on, or the origin would stall forever.
      this.#reject(err);
      this.#vector.set(origin, frame.seq);
      return;
    }
    this.#applying = true;
    this.#ctl('BEGIN');
    try {
      for (const tx of txs) {
        this.#hlc.observe(tx.hlc);
        for (const sql of tx.ddl) this.#applyDdl(sql);
        for (const row of tx.rows) this.#applyRow(row, tx.hlc, origin, frame.writerId);
        this.#stats.txApplied++;
      }
      this.#ctl('COMMIT');
    } catch (err) {
      this.#ctl('ROLLBACK');
      this.#log?.error({ db: this.name, origin, seq: frame.seq, err }, 'applying a remote change failed; resyncing');
      this.#applying = false;
      this.#requestResync('gap', origin, frame.seq);
      return;
    }
    this.#applying = false;
    this.#vector.set(origin, frame.seq);
  }

  #applyDdl(sql: string): void {
    const m = /^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)/i.exec(sql);
    if (!m?.[1]) return;
    const name = m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1];
    if (this.#tables.has(name)) return;
    this.#db.exec(sql);
    this.#refreshSchema();
  }

  /** Per-row last-writer-wins. Returns true when the row changed here. */
  #applyRow(row: RowChange, hlc: number, origin: string, writerId: string): boolean {
    const t = this.#tables.get(row.table);
    if (!t || t.pkIdx.length === 0 || (row.op === OP_UPSERT && row.values.length !== t.cols.length) || (row.op === OP_DELETE && row.values.length !== t.pkIdx.length)) {
      this.#reject(new FrameError('schema', `row for ${row.table} does not match the local schema`));
      return false;
    }
    const pk = row.op === OP_UPSERT ? t.pkIdx.map((i) => row.values[i] as SqlValue) : row.values;
    const key = pkKey(t.name, pk);
    const cur = this.#meta.get(key);
    if (cur && compareVersion(hlc, origin, cur.hlc, cur.origin) <= 0) {
      this.#stats.rowsStale++;
      return false;
    }
    if (row.op === OP_UPSERT) this.#stmtUpsert(t).bind(row.values).stepReset();
    else this.#stmtDel(t).bind(pk).stepReset();
    this.#meta.set(key, { hlc, origin, owner: row.owner, table: t.name, pk, deleted: row.op === OP_DELETE });
    this.#stats.rowsApplied++;
    if (this.#streams.size > 0) this.#emitRow(row, writerId, hlc, false);
    return true;
  }

  #emitRow(row: RowChange, writerId: string, hlc: number, local: boolean): void {
    const t = this.#tables.get(row.table);
    if (!t) return;
    let ev: TdbChange;
    if (row.op === OP_UPSERT) {
      const obj: Row = {};
      t.cols.forEach((c, i) => (obj[c] = row.values[i] ?? null));
      ev = { type: 'upsert', table: t.name, key: t.pkIdx.map((i) => row.values[i] ?? null), row: obj, writerId, hlc, local };
    } else ev = { type: 'delete', table: t.name, key: row.values, writerId, hlc, local };
    for (const s of this.#streams) if (!local || s.includeLocal) s.push(ev);
  }

  #emit(ev: TdbChange): void {
    for (const s of this.#streams) s.push(ev);
  }

  // ---------------------------------------------------------------- snapshots

  #buildSnapshot(): SnapshotPayload {
    this.#flush();
    const vector = new Map(this.#vector);
    if (this.#seq > 0) vector.set(this.origin, this.#seq);
    const tables = new Map<string, string>();
    const rows: SnapshotRow[] = [];
    const seen = new Set<string>();
    for (const t of this.#tables.values()) {
      tables.set(t.name, t.sql);
      if (t.pkIdx.length === 0) continue;
      const stmt = this.#db.prepare(`SELECT * FROM ${quoteId(t.name)}`);
      try {
        while (stmt.step()) {
          const values = stmt.get([]) as SqlValue[];
          const key = pkKey(t.name, t.pkIdx.map((i) => values[i] ?? null));
          const v = this.#meta.get(key);
          seen.add(key);
          rows.push({ table: t.name, op: OP_UPSERT, hlc: v?.hlc ?? 0, origin: v?.origin ?? '', owner: v?.owner, values });
        }
      } finally {
        stmt.finalize();
      }
    }
    for (const [key, v] of this.#meta) {
      if (v.deleted && !seen.has(key)) rows.push({ table: v.table, op: OP_DELETE, hlc: v.hlc, origin: v.origin, owner: v.owner, values: v.pk });
    }
    return { vector, tables, rows };
  }

  #onSnapshotRequest(data: Uint8Array, reply: string | undefined): void {
    if (!reply || this.#closed) return;
    if (this.#state === 'syncing' || new TextDecoder().decode(data) === this.#session) {
      this.#transport.publish(reply, encodeChunkRefusal(this.#state === 'syncing' ? 'syncing' : 'asked myself'));
      return;
    }
    try {
      const payload = encodeSnapshot(this.#buildSnapshot());
      const frame = encodeFrame(
        this.name,
        { kind: FrameKind.Snapshot, writerId: this.writerId, session: this.#session, seq: this.#seq, hlc: this.#hlc.now() },
        payload,
        this.#writeGen,
      );
      const size = Math.max(1024, this.#transport.maxPayload - 1024);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < frame.length; at += size) chunks.push(frame.subarray(at, at + size));
      if (chunks.length === 0) chunks.push(new Uint8Array(0));
      const snapId = randomBytes(6).toString('hex');
      if (chunks.length > 1) this.#served.set(snapId, { chunks, expires: performance.now() + 30_000 });
      // The first chunk names our private chunk subject, from which the requester pulls the rest.
      this.#transport.publish(reply, encodeChunk(`${snapId}@${this.#subjects.chunk}`, chunks.length, 0, chunks[0] as Uint8Array));
      this.#stats.snapshotsServed++;
    } catch (err) {
      this.#log?.error({ db: this.name, err }, 'serving a snapshot failed');
      this.#transport.publish(reply, encodeChunkRefusal('internal error'));
    }
  }

  #onChunkRequest(data: Uint8Array, reply: string | undefined): void {
    if (!reply) return;
    try {
      const { snapId, index } = decodeChunkRequest(data);
      const s = this.#served.get(snapId);
      const chunk = s?.chunks[index];
      if (!s || !chunk) {
        this.#transport.publish(reply, encodeChunkRefusal('unknown snapshot or chunk'));
        return;
      }
      this.#transport.publish(reply, encodeChunk(snapId, s.chunks.length, index, chunk));
      if (index === s.chunks.length - 1) this.#served.delete(snapId);
    } catch {
      this.#transport.publish(reply, encodeChunkRefusal('malformed chunk request'));
    }
  }

  /** Fetches and merges a snapshot. Returns false when nobody can serve one (we are alone). */
  async #syncFromPeer(reason: 'join' | 'gap' | 'overflow' | 'reconnect', subject = this.#subjects.snapshot): Promise<boolean> {
    const timeout = this.options.syncTimeoutMs;
    let lastErr: unknown;
    let keyErr: unknown;
    const started = performance.now();
    for (let attempt = 0; attempt < 3; attempt++) {
      let first: Uint8Array;
      try {
        first = await this.#transport.request(subject, new TextEncoder().encode(this.#session), timeout);
      } catch (err) {
        if (err instanceof NoRespondersError) return false;
        if (err instanceof TransportTimeoutError) {
          // A plain subscriber on the subject (a monitor on `tdb.>`) hides "no responders". If a
          // whole heartbeat period passed without a word from any writer, nobody is there.
          if (reason === 'join' && this.#members.size === 0 && performance.now() - started >= this.options.heartbeatMs) return false;
          lastErr = err;
          continue;
        }
        throw err;
      }
      const c = decodeChunk(first);
      if (c.type === 'refused') {
        lastErr = new Error(`peer refused snapshot: ${c.reason}`);
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
        continue;
      }
      const [snapId, chunkSubject] = c.snapId.split('@') as [string, string | undefined];
      const parts: Uint8Array[] = [c.data];
      for (let i = 1; i < c.total; i++) {
        const raw = await this.#transport.request(chunkSubject ?? '', encodeChunkRequest(snapId, i), timeout);
        const next = decodeChunk(raw);
        if (next.type === 'refused' || next.index !== i) throw new FrameError('malformed', `snapshot chunk ${i} missing`);
        parts.push(next.data);
      }
      const bytes = Buffer.concat(parts);
      let frame: DecodedFrame;
      try {
        frame = decodeFrame(this.name, bytes, this.#keys);
      } catch (err) {
        // A snapshot we cannot verify or decrypt: we lack the keys (or hold a wrong copy). A forger
        // answering would look the same, but it cannot have a valid signature either way.
        if (err instanceof FrameError && (err.kind === 'unknownKey' || err.kind === 'decrypt' || err.kind === 'badSignature')) {
          keyErr = err;
        }
        this.#reject(err);
        lastErr = err;
        continue;
      }
      if (frame.kind !== FrameKind.Snapshot) {
        lastErr = new FrameError('malformed', 'reply is not a snapshot');
        continue;
      }
      this.#hlc.observe(frame.hlc);
      this.#mergeSnapshot(decodeSnapshot(frame.payload), reason);
      return true;
    }
    if (keyErr) throw new ReadKeyRequiredError(`database ${this.name} is encrypted and this process holds no read key for it`, { cause: keyErr });
    throw new TimeoutError(`no snapshot for ${this.name} after 3 attempts`, { cause: lastErr });
  }

  #mergeSnapshot(s: SnapshotPayload, reason: 'join' | 'gap' | 'overflow' | 'reconnect'): void {
    let changed = 0;
    this.#applying = true;
    this.#ctl('BEGIN');
    try {
      for (const [name, sql] of s.tables) if (!this.#tables.has(name)) this.#applyDdl(sql);
      for (const row of s.rows) {
        if (row.hlc === 0 && row.origin === '') continue; // rows every replica created from its schema
        this.#hlc.observe(row.hlc);
        if (this.#applyRow(row, row.hlc, row.origin, row.origin.split('/')[0] ?? row.origin)) changed++;
      }
      this.#ctl('COMMIT');
    } catch (err) {
      this.#ctl('ROLLBACK');
      throw err;
    } finally {
      this.#applying = false;
    }
    for (const [origin, seq] of s.vector) {
      if (origin === this.origin) continue;
      if (seq > (this.#vector.get(origin) ?? 0)) this.#vector.set(origin, seq);
    }
    this.#stats.resyncs++;
    this.#emit({ type: 'resync', reason, rows: changed });
  }

  #requestResync(reason: 'gap' | 'overflow' | 'reconnect', origin: string, target: number): void {
    if (this.#closed || this.#state === 'syncing') return;
    if (target > (this.#behind.get(origin) ?? 0)) this.#behind.set(origin, target);
    if (this.#state === 'resyncing') return;
    this.#state = 'resyncing';
    void this.#resync(reason);
  }

  /** Drops targets already reached; true while some origin is still behind. */
  #stillBehind(): boolean {
    for (const [origin, target] of this.#behind) if ((this.#vector.get(origin) ?? 0) >= target) this.#behind.delete(origin);
    return this.#behind.size > 0;
  }

  async #resync(reason: 'gap' | 'overflow' | 'reconnect'): Promise<void> {
    let failed = false;
    try {
      let rounds = 0;
      while (!this.#closed && this.#stillBehind() && rounds++ < 8) {
        const origin = this.#behind.keys().next().value as string;
        const session = origin.slice(origin.lastIndexOf('/') + 1);
        // Ask the origin itself first: it holds every change it made. No responder there means it
        // is gone; then any peer's state is the best there is.
        let originGone = false;
        try {
          originGone = !(await this.#syncFromPeer(reason, `${this.#subjects.snapshot}.${session}`));
        } catch (err) {
          if (err instanceof ReadKeyRequiredError) throw err;
        }
        if (originGone) await this.#syncFromPeer(reason);
        if (this.#closed) return;
        this.#drainBuffered();
        if (originGone && (this.#vector.get(origin) ?? 0) < (this.#behind.get(origin) ?? 0)) {
          // Nobody alive holds what we miss from this origin: accept the loss, apply what we have
          // after the hole, and say so. LWW keeps the replicas convergent regardless.
          const m = this.#buffered.get(origin);
          const next = m && m.size > 0 ? Math.min(...m.keys()) - 1 : (this.#behind.get(origin) ?? 0);
          if (next > (this.#vector.get(origin) ?? 0)) this.#vector.set(origin, next);
          this.#behind.delete(origin);
          this.#drainBuffered();
          this.#log?.warn({ db: this.name, origin }, 'changes from a departed writer could not be recovered');
        }
      }
      this.#resyncFailures = 0;
    } catch (err) {
      failed = true;
      this.#resyncFailures++;
      this.#log?.warn({ db: this.name, err: err instanceof Error ? err.message : String(err) }, 'resync failed; will retry');
    }
    if (this.#closed) return;
    this.#state = 'synced';
    this.#drainBuffered();
    if (failed || this.#stillBehind()) {
      // Peers were behind us, or did not answer: try again shortly rather than spin.
      clearTimeout(this.#resyncTimer);
      this.#resyncTimer = setTimeout(() => {
        if (this.#closed || this.#state !== 'synced' || !this.#stillBehind()) return;
        this.#state = 'resyncing';
        void this.#resync(reason);
      }, Math.min(1000, 50 * 2 ** Math.min(this.#resyncFailures, 4)));
      this.#resyncTimer.unref();
    }
  }

  #onReconnect(): void {
    if (this.#closed || this.#state === 'syncing') return;
    // Tell peers where we are (they resync if they missed our tail); their heartbeats tell us.
    if (this.#canWrite()) this.#publishHeartbeat(false);
  }
}
