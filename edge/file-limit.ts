import { readFileSync } from 'node:fs';

/**
 * The open-files limit a media node runs under. A call holds up to three descriptors (its RTP and
 * RTCP sockets and, with a per-call bot protocol, its WebSocket). Node already raises its soft
 * limit to the hard one at start-up, so what is left is the hard limit itself: the node reads it
 * and warns at start when it is short of `maxCalls`, instead of failing calls with EMFILE later.
 */
export interface FileLimit {
  /** -1: unlimited. */
  soft: number;
  hard: number;
}

/** Descriptors per call at most: RTP, RTCP, the bot's WebSocket. */
export const FDS_PER_CALL = 3;
/** Descriptors for everything else: SIP, NATS, the Opus workers, logs, the runtime. */
export const FDS_RESERVED = 256;

/** How many calls fit under a soft limit (-1: unlimited). */
export function callsWithin(soft: number): number {
  return soft < 0 ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor((soft - FDS_RESERVED) / FDS_PER_CALL));
}

/** The "Max open files" line of /proc/<pid>/limits: soft and hard, -1 for unlimited. */
export function parseProcLimits(text: string): FileLimit | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const value = (v: string) => (v === 'unlimited' ? -1 : Number(v));
  const soft = value(m[1]!);
  const hard = value(m[2]!);
  return Number.isFinite(soft) && Number.isFinite(hard) ? { soft, hard } : undefined;
}

/** This process's open-files limit; undefined where /proc/self/limits cannot be read (not Linux). */
export function readFileLimit(): FileLimit | undefined {
  try {
    return parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}
