import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { AddressInfo } from 'node:net';
import { acceptMux, selectMuxProtocol, type MuxCall } from '../sdk/mux-server.js';
import { logger } from './log.js';

const log = logger('edge:echo-bot');

/** What the echo bot saw of one call — read by tests and the benchmark. */
export interface EchoCallStats {
  callId: string;
  sampleRate: number;
  frames: number;
  /** Frames whose peak |sample| exceeds the silence threshold. */
  nonSilentFrames: number;
  dtmf: string[];
  stopped: boolean;
  closed: boolean;
}

const SILENCE_PEAK = 64;

/**
 * A bot that plays the caller's audio back: every frame is returned unchanged. It speaks `native`
 * on any path and `native-mux` (through the bot SDK, sdk/mux-server.ts) on `/mux`, or wherever the
 * node offers the `botedge-mux.v1` subprotocol. It is the reference peer for tests, `botedge up`
 * and the benchmark.
 */
export class EchoBot {
  readonly calls = new Map<string, EchoCallStats>();
  private constructor(private readonly wss: WebSocketServer) {}

  static async listen(port: number, host = '127.0.0.1'): Promise<EchoBot> {
    const wss = new WebSocketServer({ port, host, perMessageDeflate: false, handleProtocols: selectMuxProtocol });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    const bot = new EchoBot(wss);
    wss.on('connection', (ws, req) => {
      if (ws.protocol !== '' || req.url?.split('?')[0] === '/mux') acceptMux(ws, req).on('call', (call) => bot.#serveMux(call));
      else bot.#serve(ws);
    });
    return bot;
  }

  get port(): number {
    return (this.wss.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/echo`;
  }

  /** Where `native-mux` routes point. */
  get muxUrl(): string {
    return `ws://127.0.0.1:${this.port}/mux`;
  }

  #serveMux(call: MuxCall): void {
    const stats: EchoCallStats = { callId: call.callId, sampleRate: call.sampleRate, frames: 0, nonSilentFrames: 0, dtmf: [], stopped: false, closed: false };
    this.calls.set(call.callId, stats);
    call.on('audio', (pcm) => {
      stats.frames++;
      if (peakOf(pcm) > SILENCE_PEAK) stats.nonSilentFrames++;
      call.sendAudio(pcm);
    });
    call.on('dtmf', (d) => stats.dtmf.push(d.digit));
    call.on('stop', (reason) => {
      stats.stopped = !reason.startsWith('connection closed');
      stats.closed = true;
    });
  }

  #serve(ws: WebSocket): void {
    let stats: EchoCallStats | undefined;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = data as Buffer;
      if (isBinary) {
        if (!stats) return;
        stats.frames++;
        if (peak(buf) > SILENCE_PEAK) stats.nonSilentFrames++;
        ws.send(buf, { binary: true });
        return;
      }
      let msg: { type?: string; callId?: string; digit?: string; format?: { sampleRate?: number } };
      try {
        msg = JSON.parse(buf.toString('utf8')) as typeof msg;
      } catch {
        return;
      }
      if (msg.type === 'start' && typeof msg.callId === 'string') {
        stats = { callId: msg.callId, sampleRate: msg.format?.sampleRate ?? 8000, frames: 0, nonSilentFrames: 0, dtmf: [], stopped: false, closed: false };
        this.calls.set(msg.callId, stats);
        log.debug({ callId: msg.callId }, 'call started');
      } else if (msg.type === 'dtmf' && stats && typeof msg.digit === 'string') {
        stats.dtmf.push(msg.digit);
      } else if (msg.type === 'stop' && stats) {
        stats.stopped = true;
      }
    });
    ws.on('close', () => {
      if (stats) stats.closed = true;
    });
    ws.on('error', () => undefined);
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

function peakOf(pcm: Int16Array): number {
  let max = 0;
  for (let i = 0; i < pcm.length; i++) max = Math.max(max, Math.abs(pcm[i]!));
  return max;
}

function peak(buf: Buffer): number {
  let max = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) {
    const v = Math.abs(buf.readInt16LE(i));
    if (v > max) max = v;
  }
  return max;
}
