import { isRtcp, newRtpFields, parseRtpInto, type RtpFields } from '../../codecs/rtp.js';
import type { RtpReceiveStats } from '../../codecs/rtp-stats.js';
import type { DtmfKeyPress, DtmfReceiver } from '../../codecs/telephone-event.js';
import type { MediaStats } from '../api/events.js';
import { ipv4ToU32, type PacketHandler, type RtpSocket } from './rtp-socket.js';

/**
 * The caller's end of a call's RTP, whatever the codec: where to send, which source to accept, and
 * symmetric RTP (RFC 4961). Shared by CallMedia (G.711) and OpusMedia so the rules live once.
 *
 * Symmetric: answer where the caller's packets come from, which behind a NAT is not what its SDP
 * says. Only a well-formed packet latches, only once, and never onto port 0 (nothing can be sent
 * there; raw-socket senders such as SIPp's pcap player produce it). Before latching (or when
 * symmetric RTP is off) only the SDP's address and port are accepted once latched.
 */
export class RtpPeer {
  #ip = 0;
  #port = 0;
  #latched = false;
  /** Payload octets sent (RTCP sender reports count them). */
  octetsSent = 0;
  /** Reused for every packet: what `receive` returns is valid until the next call. */
  readonly #fields = newRtpFields();
  /**
   * Where RTCP that arrives on the RTP port goes when RTP and RTCP share it (RFC 5761: the call's
   * RtcpSession); unset, such packets are skipped.
   */
  onRtcp: PacketHandler | undefined;

  constructor(
    private readonly socket: RtpSocket,
    private readonly symmetric: boolean,
    remote: { address: string; port: number },
    private readonly stats: MediaStats,
    /** The call's RFC 4733 receiver (its clock rate is the codec's) and where its key presses go. */
    private readonly dtmf: DtmfReceiver,
    private readonly onDtmf: (press: DtmfKeyPress) => void,
    /** The caller's stream as it arrives (QoS): every packet taken, audio and events. */
    readonly rx: RtpReceiveStats,
  ) {
    this.#set(remote);
  }

  /**
   * The SDP's address (first offer, or a re-INVITE). RTP sockets are IPv4: another address (IPv6, a
   * name) is answered only once symmetric RTP latches onto the caller's packets. Ignored once latched.
   */
  setRemote(remote: { address: string; port: number }): void {
    if (!this.#latched) this.#set(remote);
  }

  #set(remote: { address: string; port: number }): void {
    this.#ip = ipv4ToU32(remote.address) ?? 0;
    this.#port = this.#ip === 0 ? 0 : remote.port;
    // Without symmetric RTP only the SDP's address is taken: let the socket turn the rest away.
    if (!this.symmetric && this.#port !== 0) this.socket.acceptOnly(this.#ip, this.#port);
  }

  /**
   * A datagram from ip:port: the parsed RTP packet if it is one we take, else undefined (counted:
   * unexpected source, malformed). RTCP multiplexed on the port (RFC 5761) goes to `onRtcp`, from
   * the same source only. The fields object is reused: read it before the next packet.
   */
  receive(msg: Uint8Array, ip: number, port: number, arrivalUs: number): RtpFields | undefined {
    if ((this.#latched || !this.symmetric) && (port !== this.#port || ip !== this.#ip)) {
      this.stats.rtpUnexpectedSource++;
      return undefined;
    }
    if (isRtcp(msg)) {
      this.onRtcp?.(msg, ip, port, arrivalUs);
      return undefined;
    }
    let pkt: RtpFields;
    try {
      pkt = parseRtpInto(msg, this.#fields);
    } catch {
      this.stats.rtpMalformed++;
      return undefined;
    }
    if (!this.#latched && this.symmetric && port !== 0) {
      this.#latched = true;
      this.#ip = ip;
      this.#port = port;
      this.socket.acceptOnly(ip, port);
    }
    this.stats.rtpReceived++;
    return pkt;
  }

  /**
   * A datagram from ip:port, sorted the same way for every codec: the packet when it carries audio
   * of `audioPt`; telephone events (`eventPt`) go to the DTMF receiver; any other payload type is
   * counted malformed. Each packet of the two goes into the receive statistics (events share the
   * audio's sequence numbers). The fields object is reused: read it before the next packet.
   */
  receiveAudio(msg: Uint8Array, ip: number, port: number, arrivalUs: number, audioPt: number, eventPt: number | undefined): RtpFields | undefined {
    const pkt = this.receive(msg, ip, port, arrivalUs);
    if (!pkt) return undefined;
    const audio = pkt.payloadType === audioPt;
    if (audio || pkt.payloadType === eventPt) this.rx.packet(pkt.ssrc, pkt.sequenceNumber, pkt.timestamp, arrivalUs, audio);
    if (audio) return pkt;
    if (pkt.payloadType === eventPt) {
      for (const press of this.dtmf.push(pkt)) this.onDtmf(press);
    } else {
      this.stats.rtpMalformed++;
    }
    return undefined;
  }

  /**
   * The call ended: a key still held counts as pressed, and what the socket turned away
   * (`acceptOnly`) counts as unexpected-source packets. Call before closing the socket.
   */
  finish(): void {
    for (const press of this.dtmf.flush()) this.onDtmf(press);
    this.stats.rtpUnexpectedSource += this.socket.foreignDropped;
  }

  /** Where the caller's RTP goes (latched or from the SDP); undefined while there is nowhere. */
  get remote(): { ip: number; port: number } | undefined {
    return this.#port === 0 ? undefined : { ip: this.#ip, port: this.#port };
  }

  /** Whether symmetric RTP latched: the caller's address is the one its packets come from. */
  get latched(): boolean {
    return this.#latched;
  }

  /** Sends `packet[0, len)` to the caller, unless there is nowhere to send yet. */
  send(packet: Uint8Array, len: number): void {
    if (this.#port === 0) return;
    this.socket.send(packet, len, this.#ip, this.#port);
    this.stats.rtpSent++;
    this.octetsSent += len - 12;
  }

  /** Like `send`, but at once rather than at the tick's due time (RtpSocket.sendNow). */
  sendNow(packet: Uint8Array, len: number): void {
    if (this.#port === 0) return;
    this.socket.sendNow(packet, len, this.#ip, this.#port);
    this.stats.rtpSent++;
    this.octetsSent += len - 12;
  }
}
