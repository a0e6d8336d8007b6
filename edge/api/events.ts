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
  codec: z.enum(['PCMU', 'PCMA', 'opus']),
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
   * G.711 calls only: bot frames that arrived just after their tick while the bot was mid-speech
   * and were sent at once in the slot they missed (late-frame catch-up, route `playoutCatchUp`).
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
});
export type MediaStats = z.infer<typeof MediaStatsSchema>;

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
});

export const CallEventSchema = z.discriminatedUnion('event', [
  CallCreatedSchema,
  CallAnsweredSchema,
  CallDtmfSchema,
  CallEndedSchema,
]);
export type CallEvent = z.infer<typeof CallEventSchema>;

export function eventSubject(event: CallEvent['event']): string {
  return `${EVENT_SUBJECT_PREFIX}.${event}`;
}
