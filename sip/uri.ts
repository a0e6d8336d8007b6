/**
 * SIP URIs and the structured header values built on them (RFC 3261 §19.1, §20, §25.1).
 *
 * Every scanner here is a single left-to-right pass over the string with character tables: no
 * regular expression with nested quantifiers ever sees network input, so there is no backtracking
 * to exploit. Values are kept as they appear on the wire (escapes included) so that formatting
 * reproduces them; {@link unescapeUri} decodes when a caller needs the characters.
 */
import { SipParseError } from './errors.js';

export interface SipUri {
  /** Lower-case scheme: `sip`, `sips`, `tel`, or any other. */
  scheme: string;
  /** User part as on the wire (escapes kept); for `tel:` the telephone number. */
  user?: string;
  password?: string;
  /** Host as on the wire, IPv6 references with their brackets; `''` for tel: and unknown schemes. */
  host: string;
  port?: number;
  /** uri-parameters, names lower-cased, values as on the wire; `null` = present without value. */
  params: Map<string, string | null>;
  /** URI headers (`?name=value&...`), as on the wire. */
  headers: Map<string, string>;
  /** The original text, for schemes this module does not parse (formatUri returns it verbatim). */
  raw?: string;
}

export interface NameAddr {
  /** Display name, unquoted and unescaped (`"J \"R\""` → `J "R"`); token forms keep single spaces. */
  displayName?: string;
  uri: SipUri;
  /** Header parameters (tag, expires, q, ...), names lower-cased, quoted values kept with quotes. */
  params: Map<string, string | null>;
}

export interface Via {
  /** Upper-case transport: UDP, TCP, TLS, SCTP, WS, WSS or any other token. */
  transport: string;
  host: string;
  port?: number;
  /** branch, received, rport (null = present without value), maddr, ttl, ... names lower-cased. */
  params: Map<string, string | null>;
}

// ---------------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1)

function table(chars: string, alnum = true): Uint8Array {
  const t = new Uint8Array(128);
  if (alnum) {
    for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
    for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
    for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  }
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

const MARK = "-_.!~*'()";
/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~");
const USER = table(MARK + '&=+$,;?/');
const PASSWORD = table(MARK + '&=+$,');
const PARAM = table(MARK + '[]/:&+$');
const HNV = table(MARK + '[]/?:+$');
const HOST = table('-._'); // '_' is not in RFC 1034 hostnames but appears in the field; harmless
const SCHEME = table('+-.');
/** generic-param values: token / host (IPv6 reference) */
const GEN_VALUE = table("-.!%*_+`'~[]:");
/** Characters an absolute URI of an unknown scheme may carry (RFC 3986 reserved + unreserved + %). */
const ABS_URI = table(MARK + ";/?:@&=+$,%#[]");

function isIn(t: Uint8Array, c: number): boolean {
  return c < 128 && t[c] === 1;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function uriError(message: string, offset?: number): SipParseError {
  return new SipParseError('uri', message, offset);
}

function headerError(message: string, offset?: number): SipParseError {
  return new SipParseError('header', message, offset);
}

/** Check `text[start, end)` against a table, allowing %HH escapes; throws SipParseError('uri'). */
function checkChars(text: string, start: number, end: number, t: Uint8Array, what: string): void {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 /* % */) {
      if (i + 2 >= end) throw uriError(`truncated escape in ${what}`, i);
      if (!isHex(text.charCodeAt(i + 1)) || !isHex(text.charCodeAt(i + 2))) {
        throw uriError(`bad escape in ${what}`, i);
      }
      i += 2;
    } else if (!isIn(t, c)) {
      throw uriError(
        c === 0x20 || c === 0x09 ? `whitespace in ${what}` : `invalid character in ${what}`,
        i,
      );
    }
  }
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function skipWs(text: string, i: number): number {
  while (i < text.length && isWs(text.charCodeAt(i))) i++;
  return i;
}

/** Trim SP/HTAB only (String.prototype.trim would also eat Unicode spaces inside UTF-8 values). */
export function trimWs(text: string): string {
  let s = 0;
  let e = text.length;
  while (s < e && isWs(text.charCodeAt(s))) s++;
  while (e > s && isWs(text.charCodeAt(e - 1))) e--;
  return s === 0 && e === text.length ? text : text.slice(s, e);
}

/** End index of a token starting at i (== i when there is none). */
function scanToken(text: string, i: number): number {
  while (i < text.length && isIn(TOKEN, text.charCodeAt(i))) i++;
  return i;
}

/** Parse a port at text[start, end): 1*DIGIT within 0..65535. */
function parsePort(text: string, start: number, end: number, err: (m: string, o: number) => SipParseError): number {
  if (end === start || end - start > 5) throw err('bad port', start);
  let port = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw err('bad port', i);
    port = port * 10 + (c - 0x30);
  }
  if (port > 65535) throw err('port out of range', start);
  return port;
}

// ---------------------------------------------------------------------------------------------
// URIs

/**
 * Parse a URI. `sip:`/`sips:` are checked against RFC 3261 §25.1 (no LWS, valid escapes, a host,
 * a port within range); `tel:` is split into number and parameters; any other scheme must look
 * like an absolute URI and is returned with its text in `raw`. Throws SipParseError('uri').
 */
export function parseUri(text: string): SipUri {
  const colon = text.indexOf(':');
  if (colon <= 0) throw uriError('missing scheme', 0);
  const c0 = text.charCodeAt(0);
  if (!((c0 >= 0x41 && c0 <= 0x5a) || (c0 >= 0x61 && c0 <= 0x7a))) throw uriError('bad scheme', 0);
  for (let i = 1; i < colon; i++) {
    if (!isIn(SCHEME, text.charCodeAt(i))) throw uriError('bad scheme', i);
  }
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(text, scheme, colon + 1);
  if (scheme === 'tel') return parseTelUri(text, colon + 1);
  if (colon + 1 >= text.length) throw uriError('empty URI after scheme', colon);
  checkChars(text, colon + 1, text.length, ABS_URI, 'URI');
  return { scheme, host: '', params: new Map(), headers: new Map(), raw: text };
}

function parseSipUri(text: string, scheme: string, pos: number): SipUri {
  const len = text.length;
  const uri: SipUri = { scheme, host: '', params: new Map(), headers: new Map() };
  // userinfo: no '@' may appear unescaped anywhere else in a SIP URI (params and headers exclude
  // it), so the first '@' ends the userinfo even when the user part holds '?', ';' or '/'
  // (RFC 4475 §3.1.1.2, §3.1.1.9).
  const at = text.indexOf('@', pos);
  if (at >= 0) {
    if (text.indexOf('@', at + 1) >= 0) throw uriError("unescaped '@'", at);
    let pc = text.indexOf(':', pos);
    if (pc > at) pc = -1;
    const userEnd = pc >= 0 ? pc : at;
    if (userEnd === pos) throw uriError('empty user part', pos);
    checkChars(text, pos, userEnd, USER, 'user part');
    uri.user = text.slice(pos, userEnd);
    if (pc >= 0) {
      checkChars(text, pc + 1, at, PASSWORD, 'password');
      uri.password = text.slice(pc + 1, at);
    }
    pos = at + 1;
  }
  // host
  const hostStart = pos;
  if (text.charCodeAt(pos) === 0x5b /* [ */) {
    const close = text.indexOf(']', pos);
    if (close < 0) throw uriError('unterminated IPv6 reference', pos);
    for (let i = pos + 1; i < close; i++) {
      const c = text.charCodeAt(i);
      if (!(isHex(c) || c === 0x3a || c === 0x2e)) throw uriError('bad IPv6 reference', i);
    }
    pos = close + 1;
  } else {
    while (pos < len && isIn(HOST, text.charCodeAt(pos))) pos++;
  }
  if (pos === hostStart) throw uriError('missing host', pos);
  uri.host = text.slice(hostStart, pos);
  if (pos < len && text.charCodeAt(pos) === 0x3a /* : */) {
    const ps = pos + 1;
    pos = ps;
    while (pos < len && text.charCodeAt(pos) !== 0x3b && text.charCodeAt(pos) !== 0x3f) pos++;
    uri.port = parsePort(text, ps, pos, uriError);
  }
  // uri-parameters
  while (pos < len && text.charCodeAt(pos) === 0x3b /* ; */) {
    const ns = pos + 1;
    let i = ns;
    while (i < len) {
      const c = text.charCodeAt(i);
      if (c === 0x3d || c === 0x3b || c === 0x3f) break;
      i++;
    }
    if (i === ns) throw uriError('empty URI parameter', ns);
    checkChars(text, ns, i, PARAM, 'URI parameter');
    const name = text.slice(ns, i).toLowerCase();
    let value: string | null = null;
    if (i < len && text.charCodeAt(i) === 0x3d /* = */) {
      const vs = i + 1;
      i = vs;
      while (i < len && text.charCodeAt(i) !== 0x3b && text.charCodeAt(i) !== 0x3f) i++;
      if (i === vs) throw uriError('empty URI parameter value', vs);
      checkChars(text, vs, i, PARAM, 'URI parameter');
      value = text.slice(vs, i);
    }
    uri.params.set(name, value);
    pos = i;
  }
  // headers
  if (pos < len && text.charCodeAt(pos) === 0x3f /* ? */) {
    pos++;
    for (;;) {
      let amp = text.indexOf('&', pos);
      if (amp < 0) amp = len;
      const eq = text.indexOf('=', pos);
      if (eq < 0 || eq > amp || eq === pos) throw uriError('bad URI header', pos);
      checkChars(text, pos, eq, HNV, 'URI header');
      checkChars(text, eq + 1, amp, HNV, 'URI header');
      uri.headers.set(text.slice(pos, eq), text.slice(eq + 1, amp));
      if (amp === len) break;
      pos = amp + 1;
    }
    pos = len;
  }
  if (pos < len) {
    const c = text.charCodeAt(pos);
    throw uriError(isWs(c) ? 'embedded whitespace' : 'unexpected character', pos);
  }
  return uri;
}

/** RFC 3966, minimally: `tel:number;param=value...`. */
function parseTelUri(text: string, pos: number): SipUri {
  const uri: SipUri = { scheme: 'tel', host: '', params: new Map(), headers: new Map() };
  let semi = text.indexOf(';', pos);
  if (semi < 0) semi = text.length;
  if (semi === pos) throw uriError('empty telephone number', pos);
  checkChars(text, pos, semi, PARAM, 'telephone number');
  uri.user = text.slice(pos, semi);
  pos = semi;
  while (pos < text.length) {
    const ns = pos + 1;
    let end = text.indexOf(';', ns);
    if (end < 0) end = text.length;
    const eq = text.indexOf('=', ns);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    if (nameEnd === ns) throw uriError('empty tel parameter', ns);
    checkChars(text, ns, nameEnd, PARAM, 'tel parameter');
    if (nameEnd < end) checkChars(text, nameEnd + 1, end, PARAM, 'tel parameter');
    uri.params.set(text.slice(ns, nameEnd).toLowerCase(), nameEnd < end ? text.slice(nameEnd + 1, end) : null);
    pos = end;
  }
  return uri;
}

export function formatUri(uri: SipUri): string {
  const { scheme } = uri;
  if (uri.raw !== undefined && scheme !== 'sip' && scheme !== 'sips' && scheme !== 'tel') return uri.raw;
  let s = scheme + ':';
  if (scheme === 'tel') {
    s += uri.user ?? '';
  } else {
    if (uri.user !== undefined) s += uri.user + (uri.password !== undefined ? ':' + uri.password : '') + '@';
    s += uri.host;
    if (uri.port !== undefined) s += ':' + uri.port;
  }
  for (const [k, v] of uri.params) s += v === null ? ';' + k : ';' + k + '=' + v;
  let first = true;
  for (const [k, v] of uri.headers) {
    s += (first ? '?' : '&') + k + '=' + v;
    first = false;
  }
  return s;
}

/**
 * Decode %HH escapes (the octets are read as UTF-8, falling back to Latin-1 when they are not).
 * `unescapeUri('I%20have%20spaces') === 'I have spaces'`. Throws SipParseError('uri') on a bad escape.
 */
export function unescapeUri(text: string): string {
  if (text.indexOf('%') < 0) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25) {
      const h = text.charCodeAt(i + 1);
      const l = text.charCodeAt(i + 2);
      if (!isHex(h) || !isHex(l)) throw uriError('bad escape', i);
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(text[i] ?? '', 'utf8')) bytes.push(b);
    }
  }
  const buf = Buffer.from(bytes);
  const utf8 = buf.toString('utf8');
  return utf8.includes('\ufffd') ? buf.toString('latin1') : utf8;
}

// ---------------------------------------------------------------------------------------------
// Quoted strings and generic parameters

/**
 * Read a quoted-string starting at text[i] === '"'. Returns the index after the closing quote and
 * the unescaped content. Throws SipParseError('quoted-string') when it is not terminated.
 */
export function readQuoted(text: string, i: number): { end: number; value: string } {
  let value = '';
  let runStart = i + 1;
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x22) return { end: j + 1, value: value + text.slice(runStart, j) };
    if (c === 0x5c /* \ */) {
      if (j + 1 >= text.length) break;
      const n = text.charCodeAt(j + 1);
      if (n === 0x0a || n === 0x0d || n > 0x7f) throw new SipParseError('quoted-string', 'bad quoted-pair', j);
      value += text.slice(runStart, j);
      runStart = j + 1;
      j++;
    } else if (c < 0x20 && c !== 0x09) {
      throw new SipParseError('quoted-string', 'control character in quoted string', j);
    } else if (c === 0x7f) {
      throw new SipParseError('quoted-string', 'control character in quoted string', j);
    }
  }
  throw new SipParseError('quoted-string', 'unterminated quoted string', i);
}

/** Quote a display name or parameter value for the wire. */
export function quote(value: string): string {
  let s = '"';
  for (const ch of value) s += ch === '"' || ch === '\\' ? '\\' + ch : ch;
  return s + '"';
}

/**
 * Parse `*( SWS ";" SWS name [ SWS "=" SWS value ] ) SWS` from text[pos]; value is a token, a host
 * (IPv6 reference allowed) or a quoted-string (kept with its quotes). Throws SipParseError('header').
 */
export function parseParams(text: string, pos: number): Map<string, string | null> {
  const params = new Map<string, string | null>();
  const len = text.length;
  let i = pos;
  for (;;) {
    i = skipWs(text, i);
    if (i >= len) return params;
    if (text.charCodeAt(i) !== 0x3b) throw headerError('expected ";" before parameter', i);
    i = skipWs(text, i + 1);
    const ns = i;
    i = scanToken(text, i);
    if (i === ns) throw headerError('empty parameter name', ns);
    const name = text.slice(ns, i).toLowerCase();
    let value: string | null = null;
    const k = skipWs(text, i);
    if (k < len && text.charCodeAt(k) === 0x3d /* = */) {
      i = skipWs(text, k + 1);
      if (text.charCodeAt(i) === 0x22) {
        const q = readQuoted(text, i);
        value = text.slice(i, q.end);
        i = q.end;
      } else {
        const vs = i;
        while (i < len && isIn(GEN_VALUE, text.charCodeAt(i))) i++;
        if (i === vs) throw headerError(`empty value for parameter ${name}`, vs);
        value = text.slice(vs, i);
      }
    }
    params.set(name, value);
  }
}

function formatParams(params: Map<string, string | null>): string {
  let s = '';
  for (const [k, v] of params) s += v === null ? ';' + k : ';' + k + '=' + v;
  return s;
}

// ---------------------------------------------------------------------------------------------
// name-addr / addr-spec (From, To, Contact, Route, Record-Route, Refer-To, ...)

/**
 * Parse `[display-name] <URI> *(;param)` or `addr-spec *(;param)`. In the addr-spec form the
 * parameters after the URI are header parameters, never URI parameters (RFC 3261 §20.10), and
 * the URI may not hold ',' or '?' (those force the name-addr form, RFC 4475 §3.1.2.13).
 */
export function parseNameAddr(text: string): NameAddr {
  const len = text.length;
  let i = skipWs(text, 0);
  let displayName: string | undefined;
  let uriText: string;
  let paramStart: number;
  let lt: number;
  if (text.charCodeAt(i) === 0x22) {
    const q = readQuoted(text, i);
    displayName = q.value;
    lt = skipWs(text, q.end);
    if (text.charCodeAt(lt) !== 0x3c) throw headerError('expected "<" after display name', lt);
  } else {
    lt = text.indexOf('<', i);
    if (lt >= 0) {
      // display-name = *(token LWS): tokens separated by whitespace only
      let name = '';
      let j = i;
      while (j < lt) {
        const ts = j;
        j = scanToken(text, j);
        if (j === ts) throw headerError('invalid character in display name', j);
        name += (name ? ' ' : '') + text.slice(ts, j);
        j = skipWs(text, j);
      }
      if (name) displayName = name;
    }
  }
  if (lt >= 0) {
    const gt = text.indexOf('>', lt + 1);
    if (gt < 0) throw headerError('unterminated "<"', lt);
    uriText = text.slice(lt + 1, gt);
    paramStart = gt + 1;
  } else {
    let end = i;
    while (end < len) {
      const c = text.charCodeAt(end);
      if (c === 0x3b || isWs(c)) break;
      if (c === 0x2c || c === 0x3f) throw uriError(`"${text[end]}" in a URI outside <>`, end);
      end++;
    }
    if (end === i) throw headerError('missing URI', i);
    uriText = text.slice(i, end);
    paramStart = end;
  }
  const na: NameAddr = { uri: parseUri(uriText), params: parseParams(text, paramStart) };
  if (displayName !== undefined) na.displayName = displayName;
  return na;
}

export function formatNameAddr(na: NameAddr): string {
  const name = na.displayName !== undefined && na.displayName !== '' ? quote(na.displayName) + ' ' : '';
  return name + '<' + formatUri(na.uri) + '>' + formatParams(na.params);
}

// ---------------------------------------------------------------------------------------------
// Via (RFC 3261 §20.42)

/**
 * `SIP / 2.0 / UDP host[:port] *(;param)` with LWS allowed around "/", ":", ";" and "=".
 * Throws SipParseError('header').
 */
export function parseVia(text: string): Via {
  const len = text.length;
  let i = skipWs(text, 0);
  let transport = '';
  for (let part = 0; part < 3; part++) {
    if (part > 0) {
      i = skipWs(text, i);
      if (text.charCodeAt(i) !== 0x2f /* / */) throw headerError('bad Via sent-protocol', i);
      i = skipWs(text, i + 1);
    }
    const ts = i;
    i = scanToken(text, i);
    if (i === ts) throw headerError('bad Via sent-protocol', ts);
    if (part === 2) transport = text.slice(ts, i).toUpperCase();
  }
  const ws = i;
  i = skipWs(text, i);
  if (i === ws) throw headerError('missing whitespace before Via sent-by', i);
  const hs = i;
  if (text.charCodeAt(i) === 0x5b) {
    const close = text.indexOf(']', i);
    if (close < 0) throw headerError('unterminated IPv6 reference', i);
    for (let j = i + 1; j < close; j++) {
      const c = text.charCodeAt(j);
      if (!(isHex(c) || c === 0x3a || c === 0x2e)) throw headerError('bad IPv6 reference', j);
    }
    i = close + 1;
  } else {
    while (i < len && isIn(HOST, text.charCodeAt(i))) i++;
  }
  if (i === hs) throw headerError('missing Via sent-by host', i);
  const via: Via = { transport, host: text.slice(hs, i), params: new Map() };
  const k = skipWs(text, i);
  if (k < len && text.charCodeAt(k) === 0x3a) {
    const ps = skipWs(text, k + 1);
    let pe = ps;
    while (pe < len && text.charCodeAt(pe) >= 0x30 && text.charCodeAt(pe) <= 0x39) pe++;
    via.port = parsePort(text, ps, pe, headerError);
    i = pe;
  }
  via.params = parseParams(text, i);
  for (const name of ['branch', 'received', 'maddr', 'ttl']) {
    if (via.params.get(name) === null) throw headerError(`Via ${name} without a value`);
  }
  const ttl = via.params.get('ttl');
  if (ttl != null && !isUint(ttl, 255)) throw headerError('Via ttl out of range');
  return via;
}

export function formatVia(via: Via): string {
  const port = via.port !== undefined ? ':' + via.port : '';
  return `SIP/2.0/${via.transport} ${via.host}${port}${formatParams(via.params)}`;
}

// ---------------------------------------------------------------------------------------------
// Scalars

/** True when text is 1*DIGIT with a value <= max (max below 2**53). */
export function isUint(text: string, max: number): boolean {
  if (text.length === 0 || text.length > 16) return false;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    n = n * 10 + (c - 0x30);
  }
  return n <= max;
}

/** delta-seconds: 0 .. 2**32-1 (RFC 3261 §20.19, RFC 4475 §3.1.2.4). */
export const MAX_DELTA_SECONDS = 0xffffffff;

/**
 * `CSeq: 1*DIGIT LWS Method`; the number must be below 2**31 (RFC 3261 §8.1.1.5).
 * Throws SipParseError('cseq').
 */
export function parseCSeq(text: string): { seq: number; method: string } {
  let i = skipWs(text, 0);
  const ds = i;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
  const digits = text.slice(ds, i);
  if (!isUint(digits, 0x7fffffff)) throw new SipParseError('cseq', 'CSeq number missing or not below 2**31', ds);
  const ws = i;
  i = skipWs(text, i);
  if (i === ws) throw new SipParseError('cseq', 'missing whitespace after CSeq number', i);
  const ms = i;
  i = scanToken(text, i);
  if (i === ms || skipWs(text, i) !== text.length) throw new SipParseError('cseq', 'bad CSeq method', ms);
  return { seq: Number(digits), method: text.slice(ms, i) };
}

const DATE_RE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d\d):(\d\d):(\d\d) GMT$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * `Date: rfc1123-date`, which SIP restricts to GMT (RFC 3261 §20.17); `EST` and friends are
 * rejected (RFC 4475 §3.1.2.12). The regex is anchored and free of nested quantifiers.
 * Throws SipParseError('header').
 */
export function parseSipDate(text: string): Date {
  const m = DATE_RE.exec(trimWs(text));
  if (!m) throw headerError('Date is not an RFC 1123 date in GMT');
  const [, , dd, mon, yyyy, hh, mi, ss] = m as unknown as string[];
  const t = Date.UTC(Number(yyyy), MONTHS.indexOf(mon ?? ''), Number(dd), Number(hh), Number(mi), Number(ss));
  const d = new Date(t);
  if (d.getUTCDate() !== Number(dd) || Number(hh) > 23 || Number(mi) > 59 || Number(ss) > 60) {
    throw headerError('Date out of range');
  }
  return d;
}
