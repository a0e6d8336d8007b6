/**
 * Slow and stalled bots: a bot that stops reading its socket is disconnected after
 * `botReadTimeoutMs` with a clear reason, and its call follows the route's policy (fallback prompt
 * then BYE, or BYE at once), while the node's other calls lose nothing — every caller frame reaches
 * their bots, every echoed frame is played, at one packet per 20 ms with no sequence gap.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Caller, RecordingBot, tone, until } from '../fixtures/bot/peers.js';
import { EventCollector, freePort, startMediaNode, startNats, type Botedge, type NatsServer } from './harness.js';
import { RawUac } from './raw-uac.js';

function wav16k(pcm: Int16Array): Buffer {
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(16000, 24);
  h.writeUInt32LE(32000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

describe('stalled bots: disconnected by policy, other calls keep zero loss', { timeout: 45000 }, () => {
  let nats: NatsServer;
  let node: Botedge & { sipPort: number };
  let stalled: RecordingBot;
  let echo: RecordingBot;
  let uac: RawUac;
  let events: EventCollector;

  before(async () => {
    nats = await startNats();
    stalled = await RecordingBot.listen();
    // Stops reading at once: its TCP window fills, and it never sees (so never answers) a ping.
    stalled.onConnection = (c) => (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    echo = await RecordingBot.listen();
    echo.onConnection = (c) => c.ws.on('message', (d, isBinary) => isBinary && c.ws.send(d, { binary: true }));
    const prompt = join(mkdtempSync(join(tmpdir(), 'botedge-prompt-')), 'sorry.wav');
    writeFileSync(prompt, wav16k(tone(6400, 16000, 600, 8000))); // 400 ms at 16 kHz
    node = await startMediaNode({
      nodeId: 'media-bot-stall',
      sipPort: await freePort(),
      natsUrl: nats.url,
      rtpPortMin: 34200,
      rtpPortMax: 34299,
      botReadTimeoutMs: 1000,
      routes: {
        stallprompt: { url: stalled.url, onBotFailure: 'prompt', fallbackPrompt: prompt },
        stallhangup: { url: stalled.url },
        ok: { url: echo.url },
      },
    });
    events = await EventCollector.start(nats.url);
    uac = await RawUac.open(node.sipPort);
  });

  after(async () => {
    uac?.close();
    await events?.close();
    await node?.stop();
    await Promise.all([stalled?.close(), echo?.close()]);
    await nats?.stop();
  });

  it('plays the fallback prompt then hangs up one stalled call, hangs up the other, and two healthy calls lose nothing', async () => {
    const [sp, sh, a, b] = await Promise.all([Caller.call(uac, 'stallprompt'), Caller.call(uac, 'stallhangup'), Caller.call(uac, 'ok'), Caller.call(uac, 'ok')]);
    const callers = [sp!, sh!, a!, b!];
    try {
      for (const c of callers) assert.equal(c.status, 200);
      const t0 = performance.now();
      // Arrival times are taken on this process's event loop, which also runs the bots and the
      // callers: a stall here (a GC, a starved core) widens a gap the node did not cause.
      const ownDelay = monitorEventLoopDelay({ resolution: 5 });
      ownDelay.enable();
      // 2.5 s of caller audio on every call, the stalled ones included.
      const sending = Promise.all(callers.map((c) => c.sendTone(125)));
      const [promptBye, hangupBye] = await Promise.all([sp!.awaitBye(6000), sh!.awaitBye(6000)]);
      const stallAt = performance.now() - t0;
      assert.match(hangupBye, /stopped reading/);
      assert.match(promptBye, /fallback prompt/);
      assert.ok(stallAt >= 1000, `disconnected after ${stallAt.toFixed(0)} ms, not before the 1000 ms read timeout`);
      const promptPackets = sp!.audioPackets().filter((p) => p.peak > 2000).length;
      assert.ok(promptPackets >= 19 && promptPackets <= 21, `${promptPackets} packets of the 400 ms prompt`);
      await sending;
      await until(() => echo.conns.every((c) => c.msgs.filter((m) => m.binary).length >= 125), 3000, 'all frames at the healthy bots');
      await new Promise((r) => setTimeout(r, 300)); // the last echoed frames play out
      ownDelay.disable();
      const ownStallMs = ownDelay.max / 1e6;
      for (const [i, c] of [a!, b!].entries()) {
        const conn = echo.conns[i]!;
        assert.equal(conn.msgs.filter((m) => m.binary).length, 125, 'every caller frame reached the healthy bot');
        const audio = c.audioPackets();
        const echoed = audio.filter((p) => p.peak > 2000).length;
        assert.equal(echoed, 125, 'every echoed frame was played to the caller');
        for (let k = 1; k < audio.length; k++) assert.equal(audio[k]!.seq, (audio[k - 1]!.seq + 1) & 0xffff, 'no RTP sequence gap');
        const gaps = audio.slice(1).map((p, k) => p.at - audio[k]!.at);
        assert.ok(Math.max(...gaps) < 60 + ownStallMs, `largest inter-packet gap ${Math.max(...gaps).toFixed(1)} ms (this process stalled up to ${ownStallMs.toFixed(1)} ms)`);
      }
      for (const c of [a!, b!]) assert.equal(await c.bye(), 200);
      await events.until(() => events.of('ended').length >= 4, 3000, 'four ended events');
      const ended = events.of('ended');
      assert.equal(ended.filter((e) => e.data.cause === 'bot-error').length, 2);
      for (const e of ended.filter((x) => x.data.cause === 'caller-hangup')) {
        assert.equal((e.data.media as Record<string, number>).framesToBotDropped, 0);
      }
    } finally {
      for (const c of callers) c.close();
    }
  });
});
