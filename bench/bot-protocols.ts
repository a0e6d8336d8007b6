#!/usr/bin/env node
/**
 * Bot-protocol timing benchmark (issue 7): barge-in latency, mark accuracy and playout jitter of
 * bursty TTS, per protocol, on a real media node process.
 *
 *   npx tsc -p . && node dist/bench/bot-protocols.js [--calls 10] [--rounds 3] [--out file.json]
 *
 * One process plays the callers (RawUac + an RTP socket per call) and the bots (one WebSocket
 * server per protocol), so caller-side packet arrival times and bot-side message times share one
 * clock (performance.now()). The media node and nats-server are separate processes, as in
 * production. Per call and round:
 *
 * 1. TTS burst: the bot sends 2 s of a 1 kHz tone within 50 ms, then a mark.
 *    - playout jitter: |inter-arrival − 20 ms| of the packets carrying the burst, at the caller;
 *    - mark accuracy: time the mark reached the bot − time the last tone packet reached the caller.
 * 2. Barge-in: the bot sends 2 s of tone, and after 500 ms a clear (killAudio for jambonz).
 *    - barge-in latency: arrival of the first silent packet after the clear − time the clear was
 *      sent (includes WebSocket and UDP delivery on loopback); also the last tone packet − clear,
 *      negative when the last tone packet had already left.
 *
 * With `--pcap` (needs tcpdump and root), the node's RTP is also captured on the loopback
 * interface and the jitter is computed from the kernel's send timestamps: true inter-departure,
 * without the receiving process's scheduling noise.
 *
 * The test peers live under test/ (RawUac, the recording bot); the benchmark reuses them rather
 * than keep a second copy of a SIP UAC.
 */
import { spawn } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ulawDecode, ulawEncode } from '../codecs/g711.js';
import { Caller, RecordingBot, sleep, tone, until, type BotConn } from '../test/fixtures/bot/peers.js';
import { freePort, startMediaNode, startNats } from '../test/integration/harness.js';
import { RawUac } from '../test/integration/raw-uac.js';

type Proto = 'native' | 'twilio' | 'jambonz';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const CALLS = arg('calls', 10);
const ROUNDS = arg('rounds', 3);
const outIdx = process.argv.indexOf('--out');
const OUT = outIdx > 0 ? process.argv[outIdx + 1] : undefined;

function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function summary(values: number[]) {
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: values.length, p50: r(pct(values, 50)), p99: r(pct(values, 99)), max: r(Math.max(...values)), min: r(Math.min(...values)) };
}

/** Sends `ms` of tone the protocol's way, as 100 ms chunks spread over `spreadMs`. */
async function sendTone(proto: Proto, c: BotConn, streamSid: string, ms: number, spreadMs: number): Promise<void> {
  const chunks = ms / 100;
  for (let i = 0; i < chunks; i++) {
    if (proto === 'twilio') {
      const pcm = tone(800, 8000, 1000, 8000, i * 800);
      const u = new Uint8Array(800);
      ulawEncode(pcm, u);
      c.ws.send(JSON.stringify({ event: 'media', streamSid, media: { payload: Buffer.from(u).toString('base64') } }));
    } else {
      const rate = proto === 'jambonz' ? 16000 : 8000;
      const pcm = tone(rate / 10, rate, 1000, 8000, (i * rate) / 10);
      c.ws.send(Buffer.from(pcm.buffer), { binary: true });
    }
    if (spreadMs > 0) await sleep(spreadMs / chunks);
  }
}

function sendMark(proto: Proto, c: BotConn, streamSid: string, name: string): void {
  if (proto === 'twilio') c.ws.send(JSON.stringify({ event: 'mark', streamSid, mark: { name } }));
  else if (proto === 'jambonz') c.ws.send(JSON.stringify({ type: 'mark', data: { name } }));
  else c.ws.send(JSON.stringify({ type: 'mark', name }));
}

function sendClear(proto: Proto, c: BotConn, streamSid: string): void {
  if (proto === 'twilio') c.ws.send(JSON.stringify({ event: 'clear', streamSid }));
  else if (proto === 'jambonz') c.ws.send(JSON.stringify({ type: 'killAudio' }));
  else c.ws.send(JSON.stringify({ type: 'clear' }));
}

function markArrival(proto: Proto, c: BotConn, name: string): number | undefined {
  const m = c.msgs.find((x) => {
    const j = x.json;
    if (!j) return false;
    if (proto === 'twilio') return j.event === 'mark' && j.mark?.name === name;
    if (proto === 'jambonz') return j.type === 'mark' && j.data?.name === name;
    return j.type === 'mark' && j.name === name;
  });
  return m?.at;
}

const TONE_PEAK = 2000;
const PCAP = process.argv.includes('--pcap');

/** Starts tcpdump on lo for UDP from the node's RTP ports; resolves once it listens. */
async function startCapture(file: string): Promise<() => Promise<void>> {
  const p = spawn('tcpdump', ['-i', 'lo', '-nn', '-U', '-s', '256', '-w', file, 'udp and src portrange 36000-37999'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    p.stderr!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    p.once('exit', (code) => reject(new Error(`tcpdump exited ${code}`)));
  });
  return () =>
    new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
}

/**
 * Inter-departure jitter from a pcap: per RTP flow (node source port), |Δt − 20 ms| between
 * consecutive packets (consecutive sequence numbers), for all packets and for tone packets only.
 */
function pcapJitter(file: string): { all: number[]; tone: number[] } {
  const b = readFileSync(file);
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const linkLen = link === 1 ? 14 : link === 113 ? 16 : link === 276 ? 20 : link === 0 ? 4 : -1;
  if (linkLen < 0) throw new Error(`pcap link type ${link} not handled`);
  const flows = new Map<number, { t: number; seq: number; tone: boolean }[]>();
  const pcm = new Int16Array(160);
  for (let o = 24; o + 16 <= b.length; ) {
    const t = u32(o) * 1000 + u32(o + 4) / 1000;
    const incl = u32(o + 8);
    const pkt = b.subarray(o + 16, o + 16 + incl);
    o += 16 + incl;
    const ip = linkLen;
    if (pkt.length < ip + 20) continue;
    const ihl = (pkt[ip]! & 0x0f) * 4;
    const udp = ip + ihl;
    const rtp = udp + 8;
    if (pkt.length < rtp + 12 + 160) continue;
    const src = pkt.readUInt16BE(udp);
    const pt = pkt[rtp + 1]! & 0x7f;
    const seq = pkt.readUInt16BE(rtp + 2);
    let peak = 0;
    if (pt === 0) {
      ulawDecode(pkt.subarray(rtp + 12, rtp + 12 + 160), pcm);
      for (const v of pcm) peak = Math.max(peak, Math.abs(v));
    }
    let f = flows.get(src);
    if (!f) flows.set(src, (f = []));
    f.push({ t, seq, tone: peak > TONE_PEAK });
  }
  const all: number[] = [];
  const toneJ: number[] = [];
  for (const f of flows.values()) {
    for (let i = 1; i < f.length; i++) {
      if (((f[i - 1]!.seq + 1) & 0xffff) !== f[i]!.seq) continue;
      const j = Math.abs(f[i]!.t - f[i - 1]!.t - 20);
      all.push(j);
      if (f[i]!.tone && f[i - 1]!.tone) toneJ.push(j);
    }
  }
  return { all, tone: toneJ };
}

async function runCall(proto: Proto, uac: RawUac, bot: RecordingBot, user: string, idx: number, res: { jitter: number[]; mark: number[]; barge: number[]; bargeLast: number[] }) {
  const caller = await Caller.call(uac, user);
  if (caller.status !== 200) throw new Error(`call ${idx} got ${caller.status}`);
  // This call's bot connection: the one whose opening frame names its SIP Call-ID (Twilio: in
  // customParameters, as the Call-ID header is forwarded).
  const mine = () => bot.conns.find((x) => x.msgs.some((m) => JSON.stringify(m.json ?? {}).includes(caller.s.callId)));
  await until(() => mine() !== undefined, 3000, 'bot connection');
  const conn = mine()!;
  const streamSid = (conn.texts().find((m) => m.event === 'start')?.streamSid as string) ?? '';
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // 1. burst + mark
      let from = caller.rx.length;
      const name = `burst-${r}`;
      await sendTone(proto, conn, streamSid, 2000, 50);
      sendMark(proto, conn, streamSid, name);
      await until(() => markArrival(proto, conn, name) !== undefined, 5000, 'mark');
      const markAt = markArrival(proto, conn, name)!;
      // The last tone packet and the mark race into this process over UDP and TCP: wait for both.
      await sleep(60);
      const tonePkts = caller.rx.slice(from).filter((p) => p.pt === 0 && p.peak > TONE_PEAK);
      for (let k = 1; k < tonePkts.length; k++) res.jitter.push(Math.abs(tonePkts[k]!.at - tonePkts[k - 1]!.at - 20));
      res.mark.push(markAt - tonePkts.at(-1)!.at);
      await sleep(40);
      // 2. barge-in
      from = caller.rx.length;
      await sendTone(proto, conn, streamSid, 2000, 50);
      await sleep(500);
      const clearAt = performance.now();
      sendClear(proto, conn, streamSid);
      await sleep(150);
      const after = caller.rx.slice(from).filter((p) => p.pt === 0);
      const firstSilent = after.find((p) => p.at > clearAt && p.peak <= TONE_PEAK);
      const lastTone = after.filter((p) => p.peak > TONE_PEAK).at(-1);
      if (firstSilent) res.barge.push(firstSilent.at - clearAt);
      if (lastTone) res.bargeLast.push(lastTone.at - clearAt);
      await sleep(100);
    }
  } finally {
    await caller.bye().catch(() => 0);
    caller.close();
  }
}

/** The node's status reply (docs/nats-api.md): RTP backend counters and event-loop delay; resets its window. */
async function nodeStatus(natsUrl: string, id: string): Promise<unknown> {
  const nc = await connect({ servers: natsUrl });
  try {
    const m = await nc.request(`botedge.v1.node.${id}.status`, JSON.stringify({ reset: true }), { timeout: 2000 });
    const s = m.json<{ rtpIo?: unknown; eventLoopDelayMs?: unknown }>();
    return { rtpIo: s.rtpIo, eventLoopDelayMs: s.eventLoopDelayMs };
  } catch (err) {
    return { error: String(err) };
  } finally {
    await nc.close();
  }
}

async function main(): Promise<void> {
  const nats = await startNats();
  const bots: Record<Proto, RecordingBot> = {
    native: await RecordingBot.listen(),
    twilio: await RecordingBot.listen(),
    jambonz: await RecordingBot.listen({ acceptProtocols: ['audio.jambonz.org'] }),
  };
  const node = await startMediaNode({
    nodeId: 'media-bench-bot',
    sipPort: await freePort(),
    natsUrl: nats.url,
    rtpPortMin: 36000,
    rtpPortMax: 37999,
    forwardHeaders: ['Call-ID'],
    routes: {
      native: { url: bots.native.url },
      twilio: { url: bots.twilio.url, protocol: 'twilio' },
      jambonz: { url: bots.jambonz.url, protocol: 'jambonz', sampleRate: 16000 },
    },
  });
  const uac = await RawUac.open(node.sipPort);
  const results: Record<string, unknown> = {};
  try {
    for (const proto of ['native', 'twilio', 'jambonz'] as Proto[]) {
      const pcapFile = join(mkdtempSync(join(tmpdir(), 'bench-bot-')), `${proto}.pcap`);
      const stopCapture = PCAP ? await startCapture(pcapFile) : undefined;
      const res = { jitter: [] as number[], mark: [] as number[], barge: [] as number[], bargeLast: [] as number[] };
      await Promise.all(Array.from({ length: CALLS }, (_, i) => runCall(proto, uac, bots[proto], proto, i, res)));
      results[proto] = {
        playoutJitterMs: summary(res.jitter),
        withinTwoMsShare: Math.round((res.jitter.filter((j) => j <= 2).length / res.jitter.length) * 10000) / 100,
        markAccuracyMs: summary(res.mark),
        bargeInFirstSilenceMs: summary(res.barge),
        bargeInLastToneMs: summary(res.bargeLast),
      };
      if (stopCapture) {
        await sleep(200);
        await stopCapture();
        const j = pcapJitter(pcapFile);
        Object.assign(results[proto] as object, {
          departureJitterMs: summary(j.tone),
          departureWithinTwoMsShare: Math.round((j.tone.filter((x) => x <= 2).length / j.tone.length) * 10000) / 100,
          departureJitterAllPacketsMs: summary(j.all),
        });
      }
      // The node's own view of the same run: its RTP backend, and how many ticks left late and why.
      Object.assign(results[proto] as object, { node: await nodeStatus(nats.url, 'media-bench-bot') });
      process.stdout.write(`${proto}: ${JSON.stringify(results[proto])}\n`);
    }
  } finally {
    uac.close();
    await node.stop();
    for (const b of Object.values(bots)) await b.close();
    await nats.stop();
  }
  const report = { calls: CALLS, rounds: ROUNDS, node: process.version, at: new Date().toISOString(), results };
  if (OUT) writeFileSync(OUT, JSON.stringify(report, null, 2));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench bot-protocols: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
