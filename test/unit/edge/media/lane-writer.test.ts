/**
 * The receive lane writing a per-call bot's frames to its WebSocket itself (native/ws_writer.h,
 * CallMedia.laneWriter, BotStream.useLaneWriter), against a real `ws` server: the bot must get
 * the same messages, byte for byte and in the same order among the stream's own events, as when
 * `ws` writes every frame; and while something of JavaScript's is unwritten (a bot that stopped
 * reading), the lane must leave the frames to JavaScript, so nothing arrives torn or out of order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { serializeRtpInto } from '../../../../codecs/rtp.js';
import { BotStream } from '../../../../edge/bot/bot-stream.js';
import { NativeProtocol } from '../../../../edge/bot/native-protocol.js';
import { LANE_TAKEN, loadRxLane, RxLaneHost } from '../../../../edge/media/rx-lane.js';
import type { PacketHandler, RtpSocket } from '../../../../edge/media/rtp-socket.js';
import { fillArena } from '../../../fixtures/arena.js';
import { pcmuCallTo16kBot } from '../../../fixtures/lane-call.js';

const log = pino({ level: 'silent' });
const call = { callId: 'call-w', sipCallId: 'w@x', from: 'sip:a@x', to: 'sip:b@x', headers: {} };
const opts = { callId: 'call-w', timeoutMs: 2000, sendBufferBytes: 65536, queueFrames: 500, readTimeoutMs: 60000, log };
const CALLER_IP = 0x7f000002;
const CALLER_PORT = 40000;
const SLOT = 3;
const EVENTS = 200;

interface Received {
  kinds: string[]; // 'b' for a binary frame, the event's type for text
  binary: Buffer[];
  errors: string[];
  ws: WebSocket | undefined;
}

async function bot(): Promise<{ url: string; got: Received; wss: WebSocketServer }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const got: Received = { kinds: [], binary: [], errors: [], ws: undefined };
  wss.on('connection', (ws) => {
    got.ws = ws;
    ws.on('message', (d: Buffer, isBinary) => {
      if (isBinary) {
        got.kinds.push('b');
        got.binary.push(Buffer.from(d));
      } else {
        got.kinds.push((JSON.parse(d.toString()) as { type: string }).type);
      }
    });
    // A torn or unmasked frame ends here.
    ws.on('error', (err) => got.errors.push(err.message));
  });
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/bot`, got, wss };
}

/** A call on the lane's direct batch whose caller frames go to `stream`, and its arena delivery. */
function laneCall(host: RxLaneHost, arena: ArrayBuffer, stream: BotStream) {
  const slot = host.slot(SLOT);
  const socket: RtpSocket & { onPacket: PacketHandler | undefined } = { port: 30000, onPacket: undefined, lane: slot, send() {}, sendNow() {}, replace: () => false, acceptOnly() {}, receiveBuffer: () => 0, foreignDropped: 0, close() {} };
  const media = pcmuCallTo16kBot(socket, CALLER_PORT, (pcm) => stream.sendAudio(pcm, 0));
  media.laneDirect();
  const view = new DataView(arena);
  const u8 = new Uint8Array(arena);
  let seq = 100;
  /** One arena of `n` caller packets in sequence (deterministic noise), as NativeRtpIo delivers it. */
  const deliver = (n: number) => {
    const datagrams = Array.from({ length: n }, () => {
      const body = Uint8Array.from({ length: 160 }, (_, k) => (seq * 31 + k * 7) & 0xff);
      const pkt = new Uint8Array(172);
      serializeRtpInto(pkt, 0, { marker: false, payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc: 0x1234 }, body);
      seq++;
      return { slot: SLOT, ip: CALLER_IP, port: CALLER_PORT, bytes: pkt, arrivalUs: seq * 20000 };
    });
    const { at, len } = fillArena(arena, datagrams);
    host.run(0, len);
    for (const a of at) if (view.getUint32(a, true) !== LANE_TAKEN) socket.onPacket!(u8.subarray(a + 16, a + 16 + 172), CALLER_IP, CALLER_PORT, 0);
  };
  return { media, deliver };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for `ok`, pumping `stream` as the call's tick does (it drains the stream's queue). */
const until = async (ok: () => boolean, what: string, stream?: BotStream) => {
  const t0 = performance.now();
  while (!ok()) {
    stream?.pump(performance.now());
    if (performance.now() - t0 > 5000) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('the receive lane writing to a per-call bot socket', { timeout: 30000 }, () => {
  const Lane = loadRxLane();

  it('sends the bot the same frames, in the same order among the stream’s events, as `ws` does', async () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const run = async (useWriter: boolean) => {
      const { url, got, wss } = await bot();
      const arena = new ArrayBuffer(1 << 16);
      const host = new RxLaneHost(Lane, arena, new ArrayBuffer(1 << 16), 8);
      const stream = await BotStream.connect(url, new NativeProtocol(call, 16000), opts, { onCommand: () => undefined, onClose: () => undefined });
      const { media, deliver } = laneCall(host, arena, stream);
      if (useWriter) {
        const fd = stream.laneWritableFd;
        assert.ok(fd !== undefined, 'a plain-TCP socket has a descriptor the lane may write to');
        const writer = media.laneWriter(fd);
        assert.ok(writer, 'the lane took the socket');
        stream.useLaneWriter(writer);
      }
      deliver(1); // the first packet sets the stream up (JavaScript)
      // A packet every 20 ms, as a caller sends them (a burst would fill the kernel's queue with
      // unacknowledged frames, and the lane would leave them to JavaScript: the same bytes).
      for (let i = 0; i < 60; i++) {
        deliver(1);
        if (i % 6 === 2) stream.send({ type: 'mark', name: `m${i}`, cleared: false });
        if (i % 13 === 5) stream.send({ type: 'dtmf', digit: '5', durationMs: 100 });
        await sleep(20);
      }
      await until(() => got.binary.length >= 61, `61 frames (${got.binary.length})`);
      const written = host.wsWritten;
      const sent = stream.framesSent;
      stream.close('done');
      await until(() => got.kinds.includes('stop'), 'stop');
      media.close();
      wss.close();
      return { got, written, sent };
    };
    const viaWs = await run(false);
    const viaLane = await run(true);
    assert.equal(viaWs.written, 0);
    assert.ok(viaLane.written >= 40, `the lane wrote ${viaLane.written} of 61 frames`);
    assert.deepEqual(viaLane.got.kinds, viaWs.got.kinds, 'the same messages in the same order');
    assert.equal(viaLane.got.binary.length, 61);
    for (let i = 0; i < 61; i++) assert.ok(viaLane.got.binary[i]!.equals(viaWs.got.binary[i]!), `frame ${i}`);
    assert.equal(viaLane.sent, 61, 'framesSent counts the lane’s frames');
    assert.equal(viaWs.sent, 61);
    assert.deepEqual([...viaLane.got.errors, ...viaWs.got.errors], []);
  });

  it('leaves frames to JavaScript while its bytes wait behind a bot that stopped reading, and nothing arrives torn', async () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const { url, got, wss } = await bot();
    const arena = new ArrayBuffer(1 << 16);
    const host = new RxLaneHost(Lane, arena, new ArrayBuffer(1 << 16), 8);
    const stream = await BotStream.connect(url, new NativeProtocol(call, 16000), opts, { onCommand: () => undefined, onClose: () => undefined });
    const { media, deliver } = laneCall(host, arena, stream);
    stream.useLaneWriter(media.laneWriter(stream.laneWritableFd!)!);
    await until(() => got.ws !== undefined, 'connection');
    deliver(1);
    for (let i = 0; i < 10; i++) {
      deliver(1);
      await sleep(20);
    }
    const before = host.wsWritten;
    assert.ok(before >= 7, `the lane wrote ${before} of 10 frames while the bot read`);
    // The bot stops reading; a burst of the stream's own (12 MB of events) fills the kernel's
    // buffers (a few MB on loopback) and Node's stream, and the rest waits in the stream's queue.
    const sock = (got.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    sock.pause();
    await new Promise((r) => setTimeout(r, 20));
    const reason = 'x'.repeat(60000);
    for (let i = 0; i < EVENTS; i++) stream.send({ type: 'error', reason });
    for (let i = 0; i < 30; i++) deliver(1);
    assert.equal(host.wsWritten, before, 'the lane wrote nothing while JavaScript had bytes waiting');
    // The bot reads again. Until the stream's tick sends what its queue holds, the kernel's queue
    // empties but the frames the lane makes still wait behind the queue: the lane leaves them too.
    sock.resume();
    await until(() => got.kinds.length >= 40, 'the bot reading again');
    await sleep(200);
    for (let i = 0; i < 5; i++) deliver(1);
    assert.equal(host.wsWritten, before, 'the lane wrote nothing while the stream’s queue held frames');
    // Everything arrives whole, in order.
    await until(() => got.binary.length >= 46, `46 frames (${got.binary.length})`, stream);
    for (let i = 0; i < 10; i++) {
      deliver(1);
      stream.pump(performance.now());
      await sleep(20);
    }
    await until(() => got.binary.length >= 56, `56 frames (${got.binary.length})`, stream);
    assert.ok(host.wsWritten > before, 'the lane writes again once JavaScript has written everything');
    assert.equal(got.kinds.filter((k) => k === 'error').length, EVENTS);
    assert.deepEqual(got.kinds.slice(-45), Array(45).fill('b'), 'the 45 frames after the events came after them');
    assert.deepEqual(got.errors, []);
    stream.close('done');
    media.close();
    wss.close();
  });
});
