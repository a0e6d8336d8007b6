/**
 * RTCP end to end (RFC 3550 §6): a caller with an RTP/RTCP port pair talks to the echo bot,
 * reports how the node's stream reaches it, and reads the node's sender reports: the node answers
 * on its RTP port + 1 with an SR whose report block describes the caller's stream, and ends with a
 * BYE; the caller's report reaches `ended` as `qos.remote`, with the round trip.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { ulawEncode } from '../../codecs/g711.js';
import { buildRtcpReport, ntpFromUnixMs, ntpMiddle32, parseRtcp, type RtcpPacket } from '../../codecs/rtcp.js';
import { parseRtp, serializeRtpInto } from '../../codecs/rtp.js';
import type { Qos } from '../../edge/api/events.js';
import type { QosSummary } from '../../edge/media/qos.js';
import type { SipResponse } from '../../sip/message.js';
import { parseSdp } from '../../sip/sdp.js';
import { parseNameAddr } from '../../sip/uri.js';
import { until } from '../fixtures/bot/peers.js';
import { startEchoNode, type EchoNode } from './harness.js';
import { newBranch, sdpOffer } from './raw-uac.js';

const CALLER_SSRC = 0x5eed;

/** An RTP socket on an even port and its RTCP socket on the next one. */
async function bindPair(): Promise<{ rtp: Socket; rtcp: Socket; port: number }> {
  for (let i = 0; i < 50; i++) {
    const port = 40000 + 2 * Math.floor(Math.random() * 2000);
    const bind = (p: number) =>
      new Promise<Socket>((resolve, reject) => {
        const s = createSocket('udp4');
        s.once('error', reject);
        s.bind(p, '127.0.0.1', () => resolve(s));
      });
    const rtp = await bind(port).catch(() => undefined);
    if (!rtp) continue;
    const rtcp = await bind(port + 1).catch(() => undefined);
    if (rtcp) return { rtp, rtcp, port };
    rtp.close();
  }
  throw new Error('no free RTP/RTCP port pair');
}

describe('RTCP', { timeout: 60000 }, () => {
  let box: EchoNode;

  before(async () => {
    box = await startEchoNode({ nodeId: 'media-rtcp', rtpPortMin: 36400, rtpPortMax: 36499 });
  });

  after(async () => {
    await box?.stop();
  });

  /** The caller hangs up; the call's `ended` QoS and media counters. */
  async function hangUp(s: ReturnType<EchoNode['uac']['newCall']>, toTag: string): Promise<{ qos: Qos; media: Record<string, number> }> {
    const bye = { ...s, branch: newBranch(), cseq: 2 };
    box.uac.sendRaw(box.uac.request('BYE', 'rtcp', bye, { toTag }));
    assert.equal((await box.uac.finalResponse(bye.branch)).status, 200);
    await box.events.until(() => box.events.of('ended').some((e) => e.data.sipCallId === s.callId), 5000, 'ended');
    const ended = box.events.of('ended').find((e) => e.data.sipCallId === s.callId)!;
    return { qos: ended.data.qos as Qos, media: ended.data.media as Record<string, number> };
  }

  it("sends sender reports about the caller's stream from the RTP port + 1, and reads the caller's reports into qos.remote", async () => {
    const { rtp, rtcp, port } = await bindPair();
    const fromNode: { packets: RtcpPacket[]; bytes: Uint8Array; from: number; at: number }[] = [];
    rtcp.on('message', (msg, rinfo) => fromNode.push({ packets: parseRtcp(msg), bytes: new Uint8Array(msg), from: rinfo.port, at: Date.now() }));
    let nodeSsrc = -1;
    rtp.on('message', (msg) => (nodeSsrc = parseRtp(msg).ssrc));
    try {
      const s = box.uac.newCall();
      box.uac.sendRaw(box.uac.request('INVITE', 'rtcp', s, { body: sdpOffer(port, { payloads: '0' }) }));
      const res: SipResponse = await box.uac.finalResponse(s.branch);
      assert.equal(res.status, 200);
      const toTag = parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';
      const nodePort = parseSdp(Buffer.from(res.body).toString()).media[0]!.port;
      box.uac.sendRaw(box.uac.request('ACK', 'rtcp', { ...s, branch: newBranch() }, { toTag, cseqMethod: 'ACK' }));

      // The caller talks (sequence numbers 0…), dropping two packets, and sends its own SR early.
      const payload = new Uint8Array(160);
      ulawEncode(new Int16Array(160).fill(3000), payload);
      let seq = 0;
      const t0 = performance.now();
      const callerSr = ntpFromUnixMs(Date.now());
      let talking = true;
      const talk = (async () => {
        for (let f = 0; talking; f++) {
          if (f !== 10 && f !== 11) {
            const pkt = new Uint8Array(172);
            serializeRtpInto(pkt, 0, { marker: f === 0, payloadType: 0, sequenceNumber: f, timestamp: f * 160, ssrc: CALLER_SSRC }, payload);
            rtp.send(pkt, nodePort, '127.0.0.1');
          }
          seq = f;
          if (f === 5) {
            const sr = buildRtcpReport({ ssrc: CALLER_SSRC, sender: { ...callerSr, rtpTimestamp: 0, packetCount: 5, octetCount: 800 }, reports: [], cname: 'caller@test' });
            rtcp.send(sr, nodePort + 1, '127.0.0.1');
          }
          await new Promise((r) => setTimeout(r, Math.max(0, t0 + (f + 1) * 20 - performance.now())));
        }
      })();

      // The node's first report comes within 2.5–7.5 s (plus its once-a-second sweep).
      await until(() => fromNode.length > 0, 10000, "the node's first RTCP report");
      const first = fromNode[0]!;
      assert.equal(first.from, nodePort + 1, 'RTCP leaves from the RTP port + 1');
      const sr = first.packets[0]!;
      assert.equal(sr.type, 'sr');
      if (sr.type !== 'sr') return;
      assert.equal(sr.ssrc, nodeSsrc >>> 0, 'the SSRC of the RTP the node sends');
      assert.ok(sr.sender.packetCount > 50, `${sr.sender.packetCount} packets in the SR`);
      assert.equal(sr.sender.octetCount, sr.sender.packetCount * 160);
      const block = sr.reports[0]!;
      assert.equal(block.ssrc, CALLER_SSRC);
      assert.equal(block.cumulativeLost, 2, 'the two packets the caller skipped');
      assert.ok(Math.abs(block.extendedHighestSeq - seq) <= 2, `highest ${block.extendedHighestSeq}, sent up to ${seq}`);
      assert.equal(block.lastSr, ntpMiddle32(callerSr.ntpSeconds, callerSr.ntpFraction), "LSR echoes the caller's SR");
      assert.ok(block.delaySinceLastSr > 0);
      const sdes = first.packets[1]!;
      assert.equal(sdes.type === 'other' && sdes.packetType, 202, 'SDES follows');

      // The caller reports on the node's stream, echoing the node's SR and the time it held it.
      const nodeSrMiddle = ntpMiddle32(sr.sender.ntpSeconds, sr.sender.ntpFraction);
      const held = Math.round(((Date.now() - first.at) / 1000) * 65536);
      const rr = buildRtcpReport({
        ssrc: CALLER_SSRC,
        reports: [{ ssrc: sr.ssrc, fractionLost: 64, cumulativeLost: 7, extendedHighestSeq: 1000, jitter: 160, lastSr: nodeSrMiddle, delaySinceLastSr: held }],
        cname: 'caller@test',
      });
      rtcp.send(rr, nodePort + 1, '127.0.0.1');
      // Garbage at the RTCP port: counted, dropped, nothing else happens.
      rtcp.send(Buffer.from('not rtcp at all'), nodePort + 1, '127.0.0.1');
      // A report from another address, once the caller's RTCP address is known: turned away.
      const intruder = createSocket('udp4');
      const forged = buildRtcpReport({ ssrc: 99, reports: [{ ssrc: sr.ssrc, fractionLost: 255, cumulativeLost: 9999, extendedHighestSeq: 1, jitter: 0, lastSr: 0, delaySinceLastSr: 0 }], cname: 'x' });
      await new Promise((r) => intruder.send(forged, nodePort + 1, '127.0.0.1', r));
      intruder.close();
      await new Promise((r) => setTimeout(r, 200));
      talking = false;
      await talk;

      // The node's status reply has the live call's QoS, the caller's report included.
      const nc = await connect({ servers: box.nats.url });
      const status = (await nc.request('botedge.v1.node.media-rtcp.status', '', { timeout: 2000 })).json<{ qos: QosSummary }>();
      await nc.close();
      assert.equal(status.qos.calls, 1);
      assert.equal(status.qos.packetsLost, 2);
      assert.equal(status.qos.remoteReports, 1);
      assert.ok(status.qos.mos && status.qos.mos.min < 4.41, JSON.stringify(status.qos));

      const { qos, media } = await hangUp(s, toTag);
      assert.equal(media.rtcpReceived, 2, "the caller's SR and RR, not the intruder's");
      assert.equal(media.rtcpMalformed, 1, 'the garbage datagram');
      assert.ok(media.rtcpSent! >= 2, `${media.rtcpSent} reports sent, the BYE included`);
      assert.equal(qos.packetsLost, 2);
      assert.ok(qos.remote, `no remote reception in ${JSON.stringify(qos)}`);
      assert.equal(qos.remote.lossPct, 25);
      assert.equal(qos.remote.packetsLost, 7);
      assert.equal(qos.remote.jitterMs, 20, '160 units of the 8 kHz clock');
      assert.ok(qos.remote.rttMs !== undefined && qos.remote.rttMs < 50, `round trip ${qos.remote.rttMs} ms on loopback`);

      // The call's last report ends with a BYE.
      await until(() => fromNode.some((r) => r.packets.some((p) => p.type === 'bye')), 2000, 'an RTCP BYE');
      const last = fromNode.find((r) => r.packets.some((p) => p.type === 'bye'))!;
      assert.deepEqual(last.packets.map((p) => p.type), ['sr', 'other', 'bye']);
    } finally {
      rtp.close();
      rtcp.close();
    }
  });

  it('multiplexes RTCP on the RTP port when the offer has a=rtcp-mux (RFC 5761), both ways, with RTP unharmed', async () => {
    const { rtp, rtcp: unused, port } = await bindPair();
    const onRtcpPort: Uint8Array[] = [];
    unused.on('message', (msg) => onRtcpPort.push(msg));
    const reports: { packets: RtcpPacket[]; from: number }[] = [];
    let audio = 0;
    let nodeSsrc = -1;
    rtp.on('message', (msg, rinfo) => {
      const pt = msg[1]! & 0x7f;
      // RFC 5761 §4: RTCP's packet types 200-204 read as RTP payload types 72-76.
      if (pt >= 72 && pt <= 76) reports.push({ packets: parseRtcp(msg), from: rinfo.port });
      else {
        audio++;
        nodeSsrc = parseRtp(msg).ssrc;
      }
    });
    try {
      const s = box.uac.newCall();
      const sdp = sdpOffer(port, { payloads: '0' }).replace('a=sendrecv', 'a=rtcp-mux\r\na=sendrecv');
      box.uac.sendRaw(box.uac.request('INVITE', 'rtcp', s, { body: sdp }));
      const res: SipResponse = await box.uac.finalResponse(s.branch);
      assert.equal(res.status, 200);
      const answer = parseSdp(Buffer.from(res.body).toString()).media[0]!;
      assert.ok(answer.attributes.some((a) => a.name === 'rtcp-mux'), 'the answer takes a=rtcp-mux');
      const nodePort = answer.port;
      const toTag = parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';
      box.uac.sendRaw(box.uac.request('ACK', 'rtcp', { ...s, branch: newBranch() }, { toTag, cseqMethod: 'ACK' }));

      const payload = new Uint8Array(160);
      ulawEncode(new Int16Array(160).fill(3000), payload);
      const t0 = performance.now();
      let talking = true;
      const talk = (async () => {
        for (let f = 0; talking; f++) {
          const pkt = new Uint8Array(172);
          serializeRtpInto(pkt, 0, { marker: f === 0, payloadType: 0, sequenceNumber: f, timestamp: f * 160, ssrc: CALLER_SSRC }, payload);
          rtp.send(pkt, nodePort, '127.0.0.1');
          await new Promise((r) => setTimeout(r, Math.max(0, t0 + (f + 1) * 20 - performance.now())));
        }
      })();
      await until(() => reports.length > 0, 10000, "the node's first report on the RTP port");
      const first = reports[0]!;
      assert.equal(first.from, nodePort, 'RTCP leaves from the RTP port');
      const sr = first.packets[0]!;
      assert.equal(sr.type, 'sr');
      if (sr.type !== 'sr') return;
      assert.equal(sr.ssrc, nodeSsrc >>> 0);
      assert.equal(sr.reports[0]?.ssrc, CALLER_SSRC, "the report block is about the caller's stream");

      // The caller's receiver report, on the RTP port: it reaches qos.remote, and is no RTP.
      const rr = buildRtcpReport({
        ssrc: CALLER_SSRC,
        reports: [{ ssrc: sr.ssrc, fractionLost: 128, cumulativeLost: 3, extendedHighestSeq: 500, jitter: 80, lastSr: ntpMiddle32(sr.sender.ntpSeconds, sr.sender.ntpFraction), delaySinceLastSr: 0 }],
        cname: 'caller@test',
      });
      rtp.send(rr, nodePort, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 200));
      talking = false;
      await talk;

      const { qos, media } = await hangUp(s, toTag);
      assert.equal(media.rtcpReceived, 1, "the caller's RR, taken from the RTP port");
      assert.equal(media.rtpMalformed, 0, 'RTCP on the RTP port is not counted as bad RTP');
      assert.equal(qos.packetsLost, 0);
      assert.equal(qos.remote?.lossPct, 50);
      assert.equal(qos.remote?.packetsLost, 3);
      assert.equal(qos.remote?.jitterMs, 10, '80 units of the 8 kHz clock');
      await until(() => reports.some((r) => r.packets.some((p) => p.type === 'bye')), 2000, 'an RTCP BYE on the RTP port');
      assert.ok(audio > 20, `${audio} RTP packets from the node`);
      assert.equal(onRtcpPort.length, 0, 'nothing on the RTP port + 1');
    } finally {
      rtp.close();
      unused.close();
    }
  });

  it("sends its reports where the caller's a=rtcp says (RFC 3605) until the caller's own RTCP arrives", async () => {
    const { rtp, rtcp: unused, port } = await bindPair();
    unused.close();
    const elsewhere = createSocket('udp4');
    await new Promise<void>((r) => elsewhere.bind(0, '127.0.0.1', () => r()));
    const got: RtcpPacket[][] = [];
    elsewhere.on('message', (msg) => got.push(parseRtcp(msg)));
    try {
      const s = box.uac.newCall();
      const sdp = sdpOffer(port, { payloads: '0' }).replace('a=sendrecv', `a=rtcp:${elsewhere.address().port}\r\na=sendrecv`);
      box.uac.sendRaw(box.uac.request('INVITE', 'rtcp', s, { body: sdp }));
      const res: SipResponse = await box.uac.finalResponse(s.branch);
      assert.equal(res.status, 200);
      const toTag = parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';
      box.uac.sendRaw(box.uac.request('ACK', 'rtcp', { ...s, branch: newBranch() }, { toTag, cseqMethod: 'ACK' }));
      await until(() => got.length > 0, 10000, 'a report at the a=rtcp port');
      assert.equal(got[0]![0]!.type, 'sr');
      const bye = { ...s, branch: newBranch(), cseq: 2 };
      box.uac.sendRaw(box.uac.request('BYE', 'rtcp', bye, { toTag }));
      assert.equal((await box.uac.finalResponse(bye.branch)).status, 200);
    } finally {
      rtp.close();
      elsewhere.close();
    }
  });
});
