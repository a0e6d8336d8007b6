/**
 * tdb's error classes. Callers branch on `instanceof` and the fields, never on message text.
 * Bad input from the wire is not thrown at the application: it becomes a counted rejection
 * (`Tdb.stats().rejected`), with a `FrameError` as the reason handed to the injected logger.
 */

export class TdbError extends Error {
  override name = 'TdbError';
}

/** Any call on a closed database. */
export class InvalidStateError extends TdbError {
  override name = 'InvalidStateError';
}

/** The database is encrypted and this process holds no read key for it (or the wrong one). */
export class ReadKeyRequiredError extends TdbError {
  override name = 'ReadKeyRequiredError';
}

/** A write was attempted by a process that holds the read key but not the write (signing) key. */
export class ReadOnlyError extends TdbError {
  override name = 'ReadOnlyError';
}

/** SQLite refused a statement. `code` is SQLite's (extended) result code, e.g. 19 = SQLITE_CONSTRAINT. */
export class SqlError extends TdbError {
  override name = 'SqlError';
  constructor(message: string, readonly code: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A table cannot be replicated as declared (no PRIMARY KEY), or replicas disagree on its shape. */
export class SchemaError extends TdbError {
  override name = 'SchemaError';
  constructor(readonly table: string, reason: string) {
    super(`table ${table}: ${reason}`);
  }
}

/** A key file or key material is malformed or does not grant what was asked. `field` names the part. */
export class KeyFileError extends TdbError {
  override name = 'KeyFileError';
  constructor(readonly field: string, reason: string, options?: { cause?: unknown }) {
    super(`${field}: ${reason}`, options);
  }
}

/** An option failed validation; `field` names it. */
export class TdbOptionsError extends TdbError {
  override name = 'TdbOptionsError';
  constructor(readonly field: string, reason: string) {
    super(`${field} ${reason}`);
  }
}

export class TimeoutError extends TdbError {
  override name = 'TimeoutError';
}

/** Why a frame from the wire was refused. Each kind is a counter in `TdbStats.rejected`. */
export type RejectKind =
  | 'malformed'
  | 'unsigned'
  | 'badSignature'
  | 'unencrypted'
  | 'unknownKey'
  | 'decrypt'
  | 'schema';

/** A frame that could not be parsed, verified or decrypted. */
export class FrameError extends TdbError {
  override name = 'FrameError';
  constructor(readonly kind: RejectKind, reason: string, readonly offset = -1, options?: { cause?: unknown }) {
    super(`${kind}: ${reason}${offset >= 0 ? ` at byte ${offset}` : ''}`, options);
  }
}
