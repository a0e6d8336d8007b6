/**
 * SIP messages: parse and serialize (RFC 3261 §7, §20; strictness per RFC 4475).
 *
 *   message      = start-line *message-header CRLF [ message-body ]
 *   Request-Line = Method SP Request-URI SP SIP-Version CRLF
 *   Status-Line  = SIP-Version SP Status-Code SP Reason-Phrase CRLF
 *
 * The header section is decoded once (Latin-1 when it is pure ASCII, the common and fastest case;
 * UTF-8 when it is valid UTF-8) and scanned line by line; the body stays bytes, as a view into the
 * datagram (no copy — the caller must not reuse the datagram buffer while the message is alive).
 *
 * What the parser rejects (SipParseError) is what RFC 4475 §3.1.2 calls invalid; what it accepts
 * but a UAS must refuse (missing headers, duplicates, 416/420/415/483) is left to validate.ts, so
 * that a server can still build the error response from a parsed message.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { SipParseError } from './errors.js';
import { SipHeaders, canonicalName, headerKey, isListHeader, splitList } from './headers.js';
import {
  MAX_DELTA_SECONDS,
  TOKEN,
  isUint,
  parseCSeq,
  parseNameAddr,
  parseSipDate,
  parseUri,
  parseVia,
  trimWs,
} from './uri.js';

export interface SipRequest {
  kind: 'request';
  method: string;
  uri: string;
  headers: SipHeaders;
  body: Uint8Array;
}

export interface SipResponse {
  kind: 'response';
  status: number;
  reason: string;
  headers: SipHeaders;
  body: Uint8Array;
}

export type SipMessage = SipRequest | SipResponse;

export interface ParseOptions {
  /** Largest header section (start line + headers) accepted, in bytes. Default 65536. */
  maxHeaderBytes?: number;
  /** Largest number of header lines accepted. Default 256. */
  maxHeaders?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 65536;
export const DEFAULT_MAX_HEADERS = 256;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = new Uint8Array(0);

function isTokenString(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return false;
  }
  return true;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decodeHead(buf: Buffer, start: number, end: number): string {
  const head = buf.subarray(start, end);
  if (isAscii(head)) return buf.toString('latin1', start, end);
  // Non-ASCII is legal in quoted strings, reason phrases and some values (UTF-8, RFC 3261 §7.3.1);
  // bytes that are not UTF-8 are kept 1:1 as Latin-1 rather than replaced.
  return isUtf8(head) ? buf.toString('utf8', start, end) : buf.toString('latin1', start, end);
}

/**
 * Parse one SIP message from a UDP datagram (or a message the stream framer cut out).
 *
 * - Leading CRLFs are skipped (RFC 3261 §7.5).
 * - With Content-Length, the body is exactly that many bytes and extra trailing octets are
 *   ignored (RFC 4475 §3.1.1.8); a Content-Length larger than what follows is an error
 *   (§3.1.2.2). Without it — or with conflicting values, which validate.ts answers 400 — the body
 *   is the rest of the datagram (RFC 3261 §18.3).
 *
 * Throws SipParseError, never anything else, for any input.
 */
export function parseMessage(datagram: Uint8Array, opts?: ParseOptions): SipMessage {
  const buf = toBuffer(datagram);
  const maxHeaderBytes = opts?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const maxHeaders = opts?.maxHeaders ?? DEFAULT_MAX_HEADERS;
  let start = 0;
  while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
  if (start >= buf.length) throw new SipParseError('truncated', 'empty message', 0);
  // Search only as far as the bound allows, so an endless header section costs O(bound).
  const searchEnd = Math.min(buf.length, start + maxHeaderBytes + 4);
  const end = buf.subarray(0, searchEnd).indexOf(CRLFCRLF, start);
  if (end < 0) {
    if (buf.length - start > maxHeaderBytes) {
      throw new SipParseError('too-large', `header section over ${maxHeaderBytes} bytes`, 0);
    }
    throw new SipParseError('truncated', 'message ends before the header section does', buf.length - start);
  }
  if (end - start > maxHeaderBytes) {
    throw new SipParseError('too-large', `header section over ${maxHeaderBytes} bytes`, 0);
  }
  // +2: keep the CRLF of the last header line so every line ends in CRLF
  const head = decodeHead(buf, start, end + 2);
  const bodyStart = end + 4;

  const lineEnd = head.indexOf('\r\n');
  const startLine = head.slice(0, lineEnd);
  checkLine(startLine, 0);
  const headers = new SipHeaders();
  const cl = { values: [] as string[] };
  const first: { cseq?: { seq: number; method: string } } = {};
  parseHeaderLines(head, lineEnd + 2, headers, cl, first, maxHeaders);

  let msg: SipMessage;
  if (startLine.length >= 4 && startLine.slice(0, 4).toUpperCase() === 'SIP/') {
    const { status, reason } = parseStatusLine(startLine);
    msg = { kind: 'response', status, reason, headers, body: EMPTY };
  } else {
    const { method, uri } = parseRequestLine(startLine);
    if (first.cseq && first.cseq.method !== method) {
      throw new SipParseError(
        'method-mismatch',
        `CSeq method ${first.cseq.method} differs from request method ${method}`,
      );
    }
    msg = { kind: 'request', method, uri, headers, body: EMPTY };
  }

  const available = buf.length - bodyStart;
  let length = available;
  const v0 = cl.values[0];
  if (v0 !== undefined && cl.values.every((v) => Number(v) === Number(v0))) {
    length = Number(v0);
    if (length > available) {
      throw new SipParseError(
        'content-length',
        `Content-Length ${length} is larger than the ${available} bytes that follow`,
        end + 4 - start,
      );
    }
  }
  msg.body = length === 0 ? EMPTY : buf.subarray(bodyStart, bodyStart + length);
  return msg;
}

/** A header line may not hold a bare CR or LF (only CRLF ends a line). */
function checkLine(line: string, offset: number): void {
  if (line.indexOf('\r') >= 0 || line.indexOf('\n') >= 0) {
    throw new SipParseError('header', 'bare CR or LF in a line', offset);
  }
}

function parseStatusLine(line: string): { status: number; reason: string } {
  const sp1 = line.indexOf(' ');
  if (sp1 < 0) throw new SipParseError('start-line', 'status line without status code', line.length);
  if (line.slice(0, sp1).toUpperCase() !== 'SIP/2.0') {
    throw new SipParseError('version', `unsupported version ${line.slice(0, sp1)}`, 0);
  }
  let sp2 = line.indexOf(' ', sp1 + 1);
  if (sp2 < 0) sp2 = line.length; // tolerate a missing SP before an empty Reason-Phrase
  const code = line.slice(sp1 + 1, sp2);
  // Status-Code = 3DIGIT; RFC 4475 §3.1.2.19 sends 4294967301 to overflow 32-bit readers
  if (code.length !== 3 || !isUint(code, 699) || Number(code) < 100) {
    throw new SipParseError('status-code', `bad status code ${code.slice(0, 16)}`, sp1 + 1);
  }
  return { status: Number(code), reason: line.slice(sp2 + 1) };
}

function parseRequestLine(line: string): { method: string; uri: string } {
  const sp1 = line.indexOf(' ');
  if (sp1 <= 0) throw new SipParseError('start-line', 'request line without Request-URI', 0);
  const method = line.slice(0, sp1);
  if (!isTokenString(method)) throw new SipParseError('start-line', 'method is not a token', 0);
  const sp2 = line.lastIndexOf(' ');
  if (sp2 === sp1) throw new SipParseError('start-line', 'request line without SIP-Version', sp1);
  const version = line.slice(sp2 + 1);
  const uri = line.slice(sp1 + 1, sp2);
  // Exactly one SP between elements, none at the end (RFC 4475 §3.1.2.9, §3.1.2.10)
  if (version === '') throw new SipParseError('start-line', 'trailing SP on the request line', sp2);
  if (uri === '' || uri.charCodeAt(0) === 0x20 || uri.charCodeAt(uri.length - 1) === 0x20) {
    throw new SipParseError('start-line', 'more than one SP between request line elements', sp1);
  }
  if (version.toUpperCase() !== 'SIP/2.0') {
    throw new SipParseError('version', `unsupported version ${version.slice(0, 16)}`, sp2 + 1);
  }
  if (uri.charCodeAt(0) === 0x3c /* < */) {
    throw new SipParseError('uri', 'Request-URI enclosed in <>', sp1 + 1); // RFC 4475 §3.1.2.7
  }
  let parsed;
  try {
    parsed = parseUri(uri);
  } catch (e) {
    if (!(e instanceof SipParseError)) throw e;
    throw new SipParseError('uri', `Request-URI: ${e.message}`, sp1 + 1 + (e.offset ?? 0), { cause: e });
  }
  // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11)
  if (parsed.headers.size > 0) throw new SipParseError('uri', 'headers in the Request-URI', sp1 + 1);
  return { method, uri };
}

function parseHeaderLines(
  head: string,
  pos: number,
  headers: SipHeaders,
  cl: { values: string[] },
  first: { cseq?: { seq: number; method: string } },
  maxHeaders: number,
): void {
  let count = 0;
  let name = '';
  let value = '';
  let offset = 0;
  while (pos < head.length) {
    const eol = head.indexOf('\r\n', pos);
    const line = head.slice(pos, eol);
    checkLine(line, pos);
    const c0 = line.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) {
      // folded continuation: LWS = [*WSP CRLF] 1*WSP, equivalent to one SP (RFC 3261 §7.3.1)
      if (name === '') throw new SipParseError('header', 'continuation line before the first header', pos);
      value = trimWs(value) + ' ' + trimWs(line);
    } else {
      if (name !== '') addHeader(headers, name, value, offset, cl, first);
      if (++count > maxHeaders) throw new SipParseError('too-large', `more than ${maxHeaders} header lines`, pos);
      const colon = line.indexOf(':');
      if (colon < 0) throw new SipParseError('header', 'header line without ":"', pos);
      name = trimWs(line.slice(0, colon));
      if (!isTokenString(name)) throw new SipParseError('header', 'header name is not a token', pos);
      value = line.slice(colon + 1);
      offset = pos;
    }
    pos = eol + 2;
  }
  if (name !== '') addHeader(headers, name, value, offset, cl, first);
}

function addHeader(
  headers: SipHeaders,
  rawName: string,
  rawValue: string,
  offset: number,
  cl: { values: string[] },
  first: { cseq?: { seq: number; method: string } },
): void {
  const key = headerKey(rawName);
  const name = canonicalName(rawName);
  const value = trimWs(rawValue);
  try {
    if (isListHeader(key) && !(key === 'contact' && value === '*')) {
      const parts = splitList(value);
      const strict = STRICT_LIST.has(key);
      for (const part of parts) {
        if (part === '') {
          if (strict) throw new SipParseError('header', 'empty list element');
          continue;
        }
        validateElement(key, part);
        headers._appendRaw(name, key, part);
      }
      return;
    }
    switch (key) {
      case 'content-length':
        // 1*DIGIT; "-999" is RFC 4475 §3.1.2.3. Ten digits already exceed any datagram.
        if (!isUint(value, 0xffffffff)) throw new SipParseError('content-length', 'Content-Length is not a number');
        cl.values.push(value);
        break;
      case 'cseq': {
        const cseq = parseCSeq(value);
        first.cseq ??= cseq;
        break;
      }
      case 'from':
      case 'to':
      case 'refer-to':
      case 'referred-by':
      case 'reply-to': {
        const na = parseNameAddr(value);
        if (na.params.get('tag') === null) throw new SipParseError('header', 'tag without a value');
        break;
      }
      case 'call-id':
        checkCallId(value);
        break;
      case 'max-forwards':
        if (!isUint(value, 255)) throw new SipParseError('header', 'Max-Forwards is not 0..255');
        break;
      case 'expires':
      case 'min-expires':
        if (!isUint(value, MAX_DELTA_SECONDS)) throw new SipParseError('header', `${name} is not 0..2**32-1`);
        break;
      case 'retry-after': {
        let d = 0;
        while (d < value.length && value.charCodeAt(d) >= 0x30 && value.charCodeAt(d) <= 0x39) d++;
        if (!isUint(value.slice(0, d), MAX_DELTA_SECONDS)) {
          throw new SipParseError('header', 'Retry-After is not 0..2**32-1');
        }
        break;
      }
      case 'date':
        parseSipDate(value);
        break;
      case 'content-type':
        checkMediaType(value);
        break;
    }
    headers._appendRaw(name, key, value);
  } catch (e) {
    if (!(e instanceof SipParseError)) throw e;
    throw new SipParseError(e.kind, `${name}: ${e.message}`, offset, { cause: e });
  }
}

/** List headers whose grammar has no empty elements and whose values this parser checks. */
const STRICT_LIST = new Set(['via', 'contact', 'route', 'record-route', 'warning']);

function validateElement(key: string, part: string): void {
  switch (key) {
    case 'via':
      parseVia(part);
      break;
    case 'contact': {
      const na = parseNameAddr(part);
      const expires = na.params.get('expires');
      if (expires !== undefined && (expires === null || !isUint(expires, MAX_DELTA_SECONDS))) {
        throw new SipParseError('header', 'Contact expires is not 0..2**32-1');
      }
      break;
    }
    case 'route':
    case 'record-route':
      // name-addr only: the URI must be enclosed in <>
      if (part.indexOf('<') < 0) throw new SipParseError('header', 'route URI not enclosed in <>');
      parseNameAddr(part);
      break;
    case 'warning':
      // warning-value = warn-code SP warn-agent SP warn-text; warn-code = 3DIGIT (RFC 4475 §3.1.2.5)
      if (!isUint(part.slice(0, 3), 999) || part.charCodeAt(3) !== 0x20) {
        throw new SipParseError('header', 'warn-code is not three digits');
      }
      break;
  }
}

/**
 * callid = word [ "@" word ]. Checked leniently: non-empty, no LWS or control characters. Base64
 * Call-IDs with "=" padding (not a word character) are common from real UAs, and nothing in the
 * stack depends on the finer grammar.
 */
function checkCallId(value: string): void {
  if (value.length === 0) throw new SipParseError('header', 'empty Call-ID');
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) throw new SipParseError('header', 'whitespace or control character in Call-ID', i);
  }
}

/** media-type = m-type SLASH m-subtype *(SEMI m-parameter), checked up to the parameters. */
function checkMediaType(value: string): void {
  const slash = value.indexOf('/');
  if (slash < 0) throw new SipParseError('header', 'media type without "/"');
  let semi = value.indexOf(';', slash);
  if (semi < 0) semi = value.length;
  if (!isTokenString(trimWs(value.slice(0, slash))) || !isTokenString(trimWs(value.slice(slash + 1, semi)))) {
    throw new SipParseError('header', 'media type is not token/token');
  }
}

// ---------------------------------------------------------------------------------------------
// Serialization

/**
 * Serialize with canonical header names and CRLF line ends. Content-Length is always written,
 * last, from the body's length (any Content-Length entries in `headers` are ignored).
 */
export function serializeMessage(msg: SipMessage): Buffer {
  let head =
    msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0\r\n` : `SIP/2.0 ${msg.status} ${msg.reason}\r\n`;
  for (const [name, value] of msg.headers.entries()) {
    if (name === 'Content-Length') continue;
    head += name + ': ' + value + '\r\n';
  }
  head += 'Content-Length: ' + msg.body.length + '\r\n\r\n';
  const headLen = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLen + msg.body.length);
  out.write(head, 0, 'utf8');
  out.set(msg.body, headLen);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Responses

export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  199: 'Early Dialog Terminated',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event',
  491: 'Request Pending',
  493: 'Undecipherable',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  580: 'Precondition Failure',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

export interface CreateResponseOptions {
  /** To tag to add when the request's To has none (RFC 3261 §8.2.6.2). */
  toTag?: string;
  /** Extra headers, appended after the copied ones. */
  headers?: [string, string][];
  body?: Uint8Array;
  contentType?: string;
}

/**
 * Build a response to `req` (RFC 3261 §8.2.6.2): Via (all, in order), From, To (with `toTag`
 * added when it has no tag), Call-ID and CSeq are copied; then `opts.headers`, Content-Type.
 */
export function createResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  opts?: CreateResponseOptions,
): SipResponse {
  const h = new SipHeaders();
  for (const via of req.headers.getAll('Via')) h._appendRaw('Via', 'via', via);
  const from = req.headers.get('From');
  if (from !== undefined) h._appendRaw('From', 'from', from);
  let to = req.headers.get('To');
  if (to !== undefined) {
    if (opts?.toTag !== undefined && !hasTag(to)) to += ';tag=' + opts.toTag;
    h._appendRaw('To', 'to', to);
  }
  const callId = req.headers.get('Call-ID');
  if (callId !== undefined) h._appendRaw('Call-ID', 'call-id', callId);
  const cseq = req.headers.get('CSeq');
  if (cseq !== undefined) h._appendRaw('CSeq', 'cseq', cseq);
  // §12.1.1: a response that can create a dialog carries the request's Record-Route, in order,
  // so the caller's route set includes the proxies that asked to stay in the path.
  if (status > 100 && status < 300 && DIALOG_CREATING.has(req.method)) {
    for (const rr of req.headers.getAll('Record-Route')) h.append('Record-Route', rr);
  }
  for (const [n, v] of opts?.headers ?? []) h.append(n, v);
  if (opts?.contentType !== undefined) h.set('Content-Type', opts.contentType);
  return {
    kind: 'response',
    status,
    reason: reason ?? REASON_PHRASES[status] ?? defaultReason(status),
    headers: h,
    body: opts?.body ?? EMPTY,
  };
}

const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER']);

function defaultReason(status: number): string {
  const cls = Math.floor(status / 100);
  return REASON_PHRASES[cls * 100] ?? 'Unknown';
}

function hasTag(nameAddr: string): boolean {
  try {
    return parseNameAddr(nameAddr).params.has('tag');
  } catch {
    // a To we cannot read: look for the parameter textually rather than add a second tag
    return /;\s*tag\s*=/i.test(nameAddr);
  }
}

const MAGIC_COOKIE = 'z9hg4bk';

/**
 * The branch of the top Via, or undefined when the top Via has none, carries only the RFC 3261
 * magic cookie (RFC 4475 §3.2.1: fall back to RFC 2543 matching), or cannot be read.
 */
export function requestBranch(msg: SipMessage): string | undefined {
  const top = msg.headers.get('Via');
  if (top === undefined) return undefined;
  let branch: string | null | undefined;
  try {
    branch = parseVia(top).params.get('branch');
  } catch (e) {
    if (e instanceof SipParseError) return undefined;
    throw e;
  }
  if (!branch || branch.toLowerCase() === MAGIC_COOKIE) return undefined;
  return branch;
}
