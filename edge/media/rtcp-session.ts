import { buildRtcpReportInto, encodeCname, ntpFromUnixMs, ntpMiddle32, parseRtcp, rtcpReportSize, rttMs, type ReportBlock, type ReportContent, type RtcpPacket, type SenderInfo } from '../../codecs/rtcp.js';
import { perfMsOfUs32 } from './mono-clock.js';
import type { RtpSocket } from './rtp-socket.js';
import type { MediaSession } from './session.js';

/** How the caller says our stream reaches it: its latest RTCP report block about our SSRC. */
export interface RemoteReception {
  /** Loss since its previous report, %. */
  lossPct: number;
  /** Packets of ours it has lost in all (RFC 3550's cumulative count). */
  packetsLost: number;
  /** Interarrival jitter of our stream at the caller, ms. */
  jitterMs: number;
  /** Round trip, from the report's LSR and DLSR; absent until the caller echoes one of our SRs. */
  rttMs?: number;
}

/**
 * One call's RTCP (RFC 3550 §6) on its own socket, the RTP port + 1: reads the caller's sender and
 * receiver reports — how our stream arrives there, and the round trip — and sends ours: a sender
 * report with one reception report block about the caller's stream (from the media's
 * RtpReceiveStats), SDES CNAME, and a BYE when the call ends. The node's once-a-second sweep
 * calls `due()`; reports leave every 5 s on average, each interval drawn from 2.5–7.5 s
 * (§6.3.1's randomisation, so a node's calls do not report in step).
 *
 * Where to send: where the caller's RTCP comes from once it has sent some (symmetric, as for RTP),
 * else where its SDP's `a=rtcp` says (RFC 3605), else its RTP address with port + 1 (§11).
 *
 * RTCP multiplexed on the RTP port (RFC 5761, `mux`): reports leave from the RTP socket to the
 * caller's RTP address, and the caller's arrive through the RTP socket (RtpPeer.onRtcp), which has
 * already applied RTP's source rule. The RTCP socket stays bound, so a re-INVITE can undo it.
 */
export class RtcpSession {
  /** The caller's latest report about our stream. */
  remote: RemoteReception | undefined;
  /** RTCP packets read, and those that could not be. */
  received = 0;
  malformed = 0;
  sent = 0;
  #nextAt: number;
  /** The caller's last SR: its NTP middle 32 bits and when it arrived (performance.now ms). */
  #lastSr = 0;
  #lastSrAt = 0;
  #from: { ip: number; port: number } | undefined;
  /** RTCP is multiplexed onto the RTP socket (RFC 5761). */
  #muxed = false;
  #closed = false;
  /**
   * What each report is built from and into, made once: a report per call about once a second
   * must not make garbage (at a thousand calls, building each afresh was the largest source of
   * garbage that reached the node's old generation). The buffer is sent with `sendNow` before the next report
   * reuses it a second later (the `dgram` backend may still hold a packet it could not write at
   * once; CallMedia's packet ring relies on the same after 160 ms).
   */
  readonly #sender: SenderInfo = { ntpSeconds: 0, ntpFraction: 0, rtpTimestamp: 0, packetCount: 0, octetCount: 0 };
  readonly #block: ReportBlock = { ssrc: 0, fractionLost: 0, cumulativeLost: 0, extendedHighestSeq: 0, jitter: 0, lastSr: 0, delaySinceLastSr: 0 };
  readonly #withBlock: readonly ReportBlock[] = [this.#block];
  readonly #content: ReportContent;
  readonly #out: Uint8Array;
  readonly #view: DataView;

  constructor(
    private readonly socket: RtpSocket,
    /** The media's RTP socket, which RTCP shares when multiplexed. */
    private readonly rtpSocket: RtpSocket,
    private readonly media: MediaSession,
    private readonly cname: string,
    /** The caller's `a=rtcp` (RFC 3605), when its SDP had one: where to send until its RTCP arrives. */
    private readonly sdpRtcp?: { ip: number; port: number },
    now = Date.now(),
  ) {
    this.#content = { ssrc: 0, sender: this.#sender, reports: [], cname: encodeCname(cname), bye: false };
    this.#out = new Uint8Array(rtcpReportSize({ sender: true, reports: this.#withBlock, cname: this.#content.cname, bye: true }));
    this.#view = new DataView(this.#out.buffer);
    this.#nextAt = now + nextIntervalMs();
    socket.onPacket = (msg, ip, port, arrivalUs) => this.receive(msg, ip, port, arrivalUs);
  }

  /**
   * RTCP on the RTP port from now on (RFC 5761), or again on its own (a re-INVITE that no longer
   * offers `a=rtcp-mux`): the RTP side (RtpPeer.onRtcp) hands this session what arrives there.
   */
  mux(on: boolean): void {
    this.#muxed = on;
    this.media.peer.onRtcp = on ? (msg, ip, port, arrivalUs) => this.receive(msg, ip, port, arrivalUs) : undefined;
  }

  /** One RTCP datagram from the caller: on the RTCP socket, or on the RTP socket when multiplexed. */
  receive(msg: Uint8Array, ip: number, port: number, arrivalUs: number): void {
    // The same source rule as RTP: once RTP latched, only the caller's address is taken.
    const rtp = this.media.peer.remote;
    if (this.media.peer.latched && rtp && rtp.ip !== ip) return;
    let packets: RtcpPacket[];
    try {
      packets = parseRtcp(msg);
    } catch {
      this.malformed++;
      return;
    }
    this.received++;
    if (port !== 0 && !this.#from && !this.#muxed) {
      // The caller's RTCP address, as symmetric RTP latches its RTP one; the socket turns the rest
      // away from now on (on the native I/O thread: a flood at this port never reaches us).
      this.#from = { ip, port };
      this.socket.acceptOnly(ip, port);
    }
    const arrivedPerfMs = perfMsOfUs32(arrivalUs);
    const arrivedWallMs = Date.now() - (performance.now() - arrivedPerfMs);
    const ours = this.media.ssrc >>> 0;
    for (const p of packets) {
      if (p.type === 'sr') {
        this.#lastSr = ntpMiddle32(p.sender.ntpSeconds, p.sender.ntpFraction);
        this.#lastSrAt = arrivedPerfMs;
      }
      if (p.type !== 'sr' && p.type !== 'rr') continue;
      const block = p.reports.find((b) => b.ssrc >>> 0 === ours);
      if (!block) continue;
      const ntp = ntpFromUnixMs(arrivedWallMs);
      const rtt = rttMs(block, ntpMiddle32(ntp.ntpSeconds, ntp.ntpFraction));
      this.remote = {
        lossPct: Math.round((block.fractionLost / 256) * 10000) / 100,
        packetsLost: Math.max(0, block.cumulativeLost),
        jitterMs: Math.round((block.jitter / this.media.peer.rx.clockRate) * 100000) / 100,
        ...(rtt !== undefined ? { rttMs: Math.round(rtt * 100) / 100 } : {}),
      };
    }
  }

  /** Sends a report if one is due (the node's sweep, about once a second). */
  due(now: number): void {
    if (now < this.#nextAt) return;
    this.#nextAt = now + nextIntervalMs();
    this.send(false, now);
  }

  /** Builds and sends our report now; `bye` ends it with an RTCP BYE (the call is over). */
  send(bye: boolean, now = Date.now()): void {
    if (this.#closed) return;
    const via = this.#muxed ? this.rtpSocket : this.socket;
    const to = this.#muxed ? this.media.peer.remote : (this.#from ?? this.sdpRtcp ?? rtcpAddressOf(this.media.peer.remote));
    if (!to) return;
    const c = this.#content;
    const block = this.#block;
    c.reports = NO_BLOCKS;
    if (this.media.peer.rx.receptionReport(block)) {
      // DLSR: how long we held the caller's last SR, in 1/65536 s (0 with no SR, as LSR is).
      block.lastSr = this.#lastSr;
      block.delaySinceLastSr = this.#lastSr === 0 ? 0 : Math.round(((performance.now() - this.#lastSrAt) / 1000) * 65536) >>> 0;
      c.reports = this.#withBlock;
    }
    const stats = this.media.stats;
    const sender = this.#sender;
    ntpFromUnixMs(now, sender);
    sender.rtpTimestamp = this.media.rtpTimestamp;
    sender.packetCount = stats.rtpSent;
    sender.octetCount = this.media.peer.octetsSent;
    c.ssrc = this.media.ssrc;
    c.bye = bye;
    const len = buildRtcpReportInto(this.#view, c);
    via.sendNow(this.#out, len, to.ip, to.port);
    this.sent++;
  }

  /** The call ended: a last report with BYE (if there was a session: RTP or RTCP flowed), then the socket closes. */
  close(): void {
    if (this.#closed) return;
    if (this.media.stats.rtpSent > 0 || this.received > 0) this.send(true);
    this.#closed = true;
    this.socket.close();
  }
}

/** RFC 3550 §11: RTCP on the RTP port + 1, unless the caller's RTCP told us otherwise. */
function rtcpAddressOf(rtp: { ip: number; port: number } | undefined): { ip: number; port: number } | undefined {
  return rtp && rtp.port < 65535 ? { ip: rtp.ip, port: rtp.port + 1 } : undefined;
}

/** 5 s on average, drawn from [0.5, 1.5] × 5 s (RFC 3550 §6.3.1). */
/** A report without reception blocks (nothing received yet). */
const NO_BLOCKS: readonly ReportBlock[] = [];

function nextIntervalMs(): number {
  return 5000 * (0.5 + Math.random());
}
