import type { NatsConnection, Subscription } from '@nats-io/transport-node';

/**
 * The slice of a message bus tdb needs. Injected (STYLE.md, "Pure cores, thin I/O adapters"):
 * `natsTransport(nc)` in production, `MemoryBus` in unit tests, a lossy wrapper in fault tests.
 */
export interface TdbTransport {
  publish(subject: string, data: Uint8Array): void;
  /** Delivers each message to `onMessage`; `reply` is set for requests. A `queue` shares the load. */
  subscribe(subject: string, onMessage: (data: Uint8Array, reply: string | undefined) => void, opts?: { queue?: string }): { unsubscribe(): void };
  /** One request, one reply; rejects with `NoRespondersError` when nobody listens, or `TransportTimeoutError`. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Resolves when the server has seen everything sent so far (subscriptions included). */
  flush(): Promise<void>;
  /** Largest message the bus accepts, in bytes. */
  readonly maxPayload: number;
  /** Called after the connection came back; tdb checks for missed changes. */
  onReconnect(cb: () => void): void;
}

export class NoRespondersError extends Error {
  override name = 'NoRespondersError';
}

export class TransportTimeoutError extends Error {
  override name = 'TransportTimeoutError';
}

/** tdb over a NATS connection (@nats-io/transport-node). The connection stays the caller's to close. */
export function natsTransport(nc: NatsConnection): TdbTransport {
  const reconnectListeners: Array<() => void> = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'reconnect') for (const cb of reconnectListeners) cb();
    }
  })().catch(() => undefined);
  return {
    publish: (subject, data) => nc.publish(subject, data),
    subscribe(subject, onMessage, opts) {
      const sub: Subscription = nc.subscribe(subject, {
        ...(opts?.queue ? { queue: opts.queue } : {}),
        callback: (err, msg) => {
          if (!err) onMessage(msg.data, msg.reply || undefined);
        },
      });
      return { unsubscribe: () => sub.unsubscribe() };
    },
    async request(subject, data, timeoutMs) {
      try {
        const msg = await nc.request(subject, data, { timeout: timeoutMs });
        return msg.data;
      } catch (err) {
        const e = err as { name?: string; isNoResponders?: () => boolean; cause?: unknown };
        if (typeof e.isNoResponders === 'function' && e.isNoResponders()) throw new NoRespondersError(subject, { cause: err });
        if (e.name === 'NoRespondersError' || (e.cause as { name?: string } | undefined)?.name === 'NoRespondersError') {
          throw new NoRespondersError(subject, { cause: err });
        }
        if (e.name === 'TimeoutError') throw new TransportTimeoutError(subject, { cause: err });
        throw err;
      }
    },
    flush: () => nc.flush(),
    get maxPayload() {
      return nc.info?.max_payload ?? 1024 * 1024;
    },
    onReconnect(cb) {
      reconnectListeners.push(cb);
    },
  };
}

interface MemorySub {
  subject: string;
  queue: string | undefined;
  onMessage: (data: Uint8Array, reply: string | undefined) => void;
  endpoint: MemoryEndpoint;
}

/**
 * An in-process bus with NATS semantics tdb relies on (per-publisher order, queue groups,
 * no-responders), delivering on a microtask. `drop` lets a test lose chosen messages.
 */
export class MemoryBus {
  readonly #subs: MemorySub[] = [];
  #inbox = 0;
  #queue: Array<() => void> = [];
  #scheduled = false;

  endpoint(): MemoryEndpoint {
    return new MemoryEndpoint(this);
  }

  /** @internal */
  add(sub: MemorySub): () => void {
    this.#subs.push(sub);
    return () => {
      const i = this.#subs.indexOf(sub);
      if (i >= 0) this.#subs.splice(i, 1);
    };
  }

  /** @internal */
  deliver(from: MemoryEndpoint, subject: string, data: Uint8Array, reply: string | undefined): number {
    const plain: MemorySub[] = [];
    const groups = new Map<string, MemorySub[]>();
    for (const s of this.#subs) {
      if (s.subject !== subject) continue;
      if (s.queue) groups.set(s.queue, [...(groups.get(s.queue) ?? []), s]);
      else plain.push(s);
    }
    const targets = [...plain];
    for (const members of groups.values()) targets.push(members[Math.floor(Math.random() * members.length)] as MemorySub);
    for (const t of targets) {
      const copy = data.slice();
      this.#enqueue(() => {
        if (t.endpoint.closed || t.endpoint.drop(subject, copy, from)) return;
        t.onMessage(copy, reply);
      });
    }
    return targets.length;
  }

  #enqueue(fn: () => void): void {
    this.#queue.push(fn);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const q = this.#queue;
      this.#queue = [];
      for (const f of q) f();
    });
  }

  /** @internal */
  nextInbox(): string {
    return `_INBOX.mem.${++this.#inbox}`;
  }
}

export class MemoryEndpoint implements TdbTransport {
  closed = false;
  readonly maxPayload = 64 * 1024;
  #reconnect: Array<() => void> = [];
  /** Return true to lose a message delivered to this endpoint. */
  drop: (subject: string, data: Uint8Array, from: MemoryEndpoint) => boolean = () => false;

  constructor(private readonly bus: MemoryBus) {}

  publish(subject: string, data: Uint8Array): void {
    if (!this.closed) this.bus.deliver(this, subject, data, undefined);
  }

  subscribe(subject: string, onMessage: (data: Uint8Array, reply: string | undefined) => void, opts?: { queue?: string }) {
    const remove = this.bus.add({ subject, queue: opts?.queue, onMessage, endpoint: this });
    return { unsubscribe: remove };
  }

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const inbox = this.bus.nextInbox();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(new TransportTimeoutError(subject));
      }, timeoutMs);
      const sub = this.subscribe(inbox, (reply) => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(reply);
      });
      if (this.bus.deliver(this, subject, data, inbox) === 0) {
        clearTimeout(timer);
        sub.unsubscribe();
        reject(new NoRespondersError(subject));
      }
    });
  }

  async flush(): Promise<void> {}

  onReconnect(cb: () => void): void {
    this.#reconnect.push(cb);
  }

  /** Test hook: pretend the connection came back. */
  simulateReconnect(): void {
    for (const cb of this.#reconnect) cb();
  }
}
