/**
 * The load generator, run as its own process (child_process.fork from bench/run.ts) so its CPU is
 * never counted as the system's. One SIP UDP socket for all calls, driven by the project's own SIP
 * stack (transaction layer, dialogs, SDP offer/answer). RTP: by default one socket speaks for every
 * call (`--sockets shared`, argv), as an SBC's media relay or a trunk's gateway might, and the node
 * sees what it always sees — each call's stream at its own port, from the address the SDP gave;
 * the generator, which shares a core with the bot, pays a system call per slot's run of packets
 * (sendmmsg) and per batch received instead of one per packet and per socket (docs/decisions/0020).
 * `--sockets per-call` gives each call its own socket, as a phone would have. The RTP sockets use
 * the node's own I/O backend (edge/media/rtp-io.ts): the native I/O
 * thread when the addon is built — datagrams arrive in batches and leave with one sendto each,
 * without node:dgram's per-packet JavaScript, and each carries the time the thread read it from
 * the socket. The generator shares a core with the echo bot and nats-server: with node:dgram its
 * own event-loop lag there (20–40 ms at 200 calls) was added to every bot→caller latency it
 * measured. `--rtp-io dgram` (argv) keeps node:dgram.
 *
 * Every call sends marked G.711 µ-law frames at 20 ms and reads the marker of what comes back, so
 * loss and latency are counted per frame, not estimated: the byte marker (bench/frame.ts) when the
 * bot speaks 8 kHz, the tone marker (bench/tone-mark.ts) when the node resamples to 16 kHz.
 *
 * RTP pacing: each 20 ms period is split into `phases` slots and calls spread over them, so the
 * system under test sees a steady stream rather than one burst every 20 ms (a real population of
 * phones is not phase-locked). With native RTP I/O the addon's I/O thread keeps the slots: it
 * wakes the generator a little before each one, the generator stages the slot's packets, and the
 * thread sends them at the slot's time, which is also their send stamp — so the callers' streams
 * are as steady as a phone's, not as steady as the generator's event loop (`--pacing timer` keeps
 * the old way). Otherwise one timer for all calls: slot times are absolute, and a late wake-up
 * sends what is due. Either way the lateness is reported as the generator's own health figure.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createRtpIo, NativeRtpIo, type RtpIo } from '../edge/media/rtp-io.js';
import { ipv4ToU32, type RtpSocket } from '../edge/media/rtp-socket.js';
import { StagedRecords } from '../edge/media/staged-records.js';
import { Dialog } from '../sip/dialog.js';
import { newCallId, newTag } from '../sip/ids.js';
import { SipHeaders } from '../sip/headers.js';
import { parseMessage, serializeMessage, type SipMessage, type SipRequest, type SipResponse } from '../sip/message.js';
import { applyAnswer, createOffer, formatSdp, parseSdp, type Sdp } from '../sip/sdp.js';
import { TransactionLayer, systemScheduler, type Destination, type ServerTransactionHandle } from '../sip/transaction-layer.js';
import { parseNameAddr, parseUri } from '../sip/uri.js';
import { monoMs, monoUs32 } from './clock.js';
import { FRAME_SAMPLES, readUlawFrame, usDiff, writeCallerFrame, type FrameMark } from './frame.js';
import { Histogram } from '../edge/histogram.js';
import { SliceRecorder } from './slices.js';
import { readToneUlaw, unwrapUs24, writeFillerUlaw, writeToneUlaw, type ToneMark } from './tone-mark.js';
import { LOADGEN_SHARED_RCVBUF, type FailureCounts, type FromLoadgen, type LoadgenConfig, type ToLoadgen } from './messages.js';
import { OpusReplay } from './opus-caller.js';

const HOST = '127.0.0.1';
const HOST_IP = ipv4ToU32(HOST)!;
const PACKET_BYTES = 12 + FRAME_SAMPLES;
/**
 * How often the native I/O thread reads the sockets while packets keep coming, and how long it
 * gathers them before handing them over (the node uses 2 ms). Arrivals carry the kernel's stamps,
 * so this costs the measurement nothing; it sets how many turns of the event loop the generator's
 * core pays for (0.5 ms until the stamps were the kernel's).
 */
const RECV_BATCH_MS = 1;

type CallState = 'inviting' | 'up' | 'ending' | 'ended' | 'failed';

interface Call {
  index: number;
  tag: number;
  state: CallState;
  socket: RtpSocket;
  rtpPort: number;
  offer: Sdp;
  invite: SipRequest;
  dialog: Dialog | undefined;
  ack: SipRequest | undefined;
  remote: { address: string; port: number };
  remoteIp: number;
  payloadType: number;
  ssrc: number;
  seq: number;
  timestamp: number;
  frameSeq: number;
  packets: [Uint8Array, Uint8Array];
  inviteAtMs: number;
  sentInWindow: number;
  recvInWindow: number;
  firstPacket: boolean;
  /** Where in the talk/pause cycle this call starts, frames: calls do not pause in unison. */
  cycleOffset: number;
  /**
   * Tone marker only: the send time of the last 256 frames, by sequence mod 256. The tone marker
   * carries 8 bits of sequence and no room for the caller's stamp on the way back, so the round
   * trip is looked up here (right while it is under 256 frames, 5.1 s).
   */
  sentUs: Uint32Array | undefined;
  /** Where readMark puts what it read (one per call, reused). */
  mark: FrameMark;
}

let config: LoadgenConfig | undefined;
let sip: Socket;
let rtpIo: RtpIo;
/** `--sockets shared`: the one RTP socket of every call (see the header); undefined: one per call. */
let sharedRtp: RtpSocket | undefined;
/** Shared socket: the calls by the node's RTP port (one host, so a port is one call's). */
const byNodePort = new Map<number, Call>();
/** Who keeps the RTP slots: the native I/O thread's clock, or a JavaScript timer (see the header). */
let pacing: 'io' | 'timer' = 'timer';
let layer: TransactionLayer;
const calls: Call[] = [];
const byCallId = new Map<string, Call>();
let phases: Call[][] = [];
const failures: FailureCounts = {};
let up = 0;
let pending = 0;
let failed = 0;
let hangingUp = false;
/** `--codec opus`: the pre-encoded stream every call replays (bench/opus-caller.ts). */
let opus: OpusReplay | undefined;

// Measurement window (µs mod 2^32 on the shared clock).
let winFrom = 0;
let winTo = 0;
let winActive = false;
function inWindow(us: number): boolean {
  return winActive && usDiff(us, winFrom) >= 0 && usDiff(us, winTo) < 0;
}
let sentInWindow = 0;
let recvInWindow = 0;
let unmarked = 0;
let lagMaxWindowMs = 0;
const botToCaller = new Histogram();
/** b→c over the window's time: one event or steady (bench/slices.ts); 30 ms is issue 6's budget. */
const botToCallerSlices = new SliceRecorder(100, 30);
const roundTrip = new Histogram();
const setup = new Histogram();

// Last-second progress figures.
let sentLastS = 0;
let recvLastS = 0;
let lagMaxLastMs = 0;
const rttLast = new Histogram();

function send(msg: FromLoadgen): void {
  process.send?.(msg);
}

function fail(call: Call, reason: string): void {
  if (call.state === 'failed' || call.state === 'ended') return;
  if (call.state === 'up') up--;
  if (call.state === 'inviting') pending--;
  call.state = 'failed';
  failed++;
  failures[reason] = (failures[reason] ?? 0) + 1;
  removeFromPhase(call);
  releaseRtp(call);
}

/** The call's RTP is over: its own socket closes; the shared one forgets it. */
function releaseRtp(call: Call): void {
  if (call.socket !== sharedRtp) call.socket.close();
  else if (byNodePort.get(call.remote.port) === call) byNodePort.delete(call.remote.port);
}

function removeFromPhase(call: Call): void {
  const list = phases[call.index % phases.length];
  if (!list) return;
  const i = list.indexOf(call);
  if (i >= 0) list.splice(i, 1);
}

/** Where an in-dialog request goes: the first Route, else the remote target (RFC 3261 §12.2.1.1). */
function dialogDestination(dialog: Dialog): Destination {
  const route = dialog.routeSet[0];
  const uri = route !== undefined ? parseNameAddr(route).uri : parseUri(dialog.remoteTarget);
  return { address: uri.params.get('maddr') ?? uri.host, port: uri.port ?? 5060, transport: 'udp' };
}

async function bindRtp(): Promise<{ socket: RtpSocket; port: number }> {
  const socket = sharedRtp ?? (await rtpIo.bind(HOST, 0));
  return { socket, port: socket.port };
}

async function startCall(index: number): Promise<void> {
  const cfg = config!;
  pending++;
  let bound;
  try {
    bound = await bindRtp();
  } catch {
    pending--;
    failed++;
    failures['rtp-bind'] = (failures['rtp-bind'] ?? 0) + 1;
    return;
  }
  const offer = createOffer({ address: HOST, port: bound.port, codecs: opus ? ['opus'] : ['PCMU'], telephoneEvent: true });
  const callId = newCallId(HOST);
  const local = `sip:bench@${HOST}:${sip.address().port}`;
  const h = new SipHeaders();
  h.set('Max-Forwards', '70');
  h.set('From', `<sip:bench-${index}@${HOST}>;tag=${newTag()}`);
  h.set('To', `<sip:${cfg.number}@${cfg.host}:${cfg.port}>`);
  h.set('Call-ID', callId);
  h.set('CSeq', '1 INVITE');
  h.set('Contact', `<${local}>`);
  h.set('Content-Type', 'application/sdp');
  const invite: SipRequest = {
    kind: 'request',
    method: 'INVITE',
    uri: `sip:${cfg.number}@${cfg.host}:${cfg.port}`,
    headers: h,
    body: Buffer.from(formatSdp(offer)),
  };
  const call: Call = {
    index,
    tag: (index + 1) >>> 0,
    state: 'inviting',
    socket: bound.socket,
    rtpPort: bound.port,
    offer,
    invite,
    dialog: undefined,
    ack: undefined,
    remote: { address: HOST, port: 0 },
    remoteIp: HOST_IP,
    payloadType: 0,
    ssrc: (Math.random() * 0x100000000) >>> 0,
    seq: (Math.random() * 0x10000) >>> 0,
    timestamp: (Math.random() * 0x100000000) >>> 0,
    frameSeq: 0,
    packets: opus ? [new Uint8Array(12 + opus.maxBytes), new Uint8Array(12 + opus.maxBytes)] : [new Uint8Array(PACKET_BYTES), new Uint8Array(PACKET_BYTES)],
    inviteAtMs: monoMs(),
    sentInWindow: 0,
    recvInWindow: 0,
    firstPacket: true,
    cycleOffset: Math.floor(Math.random() * Math.max(1, cycleFrames)),
    sentUs: cfg.botRate === 16000 ? new Uint32Array(256) : undefined,
    mark: { tag: 0, seq: 0, callerUs: 0, botUs: 0 },
  };
  calls.push(call);
  byCallId.set(callId, call);
  // Only the node's RTP port is the call's media (what a connected socket used to filter); the
  // shared socket finds the call by that port once the answer gives it (onInviteResponse).
  if (!sharedRtp) {
    bound.socket.onPacket = (packet, ip, port, arrivalUs) => {
      if (port === call.remote.port && ip === call.remoteIp) onRtp(call, packet, arrivalUs, call.mark);
    };
  }
  const dest: Destination = { address: cfg.host, port: cfg.port, transport: 'udp' };
  try {
    layer.sendRequest(invite, dest, {
      onResponse: (res) => onInviteResponse(call, res),
      onTimeout: () => fail(call, 'invite-timeout'),
      onTransportError: () => fail(call, 'transport-error'),
    });
  } catch {
    fail(call, 'send-error');
  }
}

function onInviteResponse(call: Call, res: SipResponse): void {
  if (res.status < 200) return;
  if (res.status >= 300) {
    fail(call, `sip-${res.status}`);
    return;
  }
  if (call.dialog === undefined) {
    if (call.state !== 'inviting') return;
    try {
      call.dialog = Dialog.fromUac(call.invite, res);
      const answer = applyAnswer(call.offer, parseSdp(Buffer.from(res.body).toString('utf8')));
      const remoteIp = ipv4ToU32(answer.remote.address);
      if (remoteIp === undefined) throw new Error(`answered media address ${answer.remote.address} is not IPv4`);
      call.remote = answer.remote;
      call.remoteIp = remoteIp;
      if (sharedRtp) byNodePort.set(call.remote.port, call);
      call.payloadType = answer.codec.payloadType;
      const offered = opus ? 'opus' : 'PCMU';
      if (answer.codec.name !== offered) throw new Error(`answered ${answer.codec.name}, offered ${offered} only`);
      call.ack = call.dialog.createAck(1);
    } catch {
      fail(call, 'bad-answer');
      return;
    }
    setup.record((monoMs() - call.inviteAtMs) * 1000);
    pending--;
    up++;
    call.state = 'up';
    phases[call.index % phases.length]!.push(call);
  }
  // 2xx retransmissions get the same ACK again (RFC 3261 §13.2.2.4).
  if (call.ack && call.dialog) layer.sendStateless(call.ack, dialogDestination(call.dialog));
}

const tone: ToneMark = { tag: 0, seq: 0, us24: 0 };

/** Reads the marker of an echoed frame into `mark` (both stamps 32-bit); false when unmarked or another call's. */
function readMark(call: Call, payload: Uint8Array, now: number, mark: FrameMark): boolean {
  if (!call.sentUs) return readUlawFrame(payload, mark) !== undefined && mark.tag === call.tag;
  if (!readToneUlaw(payload, tone) || tone.tag !== (call.tag & 0xfff)) return false;
  mark.tag = call.tag;
  mark.seq = tone.seq;
  mark.callerUs = call.sentUs[tone.seq]!;
  mark.botUs = unwrapUs24(tone.us24, now);
  return true;
}

/**
 * `now`: when the datagram was read from its socket (the native I/O thread's stamp, or the dgram
 * message event's), so the generator's own event-loop lag is not counted as the system's latency.
 */
function onRtp(call: Call, msg: Uint8Array, now: number, mark: FrameMark): void {
  if (call.state !== 'up' && call.state !== 'ending') return;
  if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
  if (opus) {
    // No marker survives Opus: count packets, by arrival time (bench/opus-caller.ts).
    recvLastS++;
    if (inWindow(now)) {
      recvInWindow++;
      call.recvInWindow++;
    }
    return;
  }
  const offset = 12 + (msg[0]! & 0x0f) * 4 + ((msg[0]! & 0x10) !== 0 ? 4 + 4 * ((msg[14 + (msg[0]! & 0x0f) * 4]! << 8) | msg[15 + (msg[0]! & 0x0f) * 4]!) : 0);
  const payload = msg.subarray(offset);
  if (!readMark(call, payload, now, mark)) {
    // Silence is the node's filler, not a frame; nor is our own filler coming back.
    if (!(payload[0] === 0xff && payload[1] === 0xff) && markEvery === 1) unmarked++;
    return;
  }
  const rtt = usDiff(now, mark.callerUs);
  recvLastS++;
  rttLast.record(rtt);
  if (inWindow(mark.callerUs)) roundTrip.record(rtt);
  if (inWindow(mark.botUs)) {
    recvInWindow++;
    call.recvInWindow++;
    const latencyUs = usDiff(now, mark.botUs);
    botToCaller.record(latencyUs);
    botToCallerSlices.record(mark.botUs, latencyUs);
  }
}

/**
 * Builds and sends a call's next frame. `dueUs`: when it leaves, if the I/O thread sends it at a
 * slot's time (staged); undefined: at once, stamped now.
 */
function sendFrame(call: Call, dueUs?: number): void {
  const packet = call.packets[call.frameSeq & 1]!;
  call.frameSeq++;
  call.seq = (call.seq + 1) & 0xffff;
  call.timestamp = (call.timestamp + (opus ? 960 : FRAME_SAMPLES)) >>> 0; // RFC 7587: Opus' RTP clock is 48 kHz
  packet[0] = 0x80;
  packet[1] = (call.firstPacket ? 0x80 : 0) | call.payloadType;
  call.firstPacket = false;
  packet[2] = call.seq >>> 8;
  packet[3] = call.seq & 0xff;
  packet[4] = call.timestamp >>> 24;
  packet[5] = (call.timestamp >>> 16) & 0xff;
  packet[6] = (call.timestamp >>> 8) & 0xff;
  packet[7] = call.timestamp & 0xff;
  packet[8] = call.ssrc >>> 24;
  packet[9] = (call.ssrc >>> 16) & 0xff;
  packet[10] = (call.ssrc >>> 8) & 0xff;
  packet[11] = call.ssrc & 0xff;
  const us = dueUs ?? monoUs32();
  if (opus) {
    const payload = opus.frame(call.frameSeq + call.cycleOffset);
    packet.set(payload, 12);
    if (inWindow(us)) {
      sentInWindow++;
      call.sentInWindow++;
    }
    sentLastS++;
    emit(call, packet, 12 + payload.length, dueUs);
    return;
  }
  if (cycleFrames > 0 && (call.frameSeq + call.cycleOffset) % cycleFrames >= talkFrames) {
    // The caller's pause: G.711 silence, unmarked; the bot does not answer it (see echo-bot.ts).
    packet.fill(0xff, 12);
  } else if (call.sentUs && call.frameSeq % markEvery !== 0) {
    // Unmarked talk: the same work for the node, none for the harness's readers (one DFT bin).
    packet.set(FILLER, 12);
    sentLastS++;
  } else {
    if (call.sentUs) {
      writeToneUlaw(packet.subarray(12), call.tag, call.frameSeq, us);
      call.sentUs[call.frameSeq & 0xff] = us;
    } else {
      writeCallerFrame(packet.subarray(12), call.tag, call.frameSeq, us);
    }
    if (inWindow(us)) {
      sentInWindow++;
      call.sentInWindow++;
    }
    sentLastS++;
  }
  // Staged: the I/O thread sends it at the slot's time, its stamp. sendNow: out at once, right after
  // the stamp above (not on the I/O thread's next beat).
  emit(call, packet, PACKET_BYTES, dueUs);
}

/**
 * The shared native socket's packets, laid out as the I/O thread's staged records and handed over
 * in one N-API call: a slot's on-time packets with one stageRecords at its beat, a late slot's with
 * one sendRecords per RECORD_RUN. The thread sends consecutive records of one socket with one
 * sendmmsg. A late packet was stamped as it was built, so it leaves at most the building of the
 * rest of its run after its stamp (well under a millisecond): a bias against the node's caller →
 * bot latency, never for it. recordSlot -1 (a socket per call, or node:dgram): each packet goes by
 * itself.
 */
let recordSlot = -1;
const RECORD_RUN = 32;
const records = new StagedRecords();

/** Sends (dueUs undefined: at once) or stages (for dueUs) a call's packet. */
function emit(call: Call, packet: Uint8Array, len: number, dueUs: number | undefined): void {
  if (recordSlot < 0) {
    if (dueUs === undefined) call.socket.sendNow(packet, len, call.remoteIp, call.remote.port);
    else call.socket.send(packet, len, call.remoteIp, call.remote.port);
    return;
  }
  records.add(recordSlot, packet, len, call.remoteIp, call.remote.port);
  if (dueUs === undefined && records.count === RECORD_RUN) flushRecords(false);
}

/** Hands over what emit laid out: staged for the current beat's due time, or sent at once. */
function flushRecords(staged: boolean): void {
  if (records.length === 0) return;
  const engine = (rtpIo as NativeRtpIo).engine;
  if (staged) {
    if (!engine.stageRecords(records.bytes, records.length)) throw new Error('the generator laid out a malformed record');
  } else {
    engine.sendRecords(records.bytes, records.length);
  }
  records.clear();
}

// ---------------------------------------------------------------------------------------------
// The RTP clock: absolute slots, `phases` per 20 ms.

let slotMs = 5;
// Talk spurts: `talkFrames` marked frames, then `cycleFrames - talkFrames` frames of silence.
let talkFrames = 0;
let cycleFrames = 0;
/** 16 kHz tone marks: one frame in `markEvery` is marked, the rest are FILLER (LoadgenConfig.markEvery). */
let markEvery = 1;
const FILLER = new Uint8Array(160);
writeFillerUlaw(FILLER);
let nextSlotAt = 0;
let slot = 0;

function runSlots(): void {
  const now = monoMs();
  const late = now - nextSlotAt;
  if (late > lagMaxLastMs) lagMaxLastMs = late;
  if (winActive && late > lagMaxWindowMs) lagMaxWindowMs = late;
  // Catch up at most one period; beyond that, resynchronise (a burst of seconds would be a lie too).
  if (late > 20) {
    nextSlotAt = now;
  }
  while (nextSlotAt <= now) {
    const list = phases[slot % phases.length]!;
    for (let i = 0; i < list.length; i++) sendFrame(list[i]!);
    flushRecords(false);
    slot++;
    nextSlotAt += slotMs;
  }
  setTimeout(runSlots, Math.max(0, nextSlotAt - monoMs()));
}

/**
 * The I/O thread's clock beats every PACED_SLOT_MS; with fewer phases than its beats per 20 ms a
 * slot spans several beats and sends on the first. Its lead adapts to the generator's event loop
 * (up to PACED_MAX_LEAD_MS): a slot whose packets were staged after their time leaves late, and
 * that lateness is the generator's lag.
 */
const PACED_SLOT_MS = 5;
const PACED_MAX_LEAD_MS = 4;
/**
 * A slot whose staging starts later than this after its due time leaves packet by packet, each
 * stamped as it is sent (pacedSlot). Staging a slot's packets takes well under a millisecond.
 */
const LATE_SLOT_MS = 0.5;
/** Slots sent that way, in the window. */
let lateSlots = 0;
let beat = 0;

function pacedSlot(): void {
  const io = rtpIo as NativeRtpIo;
  const dueUs = io.clock.dueUs;
  const late = Math.max(0, usDiff(monoUs32(), dueUs) / 1000);
  if (late > lagMaxLastMs) lagMaxLastMs = late;
  if (winActive && late > lagMaxWindowMs) lagMaxWindowMs = late;
  const beatsPerSlot = 20 / PACED_SLOT_MS / phases.length;
  if (beat++ % beatsPerSlot !== 0) return;
  const list = phases[slot++ % phases.length]!;
  if (late > LATE_SLOT_MS) {
    // The thread would send this slot at our commit, after its due time, yet stamped with it: the
    // generator's own lateness would count as the node's caller → bot latency. Send each packet at
    // once instead, stamped as it is built — the rule the arrival stamps follow the other way —
    // in runs from the shared socket (emit).
    if (winActive) lateSlots++;
    for (let i = 0; i < list.length; i++) sendFrame(list[i]!);
    flushRecords(false);
    return;
  }
  for (let i = 0; i < list.length; i++) sendFrame(list[i]!, dueUs);
  flushRecords(true);
}

// ---------------------------------------------------------------------------------------------
// Placing calls at a rate.

let nextIndex = 0;

async function placeCalls(target: number): Promise<void> {
  const cfg = config!;
  const want = target - (up + pending);
  const startMs = monoMs();
  const intervalMs = 1000 / cfg.rate;
  const startFailed = failed;
  const startUp = up;
  const starts: Promise<void>[] = [];
  for (let i = 0; i < want; i++) {
    const at = startMs + i * intervalMs;
    const wait = at - monoMs();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    starts.push(startCall(nextIndex++));
  }
  await Promise.all(starts);
  // Wait for every INVITE of this batch to end one way or the other.
  const deadline = monoMs() + cfg.setupTimeoutMs;
  while (pending > 0 && monoMs() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (pending > 0) for (const c of calls) if (c.state === 'inviting') fail(c, 'setup-timeout');
  const elapsedS = (monoMs() - startMs) / 1000;
  send({ type: 'reached', target, up, failed, cps: want > 0 ? (up - startUp) / Math.max(elapsedS, 1e-3) : 0 });
  void startFailed;
}

async function hangup(): Promise<void> {
  hangingUp = true;
  let ended = 0;
  let byeFailed = 0;
  let outstanding = 0;
  const live = calls.filter((c) => c.state === 'up');
  for (let i = 0; i < live.length; i++) {
    const call = live[i]!;
    call.state = 'ending';
    up--;
    removeFromPhase(call);
    outstanding++;
    const done = (ok: boolean) => {
      if (call.state !== 'ending') return;
      call.state = 'ended';
      releaseRtp(call);
      outstanding--;
      if (ok) ended++;
      else byeFailed++;
    };
    try {
      const bye = call.dialog!.createRequest('BYE');
      layer.sendRequest(bye, dialogDestination(call.dialog!), {
        onResponse: (res) => {
          if (res.status >= 200) done(res.status < 300 || res.status === 481);
        },
        onTimeout: () => done(false),
        onTransportError: () => done(false),
      });
    } catch {
      done(false);
    }
    // Pace the BYEs a little: thousands in one burst would only measure UDP buffer overflow.
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
  }
  const deadline = monoMs() + 10_000;
  while (outstanding > 0 && monoMs() < deadline) await new Promise((r) => setTimeout(r, 20));
  send({ type: 'hungup', ended, byeFailed: byeFailed + outstanding });
}

function report(): void {
  let silentCalls = 0;
  let callsInWindow = 0;
  for (const c of calls) {
    if (c.sentInWindow === 0) continue;
    callsInWindow++;
    if (c.recvInWindow === 0) silentCalls++;
  }
  send({
    type: 'report',
    pacing,
    up,
    failed,
    failures: { ...failures },
    sentInWindow,
    recvInWindow,
    silentCalls,
    callsInWindow,
    botToCaller: botToCaller.toSparse(),
    botToCallerSlices: botToCallerSlices.series(),
    roundTrip: roundTrip.toSparse(),
    setup: setup.toSparse(),
    unmarked,
    lagMaxMs: Math.round(lagMaxWindowMs * 100) / 100,
    lateSlots,
  });
}

function onSipRequest(req: SipRequest, tx: ServerTransactionHandle | undefined): void {
  if (!tx) return; // ACK
  const call = byCallId.get(req.headers.get('Call-ID') ?? '');
  if (req.method === 'BYE') {
    tx.reply(call ? 200 : 481);
    if (call && !hangingUp) fail(call, 'bye-from-edge');
    return;
  }
  if (req.method === 'OPTIONS') {
    tx.reply(200);
    return;
  }
  tx.reply(call ? 405 : 481);
}

/** `--name value` from argv, one of `values` (the first is the default). */
function argChoice<const T extends string>(name: string, values: readonly [T, ...T[]]): T {
  const at = process.argv.indexOf(name);
  const value = at < 0 ? values[0] : process.argv[at + 1];
  if (!(values as readonly string[]).includes(value ?? '')) throw new Error(`${name}: expected ${values.join(' or ')}, got ${value}`);
  return value as T;
}

async function main(): Promise<void> {
  // auto: the node's own rule (native when built; BOTEDGE_NATIVE=0 / BOTEDGE_RTP_IO are obeyed).
  const io = argChoice('--rtp-io', ['auto', 'native', 'dgram']);
  const pacingArg = argChoice('--pacing', ['io', 'timer']);
  const sockets = argChoice('--sockets', ['shared', 'per-call']);
  let rcvbufKb: number | undefined;
  // No receive lane: it serves a media node's calls, and here it would only walk every batch.
  rtpIo = createRtpIo(HOST, io === 'auto' ? undefined : io, { batchMs: RECV_BATCH_MS, periodMs: PACED_SLOT_MS, maxLeadMs: PACED_MAX_LEAD_MS, rxLane: false, timeWrites: false });
  pacing = pacingArg === 'io' && rtpIo instanceof NativeRtpIo ? 'io' : 'timer';
  if (sockets === 'shared') {
    const socket = await rtpIo.bind(HOST, 0);
    rcvbufKb = Math.round(socket.receiveBuffer(LOADGEN_SHARED_RCVBUF) / 2048); // Linux reports double
    socket.onPacket = (packet, ip, port, arrivalUs) => {
      const call = byNodePort.get(port);
      if (call !== undefined && ip === call.remoteIp) onRtp(call, packet, arrivalUs, call.mark);
    };
    sharedRtp = socket;
    recordSlot = (socket as RtpSocket & { slot?: number }).slot ?? -1;
  }
  sip = createSocket({ type: 'udp4' });
  await new Promise<void>((resolve) => sip.bind(0, HOST, resolve));
  // Thousands of calls' SIP share this socket: give the kernel room for bursts.
  try {
    sip.setRecvBufferSize(4 * 1024 * 1024);
    sip.setSendBufferSize(4 * 1024 * 1024);
  } catch {
    /* best effort */
  }
  layer = new TransactionLayer({
    send: (msg: SipMessage, dest: Destination) => {
      sip.send(serializeMessage(msg), dest.port, dest.address);
    },
    scheduler: systemScheduler,
    onRequest: (req, tx) => onSipRequest(req, tx),
    localVia: () => ({ host: HOST, port: sip.address().port }),
  });
  sip.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
    let msg: SipMessage;
    try {
      msg = parseMessage(buf);
    } catch {
      return;
    }
    layer.receive(msg, { address: rinfo.address, port: rinfo.port, transport: 'udp' });
  });

  process.on('message', (msg: ToLoadgen) => {
    switch (msg.type) {
      case 'config':
        config = msg;
        if (msg.codec === 'opus') opus = new OpusReplay();
        phases = Array.from({ length: Math.max(1, msg.phases) }, () => []);
        slotMs = 20 / phases.length;
        talkFrames = Math.round(msg.talkMs / 20);
        cycleFrames = msg.pauseMs > 0 ? talkFrames + Math.round(msg.pauseMs / 20) : 0;
        markEvery = Math.max(1, Math.floor(msg.markEvery ?? 1));
        if (pacing === 'io' && Number.isInteger(20 / PACED_SLOT_MS / phases.length)) {
          rtpIo.clock.add(pacedSlot);
        } else {
          pacing = 'timer';
          nextSlotAt = monoMs() + slotMs;
          setTimeout(runSlots, slotMs);
        }
        break;
      case 'calls':
        void placeCalls(msg.target);
        break;
      case 'window':
        winFrom = msg.fromUs;
        winTo = msg.toUs;
        winActive = true;
        sentInWindow = 0;
        recvInWindow = 0;
        lagMaxWindowMs = 0;
        lateSlots = 0;
        for (const c of calls) {
          c.sentInWindow = 0;
          c.recvInWindow = 0;
        }
        botToCaller.reset();
        botToCallerSlices.start(msg.fromUs, msg.toUs);
        roundTrip.reset();
        break;
      case 'report':
        report();
        break;
      case 'hangup':
        void hangup();
        break;
      case 'exit':
        process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  // The bench stops its children with SIGTERM: exit through process.exit, so flags such as
  // --cpu-prof (--loadgen-flags) write their files.
  process.on('SIGTERM', () => process.exit(0));

  setInterval(() => {
    send({
      type: 'progress',
      up,
      pending,
      failed,
      sentLastS,
      recvLastS,
      rttP99LastMs: Math.round(rttLast.quantileUs(0.99) / 10) / 100,
      lagMaxLastMs: Math.round(lagMaxLastMs * 100) / 100,
    });
    sentLastS = 0;
    recvLastS = 0;
    lagMaxLastMs = 0;
    rttLast.reset();
  }, 1000).unref();
  send({ type: 'ready', rtpIo: rtpIo.kind, sockets, ...(rcvbufKb !== undefined ? { rcvbufKb } : {}) });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench loadgen: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
