/**
 * Application-layer checks a UAS (or proxy) runs on a request that parsed (RFC 3261 §8.2, §16.3;
 * RFC 4475 §3.3). The parser rejects what is syntactically broken; these checks decide which
 * status a well-formed but unacceptable request gets. Each failure is a SipError carrying the
 * status; for 420 the caller copies `unsupported` into an Unsupported header.
 */
import { SipError, SipParseError } from './errors.js';
import type { SipRequest } from './message.js';
import { parseCSeq, trimWs } from './uri.js';

export interface UasPolicy {
  /** Option tags this element supports (Require for a UAS, Proxy-Require for a proxy). */
  supportedExtensions: string[];
  /** Media types accepted in request bodies, e.g. `application/sdp`; `type/*` and `*\/*` allowed. */
  acceptContentTypes: string[];
  /** Run the proxy checks of RFC 3261 §16.3 (483, Proxy-Require) instead of the UAS ones. */
  isProxy?: boolean;
  /** Request-URI schemes served; others get 416. Default `['sip', 'sips', 'tel']`. */
  uriSchemes?: string[];
  /**
   * Require Max-Forwards (RFC 3261 §8.1.1 makes it mandatory for a UAC). Default false: RFC 2543
   * requests have none and RFC 4475 §3.4.1 asks that they be accepted.
   */
  requireMaxForwards?: boolean;
}

const MANDATORY = ['To', 'From', 'CSeq', 'Call-ID', 'Via'];
const SINGLE_VALUE = ['To', 'From', 'CSeq', 'Call-ID', 'Max-Forwards', 'Content-Type', 'Expires'];
const DEFAULT_SCHEMES = ['sip', 'sips', 'tel'];

/**
 * Check a parsed request; returns the error to answer with, or null to go on.
 *
 * Order: 400 (missing mandatory header, several values in a single-value header, conflicting
 * Content-Length, CSeq method ≠ method, body without Content-Type), 416 (Request-URI scheme),
 * then for a proxy 483 (Max-Forwards 0) and 420 (Proxy-Require), for a UAS 420 (Require) and
 * 415 (Content-Type of a non-empty body).
 */
export function checkRequest(req: SipRequest, policy: UasPolicy): SipError | null {
  const h = req.headers;
  const mandatory = policy.requireMaxForwards ? [...MANDATORY, 'Max-Forwards'] : MANDATORY;
  const missing = mandatory.filter((n) => !h.has(n));
  if (missing.length > 0) return new SipError(400, `Missing ${missing.join(', ')}`);

  for (const name of SINGLE_VALUE) {
    if (h.getAll(name).length > 1) return new SipError(400, `Multiple ${name} Values`);
  }
  const lengths = h.getAll('Content-Length');
  if (lengths.length > 1 && lengths.some((v) => Number(v) !== Number(lengths[0]))) {
    return new SipError(400, 'Conflicting Content-Length'); // RFC 4475 §3.3.9
  }
  let cseqMethod: string;
  try {
    cseqMethod = parseCSeq(h.get('CSeq') ?? '').method;
  } catch (e) {
    if (!(e instanceof SipParseError)) throw e;
    return new SipError(400, 'Malformed CSeq', { cause: e });
  }
  if (cseqMethod !== req.method) return new SipError(400, 'CSeq Method Mismatch');
  if (req.body.length > 0 && !h.has('Content-Type')) return new SipError(400, 'Missing Content-Type');

  const colon = req.uri.indexOf(':');
  const scheme = colon > 0 ? req.uri.slice(0, colon).toLowerCase() : '';
  if (!(policy.uriSchemes ?? DEFAULT_SCHEMES).some((s) => s.toLowerCase() === scheme)) {
    return new SipError(416, 'Unsupported URI Scheme');
  }

  if (policy.isProxy) {
    const mf = h.get('Max-Forwards');
    if (mf !== undefined && Number(mf) === 0) return new SipError(483, 'Too Many Hops');
    const unsupported = unsupportedOf(h.getAll('Proxy-Require'), policy);
    if (unsupported.length > 0) return new SipError(420, 'Bad Extension', { unsupported });
    return null;
  }

  // RFC 3261 §8.2.2.3: a UAS never rejects ACK or CANCEL over Require
  if (req.method !== 'ACK' && req.method !== 'CANCEL') {
    const unsupported = unsupportedOf(h.getAll('Require'), policy);
    if (unsupported.length > 0) return new SipError(420, 'Bad Extension', { unsupported });
  }

  if (req.body.length > 0) {
    const ct = h.get('Content-Type') ?? '';
    const semi = ct.indexOf(';');
    const type = trimWs(semi < 0 ? ct : ct.slice(0, semi)).toLowerCase();
    if (!acceptsType(policy.acceptContentTypes, type)) return new SipError(415, 'Unsupported Media Type');
  }
  return null;
}

function unsupportedOf(required: string[], policy: UasPolicy): string[] {
  return required.filter((tag) => !policy.supportedExtensions.includes(tag));
}

function acceptsType(accepted: string[], type: string): boolean {
  const slash = type.indexOf('/');
  const major = slash < 0 ? type : type.slice(0, slash);
  return accepted.some((a) => {
    const t = a.toLowerCase();
    return t === type || t === '*/*' || t === major + '/*';
  });
}
