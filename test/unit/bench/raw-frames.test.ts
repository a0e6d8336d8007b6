import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { RawFrameConnection } from '../../../bench/raw-frames.js';
import { MASKED_HEADROOM, writeMaskedBinary } from '../../../edge/bot/masked-frames.js';

/** A `ws` server whose connections are taken over by RawFrameConnection, echoing binary messages. */
async function echoServer(): Promise<{ url: string; texts: string[]; conns: RawFrameConnection[]; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const texts: string[] = [];
  const conns: RawFrameConnection[] = [];
  wss.on('connection', (ws) => {
    const socket = (ws as unknown as { _socket: Socket })._socket;
    const conn = RawFrameConnection.takeOver(socket, {
      text: (p) => texts.push(p.toString()),
      binary: (p) => conn.sendBinary(p),
    });
    conns.push(conn);
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    texts,
    conns,
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** Client frames as `ws` would write them (masked, FIN), collected from the product's frame writer. */
function maskedFrames(payloads: Buffer[]): Buffer {
  const out: Buffer[] = [];
  const sink = { write: (c: Uint8Array) => out.push(Buffer.from(c)) > 0, writableLength: 0 };
  for (const p of payloads) {
    const room = Buffer.alloc(MASKED_HEADROOM + p.length);
    p.copy(room, MASKED_HEADROOM);
    writeMaskedBinary(sink, room.subarray(MASKED_HEADROOM));
  }
  return Buffer.concat(out);
}

/** A connected pair of real sockets: the server side fed by hand, the client side reads what it writes. */
async function socketPair(): Promise<{ server: Socket; client: Socket; done: () => void }> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const client = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  const [server] = (await once(srv, 'connection')) as [Socket];
  return {
    server,
    client,
    done: () => {
      client.destroy();
      server.destroy();
      srv.close();
    },
  };
}

describe('bench raw frames (the echo bot reading its sockets after ws\'s handshake)', () => {
  it('echoes binary messages of every header size byte for byte, reads text, answers ping and close', async () => {
    const srv = await echoServer();
    try {
      const ws = new WebSocket(srv.url);
      await once(ws, 'open');
      const got: Buffer[] = [];
      ws.on('message', (d, isBinary) => {
        assert.equal(isBinary, true);
        got.push(d as Buffer);
      });
      ws.send(JSON.stringify({ event: 'start' }));
      // 2-byte header (in the mask key's room), 4-byte (in the room: the 20 ms frames), 8-byte (corked apart).
      const sent = [randomBytes(10), randomBytes(640), randomBytes(1920), randomBytes(70_000), Buffer.alloc(0)];
      for (const p of sent) ws.send(p);
      while (got.length < sent.length) await once(ws, 'message');
      assert.deepEqual(got, sent);
      assert.deepEqual(srv.texts, ['{"event":"start"}']);
      ws.ping(Buffer.from('are you there'));
      const [pong] = (await once(ws, 'pong')) as [Buffer];
      assert.equal(pong.toString(), 'are you there');
      ws.close(4001);
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 4001);
      assert.equal(srv.conns[0]!.error, undefined);
    } finally {
      await srv.close();
    }
  });

  it('parses frames split anywhere across reads, as the socket may deliver them', async () => {
    const payloads = [randomBytes(640), randomBytes(5), randomBytes(300), randomBytes(70_000)];
    const wire = maskedFrames(payloads);
    for (const piece of [1, 3, 7, 641, wire.length]) {
      const pair = await socketPair();
      try {
        const seen: Buffer[] = [];
        const conn = new RawFrameConnection(pair.server, { text: () => assert.fail('no text sent'), binary: (p) => seen.push(Buffer.from(p)) });
        for (let at = 0; at < wire.length; at += piece) conn.feed(wire.subarray(at, at + piece));
        assert.deepEqual(seen, payloads, `in pieces of ${piece}`);
      } finally {
        pair.done();
      }
    }
  });

  for (const [what, frame, code] of [
    ['an unmasked frame', Buffer.from([0x82, 0x02, 0x01, 0x02]), 1002],
    ['a fragmented message', Buffer.from([0x02, 0x80, 0, 0, 0, 0]), 1002],
    ['an unknown opcode', Buffer.from([0x83, 0x80, 0, 0, 0, 0]), 1002],
    ['a message over the limit', Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x10, 0, 0, 0]), 1009],
  ] as const) {
    it(`closes with ${code} and a reason on ${what}, and reads nothing after it`, async () => {
      const pair = await socketPair();
      try {
        const conn = new RawFrameConnection(pair.server, { text: () => assert.fail('read after the error'), binary: () => assert.fail('read after the error') });
        const reply: Buffer[] = [];
        pair.client.on('data', (d: Buffer) => reply.push(d));
        conn.feed(Buffer.concat([frame, maskedFrames([Buffer.from('later')])]));
        await once(pair.client, 'end');
        assert.equal(conn.error?.code, code);
        const back = Buffer.concat(reply);
        assert.equal(back[0], 0x88, 'a close frame');
        assert.equal(back.readUInt16BE(2), code);
      } finally {
        pair.done();
      }
    });
  }
});
