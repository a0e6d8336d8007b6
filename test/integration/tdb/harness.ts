/**
 * Helpers for the tdb integration tests: a nats-server of our own on a free loopback port, and
 * replica processes (replica.ts, forked) driven over IPC.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as tcpConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Command, Reply } from './protocol.js';

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class NatsServer {
  proc: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<NatsServer> {
    const s = new NatsServer(port ?? (await freePort()));
    await s.restart();
    return s;
  }

  /** Starts (again) on the same port; resolves when it accepts connections. */
  async restart(): Promise<void> {
    const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start: ${log}`)), 5000);
      proc.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited ${code}: ${log}`));
      });
    });
    proc.stderr?.resume();
  }

  /** Stops it (by PID) and waits until the port is closed. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
    while (await portOpen(this.port)) await new Promise((r) => setTimeout(r, 10));
  }
}

/** A forked replica process (dist/test/integration/tdb/replica.js). */
export class Replica {
  #next = 0;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<unknown>;

  private constructor(readonly name: string, readonly proc: ChildProcess) {
    proc.on('message', (m: Reply) => {
      const w = this.#waiting.get(m.id);
      if (!w) return;
      this.#waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(Object.assign(new Error(m.error.message), { name: m.error.name, remoteName: m.error.name }));
    });
    this.exited = once(proc, 'exit');
    void this.exited.then(() => {
      for (const w of this.#waiting.values()) w.reject(new Error(`replica ${name} exited`));
      this.#waiting.clear();
    });
  }

  static spawn(name: string): Replica {
    const script = fileURLToPath(new URL('./replica.js', import.meta.url));
    return new Replica(name, fork(script, [name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  call<T = unknown>(cmd: Command): Promise<T> {
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...cmd, id });
    });
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

export interface ReplicaState {
  origin: string;
  vector: Record<string, number>;
  digest: string;
  rows: number;
  synced: boolean;
  stats: import('../../../tdb/tdb.js').TdbStats;
}

/** Waits until every replica has applied every other replica's last change, then returns states. */
export async function settle(replicas: Replica[], timeoutMs = 15_000): Promise<ReplicaState[]> {
  const states = await Promise.all(replicas.map((r) => r.call<ReplicaState>({ cmd: 'flush' }).then(() => r.call<ReplicaState>({ cmd: 'state' }))));
  const target: Record<string, number> = {};
  for (const s of states) target[s.origin] = s.vector[s.origin] ?? 0;
  await Promise.all(replicas.map((r) => r.call({ cmd: 'waitVector', target, timeoutMs })));
  return Promise.all(replicas.map((r) => r.call<ReplicaState>({ cmd: 'state' })));
}
