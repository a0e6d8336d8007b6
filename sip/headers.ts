/**
 * The header fields of a SIP message (RFC 3261 §7.3): ordered, case-insensitive, compact forms
 * normalized to canonical names.
 *
 * Comma-separated list headers (RFC 3261 §7.3.1) are stored one element per entry, so a message
 * that carries `Via: a, b` and one that carries two Via lines look the same to every consumer and
 * serialize the same (one line per element, which §7.3.1 declares equivalent).
 */

/** RFC 3261 §7.3.3 compact forms, plus those registered since (RFC 3515, 3892, 3903, 4028, 4474, 3841). */
const COMPACT: Record<string, string> = {
  i: 'call-id',
  f: 'from',
  t: 'to',
  v: 'via',
  m: 'contact',
  l: 'content-length',
  c: 'content-type',
  k: 'supported',
  s: 'subject',
  e: 'content-encoding',
  o: 'event',
  r: 'refer-to',
  b: 'referred-by',
  u: 'allow-events',
  x: 'session-expires',
  y: 'identity',
  a: 'accept-contact',
  j: 'reject-contact',
  d: 'request-disposition',
  n: 'identity-info',
};

const CANONICAL_LIST = [
  'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow',
  'Allow-Events', 'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact',
  'Content-Disposition', 'Content-Encoding', 'Content-Language', 'Content-Length', 'Content-Type',
  'CSeq', 'Date', 'Error-Info', 'Event', 'Expires', 'From', 'History-Info', 'Identity',
  'Identity-Info', 'In-Reply-To', 'Max-Forwards', 'MIME-Version', 'Min-Expires', 'Min-SE',
  'Organization', 'P-Asserted-Identity', 'P-Preferred-Identity', 'Path', 'Priority', 'Privacy',
  'Proxy-Authenticate', 'Proxy-Authorization', 'Proxy-Require', 'RAck', 'Reason', 'Record-Route',
  'Refer-To', 'Referred-By', 'Reject-Contact', 'Replaces', 'Reply-To', 'Request-Disposition',
  'Require', 'Retry-After', 'Route', 'RSeq', 'Server', 'Service-Route', 'Session-Expires',
  'SIP-ETag', 'SIP-If-Match', 'Subject', 'Subscription-State', 'Supported', 'Timestamp', 'To',
  'Unsupported', 'User-Agent', 'Via', 'Warning', 'WWW-Authenticate',
];
const CANONICAL = new Map(CANONICAL_LIST.map((n) => [n.toLowerCase(), n]));

/**
 * Headers whose value is a comma-separated list (RFC 3261 §7.3.1 and the extensions' ABNF).
 * Authorization-type headers are NOT here: their commas separate auth-params of one value.
 */
const LIST_HEADERS = new Set([
  'via', 'contact', 'route', 'record-route', 'allow', 'supported', 'require', 'proxy-require',
  'unsupported', 'accept', 'accept-encoding', 'accept-language', 'content-encoding',
  'content-language', 'allow-events', 'in-reply-to', 'alert-info', 'call-info', 'error-info',
  'warning', 'path', 'service-route', 'reason', 'history-info', 'p-asserted-identity',
  'p-preferred-identity', 'privacy', 'accept-contact', 'reject-contact', 'request-disposition',
]);

/** Lower-case key of a header name, with the compact form expanded. */
export function headerKey(name: string): string {
  const lower = name.toLowerCase();
  return (lower.length === 1 ? COMPACT[lower] : undefined) ?? lower;
}

/** The canonical spelling of a header name; unknown names keep their own spelling. */
export function canonicalName(name: string): string {
  const key = headerKey(name);
  return CANONICAL.get(key) ?? (key === name.toLowerCase() && name.length === 1 ? key : name);
}

export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(headerKey(name));
}

/**
 * Split a header value on top-level commas: commas inside a quoted string (with `\` escapes) or
 * inside `<...>` do not separate elements. Elements are trimmed; empty ones are kept so that
 * callers can reject `a,,b` where the grammar forbids it.
 */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inQuote = false;
    } else if (c === 0x22) inQuote = true;
    else if (c === 0x3c /* < */) inAngle = true;
    else if (c === 0x3e /* > */) inAngle = false;
    else if (c === 0x2c /* , */ && !inAngle) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out;
}

interface Entry {
  name: string; // canonical spelling
  key: string; // lower-case, compact form expanded
  value: string;
}

export class SipHeaders {
  #list: Entry[] = [];

  constructor(init?: Iterable<[string, string]>) {
    if (init) for (const [n, v] of init) this.append(n, v);
  }

  /** Number of entries (list headers count one per element). */
  get size(): number {
    return this.#list.length;
  }

  /** The first value; for list headers, the first element. */
  get(name: string): string | undefined {
    const key = headerKey(name);
    for (const e of this.#list) if (e.key === key) return e.value;
    return undefined;
  }

  getAll(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    for (const e of this.#list) if (e.key === key) out.push(e.value);
    return out;
  }

  has(name: string): boolean {
    const key = headerKey(name);
    return this.#list.some((e) => e.key === key);
  }

  /** Replace every value of `name` with `value`, at the position of the first one (or the end). */
  set(name: string, value: string): void {
    const key = headerKey(name);
    const at = this.#list.findIndex((e) => e.key === key);
    const entries = this.#entries(name, key, value);
    if (at < 0) {
      this.#list.push(...entries);
      return;
    }
    this.#list = this.#list.filter((e, i) => i < at || e.key !== key);
    this.#list.splice(at, 0, ...entries);
  }

  append(name: string, value: string): void {
    this.#list.push(...this.#entries(name, headerKey(name), value));
  }

  /** Insert before the existing values of `name` (a new top Via or Record-Route). */
  prepend(name: string, value: string): void {
    const key = headerKey(name);
    const at = this.#list.findIndex((e) => e.key === key);
    this.#list.splice(at < 0 ? this.#list.length : at, 0, ...this.#entries(name, key, value));
  }

  delete(name: string): void {
    const key = headerKey(name);
    this.#list = this.#list.filter((e) => e.key !== key);
  }

  /** `[canonical name, value]` in wire order. */
  *entries(): IterableIterator<[string, string]> {
    for (const e of this.#list) yield [e.name, e.value];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  clone(): SipHeaders {
    const copy = new SipHeaders();
    copy.#list = this.#list.map((e) => ({ ...e }));
    return copy;
  }

  /**
   * Append without list splitting or name normalisation work beyond what the caller did: the
   * parser's fast path (it has already computed key and canonical name).
   * @internal
   */
  _appendRaw(name: string, key: string, value: string): void {
    this.#list.push({ name, key, value });
  }

  #entries(name: string, key: string, value: string): Entry[] {
    const canonical = CANONICAL.get(key) ?? (name.length === 1 ? key : name);
    if (!LIST_HEADERS.has(key) || (key === 'contact' && value.trim() === '*')) {
      return [{ name: canonical, key, value: value.trim() }];
    }
    const parts = splitList(value).filter((v) => v !== '');
    return parts.map((v) => ({ name: canonical, key, value: v }));
  }
}
