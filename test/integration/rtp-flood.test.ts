/**
 * DESIGN.md, bad input: "RTP from an unexpected source is ignored (no media hijack); an RTP flood to
 * one port does not starve other calls". Eight calls talk to the echo bot while a worker thread
 * floods one call's RTP port from another address as fast as it can send (~100,000 datagrams a
 * second here). The other calls lose nothing; the flooded call keeps its audio both ways, losing at
 * most a few packets that the kernel dropped from the socket queue it shares with the flood; the
 * flood is counted, never played.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { ulawDecode, ulawEncode } from '../../codecs/g711.js';
import { parseRtp, serializeRtpInto } from '../../codecs/rtp.js';
import type { Qos } from '../../edge/api/events.js';
import { EchoBot } from '../../edge/echo-bot.js';
import type { SipResponse } from '../../sip/message.js';
import { parseSdp } from '../../sip/sdp.js';
import { parseNameAddr } from '../../sip/uri.js';
import { EventCollector, freePort, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';
import { RawUac, newBranch, sdpOffer, type Sent } from './raw-uac.js';

const CALLS = 8;
const TALK_FRAMES = 200; // 4 s
const FLOOD_FROM_FRAME = 25;
const FLOOD_MS = 2500;

/** Floods 127.0.0.1:port with 172-byte RTP-looking datagrams from a busy loop; posts the count sent. */
const FLOOD_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
s.connect(workerData.port, '127.0.0.1', () => {
  const pkt = Buffer.alloc(172, 0x55);
  pkt[0] = 0x80; pkt[1] = 0;
  let sent = 0;
  const end = Date.now() + workerData.ms;
  const burst = () => {
    // Bursts of sends with a turn of the event loop between them, so the sends are flushed.
    for (let i = 0; i < 200; i++) { pkt[3] = sent & 0xff; s.send(pkt); sent++; }
    if (Date.now() < end) setImmediate(burst);
    else setTimeout(() => { parentPort.postMessage(sent); s.close(); }, 50);
  };
  burst();
});
`;

interface Caller {
  s: Sent;
  rtp: Socket;
  nodePort: number;
  toTag: string;
  echoed: number;
}

function toTag(res: SipResponse): string {
  return parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';
}

describe('an RTP flood at one call', { timeout: 60000 }, () => {
  let nats: NatsServer;
  let bot: EchoBot;
  let node: Botedge & { sipPort: number };
  let events: EventCollector;
  let uac: RawUac;

  before(async () => {
    nats = await startNats();
    bot = await EchoBot.listen(0);
    node = await startMediaNode({ nodeId: 'media-flood', sipPort: await freePort(), natsUrl: nats.url, rtpPortMin: 36000, rtpPortMax: 36199, defaultRoute: { url: bot.url } });
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

  it('starves no call, the flooded one included: audio flows both ways and the flood is counted, not played', async () => {
    const callers: Caller[] = [];
    for (let i = 0; i < CALLS; i++) {
      const rtp = createSocket('udp4');
      await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
      const s = uac.newCall();
      uac.sendRaw(uac.request('INVITE', 'flood', s, { body: sdpOffer(rtp.address().port, { payloads: '0' }) }));
      const res = await uac.finalResponse(s.branch);
      assert.equal(res.status, 200);
      const c: Caller = { s, rtp, nodePort: parseSdp(Buffer.from(res.body).toString()).media[0]!.port, toTag: toTag(res), echoed: 0 };
      uac.sendRaw(uac.request('ACK', 'flood', { ...s, branch: newBranch() }, { toTag: c.toTag, cseqMethod: 'ACK' }));
      // What comes back: the bot's echo of the tone (non-silent) counts; the node's silence does not.
      const pcm = new Int16Array(160);
      rtp.on('message', (buf) => {
        const p = parseRtp(buf);
        ulawDecode(p.payload, pcm);
        let peak = 0;
        for (const v of pcm) peak = Math.max(peak, Math.abs(v));
        if (peak > 2000) c.echoed++;
      });
      callers.push(c);
    }

    const payload = new Uint8Array(160);
    const tone = new Int16Array(160);
    for (let i = 0; i < 160; i++) tone[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
    ulawEncode(tone, payload);
    const victim = callers[0]!;
    let flood: Promise<number> | undefined;
    const t0 = performance.now();
    for (let f = 0; f < TALK_FRAMES; f++) {
      callers.forEach((c, i) => {
        // A buffer per datagram: dgram may write it on a later turn of the event loop.
        const pkt = new Uint8Array(172);
        const n = serializeRtpInto(pkt, 0, { marker: f === 0, payloadType: 0, sequenceNumber: f, timestamp: f * 160, ssrc: 1000 + i }, payload);
        c.rtp.send(pkt.subarray(0, n), c.nodePort, '127.0.0.1');
      });
      if (f === FLOOD_FROM_FRAME) {
        const w = new Worker(FLOOD_WORKER, { eval: true, workerData: { port: victim.nodePort, ms: FLOOD_MS } });
        flood = new Promise((resolve, reject) => {
          w.once('message', (sent: number) => resolve(sent));
          w.once('error', reject);
        });
      }
      // Absolute slots: a late wake-up sends what is due, the stream keeps its rate.
      const wait = t0 + (f + 1) * 20 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const flooded = await flood!;
    await new Promise((r) => setTimeout(r, 500));
    for (const c of callers) {
      const bye = { ...c.s, branch: newBranch(), cseq: 2 };
      uac.sendRaw(uac.request('BYE', 'flood', bye, { toTag: c.toTag }));
      assert.equal((await uac.finalResponse(bye.branch)).status, 200);
      c.rtp.close();
    }
    await events.until(() => events.of('ended').length >= CALLS, 5000, 'ended for every call');

    // The flood was real: far more datagrams than the calls' own.
    assert.ok(flooded > 20 * TALK_FRAMES * CALLS, `the worker sent only ${flooded} datagrams`);
    const problems: string[] = [];
    const check = (ok: boolean, what: string) => void (ok || problems.push(what));
    for (const [i, c] of callers.entries()) {
      const ended = events.of('ended').find((e) => e.data.sipCallId === c.s.callId)!;
      const media = ended.data.media as Record<string, number>;
      const qos = ended.data.qos as Qos;
      const what = `call ${i}${c === victim ? ' (flooded)' : ''}: ${JSON.stringify(media)}`;
      // Every frame the caller sent reached the bot, and the bot's echo came back (the first frames
      // of a call race its bot's start, a few may be lost to that).
      check(media.framesToBot === media.rtpReceived && qos.packetsReceived === media.rtpReceived, `${what}: every packet taken went to the bot`);
      if (c === victim) {
        // The flood came from another address: ignored and counted (what the kernel kept of it).
        check(media.rtpUnexpectedSource! > 10 * TALK_FRAMES && media.rtpUnexpectedSource! <= flooded, `${what}: flood of ${flooded} counted`);
        // Its own packets share the socket's queue with the flood: when the I/O thread is off the
        // CPU for a moment the kernel drops from that queue, whoever sent it. A few, no more.
        check(media.rtpReceived! >= TALK_FRAMES * 0.97, `${what}: caller packets lost`);
        check(c.echoed >= TALK_FRAMES * 0.9, `${what}: ${c.echoed} echoed frames back`);
      } else {
        // Every other call: not one packet lost either way.
        check(media.rtpUnexpectedSource === 0, what);
        check(media.rtpReceived === TALK_FRAMES && qos.packetsLost === 0, `${what}: caller packets lost`);
        check(c.echoed >= TALK_FRAMES * 0.95, `${what}: ${c.echoed} echoed frames back`);
      }
    }
    assert.deepEqual(problems, [], `the flood sent ${flooded} datagrams`);
  });
});
