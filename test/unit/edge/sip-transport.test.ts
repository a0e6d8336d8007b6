import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { describe, it } from 'node:test';
import { SipParseError } from '../../../sip/errors.js';
import { parseMessage } from '../../../sip/message.js';
import { badRequestFor, SipTransport } from '../../../edge/sip-transport.js';

const err = new SipParseError('header', 'bad Max-Forwards');

describe('a 400 for a request that did not parse', () => {
  it('copies Via, From, To, Call-ID and CSeq and says why in the reason phrase', () => {
    const raw = Buffer.from(
      'INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\nf: <sip:c@d>;tag=1\r\nt: <sip:a@b>\r\ni: abc\r\nCSeq: 1 INVITE\r\nMax-Forwards: lots\r\n\r\n',
    );
    const out = badRequestFor(raw, err);
    assert.ok(out);
    const res = parseMessage(out);
    assert.equal(res.kind, 'response');
    assert.equal(res.kind === 'response' && res.status, 400);
    assert.match(res.kind === 'response' ? res.reason : '', /header: bad Max-Forwards/);
    assert.equal(res.headers.get('Call-ID'), 'abc');
    assert.equal(res.headers.get('CSeq'), '1 INVITE');
  });

  it('drops responses and requests without what a response needs', () => {
    assert.equal(badRequestFor(Buffer.from('SIP/2.0 200 OK\r\nVia: x\r\n\r\n'), err), undefined);
    assert.equal(badRequestFor(Buffer.from('INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n'), err), undefined);
    assert.equal(badRequestFor(Buffer.from([0, 1, 2, 3]), err), undefined);
  });
});

/** A TCP listener on a kernel-chosen loopback port: the port a SIP transport then cannot have. */
async function holdTcp(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port };
}

const closeServer = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe('SipTransport.listen: one port for UDP and TCP', () => {
  it('tries another port when the UDP choice is taken on TCP, and releases the UDP socket it gave up', async () => {
    const held = await holdTcp();
    try {
      const t = await SipTransport.listen('127.0.0.1', 0, () => {}, [held.port, 0]);
      try {
        assert.notEqual(t.port, held.port);
        // Both halves are really listening on the port it reports.
        await new Promise<void>((resolve, reject) => {
          const c = createConnection(t.port, '127.0.0.1', () => (c.destroy(), resolve()));
          c.once('error', reject);
        });
      } finally {
        await t.close();
      }
      // The UDP socket bound to the held port in the first try was closed.
      const u = createSocket('udp4');
      await new Promise<void>((resolve, reject) => (u.once('error', reject), u.bind(held.port, '127.0.0.1', () => resolve())));
      u.close();
    } finally {
      await closeServer(held.server);
    }
  });

  it('refuses a configured port taken on TCP, naming it, with the EADDRINUSE as cause', async () => {
    const held = await holdTcp();
    try {
      await assert.rejects(SipTransport.listen('127.0.0.1', held.port, () => {}), (err: Error) => {
        assert.match(err.message, new RegExp(`TCP was taken on ${held.port}$`));
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
        return true;
      });
    } finally {
      await closeServer(held.server);
    }
  });
});
