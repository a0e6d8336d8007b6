/**
 * What a call's media needs from its RTP socket and from the node's 20 ms clock, whichever I/O
 * backend serves them (rtp-io.ts: the native I/O thread, or node:dgram as the fallback).
 *
 * Addresses are IPv4 as unsigned 32-bit integers (a.b.c.d = a<<24 | b<<16 | c<<8 | d): the native
 * backend hands them over that way, and comparing two numbers per packet allocates nothing where a
 * string would. RTP sockets are IPv4 only (udp4), as they were with dgram.
 */
import type { SubscribeOptions } from './clock-subscribers.js';
import type { LaneSlot } from './rx-lane.js';

/**
 * One received datagram; `packet` is valid only during the call (its memory is reused).
 * `arrivalUs`: when it was read from the socket, µs mod 2^32 on the machine-wide monotonic clock
 * (edge/media/mono-clock.ts) — by the native I/O thread, so a busy event loop does not move it; by
 * the dgram backend when its message event runs.
 */
export type PacketHandler = (packet: Uint8Array, ip: number, port: number, arrivalUs: number) => void;

export interface RtpSocket {
  readonly port: number;
  onPacket: PacketHandler | undefined;
  /**
   * Sends `packet[0, len)` to ip:port in this tick. dgram writes it at once; the native backend
   * copies it and sends it at the tick's due time. `packet` may be reused as soon as this returns.
   */
  send(packet: Uint8Array, len: number, ip: number, port: number): void;
  /**
   * Sends `packet[0, len)` to ip:port now, outside the tick (a late bot frame filling the slot it
   * missed). `packet` may be reused as soon as this returns.
   */
  sendNow(packet: Uint8Array, len: number, ip: number, port: number): void;
  /**
   * Rewrites the packet this socket sent in the current tick, if it has not left yet (barge-in
   * between staging and departure). False when it already left or the backend sends at once.
   */
  replace(packet: Uint8Array, len: number): boolean;
  /**
   * Takes datagrams from ip:port only (0, 0: from anywhere). The others never reach `onPacket`;
   * they are counted in `foreignDropped`. The native backend drops them on its I/O thread, so a
   * flood at one call's port costs the event loop nothing and leaves the batch arena to the other
   * calls.
   */
  acceptOnly(ip: number, port: number): void;
  /** Datagrams `acceptOnly` turned away; still readable after close. */
  readonly foreignDropped: number;
  /**
   * Asks for a receive buffer of `bytes`; returns what the kernel granted (Linux reports double
   * what it books, socket(7)). For a socket that takes many streams at once (the bench's load
   * generator); a call's own socket keeps the system's default.
   */
  receiveBuffer(bytes: number): number;
  /** This socket's share of the G.711 receive lane (native RTP I/O only; edge/media/rx-lane.ts). */
  readonly lane?: LaneSlot | undefined;
  close(): void;
}

/** The node's one 20 ms clock (DESIGN.md: one timer per shard): Ticker, or the native I/O thread. */
export interface MediaClock {
  readonly periodMs: number;
  /**
   * Calls `fn` every period (build and send the RTP due now) and then, once every subscriber's
   * packet has left, `after` (bot I/O, marks: "played" means sent). `opts`: the shortcuts that
   * spare visits when the receive lane did the work (clock-subscribers.ts).
   */
  add(fn: () => void, after?: () => void, opts?: SubscribeOptions): void;
  delete(fn: () => void): void;
  stop(): void;
  /** Ticks skipped because the event loop stalled. */
  readonly skipped: number;
  /** Subscriber calls that threw. */
  readonly errors: number;
  onFirstError: ((err: unknown) => void) | undefined;
}

/**
 * Runs one subscriber of a clock: a bug in one call's media must not stop every other call's audio,
 * so a throw is counted on `owner` and only the first one reported (not 50 times a second).
 */
export function runGuarded(owner: ErrorCounter, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    countError(owner, err);
  }
}

export type ErrorCounter = Pick<MediaClock, 'onFirstError'> & { errors: number };

/** The catch half of `runGuarded`, for a hot loop that must not allocate a closure per item. */
export function countError(owner: ErrorCounter, err: unknown): void {
  owner.errors++;
  if (owner.errors === 1) owner.onFirstError?.(err);
}

/** Dotted-quad IPv4 → u32, or undefined for anything else (IPv6, names). Allocates nothing. */
export function ipv4ToU32(s: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      digits++;
      if (digits > 3 || part > 255) return undefined;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + part;
}

export function u32ToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
