/**
 * A G.722 call end to end: the caller speaks wideband (a 6 kHz tone, which no 8 kHz codec can
 * carry) to a 16 kHz echo bot, and hears it back, as G.722, without the node ever narrowing it.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { G722Decoder, G722Encoder } from '../../codecs/g722.js';
import { parseRtp, serializeRtpInto } from '../../codecs/rtp.js';
import type { SipResponse } from '../../sip/message.js';
import { parseSdp } from '../../sip/sdp.js';
import { parseNameAddr } from '../../sip/uri.js';
import { amplitudeAt, sine } from '../fixtures/audio.js';
import { startEchoNode, type EchoNode } from './harness.js';
import { newBranch, sdpOffer } from './raw-uac.js';

const TONE_HZ = 6000;

describe('a G.722 call', { timeout: 60000 }, () => {
  let box: EchoNode;

  before(async () => {
    box = await startEchoNode({ nodeId: 'media-g722', rtpPortMin: 36600, rtpPortMax: 36699, codecs: ['G722', 'PCMU', 'PCMA'] }, { sampleRate: 16000 });
  });

  after(async () => {
    await box?.stop();
  });

  it('is answered with G.722 at payload type 9, and a 6 kHz tone reaches the 16 kHz bot and comes back', async () => {
    const rtp = createSocket('udp4');
    await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
    const back: Uint8Array[] = [];
    rtp.on('message', (msg) => {
      const p = parseRtp(msg);
      if (p.payloadType === 9) back.push(new Uint8Array(p.payload));
    });
    try {
      const s = box.uac.newCall();
      box.uac.sendRaw(box.uac.request('INVITE', 'g722', s, { body: sdpOffer(rtp.address().port, { payloads: '0 9' }) }));
      const res: SipResponse = await box.uac.finalResponse(s.branch);
      assert.equal(res.status, 200);
      const answer = parseSdp(Buffer.from(res.body).toString()).media[0]!;
      assert.deepEqual(answer.formats, ['9'], 'G.722 first in our preference, though the caller listed PCMU first');
      assert.deepEqual(answer.rtpmaps[0], { payloadType: 9, encodingName: 'G722', clockRate: 8000 });
      const toTag = parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';
      box.uac.sendRaw(box.uac.request('ACK', 'g722', { ...s, branch: newBranch() }, { toTag, cseqMethod: 'ACK' }));

      // 3 s of the tone: 20 ms frames, 320 samples at 16 kHz → 160 bytes, timestamps 160 apart.
      const enc = new G722Encoder();
      const t0 = performance.now();
      for (let f = 0; f < 150; f++) {
        const payload = new Uint8Array(160);
        enc.encode(sine(16000, TONE_HZ, 320, 8000, f * 320), payload);
        const pkt = new Uint8Array(172);
        serializeRtpInto(pkt, 0, { marker: f === 0, payloadType: 9, sequenceNumber: f, timestamp: f * 160, ssrc: 0x722 }, payload);
        rtp.send(pkt, parseSdp(Buffer.from(res.body).toString()).media[0]!.port, '127.0.0.1');
        await new Promise((r) => setTimeout(r, Math.max(0, t0 + (f + 1) * 20 - performance.now())));
      }
      await new Promise((r) => setTimeout(r, 300));

      // The bot heard 16 kHz frames with the tone in them.
      const heard = [...box.bot.calls.values()].find((c) => c.sampleRate === 16000);
      assert.ok(heard && heard.nonSilentFrames >= 130, `${heard?.nonSilentFrames} non-silent frames at the bot`);
      // What came back decodes to the tone, at about the level sent: wideband all the way.
      assert.ok(back.length >= 150, `${back.length} G.722 packets back`);
      const dec = new G722Decoder();
      const pcm = new Int16Array(back.length * 320);
      back.forEach((p, i) => dec.decode(p, pcm.subarray(i * 320, i * 320 + 2 * p.length)));
      let best = 0;
      for (let at = 0; at + 16000 <= pcm.length; at += 1600) best = Math.max(best, amplitudeAt(pcm.subarray(at, at + 16000), 16000, TONE_HZ));
      assert.ok(best > 4000, `the echoed 6 kHz tone at ${best.toFixed(0)} (sent at 8000)`);

      const bye = { ...s, branch: newBranch(), cseq: 2 };
      box.uac.sendRaw(box.uac.request('BYE', 'g722', bye, { toTag }));
      assert.equal((await box.uac.finalResponse(bye.branch)).status, 200);
      await box.events.until(() => box.events.of('answered').some((e) => e.data.codec === 'G722'), 2000, 'answered with G722');
    } finally {
      rtp.close();
    }
  });
});
