import { z } from 'zod';

/**
 * Call events on NATS, version 1. Subject per event: `botedge.v1.call.<event>`; payload JSON,
 * validated against these schemas before it is published (a bug that would publish a malformed
 * event throws in tests instead of confusing every consumer). Documented in docs/nats-api.md.
 */
export const EVENT_SUBJECT_PREFIX = 'botedge.v1.call';

const base = {
  v: z.literal(1),
  /** Our call id (also the bot stream id). */
  callId: z.string().min(1),
  /** SIP Call-ID of the caller's leg. */
  sipCallId: z.string().min(1),
  nodeId: z.string().min(1),
  /** Event time, ms since the epoch. */
  ts: z.number().int(),
};

export const CallCreatedSchema = z.object({
  ...base,
  event: z.literal('created'),
  direction: z.literal('inbound'),
  from: z.string(),
  to: z.string(),
  botUrl: z.string(),
});

export const CallAnsweredSchema = z.object({
  ...base,
  event: z.literal('answered'),
  codec: z.enum(['PCMU', 'PCMA', 'G722', 'opus']),
});

export const CallDtmfSchema = z.object({
  ...base,
  event: z.literal('dtmf'),
  digit: z.string().length(1),
  durationMs: z.number().int().nonnegative(),
});

/** Why a call ended; `sipStatus` is set when it ended with a SIP final response instead of a BYE. */
export const EndCauseSchema = z.enum([
  'caller-hangup',
  'caller-cancel',
  'bot-hangup',
  'bot-unreachable',
  'bot-error',
  'no-ack',
  'rejected',
  'node-shutdown',
]);
export type EndCause = z.infer<typeof EndCauseSchema>;

export const MediaStatsSchema = z.object({
  rtpReceived: z.number().int().nonnegative(),
  rtpSent: z.number().int().nonnegative(),
  rtpUnexpectedSource: z.number().int().nonnegative(),
  rtpMalformed: z.number().int().nonnegative(),
  framesToBot: z.number().int().nonnegative(),
  framesFromBot: z.number().int().nonnegative(),
  framesToBotDropped: z.number().int().nonnegative(),
  playoutOverflowSamples: z.number().int().nonnegative(),
  /** Bot audio dropped by the live-stream trim (edge/media/playout.ts), samples at 8 kHz. */
  playoutTrimmedSamples: z.number().int().nonnegative(),
  /**
   * G.711 calls only: bot frames that arrived after their tick while the bot was mid-speech
   * (by up to the route's `playoutCatchUpMs`) and were sent at once in the slot they missed (late-frame
   * catch-up, route `playoutCatchUp`).
   */
  playoutLateFrames: z.number().int().nonnegative().optional(),
  /** Opus calls only: frames concealed by PLC, and lost frames recovered from the next packet's FEC. */
  concealedFrames: z.number().int().nonnegative().optional(),
  fecFrames: z.number().int().nonnegative().optional(),
  /**
   * Packets that arrived twice, or after a later one: Opus, too late for the jitter buffer; G.711
   * (no jitter buffer), older than one already passed to the bot. Dropped, never played twice.
   */
  rtpLate: z.number().int().nonnegative().optional(),
  /** Opus calls only: frames the codec rejected (corrupt packet, worker lost). */
  codecErrors: z.number().int().nonnegative().optional(),
  /** Opus calls only: encoded frames that missed their tick and left in a later one. */
  encodeLate: z.number().int().nonnegative().optional(),
  /** Opus calls only: frames (either way) not coded because the worker pool was over a tick behind. */
  codecShed: z.number().int().nonnegative().optional(),
  /** RTCP on the RTP port + 1: compound packets sent, received from the caller, and unreadable ones. */
  rtcpSent: z.number().int().nonnegative().optional(),
  rtcpReceived: z.number().int().nonnegative().optional(),
  rtcpMalformed: z.number().int().nonnegative().optional(),
});
export type MediaStats = z.infer<typeof MediaStatsSchema>;

/**
 * The caller's stream as it arrived (RFC 3550 receive statistics) over a span: a `qos` sample's
 * interval, or the whole call in `ended`. Built by edge/media/qos.ts.
 */
export const QosSchema = z.object({
  /** Packets the sequence numbers say the caller sent. */
  packetsExpected: z.number().int().nonnegative(),
  /** Packets received, duplicates and late ones included. */
  packetsReceived: z.number().int().nonnegative(),
  /** Network loss: expected − received, never below 0. */
  packetsLost: z.number().int().nonnegative(),
  /** Packets dropped on arrival as duplicate or too late (`media.rtpLate`). */
  packetsLate: z.number().int().nonnegative(),
  /** packetsLost / packetsExpected, %. */
  lossPct: z.number().nonnegative(),
  /** RFC 3550 §6.4.1 interarrival jitter at the end of the span, ms. */
  jitterMs: z.number().nonnegative(),
  /** Highest interarrival jitter in the span, ms. */
  jitterMaxMs: z.number().nonnegative(),
  /**
   * Listening-quality MOS estimate (ITU-T G.107 E-model, 1–4.5) from the packets the bot did not
   * get (lost or late); absent when no packet was expected in the span.
   */
  mos: z.number().min(1).max(4.5).optional(),
  /**
   * Our stream as the caller receives it, from its latest RTCP report about it (RFC 3550 §6.4);
   * absent until the caller has sent one (many do not send RTCP at all).
   */
  remote: z
    .object({
      /** Loss since the caller's previous report, %. */
      lossPct: z.number().nonnegative(),
      /** Our packets it has lost in all. */
      packetsLost: z.number().int().nonnegative(),
      /** Interarrival jitter of our stream at the caller, ms. */
      jitterMs: z.number().nonnegative(),
      /** Round trip from the report's LSR/DLSR; absent until it echoes one of our sender reports. */
      rttMs: z.number().nonnegative().optional(),
    })
    .optional(),
});
export type Qos = z.infer<typeof QosSchema>;

/** Every `qosIntervalMs` of an answered call: the caller's stream over the interval just ended. */
export const CallQosSchema = z.object({
  ...base,
  event: z.literal('qos'),
  /** The span the sample covers, ms (the first one starts at answer). */
  intervalMs: z.number().int().nonnegative(),
  qos: QosSchema,
});

export const CallEndedSchema = z.object({
  ...base,
  event: z.literal('ended'),
  cause: EndCauseSchema,
  sipStatus: z.number().int().optional(),
  /** Whole call, from INVITE to end, ms. */
  durationMs: z.number().int().nonnegative(),
  /** Answered time to end, ms; 0 when never answered. */
  talkMs: z.number().int().nonnegative(),
  media: MediaStatsSchema.optional(),
  /** The caller's stream over the whole call; absent when the call never had media. */
  qos: QosSchema.optional(),
});

export const CallEventSchema = z.discriminatedUnion('event', [
  CallCreatedSchema,
  CallAnsweredSchema,
  CallDtmfSchema,
  CallQosSchema,
  CallEndedSchema,
]);
export type CallEvent = z.infer<typeof CallEventSchema>;

export function eventSubject(event: CallEvent['event']): string {
  return `${EVENT_SUBJECT_PREFIX}.${event}`;
}
