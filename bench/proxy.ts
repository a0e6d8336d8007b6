#!/usr/bin/env node
/**
 * `npm run bench:proxy -- <what> --out DIR`: the proxy benchmark of issue 5
 * (docs/benchmarks/proxy.md explains the method, BENCHMARKS.md keeps the figures).
 *
 *   balance  3 media nodes, the same SIPp load (random 1-12 s holds) through the proxy with
 *            --strategy load, then round-robin: each node's peak concurrent calls and the spread.
 *   setups   short calls (INVITE→200→ACK→BYE) through proxy + 3 media nodes at rising rates:
 *            the highest clean rate and CPU per call setup of the proxy and of the nodes.
 *   alone    the proxy alone in front of a SIPp UAS, side by side with Kamailio stateless and
 *            transaction-stateful (bench/kamailio/*.cfg) in the same run: CPU per call setup
 *            (medians of interleaved repeats) and the highest clean rate, as ratios.
 *   all      the three in turn.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Command, InvalidArgumentError } from 'commander';
import { Membership } from '../edge/cluster/membership.js';
import { Children, startMediaNode, startNats } from './procs.js';
import {
  loadavg1,
  reapedChildrenCpuUs,
  runSippUac,
  sampleMachine,
  startEchoBot,
  startKamailio,
  startProxy,
  startSippUas,
  stopChild,
  treeCpuUs,
  type SippStat,
} from './proxy-procs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

// ---------------------------------------------------------------------------------------------
// Measurement windows: CPU of named process trees, the machine's load outside them.

interface Window {
  wallMs: number;
  /** CPU per named group (process tree), µs. */
  cpuUs: Record<string, number>;
  /** CPU of SIPp callers that ran and exited inside the window (reaped children), µs. */
  callerCpuUs: number;
  /** Busy CPU of the machine not accounted to any process of this benchmark, % of one core. */
  otherLoadPct: number;
  loadavg1: [number, number];
}

async function measure<T>(groups: Record<string, ChildProcess[]>, fn: () => Promise<T>): Promise<{ result: T; win: Window }> {
  const cpu = () => Object.fromEntries(Object.entries(groups).map(([k, ps]) => [k, ps.reduce((a, p) => a + (p.pid ? treeCpuUs(p.pid) : 0), 0)]));
  const self = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const l0 = loadavg1();
  const m0 = sampleMachine();
  const c0 = cpu();
  const r0 = reapedChildrenCpuUs();
  const s0 = self();
  const t0 = performance.now();
  const result = await fn();
  const wallMs = performance.now() - t0;
  const c1 = cpu();
  const r1 = reapedChildrenCpuUs();
  const s1 = self();
  const m1 = sampleMachine();
  const cpuUs = Object.fromEntries(Object.keys(c0).map((k) => [k, c1[k]! - c0[k]!]));
  const ours = Object.values(cpuUs).reduce((a, b) => a + b, 0) + (r1 - r0) + (s1 - s0);
  // Stolen time is the hypervisor's, not another workload's (sampleMachine).
  const otherLoadPct = Math.max(0, ((m1.busyUs - m0.busyUs - (m1.stealUs - m0.stealUs) - ours) / (wallMs * 1000)) * 100);
  return { result, win: { wallMs, cpuUs, callerCpuUs: r1 - r0, otherLoadPct: round(otherLoadPct), loadavg1: [l0, loadavg1()] } };
}

interface Step {
  system: string;
  rate: number;
  calls: number;
  sipp: SippStat;
  /** Successful calls per second of SIPp's wall time. */
  achievedCps: number;
  clean: boolean;
  /** CPU µs per successful call setup, per group. */
  cpuUsPerCall: Record<string, number>;
  /** Share of one core the system under test used during the step, %. */
  sutCorePct: number;
  callerCpuUsPerCall: number;
  otherLoadPct: number;
  loadavg1: [number, number];
}

/** One SIPp caller run of `uac_short.xml` at `rate` for `seconds`, measured. */
async function setupStep(children: Children, o: { dir: string; system: string; target: string; rate: number; seconds: number; groups: Record<string, ChildProcess[]>; sut: string; cpus?: string; index: number }): Promise<Step> {
  const calls = Math.round(o.rate * o.seconds);
  const { result: sipp, win } = await measure(o.groups, () =>
    runSippUac(children, { dir: o.dir, name: `uac-${o.index}-${o.system.replace(/[^a-z0-9]+/gi, '-')}-${o.rate}`, scenario: 'uac_short.xml', target: o.target, calls, rate: o.rate, cpus: o.cpus, timeoutS: o.seconds + 20 }),
  );
  const ok = Math.max(1, sipp.successful);
  const achievedCps = sipp.successful / (sipp.wallMs / 1000);
  // Clean: every call succeeded and SIPp kept the pace it was asked for (a caller falling behind
  // means a slow answer somewhere; a step SIPp itself cannot drive shows as callerCorePct ≈ 100).
  const clean = sipp.failed === 0 && sipp.successful === calls && achievedCps >= 0.9 * o.rate;
  const step: Step = {
    system: o.system,
    rate: o.rate,
    calls,
    sipp,
    achievedCps: round(achievedCps),
    clean,
    cpuUsPerCall: Object.fromEntries(Object.entries(win.cpuUs).map(([k, v]) => [k, round(v / ok)])),
    sutCorePct: round(((win.cpuUs[o.sut] ?? 0) / (win.wallMs * 1000)) * 100),
    callerCpuUsPerCall: round(win.callerCpuUs / ok),
    otherLoadPct: win.otherLoadPct,
    loadavg1: win.loadavg1,
  };
  console.log(
    `${o.system.padEnd(18)} ${String(o.rate).padStart(5)}/s  ok ${sipp.successful}/${calls} failed ${sipp.failed} retrans ${sipp.retransmissions}  ${round(achievedCps)} cps  ` +
      `${Object.entries(step.cpuUsPerCall).map(([k, v]) => `${k} ${v} µs/call`).join('  ')}  sut ${step.sutCorePct}% of a core  other load ${win.otherLoadPct}%  loadavg ${win.loadavg1.join('→')}  ${clean ? 'clean' : 'NOT CLEAN'}`,
  );
  return step;
}

// ---------------------------------------------------------------------------------------------
// The cluster: nats-server, echo bot, 3 media nodes; the proxy is started per run.

interface ClusterUp {
  nats: { child: ChildProcess; url: string };
  bot: ChildProcess;
  nodes: Map<string, ChildProcess>;
  nc: NatsConnection;
  observer: Membership;
}

async function startCluster(children: Children, dir: string, nodeIds: string[]): Promise<ClusterUp> {
  const nats = await startNats(children);
  const bot = await startEchoBot(children);
  const nodes = new Map<string, ChildProcess>();
  let base = 52000;
  for (const id of nodeIds) {
    const n = await startMediaNode(children, dir, { natsUrl: nats.url, botUrl: bot.url, rtpPortMin: base, rtpPortMax: base + 999, nodeId: id, maxCalls: 5000 });
    nodes.set(id, n.child);
    base += 1000;
  }
  const nc = await connect({ servers: nats.url });
  const observer = await Membership.open(nc, undefined, `bench-observer-${process.pid}`);
  for (let i = 0; i < 100 && observer.members().filter((m) => m.role === 'media').length < nodeIds.length; i++) await sleep(100);
  return { nats, bot: bot.child, nodes, nc, observer };
}

async function waitIdle(c: ClusterUp, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (c.observer.members().every((m) => m.role !== 'media' || m.calls === 0)) return;
    await sleep(200);
  }
  console.log('warning: media nodes still report calls after 30 s');
}

interface BalanceRun {
  strategy: 'load' | 'round-robin';
  sipp: SippStat;
  nodes: Record<string, { peak: number; calls: number }>;
  peakMean: number;
  /** (max − min) / mean of the nodes' peaks, %. */
  spreadPct: number;
  /** Largest |peak − mean| / mean, %. */
  maxDeviationPct: number;
  otherLoadPct: number;
  loadavg1: [number, number];
}

async function balance(children: Children, dir: string, o: { calls: number; rate: number }): Promise<BalanceRun[]> {
  const c = await startCluster(children, dir, ['m1', 'm2', 'm3']);
  const runs: BalanceRun[] = [];
  try {
    for (const strategy of ['load', 'round-robin'] as const) {
      await waitIdle(c);
      const proxy = await startProxy(children, { natsUrl: c.nats.url, strategy, id: `proxy-${strategy}` });
      await sleep(1500); // the proxy's replica of the members table fills from the next heartbeats
      const total0 = new Map(c.observer.members().map((m) => [m.id, m.callsTotal]));
      const peaks = new Map<string, number>();
      const sampler = setInterval(() => {
        for (const m of c.observer.members()) if (m.role === 'media') peaks.set(m.id, Math.max(peaks.get(m.id) ?? 0, m.calls));
      }, 50);
      const groups = { proxy: [proxy.child], nodes: [...c.nodes.values()], bot: [c.bot], nats: [c.nats.child] };
      const { result: sipp, win } = await measure(groups, () =>
        runSippUac(children, { dir, name: `balance-${strategy}`, scenario: 'uac_random_hold.xml', target: `127.0.0.1:${proxy.port}`, calls: o.calls, rate: o.rate, timeoutS: Math.ceil(o.calls / o.rate) + 40 }),
      );
      await sleep(300);
      clearInterval(sampler);
      const nodes: BalanceRun['nodes'] = {};
      for (const m of c.observer.members()) if (m.role === 'media') nodes[m.id] = { peak: peaks.get(m.id) ?? 0, calls: m.callsTotal - (total0.get(m.id) ?? 0) };
      const ps = Object.values(nodes).map((n) => n.peak);
      const mean = ps.reduce((a, b) => a + b, 0) / ps.length;
      const run: BalanceRun = {
        strategy,
        sipp,
        nodes,
        peakMean: round(mean),
        spreadPct: round(((Math.max(...ps) - Math.min(...ps)) / mean) * 100),
        maxDeviationPct: round(Math.max(...ps.map((p) => Math.abs(p - mean))) / mean * 100),
        otherLoadPct: win.otherLoadPct,
        loadavg1: win.loadavg1,
      };
      console.log(`balance ${strategy.padEnd(11)} ok ${sipp.successful} failed ${sipp.failed}  peaks ${Object.entries(nodes).map(([id, n]) => `${id}=${n.peak} (${n.calls} calls)`).join(' ')}  spread ${run.spreadPct}%  max dev ${run.maxDeviationPct}%  other load ${win.otherLoadPct}%`);
      runs.push(run);
      await stopChild(proxy.child);
    }
  } finally {
    await c.observer.close();
    await c.nc.close();
  }
  return runs;
}

async function setups(children: Children, dir: string, o: { rates: number[]; seconds: number }): Promise<Step[]> {
  const c = await startCluster(children, dir, ['s1', 's2', 's3']);
  const steps: Step[] = [];
  try {
    const proxy = await startProxy(children, { natsUrl: c.nats.url, strategy: 'load', id: 'proxy-setups' });
    await sleep(1500);
    const groups = { proxy: [proxy.child], nodes: [...c.nodes.values()], bot: [c.bot], nats: [c.nats.child] };
    let i = 0;
    console.log('warm-up:');
    await setupStep(children, { dir, system: 'proxy+3 nodes', target: `127.0.0.1:${proxy.port}`, rate: o.rates[0]!, seconds: 3, groups, sut: 'proxy', index: i++ });
    for (const rate of o.rates) {
      await waitIdle(c);
      const s = await setupStep(children, { dir, system: 'proxy+3 nodes', target: `127.0.0.1:${proxy.port}`, rate, seconds: o.seconds, groups, sut: 'proxy', index: i++ });
      steps.push(s);
      if (!s.clean) break;
    }
    await stopChild(proxy.child);
  } finally {
    await c.observer.close();
    await c.nc.close();
  }
  return steps;
}

interface AloneResult {
  compareRate: number;
  repeats: Step[];
  medians: Record<string, { cpuUsPerCall: number; sutCorePct: number; retransmissions: number; allClean: boolean }>;
  ladder: Step[];
  maxClean: Record<string, number>;
  ratios: { cpuProxyOverKamailioStateful: number; cpuProxyOverKamailioStateless: number; rateProxyOverKamailioStateful: number | null };
}

async function alone(children: Children, dir: string, o: { rate: number; repeats: number; rates: number[]; seconds: number; workers: number; pin: boolean }): Promise<AloneResult> {
  // Each system under test on cpu 1 (the same single core for all three). SIPp floats: pinned to
  // cpu 0 it shared that core with whatever else ran on the machine, fell behind and set off
  // retransmission cascades that made every system look broken at 1000 calls/s (first run,
  // docs/benchmarks/proxy.md).
  const sutCpus = o.pin ? '1' : undefined;
  const sippCpus: string | undefined = undefined;
  const nats = await startNats(children);
  if (o.pin) execFileSync('taskset', ['-a', '-cp', '0', String(nats.child.pid)], { stdio: 'ignore' });
  const uas = await startSippUas(children, dir, sippCpus);
  const nc = await connect({ servers: nats.url });
  // The SIPp UAS as the proxy's only "media node": a members row kept fresh by this process.
  const uasRow = await Membership.open(nc, { id: 'sipp-uas', role: 'media', sip: `127.0.0.1:${uas.port}`, rtp: '', capacity: 100000 });
  try {
    const proxy = await startProxy(children, { natsUrl: nats.url, strategy: 'load', id: 'proxy-alone', cpus: sutCpus });
    const ksl = await startKamailio(children, { cfg: 'stateless', uasPort: uas.port, workers: o.workers, dir, cpus: sutCpus });
    const ktm = await startKamailio(children, { cfg: 'stateful', uasPort: uas.port, workers: o.workers, dir, cpus: sutCpus });
    await sleep(1500);
    const systems = [
      { name: 'botedge proxy', child: proxy.child, port: proxy.port },
      { name: 'kamailio stateless', child: ksl.child, port: ksl.port },
      { name: 'kamailio tm', child: ktm.child, port: ktm.port },
    ];
    const groupsFor = (s: (typeof systems)[number]) => ({
      sut: [s.child],
      uas: [uas.child],
      nats: [nats.child],
      // The idle systems stay up; their CPU is counted so it is not mistaken for other load.
      idle: systems.filter((x) => x !== s).map((x) => x.child),
    });
    let i = 0;
    // Warm-up, not counted: the first seconds of a Node process run unoptimised code (the first
    // smoke run measured 2000 µs per setup cold against 930 warm).
    for (const s of systems) {
      console.log('warm-up:');
      await setupStep(children, { dir, system: s.name, target: `127.0.0.1:${s.port}`, rate: o.rate, seconds: 3, groups: groupsFor(s), sut: 'sut', cpus: sippCpus, index: i++ });
      await sleep(500);
    }
    // 1. CPU per call setup at one rate, repeats interleaved (rotating order), medians.
    const repeats: Step[] = [];
    for (let r = 0; r < o.repeats; r++) {
      for (let k = 0; k < systems.length; k++) {
        const s = systems[(k + r) % systems.length]!;
        repeats.push(await setupStep(children, { dir, system: s.name, target: `127.0.0.1:${s.port}`, rate: o.rate, seconds: o.seconds, groups: groupsFor(s), sut: 'sut', cpus: sippCpus, index: i++ }));
        await sleep(1000);
      }
    }
    const medians: AloneResult['medians'] = {};
    for (const s of systems) {
      const mine = repeats.filter((x) => x.system === s.name);
      medians[s.name] = {
        cpuUsPerCall: round(median(mine.map((x) => x.cpuUsPerCall.sut ?? 0))),
        sutCorePct: round(median(mine.map((x) => x.sutCorePct))),
        retransmissions: mine.reduce((a, x) => a + x.sipp.retransmissions, 0),
        allClean: mine.every((x) => x.clean),
      };
    }
    // 2. The ladder: rising rates, each system until its first unclean step.
    const ladder: Step[] = [];
    const failed = new Set<string>();
    const maxClean: Record<string, number> = Object.fromEntries(systems.map((s) => [s.name, 0]));
    for (const rate of o.rates) {
      for (const s of systems) {
        if (failed.has(s.name)) continue;
        const st = await setupStep(children, { dir, system: s.name, target: `127.0.0.1:${s.port}`, rate, seconds: o.seconds, groups: groupsFor(s), sut: 'sut', cpus: sippCpus, index: i++ });
        ladder.push(st);
        if (st.clean) maxClean[s.name] = rate;
        else failed.add(s.name);
        await sleep(1000);
      }
    }
    const p = medians['botedge proxy']!.cpuUsPerCall;
    return {
      compareRate: o.rate,
      repeats,
      medians,
      ladder,
      maxClean,
      ratios: {
        cpuProxyOverKamailioStateful: round(p / medians['kamailio tm']!.cpuUsPerCall, 2),
        cpuProxyOverKamailioStateless: round(p / medians['kamailio stateless']!.cpuUsPerCall, 2),
        rateProxyOverKamailioStateful: maxClean['kamailio tm'] ? round(maxClean['botedge proxy']! / maxClean['kamailio tm']!, 2) : null,
      },
    };
  } finally {
    await uasRow.close();
    await nc.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function report(r: { balance?: BalanceRun[]; setups?: Step[]; alone?: AloneResult; meta: Record<string, unknown> }): string {
  const out: string[] = [`Run ${r.meta.date} on ${r.meta.cores} cores, Node ${r.meta.node}.`, ''];
  if (r.balance) {
    const ids = Object.keys(r.balance[0]?.nodes ?? {});
    out.push('Balance (peak concurrent calls per node):', '');
    out.push(
      table(
        ['strategy', ...ids.map((id) => `${id} peak (calls)`), 'mean peak', 'spread (max−min)/mean', 'max |peak−mean|/mean', 'ok / failed', 'other load'],
        r.balance.map((b) => [b.strategy, ...ids.map((id) => `${b.nodes[id]?.peak ?? '—'} (${b.nodes[id]?.calls ?? '—'})`), b.peakMean, `${b.spreadPct} %`, `${b.maxDeviationPct} %`, `${b.sipp.successful} / ${b.sipp.failed}`, `${b.otherLoadPct} %, loadavg ${b.loadavg1.join('→')}`]),
      ),
      '',
    );
  }
  const stepRows = (steps: Step[], groups: string[]) =>
    steps.map((s) => [
      s.system,
      s.rate,
      s.achievedCps,
      `${s.sipp.successful} / ${s.sipp.failed}`,
      s.sipp.retransmissions,
      s.sipp.setupMsMean === null ? '—' : round(s.sipp.setupMsMean, 2),
      ...groups.map((g) => s.cpuUsPerCall[g] ?? '—'),
      `${s.sutCorePct} %`,
      s.callerCpuUsPerCall,
      `${s.otherLoadPct} %, ${s.loadavg1.join('→')}`,
      s.clean ? 'yes' : 'no',
    ]);
  const stepHead = (groups: string[]) => ['system', 'target cps', 'achieved cps', 'ok / failed', 'retrans', 'INVITE→200 ms', ...groups.map((g) => `${g} CPU µs/call`), 'SUT % of a core', 'SIPp UAC µs/call', 'other load, loadavg', 'clean'];
  if (r.setups) {
    out.push('Call setups through proxy + 3 media nodes:', '');
    out.push(table(stepHead(['proxy', 'nodes', 'bot', 'nats']), stepRows(r.setups, ['proxy', 'nodes', 'bot', 'nats'])), '');
  }
  if (r.alone) {
    const a = r.alone;
    out.push(`Proxy alone vs Kamailio, medians of ${a.repeats.length / 3} interleaved repeats at ${a.compareRate} calls/s:`, '');
    out.push(
      table(
        ['system', 'CPU µs per call setup (median)', 'SUT % of a core', 'retransmissions', 'all clean', 'highest clean rate (ladder)'],
        Object.entries(a.medians).map(([k, m]) => [k, m.cpuUsPerCall, `${m.sutCorePct} %`, m.retransmissions, m.allClean ? 'yes' : 'no', a.maxClean[k] ?? 0]),
      ),
      '',
      `Ratios: proxy / Kamailio tm CPU per setup = ${a.ratios.cpuProxyOverKamailioStateful} (target ≤ 2); proxy / Kamailio stateless = ${a.ratios.cpuProxyOverKamailioStateless}; ` +
        `highest clean rate proxy / Kamailio tm = ${a.ratios.rateProxyOverKamailioStateful ?? '—'}.`,
      '',
      'Every step:',
      '',
      table(stepHead(['sut', 'uas']), stepRows([...a.repeats, ...a.ladder], ['sut', 'uas'])),
      '',
    );
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

function intList(v: string): number[] {
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new InvalidArgumentError('must be a comma-separated list of positive integers');
  return xs;
}

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

interface Flags {
  out: string;
  calls: number;
  rate: number;
  setupRates: number[];
  compareRate: number;
  repeats: number;
  rates: number[];
  stepSeconds: number;
  kamailioWorkers: number;
  pin: boolean;
}

async function main(what: string, f: Flags): Promise<void> {
  mkdirSync(f.out, { recursive: true });
  const children = new Children(f.out);
  // A signal stops every part's processes, not only the top level's (a SIGTERM once left
  // Kamailio and the SIPp UAS of `alone` running).
  const parts: Children[] = [children];
  const stop = () => void Promise.all(parts.map((c) => c.stopAll())).then(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const meta = { date: new Date().toISOString(), cores: availableParallelism(), node: process.version, what, flags: f };
  const result: { balance?: BalanceRun[]; setups?: Step[]; alone?: AloneResult; meta: Record<string, unknown> } = { meta };
  const save = () => {
    writeFileSync(join(f.out, 'proxy-bench.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(join(f.out, 'proxy-bench.md'), report(result) + '\n');
  };
  try {
    if (what === 'balance' || what === 'all') {
      const c = new Children(mkdir(join(f.out, 'balance')));
      parts.push(c);
      try {
        result.balance = await balance(c, join(f.out, 'balance'), { calls: f.calls, rate: f.rate });
      } finally {
        await c.stopAll();
      }
      save();
    }
    if (what === 'setups' || what === 'all') {
      const c = new Children(mkdir(join(f.out, 'setups')));
      parts.push(c);
      try {
        result.setups = await setups(c, join(f.out, 'setups'), { rates: f.setupRates, seconds: f.stepSeconds });
      } finally {
        await c.stopAll();
      }
      save();
    }
    if (what === 'alone' || what === 'all') {
      const c = new Children(mkdir(join(f.out, 'alone')));
      parts.push(c);
      try {
        result.alone = await alone(c, join(f.out, 'alone'), { rate: f.compareRate, repeats: f.repeats, rates: f.rates, seconds: f.stepSeconds, workers: f.kamailioWorkers, pin: f.pin && availableParallelism() >= 2 });
      } finally {
        await c.stopAll();
      }
      save();
    }
  } finally {
    await children.stopAll();
  }
  console.log('\n' + report(result));
  console.log(`\nwritten: ${join(f.out, 'proxy-bench.json')}, ${join(f.out, 'proxy-bench.md')}`);
}

function mkdir(p: string): string {
  mkdirSync(p, { recursive: true });
  return p;
}

new Command()
  .name('bench:proxy')
  .description('proxy benchmark: balance by load vs round robin, call setups per second, the proxy vs Kamailio')
  .argument('<what>', 'balance | setups | alone | all')
  .requiredOption('--out <dir>', 'where logs, SIPp statistics and the results go')
  .option('--calls <n>', 'balance: calls per strategy', int, 450)
  .option('--rate <cps>', 'balance: calls per second', int, 30)
  .option('--setup-rates <list>', 'setups: call rates to try through proxy + nodes, until one is not clean', intList, [50, 100, 200, 300])
  .option('--compare-rate <cps>', 'alone: rate of the interleaved repeats for CPU per setup', int, 500)
  .option('--repeats <n>', 'alone: interleaved repeats per system', int, 3)
  .option('--rates <list>', 'alone: rising rates, each system until its first unclean step', intList, [500, 1000, 1500, 2000, 3000])
  .option('--step-seconds <s>', 'length of one SIPp run (calls = rate × this)', int, 8)
  .option('--kamailio-workers <n>', 'alone: Kamailio UDP worker processes (-n)', int, 2)
  .option('--no-pin', 'alone: do not pin systems under test to cpu 1 and SIPp to cpu 0')
  .action(async (what: string, f: Flags) => {
    if (!['balance', 'setups', 'alone', 'all'].includes(what)) throw new InvalidArgumentError('<what> must be balance, setups, alone or all');
    await main(what, f);
    process.exit(0);
  })
  .parseAsync()
  .catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
