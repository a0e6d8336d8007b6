import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { nativeExport } from '../../codecs/native.js';
import { monoUs32 } from './mono-clock.js';
import { LANE_TAKEN, loadRxLane, RxLaneHost, type LaneSlot } from './rx-lane.js';
import { Ticker } from './ticker.js';
import { countError, ipv4ToU32, runGuarded, u32ToIpv4, type MediaClock, type PacketHandler, type RtpSocket } from './rtp-socket.js';
import { ClockSubscribers, type SubscribeOptions } from './clock-subscribers.js';
import { WriteLatency } from './write-latency.js';

/**
 * The node's RTP I/O backend, chosen once at start-up:
 *
 * - `native`: every RTP socket on one native I/O thread (native/rtp_io.cc, decision 0007): packets
 *   arrive in batches (one event-loop wake-up per few ms for the whole node, not one per packet),
 *   and each tick's packets are sent by that thread at the exact due time.
 * - `dgram`: one node:dgram socket per call and the Ticker's timing thread; the fallback when the
 *   addon is missing (BOTEDGE_NATIVE=0, not Linux, build failed) or the RTP host is not IPv4.
 *
 * `BOTEDGE_RTP_IO=dgram|native` forces one (native fails loudly if it cannot run); default: native
 * when available.
 */
export type RtpIoKind = 'native' | 'dgram';

export interface RtpIo {
  readonly kind: RtpIoKind;
  readonly clock: MediaClock;
  /** Binds ip:port; rejects with an Error whose `code` is the errno name (EADDRINUSE, …). */
  bind(host: string, port: number): Promise<RtpSocket>;
  /** Counters for status and logs. */
  stats(): Record<string, number>;
  /** Native only: each datagram's kernel arrival → its arena's frames all written to their bots. */
  readonly arrivalToWrite?: WriteLatency;
  close(): void;
}

export class RtpIoUnavailableError extends Error {
  override name = 'RtpIoUnavailableError';
}

/**
 * dgram resolves every send's address through `lookup`, and Node's own answers even an IP literal
 * on process.nextTick: the packet leaves only after the caller's whole turn of the event loop (for
 * a tick, after every call's work). Answering IP literals at once makes `send` write the datagram
 * right away, so a call's RTP leaves when its frame is ready. Names still go to DNS.
 */
const syncLookup = ((host: string, options: unknown, callback: (err: Error | null, address: string, family: number) => void) => {
  const family = isIP(host);
  if (family !== 0) callback(null, host, family);
  else dnsLookup(host, options as number, callback);
}) as unknown as NonNullable<SocketOptions['lookup']>;

class DgramRtpSocket implements RtpSocket {
  onPacket: PacketHandler | undefined;
  foreignDropped = 0;
  #lastIp = -1;
  #lastAddress = '';
  #onlyIp = 0;
  #onlyPort = 0;

  constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => {
      const ip = ipv4ToU32(rinfo.address);
      if (ip === undefined) return;
      if (this.#onlyPort !== 0 && (rinfo.port !== this.#onlyPort || ip !== this.#onlyIp)) {
        this.foreignDropped++;
        return;
      }
      this.onPacket?.(msg, ip, rinfo.port, monoUs32());
    });
    socket.on('error', () => undefined);
  }

  receiveBuffer(bytes: number): number {
    // node:dgram uses SO_RCVBUF, capped at the system's rmem_max.
    this.socket.setRecvBufferSize(bytes);
    return this.socket.getRecvBufferSize();
  }

  send(packet: Uint8Array, len: number, ip: number, port: number): void {
    // One string per remote, not per packet.
    if (ip !== this.#lastIp) {
      this.#lastIp = ip;
      this.#lastAddress = u32ToIpv4(ip);
    }
    this.socket.send(packet, 0, len, port, this.#lastAddress);
  }

  sendNow(packet: Uint8Array, len: number, ip: number, port: number): void {
    this.send(packet, len, ip, port); // dgram always writes at once
  }

  replace(): boolean {
    return false; // already written
  }

  acceptOnly(ip: number, port: number): void {
    this.#onlyIp = ip;
    this.#onlyPort = port;
  }

  close(): void {
    this.onPacket = undefined;
    this.socket.close();
  }
}

export class DgramRtpIo implements RtpIo {
  readonly kind = 'dgram';
  readonly clock = new Ticker(20);

  async bind(host: string, port: number): Promise<RtpSocket> {
    const socket = createSocket({ type: 'udp4', reuseAddr: false, lookup: syncLookup });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    return new DgramRtpSocket(socket, socket.address().port);
  }

  stats(): Record<string, number> {
    return {};
  }

  close(): void {
    this.clock.stop();
  }
}

/** What native/rtp_io.cc exports. */
interface NativeEngine {
  /** Returns slot * 65536 + the bound port. */
  open(host: number, port: number): number;
  close(slot: number): void;
  stage(slot: number, bytes: Uint8Array, len: number, ip: number, port: number): boolean;
  /** Packets already laid out as staged records (the receive lane's tick); false, none staged, if one is malformed. */
  stageRecords(bytes: Uint8Array, len: number): boolean;
  sendNow(slot: number, bytes: Uint8Array, len: number, ip: number, port: number): boolean;
  /** Staged records sent at once, each as sendNow (the lane's held slots); how many left. Throws on a malformed one. */
  sendRecords(bytes: Uint8Array, len: number): number;
  replace(slot: number, bytes: Uint8Array, len: number): boolean;
  commit(): void;
  take(): number;
  release(): void;
  /** The event loop has turned since the last event: the I/O thread may post the next (native/rtp_io.cc's header). */
  turned(): void;
  setClock(on: boolean): void;
  setLead(ms: number): void;
  /** The slowest beat → commit (thread wake-up to JavaScript + staging) since the last call, ms. */
  takeCommitLag(): number;
  /** When what is staged in the current beat leaves: µs mod 2^32 on the arrival stamps' clock. */
  beatDueUs(): number;
  /** Datagrams from any source but ip:port are dropped on the I/O thread (0, 0: none are). */
  acceptOnly(slot: number, ip: number, port: number): void;
  /** Datagrams that filter dropped since the slot was opened. */
  foreign(slot: number): number;
  /** SO_RCVBUFFORCE (else SO_RCVBUF) of `bytes`: what the kernel granted, or -errno. */
  receiveBuffer(slot: number, bytes: number): number;
  arena(i: 0 | 1): ArrayBuffer;
  stats(): Record<string, number>;
  shutdown(): void;
}
type NativeEngineClass = new (onEvent: (kinds: number) => void, periodMs: number, leadMs: number, batchMs: number, arenaBytes: number) => NativeEngine;

const EVENT_INBOUND = 1;
const EVENT_BEAT = 2;
const EVENT_SENT = 4;
/** slot u32, ip u32, port u16, len u16, arrival µs u32 (native/rtp_io.cc kRecordHeader). */
const RECORD_HEADER = 16;
/** native/rtp_io.cc kMaxSlots: the socket slots a node has. */
const MAX_SLOTS = 32768;

function loadNativeEngine(): NativeEngineClass | Error {
  return nativeExport<NativeEngineClass>('RtpIo');
}

class NativeRtpSocket implements RtpSocket {
  onPacket: PacketHandler | undefined;
  #closed = false;
  /** What the filter had dropped when the socket closed (the slot's count goes with the slot). */
  #foreignAtClose = 0;
  #lane: LaneSlot | undefined;

  constructor(
    private readonly io: NativeRtpIo,
    readonly slot: number,
    readonly port: number,
  ) {}

  /** Made when a call asks (an RTCP socket never does). */
  get lane(): LaneSlot | undefined {
    return (this.#lane ??= this.io.lane?.slot(this.slot));
  }

  send(packet: Uint8Array, len: number, ip: number, port: number): void {
    if (!this.#closed) this.io.engine.stage(this.slot, packet, len, ip, port);
  }

  sendNow(packet: Uint8Array, len: number, ip: number, port: number): void {
    if (!this.#closed) this.io.engine.sendNow(this.slot, packet, len, ip, port);
  }

  replace(packet: Uint8Array, len: number): boolean {
    return !this.#closed && this.io.engine.replace(this.slot, packet, len);
  }

  acceptOnly(ip: number, port: number): void {
    if (!this.#closed) this.io.engine.acceptOnly(this.slot, ip, port);
  }

  receiveBuffer(bytes: number): number {
    if (this.#closed) return 0;
    const got = this.io.engine.receiveBuffer(this.slot, bytes);
    if (got < 0) throw new Error(`SO_RCVBUF ${bytes} on RTP port ${this.port}: errno ${-got}`);
    return got;
  }

  get foreignDropped(): number {
    return this.#closed ? this.#foreignAtClose : this.io.engine.foreign(this.slot);
  }

  close(): void {
    if (this.#closed) return;
    this.#foreignAtClose = this.io.engine.foreign(this.slot);
    this.#closed = true;
    this.onPacket = undefined;
    this.io.forget(this.slot);
  }
}

/**
 * The clock of the native backend. The I/O thread posts a beat `lead` ms before each due time; the
 * subscribers' `fn` stage their packets and we commit; the thread sends them at the due time and
 * reports it, and only then do the `after` callbacks run.
 *
 * The lead adapts: it must cover the time from the thread's beat to our commit — the wake-up of the
 * event loop (usually ~0.2 ms, now and then 2-3 ms on a busy machine) plus staging every call's
 * packet (which grows with the calls) — or packets leave late. A longer lead costs little: bot
 * audio is taken from the playout buffer that much earlier, and a barge-in in that window still
 * silences the staged packet. So each second the lead becomes 1.25 × the slowest beat → commit of
 * the last second + 0.5 ms, never below `minLeadMs` nor above a quarter period; it shrinks
 * again only slowly (by at most 10 % a second), because the slow wake-ups it must cover are rare.
 */
class NativeClock implements MediaClock {
  readonly #subscribers = new ClockSubscribers();
  #on = false;
  #lead: number;
  #beatsInWindow = 0;
  errors = 0;
  onFirstError: ((err: unknown) => void) | undefined;
  /** Runs first in every beat: the receive lane's tick, which plays out the plain calls' frames. */
  preTick: (() => void) | undefined;

  constructor(
    private readonly engine: NativeEngine,
    readonly periodMs: number,
    private readonly minLeadMs: number,
    private readonly maxLeadMs = periodMs / 4,
  ) {
    this.#lead = minLeadMs;
  }

  /**
   * During a beat: when the packets staged now will leave (µs mod 2^32, mono-clock.ts's clock), so
   * a sender that stamps its packets (the load generator) stamps them with their departure.
   */
  get dueUs(): number {
    return this.engine.beatDueUs();
  }

  get skipped(): number {
    return this.engine.stats()['skipped'] ?? 0;
  }

  get leadMs(): number {
    return this.#lead;
  }

  add(fn: () => void, after?: () => void, opts?: SubscribeOptions): void {
    this.#subscribers.add(fn, after, opts);
    if (!this.#on) {
      this.#on = true;
      this.engine.setClock(true);
    }
  }

  delete(fn: () => void): void {
    this.#subscribers.delete(fn);
    if (this.#subscribers.size === 0) this.stop();
  }

  stop(): void {
    if (!this.#on) return;
    this.#on = false;
    this.engine.setClock(false);
  }

  beat(): void {
    try {
      if (this.preTick) runGuarded(this, this.preTick);
      this.#subscribers.tick(this);
    } finally {
      // Always commit, even after a subscriber threw: the thread waits for it to send anything.
      this.engine.commit();
    }
    this.#adapt();
  }

  sent(): void {
    this.#subscribers.after(this);
  }

  #adapt(): void {
    if (++this.#beatsInWindow < 1000 / this.periodMs) return;
    this.#beatsInWindow = 0;
    const slowest = this.engine.takeCommitLag();
    const want = Math.min(this.maxLeadMs, Math.max(this.minLeadMs, slowest * 1.25 + 0.5, this.#lead * 0.9));
    if (Math.abs(want - this.#lead) >= 0.1) {
      this.#lead = want;
      this.engine.setLead(want);
    }
  }

}

export interface NativeRtpIoOptions {
  /** The clock's period, ms (an integer, 5–200). Default 20. */
  periodMs?: number;
  /** The least lead of a beat before its due time, ms (it adapts upwards). Default 2. */
  leadMs?: number;
  /** The most it adapts to, ms. Default a quarter period (the node: 5 ms of 20). */
  maxLeadMs?: number;
  /**
   * Whether a ready arena is delivered before each bot message the lane takes (deliverReady).
   * Default: on unless `BOTEDGE_DELIVER_EARLY=0`.
   */
  deliverEarly?: boolean;
  /** Inbound datagrams are handed over at least this often while they keep coming, ms. Default 2. */
  batchMs?: number;
  arenaBytes?: number;
  /** Run the G.711 receive lane (rx-lane.ts) when the addon has it. Default true. */
  rxLane?: boolean;
  /** Let the lane play out the plain calls' frames at each tick (its send half). Default true, unless BOTEDGE_TX_LANE=0. */
  txLane?: boolean;
  /** Time each datagram to its frames' write (`arrivalToWrite`). Default true. */
  timeWrites?: boolean;
}

export class NativeRtpIo implements RtpIo {
  readonly kind = 'native';
  readonly engine: NativeEngine;
  readonly clock: NativeClock;
  readonly #sockets: (NativeRtpSocket | undefined)[] = [];
  readonly #u8: [Uint8Array, Uint8Array];
  readonly #u16: [Uint16Array, Uint16Array];
  readonly #u32: [Uint32Array, Uint32Array];
  /** Datagrams for a slot already closed (late packets of an ended call). */
  #orphans = 0;
  #closed = false;
  /** In #deliver: a safe point reached from inside it must not deliver again. */
  #delivering = false;
  /** Arenas delivered from a safe point (deliverReady) rather than by their event. */
  earlyDeliveries = 0;
  /** The G.711 receive lane, unless the addon lacks it or it is turned off (then why). */
  readonly lane: RxLaneHost | undefined;
  readonly laneUnavailable: string | undefined;
  /** Whether the lane's tick (its send half) runs. */
  readonly txLane: boolean;
  /**
   * Each datagram's kernel arrival → its arena's frames all written to their bots (write-latency.ts);
   * absent when not asked for (`timeWrites: false`: the load generator has no bots).
   */
  readonly arrivalToWrite: WriteLatency | undefined;
  /**
   * Runs once an arena's datagrams have all been handed to their sockets (and the lane), before
   * the rest of the turn: the media node sends the bot batches they filled from here.
   */
  afterInbound: (() => void) | undefined;

  constructor(Engine: NativeEngineClass, opts: NativeRtpIoOptions = {}) {
    const periodMs = opts.periodMs ?? 20;
    const leadMs = opts.leadMs ?? 2;
    this.engine = new Engine((kinds) => this.#onEvent(kinds), periodMs, leadMs, opts.batchMs ?? 2, opts.arenaBytes ?? 1 << 20);
    this.clock = new NativeClock(this.engine, periodMs, leadMs, opts.maxLeadMs);
    this.arrivalToWrite = opts.timeWrites === false ? undefined : new WriteLatency();
    const a0 = this.engine.arena(0);
    const a1 = this.engine.arena(1);
    const Lane = opts.rxLane === false ? new Error('receive lane not asked for') : loadRxLane();
    if (Lane instanceof Error) this.laneUnavailable = Lane.message;
    else this.lane = new RxLaneHost(Lane, a0, a1, MAX_SLOTS);
    const lane = this.lane;
    if (lane) {
      lane.onError = (err) => countError(this.clock, err);
      lane.sendHeldWith((records, bytes) => void this.engine.sendRecords(records, bytes));
      if (opts.deliverEarly ?? process.env['BOTEDGE_DELIVER_EARLY'] !== '0') lane.beforeBot = () => this.deliverReady();
    }
    this.txLane = lane !== undefined && (opts.txLane ?? process.env['BOTEDGE_TX_LANE'] !== '0');
    if (lane && this.txLane) {
      const stage = (records: Uint8Array, bytes: number) => {
        if (!this.engine.stageRecords(records, bytes)) throw new Error('the lane staged a malformed record');
      };
      this.clock.preTick = () => lane.tick(stage);
    }
    this.#u8 = [new Uint8Array(a0), new Uint8Array(a1)];
    this.#u16 = [new Uint16Array(a0), new Uint16Array(a1)];
    this.#u32 = [new Uint32Array(a0), new Uint32Array(a1)];
  }

  async bind(host: string, port: number): Promise<RtpSocket> {
    const ip = ipv4ToU32(host);
    if (ip === undefined) throw new RtpIoUnavailableError(`native RTP I/O binds IPv4 only, not "${host}"`);
    const opened = this.engine.open(ip, port);
    const slot = Math.floor(opened / 65536);
    const socket = new NativeRtpSocket(this, slot, opened % 65536);
    this.#sockets[slot] = socket;
    return socket;
  }

  forget(slot: number): void {
    this.#sockets[slot] = undefined;
    this.engine.close(slot);
  }

  stats(): Record<string, number> {
    return { ...this.engine.stats(), orphans: this.#orphans, leadMs: this.clock.leadMs, laneTaken: this.lane?.taken ?? -1, laneBotTaken: this.lane?.botTaken ?? -1, laneTxTaken: this.txLane ? this.lane!.txTaken : -1, laneTxHeld: this.txLane ? this.lane!.txHeld : -1, laneHeldSent: this.lane?.heldSent ?? -1, laneWsWritten: this.lane?.wsWritten ?? -1, earlyDeliveries: this.earlyDeliveries };
  }

  close(): void {
    this.#closed = true;
    this.clock.stop();
    this.engine.shutdown();
  }

  /**
   * Delivers the arena the thread has ready, if any, now — from a safe point in other work of the
   * turn (before each bot message the lane takes: RxLaneHost.beforeBot). The thread readies an
   * arena when its window ends but posts it only with the turn token, and the event then waits its
   * place in the loop; a poll phase that reads the bots' messages of a busy node (a millisecond
   * each at 1,000 mux calls, more with the late slots they send) kept it waiting behind all of
   * them. The event, when it comes, finds the arena taken and does nothing (or takes the next).
   */
  deliverReady(): void {
    if (this.#closed || this.#delivering) return;
    if (this.#deliverAndSend()) this.earlyDeliveries++;
  }

  /** #deliver, then `afterInbound` (the bots' batches leave) and the writes' time; false: none ready. */
  #deliverAndSend(): boolean {
    if (!this.#deliver()) return false;
    if (this.afterInbound) {
      this.afterInbound();
      this.arrivalToWrite?.written(monoUs32());
    }
    return true;
  }

  #onEvent(kinds: number): void {
    // An event the thread queued before it stopped can still arrive after close(), even while the
    // process exits: the engine would throw "shut down" then, and a throw here cannot be caught.
    if (this.#closed) return;
    try {
      // The previous tick's packets have left: its marks and bot I/O go first.
      if (kinds & EVENT_SENT) this.clock.sent();
      if (kinds & EVENT_INBOUND) this.#deliverAndSend();
      if (kinds & EVENT_BEAT) this.clock.beat();
    } finally {
      // The thread posts its next event only after this turn of the loop has served every other
      // socket and timer that was ready (setImmediate runs after the poll phase): events chained
      // back to back by Node's thread-safe function starved them for seconds under load. Scheduled
      // last, so it runs after every setImmediate the turn's work scheduled: without `afterInbound`
      // a mux batch's flush is one, and only then are the arena's frames all written.
      setImmediate(this.#turned);
    }
  }

  readonly #turned = (): void => {
    if (this.#closed) return;
    // Without afterInbound the arena's frames are all written by now (with it, nothing is left).
    this.arrivalToWrite?.written(monoUs32());
    this.engine.turned();
  };

  /** Hands every datagram of the ready arena to its socket, then gives the arena back; false: none ready. */
  #deliver(): boolean {
    const taken = this.engine.take();
    if (taken < 0) return false;
    this.#delivering = true;
    const index = taken >= 2147483648 ? 1 : 0;
    const length = taken - index * 2147483648;
    const u8 = this.#u8[index];
    const u16 = this.#u16[index];
    const u32 = this.#u32[index];
    const timed = this.arrivalToWrite;
    try {
      // The lane first: what it takes is marked, and the loop below steps over it.
      this.lane?.run(index, length);
      let off = 0;
      while (off < length) {
        const slot = u32[off >>> 2]!;
        const arrivalUs = u32[(off >>> 2) + 3]!;
        timed?.add(arrivalUs);
        if (slot === LANE_TAKEN) {
          off += RECORD_HEADER + ((u16[(off + 10) >>> 1]! + 3) & ~3);
          continue;
        }
        const ip = u32[(off >>> 2) + 1]!;
        const port = u16[(off + 8) >>> 1]!;
        const len = u16[(off + 10) >>> 1]!;
        const socket = this.#sockets[slot];
        if (socket?.onPacket) {
          try {
            socket.onPacket(u8.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len), ip, port, arrivalUs);
          } catch (err) {
            countError(this.clock, err);
          }
        } else {
          this.#orphans++;
        }
        off += RECORD_HEADER + ((len + 3) & ~3);
      }
    } finally {
      this.#delivering = false;
      this.engine.release();
    }
    return true;
  }
}

/** Why the native backend is not in use (for the start-up log), when it is not. */
export let rtpIoFallbackReason: string | undefined;

/** Picks the backend for a node whose RTP sockets bind to `host`. */
export function createRtpIo(host: string, configured?: 'auto' | 'native' | 'dgram', opts: Omit<NativeRtpIoOptions, 'leadMs'> = {}): RtpIo {
  const choice = configured ?? process.env['BOTEDGE_RTP_IO'] ?? 'auto';
  if (choice === 'dgram') {
    rtpIoFallbackReason = 'BOTEDGE_RTP_IO=dgram';
    return new DgramRtpIo();
  }
  const engine = loadNativeEngine();
  let reason: string | undefined;
  if (engine instanceof Error) reason = engine.message;
  else if (ipv4ToU32(host) === undefined) reason = `RTP host ${host} is not an IPv4 address`;
  if (reason === undefined && !(engine instanceof Error)) {
    rtpIoFallbackReason = undefined;
    return new NativeRtpIo(engine, { leadMs: leadFromEnv(), ...opts });
  }
  if (choice === 'native') throw new RtpIoUnavailableError(`BOTEDGE_RTP_IO=native, but: ${reason}`);
  rtpIoFallbackReason = reason;
  return new DgramRtpIo();
}

/** `BOTEDGE_TICKER_LEAD_MS`: the least lead of the native clock (it adapts upwards), default 2. */
function leadFromEnv(): number {
  const v = Number(process.env['BOTEDGE_TICKER_LEAD_MS'] ?? 2);
  return Number.isFinite(v) && v >= 0.2 ? Math.min(v, 5) : 2;
}
