/**
 * The media nodes' own view of a window: their event-loop delay and their own part of caller → bot
 * latency (the `status` control reply, docs/nats-api.md), read at the window's edges. The
 * socket-owning event loop is what must stay responsive under load; its delay is the node's figure,
 * not something the bench can see outside.
 */
import type { NatsConnection } from '@nats-io/transport-node';

export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/** The native RTP I/O's counters since start, summed over the nodes (absent on dgram). */
export interface RtpSends {
  sent: number;
  /** Sent at once from the event loop (late bot frames) rather than at a tick's due time. */
  sentNow: number;
  received: number;
  /** Taken by the G.711 receive lane (edge/media/rx-lane.ts); absent when no node runs it. */
  laneTaken?: number;
  /** Sent by the lane's tick (its send half); absent when no node runs it. */
  laneTxTaken?: number;
  /** Bot frames the lane queued for playout (mux batches and sockets per call); absent when no node runs it. */
  laneBotTaken?: number;
  /** Caller frames the lane wrote to per-call bots' sockets itself (decision 0015); absent when no node runs the lane. */
  laneWsWritten?: number;
  /** Packets of held slots the lane's bot half filled with late frames and sent at once (decision 0019); absent when no node does. */
  laneHeldSent?: number;
}

/** A node's own part of caller → bot (the `status` reply's `arrivalToBotWriteMs`, edge/media/write-latency.ts). */
export interface NodeWriteLatency extends LoopDelay {
  /** Datagrams timed. */
  count: number;
}

export interface NodeWindow {
  /** Worst over the nodes, for the window that just ended. */
  loopDelay: LoopDelay | undefined;
  /**
   * Each caller datagram's kernel arrival → its frames written to the bots' sockets: worst
   * p50/p99/max over the nodes, counts summed. Absent on `dgram`.
   */
  arrivalToWrite: NodeWriteLatency | undefined;
  rtp: RtpSends | undefined;
}

/**
 * Asks every node for its status and starts a new event-loop delay window on each (`reset`).
 */
export async function readNodeWindow(nc: NatsConnection, nodeIds: string[]): Promise<NodeWindow> {
  type Reply = { eventLoopDelayMs: LoopDelay; arrivalToBotWriteMs?: NodeWriteLatency; rtpIo?: { sent?: number; sentNow?: number; received?: number; laneTaken?: number; laneTxTaken?: number; laneBotTaken?: number; laneWsWritten?: number; laneHeldSent?: number } };
  const replies = await Promise.all(
    nodeIds.map((id) =>
      nc
        .request(`botedge.v1.node.${id}.status`, JSON.stringify({ reset: true }), { timeout: 2000 })
        .then((m) => m.json<Reply>())
        .catch(() => undefined),
    ),
  );
  const got = replies.filter((r): r is Reply => r !== undefined);
  const delays = got.map((r) => r.eventLoopDelayMs);
  const writes = got.map((r) => r.arrivalToBotWriteMs).filter((t): t is NodeWriteLatency => t !== undefined);
  const io = got.map((r) => r.rtpIo).filter((r) => r?.sent !== undefined && r.sentNow !== undefined);
  return {
    loopDelay: delays.length === 0 ? undefined : worst(delays),
    arrivalToWrite: writes.length === 0 ? undefined : { ...worst(writes), count: writes.reduce((n, t) => n + t.count, 0) },
    rtp:
      io.length === 0
        ? undefined
        : {
            sent: io.reduce((s, r) => s + r!.sent!, 0),
            sentNow: io.reduce((s, r) => s + r!.sentNow!, 0),
            received: io.reduce((s, r) => s + (r!.received ?? 0), 0),
            ...laneSum(io, 'laneTaken'),
            ...laneSum(io, 'laneTxTaken'),
            ...laneSum(io, 'laneBotTaken'),
            ...laneSum(io, 'laneWsWritten'),
            ...laneSum(io, 'laneHeldSent'),
          },
  };
}

/** The worst p50, p99 and max over the nodes (each its own node's). */
function worst(xs: LoopDelay[]): LoopDelay {
  return { p50: Math.max(...xs.map((r) => r.p50)), p99: Math.max(...xs.map((r) => r.p99)), max: Math.max(...xs.map((r) => r.max)) };
}

/** A lane counter summed over the nodes that run the lane (a node without it says -1), or nothing when none does. */
function laneSum<K extends 'laneTaken' | 'laneTxTaken' | 'laneBotTaken' | 'laneWsWritten' | 'laneHeldSent'>(io: ({ [k in K]?: number } | undefined)[], key: K): { [k in K]?: number } {
  if (!io.some((r) => (r?.[key] ?? -1) >= 0)) return {};
  return { [key]: io.reduce((s, r) => s + Math.max(0, r?.[key] ?? 0), 0) } as { [k in K]?: number };
}
