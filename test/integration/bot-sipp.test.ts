/**
 * Interop with SIPp as the caller: its built-in uac_pcap calls (PCMA audio and a DTMF '1' from a
 * pcap) go through a media node to a Twilio Media Streams bot and to a jambonz listen bot, each of
 * which echoes the caller back. No published npm package implements either protocol's bot side
 * (checked 2026-11-22: `twilio` is the REST/TwiML helper, the `@jambonz/*` packages are the
 * application SDKs), so the bots are the conformance bots of these tests, speaking the documented
 * wire format; the Twilio signature and REST hangup are checked with the `twilio` package in
 * bot-twilio.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RecordingBot } from '../fixtures/bot/peers.js';
import { EventCollector, RtpTap, freePort, runSipp, sippWorkdir, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';

const TAP_SCENARIO = fileURLToPath(new URL('../../../test/fixtures/sipp/uac_pcap_tap.xml', import.meta.url));

describe('SIPp calls to Twilio and jambonz bots through a media node', { timeout: 60000 }, () => {
  let nats: NatsServer;
  let node: Botedge & { sipPort: number };
  let twilioBot: RecordingBot;
  let jambonzBot: RecordingBot;
  let events: EventCollector;
  let tapT: RtpTap;
  let tapJ: RtpTap;

  before(async () => {
    nats = await startNats();
    twilioBot = await RecordingBot.listen();
    twilioBot.onConnection = (c) =>
      c.ws.on('message', (d, isBinary) => {
        if (isBinary) return;
        const m = JSON.parse(d.toString()) as { event: string; streamSid: string; media?: { payload: string } };
        if (m.event === 'media') c.ws.send(JSON.stringify({ event: 'media', streamSid: m.streamSid, media: { payload: m.media!.payload } }));
      });
    jambonzBot = await RecordingBot.listen({ acceptProtocols: ['audio.jambonz.org'] });
    jambonzBot.onConnection = (c) => c.ws.on('message', (d, isBinary) => isBinary && c.ws.send(d, { binary: true }));
    node = await startMediaNode({
      nodeId: 'media-bot-sipp',
      sipPort: await freePort(),
      natsUrl: nats.url,
      rtpPortMin: 34300,
      rtpPortMax: 34399,
      routes: {
        // SIPp's uac_pcap dials the user "service".
        service: { url: twilioBot.url, protocol: 'twilio' },
        jambonz: { url: jambonzBot.url, protocol: 'jambonz', sampleRate: 16000 },
      },
    });
    events = await EventCollector.start(nats.url);
    [tapT, tapJ] = await Promise.all([RtpTap.open(), RtpTap.open()]);
  });

  after(async () => {
    tapT?.close();
    tapJ?.close();
    await events?.close();
    await node?.stop();
    await Promise.all([twilioBot?.close(), jambonzBot?.close()]);
    await nats?.stop();
  });

  it('carries audio both ways and the DTMF, and ends each call with stop or close', async () => {
    const target = `127.0.0.1:${node.sipPort}`;
    const cwd = sippWorkdir();
    const [tw, jb] = await Promise.all([
      runSipp(['-sf', TAP_SCENARIO, '-key', 'tap_port', String(tapT.port), target, '-m', '2', '-r', '2', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', '48000'], cwd),
      runSipp(['-sf', TAP_SCENARIO, '-key', 'tap_port', String(tapJ.port), '-s', 'jambonz', target, '-m', '2', '-r', '2', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', '48500'], cwd),
    ]);
    assert.equal(tw.successful, 2, `sipp to the twilio bot:\n${tw.stdout.slice(-1500)}\n${tw.stderr}`);
    assert.equal(jb.successful, 2, `sipp to the jambonz bot:\n${jb.stdout.slice(-1500)}\n${jb.stderr}`);
    await events.until(() => events.of('ended').length >= 4, 10000, '4 ended events');
    // `ended` is published when the node closes its side; the bot sees the close a moment later.
    await events.until(() => [...jambonzBot.conns, ...twilioBot.conns].every((c) => c.closeCode !== 0), 5000, 'bot sockets closed');

    assert.equal(twilioBot.conns.length, 2);
    for (const c of twilioBot.conns) {
      const t = c.texts();
      const media = t.filter((m) => m.event === 'media');
      assert.ok(media.length >= 300, `twilio bot got ${media.length} media messages`);
      assert.deepEqual([...new Set(media.map((m) => Buffer.from(m.media.payload as string, 'base64').length))], [160], '20 ms of µ-law each');
      assert.deepEqual(t.filter((m) => m.event === 'dtmf').map((m) => m.dtmf.digit), ['1']);
      assert.equal(t.at(-1)!.event, 'stop');
      const seqs = t.slice(1).map((m) => Number(m.sequenceNumber));
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1));
    }
    assert.equal(jambonzBot.conns.length, 2);
    for (const c of jambonzBot.conns) {
      const sizes = new Map<number, number>();
      for (const m of c.msgs) if (m.binary) sizes.set(m.binary.length, (sizes.get(m.binary.length) ?? 0) + 1);
      // SIPp's pcap sends 30 ms packets; bots get 20 ms frames (640 bytes at 16 kHz) all the same.
      assert.deepEqual([...sizes.keys()], [640], `jambonz bot got frames of ${JSON.stringify([...sizes])}`);
      assert.ok(sizes.get(640)! >= 300);
      assert.deepEqual(c.texts().filter((m) => m.event === 'dtmf').map((m) => m.dtmf), ['1']);
      assert.equal(c.closeCode, 1000);
    }
    // What the bots echoed came back to SIPp's callers as PCMA.
    for (const tap of [tapT, tapJ]) {
      assert.equal(tap.streams.size, 2);
      for (const s of tap.streams.values()) {
        assert.deepEqual([...s.payloadTypes], [8]);
        assert.ok(s.nonSilent >= 150, `${s.nonSilent} non-silent packets back`);
      }
    }
    for (const e of events.of('ended')) assert.equal(e.data.cause, 'caller-hangup');
  });
});
