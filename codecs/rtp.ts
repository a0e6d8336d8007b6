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

/** Parses one RTP packet; the payload and extension data are views of `buf`. */
export function parseRtp(buf: Uint8Array): RtpPacket {
  if (buf.length < RTP_HEADER_SIZE) {
    throw new RtpParseError('truncated', buf.length, `RTP packet of ${buf.length} bytes is shorter than the 12-byte header`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const b0 = view.getUint8(0);
  const b1 = view.getUint8(1);
  const version = b0 >> 6;
  if (version !== 2) throw new RtpParseError('bad-version', 0, `RTP version ${version}, expected 2`);
  const hasPadding = (b0 & 0x20) !== 0;
  const hasExtension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;

  let offset = RTP_HEADER_SIZE;
  let csrc = NO_CSRC;
  if (csrcCount > 0) {
    if (buf.length < offset + csrcCount * 4) {
      throw new RtpParseError('truncated-csrc', buf.length, `RTP packet announces ${csrcCount} CSRCs but ends at byte ${buf.length}`);
    }
    const list: number[] = [];
    for (let i = 0; i < csrcCount; i++, offset += 4) list.push(view.getUint32(offset));
    csrc = list;
  }

  let extension: RtpHeaderExtension | undefined;
  if (hasExtension) {
    if (buf.length < offset + 4) {
      throw new RtpParseError('truncated-extension', buf.length, 'RTP header extension header is truncated');
    }
    const profile = view.getUint16(offset);
    const words = view.getUint16(offset + 2);
    const start = offset + 4;
    const end = start + words * 4;
    if (buf.length < end) {
      throw new RtpParseError('truncated-extension', buf.length, `RTP header extension of ${words} words runs past the packet end`);
    }
    extension = { profile, data: buf.subarray(start, end) };
    offset = end;
  }

  let end = buf.length;
  let paddingLength = 0;
  if (hasPadding) {
    paddingLength = end > offset ? view.getUint8(end - 1) : 0;
    if (paddingLength === 0 || paddingLength > end - offset) {
      throw new RtpParseError('bad-padding', end - 1, `RTP padding count ${paddingLength} does not fit a ${end - offset}-byte payload`);
    }
    end -= paddingLength;
  }

  const packet: RtpPacket = {
    type: 'rtp',
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequenceNumber: view.getUint16(2),
    timestamp: view.getUint32(4),
    ssrc: view.getUint32(8),
    csrc,
    paddingLength,
    payload: buf.subarray(offset, end),
  };
  if (extension) packet.extension = extension;
  return packet;
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
  const view = new DataView(out.buffer, out.byteOffset + offset, size);
  view.setUint8(0, 0x80 | (header.extension ? 0x10 : 0) | csrcCount);
  view.setUint8(1, (header.marker ? 0x80 : 0) | header.payloadType);
  view.setUint16(2, header.sequenceNumber & 0xffff);
  view.setUint32(4, header.timestamp >>> 0);
  view.setUint32(8, header.ssrc >>> 0);
  let pos = RTP_HEADER_SIZE;
  for (let i = 0; i < csrcCount; i++, pos += 4) view.setUint32(pos, (header.csrc?.[i] ?? 0) >>> 0);
  if (header.extension) {
    view.setUint16(pos, header.extension.profile & 0xffff);
    view.setUint16(pos + 2, header.extension.data.length / 4);
    out.set(header.extension.data, offset + pos + 4);
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
