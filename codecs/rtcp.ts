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

/**
 * A compound report as RFC 3550 §6.1 wants it: an SR (with sender info, since we send) or an RR,
 * then SDES with our CNAME, then, when the stream ends, a BYE. Returns the bytes.
 */
export function buildRtcpReport(opts: { ssrc: number; sender?: SenderInfo; reports: ReportBlock[]; cname: string; bye?: boolean }): Uint8Array {
  const cname = new TextEncoder().encode(opts.cname).subarray(0, 255);
  const reports = opts.reports.slice(0, 31);
  const reportSize = (opts.sender ? 28 : 8) + reports.length * REPORT_BLOCK_SIZE;
  // SDES: header, SSRC, CNAME item (type, length, text), a null item ending the chunk, padded to 4.
  const sdesSize = 8 + Math.ceil((2 + cname.length + 1) / 4) * 4;
  const byeSize = opts.bye ? 8 : 0;
  const buf = new Uint8Array(reportSize + sdesSize + byeSize);
  const view = new DataView(buf.buffer);
  view.setUint8(0, 0x80 | reports.length);
  view.setUint8(1, opts.sender ? RTCP_SR : RTCP_RR);
  view.setUint16(2, reportSize / 4 - 1);
  view.setUint32(4, opts.ssrc >>> 0);
  let at = 8;
  if (opts.sender) {
    const s = opts.sender;
    view.setUint32(8, s.ntpSeconds >>> 0);
    view.setUint32(12, s.ntpFraction >>> 0);
    view.setUint32(16, s.rtpTimestamp >>> 0);
    view.setUint32(20, s.packetCount >>> 0);
    view.setUint32(24, s.octetCount >>> 0);
    at = 28;
  }
  for (const b of reports) {
    writeBlock(view, at, b);
    at += REPORT_BLOCK_SIZE;
  }
  view.setUint8(at, 0x81);
  view.setUint8(at + 1, RTCP_SDES);
  view.setUint16(at + 2, sdesSize / 4 - 1);
  view.setUint32(at + 4, opts.ssrc >>> 0);
  buf[at + 8] = 1; // CNAME
  buf[at + 9] = cname.length;
  buf.set(cname, at + 10);
  // The rest of the chunk is zero: the terminating null item and the padding.
  at += sdesSize;
  if (opts.bye) {
    view.setUint8(at, 0x81);
    view.setUint8(at + 1, RTCP_BYE);
    view.setUint16(at + 2, 1);
    view.setUint32(at + 4, opts.ssrc >>> 0);
  }
  return buf;
}

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2208988800;

/** Wall-clock ms since the Unix epoch → NTP seconds and fraction. */
export function ntpFromUnixMs(ms: number): { ntpSeconds: number; ntpFraction: number } {
  const seconds = Math.floor(ms / 1000);
  return { ntpSeconds: (seconds + NTP_UNIX_OFFSET_S) >>> 0, ntpFraction: Math.floor(((ms - seconds * 1000) / 1000) * 0x100000000) >>> 0 };
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
