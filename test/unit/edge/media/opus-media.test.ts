import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';

import { LibopusDecoder, OpusEncoder } from '../../../../codecs/opus.js';
import { parseRtp, serializeRtpInto } from '../../../../codecs/rtp.js';
import { OpusBatch, OpusMedia, type OpusMediaOptions } from '../../../../edge/media/opus-media.js';
import { DgramRtpIo } from '../../../../edge/media/rtp-io.js';
import type { CallMediaSink } from '../../../../edge/media/session.js';
import { OpusPool } from '../../../../workers/opus-pool.js';
import { amplitudeAt, sine } from '../../../fixtures/audio.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const bind = async (): Promise<Socket> => {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
};

/** A caller phone: encodes a 48 kHz tone with real libopus and sends it as RTP to the media. */
class Caller {
  readonly enc: OpusEncoder;
  readonly packet = new Uint8Array(1500);
  seq = 1000;
  ts = 123456;
  constructor(
    readonly socket: Socket,
    readonly to: number,
    fec: boolean,
  ) {
    this.enc = new OpusEncoder({ sampleRate: 48000, fec, packetLossPercent: fec ? 20 : 0 });
  }

  /** Frame `i` of a 1 kHz tone, as the RTP packet that carries it. */
  frame(i: number): Buffer {
    const payload = this.enc.encode(sine(48000, 1000, 960, 8000, i * 960));
    const len = serializeRtpInto(this.packet, 0, { marker: i === 0, payloadType: 111, sequenceNumber: (this.seq + i) & 0xffff, timestamp: (this.ts + i * 960) >>> 0, ssrc: 42 }, payload);
    return Buffer.from(this.packet.subarray(0, len));
  }

  send(buf: Buffer): void {
    this.socket.send(buf, this.to, '127.0.0.1');
  }
}

describe('OpusMedia with the real Opus worker pool', { timeout: 30000 }, () => {
  let pool: OpusPool;
  let batch: OpusBatch;
  const io = new DgramRtpIo();
  before(async () => {
    pool = new OpusPool({ threads: 2 });
    batch = new OpusBatch(pool);
    // As a media node does before it takes calls: the workers have started and rehearsed.
    await pool.ready();
  });
  after(async () => {
    await pool.destroy();
  });

  /** Runs `ticks` node ticks 20 ms apart, lets the last encodes land, and closes the call. */
  async function playOut(media: OpusMedia, ticks: number): Promise<void> {
    for (let i = 0; i < ticks; i++) {
      media.tick();
      media.afterTick();
      await sleep(20);
    }
    await sleep(30);
    media.close();
  }

  async function setup(extra: Partial<OpusMediaOptions> = {}) {
    const phone = await bind();
    const sock = await io.bind('127.0.0.1', 0);
    const toBot: Int16Array[] = [];
    const marks: string[] = [];
    const sink: CallMediaSink = { onCallerAudio: (pcm) => void toBot.push(pcm.slice()), onDtmf: () => undefined, onMark: (m) => void marks.push(m) };
    const options: OpusMediaOptions = {
      callId: `unit-${Math.random()}`,
      payloadType: 111,
      telephoneEventPt: 110,
      telephoneEventRate: 48000,
      remote: { address: '127.0.0.1', port: phone.address().port },
      symmetric: false,
      playoutBufferMs: 5000,
      botRate: 16000,
      remoteFec: true,
      ...extra,
    };
    const media = new OpusMedia(sock, sock.port, options, batch, sink);
    return { phone, media, toBot, marks, port: sock.port };
  }

  it('decodes the caller\'s 48 kHz Opus at the bot\'s 16 kHz, 20 ms per frame, no resampler', async () => {
    const { phone, media, toBot } = await setup();
    const caller = new Caller(phone, media.port, false);
    for (let i = 0; i < 40; i++) {
      caller.send(caller.frame(i));
      await sleep(5);
      media.tick();
      await sleep(15);
    }
    await sleep(50);
    media.close();
    phone.close();
    // 40 sent; on a loaded machine a stalled timer can cost the first few (the stream starts when
    // the jitter buffer has its depth), so the check is that the stream flowed, not its exact count.
    assert.ok(toBot.length >= 30, `${toBot.length} frames reached the bot`);
    assert.ok(toBot.every((f) => f.length === 320), 'every frame is 20 ms at 16 kHz');
    const steady = concat(toBot.slice(10, 30));
    assert.ok(amplitudeAt(steady, 16000, 1000) > 4000, `1 kHz at ${amplitudeAt(steady, 16000, 1000)}`);
    assert.ok(amplitudeAt(steady, 16000, 3000) < 500, 'and not much else');
    assert.equal(media.stats.codecErrors, 0);
  });

  it('recovers a dropped packet from the next one\'s FEC and conceals a burst with PLC, and reorders', async () => {
    const { phone, media, toBot } = await setup();
    const caller = new Caller(phone, media.port, true);
    const frames = Array.from({ length: 60 }, (_, i) => caller.frame(i));
    const dropped = new Set([20, 35, 36, 37]);
    for (let i = 0; i < frames.length; i++) {
      // Packets 44 and 45 arrive swapped: the jitter buffer puts them back in order.
      const send = i === 44 ? 45 : i === 45 ? 44 : i;
      if (!dropped.has(send)) caller.send(frames[send]!);
      await sleep(5);
      media.tick();
      await sleep(15);
    }
    await sleep(50);
    media.close();
    phone.close();
    const js = media.jitterStats;
    assert.equal(js.lost, 4, 'four packets lost');
    assert.ok((media.stats.fecFrames ?? 0) >= 1, `fec ${media.stats.fecFrames}`);
    assert.ok((media.stats.fecFrames ?? 0) + (media.stats.concealedFrames ?? 0) >= 4, 'every lost frame replaced');
    // No gap: the bot got a frame per tick once playout started, tone throughout (PLC/FEC keep it).
    const afterLoss = concat(toBot.slice(toBot.length - 30, toBot.length - 10));
    assert.ok(amplitudeAt(afterLoss, 16000, 1000) > 3000, `tone after the losses ${amplitudeAt(afterLoss, 16000, 1000)}`);
    assert.equal(media.stats.codecErrors, 0);
  });

  it('encodes bot audio in the pool: one packet per tick, timestamps +960, the tone decodes back', async () => {
    const { phone, media, marks } = await setup();
    const got: { seq: number; ts: number; pcm: Int16Array }[] = [];
    const dec = new LibopusDecoder({ sampleRate: 16000 });
    phone.on('message', (msg) => {
      const p = parseRtp(msg);
      got.push({ seq: p.sequenceNumber, ts: p.timestamp, pcm: dec.decode(p.payload).slice() });
    });
    media.queueBotAudio(sine(16000, 700, 16000 * 0.6, 8000));
    media.playout.mark('end');
    await playOut(media, 40);
    phone.close();
    dec.close();
    assert.ok(got.length >= 38, `${got.length} packets`);
    for (let i = 1; i < got.length; i++) {
      assert.equal((got[i]!.seq - got[i - 1]!.seq) & 0xffff, 1, `sequence at ${i}`);
      assert.equal((got[i]!.ts - got[i - 1]!.ts) >>> 0, 960, `timestamp at ${i}`);
    }
    const speech = concat(got.slice(5, 25).map((g) => g.pcm));
    assert.ok(amplitudeAt(speech, 16000, 700) > 4000, `700 Hz back at ${amplitudeAt(speech, 16000, 700)}`);
    const silence = concat(got.slice(34).map((g) => g.pcm));
    assert.ok(amplitudeAt(silence, 16000, 700) < 300, 'then silence');
    assert.deepEqual(marks, ['end'], 'the mark is reported once its audio left');
    assert.equal(media.stats.encodeLate, 0);
  });

  it('the route\'s opusComplexity reaches the encoder: 0 and 10 encode the same audio differently, and both decode to it', async () => {
    const payloads: Buffer[][] = [];
    for (const complexity of [0, 10]) {
      const { phone, media } = await setup({ complexity });
      const got: Buffer[] = [];
      const dec = new LibopusDecoder({ sampleRate: 16000 });
      const pcm: Int16Array[] = [];
      phone.on('message', (msg) => {
        const p = parseRtp(msg);
        got.push(Buffer.from(p.payload));
        pcm.push(dec.decode(p.payload).slice());
      });
      media.queueBotAudio(sine(16000, 700, 16000 * 0.5, 8000));
      await playOut(media, 20);
      phone.close();
      dec.close();
      assert.ok(got.length >= 18, `${got.length} packets at complexity ${complexity}`);
      const speech = concat(pcm.slice(5, 18));
      assert.ok(amplitudeAt(speech, 16000, 700) > 4000, `700 Hz back at ${amplitudeAt(speech, 16000, 700)}, complexity ${complexity}`);
      payloads.push(got.slice(5, 18));
    }
    const differ = payloads[0]!.filter((p, i) => !p.equals(payloads[1]![i] ?? Buffer.alloc(0))).length;
    assert.ok(differ > 0, 'the two complexities encoded every frame alike: the option did not reach the encoder');
  });

  it('a barge-in drops audio already read and in flight, and reports its marks as cleared', async () => {
    const { phone, media } = await setup();
    media.queueBotAudio(sine(16000, 700, 16000, 8000));
    media.playout.mark('m1');
    media.tick();
    await sleep(20);
    media.tick();
    const cleared = media.clear();
    assert.deepEqual(cleared, ['m1']);
    assert.equal(media.playout.buffered, 0);
    media.close();
    phone.close();
  });
});

function concat(frames: Int16Array[]): Int16Array {
  const out = new Int16Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}
