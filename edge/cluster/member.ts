/**
 * A cluster member as every process sees it in the replicated `members` table (docs/cluster.md).
 * Times are wall-clock ms since the epoch: the cluster's hosts are expected to be NTP-synced;
 * liveness tolerates seconds of skew, not minutes.
 */
export type Role = 'media' | 'proxy' | 'tdbot';
export type MemberState = 'active' | 'draining';

export interface Member {
  id: string;
  role: Role;
  state: MemberState;
  /** SIP address `host:port` (UDP and TCP), empty for roles without SIP. */
  sip: string;
  /** RTP address (host) media is served from; empty for non-media roles. */
  rtp: string;
  /** Calls in progress now. */
  calls: number;
  /** Calls it accepts at most. */
  capacity: number;
  /** Process CPU use over the last interval, 0..1 per core (1 = one core busy). */
  cpu: number;
  /** Last refresh, ms since the epoch. */
  heartbeat: number;
  /** Calls handled since start. */
  callsTotal: number;
}

/** Refresh interval; a member missing 3 refreshes is dead for everyone (DESIGN.md). */
export const HEARTBEAT_MS = 1000;
export const DEAD_AFTER_MS = 3 * HEARTBEAT_MS;

export function isLive(m: Member, now: number): boolean {
  return now - m.heartbeat <= DEAD_AFTER_MS;
}
