import { randomUUID } from 'node:crypto';
import { Dialog } from '../sip/dialog.js';
import { SipError } from '../sip/errors.js';
import { newTag } from '../sip/ids.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import { answerOffer, formatSdp, parseSdp, type CodecName, type OfferAnswerResult } from '../sip/sdp.js';
import type { ServerTransactionHandle, TransactionLayer } from '../sip/transaction-layer.js';
import type { EndCause, Qos } from './api/events.js';
import { readFileSync } from 'node:fs';
import { resampleClip } from '../codecs/resample.js';
import { BotStream, BotUnreachableError } from './bot/bot-stream.js';
import { MuxBotStream } from './bot/mux.js';
import type { BotCommand, BotProtocol } from './bot/protocol.js';
import { createProtocol } from './bot/protocols.js';
import { TwilioProtocol } from './bot/twilio.js';
import { twilioCalls } from './bot/twilio-rest.js';
import type { Route, ResolvedMediaNodeOptions } from './config.js';
import { logger } from './log.js';
import { CallMedia } from './media/call-media.js';
import { OpusMedia, type OpusBatch } from './media/opus-media.js';
import { BPL_NO_PLC, BPL_PLC, qosReport } from './media/qos.js';
import { RtcpSession } from './media/rtcp-session.js';
import type { RtpReceiveCounts } from '../codecs/rtp-stats.js';
import type { CallMediaSink, MediaSession } from './media/session.js';
import { loadPrompt } from './media/prompt.js';
import type { RtpPortPool } from './media/port-pool.js';
import { ipv4ToU32, type MediaClock, type RtpSocket } from './media/rtp-socket.js';
import type { NatsLink } from './nats-link.js';
import { requestDestination } from './sip-util.js';

const log = logger('edge:call');

export interface CallContext {
  options: ResolvedMediaNodeOptions;
  layer: TransactionLayer;
  nats: NatsLink;
  ticker: MediaClock;
  ports: RtpPortPool;
  /** The node's Opus worker pool; present when `opus` is among the node's codecs. */
  opus?: OpusBatch | undefined;
  /** Our Contact URI. */
  contact: string;
  /** The call reached its end; the node forgets it. */
  onGone(call: InboundCall): void;
}

interface PendingOk {
  res: SipResponse;
  tx: ServerTransactionHandle;
  cseq: number;
  timer: NodeJS.Timeout | undefined;
}

const T1 = 500;
const T2 = 4000;
/** Internal mark that ends the call when the fallback prompt has played. */
const PROMPT_DONE = '\u0000prompt-done';
/** How often a bot is told its audio overflowed the playout buffer, at most, ms. */
const OVERFLOW_REPORT_MS = 1000;
/** CA files read once per path. */
const caCache = new Map<string, Buffer>();
/**
 * The receive lane writes a per-call bot's plain caller frames to its socket itself (LaneWriter);
 * `BOTEDGE_LANE_WRITER=0` leaves every frame to `ws` (for comparison, or if it misbehaves).
 */
const LANE_WRITER = process.env['BOTEDGE_LANE_WRITER'] !== '0';

/**
 * One inbound call: the caller's SIP dialog (we are its UAS), its RTP endpoint and its bot
 * WebSocket. Lifecycle: INVITE → (bot connects) → 200 OK → ACK → … → BYE from either side.
 * `end()` is idempotent and is the only way out; it publishes `ended` exactly once.
 */
export class InboundCall {
  readonly id = randomUUID();
  readonly sipCallId: string;
  readonly dialog: Dialog;
  readonly startedAt = Date.now();
  answeredAt = 0;
  #media: MediaSession | undefined;
  #rtcp: RtcpSession | undefined;
  #bot: BotStream | MuxBotStream | undefined;
  #protocol: BotProtocol | undefined;
  #streamStart = 0;
  #overflowReported = 0;
  #overflowReportedAt = 0;
  /** The bot failed and the fallback prompt is playing. */
  #inFallback = false;
  #ok: PendingOk | undefined;
  #sdpVersion = 1;
  #ended = false;
  /** QoS samples: when the next is due and where the last one ended (ms since the epoch), and `rtpLate` then. */
  #qosDueAt = 0;
  #qosSampledAt = 0;
  #qosLateAt = 0;
  /** Phase 1 of the node tick: this call's RTP packet leaves (before any call's bot I/O). */
  readonly #tick = () => this.#media?.tick();
  /** Phase 2: bot I/O and reports. */
  readonly #afterTick = () => {
    const media = this.#media;
    if (!media) return;
    media.afterTick();
    const now = performance.now();
    this.#bot?.pump(now);
    const over = media.playout.overflowSamples;
    if (over > this.#overflowReported && now - this.#overflowReportedAt >= OVERFLOW_REPORT_MS) {
      this.#bot?.send({ type: 'overflow', droppedMs: Math.round((over - this.#overflowReported) / (media.playoutRate / 1000)), totalDroppedMs: Math.round(over / (media.playoutRate / 1000)) });
      this.#overflowReported = over;
      this.#overflowReportedAt = now;
    }
  };

  constructor(
    private readonly ctx: CallContext,
    private readonly invite: SipRequest,
    readonly inviteTx: ServerTransactionHandle,
    private readonly route: Route,
    private readonly from: string,
    private readonly to: string,
  ) {
    this.sipCallId = invite.headers.get('Call-ID') ?? '';
    this.dialog = Dialog.fromUas(invite, { localTag: newTag(), localContact: ctx.contact, early: true });
  }

  get ended(): boolean {
    return this.#ended;
  }

  get dialogId(): string {
    return this.dialog.id;
  }

  /** Negotiates media, connects the bot and answers; failures answer the INVITE with their status. */
  async start(): Promise<void> {
    const opts = this.ctx.options;
    let offer: OfferAnswerResult;
    let socket: RtpSocket;
    let rtcp: RtpSocket;
    let port: number;
    try {
      ({ socket, rtcp, port } = await this.ctx.ports.bind());
    } catch (err) {
      this.#reject(503, 'Service Unavailable (no RTP port)', 'rejected', err);
      return;
    }
    /** The call is refused before its media exists: the port pair goes back. */
    const unbind = () => {
      socket.close();
      rtcp.close();
      this.ctx.ports.release(port);
    };
    try {
      offer = this.#negotiate(this.invite, port, this.#codecsForRoute());
    } catch (err) {
      unbind();
      const e = err instanceof SipError ? err : new SipError(400, 'Bad Request (SDP)', { cause: err });
      this.#reject(e.status, e.reason, 'rejected', err);
      return;
    }
    const sink: CallMediaSink = {
      onCallerAudio: (pcm) => this.#bot?.sendAudio(pcm, performance.now() - this.#streamStart),
      onDtmf: (press) => {
        this.#bot?.send({ type: 'dtmf', digit: press.digit, durationMs: press.durationMs });
        this.ctx.nats.publishEvent({ ...this.#eventBase(), event: 'dtmf', digit: press.digit, durationMs: press.durationMs });
      },
      onMark: (name) => {
        if (name === PROMPT_DONE) this.hangup('bot-error', 'fallback prompt played');
        else this.#bot?.send({ type: 'mark', name, cleared: false });
      },
    };
    const botRate = this.#botRate;
    const playoutMs = this.route.playoutBufferMs ?? opts.playoutBufferMs;
    const codec = offer.codec;
    if (codec.name === 'opus') {
      if (!this.ctx.opus) {
        // answerOffer picks opus only from the node's codecs, and the node starts the pool for them.
        unbind();
        this.#reject(500, 'Server Internal Error (no Opus pool)', 'rejected', new Error('opus negotiated without an OpusPool'));
        return;
      }
      this.#media = new OpusMedia(
        socket,
        port,
        {
          callId: this.id,
          payloadType: codec.payloadType,
          telephoneEventPt: offer.telephoneEventPt,
          telephoneEventRate: offer.telephoneEventRate ?? 48000,
          remote: offer.remote,
          symmetric: opts.symmetricRtp,
          playoutBufferMs: playoutMs,
          playoutTrim: this.route.playoutTrim,
          botRate,
          remoteFec: codec.params['useinbandfec'] === '1',
          complexity: this.route.opusComplexity,
        },
        this.ctx.opus,
        sink,
      );
    } else {
      this.#media = new CallMedia(
        socket,
        port,
        {
          codec: codec.name,
          payloadType: codec.payloadType,
          telephoneEventPt: offer.telephoneEventPt,
          remote: offer.remote,
          symmetric: opts.symmetricRtp,
          playoutCapacity: Math.round((playoutMs / 1000) * (codec.name === 'G722' ? 16000 : 8000)),
          playoutTrim: this.route.playoutTrim,
          playoutCatchUp: this.route.playoutCatchUp,
          playoutCatchUpSlots: this.route.playoutCatchUpMs / 20,
          botRate,
        },
        sink,
      );
    }
    const sdpRtcp = offer.remoteRtcp && ipv4ToU32(offer.remoteRtcp.address);
    this.#rtcp = new RtcpSession(rtcp, socket, this.#media, `${this.id}@botedge`, sdpRtcp ? { ip: sdpRtcp, port: offer.remoteRtcp!.port } : undefined);
    this.#rtcp.mux(offer.rtcpMux);
    this.ctx.nats.publishEvent({ ...this.#eventBase(), event: 'created', direction: 'inbound', from: this.from, to: this.to, botUrl: this.route.url });

    try {
      const protocol = createProtocol(this.route, { callId: this.id, sipCallId: this.sipCallId, from: this.from, to: this.to, headers: this.#forwardedHeaders() });
      this.#protocol = protocol;
      this.#streamStart = performance.now();
      const connect = this.route.protocol === 'native-mux' ? MuxBotStream.connect : BotStream.connect;
      this.#bot = await connect(
        this.route.url,
        protocol,
        {
          callId: this.id,
          nodeId: opts.nodeId,
          timeoutMs: opts.botConnectTimeoutMs,
          sendBufferBytes: opts.botSendBufferBytes,
          queueFrames: opts.botSendQueueFrames,
          readTimeoutMs: opts.botReadTimeoutMs,
          signingSecret: this.route.signingSecret ?? opts.botSigningSecret,
          ca: this.#ca(),
          log: log.child({ call: this.id }),
          lane: socket.lane?.host,
        },
        {
          onCommand: (cmd) => this.#onBotCommand(cmd),
          onClose: (reason, failure) => this.#onBotGone(reason, failure),
          // The bot's plain frames straight into playout; not while a fallback prompt plays (#onBotCommand drops them).
          takeAudio: (bytes) => !this.#inFallback && this.#media instanceof CallMedia && this.#media.takeBotFrame(bytes),
        },
      );
    } catch (err) {
      if (this.#ended) return;
      const reason = opts.botUnreachableStatus === 503 ? 'Service Unavailable (bot unreachable)' : 'Temporarily Unavailable (bot unreachable)';
      log.warn({ call: this.id, url: this.route.url, err: err instanceof BotUnreachableError ? err.message : String(err) }, 'bot unreachable');
      this.#reject(opts.botUnreachableStatus, reason, 'bot-unreachable', err);
      return;
    }
    if (this.#ended) {
      // CANCEL arrived while the bot was connecting.
      this.#bot.close('caller-cancel');
      return;
    }
    // G.711 caller frames may now go from the RTP I/O straight into the bot's mux batch, or for a
    // bot with a socket of its own through the node's direct batch (rx-lane.ts).
    if (this.#media instanceof CallMedia) {
      const bot = this.#bot;
      if (bot instanceof MuxBotStream) this.#media.laneTo(bot.laneTarget);
      else {
        this.#media.laneDirect();
        // And the lane writes those frames to the bot's socket itself (native/ws_writer.h).
        const fd = LANE_WRITER ? bot.laneWritableFd : undefined;
        const writer = fd !== undefined ? this.#media.laneWriter(fd) : undefined;
        if (writer) bot.useLaneWriter(writer);
      }
    }
    const proto = this.#protocol;
    if (proto instanceof TwilioProtocol) {
      twilioCalls.set(proto.callSid, {
        accountSid: proto.accountSid,
        authToken: this.route.twilio?.authToken,
        from: this.from,
        to: this.to,
        startedAt: this.startedAt,
        hangup: (why) => this.hangup('bot-hangup', why),
      });
    }
    this.answeredAt = Date.now();
    this.#qosSampledAt = this.answeredAt;
    this.#qosDueAt = this.answeredAt + this.ctx.options.qosIntervalMs;
    const res = this.inviteTx.reply(200, 'OK', {
      toTag: this.dialog.localTag,
      headers: [['Contact', `<${this.ctx.contact}>`], ['Allow', ALLOW], ['Supported', '']],
      body: Buffer.from(formatSdp(offer.answer)),
      contentType: 'application/sdp',
    });
    this.dialog.confirm();
    this.#retransmitOk(res, this.inviteTx, this.#cseq(this.invite));
    // A mux call's after-tick is housekeeping (its frames leave in the connection's batch): lazy.
    this.ctx.ticker.add(this.#tick, this.#afterTick, { skip: this.#media?.tickSkip, lazyAfter: this.#bot instanceof MuxBotStream });
    this.ctx.nats.publishEvent({ ...this.#eventBase(), event: 'answered', codec: offer.codec.name });
    log.info({ call: this.id, sipCallId: this.sipCallId, codec: offer.codec.name }, 'answered');
  }

  /** The PCM rate the route's bot speaks: Twilio bots 8 kHz µ-law, the others their `sampleRate`. */
  get #botRate(): 8000 | 16000 | 24000 {
    return this.route.protocol === 'twilio' ? 8000 : this.route.sampleRate;
  }

  /**
   * The node's codecs this route can take: G.722 (16 kHz) cannot feed a 24 kHz bot, whose rate is
   * no integer multiple of it; such a call falls back to the next codec.
   */
  #codecsForRoute(): CodecName[] {
    return this.#botRate === 24000 ? this.ctx.options.codecs.filter((c) => c !== 'G722') : this.ctx.options.codecs;
  }

  #negotiate(req: SipRequest, port: number, codecs: CodecName[]): OfferAnswerResult {
    const ct = (req.headers.get('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (req.body.length === 0 || ct !== 'application/sdp') {
      // We need the caller's offer to know where to send RTP; late offer is not supported yet.
      throw new SipError(488, 'Not Acceptable Here (SDP offer required)');
    }
    let sdp;
    try {
      sdp = parseSdp(Buffer.from(req.body).toString('utf8'));
    } catch (err) {
      throw new SipError(400, `Bad Request (malformed SDP: ${(err as Error).message})`.slice(0, 200), { cause: err });
    }
    try {
      return answerOffer(sdp, {
        address: this.ctx.options.advertisedAddress,
        port,
        codecs,
        telephoneEvent: true,
        sessionVersion: this.#sdpVersion++,
      });
    } catch (err) {
      throw new SipError(488, 'Not Acceptable Here (no common codec)', { cause: err });
    }
  }

  #forwardedHeaders(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.ctx.options.forwardHeaders) {
      const v = this.invite.headers.get(name);
      if (v !== undefined) out[name] = v;
    }
    return out;
  }

  #cseq(req: SipRequest): number {
    return Number.parseInt(req.headers.get('CSeq') ?? '0', 10);
  }

  /**
   * The UAS retransmits its 2xx until the ACK comes (RFC 3261 §13.3.1.4): T1, doubling to T2;
   * after 64·T1 without ACK the call is torn down with a BYE.
   */
  #retransmitOk(res: SipResponse, tx: ServerTransactionHandle, cseq: number): void {
    this.#stopOk();
    const reliable = tx.source.transport !== 'udp';
    const started = Date.now();
    let interval = T1;
    const state: PendingOk = { res, tx, cseq, timer: undefined };
    const arm = () => {
      state.timer = setTimeout(() => {
        if (this.#ok !== state) return;
        if (Date.now() - started >= 64 * T1) {
          this.#ok = undefined;
          this.hangup('no-ack', 'no ACK for 200 OK');
          return;
        }
        if (!reliable) tx.respond(res);
        interval = Math.min(interval * 2, T2);
        arm();
      }, reliable ? 64 * T1 : interval);
    };
    this.#ok = state;
    arm();
  }

  #stopOk(): void {
    if (this.#ok?.timer) clearTimeout(this.#ok.timer);
    this.#ok = undefined;
  }

  onAck(req: SipRequest): void {
    if (this.#ok && this.#cseq(req) === this.#ok.cseq) this.#stopOk();
  }

  /** CANCEL for our INVITE (the layer has answered the CANCEL itself). */
  onCancel(): void {
    if (this.#ended || this.answeredAt) return; // after the 2xx, a CANCEL has no effect (§9.2)
    this.#reject(487, 'Request Terminated', 'caller-cancel');
  }

  onBye(req: SipRequest, tx: ServerTransactionHandle): void {
    const check = this.dialog.receiveRequest(req);
    if (!check.ok) {
      tx.reply(check.error.status, check.error.reason);
      return;
    }
    tx.reply(200, 'OK');
    this.end('caller-hangup');
  }

  /** A re-INVITE: hold, unhold, or a new address; answered with our current media. */
  onReinvite(req: SipRequest, tx: ServerTransactionHandle): void {
    const check = this.dialog.receiveRequest(req);
    if (!check.ok) {
      tx.reply(check.error.status, check.error.reason);
      return;
    }
    if (this.#ok) {
      // §14.2: a re-INVITE while our previous 2xx awaits its ACK gets 500 with Retry-After.
      tx.reply(500, 'Server Internal Error (previous INVITE pending)', { headers: [['Retry-After', '1']] });
      return;
    }
    const media = this.#media;
    if (!media) {
      tx.reply(491, 'Request Pending');
      return;
    }
    let result: OfferAnswerResult;
    try {
      // The call keeps its codec: a re-offer is answered with Opus for an Opus call, G.722 for a
      // G.722 one and G.711 (either law) for a G.711 one; switching would need a new media session.
      const codecs: CodecName[] =
        media instanceof OpusMedia ? ['opus'] : media.playoutRate === 16000 ? ['G722'] : this.ctx.options.codecs.filter((c) => c === 'PCMU' || c === 'PCMA');
      result = this.#negotiate(req, media.port, codecs);
    } catch (err) {
      const e = err instanceof SipError ? err : new SipError(488, 'Not Acceptable Here');
      tx.reply(e.status, e.reason);
      return;
    }
    const sending = result.direction === 'sendrecv' || result.direction === 'sendonly';
    const update = { payloadType: result.codec.payloadType, telephoneEventPt: result.telephoneEventPt, remote: result.remote };
    if (media instanceof CallMedia && result.codec.name !== 'opus') media.update({ ...update, codec: result.codec.name }, sending);
    else media.update(update, sending);
    this.#rtcp?.mux(result.rtcpMux);
    const res = tx.reply(200, 'OK', {
      toTag: this.dialog.localTag,
      headers: [['Contact', `<${this.ctx.contact}>`], ['Allow', ALLOW]],
      body: Buffer.from(formatSdp(result.answer)),
      contentType: 'application/sdp',
    });
    this.#retransmitOk(res, tx, this.#cseq(req));
    log.info({ call: this.id, direction: result.direction }, 're-INVITE answered');
  }

  #ca(): Buffer | undefined {
    const path = this.route.ca;
    if (!path) return undefined;
    let pem = caCache.get(path);
    if (!pem) caCache.set(path, (pem = readFileSync(path)));
    return pem;
  }

  #onBotCommand(cmd: BotCommand): void {
    const media = this.#media;
    if (!media || this.#inFallback) return;
    switch (cmd.type) {
      case 'audio':
        media.queueBotAudio(cmd.samples);
        break;
      case 'mark':
        media.playout.mark(cmd.name);
        break;
      case 'clear':
        // Takes effect at once: a packet staged but not yet sent turns silent (native RTP I/O),
        // otherwise the next tick's packet is silence (barge-in ≤ 20 ms either way).
        for (const name of media.clear()) this.#bot?.send({ type: 'mark', name, cleared: true });
        break;
      case 'clearMarks':
        media.playout.clearMarks();
        break;
      case 'hangup':
        this.hangup('bot-hangup', cmd.reason);
        break;
      case 'transfer':
        this.#transfer(cmd.target);
        break;
      case 'sendDtmf':
        if (!media.sendDtmf(cmd.digits, cmd.durationMs)) this.#bot?.send({ type: 'error', reason: 'sendDtmf: the caller did not negotiate telephone-event (RFC 4733)' });
        break;
    }
  }

  /**
   * Blind transfer: REFER the caller to `target` (RFC 3515) without the implicit subscription
   * (RFC 4488 `Refer-Sub: false`: we do not want NOTIFYs); once the caller accepts, we hang up.
   */
  #transfer(target: string): void {
    if (!this.answeredAt || this.#ended) return;
    let refer;
    try {
      refer = this.dialog.createRequest('REFER', {
        headers: [['Refer-To', `<${target}>`], ['Referred-By', `<${this.ctx.contact}>`], ['Refer-Sub', 'false'], ['Supported', 'norefersub']],
      });
    } catch (err) {
      this.#bot?.send({ type: 'transfer', target, status: 'failed', reason: (err as Error).message });
      return;
    }
    const fail = (sipStatus: number | undefined, reason: string) => this.#bot?.send({ type: 'transfer', target, status: 'failed', ...(sipStatus ? { sipStatus } : {}), reason });
    this.ctx.layer.sendRequest(refer, requestDestination(refer), {
      onResponse: (res) => {
        if (res.status < 200) return;
        if (res.status >= 300) return fail(res.status, res.reason);
        this.#bot?.send({ type: 'transfer', target, status: 'accepted', sipStatus: res.status });
        log.info({ call: this.id, target }, 'transferred');
        this.hangup('bot-hangup', `transferred to ${target}`);
      },
      onTimeout: () => fail(408, 'REFER timed out'),
      onTransportError: () => fail(503, 'REFER could not be sent'),
    });
  }

  /** The bot's socket is gone. A failed bot follows the route's `onBotFailure` policy. */
  #onBotGone(reason: string, failure: boolean): void {
    if (this.#ended) return;
    if (this.#media instanceof CallMedia) this.#media.laneTo(undefined);
    if (!failure || this.route.onBotFailure !== 'prompt' || !this.route.fallbackPrompt || !this.#media || !this.answeredAt) {
      this.hangup(failure ? 'bot-error' : 'bot-hangup', reason);
      return;
    }
    let prompt: Int16Array;
    try {
      prompt = loadPrompt(this.route.fallbackPrompt);
    } catch (err) {
      log.error({ call: this.id, err, path: this.route.fallbackPrompt }, 'fallback prompt unreadable');
      this.hangup('bot-error', reason);
      return;
    }
    log.info({ call: this.id, reason }, 'bot failed: playing the fallback prompt');
    this.#inFallback = true;
    const media = this.#media;
    media.playout.clear();
    // Prompts are 8 kHz; the playout runs at the codec's rate (G.722) or the bot's (Opus).
    media.queuePlayout(resampleClip(prompt, 8000, media.playoutRate));
    media.playout.mark(PROMPT_DONE);
  }

  /** Ends an answered call from our side: BYE to the caller, then end. */
  hangup(cause: EndCause, why: string): void {
    if (this.#ended) return;
    if (!this.answeredAt) {
      this.#reject(480, 'Temporarily Unavailable', cause);
      return;
    }
    try {
      const bye = this.dialog.createRequest('BYE', { headers: [['Reason', `SIP;cause=200;text="${why.replace(/"/g, "'").slice(0, 100)}"`]] });
      const handle = this.ctx.layer.sendRequest(bye, requestDestination(bye));
      handle.onTimeout = () => log.warn({ call: this.id }, 'BYE timed out');
    } catch (err) {
      log.error({ call: this.id, err }, 'could not send BYE');
    }
    this.end(cause);
  }

  #reject(status: number, reason: string, cause: EndCause, err?: unknown): void {
    if (this.#ended) return;
    try {
      this.inviteTx.reply(status, reason, { toTag: this.dialog.localTag });
    } catch (e) {
      log.warn({ call: this.id, err: e }, 'could not answer INVITE');
    }
    if (err !== undefined) log.info({ call: this.id, status, reason }, 'call rejected');
    this.end(cause, status);
  }

  /**
   * The node's QoS sweep (MediaNode, once a second): publishes a `qos` sample of the interval since
   * the last one when it is due. Samples are due `qosIntervalMs` apart from each call's answer, so a
   * node's samples spread over the interval instead of leaving together.
   */
  sampleQos(now: number): void {
    const media = this.#media;
    if (!media || !this.answeredAt || this.#ended || now < this.#qosDueAt) return;
    const late = media.stats.rtpLate ?? 0;
    const qos = this.#qos(media.peer.rx.interval(), late - this.#qosLateAt);
    this.ctx.nats.publishEvent({ ...this.#eventBase(), event: 'qos', intervalMs: now - this.#qosSampledAt, qos });
    this.#qosLateAt = late;
    this.#qosSampledAt = now;
    // Due again one interval later; after a stall, from now (no burst of catch-up samples).
    this.#qosDueAt = Math.max(this.#qosDueAt + this.ctx.options.qosIntervalMs, now + 1);
  }

  /** The caller's stream over a span (default: the call so far), and how ours reaches the caller when its RTCP has said. */
  #qos(counts: RtpReceiveCounts = this.#media!.peer.rx.total, late = this.#media!.stats.rtpLate ?? 0): Qos {
    const media = this.#media!;
    const qos = qosReport(counts, late, media.concealsLoss ? BPL_PLC : BPL_NO_PLC);
    const remote = this.#rtcp?.remote;
    return remote ? { ...qos, remote } : qos;
  }

  /** The call's QoS so far (the status reply's live view); undefined before answer or without media. */
  get qosSoFar(): Qos | undefined {
    const media = this.#media;
    if (!media || !this.answeredAt || this.#ended) return undefined;
    return this.#qos();
  }

  /** The node's sweep, about once a second: this call's RTCP report when one is due (answered calls only). */
  rtcpDue(now: number): void {
    if (this.answeredAt && !this.#ended) this.#rtcp?.due(now);
  }

  /** Releases everything and publishes `ended`; idempotent. */
  end(cause: EndCause, sipStatus?: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopOk();
    this.ctx.ticker.delete(this.#tick);
    this.dialog.terminate();
    this.#bot?.close(cause);
    if (this.#protocol instanceof TwilioProtocol) twilioCalls.delete(this.#protocol.callSid);
    const media = this.#media;
    this.#rtcp?.close();
    const stats = media?.close();
    if (media) this.ctx.ports.release(media.port);
    const now = Date.now();
    if (stats && this.#bot) {
      stats.framesToBotDropped = this.#bot.framesDropped;
    }
    if (stats && this.#rtcp) {
      stats.rtcpSent = this.#rtcp.sent;
      stats.rtcpReceived = this.#rtcp.received;
      stats.rtcpMalformed = this.#rtcp.malformed;
    }
    this.ctx.nats.publishEvent({
      ...this.#eventBase(),
      event: 'ended',
      cause,
      ...(sipStatus !== undefined ? { sipStatus } : {}),
      durationMs: now - this.startedAt,
      talkMs: this.answeredAt ? now - this.answeredAt : 0,
      ...(stats ? { media: stats } : {}),
      ...(media ? { qos: this.#qos() } : {}),
    });
    log.info({ call: this.id, cause, sipStatus }, 'ended');
    this.ctx.onGone(this);
  }

  #eventBase() {
    return { v: 1 as const, callId: this.id, sipCallId: this.sipCallId, nodeId: this.ctx.options.nodeId, ts: Date.now() };
  }
}

export const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS';
