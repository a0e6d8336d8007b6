/**
 * tdbot: serves tdb databases over NATS request/reply for applications that cannot embed tdb
 * (docs/tdb.md, "tdbot"). Subjects, per database:
 *
 *   tdbot.<db>.exec         {token, sql, params?}            → {ok, changes, lastInsertRowid}
 *   tdbot.<db>.query        {token, sql, params?}            → {ok, rows}
 *   tdbot.<db>.subscribe    {token, deliver, tables?}        → {ok, id}; then change events on `deliver`
 *   tdbot.<db>.unsubscribe  {token, id}                      → {ok}
 *
 * Errors: {error: {code, message, field?}}; codes: bad_request, unauthorized, forbidden, unknown_db,
 * sql_error, read_only, internal. Access control: a token maps to a client id and the databases it
 * may read and write ('*' = all).
 */
import { readFileSync } from 'node:fs';
import { connect, type NatsConnection, type Msg, type Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import { openKeyring } from '../tdb/keys.js';
import { ReadOnlyError, SqlError, Tdb, type SqlValue, type TdbChange } from '../tdb/index.js';
import { logger } from './log.js';

const log = logger('edge:tdbot');

export const AclSchema = z
  .object({
    clients: z
      .array(
        z
          .object({
            id: z.string().min(1),
            token: z.string().min(16, 'must be at least 16 characters'),
            read: z.array(z.string().min(1)).default([]),
            write: z.array(z.string().min(1)).default([]),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type Acl = z.infer<typeof AclSchema>;

export const TdbotConfigSchema = z
  .object({
    nats: z.string().min(1).optional(),
    writerId: z.string().min(1).optional(),
    acl: AclSchema.optional(),
    dbs: z
      .record(
        z.string().min(1),
        z
          .object({
            schema: z.string().optional(),
            keyring: z.string().optional().describe('keyring file path'),
            app: z.string().optional(),
            privateKey: z.string().optional().describe('PEM file path of the app RSA private key'),
          })
          .strict(),
      )
      .default({}),
  })
  .strict();
export type TdbotConfig = z.infer<typeof TdbotConfigSchema>;

export interface TdbotOptions {
  natsUrl: string;
  writerId: string;
  acl: Acl;
  dbs: TdbotConfig['dbs'];
}

/** JSON has no blobs or 64-bit integers: blobs travel as {"$blob": base64}, big integers as {"$int": "..."}. */
const JsonValue = z.union([
  z.null(),
  z.number(),
  z.string(),
  z.boolean().transform((b) => (b ? 1 : 0)),
  z.object({ $blob: z.string() }).strict().transform((o) => new Uint8Array(Buffer.from(o.$blob, 'base64'))),
  z.object({ $int: z.string().regex(/^-?\d+$/) }).strict().transform((o) => BigInt(o.$int)),
]);
const Params = z.union([z.array(JsonValue), z.record(z.string(), JsonValue)]).optional();
const SqlRequest = z.object({ token: z.string(), sql: z.string().min(1).max(100_000), params: Params }).strict();
const SubscribeRequest = z.object({ token: z.string(), deliver: z.string().min(1).regex(/^[^\s*>]+$/, 'must be a plain subject'), tables: z.array(z.string()).optional() }).strict();
const UnsubscribeRequest = z.object({ token: z.string(), id: z.string() }).strict();

function toJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $blob: Buffer.from(v).toString('base64') };
  if (typeof v === 'bigint') return { $int: v.toString() };
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}

export class TdbotError extends Error {
  override name = 'TdbotError';
  constructor(readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function readAclFile(path: string): Acl {
  const parsed = AclSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TdbotError('config', `${path}: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return parsed.data;
}

export class Tdbot {
  #closed = false;
  readonly #subs: Subscription[] = [];
  readonly #feeds = new Map<string, { client: string; db: string; iter: AsyncIterableIterator<TdbChange> }>();
  #nextFeed = 0;

  private constructor(
    readonly nc: NatsConnection,
    readonly dbs: ReadonlyMap<string, Tdb>,
    private readonly acl: Acl,
  ) {}

  static async start(options: TdbotOptions): Promise<Tdbot> {
    const nc = await connect({ servers: options.natsUrl.split(','), name: `tdbot-${options.writerId}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    const dbs = new Map<string, Tdb>();
    try {
      for (const [name, cfg] of Object.entries(options.dbs)) {
        const keys = cfg.keyring
          ? openKeyring(readFileSync(cfg.keyring, 'utf8'), cfg.app ?? options.writerId, readFileSync(cfg.privateKey ?? '', 'utf8'))
          : undefined;
        const db = await Tdb.open(name, { nats: nc, writerId: options.writerId, ...(cfg.schema ? { schema: cfg.schema } : {}), ...(keys ? { keys } : {}), logger: log });
        dbs.set(name, db);
      }
    } catch (err) {
      for (const db of dbs.values()) await db.close();
      await nc.close();
      throw err;
    }
    const bot = new Tdbot(nc, dbs, options.acl);
    for (const name of dbs.keys()) {
      for (const op of ['exec', 'query', 'subscribe', 'unsubscribe'] as const) {
        bot.#subs.push(nc.subscribe(`tdbot.${name}.${op}`, { callback: (_err, msg) => bot.#handle(name, op, msg) }));
      }
    }
    await nc.flush();
    log.info({ dbs: [...dbs.keys()] }, 'tdbot ready');
    return bot;
  }

  #authorize(token: string, db: string, need: 'read' | 'write'): string {
    const client = this.acl.clients.find((c) => c.token === token);
    if (!client) throw new TdbotError('unauthorized', 'unknown token', 'token');
    const allowed = (list: string[]) => list.includes(db) || list.includes('*');
    if (need === 'read' ? !(allowed(client.read) || allowed(client.write)) : !allowed(client.write)) {
      throw new TdbotError('forbidden', `client ${client.id} may not ${need} database ${db}`);
    }
    return client.id;
  }

  #handle(dbName: string, op: 'exec' | 'query' | 'subscribe' | 'unsubscribe', msg: Msg): void {
    let reply: unknown;
    try {
      reply = this.#dispatch(dbName, op, msg.data);
    } catch (err) {
      reply = { error: this.#errorBody(err) };
    }
    if (msg.reply) msg.respond(enc.encode(JSON.stringify(reply)));
  }

  #errorBody(err: unknown): { code: string; message: string; field?: string } {
    if (err instanceof TdbotError) return { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) };
    if (err instanceof z.ZodError) {
      const issue = err.issues[0];
      return { code: 'bad_request', message: issue?.message ?? 'invalid request', field: issue?.path.join('.') ?? '' };
    }
    if (err instanceof SqlError) return { code: 'sql_error', message: err.message };
    if (err instanceof ReadOnlyError) return { code: 'read_only', message: err.message };
    log.error({ err }, 'tdbot request failed');
    return { code: 'internal', message: 'internal error' };
  }

  #dispatch(dbName: string, op: 'exec' | 'query' | 'subscribe' | 'unsubscribe', data: Uint8Array): unknown {
    const db = this.dbs.get(dbName);
    if (!db) throw new TdbotError('unknown_db', `no database ${dbName}`);
    let body: unknown;
    try {
      body = JSON.parse(dec.decode(data));
    } catch {
      throw new TdbotError('bad_request', 'body must be JSON');
    }
    switch (op) {
      case 'exec': {
        const req = SqlRequest.parse(body);
        this.#authorize(req.token, dbName, 'write');
        const r = db.exec(req.sql, req.params as SqlValue[] | undefined);
        return { ok: true, changes: r.changes, lastInsertRowid: toJson(r.lastInsertRowid) };
      }
      case 'query': {
        const req = SqlRequest.parse(body);
        this.#authorize(req.token, dbName, 'read');
        // A read-only client must not write through query(): refuse statements that would.
        const canWrite = (() => {
          try {
            this.#authorize(req.token, dbName, 'write');
            return true;
          } catch {
            return false;
          }
        })();
        if (!canWrite && !/^\s*(select|with|values|explain)\b/i.test(req.sql)) {
          throw new TdbotError('forbidden', 'read access allows only SELECT, WITH, VALUES and EXPLAIN', 'sql');
        }
        return { ok: true, rows: toJson(db.query(req.sql, req.params as SqlValue[] | undefined)) };
      }
      case 'subscribe': {
        const req = SubscribeRequest.parse(body);
        const client = this.#authorize(req.token, dbName, 'read');
        const id = `${dbName}-${++this.#nextFeed}`;
        const iter = db.changes({ includeLocal: true });
        this.#feeds.set(id, { client, db: dbName, iter });
        const tables = req.tables ? new Set(req.tables) : undefined;
        void (async () => {
          for await (const ev of iter) {
            if (tables && 'table' in ev && !tables.has(ev.table)) continue;
            this.nc.publish(req.deliver, enc.encode(JSON.stringify(toJson({ ...ev, subscription: id }))));
          }
        })().catch((err: unknown) => log.warn({ err, id }, 'subscription feed ended'));
        return { ok: true, id };
      }
      case 'unsubscribe': {
        const req = UnsubscribeRequest.parse(body);
        const client = this.#authorize(req.token, dbName, 'read');
        const feed = this.#feeds.get(req.id);
        if (!feed || feed.client !== client) throw new TdbotError('bad_request', `no subscription ${req.id}`, 'id');
        this.#feeds.delete(req.id);
        void feed.iter.return?.();
        return { ok: true };
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#subs) s.unsubscribe();
    for (const f of this.#feeds.values()) void f.iter.return?.();
    for (const db of this.dbs.values()) await db.close();
    await this.nc.drain().catch(() => this.nc.close());
  }
}

/** Resolves `botedge tdbot` flags and an optional JSON config file into options. */
export function resolveTdbotOptions(flags: { nats?: string; db?: string[]; acl?: string; writerId?: string; config?: string }): TdbotOptions {
  let cfg: TdbotConfig = { dbs: {} };
  if (flags.config) {
    const parsed = TdbotConfigSchema.safeParse(JSON.parse(readFileSync(flags.config, 'utf8')));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TdbotError('config', `${flags.config}: ${issue?.path.join('.')}: ${issue?.message}`, issue?.path.join('.'));
    }
    cfg = parsed.data;
  }
  const dbs = { ...cfg.dbs };
  for (const name of flags.db ?? []) dbs[name] ??= {};
  if (Object.keys(dbs).length === 0) throw new TdbotError('config', '--db (or dbs in --config) names no database', 'db');
  const acl = flags.acl ? readAclFile(flags.acl) : cfg.acl;
  if (!acl) throw new TdbotError('config', '--acl (or acl in --config) is required: tdbot serves nobody without one', 'acl');
  return {
    natsUrl: flags.nats ?? cfg.nats ?? 'nats://127.0.0.1:4222',
    writerId: flags.writerId ?? cfg.writerId ?? `tdbot-${process.pid}`,
    acl,
    dbs,
  };
}
