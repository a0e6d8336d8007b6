import sqlite3InitModule, { type Sqlite3Static } from '@sqlite.org/sqlite-wasm';

export type { Database, PreparedStatement, Sqlite3Static } from '@sqlite.org/sqlite-wasm';

let loading: Promise<Sqlite3Static> | undefined;

/** The SQLite WASM module, instantiated once per process (about 50 ms) and shared by every database. */
export function loadSqlite(): Promise<Sqlite3Static> {
  loading ??= sqlite3InitModule().then((sqlite3) => {
    // The oo1 layer console.warn()s every failed step before throwing; the throw (an SqlError to
    // our callers) is the report, and a library must not write to the console.
    const config = (sqlite3 as unknown as { config?: { warn?: unknown } }).config;
    if (config) config.warn = () => undefined;
    return sqlite3;
  });
  return loading;
}
