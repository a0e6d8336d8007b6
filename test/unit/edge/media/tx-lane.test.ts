/**
 * The lane's tick (native/rx_lane.cc TickOne, the send half) against the JavaScript tick it
 * shortcuts: two calls get the same bot audio — frames on time, late, doubled, a burst, silence,
 * marks, a barge-in right after the lane staged a packet, DTMF, hold and resume, a prompt — one
 * ticked by the lane first (then JavaScript for what it leaves, as NativeClock runs a beat), one by
 * JavaScript only. The caller must get the same packets, header and payload, and the bot the same
 * marks; the calls must count the same; and the lane must have played most slots out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MediaStats } from '../../../../edge/api/events.js';
import { CallMedia, type G711Name } from '../../../../edge/media/call-media.js';
import type { PlayoutTrim } from '../../../../edge/media/playout.js';
import { loadRxLane, RxLaneHost, type LaneSlot } from '../../../../edge/media/rx-lane.js';
import { ClockSubscribers } from '../../../../edge/media/clock-subscribers.js';
import type { RtpSocket } from '../../../../edge/media/rtp-socket.js';

const CALLER = { address: '127.0.0.2', port: 40000 };

/**
 * A socket that keeps what it sends, the way the native engine does: `send` stages for this tick,
 * `replace` rewrites this tick's staged packet (same length), `sendNow` leaves at once.
 */
class Wire {
  readonly sent: number[][] = [];
  /** How each packet of `sent` left: at its tick's due time, or at once (a held slot's late frame). */
  readonly how: ('tick' | 'now')[] = [];
  #staged = -1;

  beginTick(): void {
    this.#staged = -1;
  }

  stage(bytes: Uint8Array): void {
    this.#staged = this.sent.length;
    this.sent.push([...bytes]);
    this.how.push('tick');
  }

  now(bytes: Uint8Array): void {
    this.sent.push([...bytes]);
    this.how.push('now');
  }

  socket(lane: LaneSlot | undefined): RtpSocket {
    return {
      port: 30000,
      onPacket: undefined,
      lane,
      send: (p, len) => this.stage(p.subarray(0, len)),
      sendNow: (p, len) => this.now(p.subarray(0, len)),
      replace: (p, len) => {
        if (this.#staged < 0 || this.sent[this.#staged]!.length !== len) return false;
        this.sent[this.#staged] = [...p.subarray(0, len)];
        return true;
      },
      acceptOnly() {},
      receiveBuffer: () => 0,
      foreignDropped: 0,
      close() {},
    };
  }
}

/** Each packet with its sequence number and timestamp relative to the first (each call picks its own). */
function normalised(sent: number[][]): number[][] {
  const seq = (p: number[]) => (p[2]! << 8) | p[3]!;
  const ts = (p: number[]) => ((p[4]! << 24) | (p[5]! << 16) | (p[6]! << 8) | p[7]!) >>> 0;
  const first = sent[0]!;
  return sent.map((p) => [p[1]!, (seq(p) - seq(first)) & 0xffff, (ts(p) - ts(first)) >>> 0, ...p.slice(12)]);
}

/** The records the lane's tick staged: slot u32, ip u32, port u16, len u16, packet. */
function records(buf: Uint8Array, bytes: number, slot: number): Uint8Array[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Uint8Array[] = [];
  for (let off = 0; off < bytes; ) {
    assert.equal(view.getUint32(off, true), slot, 'the call’s slot');
    assert.equal(view.getUint32(off + 4, true), 0x7f000002, 'to the caller’s address');
    assert.equal(view.getUint16(off + 8, true), CALLER.port);
    const len = view.getUint16(off + 10, true);
    out.push(buf.slice(off + 12, off + 12 + len));
    off += 12 + ((len + 3) & ~3);
  }
  return out;
}

interface Run {
  sent: number[][];
  how: ('tick' | 'now')[];
  marks: string[];
  stats: MediaStats;
  laneTicks: number;
  /** Slots the lane's tick held for a late frame (no packet yet; the clock skips the JavaScript tick). */
  laneHeld: number;
  /** Packets of held slots the lane's bot half filled and sent at once. */
  laneFilled: number;
  /** Calls of the call's JavaScript tick. */
  jsTicks: number;
  /** rtpSent and octetsSent, every 50 ticks. */
  counted: number[];
}

describe('the lane’s tick (the send half)', () => {
  const Lane = loadRxLane();

  for (const [codec, pt, botRate, trim] of [
    ['PCMU', 0, 16000, 'silence'],
    ['PCMA', 8, 8000, 'any'],
    ['PCMU', 0, 8000, 'off'],
  ] as [G711Name, number, 8000 | 16000, PlayoutTrim][]) {
    it(`sends the caller the same packets as the JavaScript tick (${codec}, ${botRate / 1000} kHz bot, trim ${trim})`, () => {
      if (Lane instanceof Error) assert.fail(Lane.message);
      const host = new RxLaneHost(Lane, new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16), 8);
      const frame = botRate / 50;
      let phase = 0;
      const tone = (n: number) => Int16Array.from({ length: n }, (_, i) => Math.round(6000 * Math.sin((phase++ + i) * 0.07)));
      // The bot's audio per tick: a live stream with jitter (none, two; twice none, then three:
      // two slots held; three times none: more than it may hold), a standing cushion the trim can shave, three frames of every seven
      // silent (the silence trim's gaps), a 1 s burst.
      const script: Int16Array[][] = [];
      for (let t = 0; t < 400; t++) {
        const f = () => (t % 7 >= 3 && t % 7 <= 5 ? new Int16Array(frame) : tone(frame));
        // Jitter before t = 60 and after 260; in between one extra frame stands as a cushion.
        const jitter = t < 60 || t > 260;
        if (t === 200) script.push([tone(frame * 50)]);
        else if (t === 35 || t === 36 || t === 300 || t === 301) script.push([]);
        else if (t === 37 || t === 302) script.push([f(), f(), f()]);
        // A stall longer than the slots it may hold (40 ms): the third tick sends them.
        else if (t >= 230 && t <= 232) script.push([]);
        else if (t === 233) script.push([f(), f(), f(), f()]);
        else if (jitter && t % 11 === 9) script.push([]);
        else if ((jitter && t % 11 === 10) || t === 60) script.push([f(), f()]);
        else script.push([f()]);
      }

      // 'js': JavaScript only. 'lane': the lane's tick first, the bot's frames queued by JavaScript.
      // 'lane+bot': also each bot frame offered to the lane's bot half first (a bot with a socket of
      // its own: CallMedia.takeBotFrame), which fills held slots itself and sends their packets at once.
      const run = (mode: 'js' | 'lane' | 'lane+bot'): Run => {
        const useLane = mode !== 'js';
        const wire = new Wire();
        if (mode === 'lane+bot') host.sendHeldWith((buf, bytes) => records(buf, bytes, 2).forEach((p) => wire.now(p)));
        const marks: string[] = [];
        let now = 0; // marks are compared with the tick that reported them
        const slot = useLane ? host.slot(2) : undefined;
        const media = new CallMedia(
          wire.socket(slot),
          30000,
          { codec, payloadType: pt, telephoneEventPt: 101, remote: CALLER, symmetric: false, playoutCapacity: 8000 * 5, botRate, playoutTrim: trim },
          { onCallerAudio: () => undefined, onDtmf: () => undefined, onMark: (name) => marks.push(`${name}@${now}`) },
        );
        if (mode === 'lane+bot') media.laneDirect();
        const txBefore = host.txTaken;
        const heldBefore = host.txHeld;
        const filledBefore = host.heldSent;
        // As NativeClock runs a beat: the call's JavaScript tick only when the lane's left the slot.
        const clock = { errors: 0, onFirstError: (err: unknown) => assert.fail(String(err)) };
        let jsTicks = 0;
        const counted: number[] = [];
        const subscribers = new ClockSubscribers();
        subscribers.add(() => (jsTicks++, media.tick()), undefined, { skip: media.tickSkip });
        script.forEach((frames, t) => {
          now = t;
          for (const f of frames) {
            if (mode !== 'lane+bot' || !media.takeBotFrame(new Uint8Array(f.buffer, f.byteOffset, f.byteLength))) media.queueBotAudio(f);
          }
          // (m36: the first late frame after two held slots reaches it.)
          if (t === 30 || t === 36 || t === 120 || t === 205 || t === 250) media.playout.mark(`m${t}`);
          if (t === 290) assert.ok(media.sendDtmf('12', 100));
          if (t === 330) media.update({}, false); // hold: the clock runs, nothing is sent
          if (t === 340) media.update({}, true);
          if (t === 370) media.queuePlayout(new Int16Array(800).fill(1000)); // a prompt, at the codec's rate
          wire.beginTick();
          if (useLane) host.tick((buf, bytes) => records(buf, bytes, 2).forEach((p) => wire.stage(p)));
          subscribers.tick(clock);
          // Barge-in right after a tick, mid-burst: the staged packet turns to silence.
          if (t === 210 || t === 211) for (const name of media.clear()) marks.push(`cleared ${name}`);
          media.afterTick();
          // What an RTCP sender report reads mid-call.
          if (t % 50 === 49) counted.push(media.stats.rtpSent, media.peer.octetsSent);
        });
        const stats = media.close();
        return { sent: wire.sent, how: wire.how, marks, stats, laneTicks: host.txTaken - txBefore, laneHeld: host.txHeld - heldBefore, laneFilled: host.heldSent - filledBefore, jsTicks, counted };
      };

      const js = run('js');
      const b = normalised(js.sent);
      for (const mode of ['lane', 'lane+bot'] as const) {
        const lane = run(mode);
        assert.equal(lane.sent.length, js.sent.length, `${mode}: packets to the caller`);
        const a = normalised(lane.sent);
        for (let i = 0; i < b.length; i++) assert.deepEqual(a[i], b[i], `${mode}: packet ${i}`);
        assert.deepEqual(lane.how, js.how, `${mode}: each packet left when the JavaScript tick's did (at its tick, or at once)`);
        assert.deepEqual(lane.marks, js.marks, `${mode}: marks`);
        assert.deepEqual(lane.stats, js.stats, `${mode}: media counters`);
        assert.deepEqual(lane.counted, js.counted, `${mode}: packets and octets sent, read during the call`);
        assert.equal(lane.jsTicks, script.length - lane.laneTicks - lane.laneHeld, `${mode}: the clock skipped the JavaScript tick of every slot the lane played out or held`);
        assert.ok(lane.laneTicks > 250, `${mode}: the lane played out ${lane.laneTicks} of ${lane.sent.length} packets`);
        assert.ok(lane.laneHeld > 0, `${mode}: the lane's tick held slots for late frames`);
        if (mode === 'lane+bot') assert.ok(lane.laneFilled > 0, `${mode}: the lane's bot half filled held slots (${lane.laneFilled})`);
        else assert.equal(lane.laneFilled, 0);
      }
      assert.equal(js.sent[0]![1]! & 0x80, 0x80, 'the first packet carries the marker');
      assert.ok(js.sent.slice(1).every((p) => (p[1]! & 0x80) === 0 || (p[1]! & 0x7f) === 101), 'no other audio packet does');
      assert.equal(js.jsTicks, script.length);
      assert.ok(js.marks.some((m) => m.startsWith('m30@')) && js.marks.some((m) => m.startsWith('cleared')), js.marks.join());
      assert.ok(js.stats.playoutLateFrames! > 0, 'late frames were caught up');
      if (trim !== 'off') assert.ok(js.stats.playoutTrimmedSamples > 0, 'the trim shaved the cushion');
      // A silenced packet: the one staged at the barge-in.
      const silence = codec === 'PCMU' ? 0xff : 0xd5;
      assert.ok(b.some((p) => p.slice(3).every((v) => v === silence)), 'silence was sent');
      assert.equal(js.laneTicks, 0);
    });
  }

  it('plays out nothing for a call the clock does not tick yet (a re-INVITE or DTMF before the answer)', () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const host = new RxLaneHost(Lane, new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16), 4);
    const wire = new Wire();
    const media = new CallMedia(wire.socket(host.slot(1)), 30000, { codec: 'PCMU', payloadType: 0, telephoneEventPt: 101, remote: CALLER, symmetric: false, playoutCapacity: 8000, botRate: 8000 }, { onCallerAudio: () => undefined, onDtmf: () => undefined, onMark: () => undefined });
    media.queueBotAudio(new Int16Array(480).fill(3000));
    let bytes = 0;
    const tick = () => host.tick((_buf, n) => (bytes += n));
    media.update({}, true);
    tick();
    assert.equal(bytes, 0, 'a re-INVITE, but the clock does not tick the call: nothing from the lane');
    assert.ok(media.sendDtmf('1', 40));
    tick();
    assert.equal(bytes, 0, 'nor after a DTMF request');
    for (let i = 0; i < 12 && bytes === 0; i++) {
      media.tick(); // the digit, its gap, then audio: the lane takes over once the digit is out
      tick();
    }
    assert.equal(bytes, 184, 'ticked: the lane plays the next slot out');
    assert.ok(wire.sent.some((p) => (p[1]! & 0x7f) === 101), 'the digit went out from JavaScript');
    media.close();
  });

  it('sends to the SDP’s address until symmetric RTP latches, then to the caller’s source', () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const host = new RxLaneHost(Lane, new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16), 4);
    const wire = new Wire();
    const socket = wire.socket(host.slot(3));
    const media = new CallMedia(socket, 30000, { codec: 'PCMU', payloadType: 0, remote: CALLER, symmetric: true, playoutCapacity: 8000, botRate: 8000 }, { onCallerAudio: () => undefined, onDtmf: () => undefined, onMark: () => undefined });
    const to: string[] = [];
    const tick = () =>
      host.tick((buf, bytes) => {
        const view = new DataView(buf.buffer, buf.byteOffset, bytes);
        for (let off = 0; off < bytes; off += 184) to.push(`${view.getUint32(off + 4, true).toString(16)}:${view.getUint16(off + 8, true)}`);
      });
    media.tick(); // JavaScript's first tick opens the lane's
    tick();
    // The caller's first packet, from behind a NAT: another address and port.
    const pkt = new Uint8Array(172);
    pkt[0] = 0x80;
    socket.onPacket!(pkt, 0x0a000001, 50000, 0);
    media.tick();
    tick();
    assert.deepEqual(to, ['7f000002:40000', 'a000001:50000']);
    media.close();
  });

  it('stops at a full buffer, leaving the other calls to JavaScript', () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const host = new RxLaneHost(Lane, new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16), 400);
    const wire = new Wire();
    const calls = Array.from({ length: 300 }, (_, i) => {
      const media = new CallMedia(wire.socket(host.slot(i)), 30000, { codec: 'PCMU', payloadType: 0, remote: CALLER, symmetric: false, playoutCapacity: 8000, botRate: 8000 }, { onCallerAudio: () => undefined, onDtmf: () => undefined, onMark: () => undefined });
      media.tick(); // the first tick is JavaScript's: it opens the lane to the call
      return media;
    });
    const staged: number[] = [];
    host.tick((_buf, bytes) => staged.push(bytes / 184));
    for (const media of calls) media.tick();
    // The first buffer holds 256 records: the other 44 calls were ticked by JavaScript.
    assert.deepEqual(staged, [256]);
    assert.equal(wire.sent.length, 300 + 44);
    host.tick((_buf, bytes) => staged.push(bytes / 184));
    assert.deepEqual(staged, [256, 300], 'the buffer grew');
    for (const media of calls) media.close();
  });
});
