import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { MuxBotStream, MuxConnection, closeMuxConnections, muxCounters, type MuxStreamOptions } from '../../../../edge/bot/mux.js';
import { NativeProtocol } from '../../../../edge/bot/native-protocol.js';
import type { BotCommand } from '../../../../edge/bot/protocol.js';
import { logger } from '../../../../edge/log.js';
import { MuxServer, MUX_SUBPROTOCOL, type MuxCall } from '../../../../sdk/mux-server.js';
import { RecordWriter, readRecords } from '../../../../sdk/mux-wire.js';

const log = logger('test:mux');
const until = async (pred: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

function opts(callId: string, nodeId: string, extra: Partial<MuxStreamOptions> = {}): MuxStreamOptions {
  return { callId, nodeId, timeoutMs: 2000, sendBufferBytes: 256 * 1024, queueFrames: 50, readTimeoutMs: 1000, log, ...extra };
}

interface Rec {
  cmds: BotCommand[];
  audio: number[][];
  closed: { reason: string; failure: boolean }[];
}
function handlers(): Rec & { onCommand(c: BotCommand): void; onClose(r: string, f: boolean): void } {
  const rec: Rec = { cmds: [], audio: [], closed: [] };
  return {
    ...rec,
    onCommand: (c) => (c.type === 'audio' ? rec.audio.push([...c.samples]) : rec.cmds.push(c)),
    onClose: (reason, failure) => rec.closed.push({ reason, failure }),
    get cmds() {
      return rec.cmds;
    },
    get audio() {
      return rec.audio;
    },
    get closed() {
      return rec.closed;
    },
  };
}

async function closeWss(wss: WebSocketServer): Promise<void> {
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => wss.close(r));
}

const proto = (callId: string) => new NativeProtocol({ callId, sipCallId: `sip-${callId}`, from: 'sip:a@x', to: 'sip:100@x', headers: {} }, 16000);

describe('native-mux streams on one shared socket', { timeout: 10000 }, () => {
  after(() => closeMuxConnections());

  it('carries several calls on one connection, one binary message per turn, demultiplexed both ways', async () => {
    const server = await MuxServer.listen();
    const calls: MuxCall[] = [];
    server.on('call', (c) => {
      calls.push(c);
      c.on('audio', (pcm) => c.sendAudio(pcm.map((v) => v + 1)));
    });
    const url = `ws://127.0.0.1:${server.port}/m`;
    const ha = handlers();
    const hb = handlers();
    const [a, b] = await Promise.all([MuxBotStream.connect(url, proto('A'), opts('A', 'n1'), ha), MuxBotStream.connect(url, proto('B'), opts('B', 'n1'), hb)]);
    assert.equal(server.connections.size, 1, 'both calls share one socket');
    assert.notEqual(a.id, b.id);
    await until(() => calls.length === 2, 2000, 'two calls at the bot');
    assert.deepEqual(calls.map((c) => c.callId).sort(), ['A', 'B']);
    assert.equal(calls[0]!.start.format.sampleRate, 16000);
    const conn = [...server.connections][0]!;
    let binaries = 0;
    conn.ws.on('message', (_d, isBinary) => isBinary && binaries++);
    a.sendAudio(Int16Array.from([10, 20]), 0);
    b.sendAudio(Int16Array.from([30]), 0);
    await until(() => ha.audio.length === 1 && hb.audio.length === 1, 2000, 'echo');
    assert.equal(binaries, 1, 'both frames travelled in one message');
    assert.deepEqual(ha.audio, [[11, 21]]);
    assert.deepEqual(hb.audio, [[31]]);
    // Marks and clear are per call.
    const ca = calls.find((c) => c.callId === 'A')!;
    ca.mark('m1');
    ca.clear();
    await until(() => ha.cmds.length === 2, 2000, 'mark and clear');
    assert.deepEqual(ha.cmds, [{ type: 'mark', name: 'm1' }, { type: 'clear' }]);
    assert.equal(hb.cmds.length, 0);
    a.send({ type: 'mark', name: 'm1', cleared: true });
    const marks: unknown[] = [];
    ca.on('mark', (m) => marks.push(m));
    await until(() => marks.length === 1, 2000, 'mark event at the bot');
    assert.deepEqual(marks, [{ name: 'm1', cleared: true }]);
    // Ending one call leaves the other running.
    const stopped: string[] = [];
    ca.on('stop', (r) => stopped.push(r));
    a.close('caller-hangup');
    await until(() => stopped.length === 1, 2000, 'stop');
    assert.deepEqual(stopped, ['caller-hangup']);
    b.sendAudio(Int16Array.from([1]), 0);
    await until(() => hb.audio.length === 2, 2000, 'b still echoes');
    b.close('caller-hangup');
    await server.close();
  });

  it('sends the batches scheduled so far at once when asked (flushScheduled), and the scheduled flush then sends nothing more', async () => {
    const server = await MuxServer.listen();
    const got: number[][] = [];
    server.on('call', (c) => c.on('audio', (pcm) => got.push([...pcm])));
    const url = `ws://127.0.0.1:${server.port}/m`;
    const [a, b] = await Promise.all([MuxBotStream.connect(url, proto('FA'), opts('FA', 'nf'), handlers()), MuxBotStream.connect(url, proto('FB'), opts('FB', 'nf'), handlers())]);
    const conn = [...server.connections][0]!;
    let binaries = 0;
    conn.ws.on('message', (_d, isBinary) => isBinary && binaries++);
    const before = muxCounters.batchesSent;
    a.sendAudio(Int16Array.from([1, 2]), 0);
    b.sendAudio(Int16Array.from([3]), 0);
    assert.equal(muxCounters.batchesSent, before, 'the batch waits for its flush');
    MuxConnection.flushScheduled();
    assert.equal(muxCounters.batchesSent, before + 1, 'sent in the same turn, as one message');
    await new Promise((r) => setImmediate(r));
    assert.equal(muxCounters.batchesSent, before + 1, 'the scheduled flush found nothing left');
    await until(() => got.length === 2, 2000, 'both frames at the bot');
    assert.equal(binaries, 1);
    assert.deepEqual(got.sort((x, y) => x[0]! - y[0]!), [[1, 2], [3]]);
    // A frame after it is scheduled afresh.
    a.sendAudio(Int16Array.from([4]), 0);
    await until(() => got.length === 3, 2000, 'a later frame');
    assert.equal(binaries, 2);
    a.close('caller-hangup');
    b.close('caller-hangup');
    await server.close();
  });

  it('lets go of each received batch once the call has taken its frame', async () => {
    const server = await MuxServer.listen();
    server.on('call', (c) => c.on('audio', (pcm) => c.sendAudio(pcm)));
    const seen: number[][] = [];
    let kept: { samples: Int16Array } | undefined;
    const h = handlers();
    const stream = await MuxBotStream.connect(`ws://127.0.0.1:${server.port}/m`, proto('K'), opts('K', 'n-keep'), {
      ...h,
      onCommand: (c) => {
        if (c.type !== 'audio') return;
        seen.push([...c.samples]);
        kept = c; // what a call could hold on to after the command
      },
    });
    try {
      stream.sendAudio(Int16Array.from([7, 8, 9]), 0);
      await until(() => seen.length === 1, 2000, 'echo');
      assert.deepEqual(seen, [[7, 8, 9]]);
      // The reused command no longer points into the received message: a quiet bot must not pin
      // its last batch (every call's frames) until the next one.
      assert.equal(kept!.samples.length, 0);
    } finally {
      stream.close('caller-hangup');
      await server.close();
    }
  });

  it('fails every call on the socket when it drops, and the next call reconnects', async () => {
    const server = await MuxServer.listen();
    const url = `ws://127.0.0.1:${server.port}/`;
    const ha = handlers();
    const hb = handlers();
    await MuxBotStream.connect(url, proto('A'), opts('A', 'n2'), ha);
    await MuxBotStream.connect(url, proto('B'), opts('B', 'n2'), hb);
    for (const c of server.wss.clients) c.terminate();
    await until(() => ha.closed.length === 1 && hb.closed.length === 1, 2000, 'both calls told');
    assert.equal(ha.closed[0]!.failure, true);
    assert.match(ha.closed[0]!.reason, /mux socket/);
    const hc = handlers();
    const c = await MuxBotStream.connect(url, proto('C'), opts('C', 'n2'), hc);
    assert.equal(c.id, 1, 'a new connection numbers from 1');
    c.close('done');
    await server.close();
  });

  it('refuses a bot that does not select the mux subprotocol', async () => {
    // (ws servers select the first offered subprotocol unless told otherwise.)
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => false });
    await new Promise((r) => wss.once('listening', r));
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    await assert.rejects(MuxBotStream.connect(url, proto('A'), opts('A', 'n3'), handlers()), { name: 'BotUnreachableError' });
    await closeWss(wss);
  });

  it('drops, counts and reports bad input from the bot without ending any call', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => MUX_SUBPROTOCOL });
    await new Promise((r) => wss.once('listening', r));
    const got: { text: string[]; ws?: WebSocket } = { text: [] };
    wss.on('connection', (ws) => {
      got.ws = ws;
      ws.on('message', (d, isBinary) => !isBinary && got.text.push(String(d)));
    });
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    const h = handlers();
    const s = await MuxBotStream.connect(url, proto('A'), opts('A', 'n4'), h);
    const ws = got.ws!;
    const w = new RecordWriter();
    w.add(s.id, Int16Array.from([5]));
    w.add(999, Int16Array.from([6])); // unknown stream
    w.add(s.id, Int16Array.from([7]));
    ws.send(Buffer.concat([w.take()!, Buffer.from([1, 0])]), { binary: true }); // + truncated header
    const odd = Buffer.alloc(11);
    odd.writeUInt32LE(s.id, 0);
    odd.writeUInt32LE(3, 4);
    ws.send(odd, { binary: true });
    ws.send('not json');
    ws.send('{"type":"clear"}'); // no stream
    ws.send(JSON.stringify({ stream: s.id, type: 'bogus' }));
    ws.send(JSON.stringify({ stream: 4242, type: 'clear' }));
    ws.send(JSON.stringify({ stream: s.id, type: 'clear' }));
    await until(() => h.cmds.length === 1, 2000, 'the valid clear');
    assert.deepEqual(h.audio, [[5], [7]], 'valid records around the bad ones still play');
    assert.deepEqual(h.cmds, [{ type: 'clear' }]);
    assert.equal(h.closed.length, 0);
    await until(() => got.text.filter((t) => t.includes('"error"')).length >= 6, 2000, 'error reports');
    const errors = got.text.filter((t) => t.includes('"error"')).map((t) => JSON.parse(t) as { stream?: number; reason: string });
    assert.ok(errors.some((e) => e.stream === undefined && /unknown stream 999/.test(e.reason)));
    assert.ok(errors.some((e) => e.stream === undefined && /ends 2 bytes into a record header/.test(e.reason)));
    assert.ok(errors.some((e) => e.stream === s.id && /whole 16-bit samples/.test(e.reason)));
    assert.ok(errors.some((e) => e.stream === s.id && /invalid control message/.test(e.reason)));
    // The same kind again is counted but not reported again.
    const before = got.text.length;
    ws.send('not json');
    ws.send(JSON.stringify({ stream: s.id, type: 'clear' }));
    await until(() => h.cmds.length === 2, 2000, 'second clear');
    assert.equal(got.text.length, before);
    assert.equal(s.badMessages, 2, 'odd length and invalid control counted on the stream');
    s.close('done');
    await closeWss(wss);
  });

  it('writes its batches itself, masked in place; behind a bot that stops reading the next batch goes into a new buffer, and every batch arrives whole', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => MUX_SUBPROTOCOL });
    await new Promise((r) => wss.once('listening', r));
    const firsts: number[] = [];
    const errors: Error[] = [];
    let botWs: WebSocket | undefined;
    wss.on('connection', (ws) => {
      botWs = ws;
      ws.on('error', (e) => errors.push(e));
      ws.on('message', (d, isBinary) => {
        if (!isBinary) return;
        readRecords(d as Buffer, (_id, b) => {
          // Every sample of a batch's frame is its number: a byte overwritten in flight shows.
          const v = b.readInt16LE(0);
          for (let i = 0; i < b.length; i += 2) if (b.readInt16LE(i) !== v) errors.push(new Error(`frame ${v} torn at ${i}`));
          firsts.push(v);
        });
      });
    });
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    const s = await MuxBotStream.connect(url, proto('A'), opts('A', 'n6', { sendBufferBytes: 1 << 30, queueFrames: 1000 }), handlers());
    const conn = (s as unknown as { conn: MuxConnection }).conn;
    assert.ok(conn.writesDirect, 'batches are written by the connection, not ws.send');
    await until(() => botWs !== undefined, 2000, 'the bot side');
    (botWs as unknown as { _socket: { pause(): void } })._socket.pause();
    const keptBefore = muxCounters.batchesKept;
    const N = 60;
    for (let i = 1; i <= N; i++) {
      s.sendAudio(new Int16Array(128 * 1024).fill(i), 0);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(muxCounters.batchesKept > keptBefore, 'the socket kept some batches (the bot was not reading)');
    (botWs as unknown as { _socket: { resume(): void } })._socket.resume();
    await until(() => firsts.length === N, 10000, 'every batch at the bot');
    assert.deepEqual(errors, []);
    assert.deepEqual(firsts, Array.from({ length: N }, (_, i) => i + 1), 'in order');
    s.close('done');
    await closeWss(wss);
  });

  it('leaves its batches to ws.send with BOTEDGE_MUX_DIRECT=0', async () => {
    process.env['BOTEDGE_MUX_DIRECT'] = '0';
    try {
      const server = await MuxServer.listen();
      server.on('call', (c) => c.on('audio', (pcm) => c.sendAudio(pcm)));
      const h = handlers();
      const s = await MuxBotStream.connect(`ws://127.0.0.1:${server.port}/m`, proto('A'), opts('A', 'n7'), h);
      assert.equal((s as unknown as { conn: MuxConnection }).conn.writesDirect, false);
      s.sendAudio(Int16Array.from([5, 6, 7]), 0);
      await until(() => h.audio.length === 1, 2000, 'echo');
      assert.deepEqual(h.audio[0], [5, 6, 7]);
      s.close('done');
      await server.close();
    } finally {
      delete process.env['BOTEDGE_MUX_DIRECT'];
    }
  });

  it('queues behind a slow socket and drops the oldest caller audio, counted', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => MUX_SUBPROTOCOL });
    await new Promise((r) => wss.once('listening', r));
    const frames: number[] = [];
    wss.on('connection', (ws) => ws.on('message', (d, isBinary) => isBinary && readRecords(d as Buffer, (_id, b) => frames.push(b.readInt16LE(0)))));
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    const s = await MuxBotStream.connect(url, proto('A'), opts('A', 'n5', { sendBufferBytes: 0, queueFrames: 3 }), handlers());
    // Force "behind": pretend the socket holds data.
    const conn = (s as unknown as { conn: { canSend(): boolean } }).conn;
    const canSend = conn.canSend.bind(conn);
    conn.canSend = () => false;
    for (let i = 1; i <= 10; i++) s.sendAudio(Int16Array.from([i]), 0);
    assert.equal(s.framesDropped, 7);
    conn.canSend = canSend;
    s.pump(performance.now());
    await until(() => frames.length === 3, 2000, 'the kept frames');
    assert.deepEqual(frames, [8, 9, 10], 'the newest three survive, in order');
    s.close('done');
    await closeWss(wss);
  });
});
