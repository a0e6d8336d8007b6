/**
 * RFC 3261 §17 transactions as pure state machines.
 *
 * Each machine is fed `(event, now)` and returns the actions it wants performed (send this, start
 * that timer, hand this to the TU). No sockets, no real timers: `transaction-layer.ts` is the thin
 * adapter that runs the actions. Timer expiry comes back in as a `{ type: 'timer', name }` event;
 * a timer event for a timer the machine no longer runs is ignored, so an adapter racing a cancel
 * cannot confuse it.
 *
 * Choices, with the RFC text that allows them:
 *
 * - 2xx handling follows RFC 6026, not RFC 3261 §17.1.1.2/§17.2.1: a 2xx moves both INVITE
 *   machines to `accepted` (Timer M on the client, Timer L on the server, 64*T1) instead of
 *   terminating them. The server then absorbs retransmitted INVITEs instead of passing them to the
 *   TU as new requests, and the client passes 2xx retransmissions (other forks too) to the TU so it
 *   can ACK them. The TU (the dialog) still owns 2xx retransmission and the ACK for 2xx.
 * - 100 Trying (§17.2.1) is sent by the INVITE server transaction itself when the TU has not sent
 *   a provisional within `tryingDelay` (200 ms by default, 0 for at once, null to leave it to the
 *   TU), so a slow TU never leaves the caller retransmitting.
 * - In `proceeding` the INVITE client runs no Timer B (figure 5 of §17.1.1): once a provisional has
 *   arrived, giving up is the TU's call (CANCEL, or Timer C at a proxy).
 */
import { SipHeaders } from './headers.js';
import { createResponse, type SipMessage, type SipRequest, type SipResponse } from './message.js';
import { parseCSeq, parseVia, type Via } from './uri.js';

// ---------------------------------------------------------------------------------------------
// Options

export interface TransactionOptions {
  /** RTT estimate, ms (RFC 3261 §17.1.1.1). Default 500. */
  t1?: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, ms. Default 4000. */
  t2?: number;
  /** Maximum time a message stays in the network, ms. Default 5000. */
  t4?: number;
  /** True over TCP/TLS/WS: no retransmissions, and the wait-for-stragglers timers are zero. Default false. */
  reliable?: boolean;
  /**
   * INVITE server only: ms to wait for the TU's first provisional before sending 100 Trying
   * ourselves. 0 sends it at once; null never sends it. Default 200 (§17.2.1).
   */
  tryingDelay?: number | null;
}

export interface ResolvedTransactionOptions {
  t1: number;
  t2: number;
  t4: number;
  reliable: boolean;
  tryingDelay: number | null;
}

export function resolveTransactionOptions(o: TransactionOptions = {}): ResolvedTransactionOptions {
  const r: ResolvedTransactionOptions = {
    t1: o.t1 ?? 500,
    t2: o.t2 ?? 4000,
    t4: o.t4 ?? 5000,
    reliable: o.reliable ?? false,
    tryingDelay: o.tryingDelay === undefined ? 200 : o.tryingDelay,
  };
  for (const k of ['t1', 't2', 't4'] as const) {
    if (!Number.isFinite(r[k]) || r[k] <= 0) throw new RangeError(`${k} must be a positive number of ms`);
  }
  if (r.t2 < r.t1) throw new RangeError('t2 must be >= t1');
  if (r.tryingDelay !== null && (!Number.isFinite(r.tryingDelay) || r.tryingDelay < 0)) {
    throw new RangeError('tryingDelay must be >= 0 or null');
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Events and actions

/** A..M are RFC 3261 / RFC 6026 timers; `trying` is our delayed 100 Trying. */
export type TimerName = 'A' | 'B' | 'D' | 'E' | 'F' | 'K' | 'G' | 'H' | 'I' | 'J' | 'L' | 'M' | 'trying';

export type ClientEvent =
  | { type: 'send-request' }
  | { type: 'receive'; msg: SipResponse }
  | { type: 'timer'; name: TimerName }
  | { type: 'transport-error' };

export type ServerEvent =
  | { type: 'start' }
  | { type: 'receive'; msg: SipRequest }
  | { type: 'tu-respond'; response: SipResponse }
  | { type: 'timer'; name: TimerName }
  | { type: 'transport-error' };

export type TransactionAction =
  /** Hand to the transport: a request (client) or a response (server). */
  | { type: 'send'; msg: SipMessage }
  /** (Re)start a timer; an adapter replaces any running timer of the same name. */
  | { type: 'start-timer'; name: TimerName; ms: number }
  | { type: 'cancel-timer'; name: TimerName }
  /** Pass to the TU: responses (client), an ACK for a 2xx (RFC 6026 accepted server). */
  | { type: 'deliver'; msg: SipMessage }
  /** Timer B, F or H expired: the TU treats it as a 408 (client) or a lost ACK (server). */
  | { type: 'timeout'; timer: TimerName }
  | { type: 'transport-error' }
  | { type: 'terminated' };

export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Message helpers shared with the transaction layer and dialogs

/**
 * Split a header value that may hold a comma-separated list (RFC 3261 §7.3.1), leaving commas
 * inside quoted strings and <...> alone.
 */
export function splitHeaderList(value: string): string[] {
  const out: string[] = [];
  let depthAngle = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') depthAngle++;
    else if (c === '>') depthAngle = Math.max(0, depthAngle - 1);
    else if (c === ',' && depthAngle === 0) {
      const part = value.slice(start, i).trim();
      if (part !== '') out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last !== '') out.push(last);
  return out;
}

/** Every value of a list header, across repeated header lines and commas. */
export function headerList(headers: SipHeaders, name: string): string[] {
  return headers.getAll(name).flatMap(splitHeaderList);
}

/** The raw text of the topmost Via, or undefined. */
export function topViaRaw(msg: SipMessage): string | undefined {
  const first = msg.headers.getAll('Via')[0];
  return first === undefined ? undefined : splitHeaderList(first)[0];
}

export function topVia(msg: SipMessage): Via | undefined {
  const raw = topViaRaw(msg);
  return raw === undefined ? undefined : parseVia(raw);
}

/** The branch parameter of the topmost Via. */
export function topBranch(msg: SipMessage): string | undefined {
  const b = topVia(msg)?.params.get('branch');
  return b === null ? undefined : b;
}

export function cseqOf(msg: SipMessage): { seq: number; method: string } {
  const raw = msg.headers.get('CSeq');
  if (raw === undefined) throw new InvalidStateError('message has no CSeq');
  return parseCSeq(raw);
}

/** The method a message belongs to: the request's method, or the CSeq method of a response. */
export function methodOf(msg: SipMessage): string {
  return msg.kind === 'request' ? msg.method : cseqOf(msg).method;
}

function copyHeader(from: SipHeaders, to: SipHeaders, name: string): void {
  const v = from.get(name);
  if (v !== undefined) to.set(name, v);
}

/**
 * The ACK a client transaction sends for a 300-699 to `invite` (RFC 3261 §17.1.1.3): same
 * Request-URI, Call-ID, From, CSeq number and top Via (so the same branch) as the INVITE, the To
 * of the response (with its tag), and the INVITE's Route set.
 */
export function createNon2xxAck(invite: SipRequest, response: SipResponse): SipRequest {
  const h = new SipHeaders();
  const via = topViaRaw(invite);
  if (via !== undefined) h.set('Via', via);
  h.set('Max-Forwards', '70');
  for (const r of invite.headers.getAll('Route')) h.append('Route', r);
  copyHeader(invite.headers, h, 'From');
  copyHeader(response.headers, h, 'To');
  copyHeader(invite.headers, h, 'Call-ID');
  h.set('CSeq', `${cseqOf(invite).seq} ACK`);
  return { kind: 'request', method: 'ACK', uri: invite.uri, headers: h, body: new Uint8Array(0) };
}

/**
 * A CANCEL for `request` (RFC 3261 §9.1): same Request-URI, Call-ID, To, From, CSeq number and
 * top Via (same branch, so the server matches it to the INVITE) and the same Route set.
 */
export function createCancel(request: SipRequest): SipRequest {
  const h = new SipHeaders();
  const via = topViaRaw(request);
  if (via !== undefined) h.set('Via', via);
  h.set('Max-Forwards', '70');
  for (const r of request.headers.getAll('Route')) h.append('Route', r);
  copyHeader(request.headers, h, 'From');
  copyHeader(request.headers, h, 'To');
  copyHeader(request.headers, h, 'Call-ID');
  h.set('CSeq', `${cseqOf(request).seq} CANCEL`);
  return { kind: 'request', method: 'CANCEL', uri: request.uri, headers: h, body: new Uint8Array(0) };
}

// ---------------------------------------------------------------------------------------------
// Shared machinery

export interface TransactionDump {
  kind: string;
  state: string;
  method: string;
  branch: string | undefined;
  reliable: boolean;
  createdAt: number;
  /** Running timers and when they are due (in `now` units). */
  timers: Record<string, number>;
  /** Status of the last response sent (server) or received (client). */
  lastStatus: number | undefined;
  retransmissions: number;
}

abstract class Base<S extends string> {
  abstract readonly kind: string;
  abstract state: S;
  readonly options: ResolvedTransactionOptions;
  readonly request: SipRequest;
  readonly branch: string | undefined;
  protected createdAt = 0;
  protected retransmissions = 0;
  protected lastStatus: number | undefined;
  readonly #timers = new Map<TimerName, number>();
  #now = 0;
  #out: TransactionAction[] = [];

  constructor(request: SipRequest, options: TransactionOptions | ResolvedTransactionOptions) {
    this.request = request;
    this.options = resolveTransactionOptions(options);
    this.branch = topBranch(request);
  }

  get terminated(): boolean {
    return this.state === 'terminated';
  }

  dump(): TransactionDump {
    return {
      kind: this.kind,
      state: this.state,
      method: this.request.method,
      branch: this.branch,
      reliable: this.options.reliable,
      createdAt: this.createdAt,
      timers: Object.fromEntries(this.#timers),
      lastStatus: this.lastStatus,
      retransmissions: this.retransmissions,
    };
  }

  /** Run one event; collects the actions the subclass emits. */
  protected run(now: number, fn: () => void): TransactionAction[] {
    this.#now = now;
    this.#out = [];
    if (this.state !== 'terminated') fn();
    return this.#out;
  }

  protected emit(a: TransactionAction): void {
    this.#out.push(a);
  }

  protected startTimer(name: TimerName, ms: number): void {
    this.#timers.set(name, this.#now + ms);
    this.emit({ type: 'start-timer', name, ms });
  }

  protected cancelTimer(name: TimerName): void {
    if (this.#timers.delete(name)) this.emit({ type: 'cancel-timer', name });
  }

  /** Consume a timer event; false when that timer is not running (stale or cancelled). */
  protected fired(name: TimerName): boolean {
    return this.#timers.delete(name);
  }

  protected isRunning(name: TimerName): boolean {
    return this.#timers.has(name);
  }

  protected terminate(): void {
    for (const name of [...this.#timers.keys()]) this.cancelTimer(name);
    (this as { state: string }).state = 'terminated';
    this.emit({ type: 'terminated' });
  }

  /** A timer that is zero on reliable transports terminates at once instead of being started. */
  protected waitOrTerminate(name: TimerName, unreliableMs: number): void {
    if (this.options.reliable) this.terminate();
    else this.startTimer(name, unreliableMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Client transactions

export type InviteClientState = 'idle' | 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

/**
 * RFC 3261 §17.1.1 (figure 5) with RFC 6026's `accepted` state.
 *
 * ```
 *              send-request → calling ──1xx──▶ proceeding
 *   Timer A: retransmit (T1, 2T1, 4T1…)   │ 300-699: ACK, deliver ──▶ completed ─Timer D─▶ terminated
 *   Timer B (64*T1): timeout              │ 2xx: deliver ──▶ accepted ─Timer M─▶ terminated
 * ```
 */
export class InviteClientTransaction extends Base<InviteClientState> {
  readonly kind = 'invite-client';
  state: InviteClientState = 'idle';
  #interval = 0;
  #ack: SipRequest | undefined;

  constructor(request: SipRequest, options: TransactionOptions | ResolvedTransactionOptions = {}) {
    super(request, options);
    if (request.method !== 'INVITE') throw new InvalidStateError(`InviteClientTransaction for ${request.method}`);
  }

  /** The ACK this transaction generated for a non-2xx final response, once there is one. */
  get ack(): SipRequest | undefined {
    return this.#ack;
  }

  handle(ev: ClientEvent, now: number): TransactionAction[] {
    return this.run(now, () => {
      switch (ev.type) {
        case 'send-request':
          if (this.state !== 'idle') throw new InvalidStateError(`send-request in ${this.state}`);
          this.createdAt = now;
          this.state = 'calling';
          this.emit({ type: 'send', msg: this.request });
          if (!this.options.reliable) {
            this.#interval = this.options.t1;
            this.startTimer('A', this.#interval);
          }
          this.startTimer('B', 64 * this.options.t1);
          return;
        case 'receive':
          return this.#receive(ev.msg);
        case 'timer':
          return this.#timer(ev.name);
        case 'transport-error':
          if (this.state === 'calling' || this.state === 'proceeding') {
            this.emit({ type: 'transport-error' });
            this.terminate();
          }
          return;
      }
    });
  }

  #receive(res: SipResponse): void {
    const s = res.status;
    switch (this.state) {
      case 'calling':
      case 'proceeding':
        this.lastStatus = s;
        if (s < 200) {
          this.cancelTimer('A');
          this.cancelTimer('B');
          this.state = 'proceeding';
          this.emit({ type: 'deliver', msg: res });
        } else if (s < 300) {
          this.cancelTimer('A');
          this.cancelTimer('B');
          this.state = 'accepted';
          this.emit({ type: 'deliver', msg: res });
          this.startTimer('M', 64 * this.options.t1);
        } else {
          this.cancelTimer('A');
          this.cancelTimer('B');
          this.#ack = createNon2xxAck(this.request, res);
          this.emit({ type: 'send', msg: this.#ack });
          this.emit({ type: 'deliver', msg: res });
          this.state = 'completed';
          this.waitOrTerminate('D', Math.max(32_000, 64 * this.options.t1));
        }
        return;
      case 'completed':
        // §17.1.1.2: a retransmitted final gets the ACK again and stays away from the TU.
        if (s >= 300 && this.#ack !== undefined) {
          this.retransmissions++;
          this.emit({ type: 'send', msg: this.#ack });
        }
        return;
      case 'accepted':
        // RFC 6026 §8.4: further 2xx (retransmissions or other forks) go to the TU, which ACKs them.
        if (s >= 200 && s < 300) this.emit({ type: 'deliver', msg: res });
        return;
      default:
        return;
    }
  }

  #timer(name: TimerName): void {
    if (!this.fired(name)) return;
    switch (name) {
      case 'A':
        if (this.state !== 'calling') return;
        this.retransmissions++;
        this.emit({ type: 'send', msg: this.request });
        this.#interval *= 2;
        this.startTimer('A', this.#interval);
        return;
      case 'B':
        if (this.state !== 'calling') return;
        this.emit({ type: 'timeout', timer: 'B' });
        this.terminate();
        return;
      case 'D':
      case 'M':
        this.terminate();
        return;
      default:
        return;
    }
  }
}

export type NonInviteClientState = 'idle' | 'trying' | 'proceeding' | 'completed' | 'terminated';

/**
 * RFC 3261 §17.1.2 (figure 6).
 *
 * ```
 *   send-request → trying ──1xx──▶ proceeding ──200-699: deliver──▶ completed ─Timer K─▶ terminated
 *   Timer E: retransmit, interval doubling up to T2 (T2 flat once proceeding)
 *   Timer F (64*T1): timeout
 * ```
 */
export class NonInviteClientTransaction extends Base<NonInviteClientState> {
  readonly kind = 'non-invite-client';
  state: NonInviteClientState = 'idle';
  #interval = 0;

  constructor(request: SipRequest, options: TransactionOptions | ResolvedTransactionOptions = {}) {
    super(request, options);
    if (request.method === 'INVITE' || request.method === 'ACK') {
      throw new InvalidStateError(`NonInviteClientTransaction for ${request.method}`);
    }
  }

  handle(ev: ClientEvent, now: number): TransactionAction[] {
    return this.run(now, () => {
      switch (ev.type) {
        case 'send-request':
          if (this.state !== 'idle') throw new InvalidStateError(`send-request in ${this.state}`);
          this.createdAt = now;
          this.state = 'trying';
          this.emit({ type: 'send', msg: this.request });
          if (!this.options.reliable) {
            this.#interval = this.options.t1;
            this.startTimer('E', this.#interval);
          }
          this.startTimer('F', 64 * this.options.t1);
          return;
        case 'receive': {
          if (this.state !== 'trying' && this.state !== 'proceeding') return;
          const s = ev.msg.status;
          this.lastStatus = s;
          if (s < 200) {
            this.state = 'proceeding';
            this.emit({ type: 'deliver', msg: ev.msg });
          } else {
            this.cancelTimer('E');
            this.cancelTimer('F');
            this.emit({ type: 'deliver', msg: ev.msg });
            this.state = 'completed';
            this.waitOrTerminate('K', this.options.t4);
          }
          return;
        }
        case 'timer':
          if (!this.fired(ev.name)) return;
          if (ev.name === 'E' && (this.state === 'trying' || this.state === 'proceeding')) {
            this.retransmissions++;
            this.emit({ type: 'send', msg: this.request });
            this.#interval = this.state === 'trying' ? Math.min(2 * this.#interval, this.options.t2) : this.options.t2;
            this.startTimer('E', this.#interval);
          } else if (ev.name === 'F') {
            this.cancelTimer('E');
            this.emit({ type: 'timeout', timer: 'F' });
            this.terminate();
          } else if (ev.name === 'K') {
            this.terminate();
          }
          return;
        case 'transport-error':
          if (this.state === 'trying' || this.state === 'proceeding') {
            this.emit({ type: 'transport-error' });
            this.terminate();
          }
          return;
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Server transactions

export type InviteServerState = 'idle' | 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

/**
 * RFC 3261 §17.2.1 (figure 7) with RFC 6026's `accepted` state.
 *
 * ```
 *   start → proceeding (100 Trying after tryingDelay unless the TU answers first)
 *     TU 1xx: send                    INVITE retransmission: resend last response
 *     TU 2xx: send ──▶ accepted (absorb INVITEs, deliver ACKs, pass TU 2xx retransmits) ─Timer L─▶ terminated
 *     TU 300-699: send ──▶ completed (Timer G resends, doubling to T2; Timer H gives up)
 *                            ACK ──▶ confirmed ─Timer I─▶ terminated
 * ```
 */
export class InviteServerTransaction extends Base<InviteServerState> {
  readonly kind = 'invite-server';
  state: InviteServerState = 'idle';
  #last: SipResponse | undefined;
  #interval = 0;

  constructor(request: SipRequest, options: TransactionOptions | ResolvedTransactionOptions = {}) {
    super(request, options);
    if (request.method !== 'INVITE') throw new InvalidStateError(`InviteServerTransaction for ${request.method}`);
  }

  /** The last response sent, provisional or final. */
  get lastResponse(): SipResponse | undefined {
    return this.#last;
  }

  handle(ev: ServerEvent, now: number): TransactionAction[] {
    return this.run(now, () => {
      switch (ev.type) {
        case 'start':
          if (this.state !== 'idle') throw new InvalidStateError(`start in ${this.state}`);
          this.createdAt = now;
          this.state = 'proceeding';
          if (this.options.tryingDelay === 0) this.#sendTrying();
          else if (this.options.tryingDelay !== null) this.startTimer('trying', this.options.tryingDelay);
          return;
        case 'receive':
          return this.#receive(ev.msg);
        case 'tu-respond':
          return this.#respond(ev.response);
        case 'timer':
          return this.#timer(ev.name);
        case 'transport-error':
          // §17.2.4: a failure to send a response terminates the transaction.
          this.emit({ type: 'transport-error' });
          this.terminate();
          return;
      }
    });
  }

  #send(res: SipResponse): void {
    this.#last = res;
    this.lastStatus = res.status;
    this.emit({ type: 'send', msg: res });
  }

  #sendTrying(): void {
    this.#send(createResponse(this.request, 100, 'Trying'));
  }

  #receive(req: SipRequest): void {
    if (req.method === 'ACK') {
      if (this.state === 'completed') {
        this.cancelTimer('G');
        this.cancelTimer('H');
        this.state = 'confirmed';
        this.waitOrTerminate('I', this.options.t4);
      } else if (this.state === 'accepted') {
        this.emit({ type: 'deliver', msg: req });
      }
      return;
    }
    // A retransmitted INVITE (§17.2.1): resend whatever we last sent; absorbed in accepted.
    if ((this.state === 'proceeding' || this.state === 'completed') && this.#last !== undefined) {
      this.retransmissions++;
      this.emit({ type: 'send', msg: this.#last });
    }
  }

  #respond(res: SipResponse): void {
    const s = res.status;
    if (this.state === 'accepted' && s >= 200 && s < 300) {
      // RFC 6026 §8.7: the TU's 2xx retransmissions pass straight through.
      this.emit({ type: 'send', msg: res });
      return;
    }
    if (this.state !== 'proceeding') throw new InvalidStateError(`respond ${s} in ${this.state}`);
    this.cancelTimer('trying');
    this.#send(res);
    if (s < 200) return;
    if (s < 300) {
      this.state = 'accepted';
      this.startTimer('L', 64 * this.options.t1);
      return;
    }
    this.state = 'completed';
    if (!this.options.reliable) {
      this.#interval = this.options.t1;
      this.startTimer('G', this.#interval);
    }
    this.startTimer('H', 64 * this.options.t1);
  }

  #timer(name: TimerName): void {
    if (!this.fired(name)) return;
    switch (name) {
      case 'trying':
        if (this.state === 'proceeding' && this.#last === undefined) this.#sendTrying();
        return;
      case 'G':
        if (this.state !== 'completed' || this.#last === undefined) return;
        this.retransmissions++;
        this.emit({ type: 'send', msg: this.#last });
        this.#interval = Math.min(2 * this.#interval, this.options.t2);
        this.startTimer('G', this.#interval);
        return;
      case 'H':
        if (this.state !== 'completed') return;
        this.emit({ type: 'timeout', timer: 'H' });
        this.terminate();
        return;
      case 'I':
      case 'L':
        this.terminate();
        return;
      default:
        return;
    }
  }
}

export type NonInviteServerState = 'idle' | 'trying' | 'proceeding' | 'completed' | 'terminated';

/**
 * RFC 3261 §17.2.2 (figure 8).
 *
 * ```
 *   start → trying ──TU 1xx──▶ proceeding ──TU 200-699──▶ completed ─Timer J (64*T1)─▶ terminated
 *   request retransmission: absorbed in trying, last response resent in proceeding/completed
 * ```
 */
export class NonInviteServerTransaction extends Base<NonInviteServerState> {
  readonly kind = 'non-invite-server';
  state: NonInviteServerState = 'idle';
  #last: SipResponse | undefined;

  constructor(request: SipRequest, options: TransactionOptions | ResolvedTransactionOptions = {}) {
    super(request, options);
    if (request.method === 'INVITE' || request.method === 'ACK') {
      throw new InvalidStateError(`NonInviteServerTransaction for ${request.method}`);
    }
  }

  get lastResponse(): SipResponse | undefined {
    return this.#last;
  }

  handle(ev: ServerEvent, now: number): TransactionAction[] {
    return this.run(now, () => {
      switch (ev.type) {
        case 'start':
          if (this.state !== 'idle') throw new InvalidStateError(`start in ${this.state}`);
          this.createdAt = now;
          this.state = 'trying';
          return;
        case 'receive':
          if ((this.state === 'proceeding' || this.state === 'completed') && this.#last !== undefined) {
            this.retransmissions++;
            this.emit({ type: 'send', msg: this.#last });
          }
          return;
        case 'tu-respond': {
          const s = ev.response.status;
          if (this.state !== 'trying' && this.state !== 'proceeding') {
            throw new InvalidStateError(`respond ${s} in ${this.state}`);
          }
          this.#last = ev.response;
          this.lastStatus = s;
          this.emit({ type: 'send', msg: ev.response });
          if (s < 200) {
            this.state = 'proceeding';
          } else {
            this.state = 'completed';
            this.waitOrTerminate('J', 64 * this.options.t1);
          }
          return;
        }
        case 'timer':
          if (this.fired(ev.name) && ev.name === 'J') this.terminate();
          return;
        case 'transport-error':
          this.emit({ type: 'transport-error' });
          this.terminate();
          return;
      }
    });
  }
}

export type ClientTransaction = InviteClientTransaction | NonInviteClientTransaction;
export type ServerTransaction = InviteServerTransaction | NonInviteServerTransaction;

/** The right client machine for a request's method. */
export function createClientTransaction(
  request: SipRequest,
  options: TransactionOptions | ResolvedTransactionOptions = {},
): ClientTransaction {
  return request.method === 'INVITE'
    ? new InviteClientTransaction(request, options)
    : new NonInviteClientTransaction(request, options);
}

/** The right server machine for a request's method (never for ACK, which has no transaction). */
export function createServerTransaction(
  request: SipRequest,
  options: TransactionOptions | ResolvedTransactionOptions = {},
): ServerTransaction {
  return request.method === 'INVITE'
    ? new InviteServerTransaction(request, options)
    : new NonInviteServerTransaction(request, options);
}
