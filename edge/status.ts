import { connect } from '@nats-io/transport-node';
import { Membership } from './cluster/membership.js';
import { isLive, type Member } from './cluster/member.js';

export interface StatusMember {
  id: string;
  role: string;
  state: string;
  calls: number;
  capacity: number;
  cpu: number;
  sip: string;
  heartbeat_age_ms: number;
  calls_total?: number;
}

/** Reads the cluster table as an observer (no row of its own) and returns the live members. */
export async function readStatus(natsUrl: string): Promise<{ members: StatusMember[] }> {
  const nc = await connect({ servers: natsUrl.split(','), name: `botedge-status-${process.pid}` });
  try {
    const m = await Membership.open(nc, undefined, `status-${process.pid}`);
    const now = Date.now();
    const rows = m.all().filter((r) => isLive(r, now));
    await m.close();
    return { members: rows.map((r) => toStatus(r, now)) };
  } finally {
    await nc.close();
  }
}

function toStatus(r: Member, now: number): StatusMember {
  const s: StatusMember = { id: r.id, role: r.role, state: r.state, calls: r.calls, capacity: r.capacity, cpu: r.cpu, sip: r.sip, heartbeat_age_ms: Math.max(0, now - r.heartbeat) };
  if (r.role === 'media') s.calls_total = r.callsTotal;
  return s;
}

/** The table a person reads. */
export function formatStatus(status: { members: StatusMember[] }): string {
  if (status.members.length === 0) return 'no live members (is anything running against this NATS?)\n';
  const head = ['ID', 'ROLE', 'STATE', 'CALLS', 'CPU', 'SIP', 'HEARTBEAT', 'TOTAL'];
  const rows = status.members.map((m) => [
    m.id,
    m.role,
    m.state,
    m.role === 'media' ? `${m.calls}/${m.capacity}` : '-',
    `${Math.round(m.cpu * 100)}%`,
    m.sip || '-',
    `${(m.heartbeat_age_ms / 1000).toFixed(1)}s ago`,
    m.calls_total === undefined ? '-' : String(m.calls_total),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
