import { isLive, type Member } from './member.js';

/**
 * Which media node takes the next call: argmin((calls + pending) / capacity) over live, active
 * media nodes with headroom (DESIGN.md, "Cluster"). `pending` counts INVITEs this proxy sent a node
 * that the node's row may not show yet — without it a burst between two heartbeats would all go
 * to the node that looked emptiest (the herd).
 *
 * Pure: the caller supplies the members, its pending counts and the clock.
 */
export function pickNode(
  members: Iterable<Member>,
  pending: (id: string) => number,
  now: number,
  exclude: ReadonlySet<string> = new Set(),
): Member | undefined {
  let best: Member | undefined;
  let bestScore = Infinity;
  for (const m of members) {
    if (m.role !== 'media' || m.state !== 'active' || !m.sip || exclude.has(m.id) || !isLive(m, now)) continue;
    const load = m.calls + pending(m.id);
    if (m.capacity <= 0 || load >= m.capacity) continue;
    const score = load / m.capacity;
    // Ties go to the lower id so the choice is deterministic (tests, and two proxies agreeing).
    if (score < bestScore || (score === bestScore && best && m.id < best.id)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

/**
 * INVITEs forwarded to each node and not yet reflected in its row. An entry is settled when a row
 * published at least `settleMs` after the forward arrives (the node had time to count the call),
 * or after `expireMs` regardless (an INVITE the node refused never shows up in its count).
 */
export class PendingForwards {
  readonly #byNode = new Map<string, number[]>();

  constructor(
    private readonly settleMs = 200,
    private readonly expireMs = 5000,
  ) {}

  add(id: string, now: number): void {
    let list = this.#byNode.get(id);
    if (!list) this.#byNode.set(id, (list = []));
    list.push(now);
  }

  count(id: string, now: number): number {
    const list = this.#byNode.get(id);
    if (!list) return 0;
    while (list.length > 0 && now - list[0]! > this.expireMs) list.shift();
    return list.length;
  }

  /** A row of `id` published at `heartbeat` has arrived: drop the forwards it already counts. */
  settle(id: string, heartbeat: number): void {
    const list = this.#byNode.get(id);
    if (!list) return;
    while (list.length > 0 && list[0]! + this.settleMs <= heartbeat) list.shift();
  }
}
