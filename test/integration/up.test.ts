import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { freePort, runSipp, sippWorkdir, startBotedge, type Botedge } from './harness.js';

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

describe('botedge up', { timeout: 90000 }, () => {
  let up: Botedge | undefined;
  after(async () => void (await up?.stop('SIGINT')));

  it('brings a box up that completes sipp -sn uac_pcap -m 20 -r 5, and Ctrl-C stops all it started', async () => {
    const [sipPort, natsPort, botPort] = [await freePort(), await freePort(), await freePort()];
    up = await startBotedge(['up', '--sip-port', String(sipPort), '--nats-port', String(natsPort), '--bot-port', String(botPort), '--rtp-ports', '34000-34999']);
    // `ready` is printed by the media node once SIP listens; the banner follows once the second node
    // and the proxy are up too — each a Node process that takes ≈ 2 s to start on a slow host hour.
    const banner = () => up!.lines.some((l) => l.includes(`Send SIP calls to 127.0.0.1:${sipPort}`));
    for (let i = 0; i < 150 && !banner(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(banner(), `no banner in:\n${up.lines.join('\n')}`);

    const r = await runSipp(['-sn', 'uac_pcap', `127.0.0.1:${sipPort}`, '-m', '20', '-r', '5', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', '48000'], sippWorkdir());
    assert.equal(r.code, 0, r.stdout.slice(-1500));
    assert.equal(r.successful, 20);
    assert.equal(r.failed, 0);

    assert.ok(await listening(natsPort));
    assert.ok(await listening(botPort));
    const code = await up.stop('SIGINT');
    up = undefined;
    assert.equal(code, 0);
    // Everything it started is gone: NATS, the echo bot and the node's SIP/TCP port.
    for (let i = 0; i < 30 && ((await listening(natsPort)) || (await listening(botPort)) || (await listening(sipPort))); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await listening(natsPort), false, 'nats-server still running');
    assert.equal(await listening(botPort), false, 'echo bot still running');
    assert.equal(await listening(sipPort), false, 'media node still running');
  });
});
