/**
 * Opus end to end: a raw UAC offers opus/48000/2, the media node (real process, real Opus worker
 * pool) answers it, the caller sends real Opus (a tone encoded with libopus), the echo bot hears it
 * at 16 kHz and plays it back, and what the node sends the caller decodes back to the tone. Then
 * the same with packets dropped and reordered on the way in, and the node's status reply.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { LibopusDecoder, OpusEncoder } from '../../codecs/opus.js';
import { parseRtp, serializeRtpInto } from '../../codecs/rtp.js';
import type { Qos } from '../../edge/api/events.js';
import { EchoBot } from '../../edge/echo-bot.js';
import { BPL_PLC, mosFromLoss } from '../../edge/media/qos.js';
import { parseSdp } from '../../sip/sdp.js';
import { parseNameAddr } from '../../sip/uri.js';
import { amplitudeAt, sine } from '../fixtures/audio.js';
import { EventCollector, freePort, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';
import { RawUac, newBranch, type Sent } from './raw-uac.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NODE_ID = 'media-opus-it';
const TONE_HZ = 1000;

function opusOffer(rtpPort: number): string {
  return [
    'v=0', 'o=tester 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${rtpPort} RTP/AVP 111 0 110`,
    'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 useinbandfec=1; minptime=10',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:110 telephone-event/48000', 'a=fmtp:110 0-15',
    'a=ptime:20', 'a=sendrecv', '',
  ].join('\r\n');
}

interface Rx {
  seq: number;
  ts: number;
  pt: number;
  payload: Uint8Array;
}

/** A phone that speaks Opus: INVITE with an Opus offer, RTP from its own socket. */
class OpusPhone {
  readonly rx: Rx[] = [];
  readonly enc = new OpusEncoder({ sampleRate: 48000, fec: true, packetLossPercent: 20 });
  toTag = '';
  nodeRtpPort = 0;
  answerSdp = '';
  status = 0;

  private constructor(
    readonly uac: RawUac,
    readonly rtp: Socket,
    readonly s: Sent,
  ) {
    rtp.on('message', (msg) => {
      const p = parseRtp(msg);
      this.rx.push({ seq: p.sequenceNumber, ts: p.timestamp, pt: p.payloadType, payload: new Uint8Array(p.payload) });
    });
  }

  static async call(uac: RawUac): Promise<OpusPhone> {
    const rtp = createSocket('udp4');
    await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
    const phone = new OpusPhone(uac, rtp, uac.newCall());
    uac.sendRaw(uac.request('INVITE', 'opus', phone.s, { body: opusOffer(rtp.address().port) }));
    const res = await uac.finalResponse(phone.s.branch);
    phone.status = res.status;
    phone.toTag = parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';
    phone.answerSdp = Buffer.from(res.body).toString();
    uac.sendRaw(uac.request('ACK', 'opus', { ...phone.s, branch: newBranch() }, { toTag: phone.toTag, cseqMethod: 'ACK' }));
    if (res.status === 200) phone.nodeRtpPort = parseSdp(phone.answerSdp).media[0]!.port;
    return phone;
  }

  /**
   * Sends `frames` × 20 ms of the tone as Opus, paced at 20 ms; `order` maps the send slot to the
   * frame sent in it (reordering), and frames in `drop` are encoded but never sent (loss).
   */
  async talk(frames: number, opts: { drop?: Set<number>; swap?: [number, number][] } = {}): Promise<void> {
    const packets: Buffer[] = [];
    const buf = new Uint8Array(1500);
    for (let i = 0; i < frames; i++) {
      const payload = this.enc.encode(sine(48000, TONE_HZ, 960, 8000, i * 960));
      const n = serializeRtpInto(buf, 0, { marker: i === 0, payloadType: 111, sequenceNumber: (5000 + i) & 0xffff, timestamp: (777 + i * 960) >>> 0, ssrc: 0xabc }, payload);
      packets.push(Buffer.from(buf.subarray(0, n)));
    }
    const order = packets.map((_, i) => i);
    for (const [a, b] of opts.swap ?? []) [order[a], order[b]] = [order[b]!, order[a]!];
    const t0 = performance.now();
    for (let slot = 0; slot < frames; slot++) {
      const i = order[slot]!;
      if (!opts.drop?.has(i)) this.rtp.send(packets[i]!, this.nodeRtpPort, '127.0.0.1');
      await sleep(Math.max(0, t0 + (slot + 1) * 20 - performance.now()));
    }
  }

  bye(): void {
    this.uac.sendRaw(this.uac.request('BYE', 'opus', { ...this.s, branch: newBranch(), cseq: 2 }, { toTag: this.toTag }));
  }

  /** The node's packets, in sequence order, decoded at 48 kHz. */
  decodeRx(): Int16Array {
    const dec = new LibopusDecoder({ sampleRate: 48000 });
    const audio = this.rx.filter((p) => p.pt === 111).sort((a, b) => ((a.seq - b.seq) << 16) >> 16);
    const out = new Int16Array(audio.length * 960);
    audio.forEach((p, i) => out.set(dec.decode(p.payload), i * 960));
    dec.close();
    return out;
  }

  close(): void {
    this.rtp.close();
  }
}

describe('an Opus call: SDP, decode at the bot\'s rate, echo, encode, loss concealment', { timeout: 60000 }, () => {
  let nats: NatsServer;
  let bot: EchoBot;
  let node: Botedge & { sipPort: number };
  let events: EventCollector;
  let uac: RawUac;
  let nc: NatsConnection;

  before(async () => {
    nats = await startNats();
    bot = await EchoBot.listen(0);
    node = await startMediaNode({
      nodeId: NODE_ID,
      sipPort: await freePort(),
      natsUrl: nats.url,
      rtpPortMin: 34400,
      rtpPortMax: 34499,
      codecs: ['opus', 'PCMU', 'PCMA'],
      defaultRoute: { url: bot.url, sampleRate: 16000 },
    });
    events = await EventCollector.start(nats.url);
    uac = await RawUac.open(node.sipPort);
    nc = await connect({ servers: nats.url });
  });

  after(async () => {
    await nc?.close();
    uac?.close();
    await events?.close();
    await node?.stop();
    await bot?.close();
    await nats?.stop();
  });

  it('answers opus at the offered payload type; the echoed audio decodes back to the tone, 960 ticks per packet', async () => {
    const phone = await OpusPhone.call(uac);
    try {
      assert.equal(phone.status, 200);
      const answer = parseSdp(phone.answerSdp).media[0]!;
      assert.deepEqual(answer.formats, ['111', '110']);
      assert.deepEqual(answer.rtpmaps[0], { payloadType: 111, encodingName: 'opus', clockRate: 48000, encodingParameters: '2' });
      assert.match(answer.fmtps.find((f) => f.format === '111')!.parameters, /useinbandfec=1/);

      await phone.talk(150);
      await sleep(300);
      // The bot heard 16 kHz audio (640-byte frames), not silence.
      const heard = [...bot.calls.values()].find((c) => c.sampleRate === 16000);
      assert.ok(heard, 'the bot saw a 16 kHz call');
      assert.ok(heard.nonSilentFrames >= 130, `${heard.nonSilentFrames} non-silent frames at the bot`);

      const audio = phone.rx.filter((p) => p.pt === 111);
      assert.ok(audio.length >= 150, `${audio.length} Opus packets from the node`);
      const sorted = [...audio].sort((a, b) => ((a.seq - b.seq) << 16) >> 16);
      // 960 ticks (20 ms at Opus' 48 kHz clock) per packet. A frame whose encode missed its tick
      // leaves a gap in media time: the next step is a larger multiple of 960, as RTP allows. The
      // pool warming up at call start makes a few in the first second (1–5 in loaded runs: the
      // first packets, once the 21st); after it, a gap is a stall of the host, and rare.
      const gapsAt: number[] = [];
      for (let i = 1; i < sorted.length; i++) {
        const step = (sorted[i]!.ts - sorted[i - 1]!.ts) >>> 0;
        assert.ok(step > 0 && step % 960 === 0, `timestamp step ${step} at ${i}`);
        if (step !== 960) gapsAt.push(i);
      }
      const afterWarmUp = gapsAt.filter((i) => i >= 50);
      assert.ok(gapsAt.length <= 10 && afterWarmUp.length <= 2, `${gapsAt.length} gaps in media time, at packets ${gapsAt.join(', ')}`);
      // Find the echoed second: the loudest stretch of the decoded stream, and read its tone.
      const pcm = phone.decodeRx();
      let best = 0;
      for (let at = 0; at + 48000 <= pcm.length; at += 4800) best = Math.max(best, amplitudeAt(pcm.subarray(at, at + 48000), 48000, TONE_HZ));
      assert.ok(best > 4000, `the echoed tone at ${best.toFixed(0)} (sent at 8000)`);
    } finally {
      phone.bye();
      phone.close();
    }
    await events.until(() => events.of('ended').length >= 1, 5000, 'ended');
    const media = events.of('ended')[0]!.data.media as Record<string, number>;
    assert.equal(media.codecErrors, 0);
    assert.ok((media.framesToBot ?? 0) >= 145, `${media.framesToBot} frames to the bot`);
  });

  it('conceals dropped packets (FEC from the next one, PLC for a burst) and plays reordered ones in order', async () => {
    const phone = await OpusPhone.call(uac);
    // This call's own `ended` (a test before that failed may not have waited for its call's).
    const ended = () => events.of('ended').find((e) => e.data.sipCallId === phone.s.callId);
    try {
      assert.equal(phone.status, 200);
      await phone.talk(120, { drop: new Set([30, 60, 61, 62]), swap: [[90, 91]] });
      await sleep(300);
    } finally {
      phone.bye();
      phone.close();
    }
    await events.until(() => ended() !== undefined, 5000, 'ended');
    const media = ended()!.data.media as Record<string, number>;
    // Every dropped frame was rebuilt, from the next packet's FEC when that packet was already in the
    // jitter buffer, else by PLC: which one depends on arrival timing, so only the sum is asserted
    // here (test/unit/edge/media/opus-media.test.ts checks FEC itself, deterministically).
    assert.ok(media.fecFrames! + media.concealedFrames! >= 4, `fec ${media.fecFrames} + plc ${media.concealedFrames}: ${JSON.stringify(media)}`);
    assert.equal(media.codecErrors, 0);
    // Every one of the 120 frames reached the bot, the four lost ones rebuilt.
    assert.ok((media.framesToBot ?? 0) >= 120, `${media.framesToBot} frames to the bot`);
    // QoS saw the loss on the way in, and rates it as a codec that conceals it (Opus PLC).
    const qos = ended()!.data.qos as Qos;
    assert.deepEqual([qos.packetsExpected, qos.packetsReceived, qos.packetsLost], [120, 116, 4], JSON.stringify(qos));
    assert.equal(qos.lossPct, 3.33);
    assert.equal(qos.mos, Math.round(mosFromLoss((100 * (4 + qos.packetsLate)) / 120, BPL_PLC) * 100) / 100);
    assert.ok(qos.mos! < 4.3 && qos.mos! > 3.8, `MOS ${qos.mos}`);
  });

  it('reports its event-loop delay in the status reply, and starts a new window on reset', async () => {
    const first = (await nc.request(`botedge.v1.node.${NODE_ID}.status`, JSON.stringify({ reset: true }), { timeout: 2000 })).json<{
      ok: boolean; calls: number; eventLoopDelayMs: { p50: number; p99: number; max: number; windowMs: number }; opus?: { batches: number };
    }>();
    assert.equal(first.ok, true);
    assert.ok(first.eventLoopDelayMs.windowMs > 1000, 'the first window spans the calls above');
    assert.ok(first.eventLoopDelayMs.max >= first.eventLoopDelayMs.p99 && first.eventLoopDelayMs.p99 >= first.eventLoopDelayMs.p50);
    assert.ok(first.eventLoopDelayMs.p50 > 0);
    assert.ok((first.opus?.batches ?? 0) > 100, 'the Opus pool was used');
    await sleep(200);
    const second = (await nc.request(`botedge.v1.node.${NODE_ID}.status`, '', { timeout: 2000 })).json<{ eventLoopDelayMs: { windowMs: number } }>();
    assert.ok(second.eventLoopDelayMs.windowMs < 1000, `window after reset: ${second.eventLoopDelayMs.windowMs} ms`);
  });
});
