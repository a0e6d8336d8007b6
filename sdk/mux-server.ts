/**
 * BotEdge bot SDK for the `native-mux` transport (docs/bot-protocols.md#native-mux).
 *
 * A media node opens ONE WebSocket to your bot and carries all its calls on it; this module
 * demultiplexes it, so a bot sees ordinary per-call streams:
 *
 * ```ts
 * const server = await MuxServer.listen({ port: 8080, path: '/mux' });
 * server.on('call', (call) => {
 *   call.on('audio', (pcm) => call.sendAudio(pcm));   // an echo bot
 *   call.on('dtmf', (d) => d.digit === '#' && call.hangup('bye'));
 *   call.on('stop', (reason) => console.log(call.callId, 'ended:', reason));
 * });
 * ```
 *
 * Audio you send is batched: every `sendAudio` of every call made in one turn of the event loop
 * leaves as one binary message. Control messages (`mark`, `clear`, `hangup`, …) go after the audio
 * sent before them, so a mark follows its audio. Depends only on `ws` and Node.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { MUX_SUBPROTOCOL, RecordWriter, readRecords, samplesOf, tagJson, type MuxNodeEvent, type MuxStart } from './mux-wire.js';

export { MUX_SUBPROTOCOL } from './mux-wire.js';
export type { MuxStart, MuxNodeEvent } from './mux-wire.js';

export interface MuxCallEvents {
  /** 20 ms of caller PCM at `format.sampleRate`; the view is valid only during the listener. */
  audio: [pcm: Int16Array];
  dtmf: [ev: { digit: string; durationMs: number }];
  /** Playout passed your mark (`cleared: false`), or a `clear` discarded it (`cleared: true`). */
  mark: [ev: { name: string; cleared: boolean }];
  /** Any other node event: overflow, backpressure, transfer, error. */
  event: [ev: MuxNodeEvent];
  /** The call ended (node `stop`, or the connection closed); nothing more arrives. */
  stop: [reason: string];
}

/** One call on a mux connection. */
export class MuxCall extends EventEmitter<MuxCallEvents> {
  #ended = false;
  /** Listener exceptions caught (a bot's bug must not break the other calls on the connection). */
  listenerErrors = 0;

  constructor(
    readonly connection: MuxConnection,
    readonly start: MuxStart,
  ) {
    super();
  }

  get stream(): number {
    return this.start.stream;
  }
  get callId(): string {
    return this.start.callId;
  }
  get sampleRate(): number {
    return this.start.format.sampleRate;
  }
  get ended(): boolean {
    return this.#ended;
  }

  /** Queues PCM (16-bit at `sampleRate`, any length) to play; the node paces it. Copied at once. */
  sendAudio(pcm: Int16Array | Uint8Array): void {
    if (!this.#ended) this.connection.addAudio(this.stream, pcm);
  }

  /** Asks to be told (a `mark` event) when everything sent before it has been played. */
  mark(name: string): void {
    this.#control({ type: 'mark', name });
  }

  /** Barge-in: drop the audio queued at the node; pending marks come back cleared. */
  clear(): void {
    this.#control({ type: 'clear' });
  }

  hangup(reason?: string): void {
    this.#control(reason === undefined ? { type: 'hangup' } : { type: 'hangup', reason });
  }

  transfer(target: string): void {
    this.#control({ type: 'transfer', target });
  }

  sendDtmf(digits: string, durationMs?: number): void {
    this.#control(durationMs === undefined ? { type: 'sendDtmf', digits } : { type: 'sendDtmf', digits, durationMs });
  }

  #control(msg: Record<string, unknown>): void {
    if (!this.#ended) this.connection.sendText(tagJson(this.stream, JSON.stringify(msg)));
  }

  /** Dispatch from the connection; listener errors are counted, never thrown into the demux loop. */
  deliver<K extends keyof MuxCallEvents>(name: K, ...args: MuxCallEvents[K]): void {
    if (this.#ended) return;
    if (name === 'stop') this.#ended = true;
    try {
      (this.emit as (n: K, ...a: MuxCallEvents[K]) => boolean)(name, ...args);
    } catch {
      this.listenerErrors++;
    }
  }
}

export interface MuxConnectionEvents {
  call: [call: MuxCall];
  close: [code: number];
}

/** One media node's connection: demultiplexes its calls, batches what the bot sends back. */
export class MuxConnection extends EventEmitter<MuxConnectionEvents> {
  readonly calls = new Map<number, MuxCall>();
  readonly #writer = new RecordWriter();
  #flushScheduled = false;
  /** Records for streams we do not know, and records cut short: dropped, counted. */
  badRecords = 0;
  badText = 0;
  readonly #flush = () => {
    this.#flushScheduled = false;
    this.flush();
  };

  constructor(
    readonly ws: WebSocket,
    readonly request?: IncomingMessage,
  ) {
    super();
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(data as Buffer, isBinary));
    ws.on('close', (code) => {
      for (const c of this.calls.values()) c.deliver('stop', `connection closed (${code})`);
      this.calls.clear();
      this.emit('close', code);
    });
    ws.on('error', () => undefined);
  }

  addAudio(stream: number, pcm: Int16Array | Uint8Array): void {
    this.#writer.add(stream, pcm);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  sendText(text: string): void {
    this.flush();
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }

  /** Sends the audio batched so far now (normally done at the end of the event-loop turn). */
  flush(): void {
    const msg = this.#writer.take();
    if (msg && this.ws.readyState === this.ws.OPEN) this.ws.send(msg, { binary: true });
  }

  #onMessage(buf: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const problem = readRecords(buf, (id, bytes) => {
        const call = this.calls.get(id);
        if (!call || bytes.length % 2 !== 0) this.badRecords++;
        else call.deliver('audio', samplesOf(bytes));
      });
      if (problem) this.badRecords++;
      return;
    }
    let msg: { type?: unknown; stream?: unknown } & Record<string, unknown>;
    try {
      msg = JSON.parse(buf.toString('utf8')) as typeof msg;
    } catch {
      this.badText++;
      return;
    }
    if (typeof msg !== 'object' || msg === null) {
      this.badText++;
      return;
    }
    const id = msg.stream;
    if (msg.type === 'start' && typeof id === 'number') {
      const call = new MuxCall(this, msg as unknown as MuxStart);
      this.calls.set(id, call);
      this.emit('call', call);
      return;
    }
    if (typeof id !== 'number') {
      // Connection-level (a node `error` about something we sent): surface it on every call? No:
      // it names no call. Count it; a bot that cares listens on the raw socket.
      this.badText += msg.type === 'error' ? 0 : 1;
      return;
    }
    const call = this.calls.get(id);
    if (!call) return;
    switch (msg.type) {
      case 'dtmf':
        call.deliver('dtmf', { digit: String(msg['digit']), durationMs: Number(msg['durationMs']) });
        break;
      case 'mark':
        call.deliver('mark', { name: String(msg['name']), cleared: msg['cleared'] === true });
        break;
      case 'stop':
        this.calls.delete(id);
        call.deliver('stop', String(msg['reason'] ?? ''));
        break;
      default:
        call.deliver('event', msg as unknown as MuxNodeEvent);
    }
  }
}

/** Accepts `native-mux` on a socket your own WebSocketServer accepted (it must have selected `botedge-mux.v1`). */
export function acceptMux(ws: WebSocket, request?: IncomingMessage): MuxConnection {
  return new MuxConnection(ws, request);
}

/** For your own `WebSocketServer`'s `handleProtocols`: selects `botedge-mux.v1` when offered. */
export function selectMuxProtocol(protocols: Set<string>): string | false {
  return protocols.has(MUX_SUBPROTOCOL) ? MUX_SUBPROTOCOL : false;
}

export interface MuxServerOptions {
  /** TCP port (0: any free one). Ignored with `server`. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Accept only this path (e.g. '/mux'); default any. */
  path?: string;
  /** Attach to an existing HTTP(S) server instead of listening. */
  server?: Server;
  /** Check the upgrade (e.g. `verifyConnect` of the signature headers); false refuses it with 401. */
  verify?: (req: IncomingMessage) => boolean;
}

export interface MuxServerEvents {
  call: [call: MuxCall];
  connection: [conn: MuxConnection];
}

/** A WebSocket server that speaks `native-mux`: emits `call` for every call of every node. */
export class MuxServer extends EventEmitter<MuxServerEvents> {
  readonly connections = new Set<MuxConnection>();

  private constructor(readonly wss: WebSocketServer) {
    super();
    wss.on('connection', (ws, req) => {
      const conn = acceptMux(ws, req);
      this.connections.add(conn);
      conn.on('close', () => this.connections.delete(conn));
      conn.on('call', (call) => this.emit('call', call));
      this.emit('connection', conn);
    });
  }

  static async listen(opts: MuxServerOptions = {}): Promise<MuxServer> {
    const verify = opts.verify;
    const wss = new WebSocketServer({
      ...(opts.server ? { server: opts.server } : { port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' }),
      ...(opts.path ? { path: opts.path } : {}),
      perMessageDeflate: false,
      handleProtocols: selectMuxProtocol,
      ...(verify ? { verifyClient: (info: { req: IncomingMessage }, cb: (ok: boolean, code?: number) => void) => cb(verify(info.req), 401) } : {}),
    });
    if (!opts.server) {
      await new Promise<void>((resolve, reject) => {
        wss.once('listening', resolve);
        wss.once('error', reject);
      });
    }
    return new MuxServer(wss);
  }

  get port(): number {
    return (this.wss.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
