/**
 * The transaction layer: a thin adapter that owns many `transaction.ts` machines, routes incoming
 * messages to them (RFC 3261 §17.1.3, §17.2.3), and runs their actions with injected dependencies
 * (a `send` function, a `Scheduler`, TU callbacks). No sockets and no real clock in here: tests
 * inject a fake scheduler and a fake network.
 *
 * What reaches the TU (`onRequest`):
 * - every new request with its server transaction, CANCEL included (with `cancels` set to the
 *   INVITE transaction it matched; a CANCEL that matches nothing is answered 481 here, §9.2);
 * - ACKs that belong to no transaction (the ACK for a 2xx, §17.1.1.3 / §13.2.2.4) and ACKs for a
 *   2xx caught by an RFC 6026 accepted INVITE server transaction, with `tx` undefined.
 */
import { isRfc3261Branch, newBranch } from './ids.js';
import { createResponse, type SipMessage, type SipRequest, type SipResponse } from './message.js';
import {
  InvalidStateError,
  createCancel,
  createClientTransaction,
  createServerTransaction,
  cseqOf,
  headerList,
  methodOf,
  resolveTransactionOptions,
  topBranch,
  topVia,
  type ClientTransaction,
  type ResolvedTransactionOptions,
  type ServerTransaction,
  type TimerName,
  type TransactionAction,
  type TransactionDump,
  type TransactionOptions,
} from './transaction.js';
import { formatVia, parseNameAddr, type Via } from './uri.js';

/** Where a message goes to or came from. `transport` is lower case: udp, tcp, tls, ws, wss. */
export interface Destination {
  address: string;
  port: number;
  transport: string;
}

export interface Scheduler {
  /** Run `fn` once after `ms`; returns a handle for `clearTimer`. */
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
  /** Milliseconds on any monotonic scale. */
  now(): number;
}

/** The production scheduler: setTimeout and performance.now(). */
export const systemScheduler: Scheduler = {
  setTimer: (ms, fn) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
};

export interface TransactionLayerDeps {
  /** Hand a message to the transport. Throwing counts as a transport error (§17.1.4, §17.2.4). */
  send(msg: SipMessage, dest: Destination): void;
  scheduler: Scheduler;
  /** A new request (with its server transaction) or a transaction-less ACK (tx undefined). */
  onRequest(req: SipRequest, tx: ServerTransactionHandle | undefined, source: Destination): void;
  /** A response matching no client transaction, e.g. a 2xx retransmitted after Timer M. */
  onStrayResponse?(res: SipResponse, source: Destination): void;
  /**
   * Our sent-by for a destination. When given, `sendRequest` adds the top Via (fresh branch,
   * `rport`) to requests that have none.
   */
  localVia?(dest: Destination): { host: string; port?: number };
  /** Default: everything but udp is reliable. */
  isReliable?(transport: string): boolean;
  /** Errors thrown by TU callbacks; they never reach the transaction machinery. */
  onError?(err: unknown, where: string): void;
}

export interface TransactionLayerOptions extends Omit<TransactionOptions, 'reliable'> {}

export interface TransactionLayerStats {
  /** Incoming messages that could not be routed (no Via, bad CSeq, ...). */
  dropped: number;
  /** Requests absorbed or answered as retransmissions by an existing server transaction. */
  retransmittedRequests: number;
  strayResponses: number;
}

const DEFAULT_PORTS: Record<string, number> = { udp: 5060, tcp: 5060, sctp: 5060, tls: 5061, ws: 80, wss: 443 };

function defaultPort(transport: string): number {
  return DEFAULT_PORTS[transport.toLowerCase()] ?? 5060;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function param(v: Via, name: string): string | undefined {
  const p = v.params.get(name);
  return p === null || p === undefined || p === '' ? undefined : p;
}

/**
 * Where to send a response (RFC 3261 §18.2.2 with RFC 3581 rport): over a reliable transport,
 * back where the request came from; otherwise to `maddr`, else to `received` (or the source
 * address) at `rport` when the client asked for it, else to `received`/sent-by at the sent-by port.
 */
export function responseDestination(via: Via, source: Destination): Destination {
  const transport = source.transport.toLowerCase();
  if (transport !== 'udp') return { ...source, transport };
  const maddr = param(via, 'maddr');
  if (maddr !== undefined) return { address: unbracket(maddr), port: via.port ?? defaultPort(transport), transport };
  const received = param(via, 'received');
  if (via.params.has('rport')) {
    const rport = param(via, 'rport');
    return {
      address: unbracket(received ?? source.address),
      port: rport !== undefined && /^\d+$/.test(rport) ? Number(rport) : source.port,
      transport,
    };
  }
  return { address: unbracket(received ?? via.host), port: via.port ?? defaultPort(transport), transport };
}

/**
 * §18.2.1: note where a request really came from in its top Via — `received` when the sent-by
 * host differs, and (RFC 3581) `received` and `rport` when the client asked with a bare `rport`.
 */
export function stampReceived(req: SipRequest, source: Destination): Via | undefined {
  const vias = headerList(req.headers, 'Via');
  const first = vias[0];
  const via = topVia(req);
  if (first === undefined || via === undefined) return undefined;
  let changed = false;
  if (unbracket(via.host) !== source.address) {
    via.params.set('received', source.address);
    changed = true;
  }
  if (via.params.has('rport') && param(via, 'rport') === undefined) {
    via.params.set('received', source.address);
    via.params.set('rport', String(source.port));
    changed = true;
  }
  if (changed) {
    vias[0] = formatVia(via);
    req.headers.delete('Via');
    for (const v of vias) req.headers.append('Via', v);
  }
  return via;
}

function tagOf(headerValue: string | undefined): string {
  if (headerValue === undefined) return '';
  const t = parseNameAddr(headerValue).params.get('tag');
  return t ?? '';
}

/**
 * §17.2.3 server matching key. With the magic cookie: branch + sent-by + method (ACK → INVITE).
 * Without it (RFC 2543 peers): Request-URI, From tag, To tag (except on INVITE/ACK/CANCEL, where
 * the To tag is added by our response), Call-ID, CSeq number, top Via and method.
 */
function serverKey(req: SipRequest, via: Via, method = req.method === 'ACK' ? 'INVITE' : req.method): string {
  const branch = via.params.get('branch') ?? undefined;
  const sentBy = `${via.host.toLowerCase()}:${via.port ?? ''}`;
  if (isRfc3261Branch(branch)) return `${branch}|${sentBy}|${method}`;
  const h = req.headers;
  const toTag = ['INVITE', 'ACK', 'CANCEL'].includes(req.method) ? '' : tagOf(h.get('To'));
  return [
    '2543',
    req.uri,
    tagOf(h.get('From')),
    toTag,
    h.get('Call-ID') ?? '',
    cseqOf(req).seq,
    via.transport,
    sentBy,
    branch ?? '',
    method,
  ].join('|');
}

/** §17.1.3 client matching key: top Via branch + CSeq method. */
function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

interface Entry<T extends ClientTransaction | ServerTransaction, H> {
  tx: T;
  handle: H;
  key: string;
  dest: Destination;
  timers: Map<TimerName, unknown>;
}

type ClientEntry = Entry<ClientTransaction, ClientTransactionHandle>;
type ServerEntry = Entry<ServerTransaction, ServerTransactionHandle>;

/** What the TU holds for a request it sent. Set the callbacks right after `sendRequest`. */
export class ClientTransactionHandle {
  /** Every response the transaction passes up: provisional, final, and (INVITE) 2xx retransmissions. */
  onResponse: ((res: SipResponse) => void) | undefined;
  /** Timer B or F expired: treat as 408 Request Timeout (§8.1.3.1). */
  onTimeout: (() => void) | undefined;
  onTransportError: (() => void) | undefined;
  onTerminated: (() => void) | undefined;
  /** @internal */
  pendingCancel = false;

  constructor(
    readonly layer: TransactionLayer,
    readonly tx: ClientTransaction,
    readonly destination: Destination,
  ) {}

  get request(): SipRequest {
    return this.tx.request;
  }
  get state(): string {
    return this.tx.state;
  }
  get branch(): string | undefined {
    return this.tx.branch;
  }

  /**
   * CANCEL this INVITE (§9.1). Before any provisional response the CANCEL waits until one
   * arrives; after a final response it is not sent.
   */
  cancel(): void {
    this.layer.cancel(this);
  }

  dump(): TransactionDump {
    return this.tx.dump();
  }
}

/** What the TU holds for a request it received. */
export class ServerTransactionHandle {
  /** Timer H expired: no ACK came for our 300-699 (§17.2.1). */
  onTimeout: (() => void) | undefined;
  onTransportError: (() => void) | undefined;
  onTerminated: (() => void) | undefined;
  /** For a CANCEL: the INVITE server transaction it matched. */
  cancels: ServerTransactionHandle | undefined;

  constructor(
    readonly layer: TransactionLayer,
    readonly tx: ServerTransaction,
    readonly source: Destination,
    /** Where responses go (§18.2.2). */
    readonly responseDestination: Destination,
  ) {}

  get request(): SipRequest {
    return this.tx.request;
  }
  get state(): string {
    return this.tx.state;
  }

  /**
   * Send a response through the transaction. On an INVITE that has been answered 2xx this is how
   * the TU retransmits its 2xx (RFC 6026 accepted state); after Timer L a 2xx still goes out,
   * statelessly. Throws InvalidStateError for any other response after the final one.
   */
  respond(res: SipResponse): void {
    this.layer.respond(this, res);
  }

  /** Shorthand: build a response with message.ts `createResponse` and send it. */
  reply(status: number, reason?: string, opts?: Parameters<typeof createResponse>[3]): SipResponse {
    const res = createResponse(this.tx.request, status, reason, opts);
    this.respond(res);
    return res;
  }

  dump(): TransactionDump {
    return this.tx.dump();
  }
}

export class TransactionLayer {
  readonly #deps: TransactionLayerDeps;
  readonly #options: ResolvedTransactionOptions;
  readonly #clients = new Map<string, ClientEntry>();
  readonly #servers = new Map<string, ServerEntry>();
  readonly #byClientHandle = new Map<ClientTransactionHandle, ClientEntry>();
  readonly #byServerHandle = new Map<ServerTransactionHandle, ServerEntry>();
  readonly stats: TransactionLayerStats = { dropped: 0, retransmittedRequests: 0, strayResponses: 0 };

  constructor(deps: TransactionLayerDeps, options: TransactionLayerOptions = {}) {
    this.#deps = deps;
    this.#options = resolveTransactionOptions(options);
  }

  #reliable(transport: string): boolean {
    return this.#deps.isReliable ? this.#deps.isReliable(transport) : transport.toLowerCase() !== 'udp';
  }

  /** Number of live transactions, client and server. */
  get size(): number {
    return this.#clients.size + this.#servers.size;
  }

  // ------------------------------------------------------------------------------- sending

  /**
   * Send a request in a new client transaction. Adds the top Via when the request has none and
   * `localVia` was given. ACK is not sent this way: use `sendStateless`.
   */
  sendRequest(
    req: SipRequest,
    dest: Destination,
    handlers: Partial<Pick<ClientTransactionHandle, 'onResponse' | 'onTimeout' | 'onTransportError' | 'onTerminated'>> = {},
  ): ClientTransactionHandle {
    if (req.method === 'ACK') throw new InvalidStateError('ACK has no client transaction: use sendStateless');
    this.#ensureVia(req, dest);
    const branch = topBranch(req);
    if (branch === undefined) throw new InvalidStateError('request has no Via branch');
    const key = clientKey(branch, req.method);
    if (this.#clients.has(key)) throw new InvalidStateError(`a client transaction for ${key} already exists`);
    const tx = createClientTransaction(req, { ...this.#options, reliable: this.#reliable(dest.transport) });
    const handle = new ClientTransactionHandle(this, tx, dest);
    Object.assign(handle, handlers);
    const entry: ClientEntry = { tx, handle, key, dest, timers: new Map() };
    this.#clients.set(key, entry);
    this.#byClientHandle.set(handle, entry);
    this.#feedClient(entry, { type: 'send-request' });
    return handle;
  }

  /** Send outside any transaction: the ACK for a 2xx, or a 2xx retransmission after Timer L. */
  sendStateless(msg: SipMessage, dest: Destination): void {
    if (msg.kind === 'request') this.#ensureVia(msg, dest);
    this.#deps.send(msg, dest);
  }

  #ensureVia(req: SipRequest, dest: Destination): void {
    if (req.headers.has('Via')) return;
    const local = this.#deps.localVia?.(dest);
    if (local === undefined) throw new InvalidStateError('request has no Via and no localVia was configured');
    const hostPort = local.port === undefined ? local.host : `${local.host}:${local.port}`;
    req.headers.prepend('Via', `SIP/2.0/${dest.transport.toUpperCase()} ${hostPort};branch=${newBranch()};rport`);
  }

  /** @internal — see ClientTransactionHandle.cancel */
  cancel(handle: ClientTransactionHandle): void {
    const entry = this.#byClientHandle.get(handle);
    if (entry === undefined || entry.tx.request.method !== 'INVITE') return;
    if (entry.tx.state === 'calling') handle.pendingCancel = true;
    else if (entry.tx.state === 'proceeding') this.#sendCancel(entry);
  }

  #sendCancel(entry: ClientEntry): void {
    entry.handle.pendingCancel = false;
    const cancel = createCancel(entry.tx.request);
    this.sendRequest(cancel, entry.dest);
  }

  /** @internal — see ServerTransactionHandle.respond */
  respond(handle: ServerTransactionHandle, res: SipResponse): void {
    const entry = this.#byServerHandle.get(handle);
    if (entry === undefined) {
      // A 2xx retransmission racing Timer L (both run 64*T1): the TU owns 2xx reliability
      // (§13.3.1.4), so send it without the transaction rather than fail the TU's timer callback.
      if (handle.tx.request.method === 'INVITE' && res.status >= 200 && res.status < 300) {
        this.#trySend(res, handle.responseDestination);
        return;
      }
      throw new InvalidStateError(`transaction is ${handle.tx.state}`);
    }
    this.#feedServer(entry, { type: 'tu-respond', response: res });
  }

  // ------------------------------------------------------------------------------- receiving

  /** Feed a parsed message from the transport. Never throws on bad input: it counts a drop. */
  receive(msg: SipMessage, source: Destination): void {
    try {
      if (msg.kind === 'request') this.#receiveRequest(msg, source);
      else this.#receiveResponse(msg, source);
    } catch (err) {
      this.stats.dropped++;
      this.#deps.onError?.(err, 'receive');
    }
  }

  #receiveRequest(req: SipRequest, source: Destination): void {
    const via = topVia(req);
    if (via === undefined || !req.headers.has('CSeq') || !req.headers.has('Call-ID')) {
      this.stats.dropped++;
      return;
    }
    const key = serverKey(req, via);
    stampReceived(req, source);
    const existing = this.#servers.get(key);

    if (req.method === 'ACK') {
      if (existing !== undefined && existing.tx.request.method === 'INVITE') {
        const actions = existing.tx.handle({ type: 'receive', msg: req }, this.#deps.scheduler.now());
        this.#runServer(existing, actions, source);
      } else {
        this.#safe('onRequest', () => this.#deps.onRequest(req, undefined, source));
      }
      return;
    }

    if (existing !== undefined) {
      this.stats.retransmittedRequests++;
      this.#feedServer(existing, { type: 'receive', msg: req });
      return;
    }

    const dest = responseDestination(topVia(req) ?? via, source);
    const tx = createServerTransaction(req, { ...this.#options, reliable: this.#reliable(source.transport) });
    const handle = new ServerTransactionHandle(this, tx, source, dest);
    const entry: ServerEntry = { tx, handle, key, dest, timers: new Map() };
    this.#servers.set(key, entry);
    this.#byServerHandle.set(handle, entry);
    this.#feedServer(entry, { type: 'start' });

    if (req.method === 'CANCEL') {
      const invite = this.#servers.get(serverKey(req, via, 'INVITE'));
      if (invite === undefined) {
        // §9.2: a CANCEL for no transaction we know gets 481 and never bothers the TU.
        handle.reply(481, 'Call/Transaction Does Not Exist');
        return;
      }
      handle.cancels = invite.handle;
    }
    this.#safe('onRequest', () => this.#deps.onRequest(req, handle, source));
  }

  #receiveResponse(res: SipResponse, source: Destination): void {
    const branch = topBranch(res);
    const entry = branch === undefined ? undefined : this.#clients.get(clientKey(branch, methodOf(res)));
    if (entry === undefined) {
      this.stats.strayResponses++;
      this.#safe('onStrayResponse', () => this.#deps.onStrayResponse?.(res, source));
      return;
    }
    this.#feedClient(entry, { type: 'receive', msg: res });
  }

  // ------------------------------------------------------------------------------- running actions

  #feedClient(entry: ClientEntry, ev: Parameters<ClientTransaction['handle']>[0]): void {
    this.#runClient(entry, entry.tx.handle(ev, this.#deps.scheduler.now()));
  }

  #feedServer(entry: ServerEntry, ev: Parameters<ServerTransaction['handle']>[0]): void {
    this.#runServer(entry, entry.tx.handle(ev, this.#deps.scheduler.now()), entry.handle.source);
  }

  #runClient(entry: ClientEntry, actions: TransactionAction[]): void {
    const h = entry.handle;
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          if (!this.#trySend(a.msg, entry.dest)) {
            this.#feedClient(entry, { type: 'transport-error' });
          }
          break;
        case 'start-timer': {
          const name = a.name;
          this.#startTimer(entry, name, a.ms, () => this.#feedClient(entry, { type: 'timer', name }));
          break;
        }
        case 'cancel-timer':
          this.#clearTimer(entry, a.name);
          break;
        case 'deliver':
          if (a.msg.kind === 'response') {
            const res = a.msg;
            if (h.pendingCancel && res.status < 200) this.#sendCancel(entry);
            else if (res.status >= 200) h.pendingCancel = false;
            this.#safe('onResponse', () => h.onResponse?.(res));
          }
          break;
        case 'timeout':
          this.#safe('onTimeout', () => h.onTimeout?.());
          break;
        case 'transport-error':
          this.#safe('onTransportError', () => h.onTransportError?.());
          break;
        case 'terminated':
          this.#forget(entry, this.#clients);
          this.#byClientHandle.delete(h);
          this.#safe('onTerminated', () => h.onTerminated?.());
          break;
      }
    }
  }

  #runServer(entry: ServerEntry, actions: TransactionAction[], source: Destination): void {
    const h = entry.handle;
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          if (!this.#trySend(a.msg, entry.dest)) {
            this.#feedServer(entry, { type: 'transport-error' });
          }
          break;
        case 'start-timer': {
          const name = a.name;
          this.#startTimer(entry, name, a.ms, () => this.#feedServer(entry, { type: 'timer', name }));
          break;
        }
        case 'cancel-timer':
          this.#clearTimer(entry, a.name);
          break;
        case 'deliver':
          if (a.msg.kind === 'request') {
            const ack = a.msg;
            this.#safe('onRequest', () => this.#deps.onRequest(ack, undefined, source));
          }
          break;
        case 'timeout':
          this.#safe('onTimeout', () => h.onTimeout?.());
          break;
        case 'transport-error':
          this.#safe('onTransportError', () => h.onTransportError?.());
          break;
        case 'terminated':
          this.#forget(entry, this.#servers);
          this.#byServerHandle.delete(h);
          this.#safe('onTerminated', () => h.onTerminated?.());
          break;
      }
    }
  }

  #clearTimer(entry: { timers: Map<TimerName, unknown> }, name: TimerName): void {
    const old = entry.timers.get(name);
    if (old === undefined) return;
    this.#deps.scheduler.clearTimer(old);
    entry.timers.delete(name);
  }

  #startTimer(
    entry: { tx: { terminated: boolean }; timers: Map<TimerName, unknown> },
    name: TimerName,
    ms: number,
    fire: () => void,
  ): void {
    this.#clearTimer(entry, name);
    // A send failure earlier in the same batch may already have terminated the transaction.
    if (entry.tx.terminated) return;
    entry.timers.set(
      name,
      this.#deps.scheduler.setTimer(ms, () => {
        entry.timers.delete(name);
        fire();
      }),
    );
  }

  #forget<E extends { key: string; timers: Map<TimerName, unknown> }>(entry: E, map: Map<string, E>): void {
    for (const h of entry.timers.values()) this.#deps.scheduler.clearTimer(h);
    entry.timers.clear();
    if (map.get(entry.key) === entry) map.delete(entry.key);
  }

  #trySend(msg: SipMessage, dest: Destination): boolean {
    try {
      this.#deps.send(msg, dest);
      return true;
    } catch (err) {
      this.#deps.onError?.(err, 'send');
      return false;
    }
  }

  #safe(where: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.#deps.onError) this.#deps.onError(err, where);
    }
  }

  // ------------------------------------------------------------------------------- lifecycle

  dump(): { clients: TransactionDump[]; servers: TransactionDump[]; stats: TransactionLayerStats } {
    return {
      clients: [...this.#clients.values()].map((e) => e.tx.dump()),
      servers: [...this.#servers.values()].map((e) => e.tx.dump()),
      stats: { ...this.stats },
    };
  }

  /** Drop every transaction and clear every timer, without telling anyone. Idempotent. */
  close(): void {
    for (const e of this.#clients.values()) this.#forget(e, this.#clients);
    for (const e of this.#servers.values()) this.#forget(e, this.#servers);
    this.#clients.clear();
    this.#servers.clear();
    this.#byClientHandle.clear();
    this.#byServerHandle.clear();
  }
}
