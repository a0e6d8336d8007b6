/**
 * What the benchmark's processes say to each other over their IPC channels (child_process.fork).
 * The orchestrator (bench/run.ts) drives the load generator and the instrumented bot; only they
 * touch the system under test.
 */
import type { SparseHistogram } from '../edge/histogram.js';
import type { SliceSeries } from './slices.js';
import type { LoopDelaySummary } from '../edge/loop-delay.js';

/** A measurement window on the shared clock, µs mod 2^32 (bench/clock.ts). */
export interface WindowMsg {
  type: 'window';
  fromUs: number;
  toUs: number;
}

export type ToBot = WindowMsg | { type: 'report' } | { type: 'exit' };

export interface BotReport {
  type: 'report';
  /** Caller frames whose send stamp falls in the window that reached the bot. */
  framesInWindow: number;
  /** Frames the bot sent back with a send stamp inside the window. */
  echoedInWindow: number;
  /** Distinct calls with at least one frame in the window. */
  callsInWindow: number;
  /** Caller RTP send → bot receive, µs. */
  callerToBot: SparseHistogram;
  /** The same over the window's time, 100 ms slices by caller stamp. */
  callerToBotSlices: SliceSeries;
  unmarkedFrames: number;
  framesTotal: number;
  /**
   * Frames of any kind that arrived inside the window by the bot's clock (the window's µs, which
   * the generator shares): Opus frames carry no mark, so they are counted by arrival, as the
   * generator counts the packets back. (Two IPC snapshots of `framesTotal` at the window's edges
   * counted whatever reached the bot between two messages, a few ms off the edges either way.)
   */
  framesArrivedInWindow: number;
  bytesTotal: number;
  connections: number;
  open: number;
  starts: number;
  /** The bot's own event-loop delay over the window, ms beyond its 1 ms sampling period. */
  loopDelayMs: LoopDelaySummary;
  /** The bot's garbage-collection pauses in the window: how many, their sum and the longest, ms. */
  gc: { count: number; totalMs: number; maxMs: number };
}

/**
 * Receive buffer the generator asks for its shared RTP socket (bench/loadgen.ts): every call's
 * packets queue there while its I/O thread is off the CPU (1,000 calls: 50 a millisecond; a
 * 172-byte datagram books about 1 kB).
 */
export const LOADGEN_SHARED_RCVBUF = 8 << 20;

export interface LoadgenConfig {
  type: 'config';
  /** Where INVITEs go (the media node or the proxy). */
  host: string;
  port: number;
  /** Called number (Request-URI user part). */
  number: string;
  /** New calls per second. */
  rate: number;
  /** Send slots per 20 ms frame: calls are spread over them so RTP is not one burst per 20 ms. */
  phases: number;
  /**
   * Talk spurts: the caller sends `talkMs` of marked audio, then `pauseMs` of G.711 silence (still
   * RTP every 20 ms). pauseMs 0 = one continuous stream.
   */
  talkMs: number;
  /**
   * 16 kHz tone marks only: one caller frame in `markEvery` carries a mark, the others a filler
   * tone the bot echoes as it is (the node's work is the same; the harness reads and writes a
   * quarter of the marks at 4). Loss and latency are counted over the marked frames. Default 1.
   */
  markEvery?: number;
  pauseMs: number;
  /** Give up on an INVITE after this long, ms. */
  setupTimeoutMs: number;
  /**
   * PCM rate of the node's route to the bot. 8000: the byte marker (bench/frame.ts), exact because
   * nothing is resampled. 16000: the tone marker (bench/tone-mark.ts), which survives the resampler.
   */
  botRate: 8000 | 16000;
  /** What the callers offer and send: marked PCMU (default) or replayed Opus (bench/opus-caller.ts). */
  codec?: 'pcmu' | 'opus';
}

export type ToLoadgen =
  | LoadgenConfig
  | { type: 'calls'; target: number }
  | WindowMsg
  | { type: 'report' }
  | { type: 'hangup' }
  | { type: 'exit' };

export interface FailureCounts {
  [reason: string]: number;
}

export interface LoadgenProgress {
  type: 'progress';
  up: number;
  pending: number;
  failed: number;
  /** Over the last second: marked frames sent and received. */
  sentLastS: number;
  recvLastS: number;
  /** Round trip (caller send → caller receive) p99 over the last second, ms. */
  rttP99LastMs: number;
  /** Slot lateness of the RTP sender over the last second, max ms (the generator's own health). */
  lagMaxLastMs: number;
}

export interface LoadgenReached {
  type: 'reached';
  target: number;
  up: number;
  failed: number;
  /** Established calls per second over this ramp-up (first INVITE → last final response). */
  cps: number;
}

export interface LoadgenReport {
  type: 'report';
  /** Who kept the RTP slots (bench/loadgen.ts): settled with the config, after `ready`. */
  pacing: 'io' | 'timer';
  up: number;
  failed: number;
  failures: FailureCounts;
  /** Frames sent with a send stamp inside the window. */
  sentInWindow: number;
  /** Echoed frames received whose bot stamp falls in the window. */
  recvInWindow: number;
  /** Calls up during the window that got no echoed frame in it (they count as failed). */
  silentCalls: number;
  /** Calls that sent in the window. */
  callsInWindow: number;
  /** Bot send → caller receive, µs. */
  botToCaller: SparseHistogram;
  /** The same over the window's time, 100 ms slices by bot stamp. */
  botToCallerSlices: SliceSeries;
  /** Caller send → caller receive (whole loop), µs. */
  roundTrip: SparseHistogram;
  /** INVITE → 200 OK of every call established so far, µs. */
  setup: SparseHistogram;
  /** Frames that came back without the marker, or for an unknown call. */
  unmarked: number;
  /** RTP sender slot lateness in the window, max ms. */
  lagMaxMs: number;
  /** Paced slots staged too late for the I/O thread, sent packet by packet stamped as they left, in the window. */
  lateSlots: number;
}

export type FromLoadgen = { type: 'ready'; rtpIo: 'native' | 'dgram'; sockets: 'shared' | 'per-call'; rcvbufKb?: number } | LoadgenProgress | LoadgenReached | LoadgenReport | { type: 'hungup'; ended: number; byeFailed: number };
