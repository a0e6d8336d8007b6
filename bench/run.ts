/**
 * The capacity benchmark's orchestrator. It starts the system under test (one media node, through
 * the real CLI) and, as separate processes, nats-server, the instrumented echo bot and the load
 * generator; drives the load in fixed or ramp mode; reads CPU and memory from /proc at the edges of
 * each steady-state window; and turns what the generator and the bot measured into result.json.
 *
 * Honesty rules (issue 3): only system-under-test processes (media nodes; later the proxy) count in
 * `cpu_us_per_call_second`; the generator's CPU is reported on its own; a call whose audio did not
 * come back in the window is a failed call; loss and latency are counted per frame from markers
 * inside the audio, both directions, on one machine-wide monotonic clock.
 */
import { availableParallelism, cpus, setPriority, totalmem, release } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { monoMs, monoUs32 } from './clock.js';
import { EndedTally } from './ended-tally.js';
import type { QosSummary } from '../edge/media/qos.js';
import { probeHostMs } from './host-probe.js';
import { Histogram } from '../edge/histogram.js';
import { LOADGEN_SHARED_RCVBUF, type BotReport, type FromLoadgen, type LoadgenProgress, type LoadgenReached, type LoadgenReport } from './messages.js';
import { cpuBetween, sampleMachine, sampleProc, type ProcSample } from './proc.js';
import { Children, forkBench, pin, readMembers, startMediaNode, startNats, waitForMembers, type MediaNodeProcess } from './procs.js';
import { startProxy } from './proxy-procs.js';
import { renderReport } from './report.js';
import { readNodeWindow, type LoopDelay, type NodeWriteLatency } from './node-status.js';
import type { SliceSeries } from './slices.js';

/**
 * The echo bot's nice by default: ahead of the load generator on the harness's shared core (see
 * the renice in runBench). Negative needs root; without it the bot runs at 0, and says so.
 */
export const DEFAULT_BOT_NICE = -5;

export interface BenchOptions {
  /** Concurrent calls (fixed mode) or the ramp's ceiling. */
  calls: number;
  /** Steady-state window, s (per step in ramp mode). */
  duration: number;
  /** New calls per second while ramping up. */
  rate: number;
  ramp: boolean;
  rampStart: number;
  rampStep: number;
  /** Seconds between all calls up and the window opening. */
  settle: number;
  /** Caller talk spurt and pause, ms (pause 0 = continuous audio). */
  talkMs: number;
  /** 16 kHz bots: one caller frame in this many carries a mark (LoadgenConfig.markEvery). Default 1. */
  markEvery?: number;
  pauseMs: number;
  /** RTP send slots per 20 ms in the generator. */
  phases: number;
  /** Pin the SUT to its own core, and the generator, bot and NATS to the others. */
  pin: boolean;
  rtpPortMin: number;
  rtpPortMax: number;
  /** The botedge CLI the media node runs from; default this checkout's dist/edge/cli.js. */
  mediaCli?: string;
  /** Node/V8 flags for the media node(s), e.g. ['--max-semi-space-size=4']. */
  nodeFlags?: readonly string[];
  /** Node/V8 flags for the echo bot process. */
  botFlags?: readonly string[];
  /** Node/V8 flags for the load generator process. */
  loadgenFlags?: readonly string[];
  /** nice(2) value for the echo bot's main thread (negative: ahead of the generator on their shared core); default DEFAULT_BOT_NICE. */
  botNice?: number;
  /** How the echo bot handles a per-call connection's frames: raw (bench/raw-frames.ts; default) or ws. */
  botIo?: 'raw' | 'ws';
  /** A short window at the settle's start that runs the window's code first (default true). */
  rehearsal?: boolean;
  out: string;
  /** Limits of a passing ramp step. */
  maxLoss: number;
  maxP99Ms: number;
  /** Bot protocol of the node's route; default native (one WebSocket per call). */
  protocol?: 'native' | 'native-mux';
  /** The media node's RTP I/O backend (edge/media/rtp-io.ts); default: the node's own choice (native when built). */
  rtpIo?: 'native' | 'dgram';
  /** false: the media node runs with BOTEDGE_NATIVE=0 (no addon: TypeScript codecs and playout, node:dgram). */
  addon?: boolean;
  /** The load generator's RTP I/O; default native when the addon is built (bench/loadgen.ts). */
  loadgenRtpIo?: 'native' | 'dgram';
  /** Who keeps the generator's RTP slots (bench/loadgen.ts): the I/O thread (default) or a timer. */
  loadgenPacing?: 'io' | 'timer';
  /** The generator's RTP sockets: one speaks for every call (default), or one per call as phones have. */
  loadgenSockets?: 'shared' | 'per-call';
  /** Turn the route's live-stream playout trim on (edge/media/playout.ts); trimmed frames count as loss. */
  playoutTrim?: boolean;
  /** false: the route's late-frame catch-up is off (edge/media/call-media.ts). */
  playoutCatchUp?: boolean;
  /** The route's `playoutCatchUpMs` (the longest a slot waits for its late frame); default the route's, 40. */
  playoutCatchUpMs?: number;
  /** The route's `opusComplexity` (Opus calls' encoder); default the route's, 5. */
  opusComplexity?: number;
  /**
   * Media nodes (shards), default 1. With more than one, or with `viaProxy`, the bench starts the
   * load-steering proxy in front of them and the generator calls the proxy; the SUT is then every
   * media node plus the proxy, and nothing is pinned (see docs/benchmarks/capacity.md).
   */
  shards?: number;
  /** Put the proxy in front even of a single media node (to compare 1 vs N shards like for like). */
  viaProxy?: boolean;
  /**
   * PCM rate of the node's route to the bot, Hz; default 16000. At 16000 the node resamples both
   * ways and frames carry the tone marker (bench/tone-mark.ts); at 8000 nothing is resampled and
   * they carry the exact byte marker (bench/frame.ts).
   */
  botRate?: 8000 | 16000;
  /**
   * What the callers speak: `pcmu` (default; marked frames, per-frame loss and latency) or `opus`
   * (48 kHz Opus replayed from a pre-encoded stream, bot route at 16 kHz; loss counted by frames,
   * no latency: bench/opus-caller.ts).
   */
  codec?: 'pcmu' | 'opus';
}

/** details.json, sharded runs only: where the SUT's CPU went in a window. */
export interface ShardedStep {
  shards: number;
  /** SUT CPU (media nodes + proxy) in cores over the window, and calls per such core. */
  sut_cores: number;
  calls_per_core: number;
  /** Media nodes only (the proxy left out). */
  media_cpu_us_per_call_second: number;
  media_calls_per_core: number;
  proxy_cpu_pct: number;
  proxy_cpu_us_per_call_second: number;
  proxy_share_of_sut: number;
  per_shard: { id: string; cpu_pct: number; calls: number | null; cpu_us_per_call_second: number | null; rss_kb: number }[];
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

/** result.json: the fields issue 3 names, and the bot's PCM rate they were measured at. */
export interface BenchResult {
  scenario: string;
  cores: number;
  node_version: string;
  calls_target: number;
  calls_established: number;
  calls_failed: number;
  window_s: number;
  cpu_us_per_call_second: number;
  rss_kb_per_call: number;
  loss_caller_to_bot: number;
  loss_bot_to_caller: number;
  latency_ms: { caller_to_bot: LatencySummary; bot_to_caller: LatencySummary };
  setup_ms: { p50: number; p99: number };
  cps: number;
  loadgen_cpu_us_per_call_second: number;
  /** PCM rate the node spoke to the bot (8000: no resampling; 16000: 8↔16 kHz both ways). */
  bot_rate_hz: number;
  /** The Node/V8 flags the media node(s) ran with. */
  media_node_flags: readonly string[];
  /** The load generator's RTP I/O (bench/loadgen.ts): native batches, or node:dgram. */
  loadgen_rtp_io: 'native' | 'dgram';
  /** The generator's RTP sockets: one for every call (default) or one per call (bench/loadgen.ts). */
  loadgen_sockets: 'shared' | 'per-call';
  /** Who kept the generator's RTP slots: the native I/O thread (steady streams) or a JavaScript timer. */
  loadgen_pacing: 'io' | 'timer';
  capacity?: { calls: number; limited_by: string };
  /** The media node's own event-loop delay over the window, ms (worst node when sharded). */
  event_loop_delay_ms?: LoopDelay;
  /** The node's own part of caller → bot, ms (see Step). */
  node_caller_to_bot_ms?: NodeWriteLatency;
  /** Native RTP I/O: share of RTP packets sent at once (late bot frames), see Step. */
  rtp_sent_now_share?: number;
  /** Caller packets the node's G.711 receive lane took, of all it received in the window (absent: no lane). */
  rx_lane_share?: number;
  /** Packets to the callers the lane's tick sent, of all RTP the node sent in the window (absent: no lane tick). */
  tx_lane_share?: number;
  /** Of the packets sent at once (late bot frames in their held slots), those the lane's bot half sent (absent: no lane). */
  late_lane_share?: number;
  /** Bot frames the lane queued for playout, per call-second (50 when every bot frame of every call goes that way; absent: no lane). */
  bot_lane_frames_per_call_second?: number;
  /** Of the caller packets the lane took, the share whose frames it wrote to a per-call bot's socket itself (absent: no lane). */
  lane_ws_written_share?: number;
  /** Opus runs: how loss was counted, and that latency was not measured. */
  note?: string;
}

/** One measured window: a fixed run has one, a ramp one per step. */
export interface StepResult {
  calls_target: number;
  calls_in_window: number;
  calls_failed: number;
  failures: Record<string, number>;
  silent_calls: number;
  /** The window's edges on the machine-wide monotonic clock (edge/media/mono-clock.ts), ms: to line up any other trace. */
  window_mono_ms: [number, number];
  window_s: number;
  cpu_us_per_call_second: number;
  sut_cpu_pct: number;
  rss_kb_per_call: number;
  sut_rss_kb: number;
  loss_caller_to_bot: number;
  loss_bot_to_caller: number;
  /** Marked frames in the window at each point; `unrecognised_back` counts the whole run. */
  frames: { sent: number; at_bot: number; echoed: number; back: number; unrecognised_back: number };
  latency_ms: { caller_to_bot: LatencySummary; bot_to_caller: LatencySummary; round_trip: LatencySummary };
  latency_bins_ms: { width: number; caller_to_bot: number[]; bot_to_caller: number[] };
  /**
   * Each direction's latency over the window's time (100 ms slices by send stamp; max and frames
   * over issue 6's budget per slice): a tail from one event shows in a few slices, a steady one
   * in all of them.
   */
  latency_slices: { caller_to_bot: SliceSeries; bot_to_caller: SliceSeries };
  cps: number;
  loadgen_cpu_us_per_call_second: number;
  loadgen_cpu_pct: number;
  loadgen_lag_max_ms: number;
  /**
   * The generator's paced slots that it staged more than 0.5 ms after their due time, in the window:
   * sent packet by packet and stamped as they left, so its lateness is not the node's c→b latency.
   */
  loadgen_late_slots: number;
  bot_cpu_pct: number;
  /** The echo bot's event-loop delay over the window (its stalls arrive at the node as late frames). */
  bot_loop_delay_ms: LoopDelay;
  /** The echo bot's GC pauses in the window (count, sum, longest, ms). */
  bot_gc_ms: { count: number; totalMs: number; maxMs: number };
  nats_cpu_pct: number;
  /** Busy CPU of the machine outside the benchmark's processes during the window, % of one core. */
  other_cpu_pct: number;
  /** Interrupt + softirq CPU of the machine in the window (the loopback network stack), % of one core. */
  softirq_cpu_pct: number;
  /**
   * Busy share of the core the generator, bot and NATS are pinned to (when pinned to one): at
   * HARNESS_SATURATED_PCT or more the step's line says the latency figures are the harness's.
   */
  harness_core_busy_pct?: number;
  /**
   * CPU time the hypervisor took from this VM in the window, all CPUs, % of one core: a vCPU that
   * is not running stalls whatever was on it (not counted in `other_cpu_pct`).
   */
  steal_cpu_pct: number;
  /** Pinned runs: the stolen share of the SUT's own core, %. */
  sut_core_steal_pct?: number;
  /**
   * Major page faults in the window, per process (media, loadgen, bot, nats, …): pages the kernel
   * had reclaimed and read back from disk, each a stall of the thread that touched it.
   */
  major_faults: Record<string, number>;
  pass: boolean;
  limited_by: string;
  /** Only with --shards > 1 or --via-proxy. */
  sharded?: ShardedStep;
  /** The media node's own event-loop delay over the window, ms (worst node when sharded). */
  event_loop_delay_ms?: LoopDelay;
  /**
   * Native RTP I/O: the node's own part of caller → bot, ms — each caller datagram from the
   * kernel's arrival stamp to its frames written to the bots' sockets (edge/media/write-latency.ts),
   * over the node's window (from its reads 500 ms before the latency window to the window's end);
   * worst node when sharded.
   */
  node_caller_to_bot_ms?: NodeWriteLatency;
  /**
   * Native RTP I/O: the share of the window's RTP packets sent at once from the event loop (late
   * bot frames, CallMedia's catch-up) rather than at a tick's due time.
   */
  rtp_sent_now_share?: number;
  /** Caller packets the node's G.711 receive lane took, of all it received in the window (absent: no lane). */
  rx_lane_share?: number;
  /** Packets to the callers the lane's tick sent, of all RTP the node sent in the window (absent: no lane tick). */
  tx_lane_share?: number;
  /** Of the packets sent at once (late bot frames in their held slots), those the lane's bot half sent (absent: no lane). */
  late_lane_share?: number;
  /** Bot frames the lane queued for playout, per call-second (50 when every bot frame of every call goes that way; absent: no lane). */
  bot_lane_frames_per_call_second?: number;
  /** Of the caller packets the lane took, the share whose frames it wrote to a per-call bot's socket itself (absent: no lane). */
  lane_ws_written_share?: number;
}

export interface BenchDetails {
  command: string;
  started: string;
  /** host_probe_ms: bench/host-probe.ts before the run, the host's speed that hour (lower is faster). */
  machine: { cpu: string; cores: number; mem_gb: number; kernel: string; node: string; host_probe_ms: number };
  pinning: Record<string, string> | null;
  /** nice of the echo bot's main thread as applied (0: as started, or the nice asked for was refused). */
  bot_nice: number;
  /** How the echo bot read and wrote per-call connections' frames (--bot-io). */
  bot_io: 'raw' | 'ws';
  /** Whether a short window at the settle's start ran the window's code first (--no-rehearsal: false). */
  rehearsal: boolean;
  rss_baseline_kb: number;
  steps: StepResult[];
  setup_ms: { p50: number; p99: number; max: number };
  edge_media_stats: Record<string, number>;
  /** The node's QoS of the callers' streams (loss, jitter, MOS), from its `ended` events. */
  edge_qos: QosSummary | undefined;
  calls_ended_events: number;
  hangup: { ended: number; byeFailed: number };
}

/** The harness core's busy share from which a step is flagged as measuring the harness (no idle time left to speak of). */
const HARNESS_SATURATED_PCT = 95;
/** Stolen time (summed over the CPUs, % of one) above which a step's figures say more about the host than the build. */
const STOLEN_PCT = 10;
/** The longest the report waits for the window's last frames (see the grace after the window). */
const GRACE_MAX_MS = 5000;
/** How long before the latency window the node's status and the processes' CPU are read (see the window's opening). */
const EDGE_READS_LEAD_MS = 500;
const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function nextMessage<T extends { type: string }>(child: ChildProcess, type: T['type'], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.off('message', on);
      reject(new Error(`no ${type} message within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      clearTimeout(t);
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
  });
}

/** "n of m slices" with a frame over budget (bench/slices.ts), for the step's line. */
function overSlices(s: SliceSeries): string {
  return `${s.slicesOver} of ${s.over.length} ${s.sliceMs} ms slices`;
}

export async function runBench(opts: BenchOptions, say: (line: string) => void, command = ''): Promise<{ result: BenchResult; details: BenchDetails }> {
  mkdirSync(opts.out, { recursive: true });
  const children = new Children(opts.out);
  let nc: NatsConnection | undefined;
  const cores = availableParallelism();
  const t0 = monoMs();
  const elapsed = () => `${((monoMs() - t0) / 1000).toFixed(1).padStart(6)}s`;
  // Before any process of the run starts: the host's speed this hour (bench/host-probe.ts).
  const hostProbeMs = probeHostMs();
  say(`host probe: ${hostProbeMs} ms (a fixed resampling job; compare runs with similar probes only)`);
  try {
    // ----------------------------------------------------------------------------- processes
    const nats = await startNats(children);
    const isOpus = opts.codec === 'opus';
    // Opus: the route speaks 16 kHz, and no marker survives the codec, so the bot echoes every frame
    // (--echo-all) and loss is counted by frames.
    const botRate = isOpus ? 16000 : (opts.botRate ?? 16000);
    // Marks every N frames: 16 kHz tone marks only (the 8 kHz byte marker is cheap to read).
    const markEvery = botRate === 16000 && !isOpus ? Math.max(1, opts.markEvery ?? 1) : 1;
    const botIo = opts.botIo ?? 'raw';
    const echoes = isOpus ? ['--echo-all'] : markEvery > 1 ? ['--echo-filler'] : [];
    const bot = await forkBench<{ type: 'ready'; port: number }>(children, 'echo-bot', ['0', '--bot-rate', String(botRate), '--bot-io', botIo, ...echoes], opts.botFlags);
    const shardCount = opts.shards ?? 1;
    const viaProxy = shardCount > 1 || opts.viaProxy === true;
    const shardNodes: MediaNodeProcess[] = [];
    // Sharded: disjoint slices of the RTP range, one per node.
    const slice = Math.floor((opts.rtpPortMax - opts.rtpPortMin + 1) / shardCount / 2) * 2;
    for (let i = 0; i < (viaProxy ? shardCount : 1); i++) {
      shardNodes.push(
        await startMediaNode(children, opts.out, {
          natsUrl: nats.url,
          botUrl: `ws://127.0.0.1:${bot.ready.port}/bench`,
          rtpPortMin: viaProxy ? opts.rtpPortMin + i * slice : opts.rtpPortMin,
          rtpPortMax: viaProxy ? opts.rtpPortMin + (i + 1) * slice - 1 : opts.rtpPortMax,
          nodeId: viaProxy ? `shard-${i}` : 'bench-media-1',
          protocol: opts.protocol ?? 'native',
          ...(opts.rtpIo ? { rtpIo: opts.rtpIo } : {}),
          ...(opts.addon === false ? { addon: false } : {}),
          ...(opts.playoutTrim ? { playoutTrim: true } : {}),
          ...(opts.playoutCatchUp === false ? { playoutCatchUp: false } : {}),
          ...(opts.playoutCatchUpMs !== undefined ? { playoutCatchUpMs: opts.playoutCatchUpMs } : {}),
          ...(opts.opusComplexity !== undefined ? { opusComplexity: opts.opusComplexity } : {}),
          sampleRate: botRate,
          maxCalls: Math.max(opts.calls * 2, 2000),
          ...(opts.mediaCli ? { cli: opts.mediaCli } : {}),
          ...(opts.nodeFlags ? { nodeFlags: opts.nodeFlags } : {}),
          ...(isOpus ? { codecs: ['opus', 'PCMU'], sampleRate: 16000 } : {}),
        }),
      );
    }
    const media = shardNodes[0]!;
    // The proxy after the nodes; the load goes to it once every node is in its cluster table.
    const proxy = viaProxy ? await startProxy(children, { natsUrl: nats.url, strategy: 'load', id: 'bench-proxy' }) : undefined;
    if (proxy) {
      await waitForMembers(nats.url, shardNodes.map((_, i) => `shard-${i}`).concat('bench-proxy'), 20_000);
      say(`cluster up: ${shardCount} media node(s) ${shardNodes.map((n, i) => `shard-${i}@${n.sipPort}`).join(' ')} behind bench-proxy@${proxy.port}`);
    }
    const lg = await forkBench<Extract<FromLoadgen, { type: 'ready' }>>(children, 'loadgen', [
      ...(opts.loadgenRtpIo ? ['--rtp-io', opts.loadgenRtpIo] : []),
      ...(opts.loadgenPacing ? ['--pacing', opts.loadgenPacing] : []),
      ...(opts.loadgenSockets ? ['--sockets', opts.loadgenSockets] : []),
    ], opts.loadgenFlags);
    // Every caller's packets queue in the shared socket while the generator's I/O thread is off the
    // CPU: without the privilege to force it (SO_RCVBUFFORCE) the buffer stops at rmem_max.
    if (lg.ready.rcvbufKb !== undefined && lg.ready.rcvbufKb < LOADGEN_SHARED_RCVBUF / 1024) {
      say(`WARNING: the generator's shared RTP socket got a ${lg.ready.rcvbufKb} kB receive buffer (asked ${LOADGEN_SHARED_RCVBUF / 1024} kB): it may drop the node's packets at high call counts; use the native RTP I/O as root (it forces the size), raise net.core.rmem_max, or use --loadgen-sockets per-call`);
    }
    const pids = { media: media.child.pid!, loadgen: lg.child.pid!, bot: bot.child.pid!, nats: nats.child.pid! };
    // The rest of the SUT when sharded: media nodes 2..N and the proxy. Empty on the direct path.
    const extraSut: Record<string, number> = {};
    for (let i = 1; i < shardNodes.length; i++) extraSut[`media:shard-${i}`] = shardNodes[i]!.child.pid!;
    if (proxy) extraSut['proxy'] = proxy.child.pid!;
    const allPids: Record<string, number> = { ...pids, ...extraSut };
    const sutKeys = ['media', ...Object.keys(extraSut)];
    const mediaKeys = sutKeys.filter((k) => k !== 'proxy');

    let pinning: Record<string, string> | null = null;
    if (viaProxy && opts.pin) {
      say(`not pinning: with ${shardCount} shard(s) behind the proxy on ${cores} cores, pinning cannot keep the SUT apart from the load generator (as --no-pin); calls per core come from the SUT's own CPU`);
    } else if (opts.pin && cores >= 2) {
      const sutCpu = String(cores - 1);
      const rest = cores === 2 ? '0' : `0-${cores - 2}`;
      const ok = pin(pids.media, sutCpu) && pin(pids.loadgen, rest) && pin(pids.bot, rest) && pin(pids.nats, rest);
      // This process too: it reads /proc, asks the node for its status and parses the reply at the
      // window's edges, and prints a line a second — harness work, kept off the SUT's core.
      const self = ok && pin(process.pid, rest);
      if (ok) pinning = { media: sutCpu, loadgen: rest, bot: rest, nats: rest, ...(self ? { orchestrator: rest } : {}) };
      say(ok ? `pinned: media node on cpu ${sutCpu}; load generator, echo bot, nats-server${self ? ', this process' : ''} on cpu ${rest}` : 'taskset failed: running unpinned');
    }
    // The bot stands in for an AI bot on a machine of its own; here it shares a core with the
    // generator, and a bot that waits for the CPU reads the caller's frames late and sends its own
    // late, which the node's playout then keeps as a standing queue (docs/benchmarks/capacity.md,
    // "a faster machine"). The generator can wait: its packets leave from its I/O thread, and a
    // slot it stages late is stamped as it leaves. Hence the bot goes first (eighteenth session:
    // both latency figures lower in 5 of 5 pairs with the harness's core over 90 % busy). On Linux
    // setpriority on the PID renices the main thread only, which does all of the bot's work.
    let botNice = opts.botNice ?? DEFAULT_BOT_NICE;
    if (botNice !== 0) {
      try {
        setPriority(pids.bot, botNice);
        say(`echo bot's main thread at nice ${botNice}`);
      } catch (err) {
        // A negative nice needs root (CAP_SYS_NICE): run as started, and say so.
        say(`echo bot's main thread left at nice 0 (nice ${botNice} refused: ${(err as Error).message})`);
        botNice = 0;
      }
    }

    // What the node itself says about each call's media, from its `ended` events.
    nc = await connect({ servers: nats.url, name: 'bench' });
    const ended = new EndedTally();
    const sub = nc.subscribe('botedge.v1.call.ended');
    void (async () => {
      for await (const m of sub) ended.add(m.json());
    })().catch(() => undefined);

    lg.child.send({ type: 'config', host: '127.0.0.1', port: proxy ? proxy.port : media.sipPort, number: 'bench', rate: opts.rate, phases: opts.phases, talkMs: opts.talkMs, pauseMs: isOpus ? 0 : opts.pauseMs, markEvery, setupTimeoutMs: 40_000, botRate, codec: isOpus ? 'opus' : 'pcmu' });

    // Progress: one line a second from the generator's figures and the SUT's /proc.
    let lastMedia = sampleProc(pids.media, monoMs());
    const lastExtra: Record<string, ProcSample | undefined> = {};
    for (const [k, pid] of Object.entries(extraSut)) lastExtra[k] = sampleProc(pid, monoMs());
    let lastUp = 0;
    /** The round trip's p99 over the last second (the generator's progress), for the report's grace. */
    let lastRttP99Ms = 0;
    lg.child.on('message', (m: FromLoadgen) => {
      if (m.type !== 'progress') return;
      const p = m as LoadgenProgress;
      const now = sampleProc(pids.media, monoMs());
      let pct = now && lastMedia ? (cpuBetween(lastMedia, now) / ((now.atMs - lastMedia.atMs) * 1000)) * 100 : 0;
      for (const [k, pid] of Object.entries(extraSut)) {
        const s = sampleProc(pid, monoMs());
        if (s && lastExtra[k]) pct += (cpuBetween(lastExtra[k], s) / Math.max(1, (s.atMs - lastExtra[k]!.atMs) * 1000)) * 100;
        lastExtra[k] = s;
      }
      lastMedia = now;
      lastUp = p.up;
      lastRttP99Ms = p.rttP99LastMs;
      const back = p.sentLastS > 0 ? ((p.recvLastS / p.sentLastS) * 100).toFixed(1) : '-';
      say(
        `[${elapsed()}] calls up ${p.up} pending ${p.pending} failed ${p.failed} | rtp ${p.sentLastS}/s out, ${back}% back | rtt p99 ${p.rttP99LastMs} ms | media cpu ${pct.toFixed(0)}% rss ${now ? Math.round(now.rssKb / 1024) : '?'} MB | gen lag ${p.lagMaxLastMs} ms`,
      );
    });

    await sleep(1000);
    const baseline = sampleProc(pids.media, monoMs());
    let rssBaselineKb = baseline?.rssKb ?? 0;
    for (const k of mediaKeys.slice(1)) rssBaselineKb += sampleProc(allPids[k]!, monoMs())?.rssKb ?? 0;
    say(`[${elapsed()}] system up: media node pid ${pids.media} sip 127.0.0.1:${media.sipPort}, bot PCM ${botRate} Hz (${botRate === 8000 ? 'byte marker' : 'resampled, tone marker'}), idle rss ${Math.round(rssBaselineKb / 1024)} MB`);

    const steps: StepResult[] = [];
    const targets: number[] = [];
    if (opts.ramp) {
      for (let n = opts.rampStart; n <= opts.calls; n += opts.rampStep) targets.push(n);
      if (targets.length === 0) targets.push(opts.calls);
    } else {
      targets.push(opts.calls);
    }

    const nodeIds = viaProxy ? shardNodes.map((_, i) => `shard-${i}`) : ['bench-media-1'];
    /** Tells the generator and the bot of a window opening `leadMs` from now, `lengthMs` long; returns when it opens (monoMs). */
    const announceWindow = (leadMs: number, lengthMs: number): number => {
      const fromUs = (monoUs32() + leadMs * 1000) % 0x100000000;
      const toUs = (fromUs + Math.round(lengthMs * 1000)) % 0x100000000;
      lg.child.send({ type: 'window', fromUs, toUs });
      bot.child.send({ type: 'window', fromUs, toUs });
      return monoMs() + leadMs;
    };
    /**
     * The settle before a window, with a rehearsal of the window in it. Some of the generator's and
     * the bot's code runs only inside a window (the recording of every frame), and the node's
     * `status` only at its edges; run for the first time at the window's opening, all of it was
     * optimised right there, the three processes' compiler threads at once, and the harness's
     * core, busy for some 60 ms, sent a round of caller frames late. Their echoes reached the node
     * more than a tick late, and every call then mid-utterance played its bot 40–60 ms late until
     * its pause: a tail of the bench's own making, in the window's first 3 s and nowhere else
     * (`latency_slices`; docs/benchmarks/capacity.md, "The window's opening"). A short window at
     * the settle's start runs that code first; the real window starts every count afresh.
     */
    const settle = async (ms: number): Promise<void> => {
      const start = monoMs();
      if (ms >= 1000 && opts.rehearsal !== false) {
        announceWindow(100, ms / 2);
        await readNodeWindow(nc!, nodeIds);
      }
      await sleep(Math.max(0, ms - (monoMs() - start)));
    };

    let failedBefore = 0;
    let lastReport: LoadgenReport | undefined;
    for (const target of targets) {
      say(`[${elapsed()}] ramping to ${target} calls at ${opts.rate}/s`);
      lg.child.send({ type: 'calls', target });
      const reached = await nextMessage<LoadgenReached>(lg.child, 'reached', 3_600_000);
      say(`[${elapsed()}] ${reached.up} calls up, ${reached.failed} failed so far, ${round(reached.cps, 1)} calls/s`);
      await settle(opts.settle * 1000);

      // The window opens a little in the future so both children know it before it starts.
      const fromMs = announceWindow(1000, opts.duration * 1000);
      // The opening's reads come before the latency window, not in its first slice: the node's
      // `status` gathers every call's QoS (a few milliseconds of its loop, in slices) and the
      // harness reads /proc for each process. At the opening they put a caller → bot spike into
      // slice 0 of most runs (docs/benchmarks/capacity.md, "The window's opening, again"); the
      // CPU window so starts EDGE_READS_LEAD_MS early and is measured by its own clock (window_s).
      await sleep(Math.max(0, fromMs - EDGE_READS_LEAD_MS - monoMs()));
      const nodeAtOpen = await readNodeWindow(nc, nodeIds); // opens the node's event-loop delay window
      const a: Record<string, ProcSample | undefined> = {};
      for (const [k, pid] of Object.entries(allPids)) a[k] = sampleProc(pid, monoMs());
      const machineA = sampleMachine();
      const selfCpuA = process.cpuUsage().user + process.cpuUsage().system;
      await sleep(Math.max(0, fromMs - monoMs()));
      say(`[${elapsed()}] window open: ${opts.duration} s at ${lastUp} calls`);
      await sleep(Math.max(0, fromMs + opts.duration * 1000 - monoMs()));
      const b: Record<string, ProcSample | undefined> = {};
      for (const [k, pid] of Object.entries(allPids)) b[k] = sampleProc(pid, monoMs());
      const machineB = sampleMachine();
      const nodeAtClose = await readNodeWindow(nc, nodeIds);
      const loopDelay = nodeAtClose.loopDelay;
      const nodeWrite = nodeAtClose.arrivalToWrite;
      const rtpA = nodeAtOpen.rtp;
      const rtpB = nodeAtClose.rtp;
      // Grace: frames sent at the end of the window are still on their way. 1 s, or twice the last
      // second's round-trip p99 (up to 5 s) when the run is that late: a frame that arrives after
      // the report would count as lost, and a late frame is latency, not loss.
      await sleep(Math.min(GRACE_MAX_MS, Math.max(1000, 2 * lastRttP99Ms)));
      lg.child.send({ type: 'report' });
      bot.child.send({ type: 'report' });
      const [lr, br] = await Promise.all([nextMessage<LoadgenReport>(lg.child, 'report', 10_000), nextMessage<BotReport>(bot.child, 'report', 10_000)]);
      lastReport = lr;

      const windowS = (b['media']!.atMs - a['media']!.atMs) / 1000;
      const calls = lr.callsInWindow;
      const perCallS = Math.max(1, calls) * windowS;
      const c2b = Histogram.fromSparse(br.callerToBot);
      const b2c = Histogram.fromSparse(lr.botToCaller);
      const rtt = Histogram.fromSparse(lr.roundTrip);
      let lossC2b = lr.sentInWindow > 0 ? Math.max(0, 1 - br.framesInWindow / lr.sentInWindow) : 1;
      let lossB2c = br.echoedInWindow > 0 ? Math.max(0, 1 - lr.recvInWindow / br.echoedInWindow) : 1;
      // Opus: frames at the bot counted by arrival inside the window, by the bot's clock (no markers).
      const opusAtBot = isOpus ? br.framesArrivedInWindow : 0;
      if (isOpus) {
        // By frames: the bot's frames vs the callers' packets, and the node's packets back (one per
        // tick per call, echo or silence) vs the callers' packets, all counted in the same window.
        lossC2b = lr.sentInWindow > 0 ? Math.max(0, 1 - opusAtBot / lr.sentInWindow) : 1;
        lossB2c = lr.sentInWindow > 0 ? Math.max(0, 1 - lr.recvInWindow / lr.sentInWindow) : 1;
      }
      const newFailed = lr.failed - failedBefore;
      failedBefore = lr.failed;
      const callsFailed = newFailed + lr.silentCalls;
      let rssKb = b['media']?.rssKb ?? 0;
      for (const k of mediaKeys.slice(1)) rssKb += b[k]?.rssKb ?? 0;
      let sutCpuUs = cpuBetween(a['media'], b['media']);
      for (const k of sutKeys.slice(1)) sutCpuUs += cpuBetween(a[k], b[k]);
      const pct = (k: string) => round((cpuBetween(a[k], b[k]) / (windowS * 1e6)) * 100, 1);
      // CPU the machine spent on anything but our processes (other workloads, softirq): a noisy
      // neighbour makes every figure worse, so it is reported next to them.
      let oursUs = 0;
      for (const k of Object.keys(allPids)) oursUs += cpuBetween(a[k], b[k]);
      oursUs += process.cpuUsage().user + process.cpuUsage().system - selfCpuA;
      const irqUs = machineB.irqUs - machineA.irqUs;
      const stealUs = machineB.stealUs - machineA.stealUs;
      const otherPct = round((Math.max(0, machineB.busyUs - machineA.busyUs - irqUs - stealUs - oursUs) / (windowS * 1e6)) * 100, 1);
      const stealPct = round((stealUs / (windowS * 1e6)) * 100, 1);
      /** One CPU's share of the window in `key`'s time, %; undefined unless `cpus` (a pinning) is one CPU. */
      const cpuPct = (key: 'stealUsByCpu' | 'busyUsByCpu', cpus: string | undefined): number | undefined => {
        if (!cpus || !/^\d+$/.test(cpus)) return undefined;
        const c = Number(cpus);
        return round((((machineB[key][c] ?? 0) - (machineA[key][c] ?? 0)) / (windowS * 1e6)) * 100, 1);
      };
      const sutStealPct = cpuPct('stealUsByCpu', pinning?.['media']);
      const irqPct = round((irqUs / (windowS * 1e6)) * 100, 1);
      // The harness's core (generator, bot, NATS, most of the loopback's softirq): when it has no idle
      // time left, the bot reads late and the latency figures are the harness's, not the node's.
      const harnessBusyPct = cpuPct('busyUsByCpu', pinning?.['loadgen']);
      const lat = { caller_to_bot: c2b.summaryMs(), bot_to_caller: b2c.summaryMs(), round_trip: rtt.summaryMs() };
      const binTo = Math.max(20_000, Math.min(200_000, Math.ceil(Math.max(c2b.quantileUs(0.999), b2c.quantileUs(0.999)) / 5000) * 5000));
      const binWidth = binTo / 100;

      const reasons: string[] = [];
      if (lossC2b > opts.maxLoss) reasons.push(`loss caller→bot ${(lossC2b * 100).toFixed(3)}% > ${opts.maxLoss * 100}%`);
      if (lossB2c > opts.maxLoss) reasons.push(`loss bot→caller ${(lossB2c * 100).toFixed(3)}% > ${opts.maxLoss * 100}%`);
      if (lat.caller_to_bot.p99 > opts.maxP99Ms) reasons.push(`p99 caller→bot ${lat.caller_to_bot.p99} ms > ${opts.maxP99Ms} ms`);
      if (lat.bot_to_caller.p99 > opts.maxP99Ms) reasons.push(`p99 bot→caller ${lat.bot_to_caller.p99} ms > ${opts.maxP99Ms} ms`);
      if (callsFailed > 0) reasons.push(`${callsFailed} failed call(s) (${JSON.stringify({ ...lr.failures, ...(lr.silentCalls ? { 'no-audio-back': lr.silentCalls } : {}) })})`);

      const step: StepResult = {
        calls_target: target,
        calls_in_window: calls,
        calls_failed: callsFailed,
        failures: { ...lr.failures, ...(lr.silentCalls ? { 'no-audio-back': lr.silentCalls } : {}) },
        silent_calls: lr.silentCalls,
        window_s: round(windowS, 3),
        window_mono_ms: [round(fromMs, 1), round(fromMs + opts.duration * 1000, 1)],
        cpu_us_per_call_second: round(sutCpuUs / perCallS, 1),
        sut_cpu_pct: sutKeys.length === 1 ? pct('media') : round((sutCpuUs / (windowS * 1e6)) * 100, 1),
        rss_kb_per_call: round(Math.max(0, rssKb - rssBaselineKb) / Math.max(1, calls), 1),
        sut_rss_kb: rssKb,
        loss_caller_to_bot: round(lossC2b, 6),
        loss_bot_to_caller: round(lossB2c, 6),
        frames: isOpus
          ? { sent: lr.sentInWindow, at_bot: opusAtBot, echoed: opusAtBot, back: lr.recvInWindow, unrecognised_back: 0 }
          : { sent: lr.sentInWindow, at_bot: br.framesInWindow, echoed: br.echoedInWindow, back: lr.recvInWindow, unrecognised_back: lr.unmarked },
        latency_ms: lat,
        latency_bins_ms: { width: binWidth / 1000, caller_to_bot: c2b.bins(binWidth, binTo), bot_to_caller: b2c.bins(binWidth, binTo) },
        latency_slices: { caller_to_bot: br.callerToBotSlices, bot_to_caller: lr.botToCallerSlices },
        cps: round(reached.cps, 2),
        loadgen_cpu_us_per_call_second: round(cpuBetween(a['loadgen'], b['loadgen']) / perCallS, 1),
        loadgen_cpu_pct: pct('loadgen'),
        loadgen_lag_max_ms: lr.lagMaxMs,
        loadgen_late_slots: lr.lateSlots,
        bot_cpu_pct: pct('bot'),
        bot_loop_delay_ms: br.loopDelayMs,
        bot_gc_ms: br.gc,
        nats_cpu_pct: pct('nats'),
        other_cpu_pct: otherPct,
        softirq_cpu_pct: irqPct,
        ...(harnessBusyPct !== undefined ? { harness_core_busy_pct: harnessBusyPct } : {}),
        steal_cpu_pct: stealPct,
        ...(sutStealPct !== undefined ? { sut_core_steal_pct: sutStealPct } : {}),
        major_faults: Object.fromEntries(Object.keys(allPids).map((k) => [k, Math.max(0, (b[k]?.majorFaults ?? 0) - (a[k]?.majorFaults ?? 0))])),
        pass: reasons.length === 0,
        limited_by: reasons.join('; '),
        ...(loopDelay ? { event_loop_delay_ms: loopDelay } : {}),
        ...(nodeWrite ? { node_caller_to_bot_ms: nodeWrite } : {}),
        ...(rtpA && rtpB ? { rtp_sent_now_share: round((rtpB.sentNow - rtpA.sentNow) / Math.max(1, rtpB.sent - rtpA.sent), 4) } : {}),
        // At most 1: the I/O thread counts a packet when it reads it, the lane a little later.
        ...(rtpA?.laneTaken !== undefined && rtpB?.laneTaken !== undefined ? { rx_lane_share: Math.min(1, round((rtpB.laneTaken - rtpA.laneTaken) / Math.max(1, rtpB.received - rtpA.received), 4)) } : {}),
        ...(rtpA?.laneTxTaken !== undefined && rtpB?.laneTxTaken !== undefined ? { tx_lane_share: Math.min(1, round((rtpB.laneTxTaken - rtpA.laneTxTaken) / Math.max(1, rtpB.sent - rtpA.sent), 4)) } : {}),
        // Of the packets sent at once (late bot frames in their held slots), those the lane sent.
        ...(rtpA?.laneHeldSent !== undefined && rtpB?.laneHeldSent !== undefined ? { late_lane_share: Math.min(1, round((rtpB.laneHeldSent - rtpA.laneHeldSent) / Math.max(1, rtpB.sentNow - rtpA.sentNow), 4)) } : {}),
        ...(rtpA?.laneBotTaken !== undefined && rtpB?.laneBotTaken !== undefined ? { bot_lane_frames_per_call_second: round((rtpB.laneBotTaken - rtpA.laneBotTaken) / perCallS, 2) } : {}),
        ...(rtpA?.laneWsWritten !== undefined && rtpB?.laneWsWritten !== undefined && rtpA.laneTaken !== undefined && rtpB.laneTaken !== undefined
          ? { lane_ws_written_share: round((rtpB.laneWsWritten - rtpA.laneWsWritten) / Math.max(1, rtpB.laneTaken - rtpA.laneTaken), 4) }
          : {}),
      };
      if (viaProxy) {
        // Calls each node holds, from the cluster table (its own row), right after the window.
        const rows = await readMembers(nats.url).catch(() => []);
        const mediaUs = mediaKeys.reduce((s, k) => s + cpuBetween(a[k], b[k]), 0);
        const proxyUs = cpuBetween(a['proxy'], b['proxy']);
        const sutCores = sutCpuUs / (windowS * 1e6);
        step.sharded = {
          shards: shardCount,
          sut_cores: round(sutCores, 3),
          calls_per_core: round(calls / Math.max(1e-9, sutCores), 1),
          media_cpu_us_per_call_second: round(mediaUs / perCallS, 1),
          media_calls_per_core: round(calls / Math.max(1e-9, mediaUs / (windowS * 1e6)), 1),
          proxy_cpu_pct: pct('proxy'),
          proxy_cpu_us_per_call_second: round(proxyUs / perCallS, 1),
          proxy_share_of_sut: round(proxyUs / Math.max(1, sutCpuUs), 3),
          per_shard: mediaKeys.map((k, i) => {
            const row = rows.find((r) => r.id === `shard-${i}`);
            const us = cpuBetween(a[k], b[k]);
            return {
              id: `shard-${i}`,
              cpu_pct: pct(k),
              calls: row ? row.calls : null,
              cpu_us_per_call_second: row && row.calls > 0 ? round(us / (row.calls * windowS), 1) : null,
              rss_kb: b[k]?.rssKb ?? 0,
            };
          }),
        };
        say(
          `[${elapsed()}] sharded: ${shardCount} shard(s) + proxy = ${step.sharded.sut_cores} cores → ${step.sharded.calls_per_core} calls/core (media only ${step.sharded.media_calls_per_core}) | proxy ${step.sharded.proxy_cpu_pct}% (${(step.sharded.proxy_share_of_sut * 100).toFixed(1)}% of SUT) | ${step.sharded.per_shard.map((s) => `${s.id} ${s.calls ?? '?'} calls ${s.cpu_pct}%`).join(', ')}`,
        );
      }
      steps.push(step);
      say(
        `[${elapsed()}] step ${target}: ${step.pass ? 'PASS' : 'FAIL'} | cpu ${step.cpu_us_per_call_second} µs/call·s (${step.sut_cpu_pct}% of a core) | rss ${step.rss_kb_per_call} kB/call | loss c→b ${(lossC2b * 100).toFixed(3)}% b→c ${(lossB2c * 100).toFixed(3)}% | p99 c→b ${lat.caller_to_bot.p99} ms b→c ${lat.bot_to_caller.p99} ms${nodeWrite ? ` (c→b in the node ${nodeWrite.p99} ms)` : ''} | over budget in ${overSlices(br.callerToBotSlices)} c→b, ${overSlices(lr.botToCallerSlices)} b→c | generator ${step.loadgen_cpu_pct}% lag ${lr.lagMaxMs} ms | loop delay p50/p99/max ${loopDelay ? `${loopDelay.p50}/${loopDelay.p99}/${loopDelay.max}` : '?'} ms | softirq ${irqPct}%${harnessBusyPct !== undefined ? ` | harness core ${harnessBusyPct}% busy${harnessBusyPct >= HARNESS_SATURATED_PCT ? ' (HARNESS SATURATED: latency is the harness\'s)' : ''}` : ''} | steal ${stealPct}%${sutStealPct !== undefined ? ` (SUT core ${sutStealPct}%)` : ''}${stealPct > STOLEN_PCT ? ' (STOLEN: the hypervisor took the CPU; figures invalid)' : ''} | other load ${otherPct}%${otherPct > 10 ? ' (NOISY MACHINE)' : ''}${step.pass ? '' : ` | ${step.limited_by}`}`,
      );
      if (opts.ramp && !step.pass) break;
    }

    say(`[${elapsed()}] hanging up`);
    lg.child.send({ type: 'hangup' });
    const hung = await nextMessage<{ type: 'hungup'; ended: number; byeFailed: number }>(lg.child, 'hungup', 30_000).catch(() => ({ type: 'hungup' as const, ended: 0, byeFailed: -1 }));
    await sleep(500);

    // ------------------------------------------------------------------------------- result
    const passing = steps.filter((s) => s.pass);
    const chosen = opts.ramp ? (passing[passing.length - 1] ?? steps[0]!) : steps[0]!;
    const failing = steps.find((s) => !s.pass);
    const setupH = Histogram.fromSparse(lastReport!.setup);
    const setup = setupH.summaryMs();
    const talk = opts.pauseMs > 0 && !isOpus ? `talk${opts.talkMs}-pause${opts.pauseMs}` : 'continuous';
    const result: BenchResult = {
      scenario: `${opts.ramp ? 'ramp' : 'fixed'}:${viaProxy ? `proxy-${shardCount}shard${shardCount > 1 ? 's' : ''}` : 'media-direct'}:${isOpus ? 'opus48k-20ms' : 'pcmu-20ms'}:${opts.protocol ?? 'native'}-echo${botRate === 8000 ? '' : `-l16@${botRate / 1000}k`}:${talk}${opts.rtpIo ? `:rtp-${opts.rtpIo}` : ''}${opts.addon === false ? ':no-addon' : ''}${opts.playoutTrim ? ':trim' : ''}${opts.playoutCatchUp === false ? ':no-catch-up' : ''}${opts.playoutCatchUpMs !== undefined ? `:catch-up-${opts.playoutCatchUpMs}ms` : ''}${opts.opusComplexity !== undefined ? `:opus-complexity-${opts.opusComplexity}` : ''}${markEvery > 1 ? `:mark-every-${markEvery}` : ''}`,
      cores,
      node_version: process.version,
      calls_target: chosen.calls_target,
      calls_established: chosen.calls_in_window,
      calls_failed: chosen.calls_failed,
      window_s: chosen.window_s,
      cpu_us_per_call_second: chosen.cpu_us_per_call_second,
      rss_kb_per_call: chosen.rss_kb_per_call,
      loss_caller_to_bot: chosen.loss_caller_to_bot,
      loss_bot_to_caller: chosen.loss_bot_to_caller,
      latency_ms: { caller_to_bot: chosen.latency_ms.caller_to_bot, bot_to_caller: chosen.latency_ms.bot_to_caller },
      setup_ms: { p50: setup.p50, p99: setup.p99 },
      cps: chosen.cps,
      loadgen_cpu_us_per_call_second: chosen.loadgen_cpu_us_per_call_second,
      bot_rate_hz: botRate,
      media_node_flags: media.nodeFlags,
      loadgen_rtp_io: lg.ready.rtpIo,
      loadgen_sockets: lg.ready.sockets,
      loadgen_pacing: lastReport!.pacing,
      ...(chosen.event_loop_delay_ms ? { event_loop_delay_ms: chosen.event_loop_delay_ms } : {}),
      ...(chosen.node_caller_to_bot_ms ? { node_caller_to_bot_ms: chosen.node_caller_to_bot_ms } : {}),
      ...(chosen.rtp_sent_now_share !== undefined ? { rtp_sent_now_share: chosen.rtp_sent_now_share } : {}),
      ...(chosen.rx_lane_share !== undefined ? { rx_lane_share: chosen.rx_lane_share } : {}),
      ...(chosen.tx_lane_share !== undefined ? { tx_lane_share: chosen.tx_lane_share } : {}),
      ...(chosen.late_lane_share !== undefined ? { late_lane_share: chosen.late_lane_share } : {}),
      ...(chosen.bot_lane_frames_per_call_second !== undefined ? { bot_lane_frames_per_call_second: chosen.bot_lane_frames_per_call_second } : {}),
      ...(chosen.lane_ws_written_share !== undefined ? { lane_ws_written_share: chosen.lane_ws_written_share } : {}),
      ...(isOpus
        ? { note: 'opus: loss counted by frames (bot frames and RTP packets back vs RTP packets sent, per window by arrival), latency not measured (no marker survives the codec): latency_ms fields are 0' }
        : {}),
    };
    if (opts.ramp) {
      result.capacity = {
        calls: passing.length > 0 ? chosen.calls_target : 0,
        limited_by: failing ? failing.limited_by : `not reached: every step up to ${steps[steps.length - 1]!.calls_target} calls passed (raise --calls)`,
      };
    }
    const cpuInfo = cpus();
    const details: BenchDetails = {
      command,
      started: new Date().toISOString(),
      machine: { cpu: cpuInfo[0]?.model ?? 'unknown', cores, mem_gb: round(totalmem() / 2 ** 30, 1), kernel: release(), node: process.version, host_probe_ms: hostProbeMs },
      pinning,
      bot_nice: botNice,
      bot_io: botIo,
      rehearsal: opts.rehearsal !== false,
      rss_baseline_kb: rssBaselineKb,
      steps,
      setup_ms: setup,
      edge_media_stats: ended.media,
      edge_qos: ended.qos(),
      calls_ended_events: ended.events,
      hangup: { ended: hung.ended, byeFailed: hung.byeFailed },
    };
    writeFileSync(`${opts.out}/result.json`, JSON.stringify(result, null, 2) + '\n');
    writeFileSync(`${opts.out}/details.json`, JSON.stringify(details, null, 2) + '\n');
    writeFileSync(`${opts.out}/report.html`, renderReport(result, details));
    lg.child.send({ type: 'exit' });
    bot.child.send({ type: 'exit' });
    return { result, details };
  } finally {
    await nc?.close().catch(() => undefined);
    await children.stopAll();
    // Every core again: a later run in this process (--addon both, --rtp-io both) forks from here.
    if (cores > 1) pin(process.pid, `0-${cores - 1}`);
  }
}
