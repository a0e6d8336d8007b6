/**
 * The media nodes' own view of a window: their event-loop delay (the `status` control reply,
 * docs/nats-api.md), read at the window's edges. The socket-owning event loop is what must stay
 * responsive under load; its delay is the node's figure, not something the bench can see outside.
 */
import type { NatsConnection } from '@nats-io/transport-node';

export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/**
 * Asks every node for its status and starts a new window on each (`reset`). Returns the worst
 * figures over the nodes, for the window that just ended, or undefined when none answered.
 */
export async function readLoopDelay(nc: NatsConnection, nodeIds: string[]): Promise<LoopDelay | undefined> {
  const replies = await Promise.all(
    nodeIds.map((id) =>
      nc
        .request(`botedge.v1.node.${id}.status`, JSON.stringify({ reset: true }), { timeout: 2000 })
        .then((m) => m.json<{ eventLoopDelayMs: LoopDelay }>().eventLoopDelayMs)
        .catch(() => undefined),
    ),
  );
  const got = replies.filter((r): r is LoopDelay => r !== undefined);
  if (got.length === 0) return undefined;
  return { p50: Math.max(...got.map((r) => r.p50)), p99: Math.max(...got.map((r) => r.p99)), max: Math.max(...got.map((r) => r.max)) };
}
