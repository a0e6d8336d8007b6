/**
 * RTP fixed header and demultiplexing from RTCP.
 *
 * RFC 3550 §5.1 https://www.rfc-editor.org/rfc/rfc3550#section-5.1
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                           timestamp                           |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |           synchronization source (SSRC) identifier            |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |            contributing source (CSRC) identifiers             |
 *    |                             ....                              |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Header extension (RFC 3550 §5.3.1), present when X=1, after the CSRCs:
 *
 *    |      defined by profile       |           length              |
 *    |                        header extension (length × 32 bits)    |
 *
 * With P=1 the last payload octet counts the padding octets (itself included) to drop.
 */
import { RtpParseError } from './errors.js';

export { RtpParseError } from './errors.js';

/** Fixed header length in bytes, without CSRCs or extension. */
export const RTP_HEADER_SIZE = 12;

export interface RtpHeaderExtension {
  /** The 16-bit "defined by profile" field (0xBEDE for RFC 8285 one-byte headers). */
  profile: number;
  /** The extension body; its length is a multiple of 4 bytes. */
  data: Uint8Array;
}

/** What the sender controls in a header; padding is never written. */
export interface RtpHeader {
  marker: boolean;
  /** 0–127. */
  payloadType: number;
  /** 0–65535. */
  sequenceNumber: number;
  /** 32-bit unsigned. */
  timestamp: number;
  /** 32-bit unsigned. */
  ssrc: number;
  /** At most 15 contributing sources. */
  csrc?: readonly number[];
  extension?: RtpHeaderExtension;
}

export interface RtpPacket extends RtpHeader {
  readonly type: 'rtp';
  csrc: readonly number[];
  /** Padding octets removed from the end of the payload (0 when P=0). */
  paddingLength: number;
  /** A view into the parsed buffer, padding removed: not a copy. */
  payload: Uint8Array;
}

const NO_CSRC: readonly number[] = Object.freeze([]);

/**
 * A packet's header fields as `parseRtpInto` leaves them: one mutable object reused for every
 * packet of a call, so the receive path allocates nothing but the payload view. CSRCs and the
 * extension are located, not copied (the media path ignores them; `parseRtp` materialises them).
 */
export interface RtpFields {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcCount: number;
  /** Offset of the 4-byte extension header in the buffer, or -1 without X. */
  extensionAt: number;
  paddingLength: number;
  /** A view into the parsed buffer, padding removed: not a copy. */
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export function newRtpFields(): RtpFields {
  return { marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, csrcCount: 0, extensionAt: -1, paddingLength: 0, payload: EMPTY };
}

/**
 * Parses one RTP packet's header into `into` (see RtpFields) and returns it; throws RtpParseError.
 * Reads bytes directly: a DataView per packet is an allocation the 50-packets-a-second-per-call
 * path does not need.
 */
export function parseRtpInto(buf: Uint8Array, into: RtpFields): RtpFields {
  const len = buf.length;
  if (len < RTP_HEADER_SIZE) {
    throw new RtpParseError('truncated', len, `RTP packet of ${len} bytes is shorter than the 12-byte header`);
  }
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  const version = b0 >> 6;
  if (version !== 2) throw new RtpParseError('bad-version', 0, `RTP version ${version}, expected 2`);
  const csrcCount = b0 & 0x0f;

  let offset = RTP_HEADER_SIZE + csrcCount * 4;
  if (len < offset) {
    throw new RtpParseError('truncated-csrc', len, `RTP packet announces ${csrcCount} CSRCs but ends at byte ${len}`);
  }
  let extensionAt = -1;
  if ((b0 & 0x10) !== 0) {
    if (len < offset + 4) throw new RtpParseError('truncated-extension', len, 'RTP header extension header is truncated');
    const words = (buf[offset + 2]! << 8) | buf[offset + 3]!;
    extensionAt = offset;
    offset += 4 + words * 4;
    if (len < offset) {
      throw new RtpParseError('truncated-extension', len, `RTP header extension of ${words} words runs past the packet end`);
    }
  }

  let end = len;
  let paddingLength = 0;
  if ((b0 & 0x20) !== 0) {
    paddingLength = end > offset ? buf[end - 1]! : 0;
    if (paddingLength === 0 || paddingLength > end - offset) {
      throw new RtpParseError('bad-padding', end - 1, `RTP padding count ${paddingLength} does not fit a ${end - offset}-byte payload`);
    }
    end -= paddingLength;
  }

  into.marker = (b1 & 0x80) !== 0;
  into.payloadType = b1 & 0x7f;
  into.sequenceNumber = (buf[2]! << 8) | buf[3]!;
  into.timestamp = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
  into.ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
  into.csrcCount = csrcCount;
  into.extensionAt = extensionAt;
  into.paddingLength = paddingLength;
  into.payload = buf.subarray(offset, end);
  return into;
}

/** Parses one RTP packet; the payload and extension data are views of `buf`. */
export function parseRtp(buf: Uint8Array): RtpPacket {
  const f = parseRtpInto(buf, newRtpFields());
  let csrc = NO_CSRC;
  if (f.csrcCount > 0) {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const list: number[] = [];
    for (let i = 0; i < f.csrcCount; i++) list.push(view.getUint32(RTP_HEADER_SIZE + i * 4));
    csrc = list;
  }
  const packet: RtpPacket = {
    type: 'rtp',
    marker: f.marker,
    payloadType: f.payloadType,
    sequenceNumber: f.sequenceNumber,
    timestamp: f.timestamp,
    ssrc: f.ssrc,
    csrc,
    paddingLength: f.paddingLength,
    payload: f.payload,
  };
  if (f.extensionAt >= 0) {
    const at = f.extensionAt;
    const words = (buf[at + 2]! << 8) | buf[at + 3]!;
    packet.extension = { profile: (buf[at]! << 8) | buf[at + 1]!, data: buf.subarray(at + 4, at + 4 + words * 4) };
  }
  return packet;
}

/** Big-endian 16 and 32 bits (the value taken modulo 2^16 / 2^32, as DataView does). */
function put16(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 8) & 0xff;
  out[at + 1] = v & 0xff;
}

function put32(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 24) & 0xff;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

/** Bytes `serializeRtpInto` writes for this header and payload. */
export function rtpSerializedSize(header: RtpHeader, payloadLength: number): number {
  const csrcCount = header.csrc?.length ?? 0;
  const extensionSize = header.extension ? 4 + header.extension.data.length : 0;
  return RTP_HEADER_SIZE + csrcCount * 4 + extensionSize + payloadLength;
}

/**
 * Writes an RTP packet at `out[offset]` and returns the number of bytes written. Allocates nothing;
 * throws RangeError when `out` is too small or a header field is out of range (a programming error,
 * not bad input).
 */
export function serializeRtpInto(out: Uint8Array, offset: number, header: RtpHeader, payload: Uint8Array): number {
  const csrcCount = header.csrc?.length ?? 0;
  if (csrcCount > 15) throw new RangeError(`RTP: ${csrcCount} CSRCs, at most 15`);
  if (header.payloadType < 0 || header.payloadType > 127 || !Number.isInteger(header.payloadType)) {
    throw new RangeError(`RTP: payload type ${header.payloadType} outside 0-127`);
  }
  if (header.extension && header.extension.data.length % 4 !== 0) {
    throw new RangeError(`RTP: header extension of ${header.extension.data.length} bytes is not a multiple of 4`);
  }
  const size = rtpSerializedSize(header, payload.length);
  if (offset < 0 || offset + size > out.length) {
    throw new RangeError(`RTP: ${size} bytes do not fit at offset ${offset} of a ${out.length}-byte buffer`);
  }
  // Byte writes, not a DataView: this runs for every packet every call sends.
  const o = offset;
  out[o] = 0x80 | (header.extension ? 0x10 : 0) | csrcCount;
  out[o + 1] = (header.marker ? 0x80 : 0) | header.payloadType;
  put16(out, o + 2, header.sequenceNumber);
  put32(out, o + 4, header.timestamp);
  put32(out, o + 8, header.ssrc);
  let pos = RTP_HEADER_SIZE;
  for (let i = 0; i < csrcCount; i++, pos += 4) put32(out, o + pos, header.csrc?.[i] ?? 0);
  if (header.extension) {
    put16(out, o + pos, header.extension.profile);
    put16(out, o + pos + 2, header.extension.data.length / 4);
    out.set(header.extension.data, o + pos + 4);
    pos += 4 + header.extension.data.length;
  }
  out.set(payload, offset + pos);
  return size;
}

/**
 * True when a packet on a muxed RTP/RTCP port is RTCP. RFC 5761 §4: the second octet of an RTCP
 * packet is its packet type; 192–223 is reserved for RTCP (SR 200, RR 201, SDES 202, BYE 203,
 * APP 204, and the feedback/XR types 205–207), which is why RTP payload types 64–95 are not used
 * on a muxed port. https://www.rfc-editor.org/rfc/rfc5761#section-4
 */
export function isRtcp(buf: Uint8Array): boolean {
  if (buf.length < 8) return false;
  const b0 = buf[0]!;
  const pt = buf[1]!;
  return b0 >> 6 === 2 && pt >= 192 && pt <= 223;
}
