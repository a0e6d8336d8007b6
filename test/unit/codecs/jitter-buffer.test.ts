import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  JitterBuffer,
  JitterBufferOptionsError,
  resolveJitterBufferOptions,
  type JitterBufferOptions,
  type JitterOutput,
} from '../../../codecs/jitter-buffer.js';

/** A packet as sent: seq, timestamp (8 kHz, 160 a frame), and a payload naming its seq. */
interface Sent {
  seq: number;
  ts: number;
  arrival: number;
}

const payloadOf = (seq: number): Uint8Array => Uint8Array.of(seq & 0xff, (seq >> 8) & 0xff);
const seqOfPayload = (p: Uint8Array): number => p[0]! | (p[1]! << 8);

/** n packets from `seq0`/`ts0`, sent every 20 ms from t = 0, arriving after `delay(i)` ms. */
function stream(n: number, delay: (i: number) => number, seq0 = 1000, ts0 = 160000): Sent[] {
  const out: Sent[] = [];
  for (let i = 0; i < n; i++) out.push({ seq: (seq0 + i) & 0xffff, ts: (ts0 + i * 160) >>> 0, arrival: i * 20 + delay(i) });
  return out;
}

/** What one pop produced, compactly: 'f<seq>', 'l<seq>' (loss), 'u' (underrun) or 'w' (wait). */
function short(o: JitterOutput): string {
  if (o.type === 'frame') return `f${seqOfPayload(o.payload)}`;
  if (o.type === 'conceal') return o.reason === 'loss' ? `l${o.seq}` : 'u';
  return 'w';
}

/** Drives the buffer with a 20 ms tick: every packet due by `t` is pushed, then one pop. */
function run(jb: JitterBuffer, packets: readonly Sent[], untilMs: number): JitterOutput[] {
  const sorted = [...packets].sort((a, b) => a.arrival - b.arrival);
  const out: JitterOutput[] = [];
  let k = 0;
  for (let t = 0; t <= untilMs; t += 20) {
    while (k < sorted.length && sorted[k]!.arrival <= t) {
      const p = sorted[k++]!;
      jb.push(p.seq, p.ts, payloadOf(p.seq), p.arrival);
    }
    const o = jb.pop(t);
    // A payload is a view into the buffer's slab, valid for `capacity` more packets: keep a copy.
    if (o.type === 'frame') o.payload = o.payload.slice();
    if (o.type === 'conceal' && o.next) o.next = o.next.slice();
    out.push(o);
  }
  return out;
}

const played = (outs: JitterOutput[]): string[] => outs.map(short).filter((s) => s !== 'w');

describe('JitterBuffer', () => {
  it('plays an in-order stream in order after filling to its minimum depth', () => {
    const jb = new JitterBuffer();
    const outs = run(jb, stream(10, () => 5), 300);
    assert.deepEqual(outs.slice(0, 3).map(short), ['w', 'w', 'f1000']);
    assert.deepEqual(played(outs).slice(0, 10), ['f1000', 'f1001', 'f1002', 'f1003', 'f1004', 'f1005', 'f1006', 'f1007', 'f1008', 'f1009']);
    const first = outs.find((o) => o.type === 'frame');
    assert.ok(first?.type === 'frame' && first.seq === 1000 && first.timestamp === 160000);
    assert.equal(jb.stats.played, 10);
    assert.equal(jb.stats.lost, 0);
  });

  it('puts reordered packets back in order', () => {
    const jb = new JitterBuffer();
    const t = 0;
    for (const seq of [1, 3, 2, 5, 4]) assert.equal(jb.push(seq, seq * 160, payloadOf(seq), t), 'ok');
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(short(jb.pop(100 + i * 20)));
    assert.deepEqual(got, ['f1', 'f2', 'f3', 'f4', 'f5']);
  });

  it('back-fills a packet that overtook the first one before playout began', () => {
    const jb = new JitterBuffer();
    jb.push(11, 11 * 160, payloadOf(11), 0);
    jb.push(10, 10 * 160, payloadOf(10), 1);
    assert.deepEqual([short(jb.pop(40)), short(jb.pop(60))], ['f10', 'f11']);
  });

  it('drops duplicates, buffered or already played, and counts them', () => {
    const jb = new JitterBuffer();
    assert.equal(jb.push(1, 160, payloadOf(1), 0), 'ok');
    assert.equal(jb.push(1, 160, payloadOf(1), 1), 'duplicate');
    assert.equal(jb.push(2, 320, payloadOf(2), 20), 'ok');
    assert.equal(short(jb.pop(40)), 'f1');
    assert.equal(jb.push(1, 160, payloadOf(1), 41), 'duplicate');
    assert.equal(short(jb.pop(60)), 'f2');
    assert.equal(jb.stats.duplicates, 2);
    assert.equal(jb.stats.played, 2);
  });

  it('signals a lost packet as a concealment carrying the next payload for FEC, and drops it if it comes late', () => {
    const jb = new JitterBuffer();
    const packets = stream(8, () => 5).filter((p) => p.seq !== 1003);
    const outs = run(jb, packets, 200);
    assert.deepEqual(played(outs).slice(0, 8), ['f1000', 'f1001', 'f1002', 'l1003', 'f1004', 'f1005', 'f1006', 'f1007']);
    const loss = outs.find((o) => o.type === 'conceal');
    assert.ok(loss?.type === 'conceal');
    assert.equal(loss.timestamp, 160000 + 3 * 160);
    assert.ok(loss.next && seqOfPayload(loss.next) === 1004);
    assert.equal(jb.push(1003, 160000 + 3 * 160, payloadOf(1003), 300), 'late');
    assert.equal(jb.stats.lost, 1);
    assert.equal(jb.stats.late, 1);
  });

  it('follows sequence numbers and timestamps across their wrap, with reordering at the wrap', () => {
    const jb = new JitterBuffer();
    const packets = stream(8, (i) => (i === 2 ? 25 : 5), 65533, 4294967296 - 320);
    const outs = run(jb, packets, 300);
    assert.deepEqual(played(outs).slice(0, 8), ['f65533', 'f65534', 'f65535', 'f0', 'f1', 'f2', 'f3', 'f4']);
    const frames = outs.filter((o) => o.type === 'frame');
    assert.deepEqual(frames.slice(0, 4).map((o) => (o.type === 'frame' ? o.timestamp : -1)), [4294966976, 4294967136, 0, 160]);
    assert.equal(jb.stats.lost + jb.stats.late + jb.stats.duplicates, 0);
    assert.equal(jb.stats.jitterMs < 5, true);
  });

  it('grows its target with the jitter and, once grown, holds on underrun instead of losing late packets', () => {
    const jb = new JitterBuffer();
    // Every fourth packet is 70 ms late (it and those behind it arrive in a burst).
    const packets = stream(100, (i) => (i % 4 === 0 ? 70 : 5));
    const outs = run(jb, packets, 2400);
    const s = jb.stats;
    assert.ok(s.jitterMs > 15, `jitter ${s.jitterMs}`);
    assert.ok(s.targetDepthMs >= 80, `target ${s.targetDepthMs}`);
    // While the estimate learns (the first few late packets) some are lost; after that none.
    assert.ok(s.lost + s.late <= 8, `lost ${s.lost} late ${s.late}`);
    const frames = played(outs).filter((x) => x.startsWith('f'));
    const fromSecondHalf = packets.filter((p) => p.seq >= 1020).map((p) => `f${p.seq}`);
    assert.deepEqual(frames.slice(frames.indexOf('f1020')), fromSecondHalf);
  });

  it('shrinks back when the network calms down, dropping surplus frames', () => {
    const jb = new JitterBuffer({ shrinkAfterMs: 200 });
    const jittery = stream(60, (i) => (i % 3 === 0 ? 120 : 0));
    const calm = stream(250, () => 2, 1060, 160000 + 60 * 160).map((p) => ({ ...p, arrival: p.arrival + 1200 }));
    run(jb, [...jittery, ...calm], 1200);
    const grown = jb.stats;
    assert.ok(grown.targetDepthMs >= 100, `grown target ${grown.targetDepthMs}`);
    const before = jb.stats.discarded;
    // Re-run the calm part on the same buffer, continuing the clock.
    const sorted = calm;
    let k = 0;
    for (let t = 1220; t <= 6200; t += 20) {
      while (k < sorted.length && sorted[k]!.arrival <= t) {
        const p = sorted[k++]!;
        jb.push(p.seq, p.ts, payloadOf(p.seq), p.arrival);
      }
      jb.pop(t);
    }
    const calmStats = jb.stats;
    assert.equal(calmStats.targetDepthMs, 40, `calm target ${calmStats.targetDepthMs}`);
    assert.ok(calmStats.discarded > before, 'surplus frames were dropped');
    assert.ok(calmStats.depthMs <= 60, `depth ${calmStats.depthMs}`);
  });

  it('re-buffers after the stream pauses and plays the next talk spurt from its first packet', () => {
    const jb = new JitterBuffer();
    const first = stream(5, () => 5, 1);
    const second = stream(5, () => 5, 6, 160 * 1000).map((p) => ({ ...p, arrival: p.arrival + 2000 }));
    const outs = run(jb, [...first, ...second], 2400);
    const seqs = played(outs).filter((x) => x.startsWith('f'));
    assert.deepEqual(seqs, ['f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'f10']);
    // Each spurt's end costs at most maxDepthMs of underrun concealment before waiting; no losses.
    assert.ok(jb.stats.underruns <= 2 * 11, `underruns ${jb.stats.underruns}`);
    assert.equal(jb.stats.lost, 0);
  });

  it('ignores one stray jump but restarts on two consecutive packets of a new sequence', () => {
    const jb = new JitterBuffer();
    for (let s = 1; s <= 3; s++) jb.push(s, s * 160, payloadOf(s), s * 20);
    assert.equal(jb.push(40000, 999, payloadOf(40000), 80), 'jump');
    assert.equal(jb.push(4, 640, payloadOf(4), 80), 'ok');
    assert.equal(jb.push(30000, 5000, payloadOf(30000), 100), 'jump');
    assert.equal(jb.push(30001, 5160, payloadOf(30001), 120), 'ok');
    assert.equal(jb.stats.resets, 1);
    assert.equal(jb.push(30002, 5320, payloadOf(30002), 140), 'ok');
    const got = [short(jb.pop(160)), short(jb.pop(180))];
    assert.deepEqual(got, ['f30001', 'f30002']);
  });

  it('copies payloads, so the caller may reuse its receive buffer', () => {
    const jb = new JitterBuffer();
    const rx = new Uint8Array(2);
    for (let s = 1; s <= 3; s++) {
      rx.set(payloadOf(s));
      jb.push(s, s * 160, rx, 0);
    }
    assert.deepEqual([short(jb.pop(40)), short(jb.pop(60)), short(jb.pop(80))], ['f1', 'f2', 'f3']);
  });

  it('drops oversize packets and counts them', () => {
    const jb = new JitterBuffer({ maxPayloadBytes: 160 });
    assert.equal(jb.push(1, 160, new Uint8Array(161), 0), 'oversize');
    assert.equal(jb.stats.oversize, 1);
    assert.equal(jb.pop(100).type, 'wait');
  });

  it('validates its options naming the field', () => {
    const bad: [JitterBufferOptions, string][] = [
      [{ minDepthMs: 300 }, 'minDepthMs'],
      [{ capacity: 10 }, 'capacity'],
      [{ clockRate: 0 }, 'clockRate'],
      [{ clockRate: 8000, frameMs: 0.01 }, 'frameMs'],
    ];
    for (const [options, field] of bad) {
      assert.throws(() => resolveJitterBufferOptions(options), (err: unknown) => err instanceof JitterBufferOptionsError && err.field === field);
    }
  });
});
