import { ByteReader, ByteWriter, type SqlValue } from './codec.js';
import { FrameError } from './errors.js';

/**
 * Payloads inside frames (wire.ts holds the envelope). Strings that repeat (table names, origins,
 * owners) are interned in a table at the start of each payload and referenced by index.
 *
 * changes  := strings | varint nTx | tx*
 *   tx     := f64 hlc | varint nDdl | varint strIdx* | varint nRows | row*
 *   row    := varint tableIdx | u8 op | varint ownerIdx+1 (0 = none) | varint nVals | value*
 *             op 1 = upsert (all columns, declared order), 2 = delete (primary-key columns)
 * snapshot := strings | varint nVector | (varint originIdx | varint seq)*
 *             | varint nTables | (varint tableIdx | varint sqlIdx)*
 *             | varint nRows | (varint tableIdx | u8 op | f64 hlc | varint originIdx
 *                              | varint ownerIdx+1 | varint nVals | value*)*
 * heartbeat := u8 flags (1 = leaving)
 * strings  := varint n | str*
 */

export const OP_UPSERT = 1;
export const OP_DELETE = 2;

export interface RowChange {
  table: string;
  op: typeof OP_UPSERT | typeof OP_DELETE;
  owner: string | undefined;
  /** upsert: every column in declared order; delete: the primary-key columns. */
  values: SqlValue[];
}

export interface TxChange {
  hlc: number;
  /** CREATE TABLE statements for tables this transaction created. */
  ddl: string[];
  rows: RowChange[];
}

export interface SnapshotRow extends RowChange {
  hlc: number;
  origin: string;
}

export interface SnapshotPayload {
  vector: Map<string, number>;
  /** table name → CREATE TABLE sql */
  tables: Map<string, string>;
  rows: SnapshotRow[];
}

class Strings {
  readonly list: string[] = [];
  readonly #index = new Map<string, number>();
  idx(s: string): number {
    let i = this.#index.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(s);
      this.#index.set(s, i);
    }
    return i;
  }
  write(w: ByteWriter): void {
    w.varint(this.list.length);
    for (const s of this.list) w.str(s);
  }
}

function readStrings(r: ByteReader): string[] {
  const n = r.varint();
  if (n > r.remaining) throw new FrameError('malformed', 'string table longer than the payload', r.offset);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str());
  return out;
}

function str(strings: string[], i: number, r: ByteReader): string {
  const s = strings[i];
  if (s === undefined) throw new FrameError('malformed', `string index ${i} out of range`, r.offset);
  return s;
}

function readValues(r: ByteReader): SqlValue[] {
  const n = r.varint();
  if (n > r.remaining) throw new FrameError('malformed', 'more values than bytes', r.offset);
  const values: SqlValue[] = new Array<SqlValue>(n);
  for (let i = 0; i < n; i++) values[i] = r.value();
  return values;
}

/** Builds one changes payload from transactions, tracking its size so the caller can split frames. */
export class ChangesEncoder {
  readonly #strings = new Strings();
  readonly #body = new ByteWriter(1024);
  #count = 0;

  get txCount(): number {
    return this.#count;
  }

  /** Bytes so far (approximate: the string table is counted by its characters). */
  get size(): number {
    return this.#body.length + this.#strings.list.reduce((n, s) => n + s.length + 1, 0);
  }

  add(tx: TxChange): void {
    const w = this.#body;
    w.f64(tx.hlc).varint(tx.ddl.length);
    for (const d of tx.ddl) w.varint(this.#strings.idx(d));
    w.varint(tx.rows.length);
    for (const row of tx.rows) {
      w.varint(this.#strings.idx(row.table)).u8(row.op).varint(row.owner === undefined ? 0 : this.#strings.idx(row.owner) + 1);
      w.varint(row.values.length);
      for (const v of row.values) w.value(v);
    }
    this.#count++;
  }

  finish(): Uint8Array {
    const out = new ByteWriter(this.#body.length + 64);
    this.#strings.write(out);
    out.varint(this.#count);
    out.raw(this.#body.finish());
    return out.finish();
  }
}

export function decodeChanges(payload: Uint8Array): TxChange[] {
  const r = new ByteReader(payload);
  const strings = readStrings(r);
  const nTx = r.varint();
  if (nTx > r.remaining) throw new FrameError('malformed', 'more transactions than bytes', r.offset);
  const txs: TxChange[] = [];
  for (let t = 0; t < nTx; t++) {
    const hlc = r.f64();
    const nDdl = r.varint();
    if (nDdl > r.remaining) throw new FrameError('malformed', 'ddl count', r.offset);
    const ddl: string[] = [];
    for (let i = 0; i < nDdl; i++) ddl.push(str(strings, r.varint(), r));
    const nRows = r.varint();
    if (nRows > r.remaining) throw new FrameError('malformed', 'more rows than bytes', r.offset);
    const rows: RowChange[] = [];
    for (let i = 0; i < nRows; i++) {
      const table = str(strings, r.varint(), r);
      const op = r.u8();
      if (op !== OP_UPSERT && op !== OP_DELETE) throw new FrameError('malformed', `unknown row op ${op}`, r.offset - 1);
      const ownerRef = r.varint();
      const owner = ownerRef === 0 ? undefined : str(strings, ownerRef - 1, r);
      rows.push({ table, op, owner, values: readValues(r) });
    }
    txs.push({ hlc, ddl, rows });
  }
  r.end();
  return txs;
}

export function encodeSnapshot(s: SnapshotPayload): Uint8Array {
  const strings = new Strings();
  const body = new ByteWriter(4096);
  body.varint(s.vector.size);
  for (const [origin, seq] of s.vector) body.varint(strings.idx(origin)).varint(seq);
  body.varint(s.tables.size);
  for (const [name, sql] of s.tables) body.varint(strings.idx(name)).varint(strings.idx(sql));
  body.varint(s.rows.length);
  for (const row of s.rows) {
    body.varint(strings.idx(row.table)).u8(row.op).f64(row.hlc).varint(strings.idx(row.origin));
    body.varint(row.owner === undefined ? 0 : strings.idx(row.owner) + 1).varint(row.values.length);
    for (const v of row.values) body.value(v);
  }
  const out = new ByteWriter(body.length + 256);
  strings.write(out);
  out.raw(body.finish());
  return out.finish();
}

export function decodeSnapshot(payload: Uint8Array): SnapshotPayload {
  const r = new ByteReader(payload);
  const strings = readStrings(r);
  const vector = new Map<string, number>();
  const nVec = r.varint();
  for (let i = 0; i < nVec; i++) vector.set(str(strings, r.varint(), r), r.varint());
  const tables = new Map<string, string>();
  const nTables = r.varint();
  for (let i = 0; i < nTables; i++) tables.set(str(strings, r.varint(), r), str(strings, r.varint(), r));
  const nRows = r.varint();
  if (nRows > r.remaining) throw new FrameError('malformed', 'more rows than bytes', r.offset);
  const rows: SnapshotRow[] = [];
  for (let i = 0; i < nRows; i++) {
    const table = str(strings, r.varint(), r);
    const op = r.u8();
    if (op !== OP_UPSERT && op !== OP_DELETE) throw new FrameError('malformed', `unknown row op ${op}`, r.offset - 1);
    const hlc = r.f64();
    const origin = str(strings, r.varint(), r);
    const ownerRef = r.varint();
    const owner = ownerRef === 0 ? undefined : str(strings, ownerRef - 1, r);
    rows.push({ table, op, hlc, origin, owner, values: readValues(r) });
  }
  r.end();
  return { vector, tables, rows };
}

export function encodeHeartbeat(leaving: boolean): Uint8Array {
  return Uint8Array.of(leaving ? 1 : 0);
}

export function decodeHeartbeat(payload: Uint8Array): { leaving: boolean } {
  const r = new ByteReader(payload);
  const flags = r.u8();
  r.end();
  return { leaving: (flags & 1) !== 0 };
}

/**
 * Snapshot chunks: a snapshot envelope larger than the bus's max payload travels in pieces.
 *   u8 0xC5 | str snapId | varint total | varint index | rest = data
 *   u8 0xEE | str reason            (the responder cannot serve)
 */
export function encodeChunk(snapId: string, total: number, index: number, data: Uint8Array): Uint8Array {
  return new ByteWriter(data.length + 32).u8(0xc5).str(snapId).varint(total).varint(index).raw(data).finish();
}

export function encodeChunkRefusal(reason: string): Uint8Array {
  return new ByteWriter(64).u8(0xee).str(reason).finish();
}

export type Chunk = { type: 'chunk'; snapId: string; total: number; index: number; data: Uint8Array } | { type: 'refused'; reason: string };

export function decodeChunk(buf: Uint8Array): Chunk {
  const r = new ByteReader(buf);
  const tag = r.u8();
  if (tag === 0xee) return { type: 'refused', reason: r.str() };
  if (tag !== 0xc5) throw new FrameError('malformed', `bad chunk tag ${tag}`, 0);
  const snapId = r.str();
  const total = r.varint();
  const index = r.varint();
  if (total === 0 || index >= total) throw new FrameError('malformed', `chunk ${index} of ${total}`, r.offset);
  return { type: 'chunk', snapId, total, index, data: r.raw(r.remaining) };
}

export function encodeChunkRequest(snapId: string, index: number): Uint8Array {
  return new ByteWriter(32).str(snapId).varint(index).finish();
}

export function decodeChunkRequest(buf: Uint8Array): { snapId: string; index: number } {
  const r = new ByteReader(buf);
  const snapId = r.str();
  const index = r.varint();
  r.end();
  return { snapId, index };
}
