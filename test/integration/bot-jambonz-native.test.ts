/**
 * Conformance of the jambonz `listen` protocol (from docs.jambonz.org: listen verb, bidirectional
 * streaming audio, commands) and of our `native` protocol's newer messages (24 kHz, sendDtmf,
 * transfer). No npm package implements a jambonz listen *server* (the @jambonz packages are the
 * application/webhook SDKs), so the bot side is the recording conformance bot.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { Caller, RecordingBot, okFor, sleep, tone, until, type BotConn } from '../fixtures/bot/peers.js';
import { EventCollector, freePort, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';
import { RawUac } from './raw-uac.js';

const pcmBytes = (pcm: Int16Array) => Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);

describe('jambonz and native protocols: conformance', { timeout: 45000 }, () => {
  let nats: NatsServer;
  let node: Botedge & { sipPort: number };
  let jbot: RecordingBot;
  let dbot: RecordingBot;
  let nbot: RecordingBot;
  let uac: RawUac;
  let events: EventCollector;

  before(async () => {
    nats = await startNats();
    jbot = await RecordingBot.listen({ acceptProtocols: ['audio.jambonz.org'] });
    dbot = await RecordingBot.listen({ acceptProtocols: ['audio.drachtio.org'] });
    nbot = await RecordingBot.listen();
    node = await startMediaNode({
      nodeId: 'media-bot-jambonz',
      sipPort: await freePort(),
      natsUrl: nats.url,
      rtpPortMin: 34100,
      rtpPortMax: 34199,
      routes: {
        jb: { url: jbot.url, protocol: 'jambonz', sampleRate: 16000, jambonz: { metadata: { tenant: 'acme' }, accountSid: 'acct-1' } },
        drachtio: { url: dbot.url, protocol: 'jambonz', jambonz: { subprotocol: 'audio.drachtio.org' } },
        nat: { url: nbot.url, protocol: 'native', sampleRate: 24000, playoutBufferMs: 500 },
      },
    });
    events = await EventCollector.start(nats.url);
    uac = await RawUac.open(node.sipPort);
  });

  after(async () => {
    uac?.close();
    await events?.close();
    await node?.stop();
    await Promise.all([jbot?.close(), dbot?.close(), nbot?.close()]);
    await nats?.stop();
  });

  it('jambonz: subprotocol, one metadata frame, L16 at 16 kHz both ways, dtmf, marks, killAudio, clearMarks, bad input, disconnect', async () => {
    const caller = await Caller.call(uac, 'jb');
    try {
      assert.equal(caller.status, 200);
      const c: BotConn = jbot.conns[0]!;
      assert.equal(c.protocol, 'audio.jambonz.org');
      await until(() => c.msgs.length >= 1, 2000, 'metadata');
      const meta = c.msgs[0]!.json!;
      assert.equal(meta.sampleRate, 16000);
      assert.equal(meta.mixType, 'mono');
      assert.equal(meta.direction, 'inbound');
      assert.equal(meta.tenant, 'acme');
      assert.equal(meta.accountSid, 'acct-1');
      assert.equal(typeof meta.callSid, 'string');
      assert.equal(meta.callId, caller.s.callId);

      // Caller → bot: one binary frame of 20 ms at 16 kHz (640 bytes) per RTP packet, nothing else.
      await caller.sendTone(25);
      await until(() => c.msgs.filter((m) => m.binary).length >= 25, 2000, 'audio frames');
      const bins = c.msgs.filter((m) => m.binary);
      assert.deepEqual([...new Set(bins.map((m) => m.binary!.length))], [640]);
      assert.equal(c.msgs.slice(1).filter((m) => !m.binary).length, 0, 'only binary frames after the metadata');
      // The tone, whole, in every frame after the resampler's first: most of them came by the
      // receive lane's direct batch (native RTP I/O; the dgram run has no lane).
      const peak = (b: Buffer) => Math.max(...Array.from({ length: b.length / 2 }, (_, i) => Math.abs(b.readInt16LE(2 * i))));
      for (const [i, m] of bins.slice(1, 25).entries()) assert.ok(Math.abs(peak(m.binary!) - 8000) < 400, `frame ${i + 1}: peak ${peak(m.binary!)}`);
      const nc = await connect({ servers: nats.url });
      const status = (await nc.request('botedge.v1.node.media-bot-jambonz.status', '', { timeout: 2000 })).json<{ rtpIo: { backend: string; laneTaken?: number; laneWsWritten?: number } }>();
      await nc.close();
      if (status.rtpIo.backend === 'native') {
        assert.ok(status.rtpIo.laneTaken! >= 20, `the lane took ${status.rtpIo.laneTaken} of 25 caller packets`);
        // And wrote them to the bot's socket itself (native/ws_writer.h): frames `ws` parsed above.
        assert.ok(status.rtpIo.laneWsWritten! >= 20, `the lane wrote ${status.rtpIo.laneWsWritten} of them to the socket`);
      }

      caller.sendDigit('5');
      await until(() => c.texts().some((m) => m.event === 'dtmf'), 2000, 'dtmf');
      const d = c.texts().find((m) => m.event === 'dtmf')!;
      assert.equal(d.dtmf, '5');
      assert.match(d.duration as string, /^\d+$/);

      // Bot → caller: 0.6 s burst at 16 kHz, mark, played and reported with event "playout".
      const from = caller.rx.length;
      c.ws.send(pcmBytes(tone(9600, 16000, 1000, 8000)), { binary: true });
      c.ws.send(JSON.stringify({ type: 'mark', data: { name: 'a' } }));
      const markOf = (name: string) => c.texts().find((m) => m.type === 'mark' && m.data?.name === name);
      await until(() => markOf('a') !== undefined, 3000, 'mark a');
      assert.equal(markOf('a')!.data.event, 'playout');
      const played = caller.rx.slice(from).filter((p) => p.peak > 2000).length;
      assert.ok(played >= 29 && played <= 31, `${played} packets for 0.6 s`);

      // Bot → caller frame by frame, each 20 ms its own message: all played, and with native RTP
      // I/O most queued by the receive lane (no decode in JavaScript). Two runs of five messages
      // back to back: a frame that comes after the tick that wanted it (the slot is held for it)
      // goes out at once from JavaScript, so only the first of a run may miss the lane.
      await sleep(100);
      const fromFrames = caller.rx.length;
      const laneBotTaken = async () => {
        const nc = await connect({ servers: nats.url });
        const st = (await nc.request('botedge.v1.node.media-bot-jambonz.status', '', { timeout: 2000 })).json<{ rtpIo: { backend: string; laneBotTaken?: number } }>();
        await nc.close();
        return st.rtpIo;
      };
      const before = await laneBotTaken();
      const frames = tone(3200, 16000, 1000, 8000);
      for (let i = 0; i < 10; i++) {
        c.ws.send(pcmBytes(frames.subarray(i * 320, (i + 1) * 320)), { binary: true });
        if (i === 4) await sleep(60);
      }
      await until(() => caller.rx.slice(fromFrames).filter((p) => p.peak > 2000).length >= 10, 2000, '10 frames played');
      const after = await laneBotTaken();
      if (after.backend === 'native') assert.ok(after.laneBotTaken! - before.laneBotTaken! >= 6, `the lane queued ${after.laneBotTaken! - before.laneBotTaken!} of 10 frames`);

      // killAudio: audio stops, the pending mark comes back "cleared"; clearMarks forgets silently.
      c.ws.send(pcmBytes(tone(32000, 16000, 1000, 8000)), { binary: true });
      c.ws.send(JSON.stringify({ type: 'mark', data: { name: 'b' } }));
      await sleep(200);
      const killAt = performance.now();
      c.ws.send(JSON.stringify({ type: 'killAudio' }));
      await until(() => markOf('b') !== undefined, 2000, 'mark b');
      assert.equal(markOf('b')!.data.event, 'cleared');
      await sleep(150);
      const late = caller.rx.filter((p) => p.peak > 2000 && p.at > killAt + 40);
      assert.equal(late.length, 0, 'no tone after killAudio');
      c.ws.send(pcmBytes(tone(1600, 16000)), { binary: true });
      c.ws.send(JSON.stringify({ type: 'mark', data: { name: 'c' } }));
      c.ws.send(JSON.stringify({ type: 'clearMarks' }));
      await sleep(300);
      assert.equal(markOf('c'), undefined, 'clearMarks: no report');

      // Bad input: each kind reported once.
      for (let i = 0; i < 2; i++) {
        c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
        c.ws.send('{oops');
        c.ws.send(JSON.stringify({ type: 'dance' }));
        c.ws.send(JSON.stringify({ type: 'playAudio', data: { audioContent: 'AAAA' } }));
      }
      await sleep(200);
      assert.equal(c.texts().filter((m) => m.type === 'error').length, 4);

      c.ws.send(JSON.stringify({ type: 'disconnect' }));
      await caller.awaitBye();
      await until(() => c.closedAt > 0, 3000, 'socket closed');
      assert.equal(c.closeCode, 1000);
    } finally {
      caller.close();
    }
  });

  it('jambonz: offers audio.drachtio.org when configured', async () => {
    const caller = await Caller.call(uac, 'drachtio');
    try {
      assert.equal(caller.status, 200);
      assert.equal(dbot.conns[0]!.protocol, 'audio.drachtio.org');
      assert.equal(await caller.bye(), 200);
    } finally {
      caller.close();
    }
  });

  it('native: 24 kHz audio, overflow reported, sendDtmf as RFC 4733 events, transfer by REFER', async () => {
    const caller = await Caller.call(uac, 'nat');
    try {
      assert.equal(caller.status, 200);
      const c = nbot.conns[0]!;
      await until(() => c.msgs.length >= 1, 2000, 'start');
      assert.equal(c.msgs[0]!.json!.format.sampleRate, 24000);
      await caller.sendTone(10);
      await until(() => c.msgs.filter((m) => m.binary).length >= 10, 2000, 'audio');
      assert.equal(c.msgs.find((m) => m.binary)!.binary!.length, 960, '20 ms at 24 kHz');

      // 1 s at 24 kHz into a 500 ms playout buffer: the oldest half is dropped and reported.
      c.ws.send(pcmBytes(tone(24000, 24000)), { binary: true });
      await until(() => c.texts().some((m) => m.type === 'overflow'), 2000, 'overflow report');
      const over = c.texts().find((m) => m.type === 'overflow')!;
      assert.ok(over.droppedMs >= 490 && over.droppedMs <= 510, `overflow of ${over.droppedMs} ms`);
      c.ws.send(JSON.stringify({ type: 'clear' }));

      c.ws.send(JSON.stringify({ type: 'sendDtmf', digits: '1#', durationMs: 100 }));
      await until(() => caller.dtmfPackets().filter((p) => p.end).length >= 6, 3000, 'two digits');
      const dt = caller.dtmfPackets();
      const digits = dt.filter((p) => p.marker).map((p) => p.event);
      assert.deepEqual(digits, [1, 11]);
      for (const ev of [1, 11]) {
        const pk = dt.filter((p) => p.event === ev);
        assert.equal(new Set(pk.map((p) => p.ts)).size, 1, 'one RTP timestamp per event');
        assert.equal(pk.filter((p) => p.end).length, 3, 'three end packets');
        assert.equal(pk.at(-1)!.duration, 800);
      }

      c.ws.send(JSON.stringify({ type: 'transfer', target: 'sip:agent@127.0.0.1' }));
      const refer = await uac.waitForRequest('REFER', caller.s.callId, 3000);
      assert.equal(refer.headers.get('Refer-To'), '<sip:agent@127.0.0.1>');
      assert.equal(refer.headers.get('Refer-Sub'), 'false');
      uac.sendRaw(okFor(refer.headers, uac.port, '202 Accepted'));
      await caller.awaitBye();
      await until(() => c.texts().some((m) => m.type === 'transfer'), 2000, 'transfer result');
      assert.deepEqual(c.texts().find((m) => m.type === 'transfer'), { type: 'transfer', target: 'sip:agent@127.0.0.1', status: 'accepted', sipStatus: 202 });
    } finally {
      caller.close();
    }
  });
});
