import { pino, type Logger } from 'pino';

/**
 * One root logger for the process, JSON lines on stderr (stdout stays free for what a command
 * prints for people). Modules take a child with their namespace, e.g. `logger('edge:sip')`.
 * Never log per packet: count it and expose the counter.
 */
const root = pino(
  { level: process.env.BOTEDGE_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination({ dest: 2, sync: false }),
);

export type { Logger };

export function logger(ns: string): Logger {
  return root.child({ ns });
}

/**
 * Logs a reason once per key for the lifetime of `seen` — for bad input that may repeat every
 * packet (a bot sending odd-length frames 50 times a second must not flood the log).
 */
export function logOnce(seen: Set<string>, key: string, log: () => void): void {
  if (seen.has(key)) return;
  seen.add(key);
  log();
}
