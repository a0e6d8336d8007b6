/**
 * RFC 3261 §12 dialogs: the state two user agents share after an INVITE is answered, and the
 * rules for building and checking requests inside it.
 *
 * Pure: no transactions, no transport. The TU creates a Dialog from the INVITE and its 2xx (or a
 * 1xx with a To tag, for an early dialog), builds in-dialog requests with `createRequest` and
 * hands them to the transaction layer, and runs every in-dialog request it receives through
 * `receiveRequest` first.
 */
import { SipError } from './errors.js';
import { SipHeaders } from './headers.js';
import type { SipRequest, SipResponse, SipMessage } from './message.js';
import { cseqOf, headerList } from './transaction.js';
import { formatNameAddr, formatUri, parseNameAddr, parseUri, type NameAddr, type SipUri } from './uri.js';

export type DialogState = 'early' | 'confirmed' | 'terminated';

/** Methods whose requests (and 2xx responses) replace the remote target (§12.2, RFC 3311, 6665). */
const TARGET_REFRESH = new Set(['INVITE', 'UPDATE', 'SUBSCRIBE', 'NOTIFY', 'REFER']);

function tagParam(na: NameAddr): string | undefined {
  const t = na.params.get('tag');
  return t === null ? undefined : t;
}

function requireHeader(msg: SipMessage, name: string): string {
  const v = msg.headers.get(name);
  if (v === undefined) throw new SipError(400, `Missing ${name}`);
  return v;
}

function withoutTag(na: NameAddr): NameAddr {
  const params = new Map(na.params);
  params.delete('tag');
  return { ...na, params };
}

function contactUri(msg: SipMessage): string | undefined {
  const first = headerList(msg.headers, 'Contact')[0];
  return first === undefined ? undefined : formatUri(parseNameAddr(first).uri);
}

/**
 * The key of the dialog a message belongs to: Call-ID + local tag + remote tag.
 *
 * `asUas` is true when this side is the UAS of the message's transaction (an incoming request or
 * an outgoing response: our tag is in To) and false when it is the UAC (an outgoing request or an
 * incoming response: our tag is in From). Returns undefined when either tag is missing.
 */
export function dialogId(msg: SipMessage, asUas: boolean): string | undefined {
  const callId = msg.headers.get('Call-ID');
  const from = msg.headers.get('From');
  const to = msg.headers.get('To');
  if (callId === undefined || from === undefined || to === undefined) return undefined;
  const fromTag = tagParam(parseNameAddr(from));
  const toTag = tagParam(parseNameAddr(to));
  if (fromTag === undefined || toTag === undefined) return undefined;
  return asUas ? dialogKey(callId, toTag, fromTag) : dialogKey(callId, fromTag, toTag);
}

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId};${localTag};${remoteTag}`;
}

export interface CreateRequestOptions {
  body?: Uint8Array | string;
  contentType?: string;
  /** Extra headers, appended in order. */
  headers?: [string, string][];
  /** A Via for the top of the request; without it the transaction layer adds one. */
  via?: string;
  /** Use this CSeq number instead of the next one (ACK and CANCEL reuse the INVITE's). */
  cseq?: number;
}

export interface UasDialogOptions {
  /** The tag we put in To of our responses. */
  localTag: string;
  /** Our Contact URI, sent in target-refresh requests. */
  localContact?: string;
  /** Our first CSeq number in this dialog; default 1 (the local sequence starts empty, §12.1.1). */
  initialSeq?: number;
}

export interface UacDialogOptions {
  localContact?: string;
}

export type ReceiveResult = { ok: true } | { ok: false; error: SipError };

export class Dialog {
  state: DialogState;
  readonly callId: string;
  readonly localTag: string;
  remoteTag: string;
  readonly role: 'uac' | 'uas';
  /** Highest CSeq number we have used; undefined until our first request (UAS side). */
  localSeq: number | undefined;
  /** Highest CSeq number the peer has used; undefined until its first in-dialog request (UAC side). */
  remoteSeq: number | undefined;
  /** Where in-dialog requests go: the peer's Contact URI, replaced by target refreshes. */
  remoteTarget: string;
  /** Route set in the order our requests must traverse it. Fixed once the dialog is confirmed. */
  routeSet: string[];
  readonly secure: boolean;
  localContact: string | undefined;
  readonly #local: NameAddr;
  readonly #remote: NameAddr;
  #initialSeq: number;

  private constructor(init: {
    state: DialogState;
    role: 'uac' | 'uas';
    callId: string;
    local: NameAddr;
    remote: NameAddr;
    localTag: string;
    remoteTag: string;
    localSeq: number | undefined;
    remoteSeq: number | undefined;
    remoteTarget: string;
    routeSet: string[];
    secure: boolean;
    localContact: string | undefined;
    initialSeq: number;
  }) {
    this.state = init.state;
    this.role = init.role;
    this.callId = init.callId;
    this.#local = init.local;
    this.#remote = init.remote;
    this.localTag = init.localTag;
    this.remoteTag = init.remoteTag;
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
    this.remoteTarget = init.remoteTarget;
    this.routeSet = init.routeSet;
    this.secure = init.secure;
    this.localContact = init.localContact;
    this.#initialSeq = init.initialSeq;
  }

  /**
   * The UAS side (§12.1.1), from the dialog-creating request and the tag of our 2xx (or 1xx, for
   * an early dialog — call `confirm()` when the 2xx goes out). Route set: Record-Route in order.
   */
  static fromUas(req: SipRequest, opts: UasDialogOptions & { early?: boolean }): Dialog {
    const from = parseNameAddr(requireHeader(req, 'From'));
    const remoteTag = tagParam(from);
    if (remoteTag === undefined) throw new SipError(400, 'From has no tag');
    const target = contactUri(req);
    if (target === undefined) throw new SipError(400, 'Missing Contact');
    return new Dialog({
      state: opts.early ? 'early' : 'confirmed',
      role: 'uas',
      callId: requireHeader(req, 'Call-ID'),
      local: withoutTag(parseNameAddr(requireHeader(req, 'To'))),
      remote: withoutTag(from),
      localTag: opts.localTag,
      remoteTag,
      localSeq: undefined,
      remoteSeq: cseqOf(req).seq,
      remoteTarget: target,
      routeSet: headerList(req.headers, 'Record-Route'),
      secure: parseUri(req.uri).scheme === 'sips',
      localContact: opts.localContact,
      initialSeq: opts.initialSeq ?? 1,
    });
  }

  /**
   * The UAC side (§12.1.2), from our request and a 2xx (confirmed) or a 1xx with a To tag
   * (early). Route set: the response's Record-Route reversed.
   */
  static fromUac(req: SipRequest, res: SipResponse, opts: UacDialogOptions = {}): Dialog {
    const from = parseNameAddr(requireHeader(req, 'From'));
    const to = parseNameAddr(requireHeader(res, 'To'));
    const localTag = tagParam(from);
    const remoteTag = tagParam(to);
    if (localTag === undefined) throw new SipError(400, 'From has no tag');
    if (remoteTag === undefined) throw new SipError(400, 'To has no tag');
    const target = contactUri(res);
    if (target === undefined && res.status >= 200) throw new SipError(400, 'Missing Contact');
    return new Dialog({
      state: res.status < 200 ? 'early' : 'confirmed',
      role: 'uac',
      callId: requireHeader(req, 'Call-ID'),
      local: withoutTag(from),
      remote: withoutTag(to),
      localTag,
      remoteTag,
      localSeq: cseqOf(req).seq,
      remoteSeq: undefined,
      remoteTarget: target ?? req.uri,
      routeSet: headerList(res.headers, 'Record-Route').reverse(),
      secure: parseUri(req.uri).scheme === 'sips',
      localContact: opts.localContact ?? contactUri(req),
      initialSeq: 1,
    });
  }

  get id(): string {
    return dialogKey(this.callId, this.localTag, this.remoteTag);
  }

  /** Our URI (From of our requests), without tag. */
  get localUri(): string {
    return formatUri(this.#local.uri);
  }

  /** The peer's URI (To of our requests), without tag. */
  get remoteUri(): string {
    return formatUri(this.#remote.uri);
  }

  /**
   * Build an in-dialog request (§12.2.1.1): Request-URI and Route from the remote target and
   * route set (loose routing, or strict routing when the first route lacks `lr`), From/To with
   * tags, Call-ID, the next CSeq (ACK and CANCEL reuse `opts.cseq`), Max-Forwards 70, and our
   * Contact on target-refresh methods.
   */
  createRequest(method: string, opts: CreateRequestOptions = {}): SipRequest {
    if (this.state === 'terminated') throw new SipError(481, 'Call/Transaction Does Not Exist');
    let seq: number;
    if (opts.cseq !== undefined) {
      seq = opts.cseq;
    } else if (method === 'ACK' || method === 'CANCEL') {
      throw new RangeError(`${method} needs opts.cseq: it reuses the CSeq of the request it acknowledges`);
    } else {
      seq = this.localSeq === undefined ? this.#initialSeq : this.localSeq + 1;
      this.localSeq = seq;
    }

    const h = new SipHeaders();
    if (opts.via !== undefined) h.set('Via', opts.via);
    h.set('Max-Forwards', '70');

    let uri = this.remoteTarget;
    const routes = [...this.routeSet];
    const first = routes[0];
    if (first !== undefined) {
      const firstUri = parseNameAddr(first).uri;
      if (!firstUri.params.has('lr')) {
        // Strict routing (§12.2.1.1): the first route becomes the Request-URI, stripped of the
        // parts a Request-URI may not carry, and the remote target goes last in Route.
        const stripped: SipUri = { ...firstUri, headers: new Map() };
        uri = formatUri(stripped);
        routes.shift();
        routes.push(`<${this.remoteTarget}>`);
      }
    }
    for (const r of routes) h.append('Route', r);

    h.set('From', formatNameAddr({ ...this.#local, params: new Map([...this.#local.params, ['tag', this.localTag]]) }));
    h.set('To', formatNameAddr({ ...this.#remote, params: new Map([...this.#remote.params, ['tag', this.remoteTag]]) }));
    h.set('Call-ID', this.callId);
    h.set('CSeq', `${seq} ${method}`);
    if (this.localContact !== undefined && TARGET_REFRESH.has(method)) h.set('Contact', `<${this.localContact}>`);
    for (const [n, v] of opts.headers ?? []) h.append(n, v);

    let body: Uint8Array = new Uint8Array(0);
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? new TextEncoder().encode(opts.body) : opts.body;
      if (opts.contentType !== undefined) h.set('Content-Type', opts.contentType);
    }
    return { kind: 'request', method, uri, headers: h, body };
  }

  /** The ACK for a 2xx to our INVITE with CSeq `inviteSeq` (§13.2.2.4). */
  createAck(inviteSeq: number, opts: Omit<CreateRequestOptions, 'cseq'> = {}): SipRequest {
    return this.createRequest('ACK', { ...opts, cseq: inviteSeq });
  }

  /**
   * Check and absorb an in-dialog request (§12.2.2). A CSeq lower than the last one seen is
   * refused with 500; ACK and CANCEL carry the CSeq of the request they belong to and are not
   * checked. Target-refresh requests with a Contact replace the remote target.
   */
  receiveRequest(req: SipRequest): ReceiveResult {
    if (this.state === 'terminated') return { ok: false, error: new SipError(481, 'Call/Transaction Does Not Exist') };
    if (req.method !== 'ACK' && req.method !== 'CANCEL') {
      const seq = cseqOf(req).seq;
      if (this.remoteSeq !== undefined && seq < this.remoteSeq) {
        return { ok: false, error: new SipError(500, 'Server Internal Error') };
      }
      this.remoteSeq = seq;
    }
    if (TARGET_REFRESH.has(req.method)) {
      const target = contactUri(req);
      if (target !== undefined) this.remoteTarget = target;
    }
    return { ok: true };
  }

  /**
   * Absorb a response to one of our in-dialog requests (§12.2.1.2): a 2xx to a target refresh
   * replaces the remote target; a 2xx confirms an early UAC dialog and fixes its route set
   * (§12.1.2); 481 and 408 end the dialog.
   */
  receiveResponse(res: SipResponse): void {
    const method = cseqOf(res).method;
    if (res.status === 481 || res.status === 408) {
      this.state = 'terminated';
      return;
    }
    if (res.status < 200 || res.status >= 300) return;
    if (this.state === 'early' && this.role === 'uac' && method === 'INVITE') {
      this.routeSet = headerList(res.headers, 'Record-Route').reverse();
      this.state = 'confirmed';
    }
    if (TARGET_REFRESH.has(method)) {
      const target = contactUri(res);
      if (target !== undefined) this.remoteTarget = target;
    }
  }

  /** An early UAS dialog becomes confirmed when its 2xx goes out. */
  confirm(): void {
    if (this.state === 'early') this.state = 'confirmed';
  }

  /** After BYE, or a failed early dialog. Idempotent. */
  terminate(): void {
    this.state = 'terminated';
  }

  dump(): Record<string, unknown> {
    return {
      id: this.id,
      role: this.role,
      state: this.state,
      localUri: this.localUri,
      remoteUri: this.remoteUri,
      localSeq: this.localSeq,
      remoteSeq: this.remoteSeq,
      remoteTarget: this.remoteTarget,
      routeSet: [...this.routeSet],
      secure: this.secure,
    };
  }
}
