import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { MEDIA_NODE_FLAGS } from './node-flags.js';

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

export class MissingDependencyError extends Error {
  override name = 'MissingDependencyError';
}

/** Finds an executable on PATH, or says exactly how to install it. */
export function requireExecutable(name: string, debianPackage: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) {
    throw new MissingDependencyError(`${name} not found on PATH. Install it with: sudo apt-get install -y ${debianPackage}`);
  }
  return path;
}

/** Resolves when something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Spawns `botedge <args>` and resolves once it prints a line containing `ready`. */
export function spawnReady(args: string[], label: string, nodeFlags: readonly string[] = []): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      process.stdout.write(`[${label}] ${line}\n`);
      if (line.includes('ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${label} exited with ${code} before it was ready`)));
  });
}

/**
 * `botedge up`: nats-server, one proxy on the SIP port callers use, `mediaNodes` media nodes (each
 * its own process, SIP on an ephemeral port, a slice of the RTP range) routing every number to the
 * echo bot, and the echo bot. Ctrl-C (or SIGTERM) stops exactly the processes it started.
 */
export async function runUp(flags: { sipPort: number; natsPort: number; botPort: number; rtpPorts: string; mediaNodes: number }): Promise<void> {
  const natsBin = requireExecutable('nats-server', 'nats-server');
  const m = /^(\d+)-(\d+)$/.exec(flags.rtpPorts);
  if (!m) throw new Error('--rtp-ports must look like 20000-29999');
  const [rtpMin, rtpMax] = [Number(m[1]), Number(m[2])];
  const slice = Math.floor((rtpMax - rtpMin + 1) / flags.mediaNodes);
  if (slice < 4) throw new Error('--rtp-ports range too small for that many media nodes');
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    // SIGINT: media nodes hang up their calls and exit now (SIGTERM would drain them).
    for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGINT');
    setTimeout(() => process.exit(code), 800).unref();
  };
  process.once('SIGINT', () => stopAll(0));
  process.once('SIGTERM', () => stopAll(0));
  const nats = `nats://127.0.0.1:${flags.natsPort}`;
  try {
    const natsProc = spawn(natsBin, ['-a', '127.0.0.1', '-p', String(flags.natsPort)], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(natsProc);
    natsProc.once('exit', (code) => {
      if (!stopping) {
        process.stderr.write(`botedge up: nats-server exited (${code}); is port ${flags.natsPort} taken? try --nats-port\n`);
        stopAll(1);
      }
    });
    await waitForPort(flags.natsPort);
    children.push(await spawnReady(['echo-bot', '--port', String(flags.botPort)], 'echo-bot'));
    for (let i = 0; i < flags.mediaNodes; i++) {
      const lo = rtpMin + i * slice;
      const hi = lo + slice - 1;
      children.push(
        await spawnReady(
          ['media', '--sip-port', '0', '--nats', nats, '--bot-url', `ws://127.0.0.1:${flags.botPort}/echo`, '--rtp-ports', `${lo}-${hi}`, '--node-id', `media-${i + 1}`],
          `media-${i + 1}`,
          MEDIA_NODE_FLAGS,
        ),
      );
    }
    children.push(await spawnReady(['proxy', '--sip-port', String(flags.sipPort), '--nats', nats, '--id', 'proxy-1'], 'proxy'));
    for (const c of children.slice(1)) {
      c.once('exit', (code) => {
        if (!stopping) {
          process.stderr.write(`botedge up: a process exited (${code}); stopping\n`);
          stopAll(1);
        }
      });
    }
  } catch (err) {
    stopAll(1);
    throw err;
  }
  process.stdout.write(
    [
      '',
      `BotEdge is up: a proxy and ${flags.mediaNodes} media node(s). Send SIP calls to 127.0.0.1:${flags.sipPort} (UDP or TCP); every number reaches the echo bot.`,
      `  try:    sipp -sn uac_pcap 127.0.0.1:${flags.sipPort} -m 20 -r 5     (from the repo root, where ./pcap holds its audio)`,
      `  status: botedge status --nats ${nats}`,
      `  events: botedge.v1.call.> on ${nats}`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}
