import { hostname } from 'node:os';
import { Membership } from '../cluster/membership.js';
import { logger } from '../log.js';
import { NatsLink } from '../nats-link.js';
import { SipProxy } from './proxy.js';

const log = logger('edge:proxy');

export interface ProxyRunOptions {
  sipHost: string;
  sipPort: number;
  natsUrl: string;
  advertisedAddress?: string;
  id?: string;
  failoverTimeoutMs: number;
  strategy?: 'load' | 'round-robin';
}

/** `botedge proxy`: joins the cluster, steers INVITEs by the replicated load table. */
export async function startProxy(o: ProxyRunOptions): Promise<{ proxy: SipProxy; stop(): Promise<void> }> {
  const id = o.id ?? `proxy-${hostname()}-${process.pid}`;
  const nats = await NatsLink.open(o.natsUrl, id);
  const advertised = o.advertisedAddress ?? (o.sipHost === '0.0.0.0' ? '127.0.0.1' : o.sipHost);
  let membership: Membership | undefined;
  const view = { members: () => membership?.members() ?? [] };
  const proxy = await SipProxy.start({ host: o.sipHost, port: o.sipPort, advertisedAddress: advertised, failoverTimeoutMs: o.failoverTimeoutMs, maxAttempts: 3, strategy: o.strategy ?? 'load' }, view);
  membership = await Membership.open(nats.nc, { id, role: 'proxy', sip: `${advertised}:${proxy.port}`, rtp: '', capacity: 0 });
  // A node's fresh row settles the INVITEs we sent it before that row was written.
  membership.onRemoteRow((m) => proxy.pending.settle(m.id, m.heartbeat));
  log.info({ id, sip: `${o.sipHost}:${proxy.port}` }, 'proxy up');
  return {
    proxy,
    stop: async () => {
      await membership?.close();
      await proxy.close();
      await nats.close();
    },
  };
}
