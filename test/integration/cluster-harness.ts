/** A cluster on one machine for tests: nats-server, an echo bot, a proxy and N media nodes. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Membership } from '../../edge/cluster/membership.js';
import { EchoBot } from '../../edge/echo-bot.js';
import { EventCollector, freePort, startBotedge, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';

export interface Cluster {
  nats: NatsServer;
  bot: EchoBot;
  proxy: Botedge;
  proxyPort: number;
  nodes: Map<string, Botedge>;
  events: EventCollector;
  observer: Membership;
  nc: NatsConnection;
  /** Peak concurrent calls per node seen by `watch()`. */
  peaks: Map<string, number>;
  addNode(id: string, extraRoutes?: Record<string, unknown>): Promise<Botedge>;
  /** Samples the members table every 50 ms, tracking each node's peak calls. */
  watch(): () => void;
  waitMembers(n: number): Promise<void>;
  stop(): Promise<void>;
}

let rtpBase = 35000;

export async function startCluster(nodeIds: string[], extraRoutes: Record<string, unknown> = {}): Promise<Cluster> {
  const nats = await startNats();
  const bot = await EchoBot.listen(0);
  const nc = await connect({ servers: nats.url });
  const events = await EventCollector.start(nats.url);
  const nodes = new Map<string, Botedge>();
  const peaks = new Map<string, number>();
  const addNode = async (id: string, routes: Record<string, unknown> = extraRoutes) => {
    const lo = rtpBase;
    rtpBase += 600;
    const node = await startMediaNode({ nodeId: id, sipPort: 0, natsUrl: nats.url, rtpPortMin: lo, rtpPortMax: lo + 599, defaultRoute: { url: bot.url }, routes });
    nodes.set(id, node);
    return node;
  };
  for (const id of nodeIds) await addNode(id);
  const proxyPort = await freePort();
  const proxy = await startBotedge(['proxy', '--sip-port', String(proxyPort), '--nats', nats.url, '--id', 'proxy-t', '--failover-ms', '1000']);
  const observer = await Membership.open(nc, undefined, `observer-${process.pid}`);
  const cluster: Cluster = {
    nats,
    bot,
    proxy,
    proxyPort,
    nodes,
    events,
    observer,
    nc,
    peaks,
    addNode,
    watch: () => {
      const t = setInterval(() => {
        for (const m of observer.members()) if (m.role === 'media') peaks.set(m.id, Math.max(peaks.get(m.id) ?? 0, m.calls));
      }, 50);
      return () => clearInterval(t);
    },
    waitMembers: async (n: number) => {
      for (let i = 0; i < 100; i++) {
        if (observer.members().filter((m) => m.role === 'media' && m.state === 'active').length >= n) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`fewer than ${n} media nodes joined`);
    },
    stop: async () => {
      await observer.close();
      await proxy.stop('SIGINT');
      for (const n of nodes.values()) await n.stop('SIGINT');
      await events.close();
      await nc.close();
      await bot.close();
      await nats.stop();
    },
  };
  await cluster.waitMembers(nodeIds.length);
  return cluster;
}

/** Node id of each call, from `created` events. */
export function nodeOfCalls(events: EventCollector): Map<string, string> {
  return new Map(events.of('created').map((e) => [e.data.sipCallId as string, e.data.nodeId as string]));
}
