import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { ulawDecode, ulawEncode } from '../../../../codecs/g711.js';
import { G722Decoder, G722Encoder } from '../../../../codecs/g722.js';
import { resampleClip } from '../../../../codecs/resample.js';
import { parseRtp, rtpSerializedSize, serializeRtpInto } from '../../../../codecs/rtp.js';
import { amplitudeAt, sine } from '../../../fixtures/audio.js';
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

describe('CallMedia late-frame catch-up', () => {
  const open: { close(): unknown }[] = [];
  after(() => {
    for (const o of open) o.close();
  });

  /** A call whose packets land in `got`; ticks are driven by hand (the dgram backend sends at once). */
  async function call(catchUp: { playoutCatchUp?: boolean; playoutCatchUpSlots?: number } = {}): Promise<{ media: CallMedia; got: { seq: number; ts: number; level: number }[] }> {
    const caller = await bind();
    const got: { seq: number; ts: number; level: number }[] = [];
    const pcm = new Int16Array(160);
    caller.on('message', (msg) => {
      const p = parseRtp(msg);
      ulawDecode(p.payload, pcm);
      got.push({ seq: p.sequenceNumber, ts: p.timestamp, level: Math.max(...pcm.map(Math.abs)) });
    });
    const sock = await new DgramRtpIo().bind('127.0.0.1', 0);
    const media = new CallMedia(
      sock,
      sock.port,
      { codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: caller.address().port }, symmetric: false, playoutCapacity: 8000, botRate: 8000, ...catchUp },
      { onCallerAudio: () => undefined, onDtmf: () => undefined, onMark: () => undefined },
    );
    open.push(media, caller);
    return { media, got };
  }
  const frame = (level: number): Int16Array => new Int16Array(160).fill(level);
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 40));
  const near = (level: number, want: number): boolean => Math.abs(level - want) <= want / 16; // µ-law step

  it('sends a frame that lands just after its tick, mid-speech, at once in the slot it missed', async () => {
    const { media, got } = await call();
    media.queueBotAudio(frame(1000));
    media.tick(); // the bot is speaking
    media.tick(); // its next frame is late: the slot is held, nothing leaves
    await settle();
    assert.equal(got.length, 1, 'the held slot sent nothing yet');
    media.queueBotAudio(frame(2000)); // the late frame: leaves now, no tick
    await settle();
    assert.equal(got.length, 2);
    assert.equal(media.stats.playoutLateFrames, 1);
    media.queueBotAudio(frame(4000)); // the next frame, on time
    media.tick();
    await settle();
    assert.equal(got.length, 3);
    const [a, b, c] = got as [(typeof got)[0], (typeof got)[0], (typeof got)[0]];
    // Consecutive slots: one sequence number and 160 timestamp units apart, each with its own audio,
    // and the on-time frame was not queued behind the late one.
    assert.deepEqual([(b.seq - a.seq) & 0xffff, (c.seq - b.seq) & 0xffff], [1, 1]);
    assert.deepEqual([(b.ts - a.ts) >>> 0, (c.ts - b.ts) >>> 0], [160, 160]);
    assert.ok(near(a.level, 1000) && near(b.level, 2000) && near(c.level, 4000), JSON.stringify(got));
    assert.equal(media.playout.buffered, 0);
  });

  /** Sequence and timestamp steps from the first packet: consecutive slots, none skipped. */
  const steps = (got: { seq: number; ts: number }[]) => ({
    seq: got.map((g) => (g.seq - got[0]!.seq) & 0xffff),
    ts: got.map((g) => (g.ts - got[0]!.ts) >>> 0),
  });

  it('holds the next slot too for a frame later than a tick (40 ms by default): each late frame leaves at once, oldest first, in its own slot', async () => {
    const { media, got } = await call();
    media.queueBotAudio(frame(1000));
    media.tick(); // the bot is speaking
    media.tick(); // held
    media.tick(); // still nothing: this slot is held too
    await settle();
    assert.equal(got.length, 1, 'the held slots sent nothing yet');
    media.queueBotAudio(frame(2000)); // the older held slot leaves now
    await settle();
    assert.equal(got.length, 2);
    media.tick(); // the newer one still waits, and so does this tick's
    media.queueBotAudio(frame(3000));
    media.queueBotAudio(frame(4000)); // the bot catches up: both leave at once
    await settle();
    assert.equal(got.length, 4);
    media.queueBotAudio(frame(5000)); // on time
    media.tick();
    await settle();
    assert.deepEqual(steps(got), { seq: [0, 1, 2, 3, 4], ts: [0, 160, 320, 480, 640] });
    got.forEach((g, i) => assert.ok(near(g.level, 1000 * [1, 2, 3, 4, 5][i]!), JSON.stringify(got)));
    assert.equal(media.stats.playoutLateFrames, 3);
    assert.equal(media.playout.buffered, 0);
  });

  it('fills the held slots with silence when the last one it may hold is due and the bot has stopped: no timestamp is skipped', async () => {
    for (const [slots, ticks] of [[1, 3], [2, 4], [3, 5]] as const) {
      const { media, got } = await call({ playoutCatchUpSlots: slots });
      media.queueBotAudio(frame(1000));
      for (let t = 1; t < ticks; t++) media.tick(); // one frame, then `slots` slots held
      await settle();
      assert.equal(got.length, 1, `${slots}: held`);
      media.tick(); // nothing came: the held slots (silence), then this tick's slot (silence)
      await settle();
      assert.equal(got.length, ticks, `${slots}: all sent`);
      const want = Array.from({ length: ticks }, (_, i) => i);
      assert.deepEqual(steps(got), { seq: want, ts: want.map((i) => i * 160) });
      assert.deepEqual(got.slice(1).map((g) => g.level), want.slice(1).map(() => 0));
      assert.equal(media.stats.playoutLateFrames, 0);
      // Bot silent: the next dry tick sends silence on time, nothing is held.
      media.tick();
      await settle();
      assert.equal(got.length, ticks + 1);
    }
  });

  it('never holds before the bot speaks, and holds nothing when turned off', async () => {
    const { media, got } = await call({ playoutCatchUp: false });
    media.tick(); // silence on time
    media.queueBotAudio(frame(1000));
    media.tick();
    media.tick(); // dry: silence on time (catch-up off)
    await settle();
    assert.equal(got.length, 3);
    media.queueBotAudio(frame(2000)); // waits for the tick
    await settle();
    assert.equal(got.length, 3);
    media.tick();
    await settle();
    assert.equal(got.length, 4);
    assert.ok(near(got[3]!.level, 2000));
    assert.equal(media.stats.playoutLateFrames, 0);
  });
});

describe('CallMedia caller audio to the bot', () => {
  it('passes each packet once, in order: a duplicate or a late packet is dropped and counted, a restarted sender is followed', async () => {
    const phone = await bind();
    const sock = await new DgramRtpIo().bind('127.0.0.1', 0);
    const toBot: number[] = [];
    const media = new CallMedia(sock, sock.port, { codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: phone.address().port }, symmetric: false, playoutCapacity: 8000, botRate: 8000 }, {
      // The first sample tells which packet it was: each carries its own level.
      onCallerAudio: (pcm) => void toBot.push(pcm[0]!),
      onDtmf: () => undefined,
      onMark: () => undefined,
    });
    try {
      const level = (n: number) => 1000 * n;
      const send = async (ssrc: number, seq: number, n: number) => {
        const payload = new Uint8Array(160);
        ulawEncode(new Int16Array(160).fill(level(n)), payload);
        const header = { marker: false, payloadType: 0, sequenceNumber: seq & 0xffff, timestamp: (seq * 160) >>> 0, ssrc };
        const pkt = new Uint8Array(rtpSerializedSize(header, payload.length));
        serializeRtpInto(pkt, 0, header, payload);
        await new Promise((r) => phone.send(pkt, sock.port, '127.0.0.1', r));
        await new Promise((r) => setTimeout(r, 5));
      };
      // 65534, 65535, 0 (the wrap), a duplicate of 0, 2 (1 is late: its 20 ms are filled in first,
      // the last packet's audio fading out), then 1, late: dropped.
      await send(7, 65534, 1);
      await send(7, 65535, 2);
      await send(7, 0, 3);
      await send(7, 0, 3);
      await send(7, 2, 5);
      await send(7, 1, 4);
      // The sender restarts far back in its sequence space, then a new SSRC starts anywhere.
      await send(7, 30000, 6);
      await send(8, 29000, 7);
      await send(8, 29001, 8);
      for (let i = 0; i < 50 && toBot.length < 8; i++) await new Promise((r) => setTimeout(r, 10));
      const heard = toBot.map((v) => Math.round(v / 1000));
      assert.deepEqual(heard, [1, 2, 3, 3, 5, 6, 7, 8], 'the fill for 1 starts as 3 faded, at full level');
      assert.equal(media.stats.rtpLate, 2, 'the duplicate and the late packet');
      assert.equal(media.stats.rtpReceived, 9);
      assert.equal(media.stats.framesToBot, 7);
      assert.equal(media.stats.concealedFrames, 1, 'only the gap within a run: not the restart, not the new SSRC');
      // The receive statistics (RFC 3550 A.1) saw the same stream: SSRC 7's run 65534…2 (5 expected,
      // 6 received with the duplicate); 30000 alone is not a confirmed restart there, so it is not
      // counted; SSRC 8 is a new run of 2.
      const rx = media.peer.rx.total;
      assert.deepEqual([rx.expected, rx.received, rx.lost], [7, 8, 0]);
    } finally {
      media.close();
      phone.close();
    }
  });
  it('fills a short gap in the caller\'s timeline (the last audio fading out, then silence); not a long one, not a new talk spurt', async () => {
    const phone = await bind();
    const sock = await new DgramRtpIo().bind('127.0.0.1', 0);
    const frames: Int16Array[] = [];
    const media = new CallMedia(sock, sock.port, { codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: phone.address().port }, symmetric: false, playoutCapacity: 8000, botRate: 8000 }, {
      onCallerAudio: (pcm) => void frames.push(pcm.slice()),
      onDtmf: () => undefined,
      onMark: () => undefined,
    });
    try {
      const payload = new Uint8Array(160);
      ulawEncode(new Int16Array(160).fill(4000), payload);
      const send = async (seq: number, marker = false) => {
        const header = { marker, payloadType: 0, sequenceNumber: seq, timestamp: seq * 160, ssrc: 5 };
        const pkt = new Uint8Array(rtpSerializedSize(header, 160));
        serializeRtpInto(pkt, 0, header, payload);
        await new Promise((r) => phone.send(pkt, sock.port, '127.0.0.1', r));
        await new Promise((r) => setTimeout(r, 5));
      };
      // 0, 1, then 4: two packets lost → two frames filled before 4.
      await send(0);
      await send(1);
      await send(4);
      // 5, then 20: 14 packets (280 ms) lost → too long to fill.
      await send(5);
      await send(20);
      // 21, then 24 with the marker: a new talk spurt after silence suppression → no fill.
      await send(21);
      await send(24, true);
      for (let i = 0; i < 50 && frames.length < 9; i++) await new Promise((r) => setTimeout(r, 10));
      const decoded = new Int16Array(160);
      ulawDecode(payload, decoded);
      const level = decoded[0]!;
      const summary = frames.map((f) => (f.every((v) => v === level) ? 'audio' : f.every((v) => v === 0) ? 'silence' : 'fade'));
      assert.deepEqual(summary, ['audio', 'audio', 'fade', 'silence', 'audio', 'audio', 'audio', 'audio', 'audio']);
      const fade = frames[2]!;
      assert.equal(fade[0], level, 'the fade starts at the last audio\'s level');
      assert.ok(fade[40]! > 0 && fade[40]! < level, 'halfway down at 5 ms');
      assert.ok(fade.subarray(80).every((v) => v === 0), 'silent from 10 ms on');
      assert.equal(media.stats.concealedFrames, 2);
    } finally {
      media.close();
      phone.close();
    }
  });
});

describe('CallMedia with G.722', () => {
  it('plays 16 kHz bot audio as G.722 (160 bytes, timestamps 160 apart) with no resampling, and a fallback prompt up from 8 kHz', async () => {
    const caller = await bind();
    const got: { ts: number; pcm: Int16Array }[] = [];
    const dec = new G722Decoder();
    caller.on('message', (msg) => {
      const p = parseRtp(msg);
      const pcm = new Int16Array(320);
      assert.equal(dec.decode(p.payload, pcm), 320);
      got.push({ ts: p.timestamp, pcm });
    });
    const sock = await new DgramRtpIo().bind('127.0.0.1', 0);
    const media = new CallMedia(sock, sock.port, { codec: 'G722', payloadType: 9, remote: { address: '127.0.0.1', port: caller.address().port }, symmetric: false, playoutCapacity: 16000, botRate: 16000 }, {
      onCallerAudio: () => undefined,
      onDtmf: () => undefined,
      onMark: () => undefined,
    });
    try {
      assert.equal(media.playoutRate, 16000);
      // 10 frames of a 5 kHz tone (above what an 8 kHz path could carry), then 10 of an 8 kHz prompt tone.
      media.queueBotAudio(sine(16000, 5000, 3200, 8000));
      media.queuePlayout(resampleClip(sine(8000, 1000, 1600, 8000), 8000, 16000));
      for (let i = 0; i < 20; i++) media.tick();
      for (let i = 0; i < 50 && got.length < 20; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got.length, 20);
      for (let i = 1; i < 20; i++) assert.equal((got[i]!.ts - got[i - 1]!.ts) >>> 0, 160);
      const join = (from: number, to: number) => {
        const out = new Int16Array((to - from) * 320);
        got.slice(from, to).forEach((g, i) => out.set(g.pcm, i * 320));
        return out;
      };
      assert.ok(amplitudeAt(join(3, 10), 16000, 5000) > 5000, 'the 5 kHz tone came through');
      assert.ok(amplitudeAt(join(13, 20), 16000, 1000) > 5000, 'the prompt, upsampled to 16 kHz');
    } finally {
      media.close();
      caller.close();
    }
  });

  it('barge-in: the staged packet becomes silence encoded from the state before it, so the caller hears no transient', () => {
    // A socket whose staged packet has not left yet (native RTP I/O between commit and due time).
    let replaced: Uint8Array | undefined;
    const sent: Uint8Array[] = [];
    const socket = {
      port: 30000,
      onPacket: undefined,
      send: (p: Uint8Array, len: number) => void sent.push(p.slice(0, len)),
      sendNow: () => undefined,
      replace: (p: Uint8Array, len: number) => ((replaced = p.slice(0, len)), true),
      acceptOnly: () => undefined,
      receiveBuffer: () => 0,
      foreignDropped: 0,
      close: () => undefined,
    };
    const media = new CallMedia(socket, 30000, { codec: 'G722', payloadType: 9, remote: { address: '127.0.0.2', port: 40000 }, symmetric: false, playoutCapacity: 16000, botRate: 16000 }, {
      onCallerAudio: () => undefined,
      onDtmf: () => undefined,
      onMark: () => undefined,
    });
    media.queueBotAudio(sine(16000, 700, 960, 9000));
    media.tick(); // frame 1 leaves
    media.tick(); // frame 2 is staged …
    media.clear(); // … and replaced
    media.tick(); // holds its slot for a late frame (the bot was speaking) …
    media.tick(); // … and the next (catch-up holds up to 40 ms) …
    media.tick(); // … which get silence, then this tick's own
    media.close();
    // What the caller's decoder gets: frame 1, the replacement, the next silence. It must code as a
    // stream that had silence after frame 1 all along.
    const reference = new G722Encoder();
    const f1 = new Uint8Array(160);
    reference.encode(sine(16000, 700, 960, 9000).subarray(0, 320), f1);
    const quiet = [new Uint8Array(160), new Uint8Array(160)];
    for (const q of quiet) reference.encode(new Int16Array(320), q);
    assert.deepEqual(sent[0]!.subarray(12), f1);
    assert.ok(replaced, 'the staged packet was replaced');
    assert.deepEqual(replaced.subarray(12), quiet[0], 'the replacement codes silence from the state after frame 1');
    assert.deepEqual(sent[2]!.subarray(12), quiet[1], 'and the next packet carries on from it');
  });
});
