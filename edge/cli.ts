#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, readConfigFile, type MediaNodeOptions } from './config.js';
import { EchoBot } from './echo-bot.js';
import { MediaNode } from './media-node.js';
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
    const stop = () => void node.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
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
  .description('one box: nats-server, a media node and the echo bot; Ctrl-C stops them all')
  .option('--sip-port <port>', 'SIP port callers use', port, 5060)
  .option('--nats-port <port>', 'port for the nats-server it starts', port, 4222)
  .option('--bot-port <port>', 'port for the echo bot', port, 8089)
  .option('--rtp-ports <min-max>', 'RTP port range', '20000-29999')
  .action(async (flags: { sipPort: number; natsPort: number; botPort: number; rtpPorts: string }) => {
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
