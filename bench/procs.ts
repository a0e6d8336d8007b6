/**
 * Starting and stopping the benchmark's processes: nats-server, the media node under test (through
 * the real CLI), the instrumented echo bot and the load generator. Every child is tracked by PID
 * and killed by PID; nothing is found by name.
 */
import { spawn, fork, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MEDIA_NODE_FLAGS } from '../edge/node-flags.js';
import { readStatus, type StatusMember } from '../edge/status.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
export const REPO_ROOT = join(here, '..', '..');
export const MEDIA_CLI = join(REPO_ROOT, 'dist', 'edge', 'cli.js');

/** A free TCP port on 127.0.0.1 (bind 0, read, close: a small race we accept for tests and benches). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export class Children {
  readonly #all: ChildProcess[] = [];
  readonly #logs: WriteStream[] = [];

  constructor(private readonly logDir: string) {}

  track(child: ChildProcess, name: string): ChildProcess {
    this.#all.push(child);
    // For a parent that has to clean up after a bench it killed (tests): every child's PID.
    writeFileSync(join(this.logDir, 'pids.json'), JSON.stringify(this.pids()) + '\n');
    const log = createWriteStream(join(this.logDir, `${name}.log`));
    this.#logs.push(log);
    child.stderr?.pipe(log, { end: false });
    return child;
  }

  /** SIGTERM every child still alive, then SIGKILL after `graceMs`. By PID only. */
  async stopAll(graceMs = 3000): Promise<void> {
    const alive = this.#all.filter((c) => c.exitCode === null && c.signalCode === null && c.pid !== undefined);
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              try {
                process.kill(c.pid!, 'SIGKILL');
              } catch {
                /* gone */
              }
              resolve();
            }, graceMs);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            try {
              process.kill(c.pid!, 'SIGTERM');
            } catch {
              clearTimeout(t);
              resolve();
            }
          }),
      ),
    );
    for (const l of this.#logs) l.end();
  }

  pids(): number[] {
    return this.#all.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }
}

/** Pins every thread of a process to the given CPUs (taskset -a); a no-op where taskset is missing. */
export function pin(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function waitFor<T>(child: ChildProcess, what: string, timeoutMs: number, check: (resolve: (v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} not ready after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`${what} exited before ready (code ${code}, signal ${sig}); see its log`));
    });
    check((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

export async function startNats(children: Children): Promise<{ child: ChildProcess; url: string; port: number }> {
  const port = await freePort();
  const child = children.track(spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] }), 'nats');
  await waitFor<void>(child, 'nats-server', 10_000, (resolve) => {
    const tryConnect = () => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => setTimeout(tryConnect, 50));
    };
    tryConnect();
  });
  return { child, url: `nats://127.0.0.1:${port}`, port };
}

/** Forks one of the bench's own scripts (dist/bench/<name>.js) with an IPC channel; waits for `ready`. */
export async function forkBench<R extends { type: string }>(children: Children, name: string, args: string[], execArgv?: readonly string[]): Promise<{ child: ChildProcess; ready: R }> {
  const child = children.track(fork(join(here, `${name}.js`), args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], ...(execArgv ? { execArgv: [...process.execArgv, ...execArgv] } : {}) }), name);
  const ready = await waitFor<R>(child, name, 10_000, (resolve) => {
    const on = (m: R) => {
      if (m.type === 'ready') {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
  });
  return { child, ready };
}

export interface MediaNodeProcess {
  child: ChildProcess;
  sipPort: number;
  /** The Node/V8 flags it was started with. */
  nodeFlags: readonly string[];
}

/** Starts a media node through the real CLI with a config file; waits for its `ready` line. */
export async function startMediaNode(
  children: Children,
  dir: string,
  opts: { natsUrl: string; botUrl: string; protocol?: string; sampleRate?: 8000 | 16000; rtpIo?: 'native' | 'dgram'; addon?: boolean; playoutTrim?: boolean; playoutCatchUp?: boolean; playoutCatchUpMs?: number; opusComplexity?: number; rtpPortMin: number; rtpPortMax: number; nodeId: string; maxCalls: number; cli?: string; nodeFlags?: readonly string[]; codecs?: string[] },
): Promise<MediaNodeProcess> {
  const configPath = join(dir, `${opts.nodeId}.json`);
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        nodeId: opts.nodeId,
        sipHost: '127.0.0.1',
        sipPort: 0,
        natsUrl: opts.natsUrl,
        rtpPortMin: opts.rtpPortMin,
        rtpPortMax: opts.rtpPortMax,
        maxCalls: opts.maxCalls,
        ...(opts.rtpIo ? { rtpIo: opts.rtpIo } : {}),
        ...(opts.codecs ? { codecs: opts.codecs } : {}),
        defaultRoute: { url: opts.botUrl, ...(opts.protocol ? { protocol: opts.protocol } : {}), ...(opts.sampleRate ? { sampleRate: opts.sampleRate } : {}), ...(opts.playoutTrim ? { playoutTrim: true } : {}), ...(opts.playoutCatchUp === false ? { playoutCatchUp: false } : {}), ...(opts.playoutCatchUpMs !== undefined ? { playoutCatchUpMs: opts.playoutCatchUpMs } : {}), ...(opts.opusComplexity !== undefined ? { opusComplexity: opts.opusComplexity } : {}) },
      },
      null,
      2,
    ),
  );
  const nodeFlags = opts.nodeFlags ?? MEDIA_NODE_FLAGS;
  // addon false: the node's own switch (codecs/native.ts), so it runs every TypeScript fallback.
  const env = opts.addon === false ? { ...process.env, BOTEDGE_NATIVE: '0' } : process.env;
  const child = children.track(spawn(process.execPath, [...nodeFlags, opts.cli ?? MEDIA_CLI, 'media', '-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env }), opts.nodeId);
  const sipPort = await waitFor<number>(child, 'media node', 15_000, (resolve) => {
    let buf = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const line = buf.split('\n').find((l) => l.includes('ready'));
      const m = line ? /:(\d+)\s*$/.exec(line.trim()) : null;
      if (m) resolve(Number(m[1]));
    });
  });
  // What V8 prints for --node-flags (--trace-gc, --trace-deopt, …) goes to stdout: kept beside the
  // log, and no longer gathered by the ready-line listener.
  child.stdout!.removeAllListeners('data');
  child.stdout!.pipe(createWriteStream(join(dir, `${opts.nodeId}.stdout.log`)));
  return { child, sipPort, nodeFlags };
}

/** Live rows of the cluster table (edge/status.ts, as `botedge status --json` reads them). */
export async function readMembers(natsUrl: string): Promise<StatusMember[]> {
  return (await readStatus(natsUrl)).members;
}

/** Waits until every id in `ids` is a live, active member of the cluster table. */
export async function waitForMembers(natsUrl: string, ids: string[], timeoutMs: number): Promise<StatusMember[]> {
  const until = Date.now() + timeoutMs;
  let seen: StatusMember[] = [];
  for (;;) {
    seen = await readMembers(natsUrl).catch(() => []);
    if (ids.every((id) => seen.some((m) => m.id === id && m.state === 'active'))) return seen;
    if (Date.now() > until) throw new Error(`cluster table after ${timeoutMs} ms: ${seen.map((m) => m.id).join(', ') || 'empty'}; waiting for ${ids.join(', ')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
