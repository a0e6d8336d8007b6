import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

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
export function spawnReady(args: string[], label: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      process.stdout.write(`[${label}] ${line}\n`);
      if (line.includes('ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${label} exited with ${code} before it was ready`)));
  });
}

/**
 * `botedge up`: nats-server, one media node routing every number to the echo bot, and the echo
 * bot, each its own process; Ctrl-C (or SIGTERM) stops exactly the processes it started.
 */
export async function runUp(flags: { sipPort: number; natsPort: number; botPort: number; rtpPorts: string }): Promise<void> {
  const natsBin = requireExecutable('nats-server', 'nats-server');
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
    setTimeout(() => process.exit(code), 500).unref();
  };
  process.once('SIGINT', () => stopAll(0));
  process.once('SIGTERM', () => stopAll(0));
  try {
    const nats = spawn(natsBin, ['-a', '127.0.0.1', '-p', String(flags.natsPort)], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(nats);
    nats.once('exit', (code) => {
      if (!stopping) {
        process.stderr.write(`botedge up: nats-server exited (${code}); is port ${flags.natsPort} taken? try --nats-port\n`);
        stopAll(1);
      }
    });
    await waitForPort(flags.natsPort);
    children.push(await spawnReady(['echo-bot', '--port', String(flags.botPort)], 'echo-bot'));
    children.push(
      await spawnReady(
        ['media', '--sip-port', String(flags.sipPort), '--nats', `nats://127.0.0.1:${flags.natsPort}`, '--bot-url', `ws://127.0.0.1:${flags.botPort}/echo`, '--rtp-ports', flags.rtpPorts],
        'media',
      ),
    );
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
      `BotEdge is up. Send SIP calls to 127.0.0.1:${flags.sipPort} (UDP or TCP); every number reaches the echo bot.`,
      `  try:    sipp -sn uac_pcap 127.0.0.1:${flags.sipPort} -m 20 -r 5     (run it in /usr/share/sip-tester)`,
      `  events: nats sub 'botedge.v1.call.>' --server nats://127.0.0.1:${flags.natsPort}`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}
