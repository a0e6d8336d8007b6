import { g711 } from '../../codecs/native.js';
import { serializeRtpInto, RTP_HEADER_SIZE, type RtpHeader } from '../../codecs/rtp.js';
import { G722Decoder, G722Encoder } from '../../codecs/g722.js';
import { Resampler } from '../../codecs/resample.js';
import { RtpReceiveStats, RX_WORDS } from '../../codecs/rtp-stats.js';
import { DtmfReceiver, serializeTelephoneEventInto } from '../../codecs/telephone-event.js';
import type { MediaStats } from '../api/events.js';
import { DtmfSender } from './dtmf-sender.js';
import { newPlayout, PLAY_WORDS, type PlayoutBuffer } from './playout.js';
import { RtpPeer } from './rtp-peer.js';
import { LANE, LANE_WORDS, type LaneSlot, type LaneTarget, type LaneWriter } from './rx-lane.js';
import type { TickSkip } from './clock-subscribers.js';
import type { RtpSocket } from './rtp-socket.js';
import { newMediaStats, type CallMediaSink, type MediaSession, type MediaSessionOptions } from './session.js';

export type { CallMediaSink } from './session.js';

export type G711Name = 'PCMU' | 'PCMA';

/** The codecs coded inline, on the event loop: G.711 (8 kHz) and G.722 (16 kHz). */
export type InlineCodec = G711Name | 'G722';

/**
 * G.711 is 8 kHz and G.722 16 kHz (both on an 8 kHz RTP clock): a bot at another rate is resampled
 * both ways. G.722 to a 24 kHz bot is not offered (16 → 24 kHz is no integer ratio).
 */
export interface CallMediaOptions extends MediaSessionOptions {
  codec: InlineCodec;
  /** Bot audio buffered for playout at most, samples at the codec's rate. */
  playoutCapacity: number;
}

/** The RTP timestamp step of 20 ms: both codecs run an 8 kHz RTP clock. */
const TS_PER_FRAME = 160;
/** Payload bytes per 20 ms: one per sample for G.711, one per two samples for G.722. */
const BYTES_PER_FRAME = 160;
const MAX_DECODE = 1440; // payload bytes: 180 ms, the largest ptime we decode in one packet

/** How far back (packets) a sequence number may be and still be a late or duplicate packet. */
const MAX_REORDER = 100;

/**
 * Lost caller audio of up to this many RTP timestamp units (200 ms) is filled in before the next
 * packet goes to the bot; a longer gap is an outage or a new talk spurt, and is left as it is.
 */
const MAX_FILL = 1600;
/** The fill: the last packet's audio fading out over its first 10 ms (80 samples at 8 kHz), then silence. */
const FADE = 80;
/** One scratch buffer for every call's fill: the node's event loop fills one gap at a time. */
const fillScratch = new Int16Array(2 * MAX_FILL);

/**
 * One call's RTP endpoint: receives the caller's G.711 and hands PCM to the bot side; on every
 * node tick sends the next 20 ms of bot audio (or silence, so the stream and NAT bindings stay
 * alive) as RTP. All buffers are allocated once per call; nothing is allocated per packet.
 */
export class CallMedia implements MediaSession {
  readonly playout: PlayoutBuffer;
  /** The codec's sample rate: 8000 for G.711, 16000 for G.722. */
  readonly playoutRate: 8000 | 16000;
  /** Codec samples per 20 ms, and per RTP timestamp unit. */
  readonly #frameSamples: number;
  readonly #samplesPerTs: number;
  readonly concealsLoss = false;
  readonly #decoded: Int16Array;
  /** Views of #decoded and #upsampled for the last packet size: one size per call in practice. */
  #decodedView: Int16Array = new Int16Array(0);
  #upsampledView: Int16Array = new Int16Array(0);
  readonly #out: Int16Array;
  /**
   * The dgram backend's send() may write on a later turn of the event loop (a socket buffer that is
   * full defers it), so a buffer handed to it must not be rewritten until then. When the ticker
   * catches up several ticks in one wake-up, one shared buffer would send the last frame N times
   * and lose the rest: rotate through more buffers than the ticker ever catches up (it caps at 5).
   * (The native backend copies at once.)
   */
  readonly #packets = Array.from({ length: 8 }, () => new Uint8Array(RTP_HEADER_SIZE + BYTES_PER_FRAME));
  #nextPacket = 0;
  readonly #encoded = new Uint8Array(BYTES_PER_FRAME);
  /** G.722 only: its coder states (G.711 is stateless). */
  readonly #g722Enc: G722Encoder | undefined;
  readonly #g722Dec: G722Decoder | undefined;
  readonly #header = { marker: true, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0 };
  readonly #dtmfOut = new DtmfSender();
  #dtmfTimestamp = 0;
  readonly #teHeader = { marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0 };
  readonly #tePayload = new Uint8Array(4);
  readonly #marksDue: string[] = [];
  readonly #onMarkDue = (name: string) => void this.#marksDue.push(name);
  /** Present only when the bot speaks 16 or 24 kHz. */
  readonly #up: Resampler | undefined;
  readonly #down: Resampler | undefined;
  readonly #upsampled: Int16Array;
  /** Caller audio at the bot's rate, cut into 20 ms frames (filled: #w[LANE.frameFill]): every bot protocol streams 20 ms. */
  readonly #frame: Int16Array;
  #downsampled = new Int16Array(0);
  readonly #peer: RtpPeer;
  /**
   * The audio packet this call's JavaScript tick sent (or staged), so a barge-in can still silence
   * it. A tick the lane played out does not come here (the clock skips it), so it may be an older
   * tick's: clear() asks the lane first.
   */
  #lastAudio: Uint8Array | undefined;
  #lastAudioLen = 0;
  /** The lane's tick's packets already added to rtpSent and octetsSent (LANE.txSent counts them all). */
  #txSentCounted = 0;
  /** The lane's late frames already added to playoutLateFrames (LANE.lateFrames counts them all). */
  #lateCounted = 0;
  /** The node's clock ticks this call (it answered): only then may the lane's tick play it out too. */
  #ticking = false;
  /** Whether symmetric RTP had latched when the tick was given its address (it latches once). */
  #txLatched = false;
  #sending = true;
  #closed = false;
  /** Frames the lane wrote to the bot's socket, as of close (laneWriter). */
  #wsSentAtClose = 0;
  /** Late-frame catch-up (see `tick`); on unless the route turns it off. */
  readonly #catchUp: boolean;
  /** How many slots in a row may wait for a late frame (route `playoutCatchUpMs` / 20). */
  readonly #maxHeld: number;
  /** The last slot carried a whole frame of bot audio: a dry queue now is a late frame, not the end of speech (in the block, for the lane). */
  get #speaking(): boolean {
    return this.#w[LANE.speaking] === 1;
  }

  set #speaking(v: boolean) {
    this.#w[LANE.speaking] = v ? 1 : 0;
  }
  /**
   * Slots whose headers are taken and whose packets are not sent: they wait for the bot's late
   * frames, the newest being the current slot (in the block: the lane's tick holds slots too, and
   * its bot half fills them when it takes the late frame; decision 0019).
   */
  get #held(): number {
    return this.#w[LANE.held]!;
  }

  set #held(n: number) {
    this.#w[LANE.held] = n;
  }
  readonly #stats: MediaStats = { ...newMediaStats(), playoutLateFrames: 0, rtpLate: 0, concealedFrames: 0 };

  /** The call's counters, with the packets the lane's tick sent up to now. */
  get stats(): MediaStats {
    this.#countLaneSent();
    return this.#stats;
  }
  /**
   * The call's state, in words of a Float64Array (`LANE`): the caller's stream (SSRC, sequence
   * number and timestamp of the newest audio packet passed to the bot, and its span in timestamp
   * units), the frame being filled, the last packet's length, the receive statistics; the playout
   * buffer's state; the RTP header sent last, where it goes, and the catch-up state. With the G.711
   * lane (rx-lane.ts) it is the socket slot's block, which the lane updates for the packets it
   * takes, the bot frames it queues and the frames it plays out; otherwise this call's own.
   */
  readonly #w: Float64Array;
  readonly #lane: LaneSlot | undefined;
  /** The bot's mux batch and stream, while the lane may feed it and queue from it. */
  #laneTarget: LaneTarget | undefined;

  constructor(
    private readonly socket: RtpSocket,
    readonly port: number,
    private options: CallMediaOptions,
    private readonly sink: CallMediaSink,
  ) {
    const rate = options.codec === 'G722' ? 16000 : 8000;
    this.playoutRate = rate;
    this.#samplesPerTs = rate / 8000;
    this.#frameSamples = TS_PER_FRAME * this.#samplesPerTs;
    this.#out = new Int16Array(this.#frameSamples);
    this.#decoded = new Int16Array(MAX_DECODE * this.#samplesPerTs);
    if (options.codec === 'G722') {
      this.#g722Enc = new G722Encoder();
      this.#g722Dec = new G722Decoder();
    }
    if (options.botRate !== rate) {
      // Work buffers sized for the largest packet, and for one bot frame: the lane holds them
      // (the downsampler's grows, and is handed over again, only for a bot's burst).
      this.#up = new Resampler(rate, options.botRate, { maxInput: this.#decoded.length });
      this.#down = new Resampler(options.botRate, rate, { maxInput: options.botRate / 50 });
    }
    this.#upsampled = new Int16Array(this.#up ? this.#up.maxOutputLength(this.#decoded.length) : 0);
    this.#frame = new Int16Array(options.botRate / 50);
    this.#catchUp = options.playoutCatchUp !== false;
    // At most 5: the packet ring (#packets, 8) must hold every held slot's packet and the tick's own.
    this.#maxHeld = Math.min(5, Math.max(1, Math.floor(options.playoutCatchUpSlots ?? 2)));
    // The lane decodes G.711 only, and resamples with the native loops only.
    const up = this.#up?.nativePlan;
    const lane = options.codec !== 'G722' && (!this.#up || up) ? socket.lane : undefined;
    this.#lane = lane;
    this.#w = lane ? lane.block : new Float64Array(LANE_WORDS);
    this.#w.fill(0);
    this.#w[LANE.inSsrc] = -1;
    lane?.attach(this.#decoded, up);
    // 200 ms to start with (it grows on demand): most calls never queue more, and memory per call counts.
    this.playout = newPlayout(options.playoutCapacity, rate / 5, options.playoutTrim, this.#w.subarray(LANE.play, LANE.play + PLAY_WORDS));
    // The bot half of the lane: the downsampler's arrays and the playout ring, again whenever one
    // of them grows. (With the native upsampler the downsampler is native too.)
    if (lane) {
      const attachBot = () => lane.attachBot(this.#down?.nativePlan, this.playout.ring);
      attachBot();
      this.playout.onRing = attachBot;
      if (this.#down) this.#down.onWork = attachBot;
    }
    const rx = new RtpReceiveStats(8000, this.#w.subarray(LANE.rx, LANE.rx + RX_WORDS));
    this.#peer = new RtpPeer(socket, options.symmetric, options.remote, this.#stats, new DtmfReceiver(), (press) => sink.onDtmf(press), rx);
    this.#header.payloadType = options.payloadType;
    this.#header.ssrc = (Math.random() * 0x100000000) >>> 0;
    // The header's moving parts live in the block: the lane's tick advances them too.
    this.#w[LANE.txSeq] = (Math.random() * 0x10000) >>> 0;
    this.#w[LANE.txTs] = (Math.random() * 0x100000000) >>> 0;
    this.#w[LANE.txSsrc] = this.#header.ssrc;
    this.#w[LANE.txMarker] = 1;
    this.#w[LANE.catchUp] = this.#catchUp ? 1 : 0;
    this.#w[LANE.maxHeld] = this.#maxHeld;
    socket.onPacket = (msg, ip, port, arrivalUs) => this.#onPacket(msg, ip, port, arrivalUs);
  }

  /** The caller's end; its `octetsSent` with the lane's tick's packets up to now. */
  get peer(): RtpPeer {
    this.#countLaneSent();
    return this.#peer;
  }

  /**
   * The lane's tick counts its packets in the block (LANE.txSent) and the clock does not call this
   * call's tick for them, so they join rtpSent and octetsSent here, when someone reads them (RTCP
   * reports, the end of the call), as #emit would have counted each.
   */
  #countLaneSent(): void {
    if (this.#closed) return;
    const w = this.#w;
    const n = w[LANE.txSent]! - this.#txSentCounted;
    if (n !== 0) {
      this.#txSentCounted += n;
      this.#stats.rtpSent += n;
      this.#peer.octetsSent += n * BYTES_PER_FRAME;
    }
    // Of those, the held slots the lane's bot half filled (#fillHeld counts its own).
    const late = w[LANE.lateFrames]! - this.#lateCounted;
    if (late !== 0) {
      this.#lateCounted += late;
      this.#stats.playoutLateFrames! += late;
    }
  }

  /** For the clock: the block word that says the lane's tick played this call's slot out (none without the lane). */
  get tickSkip(): TickSkip | undefined {
    return this.#lane?.tickSkip;
  }

  get ssrc(): number {
    return this.#header.ssrc;
  }

  get rtpTimestamp(): number {
    return this.#w[LANE.txTs]!;
  }

  /** A re-INVITE changed the media (hold/unhold, new address): apply it without a new socket. */
  update(options: Partial<CallMediaOptions>, sending: boolean): void {
    this.options = { ...this.options, ...options };
    this.#header.payloadType = this.options.payloadType;
    if (options.remote) this.#peer.setRemote(options.remote);
    this.#sending = sending;
    this.#laneCheck();
    this.#txCheck();
  }

  /**
   * The bot's mux batch for this call's frames (MuxBotStream.laneTarget), or none: the lane may
   * take this call's packets only while it has one. A target in another node's lane is none.
   */
  laneTo(target: LaneTarget | undefined): void {
    const old = this.#laneTarget;
    if (old) {
      old.output.unbind(old.stream);
      old.release?.();
    }
    const lane = this.#lane;
    this.#laneTarget = lane && target && target.output.host === lane.host ? target : undefined;
    if (this.#laneTarget) this.#laneTarget.output.bind(this.#laneTarget.stream, lane!.slot);
    this.#w[LANE.botOn] = this.#laneTarget && !this.#closed ? 1 : 0;
    this.#laneCheck();
  }

  /**
   * For a bot with a socket of its own (not `native-mux`): the lane decodes the caller's plain
   * packets into the node's direct batch, and this call sends each frame to the bot from there
   * (RxLaneHost.directTarget), as it would its own.
   */
  laneDirect(): void {
    const host = this.#lane?.host;
    if (host) this.laneTo(host.directTarget((samples, at, count) => this.#laneFrame(samples, at, count)));
  }

  /**
   * For a bot with a socket of its own on the direct batch: the lane writes this call's plain
   * caller frames to the socket `fd` itself (LaneSlot.attachWriter), and hands the rest to the
   * call as before. Undefined when it cannot (no lane, not on the direct batch, closed).
   */
  laneWriter(fd: number): LaneWriter | undefined {
    const lane = this.#lane;
    if (!lane || this.#closed || !this.#laneTarget || !lane.attachWriter(fd)) return undefined;
    let released = false;
    return {
      setBlocked: (blocked) => {
        if (!released && !this.#closed) this.#w[LANE.wsBlocked] = blocked ? 1 : 0;
      },
      // After close the slot's block may be another call's: the count kept at close.
      sent: () => (this.#closed ? this.#wsSentAtClose : this.#w[LANE.wsSent]!),
      release: () => {
        if (released) return;
        released = true;
        if (!this.#closed) lane.detachWriter();
      },
    };
  }

  /**
   * A frame the lane made (the direct batch): a whole frame at the bot's rate, copied into #frame
   * (which the lane needs empty) and sent on. A closed call has released its stream (laneTo).
   */
  #laneFrame(samples: Int16Array, at: number, count: number): void {
    const f = this.#frame;
    for (let i = 0; i < count; i++) f[i] = samples[at + i]!;
    this.sink.onCallerAudio(f);
  }

  /**
   * The caller's address once the lane may use it: a G.711 call on the lane, not closed, an
   * address known — for the receive half the one packets come from (symmetric RTP latched, or the
   * SDP's), for the tick where packets go (the SDP's until symmetric RTP latches: #onPacket tells
   * the tick when it does). The codec and payload type are written for the lane then.
   */
  #laneRemote(latched: boolean): { ip: number; port: number } | undefined {
    if (!this.#lane || this.#closed || this.options.codec === 'G722' || (latched && this.options.symmetric && !this.#peer.latched)) return undefined;
    const remote = this.#peer.remote;
    if (!remote) return undefined;
    this.#w[LANE.codec] = this.options.codec === 'PCMA' ? 1 : 0;
    this.#w[LANE.pt] = this.options.payloadType;
    return remote;
  }

  /** Opens the lane to this call's packets when it can take them: a bot batch, and the caller's address known. */
  #laneCheck(): void {
    const w = this.#w;
    const target = this.#laneTarget;
    const remote = target && !target.output.closed ? this.#laneRemote(true) : undefined;
    if (!remote) {
      w[LANE.on] = 0;
      return;
    }
    w[LANE.srcIp] = remote.ip;
    w[LANE.srcPort] = remote.port;
    w[LANE.output] = target!.output.index;
    w[LANE.stream] = target!.stream;
    w[LANE.on] = 1;
  }

  /**
   * Opens the lane's tick to this call when it may play the call's frames out: the clock ticks it
   * (nothing is sent before the call is answered), sending, and no DTMF going out. The rest — a
   * held slot, one to hold, a mark reached — the lane checks each tick.
   */
  #txCheck(): void {
    const w = this.#w;
    const remote = this.#ticking && this.#sending && !this.#dtmfOut.active ? this.#laneRemote(false) : undefined;
    if (!remote) {
      w[LANE.txOn] = 0;
      return;
    }
    w[LANE.dstIp] = remote.ip;
    w[LANE.dstPort] = remote.port;
    this.#txLatched = this.#peer.latched;
    w[LANE.txOn] = 1;
  }

  #onPacket(msg: Uint8Array, ip: number, port: number, arrivalUs: number): void {
    if (this.#closed) return;
    const pkt = this.#peer.receiveAudio(msg, ip, port, arrivalUs, this.options.payloadType, this.options.telephoneEventPt);
    const w = this.#w;
    // The first packet latches the caller's address: the lane can take the next ones.
    if (w[LANE.on] === 0 && this.#laneTarget) this.#laneCheck();
    // Symmetric RTP latched onto this packet's source: the tick sends there from now on.
    if (w[LANE.txOn] === 1 && this.#peer.latched !== this.#txLatched) this.#txCheck();
    if (!pkt) return;
    // G.711 goes to the bot as it arrives (no jitter buffer: the least delay for the bot's
    // recogniser). A duplicate, or a packet older than one already passed on, would play 20 ms
    // twice or out of order: drop it and count it. A jump back of more than MAX_REORDER is a
    // restarted sender, as is a new SSRC: follow it.
    if (pkt.ssrc === w[LANE.inSsrc]) {
      if (((w[LANE.inSeq]! - pkt.sequenceNumber) & 0xffff) < MAX_REORDER) {
        this.#stats.rtpLate!++;
        return;
      }
      // Packets lost on the way leave a gap in the caller's timeline; a bot counts time in the
      // audio it gets (and Twilio-style streams never skip a chunk), so a short gap is filled
      // first. Not at the start of a talk spurt (marker), after silence suppression, where the gap
      // is meant.
      const gap = (pkt.timestamp - w[LANE.inTs]! - w[LANE.inSpan]!) | 0;
      if (!pkt.marker && gap > 0 && gap <= MAX_FILL) this.#fill(gap * this.#samplesPerTs);
    }
    w[LANE.inSsrc] = pkt.ssrc;
    w[LANE.inSeq] = pkt.sequenceNumber;
    w[LANE.inTs] = pkt.timestamp;
    const payload = pkt.payload.length <= MAX_DECODE ? pkt.payload : pkt.payload.subarray(0, MAX_DECODE);
    w[LANE.inSpan] = payload.length; // one byte per timestamp unit, for both codecs
    const n = payload.length * this.#samplesPerTs;
    w[LANE.decodedLen] = n;
    const out = this.#lastDecoded();
    if (this.options.codec === 'PCMU') g711.ulawDecode(payload, out);
    else if (this.options.codec === 'PCMA') g711.alawDecode(payload, out);
    else this.#g722Dec!.decode(payload, out);
    this.#stats.framesToBot++;
    this.#deliver(out);
  }

  /**
   * The last packet's samples in #decoded (the lane decodes into the same buffer, so its length is
   * the block's). A new view only when the packet size changed: typed-array views are most of what
   * the receive path allocates, and allocation drives GC pauses at a few hundred calls.
   */
  #lastDecoded(): Int16Array {
    const n = this.#w[LANE.decodedLen]!;
    if (this.#decodedView.length !== n) this.#decodedView = this.#decoded.subarray(0, n);
    return this.#decodedView;
  }

  /** Caller audio at the codec's rate on its way to the bot: resampled to the bot's rate, cut into 20 ms frames. */
  #deliver(pcm: Int16Array): void {
    if (this.#up) {
      const m = this.#up.process(pcm, this.#upsampled);
      if (this.#upsampledView.length !== m) this.#upsampledView = this.#upsampled.subarray(0, m);
      this.#toBot(this.#upsampledView);
    } else {
      this.#toBot(pcm);
    }
  }

  /**
   * Fills `samples` of lost caller audio: the last packet's audio (still in #decodedView) fading
   * out over FADE samples, then silence — a plain concealment that never invents speech. Counted in
   * `concealedFrames` (20 ms each, rounded up).
   */
  #fill(samples: number): void {
    const last = this.#lastDecoded();
    const fill = fillScratch.subarray(0, samples);
    fill.fill(0);
    const fade = Math.min(FADE * this.#samplesPerTs, samples, last.length);
    for (let i = 0; i < fade; i++) fill[i] = Math.round((last[i]! * (fade - i)) / fade);
    this.#stats.concealedFrames! += Math.ceil(samples / this.#frameSamples);
    // In packet-sized pieces: the upsampler's output buffer is sized for one packet.
    const piece = this.#decoded.length;
    for (let at = 0; at < samples; at += piece) this.#deliver(fill.subarray(at, Math.min(samples, at + piece)));
  }

  /** Hands caller audio to the bot side in 20 ms frames (a 30 ms ptime caller gives 20, 20, 20… ms). */
  #toBot(pcm: Int16Array): void {
    const f = this.#frame;
    const w = this.#w;
    if (w[LANE.frameFill] === 0 && pcm.length === f.length) {
      this.sink.onCallerAudio(pcm);
      return;
    }
    let i = 0;
    while (i < pcm.length) {
      const fill = w[LANE.frameFill]!;
      const n = Math.min(f.length - fill, pcm.length - i);
      f.set(pcm.subarray(i, i + n), fill);
      w[LANE.frameFill] = fill + n;
      i += n;
      if (fill + n === f.length) {
        w[LANE.frameFill] = 0;
        this.sink.onCallerAudio(f);
      }
    }
  }

  /**
   * A bot's binary message of bare PCM at the bot's rate, from a bot with a socket of its own:
   * true when the lane queued it for playout (what queueBotAudio would have done), false when the
   * caller must decode it and call queueBotAudio.
   */
  takeBotFrame(bytes: Uint8Array): boolean {
    return this.#laneTarget !== undefined && !this.#closed && this.#lane!.takeBot(bytes);
  }

  /** Queues bot audio (PCM at the bot's rate) for playout. */
  queueBotAudio(samples: Int16Array): void {
    this.#stats.framesFromBot++;
    if (!this.#down) {
      this.playout.push(samples);
      if (this.#held > 0) this.#fillHeld();
      return;
    }
    const need = this.#down.maxOutputLength(samples.length);
    // Grows only when a bot sends a larger burst than before: allocation per burst size, not per frame.
    if (this.#downsampled.length < need) this.#downsampled = new Int16Array(need);
    const m = this.#down.process(samples, this.#downsampled);
    this.#w[LANE.downPhase] = this.#down.phase;
    this.playout.push(this.#downsampled.subarray(0, m));
    if (this.#held > 0) this.#fillHeld();
  }

  /** Queues PCM already at the playout rate (a fallback prompt), bypassing the bot's resampler. */
  queuePlayout(samples: Int16Array): void {
    this.playout.push(samples);
    if (this.#held > 0) this.#fillHeld();
  }

  /** The bot's late frames are here: each leaves now, in the slot it missed (oldest first), and their marks count as played. */
  #fillHeld(): void {
    if (this.#closed || this.playout.buffered < this.#frameSamples) return;
    do {
      this.#stats.playoutLateFrames!++;
      this.#emitOldestHeld(true);
    } while (this.#held > 0 && this.playout.buffered >= this.#frameSamples);
    this.afterTick();
  }

  /** The oldest held slot's packet, with whatever is queued: at once (a late frame came) or at the tick. */
  #emitOldestHeld(now: boolean): void {
    this.#held--;
    this.#emit(now, this.#held);
  }

  /**
   * Queues DTMF digits to send as RFC 4733 events; bot audio pauses while they go out. Returns
   * false when the caller did not negotiate telephone-event (nothing can carry them).
   */
  sendDtmf(digits: string, durationMs: number): boolean {
    if (this.options.telephoneEventPt === undefined) return false;
    this.#w[LANE.txOn] = 0; // the digits go out from JavaScript's tick
    const queued = this.#dtmfOut.enqueue(digits, durationMs) > 0;
    this.#txCheck();
    return queued;
  }

  /** #out (one frame at the codec's rate) → #encoded (160 bytes). */
  #encode(): void {
    if (this.options.codec === 'PCMU') g711.ulawEncode(this.#out, this.#encoded);
    else if (this.options.codec === 'PCMA') g711.alawEncode(this.#out, this.#encoded);
    else {
      // G.722 has state: keep the one before this frame, in case barge-in replaces it (clear()).
      this.#g722Enc!.checkpoint();
      this.#g722Enc!.encode(this.#out, this.#encoded);
    }
  }

  #takePacket(): Uint8Array {
    const p = this.#packets[this.#nextPacket]!;
    this.#nextPacket = (this.#nextPacket + 1) % this.#packets.length;
    return p;
  }

  /**
   * Runs once per 20 ms node tick: sends the next frame of bot audio, or silence, or a DTMF event.
   * Marks the frame reached are reported by `afterTick()`.
   *
   * Late-frame catch-up: a bot streaming in real time delivers its frames with jitter, so a frame
   * now and then lands just after the tick that would have sent it. Played at the next tick, it
   * would leave the frame after it queued behind it, and every later frame a tick late, until the
   * bot pauses (the standing queue in docs/benchmarks/capacity.md). So when the bot was mid-speech
   * (the last slot carried a whole frame) and its next frame is not here, the slot is held: its
   * RTP timestamp and sequence number are taken, and its packet leaves the moment the frame
   * arrives (`#fillHeld`, sent at once, not at a tick), a few ms late to the caller's jitter buffer
   * instead of 20 ms late for the rest of the talk spurt. A frame later than a tick holds the next
   * slot too, up to `#maxHeld` slots (route `playoutCatchUpMs`, 40 ms by default: a bot stalled
   * for a tick and a half, or a burst of network jitter, is the common case). When the last slot
   * it may hold is due and the frame is still not here, that tick sends every held slot with
   * whatever is queued (silence when the bot has stopped) and then its own, so the stream never
   * skips a timestamp.
   */
  tick(): void {
    if (this.#closed) return;
    const w = this.#w;
    this.#lastAudio = undefined;
    if (w[LANE.txDone] === 1) {
      // The lane's tick played this slot out (rx-lane.ts; a clock given tickSkip does not call
      // this then): its packet is counted in the block (#countLaneSent).
      w[LANE.txDone] = 0;
      return;
    }
    this.#ticking = true;
    this.#tick();
    // What can open the lane's tick between two JavaScript ticks: this first tick, and the end of
    // DTMF; what closes it (hold, a new address, DTMF) checks for itself.
    if (w[LANE.txOn] === 0 && this.#lane) this.#txCheck();
  }

  #tick(): void {
    const held = this.#held;
    if (held > 0) {
      // Still no frame: hold this slot too, while the bound allows (#fillHeld sends them all).
      if (held < this.#maxHeld && !this.#dtmfOut.active && this.#sending && this.playout.buffered < this.#frameSamples) {
        this.#advance();
        this.#held = held + 1;
        return;
      }
      while (this.#held > 0) this.#emitOldestHeld(false);
    }
    if (this.#dtmfOut.active) {
      this.#speaking = false;
      this.#tickDtmf();
      return;
    }
    this.#advance();
    if (this.#catchUp && this.#speaking && this.#sending && this.playout.buffered < this.#frameSamples) {
      this.#held = 1;
      this.#speaking = false;
      return;
    }
    this.#emit(false);
  }

  /** The next slot: its RTP timestamp and sequence number (in the block: the lane's tick advances them too). */
  #advance(): void {
    const w = this.#w;
    w[LANE.txTs] = (w[LANE.txTs]! + TS_PER_FRAME) >>> 0;
    w[LANE.txSeq] = (w[LANE.txSeq]! + 1) & 0xffff;
  }

  /** The header of the packet `back` slots before the current one (held slots), from the block; the marker goes out once. */
  #slotHeader(back: number): RtpHeader {
    const h = this.#header;
    const w = this.#w;
    h.sequenceNumber = (w[LANE.txSeq]! - back) & 0xffff;
    h.timestamp = (w[LANE.txTs]! - back * TS_PER_FRAME) >>> 0;
    h.marker = w[LANE.txMarker] === 1;
    return h;
  }

  /**
   * Plays the next frame in the current slot (header already advanced): at the tick's due time, or
   * `now`. On hold the clock runs and the audio is consumed but nothing is sent (RFC 3264 §8.4).
   * Marks reached by this frame are reported after its packet has left (they are "played").
   */
  #emit(now: boolean, back = 0): void {
    this.#speaking = this.playout.read(this.#out, this.#onMarkDue) === this.#frameSamples;
    if (!this.#sending) return;
    this.#encode();
    const packet = this.#takePacket();
    const len = serializeRtpInto(packet, 0, this.#slotHeader(back), this.#encoded);
    this.#w[LANE.txMarker] = 0;
    if (now) {
      this.#peer.sendNow(packet, len);
      return;
    }
    this.#send(packet, len);
    this.#lastAudio = packet;
    this.#lastAudioLen = len;
  }

  #send(packet: Uint8Array, len: number): void {
    this.#peer.send(packet, len);
  }

  /**
   * Barge-in: drops queued bot audio and, if this tick's packet has not left yet (the native
   * backend sends at the tick's due time), turns it into silence. Returns every mark that will now
   * never be played, oldest first.
   */
  clear(): string[] {
    const dropped: string[] = [];
    let packet = this.#lastAudio;
    let len = this.#lastAudioLen;
    // The lane's tick staged this tick's packet (#lastAudio, if any, is an older tick's): a copy,
    // into the packet buffer #takePacket hands out next, to silence.
    const staged = this.#lane?.staged(this.#packets[this.#nextPacket]!) ?? 0;
    if (staged > 0) {
      packet = this.#takePacket();
      len = staged;
    }
    if (packet && len > 0) {
      this.#out.fill(0);
      // G.722 has state: the silence is encoded from the state before the staged frame, which the
      // caller's decoder has never seen (G722Encoder.checkpoint, taken by #encode).
      const g722 = this.#g722Enc;
      if (g722) {
        g722.rewind();
        g722.encode(this.#out, this.#encoded);
      } else {
        this.#encode();
      }
      packet.set(this.#encoded, RTP_HEADER_SIZE);
      if (this.socket.replace(packet, len)) {
        // Its audio will not be heard, so the marks it reached were not reached.
        dropped.push(...this.#marksDue);
        this.#marksDue.length = 0;
      } else {
        // It left as it was: the caller decodes that frame, so the coder carries on from it.
        g722?.rewind();
      }
      this.#lastAudio = undefined;
    }
    dropped.push(...this.playout.clear());
    return dropped;
  }

  /**
   * Runs after every call's `tick()` of the same node tick: reports the marks this tick's packet
   * reached (the packet is already written: RTP sockets send synchronously, see port-pool.ts), so
   * the bot's WebSocket write never delays another call's packet.
   */
  afterTick(): void {
    if (this.#marksDue.length > 0) {
      for (const name of this.#marksDue) this.sink.onMark(name);
      this.#marksDue.length = 0;
    }
  }

  /** One tick of outgoing DTMF: a telephone-event packet, or silence in the gap between digits. */
  #tickDtmf(): void {
    const step = this.#dtmfOut.next();
    this.#advance();
    if (!this.#sending || !step) return;
    const packet = this.#takePacket();
    const slot = this.#slotHeader(0);
    let len: number;
    if (step.kind === 'gap') {
      this.#out.fill(0);
      this.#encode();
      len = serializeRtpInto(packet, 0, slot, this.#encoded);
      this.#w[LANE.txMarker] = 0;
    } else {
      // Every packet of one event carries the RTP timestamp of its start (RFC 4733 §2.5.1.2).
      if (step.startsEvent) this.#dtmfTimestamp = slot.timestamp;
      const h = this.#teHeader;
      h.marker = step.marker;
      h.payloadType = this.options.telephoneEventPt ?? 101;
      h.sequenceNumber = slot.sequenceNumber;
      h.timestamp = this.#dtmfTimestamp;
      h.ssrc = slot.ssrc;
      serializeTelephoneEventInto(this.#tePayload, 0, { event: step.event, end: step.end, volume: step.volume, duration: step.durationUnits });
      len = serializeRtpInto(packet, 0, h, this.#tePayload);
    }
    this.#send(packet, len);
  }

  close(): MediaStats {
    if (!this.#closed) {
      this.#countLaneSent();
      this.#wsSentAtClose = this.#w[LANE.wsSent]!;
      this.#closed = true;
      // The packets the lane took went to the bot as frames, one each.
      const laneTook = this.#w[LANE.packets]!;
      this.#stats.rtpReceived += laneTook;
      this.#stats.framesToBot += laneTook;
      this.#stats.framesFromBot += this.#w[LANE.botFrames]!;
      this.laneTo(undefined);
      this.#lane?.detach();
      this.#peer.finish();
      this.#stats.playoutOverflowSamples = this.playout.overflowSamples;
      this.#stats.playoutTrimmedSamples = this.playout.trimmedSamples;
      this.socket.close();
    }
    return this.#stats;
  }
}
