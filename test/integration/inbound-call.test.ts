import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import type { Qos } from '../../edge/api/events.js';
import { EchoBot } from '../../edge/echo-bot.js';
import { EventCollector, RtpTap, freePort, runSipp, sippWorkdir, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';

const TAP_SCENARIO = fileURLToPath(new URL('../../../test/fixtures/sipp/uac_pcap_tap.xml', import.meta.url));

describe('an inbound SIPp call reaches the echo bot and comes back', { timeout: 120000 }, () => {
  let nats: NatsServer;
  let bot: EchoBot;
  let node: Botedge & { sipPort: number };
  let events: EventCollector;
  let tap: RtpTap;

  before(async () => {
    nats = await startNats();
    bot = await EchoBot.listen(0);
    node = await startMediaNode({
      nodeId: 'media-it-1',
      sipPort: await freePort(),
      natsUrl: nats.url,
      rtpPortMin: 32000,
      rtpPortMax: 32999,
      defaultRoute: { url: bot.url },
      qosIntervalMs: 2000,
    });
    events = await EventCollector.start(nats.url);
    tap = await RtpTap.open();
  });

  after(async () => {
    tap?.close();
    await events?.close();
    await node?.stop();
    await bot?.close();
    await nats?.stop();
  });

  it('completes 20 uac_pcap calls, 5 tapped calls and 5 over TCP; audio flows both ways; NATS carries every event and QoS', async () => {
    const target = `127.0.0.1:${node.sipPort}`;
    const cwd = sippWorkdir();
    // SIPp's built-in scenario, as a user would run it; and alongside, the same scenario with the
    // caller's SDP pointing at our RTP tap, so what the node sends the caller is measured by us.
    const [plain, tapped, overTcp] = await Promise.all([
      runSipp(['-sn', 'uac_pcap', target, '-m', '20', '-r', '5', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', '46000'], cwd),
      runSipp(['-sf', TAP_SCENARIO, '-key', 'tap_port', String(tap.port), target, '-m', '5', '-r', '5', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', '47000'], cwd),
      // And over TCP (one connection for all calls).
      runSipp(['-sn', 'uac_pcap', target, '-t', 't1', '-m', '5', '-r', '5', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', '45000'], cwd),
    ]);
    assert.equal(overTcp.code, 0, `sipp over TCP failed:\n${overTcp.stdout.slice(-2000)}\n${overTcp.stderr}`);
    assert.equal(overTcp.successful, 5);
    assert.equal(plain.code, 0, `sipp uac_pcap failed:\n${plain.stdout.slice(-2000)}\n${plain.stderr}`);
    assert.equal(plain.successful, 20);
    assert.equal(plain.failed, 0);
    assert.equal(tapped.code, 0, `sipp tap scenario failed:\n${tapped.stdout.slice(-2000)}\n${tapped.stderr}`);
    assert.equal(tapped.successful, 5);

    await events.until(() => events.of('ended').length >= 30, 10000, '30 ended events');
    // The stop frame leaves before `ended` is published, but the two travel different sockets.
    await events.until(() => bot.calls.size === 30 && [...bot.calls.values()].every((c) => c.stopped), 5000, 'a stop frame at the bot for every call');

    // The bot heard each caller: non-silent audio on every call, a DTMF '1', and a stop at the end.
    assert.equal(bot.calls.size, 30);
    const heard = [...bot.calls.values()].map((c) => c.nonSilentFrames);
    for (const c of bot.calls.values()) {
      assert.ok(c.nonSilentFrames >= 100, `call ${c.callId}: only ${c.nonSilentFrames} non-silent frames reached the bot`);
      assert.deepEqual(c.dtmf, ['1'], `call ${c.callId}: DTMF seen by the bot`);
      assert.ok(c.stopped, `call ${c.callId}: the bot got no stop frame`);
    }

    // With native RTP I/O most packets to the callers came from the lane's tick (rx-lane.ts), to
    // the SDP's address: SIPp's pcap player sends from port 0, so symmetric RTP never latches (and
    // the receive lane, which needs the source it latched, leaves these calls to JavaScript). With
    // dgram RTP I/O there is no lane.
    const nc = await connect({ servers: nats.url });
    const status = (await nc.request('botedge.v1.node.media-it-1.status', '', { timeout: 2000 })).json<{ rtpIo: { backend: string; laneTxTaken?: number } }>();
    await nc.close();
    if (status.rtpIo.backend === 'native') assert.ok(status.rtpIo.laneTxTaken! > 30 * 200, `the lane's tick sent ${status.rtpIo.laneTxTaken} packets`);

    // The bot's audio came back to the caller as RTP: one stream per tapped call, PCMA, and at
    // least 90% of the non-silent frames the bot echoed.
    const minHeard = Math.min(...heard);
    assert.equal(tap.streams.size, 5, `tap saw ${tap.streams.size} RTP streams: ${JSON.stringify([...tap.streams].map(([port, s]) => ({ port, ...s, payloadTypes: [...s.payloadTypes], ssrcs: [...s.ssrcs] })))}`);
    for (const [port, s] of tap.streams) {
      assert.deepEqual([...s.payloadTypes], [8], `stream from ${port} payload types`);
      assert.ok(s.nonSilent >= 0.9 * minHeard, `stream from ${port}: ${s.nonSilent} non-silent packets back, bot echoed ≥ ${minHeard}`);
    }

    // NATS carried created, answered and ended for every call, with matching ids.
    const created = new Set(events.of('created').map((e) => e.data.callId));
    const answered = new Set(events.of('answered').map((e) => e.data.callId));
    const ended = events.of('ended');
    assert.equal(created.size, 30);
    assert.deepEqual(answered, created);
    assert.deepEqual(new Set(ended.map((e) => e.data.callId)), created);
    assert.deepEqual(new Set(bot.calls.keys()), created);
    for (const e of ended) {
      assert.equal(e.data.cause, 'caller-hangup');
      assert.equal(e.subject, 'botedge.v1.call.ended');
      assert.ok((e.data.durationMs as number) > 5000);
      const media = e.data.media as Record<string, number>;
      assert.equal(media.rtpUnexpectedSource, 0);
      assert.ok((media.rtpReceived ?? 0) > 200);
      // The caller's stream as it arrived: SIPp replays the capture's audio and then its RFC 4733
      // events (another SSRC, its end packets repeated with one sequence number, so a couple more
      // received than expected); on loopback nothing is lost or late.
      const qos = e.data.qos as Qos;
      assert.equal(qos.packetsReceived, media.rtpReceived, 'every packet taken is in the receive statistics');
      assert.ok(qos.packetsLost === 0 && qos.packetsLate === 0 && qos.packetsReceived - qos.packetsExpected <= 3, JSON.stringify(qos));
      // With node:dgram a packet's arrival is stamped when the event loop gets to it, so the worst
      // jitter carries the loop's worst stall (41.5 ms once on a CI host with stolen time); the
      // native I/O thread stamps it as it reads the socket.
      const jitterMaxBound = status.rtpIo.backend === 'native' ? 40 : 80;
      assert.ok(qos.jitterMs >= 0 && qos.jitterMaxMs < jitterMaxBound, `jitter ${qos.jitterMs} ms, max ${qos.jitterMaxMs} ms (${status.rtpIo.backend})`);
      assert.ok(qos.mos! > 4.3, `MOS ${qos.mos}`);
      // And every 2 s of the call, a sample of the interval.
      const samples = events.of('qos').filter((q) => q.data.callId === e.data.callId).map((q) => q.data.qos as Qos);
      assert.ok(samples.length >= 1, `call ${e.data.callId as string}: no qos sample`);
      const sampled = samples.reduce((n, q) => n + q.packetsReceived, 0);
      assert.ok(sampled > 0 && sampled <= qos.packetsReceived, `${sampled} packets in samples, ${qos.packetsReceived} in the call`);
    }
    for (const q of events.of('qos')) {
      assert.equal(q.subject, 'botedge.v1.call.qos');
      // Due every 2 s from the answer, found by a once-a-second sweep: 1–3 s apart.
      const ms = q.data.intervalMs as number;
      assert.ok(ms >= 1000 && ms < 3500, `sample interval ${ms} ms`);
    }
    assert.equal(events.of('dtmf').length, 30);
  });
});
