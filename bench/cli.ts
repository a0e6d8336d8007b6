#!/usr/bin/env node
/**
 * `npm run bench -- [options]`: the capacity benchmark (issue 3). See BENCHMARKS.md.
 *
 *   npm run bench -- --calls 200 --duration 30 --out /tmp/b        fixed load
 *   npm run bench -- --ramp --calls 3000 --duration 10 --out /tmp/r   ramp until a limit breaks
 *   npm run bench -- sipp --calls 100 --out /tmp/s                  interop run driven by SIPp
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Command, InvalidArgumentError } from 'commander';
import { RouteSchema } from '../edge/config.js';
import { compareRuns, type FallbackKind } from './compare.js';
import { DEFAULT_BOT_NICE, runBench } from './run.js';
import { runSipp } from './sipp.js';

function int(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer >= ${min}`);
    return n;
  };
}

function num(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`must be a number >= ${min}`);
    return n;
  };
}

function range(value: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(value);
  if (!m || Number(m[1]) >= Number(m[2])) throw new InvalidArgumentError('must look like 12000-31999');
  return [Number(m[1]), Number(m[2])];
}

/** A parser for an option that takes one of `values`; the error lists them. */
function oneOf<const T extends string>(...values: T[]) {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of: ${values.join(', ')}`);
    return value as T;
  };
}

const rtpIoName = oneOf('native', 'dgram', 'both');
const loadgenIoName = oneOf('native', 'dgram');
const addonMode = oneOf('on', 'off', 'both');
const niceValue = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < -20 || n > 19) throw new InvalidArgumentError('must be an integer from -20 to 19');
  return n;
};
const pacingName = oneOf('io', 'timer');
const socketsMode = oneOf('shared', 'per-call');
const protocolName = oneOf('native', 'native-mux');
const botIoName = oneOf('raw', 'ws');
const codecName = oneOf('pcmu', 'opus');
const botRateName = oneOf('8000', '16000');
const botRate = (value: string) => Number(botRateName(value)) as 8000 | 16000;
/** The route's `playoutCatchUpMs`, checked by the node's own schema (edge/config.ts) so the two cannot drift. */
const CATCH_UP_MS = RouteSchema.shape.playoutCatchUpMs;
/** The route's `opusComplexity`, by the same schema. */
const OPUS_COMPLEXITY = RouteSchema.shape.opusComplexity;
/** A numeric route field from the command line, checked by its schema. */
function routeNumber(schema: typeof CATCH_UP_MS | typeof OPUS_COMPLEXITY) {
  return (value: string): number => {
    const r = schema.safeParse(Number(value));
    if (!r.success) throw new InvalidArgumentError(r.error.issues.map((i) => i.message).join('; '));
    return r.data;
  };
}
const catchUpMs = routeNumber(CATCH_UP_MS);
const opusComplexity = routeNumber(OPUS_COMPLEXITY);

const say = (line: string) => process.stdout.write(line + '\n');
const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();

const program = new Command()
  .name('bench')
  .description('BotEdge capacity benchmark: SIP + G.711 RTP load against a media node with an echo bot')
  .enablePositionalOptions()
  .option('--calls <n>', 'concurrent calls (fixed), or the ceiling of a ramp', int(1), 200)
  .option('--duration <s>', 'steady-state measurement window in seconds (per step when ramping)', num(1), 30)
  .option('--rate <cps>', 'new calls per second while ramping up', num(0.1), 50)
  .option('--ramp', 'raise concurrent calls step by step until a quality limit breaks', false)
  .option('--ramp-start <n>', 'first ramp step', int(1), 100)
  .option('--ramp-step <n>', 'calls added per ramp step', int(1), 100)
  .option('--settle <s>', 'seconds between the last call up and the window; from 1 s up, its first half holds a rehearsal window (--no-rehearsal)', num(0), 2)
  .option('--talk <ms>', 'caller talk spurt, ms (marked audio the bot echoes)', int(20), 3000)
  .option('--pause <ms>', 'caller pause after each spurt, ms (silence the bot does not echo); 0 = continuous', int(0), 600)
  .option('--phases <n>', 'RTP send slots per 20 ms in the load generator', int(1), 4)
  .option('--mark-every <n>', '16 kHz bot: one caller frame in n carries a tone mark, the rest a filler tone the bot echoes as it is (the same work for the node, less for the harness; loss and latency counted over the marked frames)', int(1), 1)
  .option('--no-pin', 'do not pin the media node to its own core')
  .option('--rtp-ports <min-max>', 'media node RTP port range', range, [12000, 31999] as [number, number])
  .option('--media-cli <path>', 'botedge CLI the media node runs from (e.g. a build of another commit)')
  .option('--node-flags <flags>', 'Node/V8 flags for the media node(s), space-separated, instead of what `botedge up` gives them (edge/node-flags.ts); --node-flags=none for none')
  .option('--bot-nice <n>', 'nice(2) of the echo bot\'s main thread, -20..19: ahead of the generator on their shared core (negative needs root; without it the bot stays at 0)', niceValue, DEFAULT_BOT_NICE)
  .option('--loadgen-flags <flags>', 'Node/V8 flags for the load generator, space-separated (e.g. "--cpu-prof --cpu-prof-dir=DIR": its lag reaches caller→bot latency)')
  .option('--bot-io <how>', 'how the echo bot reads and writes a per-call connection\'s frames: raw (on the socket, after ws\'s handshake: a lighter harness) or ws (through ws\'s reader and sender, as before the nineteenth session); mux connections always go through the bot SDK', botIoName, 'raw')
  .option('--bot-flags <flags>', 'Node/V8 flags for the echo bot, space-separated (e.g. "--cpu-prof --cpu-prof-dir=DIR": the bot is the harness, but its stalls reach the node as late frames)')
  .option('--no-rehearsal', 'skip the short window at the settle\'s start that runs the window\'s code before it opens (to measure what that rehearsal saves)')
  .option('--max-loss <fraction>', 'ramp limit: frame loss either way', num(0), 0.001)
  .option('--max-p99 <ms>', 'ramp limit: p99 added latency either way', num(0), 50)
  .option('--protocol <name>', 'bot protocol of the media node\'s route: native (a socket per call) or native-mux (one shared socket)', protocolName, 'native')
  .option('--rtp-io <backend>', 'the media node\'s RTP I/O: native (one I/O thread, batched), dgram (node:dgram), or both (the same run twice, native then dgram, into DIR/native and DIR/dgram, compared in DIR/compare.json); default: native when the addon is built', rtpIoName)
  .option('--addon <mode>', 'the media node\'s native addon: on (default, when built), off (BOTEDGE_NATIVE=0: TypeScript G.711, resampler and playout, node:dgram RTP I/O), or both (the same run twice, on then off, into DIR/native and DIR/no-addon, compared in DIR/compare.json)', addonMode, 'on')
  .option('--loadgen-rtp-io <backend>', 'the load generator\'s RTP I/O: native (the addon\'s I/O thread: batched receive, one sendto per packet) or dgram (node:dgram, one socket event per packet); default: native when the addon is built', loadgenIoName)
  .option('--loadgen-pacing <who>', 'who keeps the generator\'s 5 ms RTP slots: io (the addon\'s I/O thread sends each slot\'s packets at its time, stamped with it: steady streams, as phones send) or timer (a JavaScript timer; the streams carry the generator\'s event-loop jitter); default io (timer without the addon)', pacingName)
  .option('--loadgen-sockets <how>', 'the load generator\'s RTP sockets: shared (one socket speaks for every call, as an SBC\'s relay might: the node sees the same streams, the harness pays a system call per run of packets) or per-call (one each, as phones have); default shared', socketsMode)
  .option('--playout-trim', 'the route\'s live-stream trim in mode "any" (a standing jitter queue loses its next frame, marked or not; counted as loss); default: the route default "silence", which never drops the echo bot\'s marked frames', false)
  .option('--no-playout-catch-up', 'turn off the route\'s late-frame catch-up (G.711): every bot frame leaves on a tick')
  .option('--playout-catch-up-ms <ms>', `the route's playoutCatchUpMs: the longest a slot waits for its late bot frame (20–100 in steps of 20); default: the route default, ${String(CATCH_UP_MS.parse(undefined))}`, catchUpMs)
  .option('--opus-complexity <n>', `the route's opusComplexity: libopus encoder complexity for the bot's audio on Opus calls, 0–10; default: the route default, ${String(OPUS_COMPLEXITY.parse(undefined))}`, opusComplexity)
  .option('--bot-rate <hz>', 'PCM rate of the node\'s route to the bot: 16000 (resampled both ways; tone-coded frame marker) or 8000 (no resampling; exact byte marker)', botRate, 16000 as 8000 | 16000)
  .option('--shards <n>', 'media nodes (one process each) behind the load-steering proxy; > 1 starts the proxy and turns pinning off', int(1), 1)
  .option('--via-proxy', 'put the proxy in front even with one shard (the like-for-like baseline for --shards)', false)
  .option('--codec <name>', 'what callers speak: pcmu (marked frames) or opus (48 kHz Opus, bot at 16 kHz; loss by frame counts, no latency)', codecName, 'pcmu')
  .option('--out <dir>', 'directory for result.json, details.json, report.html and logs (required)')
  .action(async (o: { playoutTrim: boolean; playoutCatchUp: boolean; playoutCatchUpMs?: number; opusComplexity?: number; codec: 'pcmu' | 'opus'; rtpIo?: 'native' | 'dgram' | 'both'; addon: 'on' | 'off' | 'both'; loadgenRtpIo?: 'native' | 'dgram'; loadgenPacing?: 'io' | 'timer'; loadgenSockets?: 'shared' | 'per-call'; botRate: 8000 | 16000; shards: number; viaProxy: boolean; protocol: 'native' | 'native-mux'; calls: number; duration: number; rate: number; ramp: boolean; rampStart: number; rampStep: number; settle: number; talk: number; pause: number; markEvery: number; phases: number; pin: boolean; rtpPorts: [number, number]; maxLoss: number; maxP99: number; mediaCli?: string; nodeFlags?: string; botFlags?: string; loadgenFlags?: string; botNice: number; botIo: 'raw' | 'ws'; rehearsal: boolean; out?: string }) => {
    const out: string = o.out ?? program.error("error: required option '--out <dir>' not specified");
    if (o.rtpIo === 'both' && o.addon !== 'on') program.error('error: --rtp-io both compares two runs with the addon on; drop --addon');
    if (o.rtpIo === 'native' && o.addon !== 'on') program.error('error: --rtp-io native is the addon\'s I/O thread; without the addon the node runs node:dgram');
    const run = async (rtpIo: 'native' | 'dgram' | undefined, dir: string, addon = o.addon !== 'off') =>
      runBench(
        {
          calls: o.calls,
          duration: o.duration,
          rate: o.rate,
          ramp: o.ramp,
          rampStart: Math.min(o.rampStart, o.calls),
          rampStep: o.rampStep,
          settle: o.settle,
          talkMs: o.talk,
          pauseMs: o.pause,
          markEvery: o.markEvery,
          phases: o.phases,
          pin: o.pin,
          rtpPortMin: o.rtpPorts[0],
          rtpPortMax: o.rtpPorts[1],
          ...(o.mediaCli ? { mediaCli: o.mediaCli } : {}),
          ...(o.nodeFlags ? { nodeFlags: o.nodeFlags === 'none' ? [] : o.nodeFlags.split(/\s+/).filter((f) => f !== '') } : {}),
          botNice: o.botNice,
          botIo: o.botIo,
          ...(o.rehearsal ? {} : { rehearsal: false }),
          ...(o.botFlags ? { botFlags: o.botFlags.split(/\s+/).filter((f) => f !== '') } : {}),
          ...(o.loadgenFlags ? { loadgenFlags: o.loadgenFlags.split(/\s+/).filter((f) => f !== '') } : {}),
          out: dir,
          maxLoss: o.maxLoss,
          maxP99Ms: o.maxP99,
          protocol: o.protocol,
          ...(rtpIo ? { rtpIo } : {}),
          ...(addon ? {} : { addon: false }),
          ...(o.loadgenRtpIo ? { loadgenRtpIo: o.loadgenRtpIo } : {}),
          ...(o.loadgenPacing ? { loadgenPacing: o.loadgenPacing } : {}),
          ...(o.loadgenSockets ? { loadgenSockets: o.loadgenSockets } : {}),
          ...(o.playoutTrim ? { playoutTrim: true } : {}),
          ...(o.playoutCatchUp ? {} : { playoutCatchUp: false }),
          ...(o.playoutCatchUpMs !== undefined ? { playoutCatchUpMs: o.playoutCatchUpMs } : {}),
          ...(o.opusComplexity !== undefined ? { opusComplexity: o.opusComplexity } : {}),
          botRate: o.botRate,
          codec: o.codec,
          ...(o.shards > 1 || o.viaProxy ? { shards: o.shards, viaProxy: o.viaProxy } : {}),
        },
        say,
        command,
      );
    if (o.rtpIo !== 'both' && o.addon !== 'both') {
      const { result } = await run(o.rtpIo, out);
      say(JSON.stringify(result, null, 2));
      say(`wrote ${out}/result.json, ${out}/details.json and ${out}/report.html`);
      return;
    }
    // The native path and its fallback, side by side in one run (issue 6): same load, back to back.
    // --rtp-io both: node:dgram against the I/O thread, the rest of the addon on in both;
    // --addon both: the media node with no addon at all against the whole native path.
    type Side = { rtpIo: 'native' | 'dgram' | undefined; addon: boolean };
    const [kind, nativeSide, fallbackSide]: [FallbackKind, Side, Side] =
      o.addon === 'both'
        ? ['no-addon', { rtpIo: undefined, addon: true }, { rtpIo: undefined, addon: false }] // without the addon the node runs dgram
        : ['dgram', { rtpIo: 'native', addon: true }, { rtpIo: 'dgram', addon: true }];
    const native = (await run(nativeSide.rtpIo, join(out, 'native'), nativeSide.addon)).result;
    const fallback = (await run(fallbackSide.rtpIo, join(out, kind), fallbackSide.addon)).result;
    const compare = compareRuns({ native, fallback, kind });
    writeFileSync(join(out, 'compare.json'), JSON.stringify(compare, null, 2) + '\n');
    say(JSON.stringify(compare, null, 2));
    say(`wrote ${out}/compare.json (each run's files in ${out}/native and ${out}/${kind})`);
  });

program
  .command('sipp')
  .description('interop run: SIPp (uac_pcap, G.711 A-law from a pcap) drives the same media node and echo bot')
  .option('--calls <n>', 'concurrent calls SIPp keeps up', int(1), 100)
  .option('--rate <cps>', 'SIPp call rate per second', num(0.1), 20)
  .option('--total <n>', 'calls in all (default: 3 × --calls)', int(1))
  .option('--no-pin', 'do not pin the media node to its own core')
  .option('--rtp-ports <min-max>', 'media node RTP port range', range, [12000, 31999] as [number, number])
  .option('--media-cli <path>', 'botedge CLI the media node runs from')
  .requiredOption('--out <dir>', 'directory for sipp-result.json and logs')
  .action(async (o: { calls: number; rate: number; total?: number; pin: boolean; rtpPorts: [number, number]; mediaCli?: string; out: string }) => {
    const r = await runSipp({ calls: o.calls, rate: o.rate, total: o.total ?? o.calls * 3, pin: o.pin, rtpPortMin: o.rtpPorts[0], rtpPortMax: o.rtpPorts[1], ...(o.mediaCli ? { mediaCli: o.mediaCli } : {}), out: o.out }, say);
    say(JSON.stringify(r, null, 2));
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
