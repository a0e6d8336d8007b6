import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { WebSocket, type RawData } from 'ws';
import { logOnce, type Logger } from '../log.js';
import type { LaneWriter } from '../media/rx-lane.js';
import type { BotCommand, BotProtocol, EdgeEvent } from './protocol.js';
import { SendQueue } from './send-queue.js';
import { signConnect } from './signing.js';

const BINARY = Object.freeze({ binary: true });
const TEXT = Object.freeze({ binary: false });
/** ws.send's options for a frame, without an object per frame. */
function sendOptions(f: string | Uint8Array): { binary: boolean } {
  return typeof f === 'string' ? TEXT : BINARY;
}

export class BotUnreachableError extends Error {
  override name = 'BotUnreachableError';
  constructor(
    readonly url: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${message} (${url})`, options);
  }
}

export interface BotStreamHandlers {
  onCommand(cmd: BotCommand): void;
  /**
   * The stream ended without us closing it. `failure` is true when the bot failed (stopped
   * reading, or the socket dropped without a close handshake) rather than closing normally.
   */
  onClose(reason: string, failure: boolean): void;
  /**
   * A binary message of a protocol whose binary frames are bare PCM (`BotProtocol.binaryIsPcm`),
   * before it is decoded: true when the call queued it for playout itself (the receive lane),
   * and nothing else is done with it.
   */
  takeAudio?(bytes: Buffer): boolean;
}

export interface BotStreamOptions {
  callId: string;
  timeoutMs: number;
  /** Bytes on the socket beyond which frames wait in our own queue instead. */
  sendBufferBytes: number;
  /** Caller-audio frames that may wait in our queue; beyond, the oldest is dropped. */
  queueFrames: number;
  /** No pong for this long: the bot stopped reading. */
  readTimeoutMs: number;
  signingSecret?: string | undefined;
  /** CA certificates for wss:// (PEM); default: the system's. */
  ca?: Buffer | undefined;
  log: Logger;
}

type Audio = { pcm: Int16Array; atMs: number };

/** How often a slow bot is told how many frames it lost, ms. */
const REPORT_EVERY_MS = 1000;

/**
 * One call's WebSocket to its bot, any protocol. The edge is the client (like Twilio <Stream> and
 * jambonz listen). This is the I/O adapter around a pure `BotProtocol`: it signs the connect,
 * sends the protocol's frames through a bounded queue, detects a bot that stopped reading (no pong
 * within `readTimeoutMs`), and turns frames from the bot into commands. Bad input is dropped,
 * counted, logged once per kind and reported to the bot once per kind; it never ends the call.
 */
export class BotStream {
  #closed = false;
  readonly #badSeen = new Set<string>();
  readonly #queue: SendQueue<Audio, EdgeEvent>;
  #pingSentAt = 0;
  #awaitingPongSince = 0;
  #reportedDrops = 0;
  #lastReportAt = 0;
  #framesSent = 0;
  /** The receive lane writing the caller's frames to this socket itself (useLaneWriter), if it does. */
  #writer: LaneWriter | undefined;
  framesReceived = 0;
  badMessages = 0;

  private constructor(
    private readonly ws: WebSocket,
    readonly protocol: BotProtocol,
    private readonly opts: BotStreamOptions,
    private readonly handlers: BotStreamHandlers,
  ) {
    this.#queue = new SendQueue(opts.queueFrames);
  }

  /** Caller-audio frames sent to the bot, the receive lane's included. */
  get framesSent(): number {
    return this.#framesSent + (this.#writer?.sent() ?? 0);
  }

  /** Caller-audio frames dropped because the bot did not keep up. */
  get framesDropped(): number {
    return this.#queue.audioDropped;
  }

  /** Connects and sends the protocol's opening frames; rejects with BotUnreachableError on refusal or timeout. */
  static connect(url: string, protocol: BotProtocol, opts: BotStreamOptions, handlers: BotStreamHandlers): Promise<BotStream> {
    return new Promise((resolve, reject) => {
      const headers = {
        ...(opts.signingSecret ? signConnect(opts.signingSecret, url, opts.callId, Date.now()) : {}),
        ...protocol.handshakeHeaders(url),
      };
      // perMessageDeflate costs ~5x the CPU of a frame for incompressible PCM (issue 6 probes).
      const ws = new WebSocket(url, protocol.subprotocols, {
        perMessageDeflate: false,
        handshakeTimeout: opts.timeoutMs,
        headers,
        ...(opts.ca ? { ca: opts.ca } : {}),
      });
      const stream = new BotStream(ws, protocol, opts, handlers);
      let opened = false;
      ws.binaryType = 'nodebuffer';
      ws.once('open', () => {
        opened = true;
        for (const f of protocol.open()) ws.send(f, sendOptions(f));
        resolve(stream);
      });
      ws.on('message', (data: RawData, isBinary: boolean) => stream.#onMessage(data as Buffer, isBinary));
      ws.on('pong', () => (stream.#awaitingPongSince = 0));
      ws.on('error', (err) => {
        if (!opened) reject(new BotUnreachableError(url, `bot WebSocket did not open: ${err.message}`, { cause: err }));
        else opts.log.warn({ err: err.message }, 'bot socket error');
      });
      ws.on('close', (code, reason) => {
        if (!opened) {
          reject(new BotUnreachableError(url, `bot WebSocket closed before open (${code})`));
          return;
        }
        stream.#writer?.release();
        if (stream.#closed) return;
        stream.#closed = true;
        // 1000 normal, 1001 going away: the bot ended the stream on purpose. Anything else
        // (1006: dropped without a close frame, 1011: bot error) is a failure.
        const failure = code !== 1000 && code !== 1001;
        handlers.onClose(`bot closed the socket (${code}${reason.length ? ` ${reason.toString()}` : ''})`, failure);
      });
    });
  }

  #onMessage(buf: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    if (isBinary && this.protocol.binaryIsPcm && this.handlers.takeAudio?.(buf)) {
      this.framesReceived++;
      return;
    }
    const d = this.protocol.decode(buf, isBinary);
    if (!d.ok) {
      this.#bad(d.kind, d.reason);
      return;
    }
    if (!d.cmd) return;
    if (d.cmd.type === 'audio') this.framesReceived++;
    this.handlers.onCommand(d.cmd);
  }

  #bad(kind: string, reason: string): void {
    this.badMessages++;
    logOnce(this.#badSeen, kind, () => {
      this.opts.log.warn({ reason }, 'bad message from bot dropped');
      this.send({ type: 'error', reason });
    });
  }

  #canSend(): boolean {
    return this.ws.bufferedAmount <= this.opts.sendBufferBytes;
  }

  #flush(force = false): void {
    while (this.#queue.length > 0 && (force || this.#canSend())) {
      const it = this.#queue.shift()!;
      if (it.kind === 'audio') this.#sendAudioNow(it.audio.pcm, it.audio.atMs);
      else this.#sendEventNow(it.event);
    }
  }

  #sendAudioNow(pcm: Int16Array, atMs: number): void {
    const f = this.protocol.audio(pcm, atMs);
    this.#framesSent++;
    this.ws.send(f, sendOptions(f));
  }

  #sendEventNow(ev: EdgeEvent): void {
    const f = this.protocol.event(ev);
    if (f !== undefined) this.ws.send(f, sendOptions(f));
  }

  #open(): boolean {
    return !this.#closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends 20 ms of caller PCM (at the protocol's rate), or queues it while the bot is behind. */
  sendAudio(pcm: Int16Array, atMs: number): void {
    if (!this.#open()) return;
    this.#flush();
    if (this.#queue.length === 0 && this.#canSend()) this.#sendAudioNow(pcm, atMs);
    else {
      this.#queue.pushAudio({ pcm: pcm.slice(), atMs }); // the caller's buffer is reused: copy
      this.#syncWriter();
    }
  }

  send(ev: EdgeEvent): void {
    if (!this.#open()) return;
    this.#flush();
    if (this.#queue.length === 0 && this.#canSend()) this.#sendEventNow(ev);
    else {
      this.#queue.pushEvent(ev);
      this.#syncWriter();
    }
  }

  /**
   * The socket's descriptor when the receive lane may write this stream's caller frames itself
   * (useLaneWriter): the protocol's audio frames are bare PCM, and the socket is plain TCP (a TLS
   * socket's bytes must go through Node's TLS). Undefined otherwise.
   */
  get laneWritableFd(): number | undefined {
    if (!this.protocol.binaryIsPcm || !this.#open()) return undefined;
    const sock = this.#socket();
    if (!sock || sock instanceof TLSSocket) return undefined;
    const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /**
   * The receive lane writes the caller's plain frames to this socket from now on (CallMedia.
   * laneWriter); the frames it hands over still come through sendAudio. So that its whole frames
   * never land between the parts of one of ours, every write to the socket — ours and `ws`'s own
   * (events, pings, pongs, the close) — tells it afterwards whether anything is left unwritten,
   * and so does every change of our queue.
   */
  useLaneWriter(writer: LaneWriter): void {
    const sock = this.#socket();
    if (!sock || this.#closed) {
      writer.release();
      return;
    }
    this.#writer = writer;
    const sync = () => this.#syncWriter();
    const write = sock.write;
    const uncork = sock.uncork;
    sock.write = function (this: Socket, ...args: unknown[]) {
      const r = (write as (...a: unknown[]) => boolean).apply(this, args);
      sync();
      return r;
    } as Socket['write'];
    sock.uncork = function (this: Socket) {
      uncork.call(this);
      sync();
    };
    sock.on('drain', sync);
    sync();
  }

  #socket(): Socket | undefined {
    return (this.ws as unknown as { _socket?: Socket })._socket;
  }

  #syncWriter(): void {
    const w = this.#writer;
    if (!w) return;
    const sock = this.#socket();
    w.setBlocked(this.#queue.length > 0 || !sock || sock.writableLength > 0);
  }

  /**
   * Runs once per 20 ms tick: drains what the socket can take, reports drops to the bot (at most
   * once a second), pings, and fails the stream when the bot has not answered a ping for
   * `readTimeoutMs` (a bot that stopped reading cannot see the ping, queued behind its backlog).
   */
  pump(now: number): void {
    if (!this.#open()) return;
    this.#flush();
    const dropped = this.framesDropped;
    if (dropped > this.#reportedDrops && now - this.#lastReportAt >= REPORT_EVERY_MS) {
      this.send({ type: 'backpressure', framesDropped: dropped - this.#reportedDrops, totalFramesDropped: dropped });
      this.#reportedDrops = dropped;
      this.#lastReportAt = now;
    }
    const timeout = this.opts.readTimeoutMs;
    if (this.#awaitingPongSince > 0 && now - this.#awaitingPongSince > timeout) {
      const reason = `bot stopped reading: no answer to a WebSocket ping for ${timeout} ms (${this.#queue.length} frames waiting)`;
      this.opts.log.warn({ timeoutMs: timeout, queued: this.#queue.length, buffered: this.ws.bufferedAmount }, 'bot stalled: disconnecting');
      this.#closed = true;
      this.#writer?.release();
      this.ws.terminate();
      this.handlers.onClose(reason, true);
      return;
    }
    if (this.#awaitingPongSince === 0 && now - this.#pingSentAt >= Math.max(50, timeout / 4)) {
      this.#pingSentAt = now;
      this.#awaitingPongSince = now;
      this.ws.ping();
    }
  }

  /** Sends what is queued, then the protocol's `stop`, and closes; idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    if (this.ws.readyState === WebSocket.OPEN) {
      this.#flush(true);
      this.#sendEventNow({ type: 'stop', reason });
    }
    this.#closed = true;
    this.#writer?.release();
    this.ws.close(1000, reason.slice(0, 120));
    // A bot that never completes the closing handshake must not keep the socket forever.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }
}
