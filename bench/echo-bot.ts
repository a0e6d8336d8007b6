/**
 * The benchmark's instrumented echo bot, run as its own process (it stands in for the AI bot, which
 * is not the system under test). It does what `botedge echo-bot` does — returns every binary frame
 * — and on the way measures the caller → bot direction: for each marked frame it records the time
 * from the caller's send stamp to its arrival here (the read of its WebSocket message), then stamps
 * its own send time into the frame so the load generator can measure bot → caller.
 *
 * Driven by its parent over the IPC channel (child_process.fork): `window` sets the measurement
 * window, `report` returns what was measured in it. Frames are attributed to the window by their
 * send stamps, not by arrival, so frames still in flight when the window closes count once the
 * parent asks for the report after a grace period.
 *
 * Marked frames are echoed; unmarked ones (the caller's pauses) are not, unless `--echo-all` (the
 * SIPp run, whose audio carries no marker).
 *
 * `--bot-rate 16000`: the node resamples the caller to 16 kHz, which the byte marker does not
 * survive; frames carry the tone marker (bench/tone-mark.ts) instead, and the bot writes a fresh one
 * over each frame it echoes (same tag and sequence, its own send time), as 16 kHz PCM.
 */
import type { AddressInfo, Socket } from 'node:net';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { acceptMux, selectMuxProtocol, type MuxCall } from '../sdk/mux-server.js';
import { summarizeLoopDelay } from '../edge/loop-delay.js';
import { monoUs32 } from './clock.js';
import { readPcmFrame, stampBotTime, usDiff, type FrameMark } from './frame.js';
import { Histogram } from '../edge/histogram.js';
import { RawFrameConnection } from './raw-frames.js';
import { SliceRecorder } from './slices.js';
import { readTonePcm16k, unwrapUs24, writeTonePcm16k, type ToneMark } from './tone-mark.js';
import type { BotReport, ToBot } from './messages.js';

class Window {
  fromUs = 0;
  toUs = 0;
  active = false;
  contains(us: number): boolean {
    return this.active && usDiff(us, this.fromUs) >= 0 && usDiff(us, this.toUs) < 0;
  }
}

const win = new Window();
const callerToBot = new Histogram();
/** c→b over the window's time: one event or steady (bench/slices.ts); 10 ms is issue 6's budget. */
const callerToBotSlices = new SliceRecorder(100, 10);
let framesInWindow = 0; // caller frames whose caller stamp is inside the window
let echoedInWindow = 0; // frames we sent back whose bot stamp is inside the window
let unmarkedFrames = 0; // binary frames without the marker (SIPp audio, silence)
let framesTotal = 0;
let framesArrivedInWindow = 0;
let bytesTotal = 0;
let connections = 0;
let open = 0;
let starts = 0;
const tagsInWindow = new Set<number>();
const echoAll = process.argv.includes('--echo-all');
/** `--mark-every` > 1: the caller's unmarked talk (not its silent pauses) is echoed as it is. */
const echoFiller = process.argv.includes('--echo-filler');
/** The value after `--name` on the command line, if given. */
function argValue(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}
/** `--bot-io ws`: per-call frames through `ws`'s reader and sender, not read on the socket (bench/raw-frames.ts). */
const rawIo = argValue('--bot-io') !== 'ws';
const toneMarks = argValue('--bot-rate') === '16000';
const tone: ToneMark = { tag: 0, seq: 0, us24: 0 };
/**
 * The bot's own event-loop delay over the window: a bot that stalls sends a tick's frames late, and
 * the node's playout keeps that lateness (a standing queue) until the call's next pause, so the
 * harness's stalls must be visible next to the node's latency figures. 1 ms sampling, as the node's.
 */
const LOOP_RESOLUTION_MS = 1;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
let loopTimer: NodeJS.Timeout | undefined;
/**
 * Its garbage-collection pauses over the window: with a thousand calls' frames a tick a pause is
 * the likeliest stall of the bot, and a bot stall shows in both latency figures.
 */
const gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  if (!win.contains(monoUs32())) return;
  for (const e of list.getEntries()) {
    gc.count++;
    gc.totalMs += e.duration;
    if (e.duration > gc.maxMs) gc.maxMs = e.duration;
  }
}).observe({ entryTypes: ['gc'] });

/** `--protocol native-mux`: one socket carries every call; the bot SDK hands us per-call streams. */
function serveMux(call: MuxCall): void {
  starts++;
  const mark: FrameMark = { tag: 0, seq: 0, callerUs: 0, botUs: 0 };
  call.on('audio', (pcm) => echoFrame(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), mark, (b) => call.sendAudio(b), messageUs));
}

/**
 * When the message being dispatched was read: a mux message carries a hundred calls' frames or
 * more, all of them there at once, and the SDK hands them to their calls one after the other. Each
 * frame's arrival is the message's, not the moment this bot got round to it after echoing the
 * frames before it (its own work: up to a millisecond and more on the harness's busy core).
 */
let messageUs = 0;

/**
 * A mux message's echoes, held until every frame of it has been read: then stamped with one send
 * time and sent together, and the batch flushed. The bot's stamp is when its audio leaves it — the
 * SDK sends the echoes of a message as one batch, after the last of them, so a frame stamped as it
 * was echoed carried the bot's own work on the rest of the message (a millisecond and more) into
 * bot → caller. A per-call bot's echo is sent and stamped at once, as before.
 */
interface Echo {
  buf: Buffer;
  send: (b: Buffer) => void;
  /** 'tone' (16 kHz, rewritten with tag and seq), 'byte' (8 kHz marker) or 'none' (filler). */
  mark: 'tone' | 'byte' | 'none';
  tag: number;
  seq: number;
}
const held: Echo[] = [];
let holding = false;

/** Sends an echo now, stamped now, or holds it with the rest of its mux message's. */
function echo(buf: Buffer, send: (b: Buffer) => void, mark: Echo['mark'], tag = 0, seq = 0): void {
  if (holding) held.push({ buf, send, mark, tag, seq });
  else sendEcho(buf, send, mark, tag, seq, monoUs32());
}

function sendEcho(buf: Buffer, send: (b: Buffer) => void, mark: Echo['mark'], tag: number, seq: number, sendUs: number): void {
  if (mark === 'tone') writeTonePcm16k(buf, tag, seq, sendUs);
  else if (mark === 'byte') stampBotTime(buf, sendUs);
  if (mark !== 'none' && win.contains(sendUs)) echoedInWindow++;
  send(buf);
}

function sendHeld(): void {
  holding = false;
  if (held.length === 0) return;
  const sendUs = monoUs32();
  for (const e of held) sendEcho(e.buf, e.send, e.mark, e.tag, e.seq, sendUs);
  held.length = 0;
}

function serve(ws: WebSocket): void {
  connections++;
  open++;
  ws.on('close', () => open--);
  ws.on('error', () => undefined);
  if (ws.protocol !== '') {
    // Registered before the SDK's listener, so it runs first; the one after it, last.
    ws.on('message', () => {
      messageUs = monoUs32();
      holding = true;
    });
    const conn = acceptMux(ws);
    conn.on('call', serveMux);
    ws.on('message', () => {
      sendHeld();
      conn.flush();
    });
    return;
  }
  let started = false;
  const mark: FrameMark = { tag: 0, seq: 0, callerUs: 0, botUs: 0 };
  const text = (buf: Buffer): void => {
    // The `start` frame opens the call; other text (dtmf, stop, mark) needs no answer here.
    if (!started && buf.includes('"start"')) {
      started = true;
      starts++;
    }
  };
  if (rawIo) {
    let raw: RawFrameConnection | undefined;
    const sendRaw = (b: Buffer): void => raw?.sendBinary(b);
    raw = RawFrameConnection.takeOver(socketOf(ws), {
      text,
      binary: (buf) => {
        if (started) echoFrame(buf, mark, sendRaw);
      },
    });
    return;
  }
  const send = (b: Buffer) => ws.send(b, { binary: true });
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const buf = data as Buffer;
    if (!isBinary) text(buf);
    else if (started) echoFrame(buf, mark, send);
  });
}

/** The socket under a server-side `ws` WebSocket (not in its typings; the node's mux takes it the same way). */
function socketOf(ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket;
}

/** Measures and echoes a byte-marked frame (8 kHz), its bot stamp written in place as it leaves; false when unmarked. */
function echoByteFrame(buf: Buffer, now: number, mark: FrameMark, send: (b: Buffer) => void): boolean {
  if (!readPcmFrame(buf, mark)) return false;
  if (win.contains(mark.callerUs)) {
    framesInWindow++;
    const latencyUs = usDiff(now, mark.callerUs);
    callerToBot.record(latencyUs);
    callerToBotSlices.record(mark.callerUs, latencyUs);
    tagsInWindow.add(mark.tag);
  }
  echo(buf, send, 'byte');
  return true;
}

/** The same for a tone-marked frame (16 kHz): the stamp is 24 bits, and the whole frame is rewritten. */
function echoToneFrame(buf: Buffer, now: number, send: (b: Buffer) => void): boolean {
  if (!readTonePcm16k(buf, tone)) return false;
  const callerUs = unwrapUs24(tone.us24, now);
  if (win.contains(callerUs)) {
    framesInWindow++;
    const latencyUs = usDiff(now, callerUs);
    callerToBot.record(latencyUs);
    callerToBotSlices.record(callerUs, latencyUs);
    tagsInWindow.add(tone.tag);
  }
  echo(buf, send, 'tone', tone.tag, tone.seq);
  return true;
}

/** `now`: when the frame's message was read (a per-call bot's message is one frame). */
function echoFrame(buf: Buffer, mark: FrameMark, send: (b: Buffer) => void, now = monoUs32()): void {
  framesTotal++;
  if (win.contains(now)) framesArrivedInWindow++;
  bytesTotal += buf.length;
  if (toneMarks ? echoToneFrame(buf, now, send) : echoByteFrame(buf, now, mark, send)) return;
  // Unmarked audio is the caller's pause (or SIPp's recording): a bot does not talk over
  // silence, so it is not echoed — which also lets the edge's playout buffer drain between
  // turns, as it does with a real bot (BENCHMARKS.md, "talk spurts"). With --echo-all, it is.
  unmarkedFrames++;
  if (echoAll || (echoFiller && !silent(buf))) echo(buf, send, 'none');
}

/** Whether a 16 kHz frame is the caller's pause: G.711 silence decodes and resamples to zeros. */
function silent(buf: Buffer): boolean {
  for (let i = 100; i < 140; i++) if (buf[i] !== 0) return false;
  return true;
}

function report(): BotReport {
  return {
    type: 'report',
    framesInWindow,
    echoedInWindow,
    callsInWindow: tagsInWindow.size,
    callerToBot: callerToBot.toSparse(),
    callerToBotSlices: callerToBotSlices.series(),
    unmarkedFrames,
    framesTotal,
    framesArrivedInWindow,
    bytesTotal,
    connections,
    open,
    starts,
    // Read as the node reads its own (edge/loop-delay.ts).
    loopDelayMs: summarizeLoopDelay(loopDelay, LOOP_RESOLUTION_MS),
    gc: { count: gc.count, totalMs: Math.round(gc.totalMs * 100) / 100, maxMs: Math.round(gc.maxMs * 100) / 100 },
  };
}

async function main(): Promise<void> {
  const port = Number(process.argv[2] ?? '0');
  const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false, backlog: 4096, handleProtocols: selectMuxProtocol });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  wss.on('connection', serve);
  process.on('message', (msg: ToBot) => {
    if (msg.type === 'window') {
      win.fromUs = msg.fromUs;
      win.toUs = msg.toUs;
      win.active = true;
      framesInWindow = 0;
      framesArrivedInWindow = 0;
      echoedInWindow = 0;
      tagsInWindow.clear();
      gc.count = 0;
      gc.totalMs = 0;
      gc.maxMs = 0;
      callerToBot.reset();
      callerToBotSlices.start(msg.fromUs, msg.toUs);
      // Sampled from now to the window's end (the stamps are this process's monotonic µs).
      loopDelay.reset();
      loopDelay.enable();
      clearTimeout(loopTimer);
      loopTimer = setTimeout(() => loopDelay.disable(), Math.max(0, usDiff(msg.toUs, monoUs32()) / 1000));
    } else if (msg.type === 'report') {
      process.send?.(report());
    } else if (msg.type === 'exit') {
      for (const ws of wss.clients) ws.terminate();
      wss.close(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  // The bench stops its children with SIGTERM: exit through process.exit, so flags such as
  // --cpu-prof (--bot-flags) write their files.
  process.on('SIGTERM', () => process.exit(0));
  process.send?.({ type: 'ready', port: (wss.address() as AddressInfo).port });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench echo bot: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
