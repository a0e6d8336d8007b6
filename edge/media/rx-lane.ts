/**
 * The G.711 receive lane (native/rx_lane.cc, decision 0013): with native RTP I/O, the caller's
 * packets of answered G.711 calls whose bot is on a `native-mux` connection go from the I/O
 * thread's arena straight into that connection's batch, decoded and resampled, without a
 * JavaScript call per packet. Only the plain packet takes the lane (the very next one of the
 * stream, nothing to conceal, from the caller's address); everything else — and every other call —
 * takes the JavaScript path, CallMedia#onPacket, which stays the one that defines what happens.
 *
 * The two share each call's state: CallMedia keeps its receive state, and RtpReceiveStats its
 * figures, in the call's block of one Float64Array (`LANE` names the words; the lane updates them
 * for the packets it takes). A mux connection's batch lives in the lane (`LaneOutput`, the
 * RecordWriter of that connection), so frames of both paths queue in one place, in order.
 *
 * The bot half works the same way the other way round: a binary message from the mux bot goes to
 * the lane first (`LaneOutput.runBot`), which queues each plain frame (a whole 20 ms, the
 * downsampler in phase, room in the playout ring) into the call's playout buffer, whose positions
 * live in the block too; JavaScript reads the rest of the message. A frame the call's tick held
 * slots for fills them there and then, their packets sent at once (`sendHeldWith`, decision 0019).
 *
 * `BOTEDGE_RX_LANE=0` turns it off (the JavaScript path for every packet); it is off by itself
 * without the addon or with `dgram` RTP I/O.
 */
import type { FirPlan } from '../../codecs/fir.js';
import { nativeExport } from '../../codecs/native.js';
import { RX, RX_WORDS } from '../../codecs/rtp-stats.js';
import { walkRecords } from '../../sdk/mux-wire.js';
import { PLAY, PLAY_WORDS } from './playout.js';
import { STAGED_HEADER } from './staged-records.js';
import type { TickSkip } from './clock-subscribers.js';

/** The words of a call's block (native/rx_lane.cc `Word`). */
export const LANE = {
  /** 1: the lane may take this call's packets (CallMedia decides). */
  on: 0,
  /** 0 PCMU, 1 PCMA. */
  codec: 1,
  pt: 2,
  srcIp: 3,
  srcPort: 4,
  stream: 5,
  output: 6,
  /** CallMedia: samples in its partly filled 20 ms frame (the lane needs none). */
  frameFill: 7,
  /** CallMedia: the newest caller packet passed to the bot (SSRC −1: none yet). */
  inSsrc: 8,
  inSeq: 9,
  inTs: 10,
  inSpan: 11,
  /** Samples of the last packet in CallMedia's decode buffer. */
  decodedLen: 12,
  /** Packets the lane took; CallMedia adds them to rtpReceived and framesToBot. */
  packets: 13,
  /** RtpReceiveStats' words (codecs/rtp-stats.ts RX) from here. */
  rx: 16,
  /** The bot half. 1: the lane may queue this call's bot frames for playout. */
  botOn: 32,
  /**
   * Slots held for a late bot frame (CallMedia's tick or the lane's): their packets leave when the
   * frame comes (CallMedia #fillHeld, or the bot half's FillHeld: the host's sendHeldWith).
   */
  held: 33,
  /** The downsampler's phase (Resampler.phase): the lane needs 0. */
  downPhase: 34,
  /** Bot frames the lane queued; CallMedia adds them to framesFromBot. */
  botFrames: 35,
  /** PlayoutBuffer's state (playout.ts PLAY, PLAY_WORDS words) from here. */
  play: 36,
  /**
   * The send half (the tick): 1 when the lane may play this call's next frame out (CallMedia
   * decides: sending, no DTMF going out, the caller's address known).
   */
  txOn: 48,
  /**
   * 1: the lane played this tick's frame out (staged its packet). The clock then skips the call's
   * JavaScript tick and clears the word (clock-subscribers.ts; CallMedia.tick, if called, too).
   */
  txDone: 49,
  /** The RTP header of the last packet sent: sequence number and timestamp; the SSRC; the marker to send next. */
  txSeq: 50,
  txTs: 51,
  txSsrc: 52,
  txMarker: 53,
  /** Where the caller's RTP goes. */
  dstIp: 54,
  dstPort: 55,
  /** CallMedia: the last slot carried a whole frame (late-frame catch-up). */
  speaking: 56,
  /** 1: late-frame catch-up is on for this call. */
  catchUp: 57,
  /** Packets the lane's tick sent for this call, ever; CallMedia adds them to its counters when they are read. */
  txSent: 58,
  /**
   * A bot with a socket of its own that the lane writes to (LaneSlot.attachWriter). 1: JavaScript
   * has something of that socket's unwritten (BotStream keeps it: queued frames, or bytes Node's
   * stream holds), so the lane leaves frames to JavaScript; the lane sets it when the kernel's
   * queue is too full to write a whole frame.
   */
  wsBlocked: 59,
  /** Frames the lane wrote to that socket, ever; BotStream adds them to framesSent. */
  wsSent: 60,
  /** How many slots in a row may wait for a late frame (CallMedia's route playoutCatchUpMs / 20). */
  maxHeld: 61,
  /** Late frames the lane's bot half sent in their held slots; CallMedia adds them to playoutLateFrames. */
  lateFrames: 62,
} as const;
export const LANE_WORDS = 64;
/** An arena record the lane took: its slot word is overwritten with this. */
export const LANE_TAKEN = 0xffffffff;

interface NativeRxLane {
  attach(slot: number, decoded: Int16Array, plan: FirPlan | null, work: Int16Array | null): void;
  attachBot(slot: number, plan: FirPlan | null, work: Int16Array | null, ring: Int16Array): void;
  bind(output: number, stream: number, slot: number): void;
  unbind(output: number, stream: number): void;
  runBot(output: number, msg: Uint8Array): number;
  takeBot(slot: number, frame: Uint8Array): boolean;
  attachWriter(slot: number, fd: number): boolean;
  detachWriter(slot: number): void;
  wsWritten(): number;
  table(): ArrayBuffer;
  detach(slot: number): void;
  run(arena: 0 | 1, length: number): number;
  openOutput(): number;
  closeOutput(output: number): void;
  /** False when the buffer has no room: setBuffer a larger one, then append again. */
  append(output: number, stream: number, pcm: Int16Array): boolean;
  /** The batch's length in bytes; the batch starts afresh. */
  take(output: number): number;
  setBuffer(output: number, buf: Uint8Array): void;
  /** Plays out this tick's frame of every plain call: staged records (RtpIo.stageRecords) in buf; their bytes. */
  tick(buf: Uint8Array): number;
  /** Where the bot half lays out the packets of held slots it fills; counters: [bytes in buf, slots the tick held (ever, mod 2^32)]. */
  setNow(buf: Uint8Array, counters: Uint32Array): void;
}
type NativeRxLaneClass = new (arena0: ArrayBuffer, arena1: ArrayBuffer, slots: number, ready: Uint8Array, pending: Uint32Array) => NativeRxLane;

interface Layout extends Record<string, unknown> {
  words: number;
  maxOutputs: number;
  rxWords: Record<string, number>;
  playWords: Record<string, number>;
  stagedRecord: number;
}

/** The addon's lane, or why not: missing, disabled, or built with another block layout. */
export function loadRxLane(): NativeRxLaneClass | Error {
  if (process.env['BOTEDGE_RX_LANE'] === '0') return new Error('receive lane disabled by BOTEDGE_RX_LANE=0');
  const Lane = nativeExport<NativeRxLaneClass>('RxLane');
  const layout = nativeExport<Layout>('rxLaneLayout');
  if (Lane instanceof Error) return Lane;
  if (layout instanceof Error) return layout;
  const mismatch =
    layout.words !== LANE_WORDS ||
    layout.maxOutputs !== MAX_OUTPUTS ||
    layout.stagedRecord !== STAGED_RECORD ||
    Object.entries(LANE).some(([k, v]) => layout[k] !== v) ||
    Object.entries(RX).some(([k, v]) => layout.rxWords[k] !== v) ||
    Object.keys(layout.rxWords).length !== RX_WORDS ||
    Object.entries(PLAY).some(([k, v]) => layout.playWords[k] !== v) ||
    Object.keys(layout.playWords).length !== PLAY_WORDS;
  return mismatch ? new Error('native addon lays out the lane block differently: rebuild it') : Lane;
}

const MAX_OUTPUTS = 1024;
/** A staged packet of the tick: rtp_io.cc's record header and a 172-byte G.711 packet. */
const STAGED_RECORD = STAGED_HEADER + 172;

/** A direct batch's frame for its call: `count` samples of `samples` from `at` (valid during the call only). */
export type DirectFrame = (samples: Int16Array, at: number, count: number) => void;

/** Where the lane puts a call's caller frames (CallMedia.laneTo), and how to let go of it. */
export interface LaneTarget {
  output: LaneOutput;
  stream: number;
  release?: () => void;
}

export class RxLaneHost {
  readonly table: Float64Array;
  readonly #ready = new Uint8Array(MAX_OUTPUTS);
  readonly #pending = new Uint32Array(MAX_OUTPUTS);
  readonly #native: NativeRxLane;
  readonly #outputs = new Map<number, LaneOutput>();
  /** Caller packets the lane has taken, bot frames it has queued, and packets its tick staged, node-wide (the `rtpIo` status). */
  taken = 0;
  botTaken = 0;
  txTaken = 0;
  /** Packets of held slots the bot half filled and sent at once (late-frame catch-up in the lane). */
  heldSent = 0;
  /**
   * Runs before the lane takes each bot message (runBot, takeBot): the native RTP I/O delivers a
   * caller arena that became ready meanwhile there (NativeRtpIo.deliverReady), so caller audio
   * does not wait behind the rest of the bots' messages read in the same turn (decision 0023).
   */
  beforeBot: (() => void) | undefined;

  /** Slots the lane's tick held for a late bot frame, ever (mod 2^32). */
  get txHeld(): number {
    return this.#nowCounters[1]!;
  }

  /** Caller frames the lane wrote to per-call bots' sockets itself (LaneSlot.attachWriter). */
  get wsWritten(): number {
    return this.#native.wsWritten();
  }
  /** The tick's staged records; grown when the calls outgrow it. */
  #txBuf = new Uint8Array(256 * STAGED_RECORD);
  /** This tick's records (a barge-in finds its call's packet there: stagedPacket). */
  #txStaged = new Uint8Array(0);
  /** The node's batch for calls whose bot has a socket of its own, and who each of its streams is. */
  #direct: LaneOutput | undefined;
  readonly #directCalls = new Map<number, DirectFrame>();
  #nextDirect = 0;
  /** A direct frame's consumer threw (the arena's other packets still go on). */
  onError: ((err: unknown) => void) | undefined;
  /** The packets of held slots the bot half filled (staged records), and where they go at once. */
  #now = new Uint8Array(0);
  readonly #nowCounters = new Uint32Array(2);
  #sendNow: ((records: Uint8Array, bytes: number) => void) | undefined;

  /** `slots`: the RTP I/O's socket slots (one block each). */
  constructor(Lane: NativeRxLaneClass, arena0: ArrayBuffer, arena1: ArrayBuffer, slots: number) {
    // The lane's own memory, mapped on first touch: only the blocks of slots in use cost RSS.
    this.#native = new Lane(arena0, arena1, slots, this.#ready, this.#pending);
    this.table = new Float64Array(this.#native.table());
    // No room for held slots' packets until someone sends them (sendHeldWith); the counters now.
    this.#native.setNow(this.#now, this.#nowCounters);
  }

  /**
   * Late-frame catch-up in the lane (decision 0019): the bot half may fill the slots a call holds
   * for a late frame, and `send` sends their packets (staged records: RtpIo.sendRecords) at once,
   * as CallMedia's #fillHeld would. Without it, such frames are left to JavaScript.
   */
  sendHeldWith(send: (records: Uint8Array, bytes: number) => void): void {
    this.#sendNow = send;
    this.#now = new Uint8Array(64 * STAGED_RECORD);
    this.#native.setNow(this.#now, this.#nowCounters);
  }

  /** @internal After runBot and takeBot: the held slots' packets they made leave now; room for more next time. */
  flushHeld(): void {
    const bytes = this.#nowCounters[0]!;
    if (bytes === 0) return;
    this.#nowCounters[0] = 0;
    this.heldSent += bytes / STAGED_RECORD;
    this.#sendNow!(this.#now, bytes);
    // Half full: a message that fills more of it is left to JavaScript, so grow first.
    if (bytes * 2 > this.#now.length) {
      this.#now = new Uint8Array(2 * this.#now.length);
      this.#native.setNow(this.#now, this.#nowCounters);
    }
  }

  /** The block and arrays of the call on socket slot `slot`. */
  slot(slot: number): LaneSlot {
    return new LaneSlot(this, this.#native, slot, this.table.subarray(slot * LANE_WORDS, (slot + 1) * LANE_WORDS));
  }

  /**
   * Takes what it can of an arena before JavaScript reads it (taken records are marked
   * LANE_TAKEN). Each batch says first whether it takes frames now, and is flushed after.
   */
  run(arena: 0 | 1, length: number): number {
    for (const [i, out] of this.#outputs) this.#ready[i] = out.ready() ? 1 : 0;
    const n = this.#native.run(arena, length);
    if (n > 0) {
      this.taken += n;
      for (const [i, out] of this.#outputs) if (this.#pending[i]! > 0) out.onPending();
    }
    return n;
  }

  /**
   * The send half, at the start of a tick: plays out the frame of every call it can and hands the
   * packets to `stage` (RtpIo.stageRecords). The calls it played out have LANE.txDone set: the
   * clock does not call their JavaScript tick.
   */
  tick(stage: (records: Uint8Array, bytes: number) => void): void {
    const buf = this.#txBuf;
    const bytes = this.#native.tick(buf);
    this.#txStaged = buf.subarray(0, bytes);
    if (bytes > 0) {
      stage(buf, bytes);
      this.txTaken += bytes / STAGED_RECORD;
    }
    // Full: the calls it could not visit tick in JavaScript this time, and fit next time.
    if (buf.length - bytes < STAGED_RECORD) this.#txBuf = new Uint8Array(2 * buf.length);
  }

  /**
   * The packet this tick staged for the call on `slot`, copied into `into` (172 bytes at least):
   * its length, or 0. Rare (a barge-in): a walk over the tick's records.
   */
  stagedPacket(slot: number, into: Uint8Array): number {
    const records = this.#txStaged;
    const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
    for (let off = 0; off < records.length; off += STAGED_RECORD) {
      if (view.getUint32(off, true) !== slot) continue;
      const len = view.getUint16(off + 10, true);
      into.set(records.subarray(off + 12, off + 12 + len));
      return len;
    }
    return 0;
  }

  /**
   * A target for a call whose bot has a socket of its own (every protocol but `native-mux`): the
   * lane puts the call's frames in the node's direct batch, and each goes to `onFrame` as soon as
   * the lane's pass over the arena ends — before JavaScript reads the packets the lane left, so a
   * call's frames keep their order (the lane leaves every later packet of a call it left one of).
   */
  directTarget(onFrame: DirectFrame): LaneTarget {
    const output = (this.#direct ??= this.openOutput(
      () => true,
      () => this.#dispatch(),
    ));
    this.#nextDirect = this.#nextDirect >= 0x7fffffff ? 1 : this.#nextDirect + 1;
    const stream = this.#nextDirect;
    this.#directCalls.set(stream, onFrame);
    return { output, stream, release: () => this.#directCalls.delete(stream) };
  }

  /** Hands the direct batch's frames to their calls, in order; grows the batch when it filled half. */
  #dispatch(): void {
    const out = this.#direct!;
    const batch = out.take();
    if (!batch) return;
    const samples = out.samples;
    // The lane writes whole records: there is no problem to report.
    walkRecords(batch, (stream, start, len) => {
      try {
        this.#directCalls.get(stream)?.(samples, start >>> 1, len >>> 1);
      } catch (err) {
        this.onError?.(err);
      }
    });
    // A full batch leaves the rest of the arena to JavaScript: room for twice as many next time.
    if (batch.length * 2 > out.capacity) out.grow();
  }

  /**
   * A batch for a mux connection: `ready()` says whether the connection takes frames now (open,
   * under its send allowance, no stream with a backlog), `onPending()` schedules its flush.
   */
  openOutput(ready: () => boolean, onPending: () => void, headroom = 0): LaneOutput {
    const index = this.#native.openOutput();
    const out = new LaneOutput(this, this.#native, this.#pending, index, ready, onPending, headroom);
    this.#outputs.set(index, out);
    return out;
  }

  /** @internal LaneOutput.close: its batch is gone from the lane. */
  forget(index: number): void {
    this.#outputs.delete(index);
    this.#native.closeOutput(index);
  }
}

/**
 * A mux connection's batch in the lane: the same surface as sdk/mux-wire.ts RecordWriter with
 * `reuse`. The buffer is ours, lent to the lane; it grows (doubling) when a frame does not fit,
 * and the lane leaves a packet to JavaScript rather than overrun it.
 */
export class LaneOutput {
  #buf: Buffer;
  /** The batch's part of the buffer as 16-bit samples (records' samples start at even offsets). */
  #samples: Int16Array;
  #closed = false;

  /** A buffer of its own at offset 0 (not a pool slice), so its samples are 16-bit aligned. */
  static #alloc(bytes: number): Buffer {
    return Buffer.from(new ArrayBuffer(bytes));
  }

  constructor(
    readonly host: RxLaneHost,
    private readonly native: NativeRxLane,
    /** Records in each batch, written by the lane. */
    private readonly pending: Uint32Array,
    readonly index: number,
    readonly ready: () => boolean,
    readonly onPending: () => void,
    /** Bytes kept free in front of the batch, for a frame header (RecordWriter's `headroom`); even. */
    readonly headroom = 0,
  ) {
    this.#buf = LaneOutput.#alloc(headroom + 64 * 1024);
    this.#samples = this.#lend();
  }

  /** Lends the buffer past the headroom to the lane; its samples view. */
  #lend(): Int16Array {
    const batch = this.#buf.subarray(this.headroom);
    this.native.setBuffer(this.index, batch);
    return new Int16Array(batch.buffer, batch.byteOffset, batch.length >>> 1);
  }

  get records(): number {
    return this.#closed ? 0 : this.pending[this.index]!;
  }

  /** Closed with its connection: its index may already be another connection's. */
  get closed(): boolean {
    return this.#closed;
  }

  get capacity(): number {
    return this.#buf.length - this.headroom;
  }

  /** The batch's part of the buffer as samples: a record's samples from (its offset in the batch + 8) / 2. */
  get samples(): Int16Array {
    return this.#samples;
  }

  add(stream: number, pcm: Int16Array): void {
    if (this.#closed) return;
    const native = this.native;
    if (native.append(this.index, stream, pcm)) return;
    this.grow(this.capacity + 8 + pcm.byteLength);
    native.append(this.index, stream, pcm);
  }

  /** A buffer twice the size (at least `atLeast` bytes); what the batch holds is kept. */
  grow(atLeast = 0): void {
    if (this.#closed) return;
    this.#buf = LaneOutput.#alloc(this.headroom + Math.max(2 * this.capacity, atLeast));
    this.#samples = this.#lend();
  }

  /** The last batch's buffer is still someone's (a socket kept it): a new one of the same size. */
  renew(): void {
    if (this.#closed) return;
    this.#buf = LaneOutput.#alloc(this.#buf.length);
    this.#samples = this.#lend();
  }

  /**
   * The bot's binary message, before JavaScript reads it: frames the lane queued for playout are
   * marked (stream LANE_TAKEN). Returns how many.
   */
  runBot(msg: Uint8Array): number {
    if (this.#closed) return 0;
    this.host.beforeBot?.();
    const n = this.native.runBot(this.index, msg);
    this.host.botTaken += n;
    this.host.flushHeld();
    return n;
  }

  /** @internal Which call (socket slot) a stream of this connection is, for the bot's frames. */
  bind(stream: number, slot: number): void {
    if (!this.#closed) this.native.bind(this.index, stream, slot);
  }

  unbind(stream: number): void {
    if (!this.#closed) this.native.unbind(this.index, stream);
  }

  /**
   * The batch so far, or undefined when empty; a view of the buffer, valid until the next frame is
   * added: the mux connection writes it at once (masked in place, `headroom` in front for the
   * header), or `ws` copies it as it masks; should the socket keep it, `renew()` first.
   */
  take(): Buffer | undefined {
    const len = this.#closed ? 0 : this.native.take(this.index);
    return len > 0 ? this.#buf.subarray(this.headroom, this.headroom + len) : undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.host.forget(this.index);
  }
}

/**
 * A call's bot socket that the lane writes the caller's frames to (CallMedia.laneWriter), as its
 * BotStream sees it.
 */
export interface LaneWriter {
  /** Whether the lane must leave frames to JavaScript: something of the socket's is unwritten. */
  setBlocked(blocked: boolean): void;
  /** Frames the lane wrote to the socket so far. */
  sent(): number;
  /** The lane stops writing and closes its duplicate descriptor (the stream is closing). */
  release(): void;
}

/** One socket slot's share of the lane: its block, and the call's arrays the lane writes. */
export class LaneSlot {
  constructor(
    readonly host: RxLaneHost,
    private readonly native: NativeRxLane,
    readonly slot: number,
    readonly block: Float64Array,
  ) {}

  /** The call's decode buffer, and its upsampler's native plan and work buffer (none for an 8 kHz bot). */
  attach(decoded: Int16Array, up: { plan: FirPlan; work: Int16Array } | undefined): void {
    this.native.attach(this.slot, decoded, up?.plan ?? null, up?.work ?? null);
  }

  /**
   * The bot half: the call's downsampler (none for an 8 kHz bot) and playout ring; again whenever
   * either buffer grows.
   */
  attachBot(down: { plan: FirPlan; work: Int16Array } | undefined, ring: Int16Array): void {
    this.native.attachBot(this.slot, down?.plan ?? null, down?.work ?? null, ring);
  }

  /**
   * One binary message of a bot with a socket of its own, bare PCM at the bot's rate: queued for
   * playout here when it is a plain frame (LaneOutput.runBot's test, per frame), else false and
   * JavaScript queues it.
   */
  takeBot(frame: Uint8Array): boolean {
    this.host.beforeBot?.();
    const taken = this.native.takeBot(this.slot, frame);
    if (taken) {
      this.host.botTaken++;
      this.host.flushHeld();
    }
    return taken;
  }

  /**
   * The packet the last tick staged for this call, copied into `into` (172 bytes at least): its
   * length, or 0 (the tick left this call's slot to JavaScript).
   */
  staged(into: Uint8Array): number {
    return this.host.stagedPacket(this.slot, into);
  }

  /**
   * The call's frames to its bot go from the lane straight to the bot's socket `fd` (a plain-TCP
   * WebSocket JavaScript opened; the lane writes whole masked binary frames on a duplicate of the
   * descriptor, native/ws_writer.h) while the block's `wsBlocked` word is 0. False: not possible
   * (the lane keeps handing frames to JavaScript).
   */
  attachWriter(fd: number): boolean {
    return this.native.attachWriter(this.slot, fd);
  }

  /** No more frames from the lane to the socket; its duplicate descriptor is closed. */
  detachWriter(): void {
    this.native.detachWriter(this.slot);
  }

  /** The word the clock reads to skip the call's JavaScript tick when the lane's tick played its slot out. */
  get tickSkip(): TickSkip {
    return { table: this.host.table, index: this.slot * LANE_WORDS + LANE.txDone };
  }

  /** The call is over: the lane lets go of its arrays and stops taking its packets. */
  detach(): void {
    this.native.detach(this.slot);
  }
}
