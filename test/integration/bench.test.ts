/**
 * The capacity benchmark end to end, small: 20 calls for a 5 s window against a real media node
 * (spawned through its CLI), a real nats-server, the instrumented echo bot and the load generator,
 * each its own process. Asserts result.json's schema and that audio flowed both ways — with the
 * bot at 8 kHz (byte marker, no resampling) and at 16 kHz (the node resamples both ways; tone marker).
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MEDIA_NODE_FLAGS } from '../../edge/node-flags.js';
import type { QosSummary } from '../../edge/media/qos.js';
import { DEFAULT_BOT_NICE } from '../../bench/run.js';

const CLI = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'cli.js');

const NUMERIC_FIELDS = [
  'cores',
  'calls_target',
  'calls_established',
  'calls_failed',
  'window_s',
  'cpu_us_per_call_second',
  'rss_kb_per_call',
  'loss_caller_to_bot',
  'loss_bot_to_caller',
  'cps',
  'loadgen_cpu_us_per_call_second',
  'bot_rate_hz',
] as const;

// Issue 3's fields, plus the media node's own event-loop delay over the window and (native RTP
// I/O, what these tests run on) its own part of caller → bot and the share of packets sent at once.
const FIELDS = ['scenario', 'node_version', ...NUMERIC_FIELDS, 'latency_ms', 'setup_ms', 'event_loop_delay_ms', 'node_caller_to_bot_ms', 'media_node_flags', 'loadgen_rtp_io', 'loadgen_sockets', 'loadgen_pacing', 'rtp_sent_now_share', 'rx_lane_share', 'tx_lane_share', 'bot_lane_frames_per_call_second', 'lane_ws_written_share', 'late_lane_share'];

describe('npm run bench', () => {
  const out = mkdtempSync(join(tmpdir(), 'botedge-bench-'));
  let bench: ChildProcess | undefined;

  after(() => {
    // The bench stops its own children by PID in a finally; this is for a bench that hung or was
    // killed: it and every child it recorded in pids.json, by PID.
    const pids: number[] = [];
    if (bench?.pid !== undefined && bench.exitCode === null) pids.push(bench.pid);
    // After a clean exit the children are gone and their PIDs may be someone else's by now.
    if (bench?.exitCode !== 0) try {
      pids.push(...(JSON.parse(readFileSync(join(out, 'pids.json'), 'utf8')) as number[]));
    } catch {
      /* the bench never started a child */
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    rmSync(out, { recursive: true, force: true });
  });

  it('runs 20 calls for 5 s with an 8 kHz bot and writes a result whose frames flowed both ways', { timeout: 45_000 }, async () => {
    // Random RTP range per run so parallel test files do not compete for ports.
    const base = 40000 + 2 * Math.floor(Math.random() * 5000);
    bench = spawn(process.execPath, [CLI, '--bot-rate', '8000', '--calls', '20', '--duration', '5', '--rate', '40', '--settle', '1', '--rtp-ports', `${base}-${base + 199}`, '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    bench.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    bench.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => bench!.once('close', (c) => resolve(c)));
    assert.equal(code, 0, `bench failed:\n${stderr}\n${stdout.slice(-2000)}`);
    assert.match(stdout, /calls up \d+/, 'progress lines are printed while it runs');

    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(result).sort(), [...FIELDS].sort(), 'exactly the fields issue 3 names, bot_rate_hz and the event-loop delay (no capacity outside a ramp)');
    for (const f of NUMERIC_FIELDS) assert.ok(typeof result[f] === 'number' && Number.isFinite(result[f]), `${f} is a number`);
    assert.equal(typeof result['scenario'], 'string');
    const latency = result['latency_ms'] as Record<string, Record<string, number>>;
    for (const dir of ['caller_to_bot', 'bot_to_caller']) {
      for (const q of ['p50', 'p99', 'max']) assert.ok(Number.isFinite(latency[dir]?.[q]), `latency_ms.${dir}.${q}`);
      assert.ok(latency[dir]!['p50']! > 0, `${dir} latency was measured`);
    }
    const loop = result['event_loop_delay_ms'] as Record<string, number>;
    for (const q of ['p50', 'p99', 'max']) assert.ok(Number.isFinite(loop[q]) && loop[q]! >= 0, `event_loop_delay_ms.${q}`);
    assert.ok(loop['max']! >= loop['p99']! && loop['p99']! >= loop['p50']!, 'event-loop delay quantiles are ordered');
    // The node's own part of caller → bot: every caller datagram of its window (5.5 s of 20 calls,
    // less the callers' pauses), timed from the kernel's stamp.
    const inNode = result['node_caller_to_bot_ms'] as Record<string, number>;
    assert.ok(inNode['count']! > 3000, `node_caller_to_bot_ms.count ${inNode['count']}`);
    assert.ok(inNode['max']! >= inNode['p99']! && inNode['p99']! >= inNode['p50']! && inNode['p50']! > 0, `node_caller_to_bot_ms ${JSON.stringify(inNode)}`);
    assert.ok(inNode['p50']! < 100, `node_caller_to_bot_ms.p50 ${inNode['p50']} ms: a stamp on another clock would read seconds or hours`);
    const setup = result['setup_ms'] as Record<string, number>;
    assert.ok(setup['p50']! > 0 && setup['p99']! >= setup['p50']!);

    assert.equal(result['bot_rate_hz'], 8000);
    assert.equal(result['loadgen_rtp_io'], 'native', 'the generator\'s RTP rides the addon\'s I/O thread when it is built');
    assert.equal(result['loadgen_pacing'], 'io', 'and that thread keeps its RTP slots');
    assert.equal(result['loadgen_sockets'], 'shared', 'one RTP socket speaks for every call by default');
    assert.deepEqual(result['media_node_flags'], [...MEDIA_NODE_FLAGS], 'the media node ran with the flags botedge up gives it');
    assert.equal(result['calls_target'], 20);
    assert.equal(result['calls_established'], 20);
    assert.equal(result['calls_failed'], 0);
    assert.ok((result['loss_caller_to_bot'] as number) < 0.01, `caller→bot loss ${result['loss_caller_to_bot']}`);
    assert.ok((result['loss_bot_to_caller'] as number) < 0.01, `bot→caller loss ${result['loss_bot_to_caller']}`);
    assert.ok((result['cpu_us_per_call_second'] as number) > 0, 'SUT CPU was measured');

    const details = JSON.parse(readFileSync(join(out, 'details.json'), 'utf8')) as {
      pinning: unknown;
      bot_nice: number;
      bot_io: string;
      steps: { frames: { sent: number; at_bot: number; echoed: number; back: number }; steal_cpu_pct: number; sut_core_steal_pct?: number }[];
      edge_qos?: QosSummary;
    };
    // The echo bot goes ahead of the generator on their core by default; a nice below 0 needs root.
    assert.equal(details.bot_nice, process.getuid?.() === 0 ? DEFAULT_BOT_NICE : 0);
    // It reads and writes its per-call connections on their sockets by default (bench/raw-frames.ts).
    assert.equal(details.bot_io, 'raw');
    const step = details.steps[0]!;
    // The hypervisor's share is read from /proc/stat next to the other machine figures.
    assert.ok(step.steal_cpu_pct >= 0 && step.steal_cpu_pct <= 100 * 64, `steal_cpu_pct ${step.steal_cpu_pct}`);
    if (details.pinning !== null) assert.ok(step.sut_core_steal_pct! >= 0 && step.sut_core_steal_pct! <= 100, `sut_core_steal_pct ${step.sut_core_steal_pct}`);
    const frames = step.frames;
    // 20 calls × 5 s × 50 frames/s, less the callers' pauses: thousands of frames each way.
    assert.ok(frames.sent > 3000 && frames.at_bot > 3000 && frames.back > 3000, JSON.stringify(frames));
    // The node's own view of the generator's streams, from each call's `ended`: nothing lost on loopback.
    const qos = details.edge_qos!;
    assert.equal(qos.calls, 20, JSON.stringify(qos));
    assert.ok(qos.packetsExpected > 3000 && qos.lossPct < 1 && qos.mos!.p50 >= 4.3, JSON.stringify(qos));

    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<svg /);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'self-contained: no scripts, nothing fetched');
    assert.ok(existsSync(join(out, 'bench-media-1.log')), 'the media node log is kept next to the result');
  });
  for (const markEvery of [1, 4]) {
    const marking = markEvery === 1 ? '' : ` (--mark-every ${markEvery}: the rest filler the bot echoes)`;
    it(`--bot-rate 16000: 10 calls through the node's resamplers lose no frame and read plausible latencies${marking}`, { timeout: 40_000 }, async () => {
      const out16 = mkdtempSync(join(tmpdir(), 'botedge-bench-16k-'));
      const base = 50000 + 2 * Math.floor(Math.random() * 4000);
      // Every frame marked: with a socket per caller, the generator's other way of sending.
      const sockets = markEvery === 1 ? 'per-call' : 'shared';
      // And, in the second run, the route's catch-up bound given on the command line, and the echo
      // bot's frames through `ws` (the harness's other way; the first runs take the default, raw).
      const catchUp = markEvery === 1 ? [] : ['--playout-catch-up-ms', '60', '--bot-io', 'ws'];
      const child = spawn(process.execPath, [CLI, '--bot-rate', '16000', '--calls', '10', '--duration', '5', '--rate', '40', '--settle', '1', '--mark-every', String(markEvery), '--loadgen-sockets', sockets, ...catchUp, '--rtp-ports', `${base}-${base + 199}`, '--out', out16], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout!.resume();
      try {
        const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
        assert.equal(code, 0, `bench --bot-rate 16000 failed:\n${stderr}`);
        const result = JSON.parse(readFileSync(join(out16, 'result.json'), 'utf8')) as Record<string, unknown>;
        assert.equal(result['bot_rate_hz'], 16000);
        assert.match(String(result['scenario']), /l16@16k/);
        assert.equal(result['loadgen_sockets'], sockets);
        assert.equal(result['calls_established'], 10);
        assert.equal(result['calls_failed'], 0);
        assert.equal(result['loss_caller_to_bot'], 0);
        assert.equal(result['loss_bot_to_caller'], 0);
        const latency = result['latency_ms'] as Record<string, Record<string, number>>;
        // Caller → bot is a hop through the node's event loop; bot → caller waits for the node's next
        // 20 ms tick. Zero, or seconds (the tone marker's 24-bit stamp wraps at 16.7 s), would mean
        // the stamps were misread; a loaded CI host has read a p99 of 157 ms (p50 36), a slow
        // machine and not a misreading, so the p99's bound is loose and the p50's below is tight.
        for (const dir of ['caller_to_bot', 'bot_to_caller']) {
          const l = latency[dir]!;
          assert.ok(l['p50']! > 0 && l['p99']! >= l['p50']! && l['p99']! < 500, `${dir}: ${JSON.stringify(l)}`);
        }
        // About one tick (≈ 18 ms on a quiet host); three ticks of slack, since this is a sanity
        // check of the stamps on a shared machine, not the benchmark's figure (CI runs on hosts
        // taking a large share of the CPU read 27 and 45 ms).
        assert.ok(latency['bot_to_caller']!['p50']! < 60, `bot→caller p50 within a few ticks: ${JSON.stringify(latency['bot_to_caller'])}`);
        // Native RTP I/O reports how many packets left at once (late bot frames caught up): a share,
        // and never most of them (the echo bot streams in real time; most frames are on time).
        // The bot's frames into playout by the receive lane: most of the ~42 a second the echo bot
        // sends per call (talk 3 s of every 3.6 s), late ones too (decision 0019); the rest took the
        // JavaScript path (a call's first frames, a frame near a mark).
        const botLane = result['bot_lane_frames_per_call_second'];
        assert.ok(typeof botLane === 'number' && botLane > 20 && botLane <= 50, `bot_lane_frames_per_call_second ${String(botLane)}`);
        // And the caller's frames the lane took, it wrote to the bots' sockets itself (decision 0015).
        const written = result['lane_ws_written_share'];
        assert.ok(typeof written === 'number' && written > 0.8 && written <= 1, `lane_ws_written_share ${String(written)}`);
        const share = result['rtp_sent_now_share'];
        assert.ok(typeof share === 'number' && share >= 0 && share < 0.5, `rtp_sent_now_share ${String(share)}`);
        // Of those sent at once, the share the lane sent (all but the JavaScript path's few).
        const lateLane = result['late_lane_share'];
        assert.ok(typeof lateLane === 'number' && lateLane >= 0 && lateLane <= 1, `late_lane_share ${String(lateLane)}`);
        const details = JSON.parse(readFileSync(join(out16, 'details.json'), 'utf8')) as { bot_io: string; steps: { frames: { sent: number; at_bot: number; echoed: number; back: number; unrecognised_back: number } }[] };
        assert.equal(details.bot_io, markEvery === 1 ? 'raw' : 'ws');
        const frames = details.steps[0]!.frames;
        // 10 calls × 5 s × 50 frames/s less the pauses (one in `markEvery` marked); every one read at
        // the bot and back, none misread.
        assert.ok(frames.sent > 1500 / markEvery && frames.sent < 2600 / markEvery, JSON.stringify(frames));
        if (markEvery > 1) {
          assert.match(String(result['scenario']), new RegExp(`:catch-up-60ms:mark-every-${markEvery}`));
          const config = JSON.parse(readFileSync(join(out16, 'bench-media-1.json'), 'utf8')) as { defaultRoute: Record<string, unknown> };
          assert.equal(config.defaultRoute['playoutCatchUpMs'], 60, 'the media node\'s route holds up to 60 ms');
        }
        assert.equal(frames.at_bot, frames.sent, JSON.stringify(frames));
        assert.equal(frames.back, frames.echoed, JSON.stringify(frames));
        assert.equal(frames.unrecognised_back, 0, JSON.stringify(frames));
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        rmSync(out16, { recursive: true, force: true });
      }
    });
  }
  it('--shards 2: two media nodes behind the proxy share the calls', { timeout: 40_000 }, async () => {
    const out2 = mkdtempSync(join(tmpdir(), 'botedge-bench-shards-'));
    const base = 30000 + 2 * Math.floor(Math.random() * 4000);
    const child = spawn(process.execPath, [CLI, '--shards', '2', '--loadgen-rtp-io', 'dgram', '--calls', '10', '--duration', '3', '--rate', '40', '--settle', '1', '--rtp-ports', `${base}-${base + 199}`, '--out', out2], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.resume();
    try {
      const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
      assert.equal(code, 0, `bench --shards 2 failed:\n${stderr}`);
      const result = JSON.parse(readFileSync(join(out2, 'result.json'), 'utf8')) as Record<string, unknown>;
      assert.match(String(result['scenario']), /proxy-2shards/);
      assert.equal(result['loadgen_rtp_io'], 'dgram', 'the generator\'s node:dgram path, as asked');
      assert.equal(result['loadgen_pacing'], 'timer', 'without the I/O thread, a timer keeps the slots');
      assert.equal(result['calls_established'], 10);
      const details = JSON.parse(readFileSync(join(out2, 'details.json'), 'utf8')) as { pinning: unknown; steps: { sharded?: { per_shard: { calls: number | null }[]; proxy_cpu_pct: number } }[] };
      assert.equal(details.pinning, null, 'no pinning when sharded');
      const sh = details.steps[0]!.sharded!;
      assert.equal(sh.per_shard.length, 2);
      for (const s of sh.per_shard) assert.ok((s.calls ?? 0) > 0, `every shard took calls: ${JSON.stringify(sh.per_shard)}`);
      // Both nodes' own caller → bot, merged: every caller frame the generator sent in the window
      // crossed one of them (their window is half a second longer, and counts the pauses' packets).
      const inNodes = result['node_caller_to_bot_ms'] as Record<string, number>;
      const sent = (details.steps[0] as unknown as { frames: { sent: number } }).frames.sent;
      assert.ok(inNodes['count']! >= sent && sent > 0, `node_caller_to_bot_ms.count ${inNodes['count']} against ${sent} frames sent`);
      assert.ok(inNodes['max']! >= inNodes['p99']! && inNodes['p99']! >= inNodes['p50']!, JSON.stringify(inNodes));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(out2, { recursive: true, force: true });
    }
  });
});
