/**
 * native-mux end to end: a real media node (the CLI), real SIP and RTP callers, and a bot written
 * against the SDK (sdk/mux-server.ts) — several calls on one WebSocket. What the node sends conforms
 * to the wire format, each caller hears only its own call's audio, marks and clear stay per call,
 * bad input is dropped without ending anything, and a dropped shared socket ends its calls by
 * policy while the next call reconnects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { MuxServer, type MuxCall, type MuxConnection } from '../../sdk/mux-server.js';
import { readRecords } from '../../sdk/mux-wire.js';
import { Caller, until } from '../fixtures/bot/peers.js';
import { EventCollector, freePort, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';
import { RawUac } from './raw-uac.js';

interface Seen {
  binaryMessages: number;
  records: number;
  recordSizes: Set<number>;
  streamsPerMessage: number[];
  streamIds: Set<number>;
  texts: Record<string, unknown>[];
}

describe('native-mux: many calls on one bot socket', { timeout: 30000 }, () => {
  let nats: NatsServer;
  let node: Botedge & { sipPort: number };
  let bot: MuxServer;
  let uac: RawUac;
  let events: EventCollector;
  const seen = new Map<MuxConnection, Seen>();
  const calls: MuxCall[] = [];
  /** What the bot plays back on each call: a constant level chosen by the caller's SIP Call-ID. */
  const levelFor = new Map<string, number>();
  /** Calls whose bot, every tenth reply, holds two back and sends all three with the third (late frames). */
  const lateFor = new Set<string>();

  before(async () => {
    nats = await startNats();
    bot = await MuxServer.listen({ path: '/mux' });
    bot.on('connection', (conn) => {
      const s: Seen = { binaryMessages: 0, records: 0, recordSizes: new Set(), streamsPerMessage: [], streamIds: new Set(), texts: [] };
      seen.set(conn, s);
      conn.ws.on('message', (d, isBinary) => {
        if (!isBinary) return void s.texts.push(JSON.parse(String(d)) as Record<string, unknown>);
        s.binaryMessages++;
        const ids = new Set<number>();
        const problem = readRecords(d as Buffer, (id, bytes) => {
          s.records++;
          s.recordSizes.add(bytes.length);
          s.streamIds.add(id);
          ids.add(id);
        });
        assert.equal(problem, undefined, 'the node sends whole records');
        s.streamsPerMessage.push(ids.size);
      });
    });
    bot.on('call', (call) => {
      calls.push(call);
      let replies = 0;
      const held: Int16Array[] = [];
      call.on('audio', (pcm) => {
        const reply = new Int16Array(pcm.length).fill(levelFor.get(call.start.sipCallId) ?? 1000);
        if (lateFor.has(call.start.sipCallId) && ++replies % 10 >= 8) return void held.push(reply);
        for (const r of held.splice(0)) call.sendAudio(r);
        call.sendAudio(reply);
      });
    });
    node = await startMediaNode({
      nodeId: 'media-bot-mux',
      sipPort: await freePort(),
      natsUrl: nats.url,
      rtpPortMin: 34400,
      rtpPortMax: 34499,
      routes: {
        mux: { url: `ws://127.0.0.1:${bot.port}/mux`, protocol: 'native-mux' },
        // The late-frame test's calls (same socket): the bot is 40 ms late, and when its late
        // frames reach the node against the node's slot clock is a matter of phase and of the
        // host's stalls — a 100 ms bound leaves them 60 ms to spare, where 40 would leave none.
        muxlate: { url: `ws://127.0.0.1:${bot.port}/mux`, protocol: 'native-mux', playoutCatchUpMs: 100 },
      },
    });
    events = await EventCollector.start(nats.url);
    uac = await RawUac.open(node.sipPort);
  });

  after(async () => {
    uac?.close();
    await events?.close();
    await node?.stop();
    await bot?.close();
    await nats?.stop();
  });

  it('carries three calls on one socket in batched records, and each caller hears only its own call', async () => {
    const callers = await Promise.all([0, 1, 2].map(() => Caller.call(uac, 'mux')));
    const levels = [2000, 6000, 14000];
    try {
      callers.forEach((c, i) => levelFor.set(c.s.callId, levels[i]!));
      for (const c of callers) assert.equal(c.status, 200);
      assert.equal(bot.connections.size, 1, 'one socket for all three calls');
      const conn = [...bot.connections][0]!;
      const s = seen.get(conn)!;
      await until(() => s.texts.filter((t) => t.type === 'start').length === 3, 2000, 'three starts');
      const starts = s.texts.filter((t) => t.type === 'start');
      assert.deepEqual(starts.map((t) => t.stream), [1, 2, 3], 'stream ids count from 1');
      for (const t of starts) {
        assert.match(String(t.callId), /^[0-9a-f-]{36}$/);
        assert.deepEqual(t.format, { encoding: 'L16', sampleRate: 8000, channels: 1, frameMs: 20 });
      }
      assert.deepEqual(new Set(starts.map((t) => t.sipCallId)), new Set(callers.map((c) => c.s.callId)));

      await Promise.all(callers.map((c) => c.sendTone(50)));
      await until(() => s.records >= 150, 3000, 'every caller frame at the bot');
      await new Promise((r) => setTimeout(r, 300)); // the last replies play out
      assert.equal(s.records, 150, 'every caller frame arrived once');
      // Most of them came by the node's G.711 receive lane (edge/media/rx-lane.ts), all but each
      // stream's first packets; the frames above are the same either way, once each and in order.
      const nc = await connect({ servers: nats.url });
      const status = (await nc.request('botedge.v1.node.media-bot-mux.status', '', { timeout: 2000 })).json<{ rtpIo: { backend: string; laneTaken: number; laneBotTaken: number; laneTxTaken: number } }>();
      await nc.close();
      assert.equal(status.rtpIo.backend, 'native');
      assert.ok(status.rtpIo.laneTaken >= 120 && status.rtpIo.laneTaken <= 150, `the lane took ${status.rtpIo.laneTaken} of 150 packets`);
      // And it queued the bot's replies (the same frames' worth) for playout: the levels below are those.
      assert.ok(status.rtpIo.laneBotTaken >= 100, `the lane queued ${status.rtpIo.laneBotTaken} bot frames`);
      // And its tick played most slots out (the first of each call, a mark, a late frame are
      // JavaScript's): one stream per caller either way, every slot once, in order.
      const sent = callers.map((c) => c.audioPackets().length).reduce((a, b) => a + b, 0);
      assert.ok(status.rtpIo.laneTxTaken >= sent / 2, `the lane's tick sent ${status.rtpIo.laneTxTaken} of ${sent} packets`);
      for (const [i, c] of callers.entries()) {
        const audio = c.audioPackets();
        for (let k = 1; k < audio.length; k++) {
          assert.equal((audio[k]!.seq - audio[k - 1]!.seq) & 0xffff, 1, `caller ${i}: sequence numbers run on at packet ${k}`);
          assert.equal((audio[k]!.ts - audio[k - 1]!.ts) >>> 0, 160, `caller ${i}: 20 ms per packet at ${k}`);
        }
        assert.equal(audio.filter((p) => p.marker).length, 1, `caller ${i}: the marker once, on the first packet`);
      }
      assert.deepEqual([...s.recordSizes], [320], '20 ms of 8 kHz L16 per record');
      assert.deepEqual([...s.streamIds].sort(), [1, 2, 3]);
      assert.ok(s.binaryMessages < s.records, `frames were batched: ${s.records} records in ${s.binaryMessages} messages`);
      for (const [i, c] of callers.entries()) {
        const loud = c.audioPackets().filter((p) => p.peak > 1000);
        assert.ok(loud.length >= 45, `caller ${i} heard ${loud.length} packets of its bot audio`);
        // µ-law quantisation: within 3% of the level its own call's bot sent, never another call's.
        for (const p of loud) assert.ok(Math.abs(p.peak - levels[i]!) / levels[i]! < 0.03, `caller ${i} heard level ${p.peak}, wants ${levels[i]}`);
      }

      // Marks and clear are per call.
      const [c0, c1] = [calls.find((k) => k.start.sipCallId === callers[0]!.s.callId)!, calls.find((k) => k.start.sipCallId === callers[1]!.s.callId)!];
      const marks0: unknown[] = [];
      const marks1: unknown[] = [];
      c0.on('mark', (m) => marks0.push(m));
      c1.on('mark', (m) => marks1.push(m));
      c0.sendAudio(new Int16Array(1600).fill(3000)); // 200 ms
      c0.mark('after-200ms');
      c1.sendAudio(new Int16Array(16000).fill(3000)); // 2 s
      c1.mark('never-played');
      const t0 = performance.now();
      await until(() => marks0.length === 1, 2000, 'call 0 mark');
      assert.deepEqual(marks0, [{ name: 'after-200ms', cleared: false }]);
      assert.ok(performance.now() - t0 >= 150, 'reported after its audio played');
      c1.clear();
      await until(() => marks1.length === 1, 2000, 'call 1 mark cleared');
      assert.deepEqual(marks1, [{ name: 'never-played', cleared: true }]);
      assert.equal(marks0.length, 1, 'call 0 saw only its own mark');

      const stops = s.texts.length;
      assert.equal(await callers[0]!.bye(), 200);
      await until(() => s.texts.length > stops, 2000, 'stop');
      assert.deepEqual(s.texts.at(-1), { stream: 1, type: 'stop', reason: 'caller-hangup' });
      assert.equal(bot.connections.size, 1, 'the socket stays for the other calls');
      for (const c of callers.slice(1)) assert.equal(await c.bye(), 200);
    } finally {
      for (const c of callers) c.close();
    }
  });

  it("sends a bot's late frames in the slots they missed, from the lane, and the caller's stream runs on", async () => {
    const caller = await Caller.call(uac, 'muxlate');
    try {
      assert.equal(caller.status, 200);
      lateFor.add(caller.s.callId);
      levelFor.set(caller.s.callId, 5000);
      const nc = await connect({ servers: nats.url });
      type Io = { laneTxHeld: number; laneHeldSent: number };
      const io = async () => (await nc.request('botedge.v1.node.media-bot-mux.status', '', { timeout: 2000 })).json<{ rtpIo: Io }>().rtpIo;
      const before = await io();
      // 100 frames: ten times the bot's replies stop for 40 ms, then three come at once. The
      // node holds the slots the dry queue leaves while the bot is mid-speech (catch-up, up to
      // the route's 100 ms) and sends the late frames in them the moment they come.
      await caller.sendTone(100);
      await new Promise((r) => setTimeout(r, 300));
      const after = await io();
      await nc.close();
      const held = after.laneTxHeld - before.laneTxHeld;
      const filled = after.laneHeldSent - before.laneHeldSent;
      assert.ok(held >= 3, `the lane's tick held ${held} slots for late frames`);
      assert.ok(filled >= 3, `the lane filled ${filled} held slots with the late frames, sent at once`);
      const audio = caller.audioPackets();
      for (let k = 1; k < audio.length; k++) {
        assert.equal((audio[k]!.seq - audio[k - 1]!.seq) & 0xffff, 1, `sequence numbers run on at packet ${k}`);
        assert.equal((audio[k]!.ts - audio[k - 1]!.ts) >>> 0, 160, `20 ms per packet at ${k}`);
      }
      // Every reply was played, none dropped or doubled: 100 frames at the bot's level.
      const loud = audio.filter((p) => p.peak > 1000);
      assert.equal(loud.length, 100, `the caller heard ${loud.length} of the bot's 100 frames`);
      for (const p of loud) assert.ok(Math.abs(p.peak - 5000) / 5000 < 0.03, `level ${p.peak}`);
      assert.equal(await caller.bye(), 200);
      await events.until(() => events.of('ended').some((e) => e.data.sipCallId === caller.s.callId), 3000, 'ended');
      const ended = events.of('ended').find((e) => e.data.sipCallId === caller.s.callId)!;
      const media = (ended.data as { media?: { playoutLateFrames?: number } }).media;
      assert.ok((media?.playoutLateFrames ?? 0) >= filled, `ended: ${JSON.stringify(media)}`);
    } finally {
      caller.close();
    }
  });

  it('drops bad input from the bot, reports it, and every call goes on', async () => {
    const s = seen.get([...bot.connections][0]!)!;
    const startsBefore = s.texts.filter((t) => t.type === 'start').length;
    const callers = await Promise.all([0, 1].map(() => Caller.call(uac, 'mux')));
    try {
      const conn = [...bot.connections][0]!;
      // The 200 OK (UDP) can overtake the start messages (TCP) to this process.
      await until(() => s.texts.filter((t) => t.type === 'start').length === startsBefore + 2, 2000, 'two new starts');
      const ids = s.texts.filter((t) => t.type === 'start').slice(-2).map((t) => Number(t.stream));
      const unknown = Buffer.alloc(8 + 320);
      unknown.writeUInt32LE(4242, 0);
      unknown.writeUInt32LE(320, 4);
      conn.ws.send(unknown, { binary: true });
      const truncated = Buffer.alloc(8 + 100);
      truncated.writeUInt32LE(ids[0]!, 0);
      truncated.writeUInt32LE(320, 4);
      conn.ws.send(truncated, { binary: true });
      conn.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      conn.ws.send('{"type":"clear"');
      conn.ws.send(JSON.stringify({ stream: ids[1], type: 'mark' }));
      await until(() => s.texts.filter((t) => t.type === "error").length >= 5, 3000, "five error reports").catch((err: unknown) => assert.fail(`${String(err)}: ${JSON.stringify(s.texts.filter((t) => t.type === "error"))}`));
      const errors = s.texts.filter((t) => t.type === 'error');
      assert.ok(errors.some((e) => /unknown stream 4242/.test(String(e.reason)) && e.stream === undefined));
      assert.ok(errors.some((e) => /claims 320 bytes/.test(String(e.reason))));
      assert.ok(errors.some((e) => /record header/.test(String(e.reason))));
      assert.ok(errors.some((e) => /not a JSON object/.test(String(e.reason))));
      assert.ok(errors.some((e) => e.stream === ids[1] && /invalid control message: name/.test(String(e.reason))));
      // Both calls still carry audio both ways.
      const before = s.records;
      await Promise.all(callers.map((c) => c.sendTone(10)));
      await until(() => s.records >= before + 20, 2000, 'frames after the bad input');
      await new Promise((r) => setTimeout(r, 200));
      for (const c of callers) assert.ok(c.audioPackets().filter((p) => p.peak > 500).length >= 8);
      for (const c of callers) assert.equal(await c.bye(), 200);
    } finally {
      for (const c of callers) c.close();
    }
  });

  it('ends every call on a dropped shared socket by policy, and the next call reconnects', async () => {
    const callers = await Promise.all([0, 1].map(() => Caller.call(uac, 'mux')));
    try {
      for (const c of callers) assert.equal(c.status, 200);
      const old = [...bot.connections][0]!;
      old.ws.terminate();
      const reasons = await Promise.all(callers.map((c) => c.awaitBye(5000)));
      for (const r of reasons) assert.match(r, /mux socket \(1006/);
      await events.until(() => events.of('ended').filter((e) => e.data.cause === 'bot-error').length >= 2, 3000, 'two bot-error ends');
      const next = await Caller.call(uac, 'mux');
      try {
        assert.equal(next.status, 200);
        await until(() => bot.connections.size === 1 && ![...bot.connections].includes(old), 2000, 'a new socket');
        const s = seen.get([...bot.connections][0]!)!;
        assert.deepEqual(s.texts.filter((t) => t.type === 'start').map((t) => t.stream), [1]);
        await next.sendTone(10);
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(next.audioPackets().filter((p) => p.peak > 500).length >= 8, 'audio flows on the new socket');
        assert.equal(await next.bye(), 200);
      } finally {
        next.close();
      }
    } finally {
      for (const c of callers) c.close();
    }
  });
});
