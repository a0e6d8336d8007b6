#!/usr/bin/env node
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, readConfigFile, type MediaNodeOptions } from './config.js';
import { EchoBot } from './echo-bot.js';
import { MediaNode } from './media-node.js';
import { connect } from '@nats-io/transport-node';
import { startProxy } from './proxy/run.js';
import { formatStatus, readStatus } from './status.js';
import { runUp } from './up.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
}

const program = new Command()
  .name('botedge')
  .description('BotEdge: SIP calls to voice-AI bots over WebSocket, driven over NATS')
  .showHelpAfterError();

program
  .command('media')
  .description('run one media node (SIP UAS + RTP + bot WebSocket)')
  .option('-c, --config <file>', 'JSON config file (docs/config.md)')
  .option('--sip-host <addr>', 'address SIP binds')
  .option('--sip-port <port>', 'SIP port, UDP and TCP', port)
  .option('--nats <url>', 'NATS server URL')
  .option('--bot-url <url>', 'default route: bot WebSocket URL for every number')
  .option('--rtp-ports <min-max>', 'RTP port range, e.g. 20000-29999')
  .option('--node-id <id>', 'node id in events and logs')
  .action(async (flags: { config?: string; sipHost?: string; sipPort?: number; nats?: string; botUrl?: string; rtpPorts?: string; nodeId?: string }) => {
    const options: MediaNodeOptions = flags.config ? readConfigFile(flags.config) : {};
    if (flags.sipHost) options.sipHost = flags.sipHost;
    if (flags.sipPort !== undefined) options.sipPort = flags.sipPort;
    if (flags.nats) options.natsUrl = flags.nats;
    if (flags.botUrl) options.defaultRoute = { url: flags.botUrl };
    if (flags.nodeId) options.nodeId = flags.nodeId;
    if (flags.rtpPorts) {
      const m = /^(\d+)-(\d+)$/.exec(flags.rtpPorts);
      if (!m) throw new ConfigError('--rtp-ports', 'must look like 20000-29999');
      options.rtpPortMin = Number(m[1]);
      options.rtpPortMax = Number(m[2]);
    }
    const node = await MediaNode.start(options);
    // Ready line on stdout: parents (botedge up, tests) wait for it.
    process.stdout.write(`media node ${node.options.nodeId} ready: sip udp+tcp ${node.options.sipHost}:${node.sipPort}\n`);
    // SIGTERM (and `botedge drain`) drain: no new calls, exit 0 when the last call ends.
    // SIGINT stops now, hanging up every call.
    process.once('SIGTERM', () => node.drain());
    process.once('SIGINT', () => void node.close().then(() => process.exit(0)));
    await node.whenDrained;
    await node.close();
    process.exit(0);
  });

program
  .command('proxy')
  .description('run a load-steering SIP proxy in front of the media nodes')
  .option('--sip-host <addr>', 'address SIP binds', '127.0.0.1')
  .option('--sip-port <port>', 'SIP port, UDP and TCP', port, 5060)
  .option('--advertised-address <addr>', 'address in Via and Record-Route')
  .option('--nats <url>', 'NATS server URL', 'nats://127.0.0.1:4222')
  .option('--id <id>', 'member id')
  .option('--failover-ms <ms>', 'try the next node when one does not answer an INVITE within this time', (v) => port(v), 2000)
  .option('--strategy <name>', 'load (argmin calls/capacity) or round-robin (for comparison only)', 'load')
  .action(async (flags: { sipHost: string; sipPort: number; advertisedAddress?: string; nats: string; id?: string; failoverMs: number; strategy: string }) => {
    if (flags.strategy !== 'load' && flags.strategy !== 'round-robin') throw new InvalidArgumentError('--strategy must be load or round-robin');
    const { proxy, stop } = await startProxy({ sipHost: flags.sipHost, sipPort: flags.sipPort, natsUrl: flags.nats, advertisedAddress: flags.advertisedAddress, id: flags.id, failoverTimeoutMs: flags.failoverMs, strategy: flags.strategy });
    process.stdout.write(`proxy ready: sip udp+tcp ${flags.sipHost}:${proxy.port}\n`);
    const quit = () => void stop().then(() => process.exit(0));
    process.once('SIGTERM', quit);
    process.once('SIGINT', quit);
  });

program
  .command('drain <node>')
  .description('drain a media node: it takes no new calls and exits when its last call ends')
  .option('--nats <url>', 'NATS server URL', 'nats://127.0.0.1:4222')
  .action(async (nodeId: string, flags: { nats: string }) => {
    const nc = await connect({ servers: flags.nats.split(',') });
    try {
      const reply = await nc.request(`botedge.v1.node.${nodeId}.drain`, '', { timeout: 3000 });
      const body = reply.json<{ calls: number }>();
      process.stdout.write(`${nodeId} draining; ${body.calls} call(s) still up\n`);
    } catch (err) {
      throw new Error(`no media node ${nodeId} answered the drain request`, { cause: err });
    } finally {
      await nc.close();
    }
  });

program
  .command('status')
  .description('show the cluster: members, role, state, calls/capacity, CPU, heartbeat age')
  .option('--nats <url>', 'NATS server URL', 'nats://127.0.0.1:4222')
  .option('--json', 'print JSON instead of a table')
  .action(async (flags: { nats: string; json?: boolean }) => {
    const status = await readStatus(flags.nats);
    process.stdout.write(flags.json ? `${JSON.stringify(status)}\n` : formatStatus(status));
    process.exit(0);
  });

program
  .command('echo-bot')
  .description('run the echo bot: a native-protocol bot that plays the caller back')
  .option('--host <addr>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'WebSocket port', port, 8089)
  .action(async (flags: { host: string; port: number }) => {
    const bot = await EchoBot.listen(flags.port, flags.host);
    process.stdout.write(`echo bot ready: ws://${flags.host}:${bot.port}/echo\n`);
    const stop = () => void bot.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

program
  .command('up')
  .description('one box: nats-server, a proxy, media nodes and the echo bot; Ctrl-C stops them all')
  .option('--sip-port <port>', 'SIP port callers use', port, 5060)
  .option('--nats-port <port>', 'port for the nats-server it starts', port, 4222)
  .option('--bot-port <port>', 'port for the echo bot', port, 8089)
  .option('--rtp-ports <min-max>', 'RTP port range, split between the media nodes', '20000-29999')
  .option('--media-nodes <n>', 'media nodes to run (default: one per core)', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('must be 1-64');
    return n;
  }, availableParallelism())
  .action(async (flags: { sipPort: number; natsPort: number; botPort: number; rtpPorts: string; mediaNodes: number }) => {
    await runUp(flags);
  });

program
  .command('tdbot')
  .description('serve tdb databases over NATS request/reply (exec, query, subscribe) with an ACL (docs/tdb.md)')
  .option('--nats <url>', 'NATS server URL', 'nats://127.0.0.1:4222')
  .option('--db <name...>', 'database(s) to open and serve')
  .option('--acl <file>', 'ACL JSON file: which client tokens may read/write which databases')
  .option('--writer-id <id>', 'writer id of this tdbot in the databases')
  .option('-c, --config <file>', 'JSON config: nats, writerId, acl, dbs {name: {schema, keyring, app, privateKey}}')
  .action(async (flags: { nats?: string; db?: string[]; acl?: string; writerId?: string; config?: string }) => {
    const { Tdbot, resolveTdbotOptions } = await import('./tdbot.js');
    const bot = await Tdbot.start(resolveTdbotOptions(flags));
    // Ready line on stdout: parents (tests, scripts) wait for it.
    process.stdout.write(`tdbot ready: ${[...bot.dbs.keys()].join(',')}\n`);
    const stop = () => void bot.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`botedge: config error: ${err.message}\n`);
  else process.stderr.write(`botedge: ${err instanceof Error ? err.message : String(err)}${err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : ''}\n`);
  process.exit(1);
});
