/**
 * One Opus call's RTP endpoint (RFC 7587): the caller's packets go through a jitter buffer and are
 * decoded, concealed (PLC) or recovered from the next packet's FEC in the node's Opus worker pool,
 * straight at the bot's rate; bot audio is encoded in the same pool. The event loop that owns the
 * RTP sockets does no codec work: every tick each call submits its frames, and one flush per turn
 * of the loop (OpusBatch) sends each worker one request for all calls.
 *
 * Timing, per 20 ms node tick:
 *   caller → bot: the jitter buffer yields the frame due; its PCM reaches the bot when the pool
 *                 answers (a few ms later), in order.
 *   bot → caller: the tick sends the packet encoded from the previous tick's playout read, then
 *                 reads the next 20 ms and submits it. So packets leave on the tick like G.711
 *                 ones, one tick (20 ms) later than G.711 would send the same audio. An encode that
 *                 misses its tick leaves in the next one with its own RTP timestamp (counted as
 *                 `encodeLate`); the tick never waits for the pool.
 *
 * Bot audio stays at the bot's rate in the playout buffer and is encoded at that rate (libopus
 * takes 8/12/16/24/48 kHz input): resampling to 8 kHz for a shared playout format would throw away
 * the bandwidth Opus exists to carry, and cost a resampler both ways.
 */
import { serializeRtpInto, RTP_HEADER_SIZE } from '../../codecs/rtp.js';
import { JitterBuffer } from '../../codecs/jitter-buffer.js';
import { RtpReceiveStats } from '../../codecs/rtp-stats.js';
import { DtmfReceiver, serializeTelephoneEventInto } from '../../codecs/telephone-event.js';
import type { OpusPool } from '../../workers/opus-pool.js';
import type { MediaStats } from '../api/events.js';
import { DtmfSender } from './dtmf-sender.js';
import { perfMsOfUs32 } from './mono-clock.js';
import { newPlayout, type PlayoutBuffer } from './playout.js';
import { RtpPeer } from './rtp-peer.js';
import type { RtpSocket } from './rtp-socket.js';
import { newMediaStats, type CallMediaSink, type MediaSession, type MediaSessionOptions, type MediaUpdate } from './session.js';

/** RFC 7587 §4.1: the RTP clock of Opus is 48 kHz whatever the audio bandwidth. */
const OPUS_CLOCK = 48000;
const TICK_TS = 960; // 20 ms at 48 kHz
/** Outbound frames in flight at most (submitted, not yet sent); beyond it the oldest is dropped. */
const OUT_SLOTS = 4;
/** Unanswered flushes beyond which the pool counts as behind (see OpusBatch.congested). */
const MAX_FLUSHES_IN_FLIGHT = 2;
/** Largest Opus packet we send: 20 ms at ≤ 510 kbit/s is ≤ 1275 bytes (RFC 6716 §3.2.1). */
const MAX_OPUS_BYTES = 1275;

/**
 * The node's Opus pool and its once-per-turn flush. Calls submit frames during the tick; the first
 * submission of a turn queues a microtask, which runs after the clock has run every call's tick
 * (the clock calls them synchronously), so a tick costs one request per worker however many calls
 * submit — without the clock knowing about Opus.
 */
export class OpusBatch {
  #scheduled = false;
  #inFlight = 0;
  /** Flushes that threw (the pool rejects their frames itself; this counts the rest). */
  flushErrors = 0;
  readonly #settled = () => void this.#inFlight--;
  readonly #failed = () => {
    this.#inFlight--;
    this.flushErrors++;
  };
  readonly #flush = () => {
    this.#scheduled = false;
    this.#inFlight++;
    this.pool.flush().then(this.#settled, this.#failed);
  };

  constructor(readonly pool: OpusPool) {}

  /**
   * The workers are more than a tick behind: two flushes are still unanswered. Calls then shed
   * this tick's codec work (counted as `codecShed`) instead of queueing it: a queue would grow
   * without bound under overload and every frame would come out too late, where shedding loses
   * some frames and keeps the rest on time.
   */
  get congested(): boolean {
    return this.#inFlight >= MAX_FLUSHES_IN_FLIGHT;
  }

  requestFlush(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(this.#flush);
  }
}

/** `botRate` is the decoder's output and the encoder's input rate (no resampler). */
export interface OpusMediaOptions extends MediaSessionOptions {
  /** Pool key: the call's id (pins the call's codec state to one worker). */
  callId: string;
  /** Clock of the telephone-event payload type: 48000 beside Opus, or 8000 when that is all the caller has. */
  telephoneEventRate?: number;
  /** Bot audio buffered for playout at most, ms. */
  playoutBufferMs: number;
  /** The caller decodes in-band FEC (its fmtp `useinbandfec=1`): our encoder then spends bits on it. */
  remoteFec: boolean;
  /** libopus encoder complexity, 0–10 (route `opusComplexity`); default the encoder's, 5. */
  complexity?: number;
}

interface OutFrame {
  /** Its own PCM: the pool copies it only at the flush, and a catching-up clock may run several ticks first. */
  pcm: Int16Array;
  packet: Uint8Array;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  /** Bytes of RTP to send; 0 while the encode is in flight, -1 when it failed (nothing to send). */
  len: number;
  marks: string[];
  /** Bumped when the slot is dropped or reused, so a stale encode result is ignored. */
  generation: number;
}

export class OpusMedia implements MediaSession {
  readonly playout: PlayoutBuffer;
  readonly playoutRate: 8000 | 16000 | 24000;
  readonly concealsLoss = true;
  readonly #pool: OpusPool;
  readonly #jitter = new JitterBuffer({ clockRate: OPUS_CLOCK, maxPayloadBytes: MAX_OPUS_BYTES });
  readonly #pcm: Int16Array;
  readonly #out: OutFrame[];
  /** Written into at each encode's arrival from its frame's fields. */
  readonly #outHeader = { marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0 };
  #outHead = 0;
  #outCount = 0;
  /** The last packet this tick staged, so a barge-in can still silence it. */
  #staged: Uint8Array | undefined;
  #stagedLen = 0;
  /** One encoded 20 ms of silence (encoded once at start): barge-in replacement and DTMF gaps. */
  #silence: Uint8Array | undefined;
  readonly #silencePacket = new Uint8Array(RTP_HEADER_SIZE + MAX_OPUS_BYTES);
  readonly #header = { marker: true, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0 };
  /** The RTP timestamp of the current tick: advances 960 every tick, whatever was sent. */
  #clockTs: number;
  readonly #dtmfOut = new DtmfSender();
  readonly #teUnitsPer8k: number;
  #dtmfTimestamp = 0;
  readonly #teHeader = { marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0 };
  readonly #tePayload = new Uint8Array(4);
  readonly #tePacket = new Uint8Array(RTP_HEADER_SIZE + 4);
  readonly #marksDue: string[] = [];
  readonly #peer: RtpPeer;
  #sending = true;
  #closed = false;
  readonly #onCallerPcm = (pcm: Int16Array) => {
    if (this.#closed) return;
    this.stats.framesToBot++;
    this.sink.onCallerAudio(pcm);
  };
  readonly #onFecPcm = (pcm: Int16Array) => {
    this.stats.fecFrames!++;
    this.#onCallerPcm(pcm);
  };
  readonly #onConcealPcm = (pcm: Int16Array) => {
    this.stats.concealedFrames!++;
    this.#onCallerPcm(pcm);
  };
  readonly #onCodecError = () => void this.stats.codecErrors!++;
  readonly stats: MediaStats = {
    ...newMediaStats(),
    concealedFrames: 0,
    fecFrames: 0,
    rtpLate: 0,
    codecErrors: 0,
    encodeLate: 0,
    codecShed: 0,
  };

  constructor(
    private readonly socket: RtpSocket,
    readonly port: number,
    private options: OpusMediaOptions,
    private readonly batch: OpusBatch,
    private readonly sink: CallMediaSink,
  ) {
    this.#pool = batch.pool;
    this.playoutRate = options.botRate;
    // 200 ms to start with (it grows on demand), as CallMedia.
    this.playout = newPlayout(Math.round((options.playoutBufferMs / 1000) * options.botRate), options.botRate / 5, options.playoutTrim);
    this.#pcm = new Int16Array(options.botRate / 50);
    this.#out = Array.from({ length: OUT_SLOTS }, () => ({
      pcm: new Int16Array(options.botRate / 50),
      packet: new Uint8Array(RTP_HEADER_SIZE + MAX_OPUS_BYTES),
      sequenceNumber: 0,
      timestamp: 0,
      marker: false,
      len: 0,
      marks: [],
      generation: 0,
    }));
    const teRate = options.telephoneEventRate ?? OPUS_CLOCK;
    // DtmfSender counts durations in 8 kHz units; the events' clock may be 48 kHz.
    this.#teUnitsPer8k = teRate / 8000;
    this.#peer = new RtpPeer(socket, options.symmetric, options.remote, this.stats, new DtmfReceiver({ clockRate: teRate }), (press) => sink.onDtmf(press), new RtpReceiveStats(OPUS_CLOCK));
    this.#header.payloadType = options.payloadType;
    this.#header.sequenceNumber = (Math.random() * 0x10000) >>> 0;
    this.#clockTs = (Math.random() * 0x100000000) >>> 0;
    this.#header.ssrc = (Math.random() * 0x100000000) >>> 0;
    this.#pool.open(options.callId, {
      decode: { sampleRate: options.botRate },
      // FEC costs bits and encoder time; spend them only when the caller can use them.
      encode: { sampleRate: options.botRate, fec: options.remoteFec, packetLossPercent: options.remoteFec ? 10 : 0, ...(options.complexity !== undefined ? { complexity: options.complexity } : {}) },
    });
    this.#pool.encode(options.callId, this.#pcm).then(
      (bytes) => void (this.#silence = bytes.slice()),
      this.#onCodecError,
    );
    this.batch.requestFlush();
    socket.onPacket = (msg, ip, port, arrivalUs) => this.#onPacket(msg, ip, port, arrivalUs);
  }

  get peer(): RtpPeer {
    return this.#peer;
  }

  get ssrc(): number {
    return this.#header.ssrc;
  }

  get rtpTimestamp(): number {
    return this.#header.timestamp;
  }

  update(options: MediaUpdate, sending: boolean): void {
    if (options.payloadType !== undefined) this.options.payloadType = options.payloadType;
    if ('telephoneEventPt' in options) this.options.telephoneEventPt = options.telephoneEventPt;
    if (options.remote) {
      this.options.remote = options.remote;
      this.#peer.setRemote(options.remote);
    }
    this.#header.payloadType = this.options.payloadType;
    this.#sending = sending;
  }

  #onPacket(msg: Uint8Array, ip: number, port: number, arrivalUs: number): void {
    if (this.#closed) return;
    const pkt = this.#peer.receiveAudio(msg, ip, port, arrivalUs, this.options.payloadType, this.options.telephoneEventPt);
    if (!pkt) return;
    // Copied into the jitter buffer's slab: the socket reuses `msg`. The arrival is when the socket
    // was read, not now: native RTP I/O hands packets over in batches (up to 2 ms), and a busy
    // event loop adds its own delay; both would read as network jitter and deepen the buffer.
    const r = this.#jitter.push(pkt.sequenceNumber, pkt.timestamp, pkt.payload, perfMsOfUs32(arrivalUs));
    if (r === 'late' || r === 'duplicate') this.stats.rtpLate!++;
    else if (r === 'oversize') this.stats.rtpMalformed++;
  }

  queueBotAudio(samples: Int16Array): void {
    this.stats.framesFromBot++;
    this.playout.push(samples);
  }

  /** PCM already at the playout rate, the bot's (a fallback prompt). */
  queuePlayout(samples: Int16Array): void {
    this.playout.push(samples);
  }

  sendDtmf(digits: string, durationMs: number): boolean {
    if (this.options.telephoneEventPt === undefined) return false;
    return this.#dtmfOut.enqueue(digits, durationMs) > 0;
  }

  tick(): void {
    if (this.#closed) return;
    this.#staged = undefined;
    this.#clockTs = (this.#clockTs + TICK_TS) >>> 0;
    this.#tickCaller();
    this.#sendReady();
    if (this.#dtmfOut.active) {
      // Audio already read and in flight leaves first; then the digits, then audio again.
      if (this.#outCount === 0) this.#tickDtmf();
      return;
    }
    if (!this.#sending) {
      this.#markTarget = this.#marksDue;
      this.playout.read(this.#pcm, this.#onMarkRead); // on hold the clock runs and nothing is sent (RFC 3264 §8.4)
      this.#header.sequenceNumber = (this.#header.sequenceNumber + 1) & 0xffff;
      return;
    }
    this.#readAndEncode();
  }

  /** Caller → bot: the jitter buffer's frame for this tick, decoded, concealed or FEC-recovered. */
  #tickCaller(): void {
    const out = this.#jitter.pop(performance.now());
    const id = this.options.callId;
    if (out.type !== 'wait' && this.batch.congested) {
      this.stats.codecShed!++;
      return;
    }
    if (out.type === 'frame') {
      this.#pool.decode(id, out.payload).then(this.#onCallerPcm, this.#onCodecError);
    } else if (out.type === 'conceal') {
      // A lost frame whose successor is here: libopus rebuilds it from that packet's FEC (or PLC
      // when the packet carries none). Otherwise plain PLC, which also fills an underrun.
      if (out.next) this.#pool.decodeFec(id, out.next).then(this.#onFecPcm, this.#onCodecError);
      else this.#pool.conceal(id).then(this.#onConcealPcm, this.#onCodecError);
    } else {
      return; // 'wait': the stream has not started or paused; the bot gets nothing, as with G.711
    }
    this.batch.requestFlush();
  }

  /** Sends the encoded frames that are ready, oldest first (a late one goes now, with its timestamp). */
  #sendReady(): void {
    while (this.#outCount > 0) {
      const f = this.#out[this.#outHead]!;
      if (f.len === 0) return; // still in the pool: it goes in a later tick
      if (f.len > 0) {
        this.#send(f.packet, f.len);
        this.#staged = f.packet;
        this.#stagedLen = f.len;
      }
      for (const m of f.marks) this.#marksDue.push(m);
      f.marks.length = 0;
      this.#outHead = (this.#outHead + 1) % OUT_SLOTS;
      this.#outCount--;
    }
  }

  #markTarget: string[] = [];
  readonly #onMarkRead = (name: string) => void this.#markTarget.push(name);

  #readAndEncode(): void {
    if (this.batch.congested) {
      // The audio of this tick is dropped, not delayed: the caller's jitter buffer conceals it.
      this.#markTarget = this.#marksDue;
      this.playout.read(this.#pcm, this.#onMarkRead);
      this.stats.codecShed!++;
      return;
    }
    if (this.#outCount === OUT_SLOTS) {
      // The pool is OUT_SLOTS ticks behind: drop the oldest frame rather than queue without bound.
      const old = this.#out[this.#outHead]!;
      old.generation++;
      for (const m of old.marks) this.#marksDue.push(m);
      old.marks.length = 0;
      this.stats.codecShed!++;
      this.#outHead = (this.#outHead + 1) % OUT_SLOTS;
      this.#outCount--;
    }
    const slot = (this.#outHead + this.#outCount) % OUT_SLOTS;
    const f = this.#out[slot]!;
    f.len = 0;
    f.generation++;
    this.#markTarget = f.marks;
    this.playout.read(f.pcm, this.#onMarkRead);
    this.#outCount++;
    this.#header.timestamp = this.#clockTs;
    this.#header.sequenceNumber = (this.#header.sequenceNumber + 1) & 0xffff;
    // Sequence and timestamp are this tick's; the packet is written when the payload arrives.
    f.sequenceNumber = this.#header.sequenceNumber;
    f.timestamp = this.#clockTs;
    f.marker = this.#header.marker;
    this.#header.marker = false;
    const generation = f.generation;
    this.#pool.encode(this.options.callId, f.pcm).then(
      (bytes) => {
        if (f.generation !== generation || this.#closed) return;
        if (((this.#clockTs - f.timestamp) >>> 0) > TICK_TS) this.stats.encodeLate!++; // missed the tick after its own
        const h = this.#outHeader;
        h.marker = f.marker;
        h.payloadType = this.#header.payloadType;
        h.sequenceNumber = f.sequenceNumber;
        h.timestamp = f.timestamp;
        h.ssrc = this.#header.ssrc;
        f.len = serializeRtpInto(f.packet, 0, h, bytes);
      },
      () => {
        if (f.generation !== generation) return;
        this.stats.codecErrors!++;
        f.len = -1;
      },
    );
    this.batch.requestFlush();
  }

  #send(packet: Uint8Array, len: number): void {
    this.#peer.send(packet, len);
  }

  /** One tick of outgoing DTMF: a telephone-event packet, or encoded silence between digits. */
  #tickDtmf(): void {
    const step = this.#dtmfOut.next();
    this.#header.timestamp = this.#clockTs;
    this.#header.sequenceNumber = (this.#header.sequenceNumber + 1) & 0xffff;
    if (!this.#sending || !step) return;
    if (step.kind === 'gap') {
      if (!this.#silence) return;
      const len = serializeRtpInto(this.#silencePacket, 0, this.#header, this.#silence);
      this.#send(this.#silencePacket, len);
      return;
    }
    if (step.startsEvent) this.#dtmfTimestamp = this.#clockTs;
    const h = this.#teHeader;
    h.marker = step.marker;
    h.payloadType = this.options.telephoneEventPt ?? 101;
    h.sequenceNumber = this.#header.sequenceNumber;
    h.timestamp = this.#dtmfTimestamp;
    h.ssrc = this.#header.ssrc;
    // RFC 4733 durations count the event's own clock.
    serializeTelephoneEventInto(this.#tePayload, 0, { event: step.event, end: step.end, volume: step.volume, duration: Math.min(0xffff, step.durationUnits * this.#teUnitsPer8k) });
    const len = serializeRtpInto(this.#tePacket, 0, h, this.#tePayload);
    this.#send(this.#tePacket, len);
  }

  clear(): string[] {
    const dropped: string[] = [];
    const staged = this.#staged;
    if (staged && this.#silence) {
      staged.set(this.#silence, RTP_HEADER_SIZE);
      if (this.socket.replace(staged, RTP_HEADER_SIZE + this.#silence.length)) {
        dropped.push(...this.#marksDue);
        this.#marksDue.length = 0;
      }
    }
    this.#staged = undefined;
    // Frames read but not yet sent are bot audio too: drop them (their encodes are ignored).
    while (this.#outCount > 0) {
      const f = this.#out[this.#outHead]!;
      f.generation++;
      dropped.push(...f.marks);
      f.marks.length = 0;
      this.#outHead = (this.#outHead + 1) % OUT_SLOTS;
      this.#outCount--;
    }
    dropped.push(...this.playout.clear());
    return dropped;
  }

  afterTick(): void {
    if (this.#marksDue.length > 0) {
      for (const name of this.#marksDue) this.sink.onMark(name);
      this.#marksDue.length = 0;
    }
  }

  /** The jitter buffer's view of the caller's stream (depth, jitter, loss), for tests and stats. */
  get jitterStats() {
    return this.#jitter.stats;
  }

  close(): MediaStats {
    if (!this.#closed) {
      this.#closed = true;
      this.#peer.finish();
      this.stats.playoutOverflowSamples = this.playout.overflowSamples;
      this.stats.playoutTrimmedSamples = this.playout.trimmedSamples;
      // Results still in flight resolve into a closed call and are ignored; the close rides the
      // next flush, after them.
      this.#pool.close(this.options.callId);
      this.batch.requestFlush();
      this.socket.close();
    }
    return this.stats;
  }
}
