import { createHash } from 'node:crypto';
import { newBranch } from '../../sip/ids.js';
import type { SipMessage, SipRequest, SipResponse } from '../../sip/message.js';
import { TransactionLayer, responseDestination, systemScheduler, type ClientTransactionHandle, type Destination, type ServerTransactionHandle } from '../../sip/transaction-layer.js';
import { parseNameAddr, parseUri, parseVia } from '../../sip/uri.js';
import { checkRequest } from '../../sip/validate.js';
import { isLive, type Member } from '../cluster/member.js';
import { PendingForwards, pickNode } from '../cluster/select.js';
import { logger } from '../log.js';
import { SipTransport } from '../sip-transport.js';
import { requestDestination } from '../sip-util.js';

const log = logger('edge:proxy');

/** How many failover periods a node that still heartbeats may take to answer an INVITE. */
const SLOW_NODE_PATIENCE = 4;

/** A dialog the proxy has not seen end (lost BYE) is forgotten after this long. */
const DIALOG_MAX_AGE_MS = 4 * 3600 * 1000;

export interface ProxyOptions {
  /** Address SIP binds. */
  host: string;
  port: number;
  /** Address in Via and Record-Route. */
  advertisedAddress: string;
  /** A node that has not answered an INVITE at all (not even 100) within this time is skipped, ms. */
  failoverTimeoutMs: number;
  /** Nodes tried per INVITE at most. */
  maxAttempts: number;
  /**
   * `load` (default): argmin(calls / capacity) from the replicated load table. `round-robin`:
   * next live node in turn, ignoring load — what a network load balancer does; kept to measure
   * the skew it produces (BENCHMARKS.md).
   */
  strategy?: 'load' | 'round-robin';
}

/** Where the proxy learns the cluster's members (tdb in production). */
export interface MemberView {
  members(): Iterable<Member>;
}

export interface ProxyStats {
  invites: number;
  forwardedInvites: Record<string, number>;
  failovers: number;
  noNode503: number;
  statelessForwarded: number;
}

/**
 * The SIP address carriers see. Transaction-stateful for every request (a server transaction
 * toward the caller, a client transaction toward the node) so failover and CANCEL work; stateless
 * for ACK of 2xx and for 2xx retransmitted after our transaction ended. Record-Routes initial
 * INVITEs so the whole dialog stays on this path (RFC 3261 §16).
 */
export class SipProxy {
  readonly layer: TransactionLayer;
  readonly pending = new PendingForwards();
  readonly stats: ProxyStats = { invites: 0, forwardedInvites: {}, failovers: 0, noNode503: 0, statelessForwarded: 0 };
  readonly #forwards = new Map<ServerTransactionHandle, Forward>();
  /** Call-ID → the node that answered it; in insertion order, so the oldest sweep first. */
  readonly dialogs = new Map<string, { dest: Destination; target: string; at: number }>();
  #transport!: SipTransport;

  private constructor(
    readonly options: ProxyOptions,
    readonly view: MemberView,
  ) {
    this.layer = new TransactionLayer(
      {
        send: (msg, dest) => this.#transport.send(msg, dest),
        scheduler: systemScheduler,
        onRequest: (req, tx, source) => this.#onRequest(req, tx, source),
        onStrayResponse: (res) => this.forwardResponseStateless(res),
        onError: (err, where) => log.error({ err, where }, 'proxy callback failed'),
      },
      // The proxy never sends 100 on its own timer: it sends it at once for INVITE.
      { tryingDelay: null },
    );
  }

  static async start(options: ProxyOptions, view: MemberView): Promise<SipProxy> {
    const p = new SipProxy(options, view);
    p.#transport = await SipTransport.listen(options.host, options.port, (msg, src) => p.layer.receive(msg, src));
    return p;
  }

  get port(): number {
    return this.#transport.port;
  }

  get self(): string {
    return `${this.options.advertisedAddress}:${this.port}`;
  }

  #rr = 0;

  /** The node for the next attempt of an INVITE, by the configured strategy. */
  choose(now: number, exclude: ReadonlySet<string>): Member | undefined {
    if (this.options.strategy === 'round-robin') {
      const live = [...this.view.members()].filter((m) => m.role === 'media' && m.state === 'active' && m.sip && !exclude.has(m.id) && isLive(m, now));
      live.sort((a, b) => (a.id < b.id ? -1 : 1));
      return live.length ? live[this.#rr++ % live.length] : undefined;
    }
    return pickNode(this.view.members(), (id) => this.pending.count(id, now), now, exclude);
  }

  /** Our Via for a forwarded request; stateless forwards get a branch derived from the incoming one (§16.11). */
  via(branch: string): string {
    return `SIP/2.0/UDP ${this.self};branch=${branch};rport`;
  }

  #onRequest(req: SipRequest, tx: ServerTransactionHandle | undefined, source: Destination): void {
    if (!tx) return this.#forwardAckStateless(req);
    if (req.method === 'CANCEL') {
      const fwd = tx.cancels ? this.#forwards.get(tx.cancels) : undefined;
      tx.reply(fwd ? 200 : 481, fwd ? 'OK' : 'Call/Transaction Does Not Exist');
      fwd?.cancel();
      return;
    }
    const mf = req.headers.get('Max-Forwards');
    if (mf !== undefined && Number(mf) <= 0) {
      // §16.3 step 3: OPTIONS may be answered by the proxy itself; anything else is 483.
      if (req.method === 'OPTIONS') return this.#answerOptions(tx);
      tx.reply(483, 'Too Many Hops');
      return;
    }
    const problem = checkRequest(req, { supportedExtensions: [], acceptContentTypes: ['application/sdp', '*/*'], isProxy: true });
    if (problem && problem.status !== 415) {
      const unsupported = (problem as { unsupported?: string[] }).unsupported;
      tx.reply(problem.status, problem.reason, { headers: problem.status === 420 && unsupported?.length ? [['Unsupported', unsupported.join(', ')]] : [] });
      return;
    }
    const out = cloneRequest(req);
    const routedToUs = this.#popOwnRoute(out);
    const inDialog = parseNameAddr(req.headers.get('To') ?? '').params.has('tag');
    if (inDialog) {
      const dest = this.#inDialogDestination(out);
      if (!dest) {
        tx.reply(481, 'Call/Transaction Does Not Exist');
        return;
      }
      this.#forward(tx, out, [dest]);
      if (req.method === 'BYE') this.dialogs.delete(req.headers.get('Call-ID') ?? '');
      return;
    }
    if (req.method === 'OPTIONS' && (this.#isUs(req.uri) || !parseUriSafe(req.uri)?.user)) return this.#answerOptions(tx);
    if (req.method !== 'INVITE') {
      tx.reply(405, 'Method Not Allowed', { headers: [['Allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS']] });
      return;
    }
    this.stats.invites++;
    tx.reply(100, 'Trying');
    out.headers.prepend('Record-Route', `<sip:${this.self};lr>`);
    const fwd = new Forward(this, tx, out, source);
    this.#forwards.set(tx, fwd);
    tx.onTerminated = () => this.#forwards.delete(tx);
    fwd.next();
  }

  /**
   * Where an in-dialog request goes. Normally its Request-URI (the far end's Contact; our Route was
   * popped). A UA that ignores Record-Route (SIPp's built-in scenarios do) sends in-dialog requests
   * to our own address instead: the dialog table, filled when a 2xx to an INVITE passes, supplies
   * the node and its Contact.
   */
  #inDialogDestination(out: SipRequest): Destination | undefined {
    if (!this.#isUs(out.uri) || out.headers.getAll('Route').length > 0) return requestDestination(out);
    const d = this.dialogs.get(out.headers.get('Call-ID') ?? '');
    if (!d) return undefined;
    out.uri = d.target;
    return d.dest;
  }

  /** Remembers which node answered a call, for in-dialog requests that do not route themselves. */
  rememberDialog(res: SipResponse, dest: Destination): void {
    const callId = res.headers.get('Call-ID');
    const contact = res.headers.get('Contact');
    if (!callId || !contact) return;
    try {
      const uri = parseNameAddr(contact).uri;
      this.dialogs.set(callId, { dest, target: `sip:${uri.user ? `${uri.user}@` : ''}${uri.host}:${uri.port ?? 5060}`, at: Date.now() });
    } catch {
      // No usable Contact: such a UA's in-dialog requests will be answered 481.
    }
    this.#sweepDialogs();
  }

  /** Drops dialogs older than `dialogMaxAgeMs` (a BYE we never saw), a few per call. */
  #sweepDialogs(): void {
    const cutoff = Date.now() - DIALOG_MAX_AGE_MS;
    let n = 0;
    for (const [k, d] of this.dialogs) {
      if (d.at >= cutoff || n++ > 8) break;
      this.dialogs.delete(k);
    }
  }

  #answerOptions(tx: ServerTransactionHandle): void {
    tx.reply(200, 'OK', { headers: [['Allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS'], ['Accept', 'application/sdp']] });
  }

  /** Forwards a non-INVITE (or in-dialog) request to fixed destinations, relaying the answer. */
  #forward(tx: ServerTransactionHandle, out: SipRequest, dests: Destination[]): void {
    const dest = dests[0];
    if (!dest) {
      tx.reply(404, 'Not Found');
      return;
    }
    decrementMaxForwards(out);
    out.headers.prepend('Via', this.via(newBranch()));
    const client = this.layer.sendRequest(out, dest);
    client.onResponse = (res) => this.relayResponse(tx, res);
    client.onTimeout = () => safeReply(tx, 408, 'Request Timeout');
    client.onTransportError = () => safeReply(tx, 503, 'Service Unavailable (transport error)');
  }

  /** Sends a downstream response upstream through our server transaction, minus our Via. */
  relayResponse(tx: ServerTransactionHandle, res: SipResponse): void {
    if (res.status === 100) return; // hop-by-hop (§16.7 step 3)
    const up = cloneResponse(res);
    popVia(up);
    try {
      tx.respond(up);
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'response after final dropped');
    }
  }

  /** ACK for a 2xx travels end to end without a transaction (§16.11-style stateless forward). */
  #forwardAckStateless(req: SipRequest): void {
    const out = cloneRequest(req);
    this.#popOwnRoute(out);
    const dest = this.#inDialogDestination(out);
    if (!dest) return; // an ACK for nothing we know: dropped (ACKs are never answered)
    decrementMaxForwards(out);
    out.headers.prepend('Via', this.via(statelessBranch(req)));
    this.stats.statelessForwarded++;
    this.layer.sendStateless(out, dest);
  }

  /** A response no transaction wants (a 2xx retransmitted after Timer M): pop our Via, send on. */
  forwardResponseStateless(res: SipResponse): void {
    const vias = res.headers.getAll('Via');
    if (vias.length < 2) return;
    const mine = parseVia(vias[0]!);
    if (`${mine.host}:${mine.port ?? 5060}` !== this.self) return;
    const up = cloneResponse(res);
    popVia(up);
    const next = parseVia(vias[1]!);
    this.stats.statelessForwarded++;
    this.layer.sendStateless(up, responseDestination(next, { address: next.host, port: next.port ?? 5060, transport: next.transport.toLowerCase() }));
  }

  #isUs(uri: string): boolean {
    const u = parseUriSafe(uri);
    return !!u && `${u.host}:${u.port ?? 5060}` === this.self;
  }

  /** Loose routing (§16.4): a top Route naming us is removed before we forward. */
  #popOwnRoute(req: SipRequest): boolean {
    const routes = req.headers.getAll('Route');
    const first = routes[0];
    if (first === undefined) return false;
    let uri: string;
    try {
      const na = parseNameAddr(first);
      uri = `${na.uri.host}:${na.uri.port ?? 5060}`;
    } catch {
      return false;
    }
    if (uri !== this.self) return false;
    req.headers.delete('Route');
    for (const r of routes.slice(1)) req.headers.append('Route', r);
    return true;
  }

  async close(): Promise<void> {
    await this.#transport.close();
  }
}

/**
 * One initial INVITE being placed on a media node: tries nodes in load order, skipping one that
 * answers 503 or 408 or nothing at all within `failoverTimeoutMs`; 503 to the caller only when no
 * node can take the call.
 */
class Forward {
  readonly #tried = new Set<string>();
  #client: ClientTransactionHandle | undefined;
  #timer: NodeJS.Timeout | undefined;
  #cancelled = false;
  #done = false;
  /** ACKs sent for late 2xx of abandoned nodes, re-sent to their retransmissions. */
  readonly #lateAcks = new Map<ClientTransactionHandle, SipRequest>();

  constructor(
    private readonly proxy: SipProxy,
    private readonly tx: ServerTransactionHandle,
    private readonly req: SipRequest,
    private readonly source: Destination,
  ) {}

  next(): void {
    if (this.#done) return;
    if (this.#cancelled) return this.#final(487, 'Request Terminated');
    const now = Date.now();
    const node = this.#tried.size < this.proxy.options.maxAttempts ? this.proxy.choose(now, this.#tried) : undefined;
    if (!node) {
      this.proxy.stats.noNode503++;
      log.warn({ tried: [...this.#tried] }, 'no media node can take the call');
      return this.#final(503, 'Service Unavailable (no media node available)');
    }
    this.#tried.add(node.id);
    this.proxy.pending.add(node.id, now);
    this.proxy.stats.forwardedInvites[node.id] = (this.proxy.stats.forwardedInvites[node.id] ?? 0) + 1;
    const [host, port] = splitHostPort(node.sip);
    const out = cloneRequest(this.req);
    decrementMaxForwards(out);
    out.headers.prepend('Via', this.proxy.via(newBranch()));
    const client = this.proxy.layer.sendRequest(out, { address: host, port, transport: 'udp' });
    this.#client = client;
    let answered = false;
    const sentAt = Date.now();
    const silent = () => {
      if (answered || this.#client !== client) return;
      // A node that has refreshed its row since we sent the INVITE is alive, likely just slow
      // (overload): sending the call elsewhere at once adds load everywhere and orphans its late
      // answer, so it gets up to SLOW_NODE_PATIENCE times the failover time. A node silent on both
      // SIP and NATS (crashed) is skipped after one.
      const row = [...this.proxy.view.members()].find((m) => m.id === node.id);
      if (row && row.heartbeat > sentAt && Date.now() - sentAt < SLOW_NODE_PATIENCE * this.proxy.options.failoverTimeoutMs) {
        this.#timer = setTimeout(silent, this.proxy.options.failoverTimeoutMs);
        return;
      }
      log.warn({ node: node.id }, 'node did not answer the INVITE; trying the next');
      this.proxy.stats.failovers++;
      this.#abandon(client);
      this.next();
    };
    this.#timer = setTimeout(silent, this.proxy.options.failoverTimeoutMs);
    client.onResponse = (res) => {
      if (this.#client !== client) return this.#late(client, res);
      answered = true;
      clearTimeout(this.#timer);
      if (res.status < 200) return this.proxy.relayResponse(this.tx, res);
      if ((res.status === 503 || res.status === 408) && !this.#cancelled) {
        this.proxy.stats.failovers++;
        log.info({ node: node.id, status: res.status }, 'node refused the call; trying the next');
        this.#client = undefined;
        return this.next();
      }
      if (res.status >= 300) this.#done = true;
      else if (res.status >= 200) this.proxy.rememberDialog(res, client.destination);
      this.proxy.relayResponse(this.tx, res);
    };
    client.onTimeout = () => {
      if (this.#client !== client) return;
      clearTimeout(this.#timer);
      this.proxy.stats.failovers++;
      this.#client = undefined;
      this.next();
    };
    client.onTransportError = client.onTimeout;
    if (this.#cancelled) client.cancel();
  }

  cancel(): void {
    this.#cancelled = true;
    if (this.#client) this.#client.cancel();
    else this.next();
  }

  #final(status: number, reason: string): void {
    this.#done = true;
    safeReply(this.tx, status, reason);
  }

  #abandon(client: ClientTransactionHandle): void {
    this.#client = undefined;
    client.cancel();
  }

  /** A 2xx from a node we gave up on: ACK it and hang it up so no orphan call lingers. */
  #late(client: ClientTransactionHandle, res: SipResponse): void {
    if (res.status < 200 || res.status >= 300) return;
    // The node retransmits its 2xx until ACKed: a copy gets the same ACK again, and the orphan is
    // hung up once, not once per copy.
    const sentAck = this.#lateAcks.get(client);
    if (sentAck) {
      this.proxy.layer.sendStateless(sentAck, client.destination);
      return;
    }
    log.warn({ dest: client.destination }, 'late 2xx from an abandoned node; ACK and BYE');
    const dest = client.destination;
    const base = (method: string, cseq: number) => {
      const h = res.headers.clone();
      h.delete('Via');
      h.delete('Record-Route');
      h.delete('Content-Type');
      h.prepend('Via', this.proxy.via(newBranch()));
      h.set('CSeq', `${cseq} ${method}`);
      h.set('Max-Forwards', '70');
      const contact = res.headers.get('Contact');
      const target = contact ? parseNameAddr(contact).uri : undefined;
      return { kind: 'request' as const, method, uri: target ? `sip:${target.user ? `${target.user}@` : ''}${target.host}:${target.port ?? 5060}` : `sip:${dest.address}:${dest.port}`, headers: h, body: new Uint8Array(0) };
    };
    const cseq = Number.parseInt(res.headers.get('CSeq') ?? '1', 10);
    const ack = base('ACK', cseq);
    this.#lateAcks.set(client, ack);
    this.proxy.layer.sendStateless(ack, dest);
    this.proxy.layer.sendRequest(base('BYE', cseq + 1), dest);
  }
}

function safeReply(tx: ServerTransactionHandle, status: number, reason: string): void {
  try {
    tx.reply(status, reason);
  } catch {
    // Already answered finally: nothing more to say.
  }
}

function cloneRequest(req: SipRequest): SipRequest {
  return { kind: 'request', method: req.method, uri: req.uri, headers: req.headers.clone(), body: req.body };
}

function cloneResponse(res: SipResponse): SipResponse {
  return { kind: 'response', status: res.status, reason: res.reason, headers: res.headers.clone(), body: res.body };
}

function popVia(msg: SipMessage): void {
  const vias = msg.headers.getAll('Via');
  msg.headers.delete('Via');
  for (const v of vias.slice(1)) msg.headers.append('Via', v);
}

function decrementMaxForwards(req: SipRequest): void {
  const mf = Number(req.headers.get('Max-Forwards') ?? '70');
  req.headers.set('Max-Forwards', String(Math.max(0, (Number.isFinite(mf) ? mf : 70) - 1)));
}

/** §16.11: a stateless proxy's branch must be the same for a retransmission of the same request. */
function statelessBranch(req: SipRequest): string {
  const h = createHash('sha1');
  h.update(req.headers.getAll('Via')[0] ?? '');
  h.update(req.headers.get('Call-ID') ?? '');
  h.update(req.headers.get('CSeq') ?? '');
  h.update(req.uri);
  return `z9hG4bK-sl-${h.digest('hex').slice(0, 20)}`;
}

function parseUriSafe(uri: string) {
  try {
    return parseUri(uri);
  } catch {
    return undefined;
  }
}

export function splitHostPort(hp: string): [string, number] {
  const i = hp.lastIndexOf(':');
  return i < 0 ? [hp, 5060] : [hp.slice(0, i), Number(hp.slice(i + 1))];
}

