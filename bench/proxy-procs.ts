/**
 * Processes of the proxy benchmark (bench/proxy.ts): BotEdge's proxy, Kamailio, SIPp as caller
 * and callee, and CPU accounting over whole process trees. Every process is started here, tracked
 * by PID in `Children` and stopped by PID; nothing is found by name.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MEDIA_CLI, REPO_ROOT, freePort, pin, type Children } from './procs.js';
import { sampleMachine, sampleProc } from './proc.js';

export const SIPP_DIR = join(REPO_ROOT, 'bench', 'sipp');
export const KAMAILIO_DIR = join(REPO_ROOT, 'bench', 'kamailio');

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* Linux default */
}

/** `pid` and every descendant of it, from /proc/<pid>/stat's ppid (Kamailio forks its workers). */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(rest[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, ppid] of parent) if (ppid === out[i]) out.push(child);
  return out;
}

/** utime + stime of every process in the tree under `pid`, µs (live processes only). */
export function treeCpuUs(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) sum += sampleProc(p, 0)?.cpuUs ?? 0;
  return sum;
}

/**
 * CPU of children this process has already reaped (cutime + cstime of /proc/self/stat), µs: a
 * SIPp caller that ran and exited inside a measurement window lands here.
 */
export function reapedChildrenCpuUs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 (cutime, cstime) are rest[13] and rest[14].
  return ((Number(rest[13]) + Number(rest[14])) * 1e6) / clkTck;
}

export function loadavg1(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

export { sampleMachine };

/** Spawns a long-lived process, waits for a stdout line matching `ready`; stderr goes to the log. */
export function startWithReadyLine(children: Children, name: string, cmd: string, args: string[], ready: RegExp, timeoutMs = 15_000): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = children.track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }), name);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`${name} exited before ready (code ${code}, signal ${sig})`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = ready.exec(line);
      if (m) {
        clearTimeout(t);
        resolve({ child, match: m });
      }
    });
  });
}

export async function startProxy(children: Children, o: { natsUrl: string; strategy: 'load' | 'round-robin'; id: string; cpus?: string }): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const { child } = await startWithReadyLine(
    children,
    o.id,
    process.execPath,
    [MEDIA_CLI, 'proxy', '--sip-host', '127.0.0.1', '--sip-port', String(port), '--nats', o.natsUrl, '--id', o.id, '--strategy', o.strategy, '--failover-ms', '2000'],
    /ready/,
  );
  if (o.cpus) pin(child.pid!, o.cpus);
  return { child, port };
}

export async function startEchoBot(children: Children): Promise<{ child: ChildProcess; url: string }> {
  const { child, match } = await startWithReadyLine(children, 'echo-bot', process.execPath, [MEDIA_CLI, 'echo-bot', '--port', '0'], /(ws:\/\/\S+)/);
  return { child, url: match[1]! };
}

/** Kamailio from the Debian package with one of bench/kamailio/*.cfg, in the foreground (-DD). */
export async function startKamailio(children: Children, o: { cfg: 'stateless' | 'stateful'; uasPort: number; workers: number; dir: string; cpus?: string }): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const args = [
    '-f', join(KAMAILIO_DIR, `${o.cfg}.cfg`),
    '-DD', '-E',
    '-l', `udp:127.0.0.1:${port}`,
    '-A', `UAS="sip:127.0.0.1:${o.uasPort}"`,
    '-n', String(o.workers),
    '-m', '256',
    '-Y', o.dir,
    '-w', o.dir,
    '-P', join(o.dir, `kamailio-${o.cfg}.pid`),
  ];
  const child = children.track(spawn('kamailio', args, { stdio: ['ignore', 'ignore', 'pipe'] }), `kamailio-${o.cfg}`);
  // Ready when the main process has forked its UDP receivers (plus timer and other helpers).
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`kamailio ${o.cfg} exited (code ${child.exitCode}); see kamailio-${o.cfg}.log`);
    if (processTree(child.pid!).length > o.workers) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500));
  if (o.cpus) for (const p of processTree(child.pid!)) pin(p, o.cpus);
  return { child, port };
}

/** A SIPp callee running bench/sipp/uas.xml until stopped. */
export async function startSippUas(children: Children, dir: string, cpus?: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const mp = await freePort();
  const child = children.track(
    spawn('sipp', ['-sf', join(SIPP_DIR, 'uas.xml'), '-i', '127.0.0.1', '-p', String(port), '-mp', String(mp), '-nostdin', '-trace_err', '-error_file', join(dir, 'uas_errors.log')], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }),
    'sipp-uas',
  );
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error(`SIPp UAS exited (code ${child.exitCode}); see sipp-uas.log`);
  if (cpus) pin(child.pid!, cpus);
  return { child, port };
}

export interface SippStat {
  successful: number;
  failed: number;
  retransmissions: number;
  deadCallMsgs: number;
  outOfCallMsgs: number;
  /** SIPp's mean INVITE→200 time (rtd), ms. */
  setupMsMean: number | null;
  wallMs: number;
  code: number | null;
}

/** SIPp prints durations as HH:MM:SS:mmm[uuu]. */
function durationMs(v: string | undefined): number | null {
  if (!v) return null;
  const p = v.split(':').map(Number);
  if (p.length < 4 || p.some((n) => !Number.isFinite(n))) return null;
  const [h, m, s, ms] = p as [number, number, number, number];
  return h * 3_600_000 + m * 60_000 + s * 1000 + (ms >= 1000 ? ms / 1000 : ms);
}

/** Runs a SIPp caller to completion (bounded) and reads its -trace_stat CSV's last line. */
export function runSippUac(children: Children, o: { dir: string; name: string; scenario: string; target: string; calls: number; rate: number; service?: string; cpus?: string; timeoutS: number }): Promise<SippStat> {
  return new Promise((resolve, reject) => {
    void (async () => {
      const mp = await freePort();
      const csv = join(o.dir, `${o.name}.csv`);
      const args = [
        '-sf', join(SIPP_DIR, o.scenario), o.target,
        '-s', o.service ?? 'bench',
        '-i', '127.0.0.1', '-p', '0', '-mp', String(mp),
        '-m', String(o.calls), '-r', String(o.rate),
        '-nostdin', '-timeout', `${o.timeoutS}s`, '-timeout_error',
        '-trace_stat', '-stf', csv, '-fd', '1',
        '-trace_err', '-error_file', join(o.dir, `${o.name}_errors.log`),
      ];
      const t0 = performance.now();
      const child = children.track(spawn('sipp', args, { cwd: o.dir, stdio: ['ignore', 'ignore', 'pipe'] }), o.name);
      if (o.cpus) pin(child.pid!, o.cpus);
      child.once('error', reject);
      child.once('exit', (code) => {
        const wallMs = performance.now() - t0;
        const s = readStat(csv);
        resolve({
          successful: Number(s['SuccessfulCall(C)'] ?? 0),
          failed: Number(s['FailedCall(C)'] ?? 0),
          retransmissions: Number(s['Retransmissions(C)'] ?? 0),
          deadCallMsgs: Number(s['DeadCallMsgs(C)'] ?? 0),
          outOfCallMsgs: Number(s['OutOfCallMsgs(C)'] ?? 0),
          setupMsMean: durationMs(s['ResponseTime1(C)']),
          wallMs,
          code,
        });
      });
    })().catch(reject);
  });
}

function readStat(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const head = lines[0]?.split(';') ?? [];
  const last = lines[lines.length - 1]?.split(';') ?? [];
  const out: Record<string, string> = {};
  head.forEach((h, i) => (out[h] = last[i] ?? ''));
  return out;
}

/** SIGTERM one tracked process by PID and wait for it (SIGKILL after `graceMs`). */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}
