/** IPC between the tdb integration tests and their replica processes. */
export type Command =
  | {
      cmd: 'open';
      db: string;
      writerId: string;
      natsUrl: string;
      heartbeatMs?: number;
      /** keyring JSON + the app id and its RSA private key (PEM) */
      keyring?: unknown;
      app?: string;
      privateKey?: string;
    }
  /** Writes for `ms` milliseconds, `perTick` rows per event-loop turn, keys in [0, keySpace). */
  | { cmd: 'writeFor'; ms: number; perTick: number; keySpace: number }
  | { cmd: 'exec'; sql: string; params?: unknown[] }
  | { cmd: 'query'; sql: string; params?: unknown[] }
  | { cmd: 'flush' }
  | { cmd: 'state' }
  | { cmd: 'waitVector'; target: Record<string, number>; timeoutMs: number }
  /** Drop the next `n` change messages this process receives (injected loss). */
  | { cmd: 'dropIncoming'; n: number }
  /** Publish a change signed with a key that is not the database's write key. */
  | { cmd: 'forge'; sql: string }
  /** Subscribe to the raw changes subject; `rawSeen` returns what arrived. */
  | { cmd: 'spy'; subject: string; natsUrl: string }
  | { cmd: 'rawSeen' }
  | { cmd: 'close' };

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { name: string; message: string } };
