import { hostname } from 'node:os';
import { setImmediate } from 'node:timers/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { dialogId } from '../sip/dialog.js';
import type { SipMessage, SipRequest } from '../sip/message.js';
import { parseNameAddr, formatUri } from '../sip/uri.js';
import { TransactionLayer, systemScheduler, type Destination, type ServerTransactionHandle } from '../sip/transaction-layer.js';
import { checkRequest } from '../sip/validate.js';
import { g711Backend } from '../codecs/native.js';
import { ALLOW, InboundCall, type CallContext } from './call.js';
import { callsWithin, readFileLimit } from './file-limit.js';
import { summarizeQos, type QosSummary } from './media/qos.js';
import type { Qos } from './api/events.js';
import { startTwilioRest } from './bot/twilio-rest.js';
import { MuxConnection } from './bot/mux.js';
import { resolveMediaNodeOptions, routeFor, type MediaNodeOptions, type ResolvedMediaNodeOptions } from './config.js';
import { logger } from './log.js';
import { summarizeLoopDelay, type LoopDelaySummary } from './loop-delay.js';
import { OpusBatch } from './media/opus-media.js';
import { SlicedSweep, sliceSize } from './media/sliced-sweep.js';
import { RtpPortPool } from './media/port-pool.js';
import { OpusPool, type OpusPoolStats } from '../workers/opus-pool.js';
import { createRtpIo, NativeRtpIo, rtpIoFallbackReason, type RtpIo } from './media/rtp-io.js';
import type { MediaClock } from './media/rtp-socket.js';
import type { WriteLatencySummary } from './media/write-latency.js';
import { Membership } from './cluster/membership.js';
import { NatsLink } from './nats-link.js';
import { SipTransport } from './sip-transport.js';
import { calledNumber } from './sip-util.js';

const log = logger('edge:media-node');

/**
 * Sampling period of the event-loop delay histogram, ms. Node's default (10) would miss most stalls
 * shorter than a tick; 1 ms samples every one, at the cost of a native (no JavaScript) timer.
 */
const LOOP_DELAY_RESOLUTION_MS = 1;
/** nice(2) increment of the Opus worker threads. */
const OPUS_WORKER_NICE = 5;

/** How often the node looks at each call for a due `qos` sample or RTCP report: one timer for all calls, not one each. */
const QOS_SWEEP_MS = 1000;
/** Calls whose QoS the status reply reads per turn of the event loop (about a millisecond's work, cold). */
const STATUS_QOS_SLICE = 100;
/** The sweep runs a slice of the calls this often, so the second's work never leaves in one block (edge/media/sliced-sweep.ts). */
const QOS_SWEEP_SLICE_MS = 50;

/** Event-loop delay of the node's main thread (the one that owns the RTP sockets) over a window. */
export interface EventLoopDelay extends LoopDelaySummary {
  /** Window length, ms: since start or since the last `reset`. */
  windowMs: number;
}

const UAS_POLICY = { supportedExtensions: [] as string[], acceptContentTypes: ['application/sdp'] };

/**
 * A media node: SIP UAS for its calls, their RTP, their bot WebSockets, events on NATS.
 * Composes the pure SIP stack with the transport, the port pool, the node's 20 ms ticker and NATS.
 */
export class MediaNode {
  readonly calls = new Map<string, InboundCall>(); // by dialog id
  readonly #byInvite = new Map<ServerTransactionHandle, InboundCall>();
  readonly ticker: MediaClock;
  readonly layer: TransactionLayer;
  /** Calls handled since start, answered or not. */
  callsTotal = 0;
  #transport!: SipTransport;
  #membership: Membership | undefined;
  #stopTwilioRest: (() => Promise<void>) | undefined;
  /** Present when `opus` is among the node's codecs: one pool for all the node's Opus calls. */
  readonly opus: OpusBatch | undefined;
  readonly #loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  #loopDelaySince = performance.now();
  #closed = false;
  #qosSweep: NodeJS.Timeout | undefined;
  readonly #sweeper = new SlicedSweep(() => this.calls.values());
  #draining = false;
  #drained: (() => void) | undefined;
  readonly #drainedPromise = new Promise<void>((resolve) => (this.#drained = resolve));

  private constructor(
    readonly options: ResolvedMediaNodeOptions,
    readonly nats: NatsLink,
    readonly rtpIo: RtpIo,
    private readonly ports: RtpPortPool,
  ) {
    this.ticker = rtpIo.clock;
    // The caller frames of each arena leave for mux bots as soon as the arena is read, not after the
    // rest of the turn (docs/decisions/0021).
    if (rtpIo instanceof NativeRtpIo) rtpIo.afterInbound = () => MuxConnection.flushScheduled();
    // Started at start-up, not per call: worker threads take tens of ms to boot.
    // Workers at a lower priority: when they share a core with this thread, RTP timing comes first
    // and codec throughput second (an overloaded pool sheds frames, see OpusBatch.congested).
    this.opus = options.codecs.includes('opus') ? new OpusBatch(new OpusPool({ niceIncrement: OPUS_WORKER_NICE })) : undefined;
    this.#loopDelay.enable();
    this.layer = new TransactionLayer({
      send: (msg, dest) => this.#transport.send(msg, dest),
      scheduler: systemScheduler,
      onRequest: (req, tx, source) => this.#onRequest(req, tx, source),
      localVia: () => ({ host: this.options.advertisedAddress, port: this.#transport.port }),
      onError: (err, where) => log.error({ err, where }, 'SIP stack callback failed'),
    });
    this.ticker.onFirstError = (err) => log.error({ err }, 'media tick failed (first occurrence; further ones are counted)');
    this.#qosSweep = setInterval(() => this.#sweep(), QOS_SWEEP_SLICE_MS).unref();
  }

  /** Every call about once a second, a slice every 50 ms: its RTCP report and `qos` sample, when due. */
  #sweep(): void {
    const now = Date.now();
    const sample = this.options.qosIntervalMs > 0;
    this.#sweeper.visit(sliceSize(this.calls.size, QOS_SWEEP_SLICE_MS, QOS_SWEEP_MS), (call) => {
      try {
        call.rtcpDue(now);
        if (sample) call.sampleQos(now);
      } catch (err) {
        log.error({ err, call: call.id }, 'qos sample or RTCP report failed');
      }
    });
  }

  static async start(input: MediaNodeOptions): Promise<MediaNode> {
    const options = resolveMediaNodeOptions(input, { hostname: hostname(), pid: process.pid });
    const nats = await NatsLink.open(options.natsUrl, options.nodeId);
    const rtpIo = createRtpIo(options.rtpHost, options.rtpIo);
    const node = new MediaNode(options, nats, rtpIo, new RtpPortPool(rtpIo, options.rtpHost, options.rtpPortMin, options.rtpPortMax));
    try {
      // Opus workers rehearse their codec as they start (workers/opus-warm-up.ts): calls wait for that, not the callers' audio.
      await node.opus?.pool.ready();
      node.#transport = await SipTransport.listen(options.sipHost, options.sipPort, (msg, src) => node.#receive(msg, src));
    } catch (err) {
      await node.#release();
      await nats.close();
      throw err;
    }
    try {
      node.#membership = await Membership.open(nats.nc, {
        id: options.nodeId,
        role: 'media',
        sip: `${options.advertisedAddress}:${node.sipPort}`,
        rtp: options.rtpHost,
        capacity: options.maxCalls,
      });
      node.#serveControl();
    } catch (err) {
      await node.#transport.close();
      await node.#release();
      await nats.close();
      throw err;
    }
    // The Twilio-REST-shaped hangup endpoint (edge/bot/twilio-rest.ts), when twilioRestPort is set.
    node.#stopTwilioRest = await startTwilioRest(options);
    const files = readFileLimit();
    log.info({ node: options.nodeId, sip: `${options.sipHost}:${node.sipPort}`, g711: g711Backend, rtpIo: node.rtpIo.kind, ...(rtpIoFallbackReason ? { rtpIoFallback: rtpIoFallbackReason } : {}), ...rxLaneLog(node.rtpIo), openFiles: files }, 'media node up');
    const fits = files ? callsWithin(files.soft) : Number.POSITIVE_INFINITY;
    if (files && fits < options.maxCalls) {
      log.warn(
        { openFiles: files, maxCalls: options.maxCalls, callsThatFit: fits },
        `the open-files limit (${files.soft}) allows about ${fits} calls, below maxCalls ${options.maxCalls}: raise the hard limit (ulimit -Hn, systemd LimitNOFILE) or lower maxCalls`,
      );
    }
    return node;
  }

  /** What the constructor started besides NATS: the loop-delay monitor and the Opus workers. */
  async #release(): Promise<void> {
    clearInterval(this.#qosSweep);
    this.#loopDelay.disable();
    await this.opus?.pool.destroy();
  }

  get sipPort(): number {
    return this.#transport.port;
  }

  get transportStats() {
    return this.#transport.stats;
  }

  get contact(): string {
    return `sip:botedge@${this.options.advertisedAddress}:${this.sipPort}`;
  }

  /**
   * `botedge.v1.node.<id>.drain`: request/reply, answers `{ok, calls}`.
   * `botedge.v1.node.<id>.status`: request/reply (body empty or `{"reset":true}`), answers the node's
   * calls and its event-loop delay since the last reset (docs/nats-api.md).
   */
  #serveControl(): void {
    const prefix = `botedge.v1.node.${this.options.nodeId}`;
    const drain = this.nats.nc.subscribe(`${prefix}.drain`);
    void (async () => {
      for await (const m of drain) {
        this.drain();
        m.respond(JSON.stringify({ ok: true, node: this.options.nodeId, calls: this.calls.size }));
      }
    })().catch(() => undefined);
    const status = this.nats.nc.subscribe(`${prefix}.status`);
    void (async () => {
      for await (const m of status) {
        let reset = false;
        try {
          reset = m.data.length > 0 && (JSON.parse(m.string()) as { reset?: unknown }).reset === true;
        } catch {
          // A body that is not JSON reads as a plain status request.
        }
        m.respond(JSON.stringify(await this.status(reset)));
      }
    })().catch(() => undefined);
  }

  /**
   * The node's load and health; `reset` starts a new event-loop delay window after reading this one.
   * The calls' QoS is gathered a slice at a time, the event loop free between slices: at 1,000 calls
   * the pass held the loop 10–15 ms in one block (it runs rarely, so its code is cold), and a
   * monitoring poll made every call then mid-utterance play its bot a frame late until its next
   * pause (docs/benchmarks/capacity.md, "a faster machine").
   */
  async status(reset = false): Promise<{ ok: true; node: string; calls: number; callsTotal: number; draining: boolean; eventLoopDelayMs: EventLoopDelay; arrivalToBotWriteMs?: WriteLatencySummary & { windowMs: number }; qos: QosSummary; rtpIo: Record<string, number | string>; opus?: OpusPoolStats }> {
    const now = performance.now();
    const windowMs = Math.round(now - this.#loopDelaySince);
    const eventLoopDelayMs: EventLoopDelay = { ...summarizeLoopDelay(this.#loopDelay, LOOP_DELAY_RESOLUTION_MS), windowMs };
    const toWrite = this.rtpIo.arrivalToWrite?.summary(reset);
    if (reset) {
      this.#loopDelay.reset();
      this.#loopDelaySince = now;
    }
    return {
      ok: true,
      node: this.options.nodeId,
      calls: this.calls.size,
      callsTotal: this.callsTotal,
      draining: this.#draining,
      eventLoopDelayMs,
      ...(toWrite ? { arrivalToBotWriteMs: { ...toWrite, windowMs } } : {}),
      // The answered calls' QoS so far: how callers' audio is arriving right now, node-wide.
      qos: summarizeQos(await this.#qosSoFar()),
      rtpIo: { backend: this.rtpIo.kind, ...this.rtpIo.stats() },
      ...(this.opus ? { opus: this.opus.pool.stats } : {}),
    };
  }

  /** Every answered call's QoS so far: one lap of a SlicedSweep, STATUS_QOS_SLICE calls per turn of the event loop. */
  async #qosSoFar(): Promise<Qos[]> {
    const lap = new SlicedSweep(() => this.calls.values());
    const out: Qos[] = [];
    const take = (call: InboundCall) => {
      const qos = call.qosSoFar; // undefined for a call not answered yet or ended meanwhile
      if (qos) out.push(qos);
    };
    while (lap.visit(STATUS_QOS_SLICE, take) === STATUS_QOS_SLICE) await setImmediate();
    return out;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Takes no new calls (new INVITEs get 503, so a proxy tries another node), lets the calls in
   * progress finish, and resolves `whenDrained` when the last one ends.
   */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    log.info({ node: this.options.nodeId, calls: this.calls.size }, 'draining');
    this.#membership?.setState('draining');
    if (this.calls.size === 0) this.#drained?.();
  }

  get whenDrained(): Promise<void> {
    return this.#drainedPromise;
  }

  #loadChanged(): void {
    this.#membership?.setLoad(this.calls.size, this.callsTotal);
    if (this.#draining && this.calls.size === 0) this.#drained?.();
  }

  #receive(msg: SipMessage, source: Destination): void {
    this.layer.receive(msg, source);
  }

  #onRequest(req: SipRequest, tx: ServerTransactionHandle | undefined, source: Destination): void {
    if (!tx) {
      // A transaction-less ACK: the ACK for our 2xx (RFC 3261 §13.2.2.4).
      if (req.method === 'ACK') this.#inDialog(req)?.onAck(req);
      return;
    }
    if (req.method === 'CANCEL') {
      const call = tx.cancels ? this.#byInvite.get(tx.cancels) : undefined;
      tx.reply(call ? 200 : 481, call ? 'OK' : 'Call/Transaction Does Not Exist');
      call?.onCancel();
      return;
    }
    const problem = checkRequest(req, UAS_POLICY);
    if (problem) {
      const headers: [string, string][] = [];
      const unsupported = (problem as { unsupported?: string[] }).unsupported;
      if (problem.status === 420 && unsupported?.length) headers.push(['Unsupported', unsupported.join(', ')]);
      if (problem.status === 415) headers.push(['Accept', 'application/sdp']);
      tx.reply(problem.status, problem.reason, { headers });
      return;
    }
    const hasToTag = parseNameAddr(req.headers.get('To') ?? '').params.has('tag');
    switch (req.method) {
      case 'INVITE':
        if (hasToTag) return this.#withDialog(req, tx, (c) => c.onReinvite(req, tx));
        return this.#newCall(req, tx, source);
      case 'BYE':
        return this.#withDialog(req, tx, (c) => c.onBye(req, tx));
      case 'OPTIONS':
        tx.reply(200, 'OK', { headers: [['Allow', ALLOW], ['Accept', 'application/sdp'], ['Supported', '']] });
        return;
      default:
        if (hasToTag && !this.#inDialog(req)) {
          tx.reply(481, 'Call/Transaction Does Not Exist');
          return;
        }
        tx.reply(405, 'Method Not Allowed', { headers: [['Allow', ALLOW]] });
    }
  }

  #inDialog(req: SipRequest): InboundCall | undefined {
    const id = dialogId(req, true);
    return id === undefined ? undefined : this.calls.get(id);
  }

  #withDialog(req: SipRequest, tx: ServerTransactionHandle, fn: (call: InboundCall) => void): void {
    const call = this.#inDialog(req);
    if (!call) {
      tx.reply(481, 'Call/Transaction Does Not Exist');
      return;
    }
    fn(call);
  }

  #newCall(req: SipRequest, tx: ServerTransactionHandle, _source: Destination): void {
    if (this.#closed || this.#draining) {
      tx.reply(503, 'Service Unavailable (draining)');
      return;
    }
    if (this.calls.size >= this.options.maxCalls) {
      tx.reply(503, 'Service Unavailable (at capacity)', { headers: [['Retry-After', '5']] });
      return;
    }
    const number = calledNumber(req);
    const route = routeFor(this.options, number);
    if (!route) {
      tx.reply(404, `Not Found (no route for ${number.slice(0, 64) || 'this number'})`);
      return;
    }
    tx.reply(100, 'Trying');
    let call: InboundCall;
    try {
      call = new InboundCall(this.#context(), req, tx, route, uriOf(req.headers.get('From')), uriOf(req.headers.get('To')));
    } catch (err) {
      tx.reply(400, `Bad Request (${(err as Error).message})`.slice(0, 200));
      return;
    }
    this.callsTotal++;
    this.calls.set(call.dialogId, call);
    this.#byInvite.set(tx, call);
    this.#loadChanged();
    void call.start().catch((err: unknown) => {
      log.error({ err, call: call.id }, 'call start failed');
      call.end('rejected', 500);
    });
  }

  #context(): CallContext {
    return {
      options: this.options,
      layer: this.layer,
      nats: this.nats,
      ticker: this.ticker,
      ports: this.ports,
      opus: this.opus,
      contact: this.contact,
      onGone: (call) => {
        this.calls.delete(call.dialogId);
        this.#byInvite.delete(call.inviteTx);
        this.#loadChanged();
      },
    };
  }

  /** Ends every call with BYE, then closes SIP and NATS. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of [...this.calls.values()]) call.hangup('node-shutdown', 'node shutting down');
    // Let the BYEs leave before the socket closes.
    await new Promise((r) => setTimeout(r, 50));
    this.ticker.stop();
    this.rtpIo.close();
    await this.#release();
    await this.#membership?.close();
    await this.#stopTwilioRest?.();
    await this.#transport.close();
    await this.nats.close();
  }
}

function uriOf(header: string | undefined): string {
  if (!header) return '';
  try {
    return formatUri(parseNameAddr(header).uri);
  } catch {
    return header;
  }
}

/** The start-up line's word on the G.711 receive lane: on, or why not (native RTP I/O only). */
function rxLaneLog(io: RtpIo): { rxLane: 'on' | 'off'; rxLaneOff?: string; txLane?: 'on' | 'off' } {
  if (!(io instanceof NativeRtpIo)) return { rxLane: 'off', rxLaneOff: 'dgram RTP I/O' };
  return io.lane ? { rxLane: 'on', txLane: io.txLane ? 'on' : 'off' } : { rxLane: 'off', ...(io.laneUnavailable ? { rxLaneOff: io.laneUnavailable } : {}) };
}
