import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { ulawDecode, ulawEncode } from '../../codecs/g711.js';
import { serializeRtpInto } from '../../codecs/rtp.js';
import { EchoBot } from '../../edge/echo-bot.js';
import { parseSdp } from '../../sip/sdp.js';
import type { SipResponse } from '../../sip/message.js';
import { parseNameAddr } from '../../sip/uri.js';
import { EventCollector, freePort, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';
import { RawUac, newBranch, sdpOffer } from './raw-uac.js';

/** A WebSocket bot scripted per test. */
async function scriptedBot(onConnection: (ws: WebSocket) => void): Promise<{ url: string; wss: WebSocketServer }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', onConnection);
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, wss };
}

function toTag(res: SipResponse): string {
  return parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';
}

describe('bad input: every problem gets a clear answer and the node keeps serving', { timeout: 90000 }, () => {
  let nats: NatsServer;
  let node: Botedge & { sipPort: number };
  let echo: EchoBot;
  let events: EventCollector;
  let uac: RawUac;
  let silent: Server;
  const badbotSeen: { text: string[]; binary: number } = { text: [], binary: 0 };
  const widebotSeen: { start?: { format: { sampleRate: number } }; frameBytes: Set<number>; events: { type: string; name?: string }[] } = {
    frameBytes: new Set(),
    events: [],
  };
  const bots: WebSocketServer[] = [];

  before(async () => {
    nats = await startNats();
    echo = await EchoBot.listen(0);
    const badbot = await scriptedBot((ws) => {
      ws.on('message', (data, isBinary) => {
        if (isBinary) badbotSeen.binary++;
        else badbotSeen.text.push(data.toString());
      });
      // Non-JSON text, an odd-length binary frame and an unknown control, then real audio.
      ws.send('this is not json');
      ws.send(Buffer.from([1, 2, 3]), { binary: true });
      ws.send(JSON.stringify({ type: 'dance' }));
      ws.send(Buffer.alloc(320, 7), { binary: true });
    });
    const widebot = await scriptedBot((ws) => {
      ws.on('message', (data, isBinary) => {
        if (isBinary) widebotSeen.frameBytes.add((data as Buffer).length);
        else if (widebotSeen.start !== undefined) widebotSeen.events.push(JSON.parse(data.toString()) as { type: string; name?: string });
        else {
          widebotSeen.start = JSON.parse(data.toString()) as typeof widebotSeen.start;
          // One second of a 1 kHz tone at 16 kHz in a single burst, as a TTS engine would send it.
          const tone = Buffer.alloc(32000);
          for (let i = 0; i < 16000; i++) tone.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / 16000)), i * 2);
          ws.send(tone, { binary: true });
          ws.send(JSON.stringify({ type: 'mark', name: 'tone-done' }));
        }
      });
    });
    const hangupbot = await scriptedBot((ws) => setTimeout(() => ws.close(1000, 'done'), 300));
    bots.push(badbot.wss, hangupbot.wss, widebot.wss);
    // Accepts TCP and never answers the WebSocket handshake: a bot that hangs.
    silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const closedPort = await freePort();
    node = await startMediaNode({
      nodeId: 'media-bad-input',
      sipPort: await freePort(),
      natsUrl: nats.url,
      rtpPortMin: 33000,
      rtpPortMax: 33999,
      botConnectTimeoutMs: 1500,
      routes: {
        echo: { url: echo.url },
        refuse: { url: `ws://127.0.0.1:${closedPort}/` },
        badbot: { url: badbot.url },
        hangupbot: { url: hangupbot.url },
        wide: { url: widebot.url, sampleRate: 16000 },
        slowbot: { url: `ws://127.0.0.1:${(silent.address() as { port: number }).port}/` },
      },
    });
    events = await EventCollector.start(nats.url);
    uac = await RawUac.open(node.sipPort);
  });

  after(async () => {
    uac?.close();
    await events?.close();
    await node?.stop();
    for (const b of bots) b.close();
    silent?.close();
    await echo?.close();
    await nats?.stop();
  });

  async function options(): Promise<SipResponse> {
    const s = uac.newCall();
    uac.sendRaw(uac.request('OPTIONS', 'echo', s));
    return uac.finalResponse(s.branch);
  }

  async function invite(user: string, body: string): Promise<{ res: SipResponse; s: ReturnType<RawUac['newCall']> }> {
    const s = uac.newCall();
    uac.sendRaw(uac.request('INVITE', user, s, { body }));
    const res = await uac.finalResponse(s.branch);
    if (res.status >= 300) {
      // ACK the failure (same branch, RFC 3261 §17.1.1.3) so the server stops retransmitting.
      uac.sendRaw(uac.request('ACK', user, s, { toTag: toTag(res), cseqMethod: 'ACK' }));
    }
    return { res, s };
  }

  it('drops garbage and truncated datagrams, answers a malformed request 400, and still answers OPTIONS', async () => {
    uac.sendRaw(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42]));
    uac.sendRaw('INVITE sip:echo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5;bra');
    const s = uac.newCall();
    uac.sendRaw(uac.request('OPTIONS', 'echo', s).replace('Max-Forwards: 70', 'Max-Forwards: lots'));
    const bad = await uac.finalResponse(s.branch);
    assert.equal(bad.status, 400);
    assert.match(bad.reason, /Max-Forwards/i);
    assert.equal((await options()).status, 200);
  });

  it('answers an INVITE with broken SDP 400 and one with no common codec 488', async () => {
    const broken = await invite('echo', 'v=0\r\nm=audio not-a-port RTP/AVP 0\r\n');
    assert.equal(broken.res.status, 400);
    assert.match(broken.res.reason, /SDP/);
    const g729 = await invite('echo', sdpOffer(40000, { payloads: '18' }));
    assert.equal(g729.res.status, 488);
    assert.equal((await options()).status, 200);
  });

  it('answers 404 for a number without a route', async () => {
    const { res } = await invite('nobody', sdpOffer(40000));
    assert.equal(res.status, 404);
  });

  it('gives the caller 480 when the bot refuses the connection, and when it never answers', async () => {
    const refused = await invite('refuse', sdpOffer(40000));
    assert.equal(refused.res.status, 480);
    const slow = await invite('slowbot', sdpOffer(40000));
    assert.equal(slow.res.status, 480);
    await events.until(() => events.of('ended').filter((e) => e.data.cause === 'bot-unreachable').length >= 2, 5000, 'bot-unreachable ends');
  });

  it('survives a bot sending non-JSON text and odd-length binary: the call works, the bot is told once', async () => {
    const rtp = createSocket('udp4');
    await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
    try {
      const { res, s } = await invite('badbot', sdpOffer(rtp.address().port, { payloads: '0 101' }));
      assert.equal(res.status, 200);
      const answer = parseSdp(Buffer.from(res.body).toString());
      const nodeRtpPort = answer.media[0]!.port;
      uac.sendRaw(uac.request('ACK', 'badbot', { ...s, branch: newBranch() }, { toTag: toTag(res), cseqMethod: 'ACK' }));
      // 25 frames of a 1 kHz tone as PCMU from the address the SDP named.
      const pcm = new Int16Array(160);
      for (let i = 0; i < 160; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / 8000));
      const payload = new Uint8Array(160);
      ulawEncode(pcm, payload);
      const pkt = new Uint8Array(172);
      for (let i = 0; i < 25; i++) {
        const n = serializeRtpInto(pkt, 0, { marker: i === 0, payloadType: 0, sequenceNumber: i, timestamp: i * 160, ssrc: 42 }, payload);
        rtp.send(pkt.subarray(0, n), nodeRtpPort, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 20));
      }
      // Someone else aims RTP at the call's port: ignored and counted, never played to the bot.
      const intruder = createSocket('udp4');
      await new Promise<void>((r) => intruder.bind(0, '127.0.0.1', () => r()));
      for (let i = 0; i < 5; i++) intruder.send(pkt, nodeRtpPort, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 100));
      intruder.close();
      const bye = { ...s, branch: newBranch(), cseq: 2 };
      uac.sendRaw(uac.request('BYE', 'badbot', bye, { toTag: toTag(res) }));
      assert.equal((await uac.finalResponse(bye.branch)).status, 200);
      await events.until(() => events.of('ended').some((e) => e.data.sipCallId === s.callId), 5000, 'badbot call end');
      const ended = events.of('ended').find((e) => e.data.sipCallId === s.callId)!;
      const media = ended.data.media as Record<string, number>;
      assert.equal(media.rtpUnexpectedSource, 5);
      assert.equal(media.rtpReceived, 25);
      assert.equal(ended.data.cause, 'caller-hangup');
    } finally {
      rtp.close();
    }
    await events.until(() => badbotSeen.text.some((t) => t.includes('"stop"')), 5000, 'stop frame at the bot');
    assert.ok(badbotSeen.binary >= 20, `bot got ${badbotSeen.binary} audio frames`);
    const errors = badbotSeen.text.map((t) => JSON.parse(t) as { type: string; reason?: string }).filter((m) => m.type === 'error');
    assert.equal(errors.length, 3, 'one error event per kind of bad input');
    assert.ok(errors.some((e) => /not JSON/.test(e.reason ?? '')));
    assert.ok(errors.some((e) => /whole 16-bit samples/.test(e.reason ?? '')));
    assert.ok(errors.some((e) => /type/.test(e.reason ?? '')));
  });

  it('ends the call with a BYE to the caller when the bot closes its socket', async () => {
    const { res, s } = await invite('hangupbot', sdpOffer(40002));
    assert.equal(res.status, 200);
    uac.sendRaw(uac.request('ACK', 'hangupbot', { ...s, branch: newBranch() }, { toTag: toTag(res), cseqMethod: 'ACK' }));
    const bye = await uac.waitForRequest('BYE', s.callId);
    assert.equal(bye.headers.get('From')?.includes(toTag(res)), true, 'BYE comes from the node side of the dialog');
    await events.until(() => events.of('ended').some((e) => e.data.sipCallId === s.callId && e.data.cause === 'bot-hangup'), 5000, 'bot-hangup end');
  });

  it('carries a 16 kHz bot: wideband frames up, a TTS burst paced back as 8 kHz RTP', async () => {
    const rtp = createSocket('udp4');
    const back = { packets: 0, nonSilent: 0 };
    const pcm = new Int16Array(160);
    rtp.on('message', (msg) => {
      back.packets++;
      const payload = msg.subarray(12);
      ulawDecode(payload, pcm.subarray(0, payload.length));
      if (pcm.some((v) => Math.abs(v) > 2000)) back.nonSilent++;
    });
    await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
    try {
      const { res, s } = await invite('wide', sdpOffer(rtp.address().port, { payloads: '0' }));
      assert.equal(res.status, 200);
      uac.sendRaw(uac.request('ACK', 'wide', { ...s, branch: newBranch() }, { toTag: toTag(res), cseqMethod: 'ACK' }));
      const nodeRtpPort = parseSdp(Buffer.from(res.body).toString()).media[0]!.port;
      const pkt = new Uint8Array(172);
      const silence = new Uint8Array(160).fill(0xff);
      for (let i = 0; i < 10; i++) {
        const n = serializeRtpInto(pkt, 0, { marker: i === 0, payloadType: 0, sequenceNumber: i, timestamp: i * 160, ssrc: 7 }, silence);
        rtp.send(pkt.subarray(0, n), nodeRtpPort, '127.0.0.1');
      }
      // The 1 s burst plays out over ~50 packets of 20 ms; wait for well past it.
      await new Promise((r) => setTimeout(r, 1600));
      const bye = { ...s, branch: newBranch(), cseq: 2 };
      uac.sendRaw(uac.request('BYE', 'wide', bye, { toTag: toTag(res) }));
      assert.equal((await uac.finalResponse(bye.branch)).status, 200);
    } finally {
      rtp.close();
    }
    assert.equal(widebotSeen.start?.format.sampleRate, 16000);
    assert.deepEqual([...widebotSeen.frameBytes], [640], '20 ms at 16 kHz is 640 bytes');
    assert.ok(back.nonSilent >= 48 && back.nonSilent <= 52, `${back.nonSilent} tone packets for 1 s of audio`);
    assert.ok(back.packets > back.nonSilent, 'silence is sent around the tone');
    // The mark placed after the burst came back once the burst had played, before the stop.
    assert.deepEqual(widebotSeen.events.map((e) => e.type), ['mark', 'stop']);
    assert.equal(widebotSeen.events[0]?.name, 'tone-done');
  });

  it('answers a CANCEL before the 200 with 487 on the INVITE', async () => {
    const s = uac.newCall();
    uac.sendRaw(uac.request('INVITE', 'slowbot', s, { body: sdpOffer(40004) }));
    await uac.waitFor((m) => m.kind === 'response' && m.status === 100 && m.headers.get('Call-ID') === s.callId, 3000, '100 Trying');
    uac.sendRaw(uac.request('CANCEL', 'slowbot', s));
    const final = await uac.finalResponse(s.branch);
    // The CANCEL's own 200 and the INVITE's 487 share the branch; take both.
    const statuses = [final.status, (await uac.finalResponse(s.branch)).status].sort();
    assert.deepEqual(statuses, [200, 487]);
    await events.until(() => events.of('ended').some((e) => e.data.sipCallId === s.callId && e.data.cause === 'caller-cancel'), 5000, 'cancel end');
  });

  it('puts a call on hold and back with re-INVITEs, then serves a normal call', async () => {
    const { res, s } = await invite('echo', sdpOffer(40006));
    assert.equal(res.status, 200);
    const tag = toTag(res);
    uac.sendRaw(uac.request('ACK', 'echo', { ...s, branch: newBranch() }, { toTag: tag, cseqMethod: 'ACK' }));
    const hold = { ...s, branch: newBranch(), cseq: 2 };
    uac.sendRaw(uac.request('INVITE', 'echo', hold, { toTag: tag, body: sdpOffer(40006, { direction: 'sendonly' }) }));
    const held = await uac.finalResponse(hold.branch);
    assert.equal(held.status, 200);
    assert.equal(parseSdp(Buffer.from(held.body).toString()).media[0]!.direction, 'recvonly');
    uac.sendRaw(uac.request('ACK', 'echo', { ...hold, branch: newBranch() }, { toTag: tag, cseqMethod: 'ACK' }));
    const resume = { ...s, branch: newBranch(), cseq: 3 };
    uac.sendRaw(uac.request('INVITE', 'echo', resume, { toTag: tag, body: sdpOffer(40006) }));
    const resumed = await uac.finalResponse(resume.branch);
    assert.equal(parseSdp(Buffer.from(resumed.body).toString()).media[0]!.direction, 'sendrecv');
    uac.sendRaw(uac.request('ACK', 'echo', { ...resume, branch: newBranch() }, { toTag: tag, cseqMethod: 'ACK' }));
    // A stale CSeq inside the dialog is refused with 500 (RFC 3261 §12.2.2).
    const stale = { ...s, branch: newBranch(), cseq: 2 };
    uac.sendRaw(uac.request('BYE', 'echo', stale, { toTag: tag }));
    assert.equal((await uac.finalResponse(stale.branch)).status, 500);
    const bye = { ...s, branch: newBranch(), cseq: 4 };
    uac.sendRaw(uac.request('BYE', 'echo', bye, { toTag: tag }));
    assert.equal((await uac.finalResponse(bye.branch)).status, 200);
    // BYE for a dialog that no longer exists: 481.
    const again = { ...s, branch: newBranch(), cseq: 5 };
    uac.sendRaw(uac.request('BYE', 'echo', again, { toTag: tag }));
    assert.equal((await uac.finalResponse(again.branch)).status, 481);
  });
});
