import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { buildRtcpReport, buildRtcpReportInto, encodeCname, ntpFromUnixMs, rtcpReportSize, ntpMiddle32, parseRtcp, RtcpParseError, rttMs, type ReportBlock } from '../../../codecs/rtcp.js';
import { RtpReceiveStats } from '../../../codecs/rtp-stats.js';

const block: ReportBlock = { ssrc: 0xdeadbeef, fractionLost: 26, cumulativeLost: 1234, extendedHighestSeq: 0x1ffff, jitter: 80, lastSr: 0x12345678, delaySinceLastSr: 65536 };

describe('RTCP (RFC 3550 §6.4)', () => {
  it('writes a compound SR + SDES CNAME (+ BYE) that reads back field for field', () => {
    const sender = { ntpSeconds: 3_900_000_000, ntpFraction: 0x80000000, rtpTimestamp: 0xfffffff0, packetCount: 250, octetCount: 40000 };
    const bytes = buildRtcpReport({ ssrc: 0x01020304, sender, reports: [block], cname: 'call-1@botedge', bye: true });
    assert.equal(bytes.length % 4, 0, 'whole 32-bit words');
    // SR: 28 + one 24-byte block; SDES: 8 + (2 + 14 + 1 → 20); BYE: 8.
    assert.equal(bytes.length, 52 + 28 + 8);
    assert.equal(bytes[0], 0x81, 'V=2, one report block');
    assert.equal(bytes[1], 200);
    const packets = parseRtcp(bytes);
    assert.deepEqual(packets[0], { type: 'sr', ssrc: 0x01020304, sender, reports: [block] });
    assert.deepEqual(packets[1], { type: 'other', packetType: 202 });
    assert.deepEqual(packets[2], { type: 'bye', ssrcs: [0x01020304] });
    // The CNAME item: type 1, its length, the text, then a null item.
    const text = new TextDecoder().decode(bytes.subarray(62, 62 + 14));
    assert.deepEqual([bytes[60], bytes[61], text, bytes[76]], [1, 14, 'call-1@botedge', 0]);
  });

  it('writes the same bytes into a reused buffer, padding zeroed over what the last report left, and refuses one too small', () => {
    const sender = { ntpSeconds: 3_900_000_000, ntpFraction: 0x80000000, rtpTimestamp: 0xfffffff0, packetCount: 250, octetCount: 40000 };
    const cname = encodeCname('call-1@botedge');
    const out = new Uint8Array(rtcpReportSize({ sender, reports: [block], cname, bye: true })).fill(0xee);
    const view = new DataView(out.buffer);
    for (const [reports, bye] of [[[block], true], [[], false], [[block], false]] as const) {
      const len = buildRtcpReportInto(view, { ssrc: 0x01020304, sender, reports, cname, bye });
      assert.deepEqual(out.subarray(0, len), buildRtcpReport({ ssrc: 0x01020304, sender, reports: [...reports], cname: 'call-1@botedge', bye }), `${reports.length} block(s), bye ${bye}`);
      out.fill(0xee, len);
    }
    assert.throws(() => buildRtcpReportInto(new DataView(new ArrayBuffer(40)), { ssrc: 1, sender, reports: [block], cname }), /RTCP report of 80 bytes does not fit in 40/);
  });

  it('writes an RR when it has no sender info, and carries a negative cumulative loss (duplicates)', () => {
    const bytes = buildRtcpReport({ ssrc: 7, reports: [{ ...block, cumulativeLost: -3 }], cname: 'x' });
    const rr = parseRtcp(bytes)[0]!;
    assert.equal(rr.type, 'rr');
    assert.equal(rr.type === 'rr' && rr.reports[0]!.cumulativeLost, -3);
  });

  it('refuses what is not RTCP with a typed error naming where', () => {
    assert.throws(() => parseRtcp(Uint8Array.of(0x80, 200)), (e: unknown) => e instanceof RtcpParseError && e.kind === 'truncated' && e.offset === 0);
    assert.throws(() => parseRtcp(Uint8Array.of(0x40, 201, 0, 1, 0, 0, 0, 1)), (e: unknown) => e instanceof RtcpParseError && e.kind === 'bad-version');
    // An RR that says it is 3 words long but claims a report block (6 more words).
    assert.throws(() => parseRtcp(Uint8Array.of(0x81, 201, 0, 1, 0, 0, 0, 1)), (e: unknown) => e instanceof RtcpParseError && e.kind === 'bad-length');
    // The second packet of a compound runs past the end.
    const ok = buildRtcpReport({ ssrc: 1, reports: [], cname: 'a' });
    const cut = new Uint8Array([...ok, 0x80, 201, 0, 9, 0, 0]);
    assert.throws(() => parseRtcp(cut), (e: unknown) => e instanceof RtcpParseError && e.kind === 'truncated' && e.offset === ok.length);
  });

  it('converts wall-clock time to NTP and takes the round trip from LSR and DLSR', () => {
    const ntp = ntpFromUnixMs(Date.UTC(2026, 11, 1, 12, 0, 0, 250));
    assert.equal(ntp.ntpSeconds, Date.UTC(2026, 11, 1, 12, 0, 0) / 1000 + 2208988800);
    assert.equal(ntp.ntpFraction, 0x40000000, '250 ms is a quarter second');
    const sentAt = ntpMiddle32(ntp.ntpSeconds, ntp.ntpFraction);
    // The caller held our SR for 1 s, and its report reached us 1.08 s after we sent the SR: 80 ms.
    const back = ntpFromUnixMs(Date.UTC(2026, 11, 1, 12, 0, 1, 330));
    const rtt = rttMs({ ...block, lastSr: sentAt, delaySinceLastSr: 65536 }, ntpMiddle32(back.ntpSeconds, back.ntpFraction))!;
    assert.ok(Math.abs(rtt - 80) < 0.1, `rtt ${rtt}`);
    assert.equal(rttMs({ ...block, lastSr: 0 }, 12345), undefined, 'no SR of ours echoed yet');
    // A loopback path is shorter than the clocks' millisecond granularity: a millisecond below zero
    // is a round trip of 0 (the rtcp integration test met it), 20 ms below is a wrong clock.
    const at = ntpMiddle32(back.ntpSeconds, back.ntpFraction);
    assert.equal(rttMs({ ...block, lastSr: sentAt, delaySinceLastSr: at - sentAt + 66 }, at), 0);
    assert.equal(rttMs({ ...block, lastSr: sentAt, delaySinceLastSr: at - sentAt + 1311 }, at), undefined);
  });

  it('reports reception as A.3 says: fraction lost since the previous report, cumulative, extended highest', () => {
    const rx = new RtpReceiveStats(8000);
    for (let seq = 65500; seq < 65600; seq++) if (seq % 4 !== 1) rx.packet(9, seq & 0xffff, seq * 160, seq * 20000, true);
    const first = rx.receptionReport()!;
    assert.equal(first.ssrc, 9);
    assert.equal(first.cumulativeLost, 25);
    assert.equal(first.fractionLost, 64, '25 of 100 is 64/256');
    assert.equal(first.extendedHighestSeq, 65599, 'wrapped once: 1 × 2^16 + 63');
    for (let seq = 65600; seq < 65700; seq++) rx.packet(9, seq & 0xffff, seq * 160, seq * 20000, true);
    const second = rx.receptionReport()!;
    assert.equal(second.fractionLost, 0, 'nothing lost since the first report');
    assert.equal(second.cumulativeLost, 25);
  });
});
