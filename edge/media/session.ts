import type { DtmfKeyPress } from '../../codecs/telephone-event.js';
import type { MediaStats } from '../api/events.js';
import type { PlayoutBuffer, PlayoutTrim } from './playout.js';
import type { RtpPeer } from './rtp-peer.js';
import type { TickSkip } from './clock-subscribers.js';

/**
 * What a call (edge/call.ts) needs from its media, whichever codec the caller negotiated:
 * CallMedia (G.711, coded inline) or OpusMedia (Opus, coded in the node's worker pool). Two classes
 * behind one seam rather than one class with codec branches, so the G.711 hot path stays exactly
 * what it was.
 */
export interface MediaSession {
  readonly port: number;
  /** Bot audio waiting to be played, at `playoutRate`. */
  readonly playout: PlayoutBuffer;
  /** Sample rate of the playout buffer, Hz: 8000 for G.711, the bot's rate for Opus. */
  readonly playoutRate: 8000 | 16000 | 24000;
  readonly stats: MediaStats;
  /** Our stream, for RTCP sender reports: its SSRC and the newest timestamp sent. */
  readonly ssrc: number;
  readonly rtpTimestamp: number;
  /**
   * The caller's end of the RTP: where we send, whether it was latched from its packets, and its
   * stream's receive statistics (`peer.rx`, RFC 3550, on the payload's RTP clock), for QoS and RTCP.
   */
  readonly peer: RtpPeer;
  /** Lost caller packets are concealed before the bot hears them (Opus PLC), which the MOS estimate weighs. */
  readonly concealsLoss: boolean;
  /** A re-INVITE changed the media (hold/unhold, new address, new payload types); same codec. */
  update(options: MediaUpdate, sending: boolean): void;
  /** Queues bot audio (PCM at the bot's rate) for playout. */
  queueBotAudio(samples: Int16Array): void;
  /** Queues PCM already at `playoutRate` (a fallback prompt), bypassing the bot's resampler. */
  queuePlayout(samples: Int16Array): void;
  /** Queues RFC 4733 digits; false when the caller did not negotiate telephone-event. */
  sendDtmf(digits: string, durationMs: number): boolean;
  /** Phase 1 of the node tick: this call's RTP. */
  tick(): void;
  /** Given to the clock with `tick`: when the receive lane's tick did a beat's work, `tick` is not called (clock-subscribers.ts). */
  readonly tickSkip?: TickSkip | undefined;
  /** Phase 2: reports marks whose audio has left. */
  afterTick(): void;
  /** Barge-in: drops queued bot audio; returns the marks that will never play. */
  clear(): string[];
  close(): MediaStats;
}

/** What every call's media is told at the start, whatever the codec. */
export interface MediaSessionOptions {
  payloadType: number;
  telephoneEventPt?: number | undefined;
  /**
   * Where the caller's SDP says to send RTP. RTP sockets are IPv4: another address (IPv6, a name)
   * is answered only once symmetric RTP latches onto the caller's packets.
   */
  remote: { address: string; port: number };
  /** Latch onto the first RTP source (symmetric RTP) instead of trusting the SDP address. */
  symmetric: boolean;
  /** Drop a frame of a standing live-stream queue (PlayoutBuffer's trim): off (default), the next silent frame, or any. */
  playoutTrim?: PlayoutTrim;
  /** Send a late bot frame at once in the slot it missed (CallMedia.tick); default true. G.711 only. */
  playoutCatchUp?: boolean;
  /** Slots in a row that may wait for late frames (1–5; default 2, i.e. 40 ms). */
  playoutCatchUpSlots?: number;
  /** PCM rate the bot speaks. */
  botRate: 8000 | 16000 | 24000;
}

/** The counters every call's media keeps from the start (codecs add their own). */
export function newMediaStats(): MediaStats {
  return {
    rtpReceived: 0,
    rtpSent: 0,
    rtpUnexpectedSource: 0,
    rtpMalformed: 0,
    framesToBot: 0,
    framesFromBot: 0,
    framesToBotDropped: 0,
    playoutOverflowSamples: 0,
    playoutTrimmedSamples: 0,
  };
}

export interface MediaUpdate {
  payloadType?: number;
  telephoneEventPt?: number | undefined;
  remote?: { address: string; port: number };
}

export interface CallMediaSink {
  /** 20 ms of caller audio at the bot's rate, whatever the caller's ptime; valid only during the call. */
  onCallerAudio(pcm: Int16Array): void;
  onDtmf(press: DtmfKeyPress): void;
  /** Playout passed a mark: called only after the packet carrying the audio before it was sent. */
  onMark(name: string): void;
}
