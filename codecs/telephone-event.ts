/**
 * RFC 4733 telephone-event payload and a DTMF receiver.
 *
 * RFC 4733 §2.3 https://www.rfc-editor.org/rfc/rfc4733#section-2.3
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |     event     |E|R| volume    |          duration             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * `duration` is in RTP timestamp units since the event's RTP timestamp, which stays the same for
 * every packet of one event (§2.5.1.2); `volume` is -dBm0 (0–63).
 */
import { TelephoneEventParseError } from './errors.js';

export { TelephoneEventParseError } from './errors.js';

export const TELEPHONE_EVENT_SIZE = 4;

export interface TelephoneEvent {
  /** Event code, 0–255 (0–15 are the DTMF events of RFC 4733 §3.2). */
  event: number;
  /** E bit: this packet ends the event. */
  end: boolean;
  /** Power level in -dBm0, 0–63. */
  volume: number;
  /** Duration so far, in RTP timestamp units, 0–65535. */
  duration: number;
}

/** Parses the first 4 bytes of a telephone-event payload (more are allowed: RFC 4733 §2.5.1.5). */
export function parseTelephoneEvent(payload: Uint8Array): TelephoneEvent {
  if (payload.length < TELEPHONE_EVENT_SIZE) {
    throw new TelephoneEventParseError('truncated', payload.length, `telephone-event payload of ${payload.length} bytes, expected 4`);
  }
  const b1 = payload[1]!;
  return {
    event: payload[0]!,
    end: (b1 & 0x80) !== 0,
    volume: b1 & 0x3f,
    duration: (payload[2]! << 8) | payload[3]!,
  };
}

/** Writes the 4-byte payload at `out[offset]` and returns 4; allocates nothing. */
export function serializeTelephoneEventInto(out: Uint8Array, offset: number, ev: TelephoneEvent): number {
  if (offset < 0 || offset + TELEPHONE_EVENT_SIZE > out.length) {
    throw new RangeError(`telephone-event: 4 bytes do not fit at offset ${offset} of a ${out.length}-byte buffer`);
  }
  out[offset] = ev.event & 0xff;
  out[offset + 1] = (ev.end ? 0x80 : 0) | (ev.volume & 0x3f);
  out[offset + 2] = (ev.duration >> 8) & 0xff;
  out[offset + 3] = ev.duration & 0xff;
  return TELEPHONE_EVENT_SIZE;
}

export type DtmfDigit = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '*' | '#' | 'A' | 'B' | 'C' | 'D';

const DIGITS = '0123456789*#ABCD';

/** DTMF event code (RFC 4733 §3.2 Table 7) → digit; undefined for non-DTMF events. */
export function eventToDigit(event: number): DtmfDigit | undefined {
  return Number.isInteger(event) && event >= 0 && event < 16 ? (DIGITS[event] as DtmfDigit) : undefined;
}

/** Digit (case-insensitive for A–D) → DTMF event code; undefined for anything else. */
export function digitToEvent(digit: string): number | undefined {
  if (digit.length !== 1) return undefined;
  const i = DIGITS.indexOf(digit.toUpperCase());
  return i < 0 ? undefined : i;
}

/** One telephone-event RTP packet as the receiver needs it. */
export interface TelephoneEventPacket {
  /** RTP timestamp: the start of the event, the same in all of its packets. */
  timestamp: number;
  marker: boolean;
  /** The RTP payload (4 bytes or more). */
  payload: Uint8Array;
}

export interface DtmfKeyPress {
  digit: DtmfDigit;
  durationMs: number;
}

export interface DtmfReceiverOptions {
  /** RTP clock rate of the telephone-event payload type, in Hz. Default 8000. */
  clockRate?: number;
}

/** Debug dump of a DtmfReceiver. */
export interface DtmfReceiverState {
  current: { timestamp: number; event: number; durationUnits: number } | undefined;
  lastEndedTimestamp: number | undefined;
  dropped: number;
}

/**
 * Turns telephone-event packets into one key press per digit. Pure: `push` takes a packet and
 * returns the key presses it completed; no timers, no I/O.
 *
 * - An event is keyed by its RTP timestamp. The first packet with the E bit reports the digit; the
 *   redundant end packets (RFC 4733 §2.5.1.4 sends the last one three times) and any late update of
 *   the same timestamp are ignored.
 * - If all end packets are lost, the event is reported when the next event with another timestamp
 *   starts, or on `flush()`.
 * - A long event split into segments (§2.5.1.3: a new timestamp that continues the same event with
 *   no E bit in between) is reported once, with the summed duration.
 * - Non-DTMF events (codes ≥ 16) and malformed payloads are counted in `dropped`, not thrown.
 */
export class DtmfReceiver {
  readonly #clockRate: number;
  #current: { timestamp: number; event: number; priorUnits: number; durationUnits: number } | undefined;
  #lastEndedTimestamp: number | undefined;
  #dropped = 0;

  constructor(options: DtmfReceiverOptions = {}) {
    this.#clockRate = options.clockRate ?? 8000;
  }

  push(packet: TelephoneEventPacket): DtmfKeyPress[] {
    if (packet.payload.length < TELEPHONE_EVENT_SIZE) {
      this.#dropped++;
      return [];
    }
    const ev = parseTelephoneEvent(packet.payload);
    if (eventToDigit(ev.event) === undefined) {
      this.#dropped++;
      return [];
    }
    const ts = packet.timestamp >>> 0;
    if (ts === this.#lastEndedTimestamp) return [];

    const out: DtmfKeyPress[] = [];
    let priorUnits = 0;
    const cur = this.#current;
    if (cur && cur.timestamp !== ts) {
      const contiguous = ((cur.timestamp + cur.durationUnits) >>> 0) === ts;
      if (cur.event === ev.event && contiguous && !packet.marker) {
        priorUnits = cur.priorUnits + cur.durationUnits;
      } else {
        out.push(this.#press(cur.event, cur.priorUnits + cur.durationUnits));
      }
      this.#current = undefined;
    }

    const active = this.#current ?? { timestamp: ts, event: ev.event, priorUnits, durationUnits: 0 };
    active.durationUnits = Math.max(active.durationUnits, ev.duration);
    if (ev.end) {
      out.push(this.#press(active.event, active.priorUnits + active.durationUnits));
      this.#lastEndedTimestamp = ts;
      this.#current = undefined;
    } else {
      this.#current = active;
    }
    return out;
  }

  /** Reports an event whose end packets never came (call end, stream change). */
  flush(): DtmfKeyPress[] {
    const cur = this.#current;
    this.#current = undefined;
    if (!cur) return [];
    this.#lastEndedTimestamp = cur.timestamp;
    return [this.#press(cur.event, cur.priorUnits + cur.durationUnits)];
  }

  state(): DtmfReceiverState {
    const cur = this.#current;
    return {
      current: cur && { timestamp: cur.timestamp, event: cur.event, durationUnits: cur.priorUnits + cur.durationUnits },
      lastEndedTimestamp: this.#lastEndedTimestamp,
      dropped: this.#dropped,
    };
  }

  #press(event: number, units: number): DtmfKeyPress {
    return { digit: eventToDigit(event)!, durationMs: Math.round((units * 1000) / this.#clockRate) };
  }
}
