import type { NatsConnection } from '@nats-io/transport-node';
import { Tdb, type TdbLogger } from '../../tdb/index.js';
import { logger } from '../log.js';
import { HEARTBEAT_MS, isLive, type Member, type MemberState, type Role } from './member.js';

const log = logger('edge:cluster');

/** The cluster database every process opens; docs/cluster.md. */
export const CLUSTER_DB = 'botedge_cluster';

const SCHEMA = `CREATE TABLE IF NOT EXISTS members (
  id TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  state TEXT NOT NULL,
  sip TEXT NOT NULL,
  rtp TEXT NOT NULL,
  calls INTEGER NOT NULL,
  capacity INTEGER NOT NULL,
  cpu REAL NOT NULL,
  heartbeat INTEGER NOT NULL,
  calls_total INTEGER NOT NULL
)`;

interface MemberRow {
  id: string;
  role: string;
  state: string;
  sip: string;
  rtp: string;
  calls: number;
  capacity: number;
  cpu: number;
  heartbeat: number;
  calls_total: number;
}

const tdbLog: TdbLogger = {
  info: (obj, msg) => log.info(obj, msg),
  warn: (obj, msg) => log.warn(obj, msg),
  error: (obj, msg) => log.error(obj, msg),
};

function toMember(r: MemberRow): Member {
  return {
    id: r.id,
    role: r.role as Role,
    state: r.state as MemberState,
    sip: r.sip,
    rtp: r.rtp,
    calls: Number(r.calls),
    capacity: Number(r.capacity),
    cpu: Number(r.cpu),
    heartbeat: Number(r.heartbeat),
    callsTotal: Number(r.calls_total),
  };
}

/**
 * This process's place in the cluster: its own row in the replicated `members` table, refreshed
 * every second and whenever its load changes (coalesced to at most one write per 50 ms), and a
 * local view of everyone's rows. The row is owned by this process, so when its heartbeats stop
 * the survivors delete it (tdb's lapse); readers also ignore rows older than 3 heartbeats.
 */
export class Membership {
  readonly #self: Member;
  #timer: NodeJS.Timeout | undefined;
  #dirty: NodeJS.Timeout | undefined;
  #cpuAt = process.cpuUsage();
  #cpuWall = performance.now();
  #closed = false;

  private constructor(
    readonly db: Tdb,
    self: Omit<Member, 'heartbeat' | 'cpu' | 'calls' | 'callsTotal' | 'state'>,
    readonly watch: boolean,
  ) {
    this.#self = { ...self, state: 'active', calls: 0, callsTotal: 0, cpu: 0, heartbeat: Date.now() };
  }

  /** Joins the cluster database; `self` undefined = an observer that writes no row (status). */
  static async open(nc: NatsConnection, self: Omit<Member, 'heartbeat' | 'cpu' | 'calls' | 'callsTotal' | 'state'> | undefined, observerId?: string): Promise<Membership> {
    const writerId = self?.id ?? observerId ?? `observer-${process.pid}`;
    const db = await Tdb.open(CLUSTER_DB, { nats: nc, writerId, schema: SCHEMA, heartbeatMs: HEARTBEAT_MS, logger: tdbLog });
    const m = new Membership(db, self ?? { id: writerId, role: 'tdbot', sip: '', rtp: '', capacity: 0 }, !!self);
    if (self) {
      m.#write();
      m.#timer = setInterval(() => m.#write(), HEARTBEAT_MS);
      m.#timer.unref();
    }
    return m;
  }

  get self(): Readonly<Member> {
    return this.#self;
  }

  /** Every member row this replica holds, dead ones included (callers filter with `isLive`). */
  all(): Member[] {
    return this.db.query('SELECT * FROM members ORDER BY id').map((r) => toMember(r as unknown as MemberRow));
  }

  /** Live members only. */
  members(): Member[] {
    const now = Date.now();
    return this.all().filter((m) => isLive(m, now));
  }

  /** Load changed: write soon (coalesced), so the proxies see it before the next heartbeat. */
  setLoad(calls: number, callsTotal: number): void {
    this.#self.calls = calls;
    this.#self.callsTotal = callsTotal;
    if (!this.#dirty && !this.#closed) this.#dirty = setTimeout(() => this.#write(), 50);
  }

  setState(state: MemberState): void {
    this.#self.state = state;
    this.#write();
  }

  #write(): void {
    if (this.#closed) return;
    if (this.#dirty) clearTimeout(this.#dirty);
    this.#dirty = undefined;
    const now = performance.now();
    const cpu = process.cpuUsage(this.#cpuAt);
    const wallUs = (now - this.#cpuWall) * 1000;
    if (wallUs > 200_000) {
      this.#self.cpu = Math.round(((cpu.user + cpu.system) / wallUs) * 1000) / 1000;
      this.#cpuAt = process.cpuUsage();
      this.#cpuWall = now;
    }
    const s = this.#self;
    s.heartbeat = Date.now();
    this.db.exec(
      `INSERT INTO members (id, role, state, sip, rtp, calls, capacity, cpu, heartbeat, calls_total)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET role=excluded.role, state=excluded.state, sip=excluded.sip, rtp=excluded.rtp,
         calls=excluded.calls, capacity=excluded.capacity, cpu=excluded.cpu, heartbeat=excluded.heartbeat, calls_total=excluded.calls_total`,
      [s.id, s.role, s.state, s.sip, s.rtp, s.calls, s.capacity, s.cpu, s.heartbeat, s.callsTotal],
      { owned: true },
    );
  }

  /** Calls `fn` for every member row written by another process, as it arrives. */
  onRemoteRow(fn: (m: Member) => void): void {
    void (async () => {
      for await (const ch of this.db.changes()) {
        if (ch.type === 'upsert' && ch.table === 'members') fn(toMember(ch.row as unknown as MemberRow));
      }
    })().catch((err: unknown) => log.warn({ err }, 'member feed ended'));
  }

  /** Leaves: deletes our row (a clean exit is seen at once, not after 3 missed heartbeats). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#dirty) clearTimeout(this.#dirty);
    if (this.watch) {
      try {
        this.db.exec('DELETE FROM members WHERE id = ?', [this.#self.id]);
        this.db.flush();
      } catch (err) {
        log.warn({ err }, 'could not remove our member row');
      }
    }
    await this.db.close();
  }
}
