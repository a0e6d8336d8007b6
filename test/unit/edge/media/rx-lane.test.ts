/**
 * The G.711 receive lane (native/rx_lane.cc) against the JavaScript path it shortcuts: two calls
 * get the same caller packets — in order, lost, duplicated, reordered, DTMF events, a marker, a
 * 30 ms packet, a new SSRC, a sequence wrap, a stranger, RTCP — one through the lane (then
 * JavaScript for what it leaves, as NativeRtpIo delivers an arena), one through JavaScript only.
 * The bot must get the same frames, sample for sample, and the calls the same statistics, jitter
 * included; and the lane must have taken the plain packets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serializeRtpInto } from '../../../../codecs/rtp.js';
import { buildRtcpReport } from '../../../../codecs/rtcp.js';
import { serializeTelephoneEventInto } from '../../../../codecs/telephone-event.js';
import type { MediaStats } from '../../../../edge/api/events.js';
import { CallMedia, type G711Name } from '../../../../edge/media/call-media.js';
import { LANE_TAKEN, loadRxLane, RxLaneHost, type LaneSlot } from '../../../../edge/media/rx-lane.js';
import type { PacketHandler, RtpSocket } from '../../../../edge/media/rtp-socket.js';
import { fillArena } from '../../../fixtures/arena.js';
import { pcmuCallTo16kBot } from '../../../fixtures/lane-call.js';

const CALLER_IP = 0x7f000002;
const CALLER_PORT = 40000;
const STRANGER_IP = 0x7f000009;

/** The socket side CallMedia needs; what it sends is kept (copied), in order. */
function socketFor(lane: LaneSlot | undefined, sent: number[][] = []): RtpSocket & { onPacket: PacketHandler | undefined } {
  const keep = (p: Uint8Array, len: number) => void sent.push([...p.subarray(0, len)]);
  return { port: 30000, onPacket: undefined, lane, send: keep, sendNow: keep, replace: () => false, acceptOnly() {}, receiveBuffer: () => 0, foreignDropped: 0, close() {} };
}

interface Datagram {
  bytes: Uint8Array;
  ip: number;
  port: number;
  arrivalUs: number;
}

/** Deterministic noise: the same audio for both calls, different in every packet. */
function payload(seed: number, n: number): Uint8Array {
  const p = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    p[i] = x >>> 24;
  }
  return p;
}

function rtp(pt: number, seq: number, ts: number, ssrc: number, body: Uint8Array, marker = false): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  serializeRtpInto(out, 0, { marker, payloadType: pt, sequenceNumber: seq & 0xffff, timestamp: ts >>> 0, ssrc }, body);
  return out;
}

/** The caller's side of a call, every case the receive path knows, with arrival stamps that wobble. */
function script(pt: number): Datagram[] {
  const out: Datagram[] = [];
  let t = 1_000_000;
  const at = (i: number) => (t += 20000 + (((i * 7919) % 13) - 6) * 450);
  const ssrc = 0x1111;
  let seq = 65500; // wraps past 65535 on the way
  let ts = 1000;
  const send = (bytes: Uint8Array, ip = CALLER_IP) => out.push({ bytes, ip, port: CALLER_PORT, arrivalUs: at(out.length) >>> 0 });
  const audio = (n = 160, marker = false) => {
    send(rtp(pt, seq, ts, ssrc, payload(seq * 3 + ts, n), marker));
    seq++;
    ts += n;
  };
  for (let i = 0; i < 40; i++) audio(); // in order, across the wrap
  seq += 2; // two lost: a gap to fill
  ts += 320;
  for (let i = 0; i < 10; i++) audio();
  const dup = out[out.length - 1]!.bytes;
  send(dup); // a duplicate
  const later = rtp(pt, seq + 1, ts + 160, ssrc, payload(7, 160));
  const sooner = rtp(pt, seq, ts, ssrc, payload(8, 160));
  send(later); // reordered: the later one first
  send(sooner);
  seq += 2;
  ts += 320;
  for (let i = 0; i < 5; i++) audio();
  // A key press: RFC 4733 events share the sequence numbers, their timestamp is the event's start.
  const te = new Uint8Array(4);
  for (let i = 0; i < 3; i++) {
    serializeTelephoneEventInto(te, 0, { event: 5, end: i === 2, volume: 10, duration: 160 * (i + 1) });
    send(rtp(101, seq++, ts, ssrc, te, i === 0));
  }
  for (let i = 0; i < 5; i++) audio();
  audio(160, true); // a talk spurt's marker, in sequence
  for (let i = 0; i < 5; i++) audio();
  send(rtp(pt, seq, ts, 0x9999, payload(1, 160)), STRANGER_IP); // another source: ignored
  send(buildRtcpReport({ ssrc, reports: [], cname: 'x' })); // RTCP on the RTP port: skipped
  for (let i = 0; i < 10; i++) audio();
  // The caller restarts: a new SSRC and sequence.
  seq = 9000;
  ts = 777777;
  const restarted = (n: number) => {
    for (let i = 0; i < n; i++) {
      send(rtp(pt, seq, ts, 0x2222, payload(seq, 160)));
      seq++;
      ts += 160;
    }
  };
  restarted(30);
  // 30 ms: the bot's 20 ms frames no longer line up with packets, so JavaScript keeps the rest.
  send(rtp(pt, seq, ts, 0x2222, payload(seq, 240)));
  seq++;
  ts += 240;
  restarted(6);
  return out;
}

interface Run {
  frames: number[][];
  stats: MediaStats;
  rx: unknown;
  report: unknown;
}

function frameRecords(buf: Buffer | undefined, into: number[][]): void {
  if (!buf) return;
  for (let off = 0; off < buf.length; ) {
    const stream = buf.readUInt32LE(off);
    const len = buf.readUInt32LE(off + 4);
    assert.equal(stream, 7, 'the call’s stream id');
    const frame: number[] = [];
    for (let i = 0; i < len; i += 2) frame.push(buf.readInt16LE(off + 8 + i));
    into.push(frame);
    off += 8 + len;
  }
}

describe('the G.711 receive lane', () => {
  const Lane = loadRxLane();

  it('loads from the addon, with the block layout the TypeScript side expects', () => {
    assert.ok(!(Lane instanceof Error), `no lane: ${Lane instanceof Error ? Lane.message : ''}`);
  });

  for (const [codec, pt, botRate, direct] of [
    ['PCMU', 0, 16000, false],
    ['PCMA', 8, 8000, false],
    ['PCMU', 0, 24000, false],
    ['PCMU', 0, 16000, true],
    ['PCMA', 8, 8000, true],
  ] as [G711Name, number, 8000 | 16000 | 24000, boolean][]) {
    const via = direct ? 'a bot socket of its own: the direct batch' : 'a mux bot';
    it(`gives the bot the same frames and the call the same statistics as the JavaScript path (${codec}, ${botRate / 1000} kHz bot, ${via})`, () => {
      if (Lane instanceof Error) assert.fail(Lane.message);
      const arenas = [new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16)] as const;
      const host = new RxLaneHost(Lane, arenas[0], arenas[1], 8);
      const datagrams = script(pt);
      const options = { codec, payloadType: pt, telephoneEventPt: 101, remote: { address: '127.0.0.2', port: CALLER_PORT }, symmetric: true, playoutCapacity: 8000, botRate };
      const digits: string[][] = [[], []];

      const run = (useLane: boolean): Run & { taken: number } => {
        const frames: number[][] = [];
        const slot = useLane ? host.slot(3) : undefined;
        const socket = socketFor(slot);
        const out = useLane && !direct ? host.openOutput(() => true, () => undefined) : undefined;
        const media = new CallMedia(socket, 30000, options, {
          // The mux stream's fast path: a frame goes into the connection's batch (the lane's, for
          // the lane call). A bot socket of its own gets every frame here, the lane's too.
          onCallerAudio: (pcm) => (out ? out.add(7, pcm) : frames.push([...pcm])),
          onDtmf: (press) => digits[useLane ? 0 : 1]!.push(press.digit),
          onMark: () => undefined,
        });
        if (out) media.laneTo({ output: out, stream: 7 });
        if (useLane && direct) media.laneDirect();
        const u8 = new Uint8Array(arenas[0]);
        const view = new DataView(arenas[0]);
        const takenBefore = host.taken;
        // Arenas of five datagrams, delivered the way NativeRtpIo delivers one.
        for (let b = 0; b < datagrams.length; b += 5) {
          const batch = datagrams.slice(b, b + 5);
          if (!useLane) {
            for (const d of batch) socket.onPacket!(d.bytes, d.ip, d.port, d.arrivalUs);
            continue;
          }
          const { at, len } = fillArena(arenas[0], batch.map((d) => ({ ...d, slot: slot!.slot })));
          host.run(0, len);
          batch.forEach((d, i) => {
            if (view.getUint32(at[i]!, true) !== LANE_TAKEN) socket.onPacket!(u8.subarray(at[i]! + 16, at[i]! + 16 + d.bytes.length), d.ip, d.port, d.arrivalUs);
          });
          if (out) frameRecords(out.take(), frames);
        }
        const rx = media.peer.rx.total;
        const report = media.peer.rx.receptionReport();
        const stats = media.close();
        out?.close();
        return { frames, stats, rx, report, taken: host.taken - takenBefore };
      };

      const lane = run(true);
      const js = run(false);
      assert.equal(lane.frames.length, js.frames.length, 'frames to the bot');
      for (let i = 0; i < js.frames.length; i++) assert.deepEqual(lane.frames[i], js.frames[i], `frame ${i}`);
      assert.deepEqual(lane.rx, js.rx, 'receive statistics (RFC 3550), jitter included');
      assert.deepEqual(lane.report, js.report, 'the RTCP reception report');
      assert.deepEqual(lane.stats, js.stats, 'media counters');
      assert.deepEqual(digits[0], digits[1]);
      assert.deepEqual(digits[1], ['5'], 'the key press, on the JavaScript path');
      // What the lane took: the plain packets. Not the first of a stream (nor the rest of its arena),
      // a gap, a late one, an event, a stranger, RTCP, nor anything after the 30 ms packet.
      const audio = datagrams.length - 3 - 1 - 1;
      assert.ok(lane.taken >= 85 && lane.taken <= audio - 20, `the lane took ${lane.taken} of ${audio} audio packets`);
      assert.equal(js.stats.rtpUnexpectedSource, 1);
      assert.ok(js.stats.rtpLate! >= 2 && js.stats.concealedFrames! >= 2, JSON.stringify(js.stats));
    });
  }

  it('hands a per-call bot every frame when the direct batch fills, and grows the batch for the next arena', () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const arena = new ArrayBuffer(1 << 16);
    const host = new RxLaneHost(Lane, arena, new ArrayBuffer(1 << 16), 4);
    const slot = host.slot(2);
    const socket = socketFor(slot);
    const frames: number[] = [];
    const media = pcmuCallTo16kBot(socket, CALLER_PORT, (pcm) => frames.push(pcm.length));
    media.laneDirect();
    const view = new DataView(arena);
    const u8 = new Uint8Array(arena);
    let seq = 0;
    // One arena of `n` packets of the call, in sequence, delivered as NativeRtpIo does.
    const deliver = (n: number) => {
      const datagrams = Array.from({ length: n }, () => {
        const d = { slot: 2, ip: CALLER_IP, port: CALLER_PORT, bytes: rtp(0, seq, seq * 160, 0x1111, payload(seq, 160)), arrivalUs: seq * 20000 };
        seq++;
        return d;
      });
      const { at, len } = fillArena(arena, datagrams);
      const taken = host.run(0, len);
      for (const a of at) if (view.getUint32(a, true) !== LANE_TAKEN) socket.onPacket!(u8.subarray(a + 16, a + 16 + 172), CALLER_IP, CALLER_PORT, 0);
      return taken;
    };
    deliver(1); // the first packet sets the stream
    // 300 frames of 16 kHz (648 bytes a record) do not fit the first 64 KiB: the lane takes what
    // fits, JavaScript the rest, after the lane's frames.
    const first = deliver(300);
    assert.ok(first > 50 && first < 120, `the lane took ${first} of 300`);
    assert.equal(frames.length, 301);
    assert.equal(deliver(150), 150, 'the batch doubled: the next 150 all fit');
    assert.equal(frames.length, 451);
    assert.ok(frames.every((n) => n === 320));
    assert.equal(media.close().framesToBot, 451);
  });

  it("finds each of a connection's streams for the bot's frames, bound in any order, and none once unbound", () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const host = new RxLaneHost(Lane, new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16), 8);
    const out = host.openOutput(() => true, () => undefined);
    const call = (slot: number, stream: number) => {
      const media = new CallMedia(socketFor(host.slot(slot)), 30000, { codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.2', port: CALLER_PORT }, symmetric: false, playoutCapacity: 8000 * 5, botRate: 8000 }, { onCallerAudio: () => undefined, onDtmf: () => undefined, onMark: () => undefined });
      media.laneTo({ output: out, stream });
      return media;
    };
    // Bound out of id order (a connection gives ids in order; calls may reach the lane in another).
    const a = call(1, 7);
    const b = call(2, 3);
    const c = call(3, 9);
    const d = call(4, 12);
    const message = (streams: number[]) =>
      Buffer.concat(
        streams.map((id) => {
          const rec = Buffer.alloc(8 + 320);
          rec.writeUInt32LE(id, 0);
          rec.writeUInt32LE(320, 4);
          return rec;
        }),
      );
    const ids = (msg: Buffer) => Array.from({ length: msg.length / 328 }, (_, i) => msg.readUInt32LE(i * 328));
    let msg = message([3, 9, 7, 11, 9, 12, 7, 9, 1]);
    assert.equal(out.runBot(msg), 7);
    assert.deepEqual(ids(msg), [LANE_TAKEN, LANE_TAKEN, LANE_TAKEN, 11, LANE_TAKEN, LANE_TAKEN, LANE_TAKEN, LANE_TAKEN, 1], 'unknown streams left to JavaScript');
    assert.deepEqual([a, b, c, d].map((m) => m.playout.buffered), [320, 160, 480, 160], "each frame in its own call's playout");
    b.laneTo(undefined);
    d.close();
    msg = message([12, 3, 7, 9]);
    assert.equal(out.runBot(msg), 2);
    assert.deepEqual(ids(msg), [12, 3, LANE_TAKEN, LANE_TAKEN]);
    const e = call(5, 3); // a stream bound again (to another call)
    msg = message([3]);
    assert.equal(out.runBot(msg), 1);
    assert.deepEqual([e.playout.buffered, b.playout.buffered], [160, 160]);
    for (const m of [a, b, c, e]) m.close();
    out.close();
  });

  it('grows a batch past its first buffer, keeping every record in order', () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const host = new RxLaneHost(Lane, new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16), 4);
    const out = host.openOutput(() => true, () => undefined);
    // 300 frames of 20 ms at 16 kHz: 194,400 bytes, three times the first buffer.
    for (let i = 0; i < 300; i++) out.add(7, new Int16Array(320).fill(i));
    assert.equal(out.records, 300);
    const frames: number[][] = [];
    frameRecords(out.take(), frames);
    assert.deepEqual(frames.map((f) => f[0]), Array.from({ length: 300 }, (_, i) => i));
    assert.ok(frames.every((f, i) => f.length === 320 && f.every((v) => v === i)));
    assert.equal(out.take(), undefined, 'the batch starts afresh');
    out.close();
  });

  it('leaves a call to JavaScript while its bot batch does not take frames, and after laneTo(undefined)', () => {
    if (Lane instanceof Error) assert.fail(Lane.message);
    const arenas = [new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16)] as const;
    const host = new RxLaneHost(Lane, arenas[0], arenas[1], 4);
    let ready = false;
    const out = host.openOutput(() => ready, () => undefined);
    const slot = host.slot(1);
    const socket = socketFor(slot);
    let viaJs = 0;
    const media = pcmuCallTo16kBot(socket, CALLER_PORT, (pcm) => {
      viaJs++;
      out.add(7, pcm);
    });
    media.laneTo({ output: out, stream: 7 });
    const view = new DataView(arenas[0]);
    const u8 = new Uint8Array(arenas[0]);
    const deliver = (seq: number) => {
      const bytes = rtp(0, seq, seq * 160, 0x1111, payload(seq, 160));
      view.setUint32(0, 1, true);
      view.setUint32(4, CALLER_IP, true);
      view.setUint16(8, CALLER_PORT, true);
      view.setUint16(10, bytes.length, true);
      view.setUint32(12, seq * 20000, true);
      u8.set(bytes, 16);
      const took = host.run(0, 16 + bytes.length);
      // (A frame for a closed batch goes nowhere: `add` on a closed LaneOutput drops it, as the
      // stream of a closed connection does.)
      if (!took) socket.onPacket!(u8.subarray(16, 16 + bytes.length), CALLER_IP, CALLER_PORT, seq * 20000);
      return took;
    };
    assert.equal(deliver(0), 0, 'the first packet sets the stream');
    assert.equal(deliver(1), 0, 'the batch is not ready: JavaScript');
    ready = true;
    assert.equal(deliver(2), 1, 'ready: the lane');
    media.laneTo(undefined);
    assert.equal(deliver(3), 0, 'no target: JavaScript');
    assert.equal(viaJs, 3);
    const frames: number[][] = [];
    frameRecords(out.take(), frames);
    assert.equal(frames.length, 4, 'all four frames, in one batch');
    // The connection closes under the call; the next connection gets its batch index.
    media.laneTo({ output: out, stream: 7 });
    assert.equal(deliver(4), 1);
    out.take();
    out.close();
    const next = host.openOutput(() => true, () => undefined);
    assert.equal(next.index, out.index, 'the index is reused');
    assert.equal(deliver(5), 0, 'the call left the lane with its connection');
    assert.equal(next.take(), undefined, "the new connection's batch has none of its frames");
    assert.equal(media.close().framesToBot, 6);
  });

  for (const botRate of [16000, 8000] as const) {
    it(`queues the bot's frames for playout exactly as the JavaScript path does, from a mux batch and from a socket per call: bursts, late frames, marks, clear (${botRate / 1000} kHz bot)`, () => {
      if (Lane instanceof Error) assert.fail(Lane.message);
      const arenas = [new ArrayBuffer(1 << 16), new ArrayBuffer(1 << 16)] as const;
      const host = new RxLaneHost(Lane, arenas[0], arenas[1], 8);
      const frame = botRate / 50;
      // The bot's messages per tick: mostly a frame, now and then none (a late frame the tick
      // holds a slot for) or two, once none twice and then three (two slots held), a 1.2 s burst
      // (the ring and the downsampler's buffer grow), a short burst after the barge-in (the
      // frames that land after their ticks until then leave from JavaScript, in the held
      // slots), a 30 ms record, and frames of another stream.
      let level = 0;
      const pcm = (n: number) => Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin((level++ + i) * 0.05)));
      const script: Int16Array[][] = [];
      for (let t = 0; t < 220; t++) {
        if (t === 40) script.push([pcm(frame * 60)]);
        else if (t === 120) script.push([pcm((frame * 3) / 2)]);
        else if (t === 27 || t === 28) script.push([]);
        else if (t === 29 || t === 80) script.push([pcm(frame), pcm(frame), pcm(frame)]);
        else if (t % 17 === 5) script.push([]);
        else if (t % 17 === 6) script.push([pcm(frame), pcm(frame)]);
        else script.push([pcm(frame)]);
      }
      const message = (frames: Int16Array[], stream: number) => {
        const parts = frames.flatMap((f) => {
          const head = Buffer.alloc(8);
          head.writeUInt32LE(stream, 0);
          head.writeUInt32LE(f.byteLength, 4);
          return [head, Buffer.from(f.buffer, f.byteOffset, f.byteLength)];
        });
        // One byte in front: records at odd offsets, as a message can arrive in a larger buffer.
        return Buffer.concat([Buffer.alloc(1), ...parts]).subarray(1);
      };

      // 'mux': the bot's messages through a mux connection's batch (runBot); 'direct': a bot with
      // a socket of its own, each frame its own message (takeBotFrame); 'js': JavaScript only.
      const run = (mode: 'mux' | 'direct' | 'js') => {
        const sent: number[][] = [];
        const marks: string[] = [];
        const slot = mode !== 'js' ? host.slot(5) : undefined;
        const out = mode === 'mux' ? host.openOutput(() => true, () => undefined) : undefined;
        // The held slots' packets the lane's bot half fills go out at once, as the JavaScript path's do.
        if (mode !== 'js') {
          host.sendHeldWith((buf, bytes) => {
            for (let off = 0; off < bytes; off += 184) sent.push([...buf.subarray(off + 12, off + 184)]);
          });
        }
        const filled0 = host.heldSent;
        const media = new CallMedia(socketFor(slot, sent), 30000, { codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.2', port: CALLER_PORT }, symmetric: false, playoutCapacity: 8000 * 5, botRate }, {
          onCallerAudio: () => undefined,
          onDtmf: () => undefined,
          onMark: (name) => marks.push(name),
        });
        if (out) media.laneTo({ output: out, stream: 3 });
        if (mode === 'direct') media.laneDirect();
        const taken0 = host.botTaken;
        let taken = 0;
        script.forEach((frames, t) => {
          if (mode === 'direct') {
            for (const f of frames) {
              // At an odd offset of a larger buffer, as a WebSocket message can arrive.
              const bytes = Buffer.concat([Buffer.alloc(1), Buffer.from(f.buffer, f.byteOffset, f.byteLength)]).subarray(1);
              if (media.takeBotFrame(bytes)) taken++;
              else media.queueBotAudio(f);
            }
          } else {
            const msg = message(frames, 3);
            if (out) taken += out.runBot(msg);
            // What is left goes the way MuxConnection and the call hand it over.
            for (let off = 0; off < msg.length; ) {
              const id = msg.readUInt32LE(off);
              const len = msg.readUInt32LE(off + 4);
              if (id !== LANE_TAKEN) media.queueBotAudio(new Int16Array(new Uint8Array(msg.subarray(off + 8, off + 8 + len)).buffer));
              off += 8 + len;
            }
          }
          if (t === 30 || t === 60 || t === 150) media.playout.mark(`m${t}`);
          if (t === 70) for (const name of media.clear()) marks.push(`cleared ${name}`); // mid-burst
          media.tick();
          media.afterTick();
        });
        // A stream the lane does not know: left alone.
        if (out) assert.equal(out.runBot(message([pcm(frame)], 4)), 0);
        if (mode !== 'js') assert.equal(host.botTaken - taken0, taken, 'the host counts what the lane took');
        const stats = media.close();
        // A closed call's frames are left to JavaScript (which drops them).
        if (mode === 'direct') assert.equal(media.takeBotFrame(Buffer.alloc(frame * 2)), false);
        out?.close();
        return { sent, marks, stats, taken, filled: host.heldSent - filled0 };
      };

      const js = run('js');
      assert.deepEqual(js.marks, ['m30', 'cleared m60', 'm150'], 'marks: played, cleared with the burst, played');
      assert.ok(js.stats.playoutLateFrames! > 0, 'late frames were caught up');
      for (const mode of ['mux', 'direct'] as const) {
        const lane = run(mode);
        assert.equal(lane.sent.length, js.sent.length, `${mode}: packets to the caller`);
        // Payloads (the RTP headers' random SSRC and sequence differ between the two calls).
        for (let i = 0; i < js.sent.length; i++) assert.deepEqual(lane.sent[i]!.slice(12), js.sent[i]!.slice(12), `${mode}: packet ${i}`);
        assert.deepEqual(lane.marks, js.marks, `${mode}: marks`);
        assert.deepEqual(lane.stats, js.stats, `${mode}: media counters`);
        assert.ok(lane.taken > 150 && lane.taken < 240, `${mode}: the lane queued ${lane.taken} frames`);
        assert.ok(lane.filled > 0 && lane.filled < js.stats.playoutLateFrames!, `${mode}: the lane filled ${lane.filled} of the ${js.stats.playoutLateFrames} held slots`);
      }
    });
  }
});
