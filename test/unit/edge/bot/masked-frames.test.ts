import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { MASKED_HEADROOM, maskLoop, nativeMasking, writeMaskedBinary, type FrameSocket } from '../../../../edge/bot/masked-frames.js';

/** `bytes` with MASKED_HEADROOM free bytes in front of it in one buffer: the payload's view. */
function withHeadroom(bytes: Uint8Array): Buffer {
  const buf = Buffer.alloc(MASKED_HEADROOM + bytes.length, 0xee);
  buf.set(bytes, MASKED_HEADROOM);
  return buf.subarray(MASKED_HEADROOM);
}

interface WireFrame {
  first: number;
  masked: boolean;
  key: Buffer;
  payload: Buffer;
}

/** Parses client frames (RFC 6455 §5.2) from raw bytes, unmasking each payload. */
function parseFrames(data: Buffer): WireFrame[] {
  const out: WireFrame[] = [];
  let at = 0;
  while (at < data.length) {
    const first = data[at]!;
    const masked = (data[at + 1]! & 0x80) !== 0;
    let len = data[at + 1]! & 0x7f;
    at += 2;
    if (len === 126) {
      len = data.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      len = Number(data.readBigUInt64BE(at));
      at += 8;
    }
    const key = data.subarray(at, at + 4);
    at += 4;
    const payload = Buffer.from(data.subarray(at, at + len));
    for (let i = 0; i < len; i++) payload[i]! ^= key[i & 3]!;
    at += len;
    out.push({ first, masked, key: Buffer.from(key), payload });
  }
  return out;
}

describe('masked binary frames written straight to the socket', { timeout: 20000 }, () => {
  it('frames every length class (7-bit, 16-bit, 64-bit) as FIN binary with a fresh non-zero key, the payload masked by it', async () => {
    const got: Buffer[] = [];
    const server = createServer((s) => s.on('data', (d) => got.push(d)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    const sizes = [0, 1, 125, 126, 1000, 65535, 65536, 200_000];
    const sent = sizes.map((n) => randomBytes(n));
    for (const p of sent) assert.equal(writeMaskedBinary(client, withHeadroom(p)), false, 'an idle socket writes at once');
    const total = sent.reduce((n, p) => n + p.length + (p.length < 126 ? 6 : p.length < 65536 ? 8 : 14), 0);
    const deadline = Date.now() + 5000;
    while (Buffer.concat(got).length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    client.destroy();
    server.close();
    const wire = Buffer.concat(got);
    assert.equal(wire.length, total, 'exactly the frames, nothing else');
    const frames = parseFrames(wire);
    assert.equal(frames.length, sizes.length);
    frames.forEach((f, i) => {
      assert.equal(f.first, 0x82, `frame ${i}: FIN and opcode 2`);
      assert.ok(f.masked, `frame ${i}: the mask bit`);
      assert.deepEqual(f.payload, sent[i], `frame ${i}: ${sizes[i]} bytes, unmasked by its key`);
    });
    const keys = new Set(frames.map((f) => f.key.toString('hex')));
    assert.equal(keys.size, frames.length, 'a fresh key per frame');
    assert.ok(!keys.has('00000000'), 'no all-zero key (that would leave the payload unmasked)');
    // The masking is real: a payload of 1,000 random bytes is not on the wire as it is.
    assert.ok(!wire.includes(sent[4]!.subarray(0, 64)), 'the payload does not appear in clear');
  });

  it('is read by a real `ws` server as the same messages, in order with what `ws` itself sends on the socket', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    const received: (string | Buffer)[] = [];
    const errors: Error[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (d, isBinary) => received.push(isBinary ? Buffer.from(d as Buffer) : (d as Buffer).toString()));
      ws.on('error', (e) => errors.push(e));
    });
    const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false });
    await new Promise((r) => ws.once('open', r));
    const socket = (ws as unknown as { _socket: FrameSocket })._socket;
    const a = randomBytes(640);
    const b = randomBytes(90_000);
    ws.send('first');
    writeMaskedBinary(socket, withHeadroom(a));
    ws.send('second');
    writeMaskedBinary(socket, withHeadroom(b));
    ws.ping();
    ws.send(randomBytes(10), { binary: true });
    writeMaskedBinary(socket, withHeadroom(new Uint8Array(0)));
    const deadline = Date.now() + 5000;
    while (received.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(errors, [], 'no protocol error at the server');
    assert.equal(received.length, 6);
    assert.equal(received[0], 'first');
    assert.deepEqual(received[1], a);
    assert.equal(received[2], 'second');
    assert.deepEqual(received[3], b);
    assert.equal((received[4] as Buffer).length, 10);
    assert.deepEqual(received[5], Buffer.alloc(0));
    ws.terminate();
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  });

  it('says when the socket kept the buffer: a peer that does not read', async () => {
    let peer: Socket | undefined;
    const server = createServer((s) => {
      peer = s;
      s.pause();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    let kept = -1;
    // The kernel's buffers on both sides take a few megabytes; then the stream holds our buffer.
    for (let i = 0; i < 200 && kept < 0; i++) if (writeMaskedBinary(client, withHeadroom(new Uint8Array(256 * 1024)))) kept = i;
    assert.ok(kept > 0, `the first writes went at once, a later one was kept (at ${kept})`);
    assert.ok(client.writableLength > 0);
    client.destroy();
    peer?.destroy();
    server.close();
  });

  it('refuses a payload with no room for its header in front', () => {
    const sink: FrameSocket = { write: () => true, writableLength: 0 };
    assert.throws(() => writeMaskedBinary(sink, new Uint8Array(10)), RangeError);
    assert.throws(() => writeMaskedBinary(sink, Buffer.alloc(300).subarray(6)), /8 free bytes/);
  });

  it('masks with bufferutil when it is built, and its fallback loop gives the same bytes', () => {
    // bufferutil is a dependency, built by `npm ci` from its own package (no download).
    assert.ok(nativeMasking, 'bufferutil loaded');
    const bu = createRequire(import.meta.url)('bufferutil') as { mask(s: Uint8Array, m: Uint8Array, o: Uint8Array, off: number, n: number): void };
    const src = randomBytes(1003);
    const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const viaLoop = Buffer.alloc(1010);
    const viaNative = Buffer.alloc(1010);
    maskLoop(src, key, viaLoop, 7, src.length);
    bu.mask(src, key, viaNative, 7, src.length);
    assert.deepEqual(viaLoop, viaNative);
    assert.equal(viaLoop[7], src[0]! ^ 0x12);
    assert.equal(viaLoop[7 + 1002], src[1002]! ^ key[1002 & 3]!);
  });
});
