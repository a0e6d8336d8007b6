/**
 * Real peers for integration tests: a nats-server of our own on a free port, botedge processes,
 * SIPp runs, an RTP tap and a NATS event collector. Every process started here is stopped here,
 * by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { alawDecode, ulawDecode } from '../../codecs/g711.js';
import { parseRtp } from '../../codecs/rtp.js';
import { EchoBot } from '../../edge/echo-bot.js';
import { waitForPort } from '../../edge/up.js';
import { RawUac } from './raw-uac.js';

export const CLI = fileURLToPath(new URL('../../edge/cli.js', import.meta.url));

/** Candidates for freePort: below the kernel's ephemeral range (32768–60999) and the RTP ranges tests use (30000+). */
const PORT_MIN = 20000;
const PORT_SPAN = 10000;

function bindsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function bindsUdp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port free for both TCP and UDP on loopback (a SIP port is both). Taken outside the ephemeral
 * range: a port the kernel handed out for `listen(0)` can be handed out again, before the test's
 * process binds it, as the local port of some outgoing connection (a NATS or WebSocket client):
 * the cluster test's node once failed with EADDRINUSE that way.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = PORT_MIN + Math.floor(Math.random() * PORT_SPAN);
    if ((await bindsTcp(port)) && (await bindsUdp(port))) return port;
  }
  throw new Error(`no free port in ${PORT_MIN}-${PORT_MIN + PORT_SPAN - 1} after 200 tries`);
}

export function stopProcess(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p?.exitCode ?? null);
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    p.kill(signal);
  });
}

export interface NatsServer {
  url: string;
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export async function startNats(): Promise<NatsServer> {
  const port = await freePort();
  const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await waitForPort(port);
  return { url: `nats://127.0.0.1:${port}`, port, proc, stop: async () => void (await stopProcess(proc)) };
}

export interface Botedge {
  proc: ChildProcess;
  lines: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `botedge <args>`, resolving when a stdout line contains `ready`. Stderr (logs) is kept. */
export function startBotedge(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Botedge> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const lines: string[] = [];
    const be: Botedge = { proc, lines, stop: (sig) => stopProcess(proc, sig) };
    createInterface({ input: proc.stderr! }).on('line', (l) => lines.push(l));
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      lines.push(l);
      if (l.includes('ready')) resolve(be);
    });
    proc.once('exit', (code) => reject(new Error(`botedge ${args[0]} exited ${code}:\n${lines.join('\n')}`)));
  });
}

/** Starts a media node from a config object (written to a temp file). */
export async function startMediaNode(config: Record<string, unknown>): Promise<Botedge & { sipPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'botedge-'));
  const file = join(dir, 'media.json');
  writeFileSync(file, JSON.stringify(config));
  const be = await startBotedge(['media', '-c', file]);
  return { ...be, sipPort: config.sipPort as number };
}

/** What many call tests start with: NATS, the echo bot, a media node routing every number to it, events and a raw UAC. */
export interface EchoNode {
  nats: NatsServer;
  bot: EchoBot;
  node: Botedge & { sipPort: number };
  events: EventCollector;
  uac: RawUac;
  stop(): Promise<void>;
}

/** Starts an EchoNode; `config` adds to (or overrides) the media node's config, `route` to its default route. */
export async function startEchoNode(config: Record<string, unknown>, route: Record<string, unknown> = {}): Promise<EchoNode> {
  const nats = await startNats();
  const bot = await EchoBot.listen(0);
  const node = await startMediaNode({ sipPort: await freePort(), natsUrl: nats.url, defaultRoute: { url: bot.url, ...route }, ...config });
  const events = await EventCollector.start(nats.url);
  const uac = await RawUac.open(node.sipPort);
  return {
    nats,
    bot,
    node,
    events,
    uac,
    async stop() {
      uac.close();
      await events.close();
      await node.stop();
      await bot.close();
      await nats.stop();
    },
  };
}

/** A working directory where SIPp's built-in uac_pcap finds `pcap/g711a.pcap`. */
export function sippWorkdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
  symlinkSync('/usr/share/sip-tester', join(dir, 'pcap'));
  return dir;
}

export interface SippResult {
  code: number | null;
  stdout: string;
  stderr: string;
  successful: number;
  failed: number;
}

/** Runs SIPp to completion (bounded by `timeoutMs`) and reads its final counters from -trace_stat-like screen output. */
export function runSipp(args: string[], cwd: string, timeoutMs = 60000): Promise<SippResult> {
  return new Promise((resolve) => {
    const proc = spawn('sipp', [...args, '-nostdin', '-timeout', `${Math.ceil(timeoutMs / 1000)}s`], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs + 5000);
    // 'close', not 'exit': 'exit' can come before the pipes are drained, and SIPp's final screen
    // (the counters read below) is the last thing it writes. CI once read a -1 that way.
    proc.on('close', (code) => {
      clearTimeout(killer);
      const counter = (name: string) => {
        const m = new RegExp(`${name}\\s*\\|\\s*\\d+\\s*\\|\\s*(\\d+)`).exec(stdout);
        return m ? Number(m[1]) : -1;
      };
      resolve({ code, stdout, stderr, successful: counter('Successful call'), failed: counter('Failed call') });
    });
  });
}

export interface CollectedEvent {
  subject: string;
  data: Record<string, unknown>;
}

/** Collects every `botedge.v1.call.>` event. */
export class EventCollector {
  readonly events: CollectedEvent[] = [];
  private constructor(private readonly nc: NatsConnection) {}

  static async start(url: string): Promise<EventCollector> {
    const nc = await connect({ servers: url });
    const c = new EventCollector(nc);
    const sub = nc.subscribe('botedge.v1.call.>');
    void (async () => {
      for await (const m of sub) c.events.push({ subject: m.subject, data: m.json<Record<string, unknown>>() });
    })();
    await nc.flush();
    return c;
  }

  of(event: string): CollectedEvent[] {
    return this.events.filter((e) => e.data.event === event);
  }

  /** Resolves when `pred` holds, polling every 50 ms; rejects after `timeoutMs`. */
  async until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

export interface TapStream {
  packets: number;
  nonSilent: number;
  payloadTypes: Set<number>;
  /** The SSRCs seen from this port (one per stream; more would mean two streams shared a socket). */
  ssrcs: Set<number>;
}

/**
 * Our own RTP receiver standing where the caller's SDP points: counts packets per sending port
 * and how many carry non-silent G.711 audio (peak |sample| above a threshold after decoding).
 */
export class RtpTap {
  readonly streams = new Map<number, TapStream>();
  readonly #pcm = new Int16Array(2048);
  private constructor(readonly socket: Socket) {}

  static async open(): Promise<RtpTap> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const tap = new RtpTap(socket);
    socket.on('message', (msg, rinfo) => tap.#onPacket(msg, rinfo.port));
    return tap;
  }

  get port(): number {
    return this.socket.address().port;
  }

  #onPacket(msg: Buffer, from: number): void {
    let s = this.streams.get(from);
    if (!s) this.streams.set(from, (s = { packets: 0, nonSilent: 0, payloadTypes: new Set(), ssrcs: new Set() }));
    s.packets++;
    const pkt = parseRtp(msg);
    s.payloadTypes.add(pkt.payloadType);
    s.ssrcs.add(pkt.ssrc);
    const n = Math.min(pkt.payload.length, this.#pcm.length);
    const pcm = this.#pcm.subarray(0, n);
    if (pkt.payloadType === 8) alawDecode(pkt.payload.subarray(0, n), pcm);
    else if (pkt.payloadType === 0) ulawDecode(pkt.payload.subarray(0, n), pcm);
    else return;
    let peak = 0;
    for (let i = 0; i < n; i++) peak = Math.max(peak, Math.abs(pcm[i]!));
    if (peak > 64) s.nonSilent++;
  }

  close(): void {
    this.socket.close();
  }
}
