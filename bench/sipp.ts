/**
 * The interop run: SIPp's stock `uac_pcap` scenario (INVITE with a PCMA offer, ACK, an 8 s G.711
 * A-law recording played from a pcap, an RFC 4733 DTMF, BYE) drives the same media node and echo
 * bot, so the figures are not only our load generator's word. SIPp cannot read our frame markers,
 * so here the figures are call outcomes (SIPp's own statistics), SUT CPU per call-second (from /proc,
 * sampled every second against the node's live call count from its NATS events), and the frame
 * counts the bot and the node report.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { monoMs } from './clock.js';
import { EndedTally } from './ended-tally.js';
import type { QosSummary } from '../edge/media/qos.js';
import type { BotReport } from './messages.js';
import { cpuBetween, sampleProc } from './proc.js';
import { Children, forkBench, freePort, pin, REPO_ROOT, startMediaNode, startNats } from './procs.js';

export interface SippOptions {
  calls: number;
  rate: number;
  total: number;
  pin: boolean;
  rtpPortMin: number;
  rtpPortMax: number;
  mediaCli?: string;
  out: string;
}

export interface SippResult {
  scenario: string;
  cores: number;
  node_version: string;
  sipp_version: string;
  calls_target: number;
  calls_total: number;
  calls_successful: number;
  calls_failed: number;
  sipp_exit_code: number | null;
  /** Mean concurrent calls over the seconds counted for CPU. */
  concurrent_calls_mean: number;
  cpu_us_per_call_second: number;
  setup_ms_mean: number | null;
  frames_to_bot_per_call: number;
  bot_frames: number;
  edge_media_stats: Record<string, number>;
  edge_qos: QosSummary | undefined;
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

/** SIPp's -trace_stat CSV: `;`-separated, one header line, one line per period; we read the last. */
function readStat(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const head = lines[0]?.split(';') ?? [];
  const last = lines[lines.length - 1]?.split(';') ?? [];
  const out: Record<string, string> = {};
  head.forEach((h, i) => (out[h] = last[i] ?? ''));
  return out;
}

/** SIPp prints durations as HH:MM:SS:mmm[uuu]. */
function durationMs(v: string | undefined): number | null {
  if (!v) return null;
  const p = v.split(':').map(Number);
  if (p.length < 4 || p.some((n) => !Number.isFinite(n))) return null;
  const [h, m, s, ms] = p as [number, number, number, number];
  const frac = ms >= 1000 ? ms / 1000 : ms; // some builds print µs
  return h * 3_600_000 + m * 60_000 + s * 1000 + frac;
}

export async function runSipp(opts: SippOptions, say: (line: string) => void): Promise<SippResult> {
  mkdirSync(opts.out, { recursive: true });
  const children = new Children(opts.out);
  let nc: NatsConnection | undefined;
  const t0 = monoMs();
  const elapsed = () => `${((monoMs() - t0) / 1000).toFixed(1).padStart(6)}s`;
  try {
    const nats = await startNats(children);
    const bot = await forkBench<{ type: 'ready'; port: number }>(children, 'echo-bot', ['0', '--echo-all']);
    const media = await startMediaNode(children, opts.out, {
      natsUrl: nats.url,
      botUrl: `ws://127.0.0.1:${bot.ready.port}/sipp`,
      rtpPortMin: opts.rtpPortMin,
      rtpPortMax: opts.rtpPortMax,
      nodeId: 'bench-media-sipp',
      maxCalls: Math.max(2000, opts.calls * 2),
      ...(opts.mediaCli ? { cli: opts.mediaCli } : {}),
    });
    const cores = availableParallelism();
    const sutCpu = String(cores - 1);
    const rest = cores === 2 ? '0' : `0-${cores - 2}`;
    if (opts.pin && cores >= 2) {
      pin(media.child.pid!, sutCpu);
      pin(bot.child.pid!, rest);
      pin(nats.child.pid!, rest);
    }

    nc = await connect({ servers: nats.url, name: 'bench-sipp' });
    let active = 0;
    let ended = 0;
    const tally = new EndedTally();
    const created = nc.subscribe('botedge.v1.call.created');
    const gone = nc.subscribe('botedge.v1.call.ended');
    void (async () => {
      for await (const _ of created) active++;
    })().catch(() => undefined);
    void (async () => {
      for await (const m of gone) {
        active--;
        ended++;
        tally.add(m.json());
      }
    })().catch(() => undefined);

    const sippPort = await freePort();
    const mediaPort = 16000 + Math.floor(Math.random() * 4000) * 2;
    const stat = join(opts.out, 'sipp-stat.csv');
    const args = [
      '-sn', 'uac_pcap',
      '-s', 'bench',
      `127.0.0.1:${media.sipPort}`,
      '-i', '127.0.0.1',
      '-p', String(sippPort),
      '-mp', String(mediaPort),
      '-r', String(opts.rate),
      '-l', String(opts.calls),
      '-m', String(opts.total),
      '-nostdin',
      '-trace_stat', '-stf', stat, '-fd', '1',
      '-trace_err', '-error_file', join(opts.out, 'sipp-errors.log'),
    ];
    say(`[${elapsed()}] sipp ${args.join(' ')}`);
    // Run from the repository root: the stock scenario plays pcap/g711a.pcap relative to it.
    const sipp = children.track(spawn('sipp', args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] }), 'sipp');
    if (opts.pin && cores >= 2 && sipp.pid) pin(sipp.pid, rest);
    const exit = new Promise<number | null>((resolve) => sipp.once('exit', (code) => resolve(code)));

    // Sample the SUT every second; count the seconds when at least 90% of the target is up.
    let last = sampleProc(media.child.pid!, monoMs());
    let cpuUs = 0;
    let callSeconds = 0;
    let countedS = 0;
    let done = false;
    void exit.then(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = sampleProc(media.child.pid!, monoMs());
      if (!now || !last) break;
      const dt = (now.atMs - last.atMs) / 1000;
      const used = cpuBetween(last, now);
      last = now;
      const steady = active >= 0.9 * opts.calls;
      if (steady) {
        cpuUs += used;
        callSeconds += active * dt;
        countedS += dt;
      }
      say(`[${elapsed()}] sipp: ${active} calls up, ${ended} ended | media cpu ${((used / (dt * 1e6)) * 100).toFixed(0)}%${steady ? ' (counted)' : ''}`);
    }
    const code = await exit;
    await new Promise((r) => setTimeout(r, 1000));
    bot.child.send({ type: 'report' });
    const br = await new Promise<BotReport>((resolve) => bot.child.once('message', (m: BotReport) => resolve(m)));
    const s = readStat(stat);
    const successful = Number(s['SuccessfulCall(C)'] ?? 0);
    const failedCalls = Number(s['FailedCall(C)'] ?? 0);
    let version = 'unknown';
    try {
      const v = spawn('sipp', ['-v']);
      version = await new Promise<string>((resolve) => {
        let t = '';
        v.stdout.on('data', (d: Buffer) => (t += d.toString()));
        v.on('close', () => resolve((/SIPp v[\w.-]+/.exec(t) ?? ['unknown'])[0]));
      });
    } catch {
      /* keep unknown */
    }
    const result: SippResult = {
      scenario: 'sipp:uac_pcap:pcma:media-direct:native-echo',
      cores,
      node_version: process.version,
      sipp_version: version,
      calls_target: opts.calls,
      calls_total: Number(s['TotalCallCreated'] ?? successful + failedCalls),
      calls_successful: successful,
      calls_failed: failedCalls,
      sipp_exit_code: code,
      concurrent_calls_mean: countedS > 0 ? round(callSeconds / countedS, 1) : 0,
      cpu_us_per_call_second: callSeconds > 0 ? round(cpuUs / callSeconds, 1) : 0,
      setup_ms_mean: durationMs(s['ResponseTime1(C)']),
      frames_to_bot_per_call: br.starts > 0 ? round(br.framesTotal / br.starts, 1) : 0,
      bot_frames: br.framesTotal,
      edge_media_stats: tally.media,
      edge_qos: tally.qos(),
    };
    writeFileSync(join(opts.out, 'sipp-result.json'), JSON.stringify(result, null, 2) + '\n');
    bot.child.send({ type: 'exit' });
    return result;
  } finally {
    await nc?.close().catch(() => undefined);
    await children.stopAll();
  }
}
