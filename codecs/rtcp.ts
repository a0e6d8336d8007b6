/**
 * RTCP sender and receiver reports (RFC 3550 §6.4), SDES CNAME (§6.5) and BYE (§6.6): what a
 * media endpoint needs to tell its peer how its stream arrives and to learn how ours does.
 *
 *     0                   1                   2                   3
 *    |V=2|P|    RC   |   PT=SR=200   |             length            |
 *    |                         SSRC of sender                        |
 *    |              NTP timestamp, most significant word             |  sender info
 *    |             NTP timestamp, least significant word             |  (SR only)
 *    |                         RTP timestamp                         |
 *    |                     sender's packet count                     |
 *    |                      sender's octet count                     |
 *    |                 SSRC_1 (SSRC of first source)                 |  report block,
 *    | fraction lost |       cumulative number of packets lost       |  RC of them
 *    |           extended highest sequence number received           |
 *    |                      interarrival jitter                      |
 *    |                         last SR (LSR)                         |
 *    |                   delay since last SR (DLSR)                  |
 *
 * `length` is the packet's size in 32-bit words minus one; a compound packet is several of these
 * back to back. https://www.rfc-editor.org/rfc/rfc3550#section-6.4
 */
import { RtcpParseError } from './errors.js';

export { RtcpParseError } from './errors.js';

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;

export interface ReportBlock {
  /** The source this block reports on. */
  ssrc: number;
  /** Fraction lost since the previous report, as a fixed-point fraction ×256 (0–255). */
  fractionLost: number;
  /** Cumulative packets lost (signed 24-bit: duplicates can make it negative). */
  cumulativeLost: number;
  extendedHighestSeq: number;
  /** Interarrival jitter, in timestamp units of the reported stream. */
  jitter: number;
  /** Middle 32 bits of the NTP timestamp of the last SR received from that source, 0 if none. */
  lastSr: number;
  /** Delay since that SR until this report, in 1/65536 s. */
  delaySinceLastSr: number;
}

export interface SenderInfo {
  /** NTP timestamp: seconds since 1900 and the fraction (×2^32). */
  ntpSeconds: number;
  ntpFraction: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

export type RtcpPacket =
  | { type: 'sr'; ssrc: number; sender: SenderInfo; reports: ReportBlock[] }
  | { type: 'rr'; ssrc: number; reports: ReportBlock[] }
  | { type: 'bye'; ssrcs: number[] }
  | { type: 'other'; packetType: number };

const REPORT_BLOCK_SIZE = 24;

/** Reads every packet of a compound RTCP packet; a malformed one is an RtcpParseError naming where. */
export function parseRtcp(buf: Uint8Array): RtcpPacket[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: RtcpPacket[] = [];
  let off = 0;
  if (buf.length < 4) throw new RtcpParseError('truncated', 0, `RTCP packet of ${buf.length} bytes, shorter than its 4-byte header`);
  while (off < buf.length) {
    if (buf.length - off < 4) throw new RtcpParseError('truncated', off, `${buf.length - off} bytes left after the last RTCP packet, not a header`);
    const b0 = buf[off]!;
    if (b0 >> 6 !== 2) throw new RtcpParseError('bad-version', off, `RTCP version ${b0 >> 6}, expected 2`);
    const count = b0 & 0x1f;
    const pt = buf[off + 1]!;
    const size = (view.getUint16(off + 2) + 1) * 4;
    if (off + size > buf.length) throw new RtcpParseError('truncated', off, `RTCP packet type ${pt} says ${size} bytes, ${buf.length - off} left`);
    const end = off + size;
    if (pt === RTCP_SR || pt === RTCP_RR) {
      const first = off + (pt === RTCP_SR ? 28 : 8);
      if (first + count * REPORT_BLOCK_SIZE > end) {
        throw new RtcpParseError('bad-length', off, `RTCP ${pt === RTCP_SR ? 'SR' : 'RR'} with ${count} report blocks does not fit its ${size} bytes`);
      }
      const ssrc = view.getUint32(off + 4);
      const reports: ReportBlock[] = [];
      for (let i = 0; i < count; i++) reports.push(readBlock(view, first + i * REPORT_BLOCK_SIZE));
      if (pt === RTCP_SR) {
        const sender = {
          ntpSeconds: view.getUint32(off + 8),
          ntpFraction: view.getUint32(off + 12),
          rtpTimestamp: view.getUint32(off + 16),
          packetCount: view.getUint32(off + 20),
          octetCount: view.getUint32(off + 24),
        };
        out.push({ type: 'sr', ssrc, sender, reports });
      } else {
        out.push({ type: 'rr', ssrc, reports });
      }
    } else if (pt === RTCP_BYE) {
      if (off + 4 + count * 4 > end) throw new RtcpParseError('bad-length', off, `RTCP BYE with ${count} sources does not fit its ${size} bytes`);
      out.push({ type: 'bye', ssrcs: Array.from({ length: count }, (_, i) => view.getUint32(off + 4 + i * 4)) });
    } else {
      out.push({ type: 'other', packetType: pt });
    }
    off = end;
  }
  return out;
}

function readBlock(view: DataView, at: number): ReportBlock {
  const lost = view.getUint32(at + 4);
  const cumulative = lost & 0xffffff;
  return {
    ssrc: view.getUint32(at),
    fractionLost: lost >>> 24,
    cumulativeLost: cumulative & 0x800000 ? cumulative - 0x1000000 : cumulative,
    extendedHighestSeq: view.getUint32(at + 8),
    jitter: view.getUint32(at + 12),
    lastSr: view.getUint32(at + 16),
    delaySinceLastSr: view.getUint32(at + 20),
  };
}

function writeBlock(view: DataView, at: number, b: ReportBlock): void {
  view.setUint32(at, b.ssrc >>> 0);
  const lost = Math.max(-0x800000, Math.min(0x7fffff, Math.trunc(b.cumulativeLost)));
  view.setUint32(at + 4, ((Math.min(255, Math.max(0, b.fractionLost)) << 24) | (lost & 0xffffff)) >>> 0);
  view.setUint32(at + 8, b.extendedHighestSeq >>> 0);
  view.setUint32(at + 12, Math.min(0xffffffff, Math.max(0, Math.round(b.jitter))) >>> 0);
  view.setUint32(at + 16, b.lastSr >>> 0);
  view.setUint32(at + 20, b.delaySinceLastSr >>> 0);
}

/** What a compound report holds (buildRtcpReport, buildRtcpReportInto). */
export interface ReportContent {
  ssrc: number;
  /** Sender info: an SR (we send); without it an RR. */
  sender?: SenderInfo | undefined;
  /** Up to 31 report blocks (more are left out). */
  reports: readonly ReportBlock[];
  /** The CNAME's bytes (UTF-8; up to 255 are used): encodeCname. */
  cname: Uint8Array;
  /** End with an RTCP BYE: the stream is over. */
  bye?: boolean;
}

/** A CNAME as SDES carries it: UTF-8, at most 255 bytes. */
export function encodeCname(cname: string): Uint8Array {
  return new TextEncoder().encode(cname).subarray(0, 255);
}

/** The bytes of the compound report buildRtcpReportInto writes for `content`. */
export function rtcpReportSize(content: { sender?: unknown; reports: { length: number }; cname: { length: number }; bye?: boolean }): number {
  const reportSize = (content.sender ? 28 : 8) + Math.min(31, content.reports.length) * REPORT_BLOCK_SIZE;
  // SDES: header, SSRC, CNAME item (type, length, text), a null item ending the chunk, padded to 4.
  const sdesSize = 8 + Math.ceil((2 + Math.min(255, content.cname.length) + 1) / 4) * 4;
  return reportSize + sdesSize + (content.bye ? 8 : 0);
}

/**
 * A compound report as RFC 3550 §6.1 wants it: an SR (with sender info, since we send) or an RR,
 * then SDES with our CNAME, then, when the stream ends, a BYE. Returns the bytes.
 */
export function buildRtcpReport(opts: { ssrc: number; sender?: SenderInfo; reports: ReportBlock[]; cname: string; bye?: boolean }): Uint8Array {
  const content: ReportContent = { ...opts, cname: encodeCname(opts.cname) };
  const buf = new Uint8Array(rtcpReportSize(content));
  buildRtcpReportInto(new DataView(buf.buffer), content);
  return buf;
}

/**
 * buildRtcpReport into `view` (rtcpReportSize(content) bytes from its start at least): its length.
 * Allocates nothing: an RTCP session sends a report per call about once a second, and at a
 * thousand calls building each afresh was the largest source of garbage that reached the node's
 * old generation (docs/benchmarks/capacity.md, "Measured: catch-up in the lane").
 */
export function buildRtcpReportInto(view: DataView, content: ReportContent): number {
  const { cname, sender, reports } = content;
  const blocks = Math.min(31, reports.length);
  const cnameLen = Math.min(255, cname.length);
  const reportSize = (sender ? 28 : 8) + blocks * REPORT_BLOCK_SIZE;
  const sdesSize = 8 + Math.ceil((2 + cnameLen + 1) / 4) * 4;
  const size = reportSize + sdesSize + (content.bye ? 8 : 0);
  if (view.byteLength < size) throw new RangeError(`RTCP report of ${size} bytes does not fit in ${view.byteLength}`);
  view.setUint8(0, 0x80 | blocks);
  view.setUint8(1, sender ? RTCP_SR : RTCP_RR);
  view.setUint16(2, reportSize / 4 - 1);
  view.setUint32(4, content.ssrc >>> 0);
  let at = 8;
  if (sender) {
    view.setUint32(8, sender.ntpSeconds >>> 0);
    view.setUint32(12, sender.ntpFraction >>> 0);
    view.setUint32(16, sender.rtpTimestamp >>> 0);
    view.setUint32(20, sender.packetCount >>> 0);
    view.setUint32(24, sender.octetCount >>> 0);
    at = 28;
  }
  for (let i = 0; i < blocks; i++) {
    writeBlock(view, at, reports[i]!);
    at += REPORT_BLOCK_SIZE;
  }
  view.setUint8(at, 0x81);
  view.setUint8(at + 1, RTCP_SDES);
  view.setUint16(at + 2, sdesSize / 4 - 1);
  view.setUint32(at + 4, content.ssrc >>> 0);
  view.setUint8(at + 8, 1); // CNAME
  view.setUint8(at + 9, cnameLen);
  for (let i = 0; i < cnameLen; i++) view.setUint8(at + 10 + i, cname[i]!);
  // The rest of the chunk: the terminating null item and the padding.
  for (let i = at + 10 + cnameLen; i < at + sdesSize; i++) view.setUint8(i, 0);
  at += sdesSize;
  if (content.bye) {
    view.setUint8(at, 0x81);
    view.setUint8(at + 1, RTCP_BYE);
    view.setUint16(at + 2, 1);
    view.setUint32(at + 4, content.ssrc >>> 0);
    at += 8;
  }
  return at;
}

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2208988800;

/** Wall-clock ms since the Unix epoch → NTP seconds and fraction (written into `into` when given). */
export function ntpFromUnixMs<T extends { ntpSeconds: number; ntpFraction: number } = { ntpSeconds: number; ntpFraction: number }>(ms: number, into?: T): T {
  const t = (into ?? { ntpSeconds: 0, ntpFraction: 0 }) as T;
  const seconds = Math.floor(ms / 1000);
  t.ntpSeconds = (seconds + NTP_UNIX_OFFSET_S) >>> 0;
  t.ntpFraction = Math.floor(((ms - seconds * 1000) / 1000) * 0x100000000) >>> 0;
  return t;
}

/** The middle 32 bits of an NTP timestamp: what LSR carries (1/65536 s units, wrapping). */
export function ntpMiddle32(ntpSeconds: number, ntpFraction: number): number {
  return (((ntpSeconds & 0xffff) << 16) | (ntpFraction >>> 16)) >>> 0;
}

/**
 * How far below zero arrival − LSR − DLSR may fall and still read as a round trip of 0: the three
 * terms come from two clocks read at millisecond granularity (ours stamps the SR and the arrival,
 * the peer's measures DLSR), so a path shorter than their resolution — loopback, a LAN — can come
 * out a millisecond or two negative. 10 ms, in 1/65536 s units. Below that the figure is wrong
 * (a clock step, a bad DLSR), not small.
 */
const RTT_GRANULARITY_UNITS = 655;

/**
 * Round-trip time from a report block about our stream (RFC 3550 §6.4.1): arrival − LSR − DLSR, all
 * in the middle-32-bit NTP format. `arrivalMiddle32`: when the report arrived, in that format.
 * Undefined when the block names no SR of ours (LSR 0) or the figure is negative beyond the clocks'
 * granularity; 0 within it.
 */
export function rttMs(block: ReportBlock, arrivalMiddle32: number): number | undefined {
  if (block.lastSr === 0) return undefined;
  const units = (arrivalMiddle32 - block.lastSr - block.delaySinceLastSr) | 0;
  if (units < -RTT_GRANULARITY_UNITS) return undefined;
  return (Math.max(0, units) / 65536) * 1000;
}
