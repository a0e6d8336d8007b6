import { WebSocket, type RawData } from 'ws';
import { logOnce, type Logger } from '../log.js';
import { parseBotText, type BotControl, type EdgeEvent, type StartFrame } from './native-protocol.js';

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
  /** PCM from the bot, a whole number of samples; the view is only valid during the call. */
  onAudio(samples: Int16Array): void;
  onControl(msg: BotControl): void;
  /** The socket closed without us closing it. */
  onClose(reason: string): void;
}

/**
 * One call's WebSocket to its bot, `native` protocol. The edge is the client (like Twilio
 * <Stream>). Bad input from the bot is dropped, counted, logged once per kind and reported to the
 * bot once as an `error` event; it never ends the call by itself.
 */
export class BotStream {
  #closed = false;
  readonly #badSeen = new Set<string>();
  framesSent = 0;
  framesReceived = 0;
  framesDropped = 0;
  badMessages = 0;

  private constructor(
    private readonly ws: WebSocket,
    private readonly log: Logger,
    private readonly sendBufferBytes: number,
  ) {}

  /** Connects and sends the `start` frame; rejects with BotUnreachableError on refusal or timeout. */
  static connect(
    url: string,
    start: StartFrame,
    opts: { timeoutMs: number; sendBufferBytes: number; log: Logger },
    handlers: BotStreamHandlers,
  ): Promise<BotStream> {
    return new Promise((resolve, reject) => {
      // perMessageDeflate costs ~5x the CPU of a frame for incompressible PCM (issue 6 probes).
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: opts.timeoutMs });
      const stream = new BotStream(ws, opts.log, opts.sendBufferBytes);
      let opened = false;
      ws.binaryType = 'nodebuffer';
      ws.once('open', () => {
        opened = true;
        ws.send(JSON.stringify(start));
        resolve(stream);
      });
      ws.on('message', (data: RawData, isBinary: boolean) => stream.#onMessage(data, isBinary, handlers));
      ws.on('error', (err) => {
        if (!opened) reject(new BotUnreachableError(url, 'bot WebSocket did not open', { cause: err }));
        else opts.log.warn({ err: err.message }, 'bot socket error');
      });
      ws.on('close', (code, reason) => {
        if (!opened) {
          reject(new BotUnreachableError(url, `bot WebSocket closed before open (${code})`));
          return;
        }
        if (stream.#closed) return;
        stream.#closed = true;
        handlers.onClose(`bot closed the socket (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
      });
    });
  }

  #onMessage(data: RawData, isBinary: boolean, handlers: BotStreamHandlers): void {
    if (this.#closed) return;
    const buf = data as Buffer;
    if (isBinary) {
      if (buf.length % 2 !== 0) return this.#bad('odd-length', `binary frame of ${buf.length} bytes is not whole 16-bit samples`);
      this.framesReceived++;
      // ws hands us a fresh Buffer per message; its offset may be odd, so copy only when it must.
      const samples =
        buf.byteOffset % 2 === 0
          ? new Int16Array(buf.buffer, buf.byteOffset, buf.length / 2)
          : new Int16Array(new Uint8Array(buf).buffer);
      handlers.onAudio(samples);
      return;
    }
    const parsed = parseBotText(buf.toString('utf8'));
    if (!parsed.ok) return this.#bad(parsed.reason, parsed.reason);
    handlers.onControl(parsed.msg);
  }

  #bad(kind: string, reason: string): void {
    this.badMessages++;
    logOnce(this.#badSeen, kind, () => {
      this.log.warn({ reason }, 'bad message from bot dropped');
      this.send({ type: 'error', reason });
    });
  }

  /** Sends caller PCM; drops (and counts) when the bot is not reading fast enough. */
  sendAudio(pcm: Uint8Array): void {
    if (this.#closed || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.ws.bufferedAmount > this.sendBufferBytes) {
      this.framesDropped++;
      return;
    }
    this.framesSent++;
    this.ws.send(pcm, { binary: true });
  }

  send(event: EdgeEvent): void {
    if (this.#closed || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify(event));
  }

  /** Sends `stop` and closes; idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.send({ type: 'stop', reason });
    this.#closed = true;
    this.ws.close(1000, reason.slice(0, 120));
    // A bot that never completes the closing handshake must not keep the socket forever.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }
}
