import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RtpReceiveStats } from '../../../codecs/rtp-stats.js';

/** A G.711 stream: 20 ms packets, 160 timestamp units each; arrivals in µs. */
const FRAME_US = 20000;
const FRAME_TS = 160;

function feed(rx: RtpReceiveStats, seqs: number[], opts: { ssrc?: number; startUs?: number; jitterUs?: (i: number) => number } = {}): void {
  const ssrc = opts.ssrc ?? 1;
  const start = opts.startUs ?? 1_000_000;
  seqs.forEach((seq, i) => {
    const arrival = (start + i * FRAME_US + (opts.jitterUs?.(i) ?? 0)) >>> 0;
    rx.packet(ssrc, seq & 0xffff, (seq * FRAME_TS) >>> 0, arrival, true);
  });
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('RtpReceiveStats (RFC 3550 A.1, A.3, A.8)', () => {
  it('counts an in-order stream as expected = received, no loss, no jitter when packets arrive on time', () => {
    const rx = new RtpReceiveStats(8000);
    feed(rx, range(100, 50));
    assert.deepEqual(rx.total, { expected: 50, received: 50, lost: 0, jitterMs: 0, jitterMaxMs: 0 });
  });

  it('counts the gaps as lost, across the sequence number wrap', () => {
    const rx = new RtpReceiveStats(8000);
    // 65530 … 65535, 0 … 9 with 65533, 2 and 3 missing: 16 sent, 13 received.
    const seqs = range(65530, 16).filter((s) => ![65533, 65538, 65539].includes(s));
    // Timestamps follow the sequence numbers, arrivals the send time: a gap is not jitter.
    seqs.forEach((seq) => rx.packet(1, seq & 0xffff, (seq * FRAME_TS) >>> 0, (seq - 65530) * FRAME_US, true));
    const t = rx.total;
    assert.equal(t.expected, 16);
    assert.equal(t.received, 13);
    assert.equal(t.lost, 3);
    assert.equal(t.jitterMs, 0);
  });

  it('counts a duplicate and a late packet as received without moving the highest sequence number', () => {
    const rx = new RtpReceiveStats(8000);
    feed(rx, [1, 2, 4, 4, 3, 5]);
    const t = rx.total;
    assert.equal(t.expected, 5);
    assert.equal(t.received, 6);
    assert.equal(t.lost, 0, 'the duplicate makes expected − received negative: reported as 0');
  });

  it('ignores one stray packet far ahead, and follows a sender that restarts there', () => {
    const rx = new RtpReceiveStats(8000);
    feed(rx, range(10, 10)); // 10…19
    assert.equal(rx.packet(1, 30000, 0, 0, true), false, 'a lone jump is not counted');
    feed(rx, [20, 21]); // the old run goes on
    assert.deepEqual([rx.total.expected, rx.total.received], [12, 12]);
    // A restart: 40000 then 40001 — the second confirms it; the first is not counted (A.1).
    assert.equal(rx.packet(1, 40000, 0, 0, true), false);
    feed(rx, range(40001, 5));
    const t = rx.total;
    assert.equal(t.expected, 12 + 5, 'the old run and the new run, each from its own first packet');
    assert.equal(t.received, 17);
    assert.equal(t.lost, 0);
  });

  it('starts a new run for a new SSRC and keeps the old run in the totals', () => {
    const rx = new RtpReceiveStats(8000);
    feed(rx, [1, 2, 3, 5], { ssrc: 7 }); // 5 expected, 4 received
    feed(rx, [900, 901, 902], { ssrc: 8, startUs: 9_000_000 });
    assert.deepEqual([rx.total.expected, rx.total.received, rx.total.lost], [8, 7, 1]);
  });

  it('measures interarrival jitter as A.8 does: packets alternately 2 ms early and 2 ms late converge on 4 ms', () => {
    const rx = new RtpReceiveStats(8000);
    // Transit alternates +2 ms / −2 ms: |D| = 4 ms = 32 units every packet; J → 32 units = 4 ms.
    feed(rx, range(0, 400), { jitterUs: (i) => (i % 2 === 0 ? 2000 : -2000) });
    const t = rx.total;
    assert.ok(Math.abs(t.jitterMs - 4) < 0.01, `jitter ${t.jitterMs} ms`);
    assert.ok(t.jitterMaxMs >= t.jitterMs && t.jitterMaxMs < 4.01);
    // After the stream steadies, the jitter decays (by 1/16 a packet) but its maximum stays.
    feed(rx, range(400, 100), { startUs: 1_000_000 + 400 * FRAME_US });
    assert.ok(rx.total.jitterMs < 0.01, `decayed to ${rx.total.jitterMs}`);
    assert.ok(rx.total.jitterMaxMs > 3.99);
  });

  it('reads jitter in the payload clock: 48 kHz Opus with the same arrival pattern gives the same ms', () => {
    const rx = new RtpReceiveStats(48000);
    for (let i = 0; i < 400; i++) rx.packet(1, i, i * 960, 1_000_000 + i * FRAME_US + (i % 2 === 0 ? 2000 : -2000), true);
    assert.ok(Math.abs(rx.total.jitterMs - 4) < 0.01, `jitter ${rx.total.jitterMs} ms`);
  });

  it('survives the arrival clock and the RTP timestamp wrapping (µs mod 2^32, ts mod 2^32)', () => {
    const rx = new RtpReceiveStats(8000);
    const startUs = 0x100000000 - 5 * FRAME_US;
    for (let i = 0; i < 20; i++) {
      const ts = (0x100000000 - 3 * FRAME_TS + i * FRAME_TS) >>> 0;
      rx.packet(1, i, ts, (startUs + i * FRAME_US) >>> 0, true);
    }
    assert.equal(rx.total.jitterMs, 0);
    assert.equal(rx.total.expected, 20);
  });

  it('leaves untimed packets (RFC 4733 events, which repeat their start timestamp) out of the jitter', () => {
    const rx = new RtpReceiveStats(8000);
    for (let i = 0; i < 20; i++) rx.packet(1, i, i < 10 ? i * FRAME_TS : 1600, 1_000_000 + i * FRAME_US, i < 10);
    assert.equal(rx.total.jitterMs, 0);
    assert.equal(rx.total.received, 20);
  });

  it('reports each interval since the previous one: loss and the highest jitter in it', () => {
    const rx = new RtpReceiveStats(8000);
    feed(rx, range(0, 100).filter((s) => s % 10 !== 5)); // 100 expected, 90 received
    const a = rx.interval();
    assert.deepEqual([a.expected, a.received, a.lost], [100, 90, 10]);
    feed(rx, range(100, 50), { startUs: 1_000_000 + 90 * FRAME_US });
    const b = rx.interval();
    assert.deepEqual([b.expected, b.received, b.lost], [50, 50, 0]);
    const c = rx.interval();
    assert.deepEqual([c.expected, c.received, c.lost], [0, 0, 0], 'nothing arrived since');
    assert.deepEqual([rx.total.expected, rx.total.received, rx.total.lost], [150, 140, 10]);
  });
});
