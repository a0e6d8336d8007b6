import { randomUUID } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import { MUX_SUBPROTOCOL, RecordWriter, readRecords, samplesOf, tagJson } from '../../sdk/mux-wire.js';
import { logOnce, type Logger } from '../log.js';
import { LANE_TAKEN, type LaneOutput, type RxLaneHost } from '../media/rx-lane.js';
import { BotUnreachableError, type BotStreamHandlers, type BotStreamOptions } from './bot-stream.js';
import { MASKED_HEADROOM, writeMaskedBinary, type FrameSocket } from './masked-frames.js';
import { BotControlSchema, DEFAULT_DTMF_MS } from './native-protocol.js';
import { jsonObject, type BotCommand, type BotProtocol, type EdgeEvent } from './protocol.js';
import { SendQueue } from './send-queue.js';
import { signConnect } from './signing.js';

/**
 * The `native-mux` bot transport (docs/bot-protocols.md#native-mux, decision 0005): every call of
 * this node to one bot URL is a "stream" on one shared WebSocket. Caller frames of all streams that
 * are ready in one turn of the event loop leave as ONE binary message (8-byte header per frame), so
 * framing, masking and the write syscall are paid once per batch instead of once per call. The
 * connection writes its batches itself, masked where they were built (edge/bot/masked-frames.ts):
 * `ws.send` would copy each into a new buffer to mask it.
 *
 * `MuxBotStream` is what a call holds: the same surface as `BotStream` (sendAudio, send, pump,
 * close), so `InboundCall` needs no other change. `MuxConnection` owns the socket, the batch, the
 * ping that detects a bot that stopped reading, and the demultiplexing of what the bot sends.
 */

export interface MuxStreamOptions extends BotStreamOptions {
  /** Connections are shared per (node, bot URL): two nodes in one process never share one. */
  nodeId?: string;
  /**
   * The node's G.711 receive lane: the connection's batch then lives in it, so the lane can add
   * caller frames to it directly (edge/media/rx-lane.ts).
   */
  lane?: RxLaneHost | undefined;
}

/** How often a slow bot is told how many frames it lost, ms. */
const REPORT_EVERY_MS = 1000;
/** A connection with no calls is closed after this long (the next call reconnects). */
const IDLE_CLOSE_MS = 30_000;
/** Connection-level maintenance (ping, stall check, draining) runs at most this often, ms. */
const MAINTAIN_EVERY_MS = 10;

type Audio = { pcm: Int16Array; atMs: number };

const NO_SAMPLES = new Int16Array(0);

const pool = new Map<string, MuxConnection | Promise<MuxConnection>>();
/** Connections with a flush scheduled (setImmediate), until it runs or flushScheduled() sends it. */
const scheduled = new Set<MuxConnection>();

/** Counters of every connection this process opened (for tests and status). */
export const muxCounters = { connections: 0, batchesSent: 0, framesSent: 0, badInput: 0, batchesKept: 0 };


export class MuxConnection {
  readonly streams = new Map<number, MuxBotStream>();
  /**
   * One batch buffer, reused while every batch is written at once; in the receive lane when the
   * node has one, which adds caller frames to it as well. With direct writes it keeps room in front
   * of the batch for the frame's header.
   */
  readonly #writer: RecordWriter | LaneOutput;
  /** The socket direct writes go to, from the open on; undefined: batches go through `ws.send`. */
  #socket: FrameSocket | undefined;
  /**
   * Whether batches are to be masked in place and written by the connection (the writer keeps room
   * for the header; edge/bot/masked-frames.ts, decision 0022). `BOTEDGE_MUX_DIRECT=0` leaves them
   * to `ws.send` (for comparison, or should it misbehave).
   */
  readonly #direct = process.env['BOTEDGE_MUX_DIRECT'] !== '0';
  readonly #badSeen = new Set<string>();
  #nextId = 1;
  #closed = false;
  #pingSentAt = 0;
  #awaitingPongSince = 0;
  #maintainedAt = -Infinity;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Streams with frames waiting in their own queues (the socket was behind). */
  readonly #backlogged = new Set<MuxBotStream>();
  /** Records and text from the bot for streams that already ended (in flight at stop): dropped quietly. */
  late = 0;
  badInput = 0;
  batchesSent = 0;
  readonly #flushNow = () => {
    // Not there: sent already, by flushScheduled().
    if (scheduled.delete(this)) this.flush();
  };

  /**
   * Sends every connection's scheduled batch now, rather than from its setImmediate. The native RTP
   * I/O calls it once an arena's packets are all in their batches (NativeRtpIo.afterInbound): the
   * caller's frames then leave before the rest of the turn — the 20 ms tick of every call when a
   * beat came with the packets, the bot's messages read in the same poll phase — instead of after
   * it. Still one message per connection per arena.
   */
  static flushScheduled(): void {
    for (const c of scheduled) c.#flushNow();
  }

  private constructor(
    readonly key: string,
    readonly ws: WebSocket,
    private readonly opts: MuxStreamOptions,
    readonly log: Logger,
  ) {
    const headroom = this.#direct ? MASKED_HEADROOM : 0;
    this.#writer = opts.lane
      ? opts.lane.openOutput(
          () => this.usable && this.canSend() && this.#backlogged.size === 0,
          () => this.#scheduleFlush(),
          headroom,
        )
      : new RecordWriter(16 * 1024, true, headroom);
  }

  /** Once open: `ws` (8.x) keeps its socket in `_socket`; without one, batches use ws.send. */
  #takeSocket(): void {
    const socket = (this.ws as unknown as { _socket?: FrameSocket | null })._socket;
    if (this.#direct && socket && typeof socket.write === 'function') this.#socket = socket;
  }

  /** Whether batches are written directly (masked in place) rather than by `ws.send`. */
  get writesDirect(): boolean {
    return this.#socket !== undefined;
  }

  /** Where the receive lane may add a stream's caller frames: this connection's batch in it. */
  get laneOutput(): LaneOutput | undefined {
    return this.#writer instanceof RecordWriter ? undefined : this.#writer;
  }

  /** The shared connection for this (node, URL, credentials), opening it if needed. */
  static get(url: string, opts: MuxStreamOptions): Promise<MuxConnection> {
    const key = [opts.nodeId ?? '', url, opts.signingSecret ?? '', opts.ca ? opts.ca.toString('base64') : ''].join('\n');
    const have = pool.get(key);
    if (have instanceof MuxConnection && have.usable) return Promise.resolve(have);
    if (have instanceof Promise) return have;
    // Calls that arrive while the socket opens wait for this one connect: no herd of attempts.
    const p = MuxConnection.#open(key, url, opts).then(
      (c) => {
        pool.set(key, c);
        return c;
      },
      (err: unknown) => {
        pool.delete(key);
        throw err;
      },
    );
    pool.set(key, p);
    return p;
  }

  static #open(key: string, url: string, opts: MuxStreamOptions): Promise<MuxConnection> {
    return new Promise((resolve, reject) => {
      const connId = randomUUID();
      const log = opts.log.child({ mux: connId, url });
      // The upgrade is signed with the connection's id in place of a call id (docs: Signed connects).
      const headers = opts.signingSecret ? signConnect(opts.signingSecret, url, `mux:${connId}`, Date.now()) : {};
      const ws = new WebSocket(url, [MUX_SUBPROTOCOL], { perMessageDeflate: false, handshakeTimeout: opts.timeoutMs, headers, ...(opts.ca ? { ca: opts.ca } : {}) });
      ws.binaryType = 'nodebuffer';
      const conn = new MuxConnection(key, ws, opts, log);
      let opened = false;
      /** It never opened: its batch leaves the receive lane with it. */
      const fail = (err: BotUnreachableError) => {
        conn.laneOutput?.close();
        reject(err);
      };
      ws.once('open', () => {
        if (ws.protocol !== MUX_SUBPROTOCOL) {
          ws.terminate();
          fail(new BotUnreachableError(url, `bot did not accept the ${MUX_SUBPROTOCOL} subprotocol`));
          return;
        }
        opened = true;
        conn.#takeSocket();
        muxCounters.connections++;
        log.info('mux connection open');
        resolve(conn);
      });
      ws.on('message', (data: RawData, isBinary: boolean) => conn.#onMessage(data as Buffer, isBinary));
      ws.on('pong', () => (conn.#awaitingPongSince = 0));
      ws.on('error', (err) => {
        if (!opened) fail(new BotUnreachableError(url, `bot WebSocket did not open: ${err.message}`, { cause: err }));
        else log.warn({ err: err.message }, 'mux socket error');
      });
      ws.on('close', (code, reason) => {
        if (!opened) {
          fail(new BotUnreachableError(url, `bot WebSocket closed before open (${code})`));
          return;
        }
        // Every call on a shared socket that drops (or that the bot closes) has lost its bot: the
        // bot ends single calls with `hangup`, so a socket close is always a failure for them.
        conn.#fail(`bot closed the mux socket (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
      });
    });
  }

  get usable(): boolean {
    return !this.#closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Adds a call: assigns its stream id and sends its `start`. */
  attach(stream: MuxBotStream, startJson: string): number {
    const id = this.#nextId++;
    this.streams.set(id, stream);
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.sendText(tagJson(id, startJson));
    return id;
  }

  detach(id: number): void {
    const s = this.streams.get(id);
    if (s) this.#backlogged.delete(s);
    this.streams.delete(id);
    if (this.streams.size === 0 && !this.#closed) {
      this.#idleTimer = setTimeout(() => this.close('idle'), IDLE_CLOSE_MS);
      this.#idleTimer.unref();
    }
  }

  /** The socket takes more: under a per-call allowance of `sendBufferBytes`, like one socket per call would. */
  canSend(): boolean {
    return this.ws.bufferedAmount <= this.opts.sendBufferBytes * Math.max(1, this.streams.size);
  }

  addFrame(id: number, pcm: Int16Array): void {
    this.#writer.add(id, pcm);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (!scheduled.has(this)) {
      scheduled.add(this);
      // Everything that becomes ready in this turn of the event loop (every RTP packet read in one
      // poll phase, every tick's events) goes out in one message; setImmediate adds no delay.
      setImmediate(this.#flushNow);
    }
  }

  /** Sends one text message after the frames batched before it (a stream's order is kept). */
  sendText(text: string): void {
    if (!this.usable) return;
    this.#sendBatch();
    this.ws.send(text);
  }

  #sendBatch(): void {
    const n = this.#writer.records;
    const msg = this.#writer.take();
    if (!msg) return;
    this.batchesSent++;
    muxCounters.batchesSent++;
    muxCounters.framesSent += n;
    if (!this.#socket) {
      this.ws.send(msg, { binary: true });
    } else if (writeMaskedBinary(this.#socket, msg)) {
      // The socket holds the batch until it is written: the next one goes into a new buffer.
      this.#writer.renew();
      muxCounters.batchesKept++;
    }
  }

  /** Sends the batch, then what backlogged streams can send now. */
  flush(): void {
    if (!this.usable) return;
    this.#sendBatch();
    if (this.#backlogged.size === 0) return;
    for (const s of this.#backlogged) {
      if (!this.canSend()) break;
      s.drain(false);
      if (s.queued === 0) this.#backlogged.delete(s);
    }
    this.#sendBatch();
  }

  backlog(s: MuxBotStream): void {
    this.#backlogged.add(s);
  }

  /**
   * Once per tick (from the first stream pumped): drain, ping, and fail the connection when the bot
   * has not answered a ping for `readTimeoutMs` (a bot that stopped reading cannot see the ping,
   * queued behind its backlog).
   */
  maintain(now: number): void {
    if (now - this.#maintainedAt < MAINTAIN_EVERY_MS || !this.usable) return;
    this.#maintainedAt = now;
    this.flush();
    const timeout = this.opts.readTimeoutMs;
    if (this.#awaitingPongSince > 0 && now - this.#awaitingPongSince > timeout) {
      this.log.warn({ timeoutMs: timeout, streams: this.streams.size, buffered: this.ws.bufferedAmount }, 'mux bot stalled: disconnecting');
      this.ws.terminate();
      this.#fail(`bot stopped reading: no answer to a WebSocket ping for ${timeout} ms`);
      return;
    }
    if (this.#awaitingPongSince === 0 && now - this.#pingSentAt >= Math.max(50, timeout / 4)) {
      this.#pingSentAt = now;
      this.#awaitingPongSince = now;
      this.ws.ping();
    }
  }

  /** The socket is gone: every call on it follows its route's failure policy. */
  #fail(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (pool.get(this.key) === this) pool.delete(this.key);
    if (this.streams.size > 0) this.log.warn({ reason, streams: this.streams.size }, 'mux connection lost');
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.#backlogged.clear();
    for (const s of streams) s.gone(reason);
    this.laneOutput?.close();
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (pool.get(this.key) === this) pool.delete(this.key);
    this.ws.close(1000, reason);
    setTimeout(() => this.ws.terminate(), 2000).unref();
    this.laneOutput?.close();
  }

  #isLate(id: number): boolean {
    return id > 0 && id < this.#nextId;
  }

  #onMessage(buf: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    if (isBinary) {
      // The receive lane first: the frames it queued for playout are marked, and skipped here.
      const lane = this.laneOutput;
      if (lane) lane.runBot(buf);
      const problem = readRecords(
        buf,
        (id, bytes) => {
          const s = this.streams.get(id);
          if (s) s.onAudio(bytes);
          else if (this.#isLate(id)) this.late++;
          else this.bad('unknown-stream', `binary record for unknown stream ${id}`);
        },
        lane ? LANE_TAKEN : undefined,
      );
      if (problem) this.bad(problem.kind, problem.reason);
      return;
    }
    const obj = jsonObject(buf.toString('utf8'));
    if (!obj) return this.bad('not-json', 'text message is not a JSON object');
    const id = obj['stream'];
    if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0) return this.bad('no-stream', 'text message without a positive integer "stream"');
    const s = this.streams.get(id);
    if (!s) {
      if (this.#isLate(id)) this.late++;
      else this.bad('unknown-stream', `text message for unknown stream ${id}`);
      return;
    }
    const r = BotControlSchema.safeParse(obj);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const reason = `invalid control message: ${issue.path.join('.') || 'type'}: ${issue.message}`;
      return this.bad(reason, reason, s);
    }
    const m = r.data;
    let cmd: BotCommand;
    if (m.type === 'hangup') cmd = { type: 'hangup', reason: m.reason ?? 'bot asked to hang up' };
    else if (m.type === 'sendDtmf') cmd = { type: 'sendDtmf', digits: m.digits, durationMs: m.durationMs ?? DEFAULT_DTMF_MS };
    else cmd = m;
    s.onCommand(cmd);
  }

  /**
   * Bad input from the bot: dropped and counted; logged once per kind per connection and reported
   * once per kind (to the stream it names, or connection-level without `stream`). Never fatal.
   */
  bad(kind: string, reason: string, stream?: MuxBotStream): void {
    this.badInput++;
    muxCounters.badInput++;
    if (stream) stream.badMessages++;
    logOnce(this.#badSeen, kind, () => {
      this.log.warn({ reason, ...(stream ? { call: stream.callId } : {}) }, 'bad input from mux bot dropped');
      if (stream) stream.send({ type: 'error', reason });
      else this.sendText(JSON.stringify({ type: 'error', reason }));
    });
  }
}

/**
 * One call's stream on a shared `MuxConnection`; the same surface as `BotStream`. On the fast path a
 * caller frame is copied straight into the connection's batch (no allocation per frame); while the
 * socket is behind, frames wait in this stream's own bounded queue, oldest audio dropped first.
 */
export class MuxBotStream {
  #id = 0;
  #closed = false;
  readonly #queue: SendQueue<Audio, EdgeEvent>;
  readonly #audioCmd: { type: 'audio'; samples: Int16Array } = { type: 'audio', samples: NO_SAMPLES };
  #reportedDrops = 0;
  #lastReportAt = 0;
  /**
   * Frames this stream sent and received itself. The receive lane's frames (rx-lane.ts) pass it
   * by: the call's media counts those (framesToBot, framesFromBot).
   */
  framesSent = 0;
  framesReceived = 0;
  badMessages = 0;

  private constructor(
    private readonly conn: MuxConnection,
    readonly protocol: BotProtocol,
    private readonly opts: MuxStreamOptions,
    private readonly handlers: BotStreamHandlers,
  ) {
    this.#queue = new SendQueue(opts.queueFrames);
  }

  /** Joins (or opens) the shared connection and sends this call's `start`; rejects with BotUnreachableError. */
  static async connect(url: string, protocol: BotProtocol, opts: MuxStreamOptions, handlers: BotStreamHandlers): Promise<MuxBotStream> {
    if (protocol.name !== 'native') throw new Error(`native-mux carries native streams, not ${protocol.name}`);
    const conn = await MuxConnection.get(url, opts);
    if (!conn.usable) throw new BotUnreachableError(url, 'bot mux socket closed while connecting');
    const s = new MuxBotStream(conn, protocol, opts, handlers);
    s.#id = conn.attach(s, protocol.open()[0] as string);
    return s;
  }

  get id(): number {
    return this.#id;
  }

  get callId(): string {
    return this.opts.callId;
  }

  get framesDropped(): number {
    return this.#queue.audioDropped;
  }

  /**
   * Where the node's receive lane may add this call's caller frames (CallMedia.laneTo): the
   * connection's batch and this stream's id. The connection says per batch whether it takes
   * frames (open, under its allowance, no stream with a backlog), so the lane's frames never pass
   * frames queued here.
   */
  get laneTarget(): { output: LaneOutput; stream: number } | undefined {
    const out = this.conn.laneOutput;
    return out && !this.#closed ? { output: out, stream: this.#id } : undefined;
  }

  get queued(): number {
    return this.#queue.length;
  }

  #open(): boolean {
    return !this.#closed && this.conn.usable;
  }

  sendAudio(pcm: Int16Array, atMs: number): void {
    if (!this.#open()) return;
    if (this.#queue.length === 0 && this.conn.canSend()) {
      this.framesSent++;
      this.conn.addFrame(this.#id, pcm);
      return;
    }
    this.#queue.pushAudio({ pcm: pcm.slice(), atMs }); // the caller's buffer is reused: copy
    this.conn.backlog(this);
  }

  send(ev: EdgeEvent): void {
    if (!this.#open()) return;
    if (this.#queue.length === 0 && this.conn.canSend()) this.#sendEvent(ev);
    else {
      this.#queue.pushEvent(ev);
      this.conn.backlog(this);
    }
  }

  #sendEvent(ev: EdgeEvent): void {
    const f = this.protocol.event(ev);
    if (typeof f === 'string') this.conn.sendText(tagJson(this.#id, f));
  }

  /** Moves queued frames into the connection's batch (events go as text, in order). */
  drain(force: boolean): void {
    while (this.#queue.length > 0 && (force || this.conn.canSend())) {
      const it = this.#queue.shift()!;
      if (it.kind === 'audio') {
        this.framesSent++;
        this.conn.addFrame(this.#id, it.audio.pcm);
      } else this.#sendEvent(it.event);
    }
  }

  pump(now: number): void {
    if (!this.#open()) return;
    this.conn.maintain(now);
    const dropped = this.framesDropped;
    if (dropped > this.#reportedDrops && now - this.#lastReportAt >= REPORT_EVERY_MS) {
      this.send({ type: 'backpressure', framesDropped: dropped - this.#reportedDrops, totalFramesDropped: dropped });
      this.#reportedDrops = dropped;
      this.#lastReportAt = now;
    }
  }

  onAudio(bytes: Buffer): void {
    if (this.#closed) return;
    if (bytes.length % 2 !== 0) {
      this.conn.bad('odd-length', `record of ${bytes.length} bytes is not whole 16-bit samples`, this);
      return;
    }
    this.framesReceived++;
    // One command object per stream, reused: the call consumes it synchronously.
    this.#audioCmd.samples = samplesOf(bytes);
    this.handlers.onCommand(this.#audioCmd);
    // Let go of the view: it pins the whole received batch (every call's frames), and a stream
    // whose bot goes quiet would hold it for seconds. Measured: batches that outlived two
    // scavenges reached the old generation at 0.7 MB/s at 200 calls, which is what drove the
    // node's major GCs every 5 s (docs/benchmarks/capacity.md).
    this.#audioCmd.samples = NO_SAMPLES;
  }

  onCommand(cmd: BotCommand): void {
    if (!this.#closed) this.handlers.onCommand(cmd);
  }

  /** The shared socket dropped. */
  gone(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.handlers.onClose(reason, true);
  }

  /** Sends what is queued, then `stop`, and leaves the connection; idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    if (this.conn.usable) {
      this.drain(true);
      this.#sendEvent({ type: 'stop', reason });
    }
    this.#closed = true;
    this.conn.detach(this.#id);
  }
}

/** Closes every shared connection of this process (tests, shutdown). */
export function closeMuxConnections(): void {
  for (const c of pool.values()) if (c instanceof MuxConnection) c.close('shutdown');
  pool.clear();
}
