import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CallEventSchema, eventSubject, type CallEvent } from './api/events.js';
import { logger } from './log.js';

const log = logger('edge:nats');

export class NatsConnectError extends Error {
  override name = 'NatsConnectError';
}

/**
 * The node's NATS connection. Reconnects forever (a NATS restart must be survived); while
 * disconnected the client buffers what we publish, so events are delayed, not lost, within its
 * reconnect buffer.
 */
export class NatsLink {
  #closed = false;
  private constructor(readonly nc: NatsConnection) {}

  static async open(servers: string, name: string): Promise<NatsLink> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: servers.split(','), name, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
    } catch (err) {
      throw new NatsConnectError(`cannot connect to NATS at ${servers}`, { cause: err });
    }
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ status: s.type }, `nats ${s.type}`);
      }
    })().catch(() => undefined);
    log.info({ server: nc.getServer() }, 'connected to nats');
    return new NatsLink(nc);
  }

  /** Validates and publishes a call event; a schema failure is a bug and throws. */
  publishEvent(event: CallEvent): void {
    if (this.#closed) return;
    const checked = CallEventSchema.parse(event);
    this.nc.publish(eventSubject(checked.event), JSON.stringify(checked));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
