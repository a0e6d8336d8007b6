/**
 * What every bot protocol (native, twilio, jambonz) has in common, as the call sees it. A protocol
 * is a pure translator: call events in → WebSocket frames out (`open`, `audio`, `event`), frames in
 * → commands out (`decode`). It owns no socket, no timer and no clock; `BotStream` carries its frames
 * and `InboundCall` acts on its commands. Protocol state (Twilio's sequence numbers, chunk counter)
 * advances only when a frame is actually handed to the socket, so frames dropped for a slow bot
 * leave no gap in the numbering.
 */

export type ProtocolName = 'native' | 'twilio' | 'jambonz';
export type BotRate = 8000 | 16000 | 24000;

/** A frame for the socket: a string goes as a text frame, bytes as a binary frame. */
export type OutFrame = string | Buffer;

/** What a protocol needs to know about the call to open its stream. */
export interface CallInfo {
  /** Our call id (UUID). */
  callId: string;
  sipCallId: string;
  from: string;
  to: string;
  /** INVITE headers named in `forwardHeaders`. */
  headers: Record<string, string>;
}

/** Events the call reports to the bot; a protocol without a matching message returns undefined. */
export type EdgeEvent =
  | { type: 'dtmf'; digit: string; durationMs: number }
  /** Playout passed a mark (`cleared: false`), or a clear/killAudio discarded it (`cleared: true`). */
  | { type: 'mark'; name: string; cleared: boolean }
  /** Playout buffer full: this much of the bot's audio was dropped (oldest first). */
  | { type: 'overflow'; droppedMs: number; totalDroppedMs: number }
  /** The bot reads too slowly: this many caller-audio frames to it were dropped (oldest first). */
  | { type: 'backpressure'; framesDropped: number; totalFramesDropped: number }
  /** Outcome of a transfer the bot asked for. */
  | { type: 'transfer'; target: string; status: 'accepted' | 'failed'; sipStatus?: number; reason?: string }
  /** Something the bot sent was dropped; once per kind per call. */
  | { type: 'error'; reason: string }
  | { type: 'stop'; reason: string };

/** What a bot asks for. Audio is PCM at the protocol's `rate`; the view is valid only during the call. */
export type BotCommand =
  | { type: 'audio'; samples: Int16Array }
  | { type: 'mark'; name: string }
  /** Barge-in: drop queued audio now; pending marks are reported back as cleared. */
  | { type: 'clear' }
  /** Forget pending marks without reporting them (jambonz `clearMarks`). */
  | { type: 'clearMarks' }
  | { type: 'hangup'; reason: string }
  | { type: 'transfer'; target: string }
  | { type: 'sendDtmf'; digits: string; durationMs: number };

export type Decoded =
  | { ok: true; cmd: BotCommand }
  /** A well-formed message that needs no action (e.g. Twilio's `connected` echoed back). */
  | { ok: true; cmd: undefined }
  /** Dropped: `kind` groups repeats (one log line and one report per kind per call). */
  | { ok: false; kind: string; reason: string };

export interface BotProtocol {
  readonly name: ProtocolName;
  /** PCM rate of `audio` frames both ways. */
  readonly rate: BotRate;
  /** WebSocket subprotocols to offer (jambonz); empty for none. */
  readonly subprotocols: string[];
  /**
   * Binary frames are bare 16-bit PCM at `rate` both ways (native, jambonz): `audio` returns the
   * samples' bytes, and a binary frame from the bot is nothing else.
   */
  readonly binaryIsPcm: boolean;
  /** Extra handshake headers (e.g. `X-Twilio-Signature`), given the exact URL connected to. */
  handshakeHeaders(url: string): Record<string, string>;
  /** Frames sent as soon as the socket opens (native `start`; twilio `connected` + `start`; jambonz metadata). */
  open(): OutFrame[];
  /** One frame of caller audio (20 ms at `rate`), captured `atMs` after the stream started. */
  audio(pcm: Int16Array, atMs: number): OutFrame;
  event(ev: EdgeEvent): OutFrame | undefined;
  /** Parses one frame from the bot; never throws. */
  decode(data: Buffer, isBinary: boolean): Decoded;
}

/** Little-endian 16-bit PCM bytes → samples: a view when aligned, else one copy. Never throws. */
export function pcmFromBytes(buf: Buffer): Int16Array {
  return buf.byteOffset % 2 === 0 ? new Int16Array(buf.buffer, buf.byteOffset, buf.length >> 1) : new Int16Array(new Uint8Array(buf.subarray(0, buf.length & ~1)).buffer);
}

/** Samples → their bytes, without copying. */
export function bytesOfPcm(pcm: Int16Array): Buffer {
  return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
}

/** Parses JSON text; `undefined` when it is not a JSON object. */
export function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export const DTMF_DIGITS = /^[0-9*#A-Da-d]{1,64}$/;
