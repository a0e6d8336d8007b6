import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { ulawDecode } from '../../../../codecs/g711.js';
import { parseRtp } from '../../../../codecs/rtp.js';
import { CallMedia } from '../../../../edge/media/call-media.js';
import { DgramRtpIo } from '../../../../edge/media/rtp-io.js';

const bind = async (): Promise<Socket> => {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
};

describe('CallMedia sending to the caller', () => {
  let caller: Socket;
  let media: CallMedia;
  const got: { seq: number; level: number }[] = [];

  before(async () => {
    caller = await bind();
    const pcm = new Int16Array(160);
    caller.on('message', (msg) => {
      const p = parseRtp(msg);
      ulawDecode(p.payload, pcm);
      got.push({ seq: p.sequenceNumber, level: Math.max(...pcm.map(Math.abs)) });
    });
    // The dgram backend sends as tick() runs, so five ticks in a row are five sends.
    const sock = await new DgramRtpIo().bind('127.0.0.1', 0);
    media = new CallMedia(sock, sock.port, { codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: caller.address().port }, symmetric: false, playoutCapacity: 8000, botRate: 8000 }, {
      onCallerAudio: () => undefined,
      onDtmf: () => undefined,
      onMark: () => undefined,
    });
  });

  after(() => {
    media.close();
    caller.close();
  });

  it('sends every frame of a catch-up burst, each with its own audio and sequence number', async () => {
    // Five frames of distinct levels, then five ticks in one turn of the event loop (what the
    // ticker does after a stall): the packets must not share one buffer.
    const levels = [1000, 2000, 4000, 8000, 16000];
    for (const level of levels) media.queueBotAudio(new Int16Array(160).fill(level));
    for (let i = 0; i < 5; i++) media.tick();
    for (let i = 0; i < 50 && got.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, 5);
    const seqs = got.map((g) => g.seq);
    assert.equal(new Set(seqs).size, 5, `sequence numbers ${seqs.join(',')}`);
    // µ-law is lossy: compare levels within its quantisation step.
    got.forEach((g, i) => assert.ok(Math.abs(g.level - levels[i]!) <= levels[i]! / 16, `frame ${i}: ${g.level} vs ${levels[i]}`));
  });
});
