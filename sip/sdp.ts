/**
 * SDP (RFC 4566) parsing and formatting, and the offer/answer model (RFC 3264) for one audio stream
 * (G.711, or Opus as RFC 7587 describes it) plus RFC 4733 telephone-event.
 *
 * Session description layout (RFC 4566 §5, order is mandatory):
 *
 *     v=  o=  s=  [i=] [u=] [e=]* [p=]* [c=] [b=]* (t= [r=]*)* [z=] [k=] [a=]*
 *     (m=  [i=] [c=] [b=]* [k=] [a=]*)*
 *
 * The model keeps what a media node acts on as fields (connection, formats, rtpmap, fmtp, direction,
 * ptime) and every other attribute, in order, in `attributes`. `formatSdp` writes a canonical order
 * (rtpmap each followed by its fmtp, then ptime, other attributes, direction), so an SDP written in
 * that order round-trips byte for byte.
 */

export type SdpDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
export type G711Name = 'PCMU' | 'PCMA';
/**
 * Audio codecs we negotiate. `opus` is RFC 7587's `opus/48000/2` at a dynamic payload type; `G722`
 * is 16 kHz wideband on an 8 kHz RTP clock (RFC 3551 §4.5.2) at static payload type 9.
 */
export type CodecName = G711Name | 'G722' | 'opus';

export interface SdpOrigin {
  username: string;
  /** Kept as text: 64-bit NTP-style values do not fit a double. */
  sessionId: string;
  sessionVersion: string;
  netType: string;
  addrType: string;
  address: string;
}

export interface SdpConnection {
  netType: string;
  addrType: string;
  address: string;
  /** IPv4 multicast TTL (`/ttl`). */
  ttl?: number;
  /** Number of multicast addresses (`/n`). */
  count?: number;
}

export interface SdpBandwidth {
  type: string;
  value: number;
}

export interface SdpTiming {
  start: number;
  stop: number;
  /** r= lines, verbatim. */
  repeats: string[];
}

export interface SdpAttribute {
  name: string;
  value?: string;
}

export interface SdpRtpMap {
  payloadType: number;
  encodingName: string;
  clockRate: number;
  /** Channels for audio (`/2`). */
  encodingParameters?: string;
}

export interface SdpFmtp {
  format: string;
  parameters: string;
}

export interface SdpMedia {
  type: string;
  port: number;
  portCount?: number;
  proto: string;
  /** Payload types (as text) for RTP protos, otherwise whatever the proto defines. */
  formats: string[];
  information?: string;
  connection?: SdpConnection;
  bandwidths: SdpBandwidth[];
  key?: string;
  rtpmaps: SdpRtpMap[];
  fmtps: SdpFmtp[];
  direction?: SdpDirection;
  /** Packet time in ms (`a=ptime`). */
  ptime?: number;
  attributes: SdpAttribute[];
}

export interface Sdp {
  version: 0;
  origin: SdpOrigin;
  sessionName: string;
  information?: string;
  uri?: string;
  emails: string[];
  phones: string[];
  connection?: SdpConnection;
  bandwidths: SdpBandwidth[];
  timing: SdpTiming[];
  timeZones?: string;
  key?: string;
  direction?: SdpDirection;
  attributes: SdpAttribute[];
  media: SdpMedia[];
}

export type SdpParseErrorKind =
  | 'syntax' // a line that is not `<letter>=<value>`
  | 'unknown-type' // a type letter RFC 4566 does not define (§5: the description must be ignored)
  | 'misplaced-line' // a known line out of the mandatory order (t= after m=, a second v=, ...)
  | 'missing-version'
  | 'bad-version'
  | 'missing-origin'
  | 'bad-origin'
  | 'missing-session-name'
  | 'missing-connection' // neither the session nor an active media section has c=
  | 'bad-connection'
  | 'bad-bandwidth'
  | 'bad-timing'
  | 'bad-media' // m= with too few fields or a non-numeric RTP payload type
  | 'bad-port'
  | 'bad-attribute'; // malformed rtpmap, fmtp or ptime

export class SdpParseError extends Error {
  override name = 'SdpParseError';
  constructor(
    readonly kind: SdpParseErrorKind,
    /** 1-based line number of the offending line (for `missing-*`, where it was expected). */
    readonly line: number,
    message: string,
  ) {
    super(`SDP line ${line}: ${message}`);
  }
}

/** No offered audio codec is one we support: the UAS answers 488 Not Acceptable Here. */
export class NoCommonCodecError extends Error {
  override name = 'NoCommonCodecError';
  constructor(
    /** The offered audio formats as `NAME/rate` (or `PT n` when unknown), in offer order. */
    readonly offered: string[],
    message = offered.length === 0 ? 'no usable RTP/AVP audio stream offered' : `no common codec in offer: ${offered.join(', ')}`,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

const DIRECTIONS: ReadonlySet<string> = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);
const SESSION_TYPES = new Set('iuepcbtrzka');
const MEDIA_TYPES = new Set('icbka');
const KNOWN_TYPES = new Set('vosiuepcbtrzkam');
const DIGITS = /^\d+$/;
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

function isRtpProto(proto: string): boolean {
  return /^(UDP\/TLS\/)?RTP\/S?AVPF?$/i.test(proto);
}

function parseConnection(value: string, line: number): SdpConnection {
  const parts = value.split(' ');
  const [netType, addrType, spec] = parts;
  if (parts.length !== 3 || !netType || !addrType || !spec) {
    throw new SdpParseError('bad-connection', line, `c= needs "<nettype> <addrtype> <address>", got "${value}"`);
  }
  const [address, ttl, count, ...rest] = spec.split('/');
  if (!address || rest.length > 0 || (ttl !== undefined && !DIGITS.test(ttl)) || (count !== undefined && !DIGITS.test(count))) {
    throw new SdpParseError('bad-connection', line, `bad connection address "${spec}"`);
  }
  const c: SdpConnection = { netType, addrType, address };
  if (ttl !== undefined) c.ttl = Number(ttl);
  if (count !== undefined) c.count = Number(count);
  return c;
}

function parseBandwidth(value: string, line: number): SdpBandwidth {
  const m = /^([^:\s]+):(\d+)$/.exec(value);
  if (!m) throw new SdpParseError('bad-bandwidth', line, `b= needs "<type>:<bandwidth>", got "${value}"`);
  return { type: m[1]!, value: Number(m[2]) };
}

function parseAttribute(value: string): SdpAttribute {
  const colon = value.indexOf(':');
  return colon < 0 ? { name: value } : { name: value.slice(0, colon), value: value.slice(colon + 1) };
}

function parseMediaLine(value: string, line: number): SdpMedia {
  const parts = value.split(' ');
  const [type, portSpec, proto, ...formats] = parts;
  if (!type || !portSpec || !proto || formats.length === 0 || formats.some((f) => f === '') || !TOKEN.test(type)) {
    throw new SdpParseError('bad-media', line, `m= needs "<media> <port> <proto> <fmt> ...", got "${value}"`);
  }
  const pm = /^(\d{1,5})(?:\/(\d+))?$/.exec(portSpec);
  if (!pm || Number(pm[1]) > 65535) throw new SdpParseError('bad-port', line, `bad port "${portSpec}"`);
  if (isRtpProto(proto) && formats.some((f) => !DIGITS.test(f) || Number(f) > 127)) {
    throw new SdpParseError('bad-media', line, `RTP payload types must be 0-127, got "${formats.join(' ')}"`);
  }
  const media: SdpMedia = {
    type,
    port: Number(pm[1]),
    proto,
    formats,
    bandwidths: [],
    rtpmaps: [],
    fmtps: [],
    attributes: [],
  };
  if (pm[2] !== undefined) media.portCount = Number(pm[2]);
  return media;
}

/** Applies a media-level attribute, turning the ones the model knows into fields. */
function applyMediaAttribute(media: SdpMedia, attr: SdpAttribute, line: number): void {
  const v = attr.value;
  switch (attr.name) {
    case 'rtpmap': {
      const m = v === undefined ? null : /^(\d{1,3}) ([^/\s]+)\/(\d+)(?:\/(\S+))?$/.exec(v.trim());
      if (!m || Number(m[1]) > 127) throw new SdpParseError('bad-attribute', line, `bad rtpmap "${v ?? ''}"`);
      const map: SdpRtpMap = { payloadType: Number(m[1]), encodingName: m[2]!, clockRate: Number(m[3]) };
      if (m[4] !== undefined) map.encodingParameters = m[4];
      media.rtpmaps.push(map);
      return;
    }
    case 'fmtp': {
      const m = v === undefined ? null : /^(\S+) (.*)$/.exec(v);
      if (!m) throw new SdpParseError('bad-attribute', line, `bad fmtp "${v ?? ''}"`);
      media.fmtps.push({ format: m[1]!, parameters: m[2]! });
      return;
    }
    case 'ptime': {
      if (v === undefined || !/^\d+(\.\d+)?$/.test(v.trim()) || Number(v) <= 0) {
        throw new SdpParseError('bad-attribute', line, `bad ptime "${v ?? ''}"`);
      }
      media.ptime = Number(v);
      return;
    }
    default:
      if (v === undefined && DIRECTIONS.has(attr.name)) media.direction = attr.name as SdpDirection;
      else media.attributes.push(attr);
  }
}

/**
 * Parses an SDP body. Accepts CRLF or bare LF line ends and ignores blank lines; anything else that
 * is not RFC 4566 is an {@link SdpParseError} naming the line.
 */
export function parseSdp(text: string): Sdp {
  const lines = text.split(/\r?\n/);
  let index = 0; // 0-based index of the next line
  let lineNo = 0; // 1-based number of the current line
  let lastLine = 0; // number of the last non-blank line read

  /** Next non-blank line as [type, value], or undefined at the end. */
  const next = (): [string, string] | undefined => {
    while (index < lines.length) {
      const raw = lines[index++]!;
      lineNo = index;
      if (raw === '') continue;
      lastLine = lineNo;
      const m = /^([a-zA-Z])=(.*)$/.exec(raw);
      if (!m) throw new SdpParseError('syntax', lineNo, `not a "<type>=<value>" line: "${raw.slice(0, 40)}"`);
      if (!KNOWN_TYPES.has(m[1]!)) throw new SdpParseError('unknown-type', lineNo, `unknown line type "${m[1]}="`);
      return [m[1]!, m[2]!];
    }
    lineNo = lastLine + 1; // "expected here": just after the last line
    return undefined;
  };

  const v = next();
  if (!v || v[0] !== 'v') throw new SdpParseError('missing-version', lineNo, 'SDP must start with v=');
  if (v[1].trim() !== '0') throw new SdpParseError('bad-version', lineNo, `unsupported SDP version "${v[1]}"`);

  const o = next();
  if (!o || o[0] !== 'o') throw new SdpParseError('missing-origin', lineNo, 'o= must follow v=');
  const of = o[1].split(' ');
  if (of.length !== 6 || of.some((f) => f === '')) {
    throw new SdpParseError('bad-origin', lineNo, `o= needs 6 fields, got "${o[1]}"`);
  }
  const [username, sessionId, sessionVersion, netType, addrType, address] = of as [string, string, string, string, string, string];
  if (!DIGITS.test(sessionId) || !DIGITS.test(sessionVersion)) {
    throw new SdpParseError('bad-origin', lineNo, `o= session id and version must be numeric, got "${o[1]}"`);
  }

  const s = next();
  if (!s || s[0] !== 's') throw new SdpParseError('missing-session-name', lineNo, 's= must follow o=');

  const sdp: Sdp = {
    version: 0,
    origin: { username, sessionId, sessionVersion, netType, addrType, address },
    sessionName: s[1],
    emails: [],
    phones: [],
    bandwidths: [],
    timing: [],
    attributes: [],
    media: [],
  };
  const mediaLines: number[] = [];
  let media: SdpMedia | undefined;
  // RFC 4566 order within the session part: each letter may only follow those before it.
  const sessionOrder = 'iuepcbtrzka';
  let sessionPos = 0;
  const seenOnce = new Set<string>();

  for (let l = next(); l; l = next()) {
    const [type, value] = l;
    if (type === 'm') {
      media = parseMediaLine(value, lineNo);
      sdp.media.push(media);
      mediaLines.push(lineNo);
      continue;
    }
    if (media) {
      if (!MEDIA_TYPES.has(type)) throw new SdpParseError('misplaced-line', lineNo, `${type}= is not allowed in a media section`);
      switch (type) {
        case 'i': media.information = value; break;
        case 'c': media.connection = parseConnection(value, lineNo); break;
        case 'b': media.bandwidths.push(parseBandwidth(value, lineNo)); break;
        case 'k': media.key = value; break;
        case 'a': applyMediaAttribute(media, parseAttribute(value), lineNo); break;
      }
      continue;
    }
    if (!SESSION_TYPES.has(type)) throw new SdpParseError('misplaced-line', lineNo, `a second ${type}= line`);
    const pos = sessionOrder.indexOf(type);
    // r= may follow t=; t= may repeat; a/b/e/p may repeat.
    if (pos < sessionPos && !(type === 't' && sessionPos === sessionOrder.indexOf('r'))) {
      throw new SdpParseError('misplaced-line', lineNo, `${type}= out of order`);
    }
    if (pos === sessionPos && 'iucz'.includes(type) && seenOnce.has(type)) {
      throw new SdpParseError('misplaced-line', lineNo, `a second session-level ${type}= line`);
    }
    seenOnce.add(type);
    sessionPos = pos;
    switch (type) {
      case 'i': sdp.information = value; break;
      case 'u': sdp.uri = value; break;
      case 'e': sdp.emails.push(value); break;
      case 'p': sdp.phones.push(value); break;
      case 'c': sdp.connection = parseConnection(value, lineNo); break;
      case 'b': sdp.bandwidths.push(parseBandwidth(value, lineNo)); break;
      case 't': {
        const m = /^(\d+) (\d+)$/.exec(value);
        if (!m) throw new SdpParseError('bad-timing', lineNo, `t= needs "<start> <stop>", got "${value}"`);
        sdp.timing.push({ start: Number(m[1]), stop: Number(m[2]), repeats: [] });
        break;
      }
      case 'r': {
        const t = sdp.timing[sdp.timing.length - 1];
        if (!t) throw new SdpParseError('misplaced-line', lineNo, 'r= without t=');
        t.repeats.push(value);
        break;
      }
      case 'z': sdp.timeZones = value; break;
      case 'k': sdp.key = value; break;
      case 'a': {
        const attr = parseAttribute(value);
        if (attr.value === undefined && DIRECTIONS.has(attr.name)) sdp.direction = attr.name as SdpDirection;
        else sdp.attributes.push(attr);
        break;
      }
    }
  }

  if (!sdp.connection) {
    sdp.media.forEach((m, i) => {
      if (!m.connection && m.port !== 0) {
        throw new SdpParseError('missing-connection', mediaLines[i]!, `no c= for the ${m.type} stream nor for the session`);
      }
    });
  }
  return sdp;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function formatConnection(c: SdpConnection): string {
  let addr = c.address;
  if (c.ttl !== undefined) addr += `/${c.ttl}`;
  if (c.count !== undefined) addr += `/${c.count}`;
  return `c=${c.netType} ${c.addrType} ${addr}`;
}

function formatAttribute(a: SdpAttribute): string {
  return a.value === undefined ? `a=${a.name}` : `a=${a.name}:${a.value}`;
}

/** Writes an SDP body with CRLF line ends (including after the last line). */
export function formatSdp(sdp: Sdp): string {
  const out: string[] = [];
  const o = sdp.origin;
  out.push('v=0', `o=${o.username} ${o.sessionId} ${o.sessionVersion} ${o.netType} ${o.addrType} ${o.address}`);
  out.push(`s=${sdp.sessionName}`);
  if (sdp.information !== undefined) out.push(`i=${sdp.information}`);
  if (sdp.uri !== undefined) out.push(`u=${sdp.uri}`);
  for (const e of sdp.emails) out.push(`e=${e}`);
  for (const p of sdp.phones) out.push(`p=${p}`);
  if (sdp.connection) out.push(formatConnection(sdp.connection));
  for (const b of sdp.bandwidths) out.push(`b=${b.type}:${b.value}`);
  for (const t of sdp.timing) {
    out.push(`t=${t.start} ${t.stop}`);
    for (const r of t.repeats) out.push(`r=${r}`);
  }
  if (sdp.timeZones !== undefined) out.push(`z=${sdp.timeZones}`);
  if (sdp.key !== undefined) out.push(`k=${sdp.key}`);
  for (const a of sdp.attributes) out.push(formatAttribute(a));
  if (sdp.direction) out.push(`a=${sdp.direction}`);

  for (const m of sdp.media) {
    const port = m.portCount === undefined ? `${m.port}` : `${m.port}/${m.portCount}`;
    out.push(`m=${m.type} ${port} ${m.proto} ${m.formats.join(' ')}`);
    if (m.information !== undefined) out.push(`i=${m.information}`);
    if (m.connection) out.push(formatConnection(m.connection));
    for (const b of m.bandwidths) out.push(`b=${b.type}:${b.value}`);
    if (m.key !== undefined) out.push(`k=${m.key}`);
    const fmtpDone = new Set<SdpFmtp>();
    for (const r of m.rtpmaps) {
      const params = r.encodingParameters === undefined ? '' : `/${r.encodingParameters}`;
      out.push(`a=rtpmap:${r.payloadType} ${r.encodingName}/${r.clockRate}${params}`);
      for (const f of m.fmtps) {
        if (f.format === String(r.payloadType) && !fmtpDone.has(f)) {
          out.push(`a=fmtp:${f.format} ${f.parameters}`);
          fmtpDone.add(f);
        }
      }
    }
    for (const f of m.fmtps) if (!fmtpDone.has(f)) out.push(`a=fmtp:${f.format} ${f.parameters}`);
    if (m.ptime !== undefined) out.push(`a=ptime:${m.ptime}`);
    for (const a of m.attributes) out.push(formatAttribute(a));
    if (m.direction) out.push(`a=${m.direction}`);
  }
  return out.join('\r\n') + '\r\n';
}

// ---------------------------------------------------------------------------------------------
// Offer/answer (RFC 3264)

/** Static audio payload types (RFC 3551 Table 4) that may appear without an rtpmap. */
const STATIC_AUDIO: ReadonlyMap<number, string> = new Map([
  [0, 'PCMU/8000'],
  [3, 'GSM/8000'],
  [4, 'G723/8000'],
  [5, 'DVI4/8000'],
  [6, 'DVI4/16000'],
  [7, 'LPC/8000'],
  [8, 'PCMA/8000'],
  [9, 'G722/8000'],
  [10, 'L16/44100'],
  [11, 'L16/44100'],
  [12, 'QCELP/8000'],
  [13, 'CN/8000'],
  [14, 'MPA/90000'],
  [15, 'G728/8000'],
  [18, 'G729/8000'],
]);

const STATIC_PT: Readonly<Record<Exclude<CodecName, 'opus'>, number>> = { PCMU: 0, PCMA: 8, G722: 9 };
const DEFAULT_TELEPHONE_EVENT_PT = 101;
/** telephone-event at Opus' 48 kHz clock, offered beside the 8 kHz one when we offer Opus. */
const DEFAULT_TELEPHONE_EVENT_48K_PT = 102;
const DEFAULT_OPUS_PT = 96;
const DEFAULT_PTIME = 20;
/**
 * Our Opus receive parameters (RFC 7587 §6.1): we decode in-band FEC, and mono is all a bot hears.
 * `useinbandfec` and `stereo` describe the receiver, so they are ours to state whatever the offer
 * says; we ask for nothing else (no maxplaybackrate: the caller's encoder picks its bandwidth).
 */
const OPUS_FMTP = 'useinbandfec=1; stereo=0';

/** What we offer or answer with. */
export interface LocalMediaOptions {
  /** Our RTP address (IPv4 or IPv6), written in o= and c=. */
  address: string;
  /** Our RTP port. */
  port: number;
  /** Supported codecs, most preferred first. */
  codecs: CodecName[];
  /** Offer/accept RFC 4733 telephone-event (at 8000, and at 48000 for Opus). */
  telephoneEvent: boolean;
  /** o= session id; default: a random number. Keep it for the whole dialog. */
  sessionId?: string;
  /** o= session version; default 0. Increment on every new offer in a dialog (RFC 3264 §8). */
  sessionVersion?: number;
  /** Our own direction (e.g. 'sendonly' to put the far end on hold); default 'sendrecv'. */
  direction?: SdpDirection;
  /** Packet time we want to receive, in ms; default 20. */
  ptime?: number;
}

/** The negotiated codec. */
export interface NegotiatedCodec {
  name: CodecName;
  /** Its payload type on the wire (the offerer's, for a dynamic one). */
  payloadType: number;
  /** RTP clock: 8000 for G.711; 48000 for Opus whatever the audio bandwidth (RFC 7587 §4.1). */
  clockRate: 8000 | 48000;
  /**
   * The far end's format parameters for this codec (its `a=fmtp`, `key=value` pairs, keys lower
   * case), i.e. what it wants to receive: for Opus `useinbandfec=1` means it decodes our FEC.
   */
  params: Record<string, string>;
}

export interface OfferAnswerResult {
  /** The answer SDP (for `applyAnswer`, the answer that was applied). */
  answer: Sdp;
  /** The codec to send with, and its payload type on the wire. */
  codec: NegotiatedCodec;
  /** The payload type of telephone-event, when both sides support it. */
  telephoneEventPt?: number;
  /** Its RTP clock rate: the codec's when the far end offers that, else 8000. */
  telephoneEventRate?: number;
  /** Where to send RTP (0.0.0.0 when the far end put us on hold the RFC 2543 way). */
  remote: { address: string; port: number };
  /** Where to send RTCP when the far end said (`a=rtcp`, RFC 3605); otherwise its RTP port + 1. */
  remoteRtcp?: { address: string; port: number };
  /**
   * RTP and RTCP share the RTP port (RFC 5761): the offer had `a=rtcp-mux` and the answer says so
   * too. Then `remoteRtcp` does not apply: RTCP goes where RTP goes.
   */
  rtcpMux: boolean;
  /** Our direction for this stream. */
  direction: SdpDirection;
  /** The packet time the far end asked for, in ms, if it did. */
  ptime?: number;
}

/** The encoding name and rate of a payload type: from its rtpmap, or the static table. */
function formatName(media: SdpMedia, pt: number): string | undefined {
  const map = media.rtpmaps.find((r) => r.payloadType === pt);
  if (map) return `${map.encodingName}/${map.clockRate}`;
  return STATIC_AUDIO.get(pt);
}

function findPayloadType(media: SdpMedia, name: string): number | undefined {
  const wanted = name.toUpperCase();
  for (const f of media.formats) {
    const pt = Number(f);
    if (formatName(media, pt)?.toUpperCase() === wanted) return pt;
  }
  return undefined;
}

function offeredNames(media: SdpMedia | undefined): string[] {
  if (!media) return [];
  return media.formats.map((f) => formatName(media, Number(f)) ?? `PT ${f}`);
}

/** Index of the first active RTP/AVP audio stream, or -1. */
function firstAudioIndex(sdp: Sdp): number {
  return sdp.media.findIndex((m) => m.type === 'audio' && m.proto.toUpperCase() === 'RTP/AVP' && m.port !== 0);
}

const SEND = 1;
const RECV = 2;
const DIRECTION_BITS: Readonly<Record<SdpDirection, number>> = { sendrecv: SEND | RECV, sendonly: SEND, recvonly: RECV, inactive: 0 };

function directionFromBits(bits: number): SdpDirection {
  return bits === (SEND | RECV) ? 'sendrecv' : bits === SEND ? 'sendonly' : bits === RECV ? 'recvonly' : 'inactive';
}

/**
 * The direction a stream's author declared, from its point of view. A connection address of 0.0.0.0
 * is the RFC 2543 way of saying "do not send to me" (RFC 3264 §8.4), so it removes `recv`.
 */
function effectiveDirection(sdp: Sdp, media: SdpMedia): number {
  let bits = DIRECTION_BITS[media.direction ?? sdp.direction ?? 'sendrecv'];
  const c = media.connection ?? sdp.connection;
  if (c?.address === '0.0.0.0') bits &= ~RECV;
  return bits;
}

/** Swaps send and recv: the far end's sendonly is our recvonly. */
function reverse(bits: number): number {
  return ((bits & SEND) << 1) | ((bits & RECV) >> 1);
}

function remoteOf(sdp: Sdp, media: SdpMedia): { address: string; port: number } {
  return { address: (media.connection ?? sdp.connection)?.address ?? '0.0.0.0', port: media.port };
}

/**
 * RFC 3605 `a=rtcp:<port> [IN IP4|IP6 <address>]`: the far end's RTCP address when it is not the
 * RTP port + 1 (a NAT or an SBC that maps the two separately). Undefined when absent or unreadable.
 */
export function rtcpOf(sdp: Sdp, media: SdpMedia): { address: string; port: number } | undefined {
  const value = media.attributes.find((a) => a.name === 'rtcp')?.value;
  const m = value ? /^(\d{1,5})(?:\s+IN\s+IP[46]\s+(\S+))?\s*$/.exec(value) : null;
  if (!m) return undefined;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return undefined;
  return { address: m[2] ?? remoteOf(sdp, media).address, port };
}

/** `a=rtcp-mux` (RFC 5761), or `a=rtcp-mux-only` (RFC 8858), which implies it. */
function hasRtcpMux(media: SdpMedia): boolean {
  return media.attributes.some((a) => a.name === 'rtcp-mux' || a.name === 'rtcp-mux-only');
}

function withRtcp(sdp: Sdp, media: SdpMedia): { remoteRtcp?: { address: string; port: number } } {
  const rtcp = rtcpOf(sdp, media);
  return rtcp ? { remoteRtcp: rtcp } : {};
}

function newSession(local: LocalMediaOptions): Sdp {
  const addrType = local.address.includes(':') ? 'IP6' : 'IP4';
  return {
    version: 0,
    origin: {
      username: '-',
      sessionId: local.sessionId ?? String(Math.floor(Math.random() * 2 ** 31)),
      sessionVersion: String(local.sessionVersion ?? 0),
      netType: 'IN',
      addrType,
      address: local.address,
    },
    sessionName: '-',
    connection: { netType: 'IN', addrType, address: local.address },
    emails: [],
    phones: [],
    bandwidths: [],
    timing: [{ start: 0, stop: 0, repeats: [] }],
    attributes: [],
    media: [],
  };
}

interface Format {
  name: CodecName;
  pt: number;
}

interface TelephoneEvent {
  pt: number;
  rate: number;
  fmtp: string;
}

function rtpmapOf(c: Format): SdpRtpMap {
  // RFC 7587 §7: the rtpmap is always opus/48000/2, whatever the channels and bandwidth used.
  return c.name === 'opus' ? { payloadType: c.pt, encodingName: 'opus', clockRate: 48000, encodingParameters: '2' } : { payloadType: c.pt, encodingName: c.name, clockRate: 8000 };
}

function audioSection(local: LocalMediaOptions, codecs: Format[], events: TelephoneEvent[], direction: SdpDirection): SdpMedia {
  const media: SdpMedia = {
    type: 'audio',
    port: local.port,
    proto: 'RTP/AVP',
    formats: codecs.map((c) => String(c.pt)),
    bandwidths: [],
    rtpmaps: codecs.map(rtpmapOf),
    fmtps: codecs.filter((c) => c.name === 'opus').map((c) => ({ format: String(c.pt), parameters: OPUS_FMTP })),
    ptime: local.ptime ?? DEFAULT_PTIME,
    direction,
    attributes: [],
  };
  for (const te of events) {
    media.formats.push(String(te.pt));
    media.rtpmaps.push({ payloadType: te.pt, encodingName: 'telephone-event', clockRate: te.rate });
    media.fmtps.push({ format: String(te.pt), parameters: te.fmtp });
  }
  return media;
}

/**
 * An offer for an outbound call (or a re-INVITE): G.711 at its static PTs, Opus at 96, DTMF at 101
 * (8 kHz) and, when Opus is offered, at 102 (48 kHz, so events share Opus' clock: RFC 4733 §2.1).
 */
export function createOffer(local: LocalMediaOptions): Sdp {
  const sdp = newSession(local);
  const codecs = local.codecs.map((name): Format => ({ name, pt: name === 'opus' ? DEFAULT_OPUS_PT : STATIC_PT[name] }));
  const events: TelephoneEvent[] = [];
  if (local.telephoneEvent) {
    events.push({ pt: DEFAULT_TELEPHONE_EVENT_PT, rate: 8000, fmtp: '0-15' });
    if (local.codecs.includes('opus')) events.push({ pt: DEFAULT_TELEPHONE_EVENT_48K_PT, rate: 48000, fmtp: '0-15' });
  }
  sdp.media.push(audioSection(local, codecs, events, local.direction ?? 'sendrecv'));
  return sdp;
}

/** The RTP clock a codec runs at on the wire, and the rtpmap name/rate it is found under. */
function wireName(name: CodecName): string {
  return name === 'opus' ? 'opus/48000' : `${name}/8000`;
}

/** `a=fmtp` parameters of a payload type as a map (RFC 7587 §6: `key=value` pairs separated by `;`). */
function fmtpParams(media: SdpMedia, pt: number): Record<string, string> {
  const out: Record<string, string> = {};
  const fmtp = media.fmtps.find((f) => f.format === String(pt));
  if (!fmtp) return out;
  for (const part of fmtp.parameters.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim();
  }
  return out;
}

/**
 * The telephone-event format to use beside `codec`: the one at the codec's clock when offered (the
 * events then share the audio's timestamps, RFC 4733 §2.1), else the 8 kHz one.
 */
function pickTelephoneEvent(media: SdpMedia, codec: Format): { pt: number; rate: number } | undefined {
  const rates = codec.name === 'opus' ? [48000, 8000] : [8000];
  for (const rate of rates) {
    const pt = findPayloadType(media, `telephone-event/${rate}`);
    if (pt !== undefined) return { pt, rate };
  }
  return undefined;
}

function negotiated(media: SdpMedia, codec: Format): NegotiatedCodec {
  return { name: codec.name, payloadType: codec.pt, clockRate: codec.name === 'opus' ? 48000 : 8000, params: fmtpParams(media, codec.pt) };
}

/**
 * Answers an offer (RFC 3264 §6): accepts the first RTP/AVP audio stream with the most preferred of
 * our codecs that the offer contains (at the offer's payload type; Opus as `opus/48000`, RFC 7587),
 * echoes telephone-event at the offer's payload type, reverses the offer's direction, and rejects
 * every other stream with port 0. Throws {@link NoCommonCodecError} (→ 488) when nothing matches.
 */
export function answerOffer(offer: Sdp, local: LocalMediaOptions): OfferAnswerResult {
  const index = firstAudioIndex(offer);
  const offered = offer.media[index];
  if (!offered) throw new NoCommonCodecError(offeredNames(offer.media.find((m) => m.type === 'audio')));

  let codec: Format | undefined;
  for (const name of local.codecs) {
    const pt = findPayloadType(offered, wireName(name));
    if (pt !== undefined) {
      codec = { name, pt };
      break;
    }
  }
  if (!codec) throw new NoCommonCodecError(offeredNames(offered));

  const te = local.telephoneEvent ? pickTelephoneEvent(offered, codec) : undefined;
  const teFmtp = offered.fmtps.find((f) => f.format === String(te?.pt))?.parameters ?? '0-15';

  const ours = reverse(effectiveDirection(offer, offered)) & DIRECTION_BITS[local.direction ?? 'sendrecv'];
  const direction = directionFromBits(ours);

  // RFC 5761 §5.1.1: an answerer that takes the offer's `a=rtcp-mux` says so, and from then on
  // sends and expects RTCP on the RTP port. We always can: RTCP is told from RTP by its type byte.
  const rtcpMux = hasRtcpMux(offered);
  const answer = newSession(local);
  answer.media = offer.media.map((m, i) => {
    if (i === index) {
      const audio = audioSection(local, [codec], te ? [{ ...te, fmtp: teFmtp }] : [], direction);
      if (rtcpMux) audio.attributes.push({ name: 'rtcp-mux' });
      return audio;
    }
    // RFC 3264 §6: a rejected stream keeps its media type, proto and formats, with port 0.
    return { type: m.type, port: 0, proto: m.proto, formats: [...m.formats], bandwidths: [], rtpmaps: [], fmtps: [], attributes: [] };
  });

  const result: OfferAnswerResult = {
    answer,
    codec: negotiated(offered, codec),
    remote: remoteOf(offer, offered),
    ...withRtcp(offer, offered),
    rtcpMux,
    direction,
  };
  if (te) {
    result.telephoneEventPt = te.pt;
    result.telephoneEventRate = te.rate;
  }
  if (offered.ptime !== undefined) result.ptime = offered.ptime;
  return result;
}

/**
 * Reads the negotiated stream from the answer to our offer (RFC 3264 §7): the answer's stream at
 * the index of our audio stream, its first format that is a codec we offered, its telephone-event
 * payload type, and our direction. Throws {@link NoCommonCodecError} when the answer rejected the
 * stream or chose nothing we offered.
 */
export function applyAnswer(offer: Sdp, answer: Sdp): OfferAnswerResult {
  const index = firstAudioIndex(offer);
  const ours = offer.media[index];
  const theirs = answer.media[index];
  if (!ours || !theirs || theirs.port === 0 || theirs.type !== 'audio') throw new NoCommonCodecError(offeredNames(theirs));

  let codec: Format | undefined;
  for (const f of theirs.formats) {
    const pt = Number(f);
    const name = formatName(theirs, pt)?.toUpperCase();
    for (const candidate of ['PCMU', 'PCMA', 'G722', 'opus'] as const) {
      if (name === wireName(candidate).toUpperCase() && findPayloadType(ours, wireName(candidate)) !== undefined) {
        codec = { name: candidate, pt };
        break;
      }
    }
    if (codec) break;
  }
  if (!codec) throw new NoCommonCodecError(offeredNames(theirs));

  const offeredTe = findPayloadType(ours, 'telephone-event/8000') !== undefined || findPayloadType(ours, 'telephone-event/48000') !== undefined;
  const te = offeredTe ? pickTelephoneEvent(theirs, codec) : undefined;
  const bits = reverse(effectiveDirection(answer, theirs)) & DIRECTION_BITS[ours.direction ?? offer.direction ?? 'sendrecv'];

  const result: OfferAnswerResult = {
    answer,
    codec: negotiated(theirs, codec),
    remote: remoteOf(answer, theirs),
    ...withRtcp(answer, theirs),
    // Muxed only when both said so (RFC 5761 §5.1.1); we offer it only where the offer carried it.
    rtcpMux: hasRtcpMux(ours) && hasRtcpMux(theirs),
    direction: directionFromBits(bits),
  };
  if (te) {
    result.telephoneEventPt = te.pt;
    result.telephoneEventRate = te.rate;
  }
  if (theirs.ptime !== undefined) result.ptime = theirs.ptime;
  return result;
}
