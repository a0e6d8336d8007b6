import { z } from 'zod';

/**
 * The `native` bot protocol (docs/bot-protocols.md). Edge → bot: one `start` text frame, then
 * binary little-endian 16-bit mono PCM frames (20 ms at the route's rate), text events, and a
 * final `stop`. Bot → edge: binary PCM in the same format (any length that is a whole number of
 * samples; it is queued and paced), and the control messages below.
 */
export const BotControlSchema = z.discriminatedUnion('type', [
  /** Report back when the audio queued before this mark has been played to the caller. */
  z.object({ type: z.literal('mark'), name: z.string().min(1).max(256) }),
  /** Barge-in: drop all queued audio now; pending marks come back with `cleared: true`. */
  z.object({ type: z.literal('clear') }),
  /** End the call (BYE to the caller). */
  z.object({ type: z.literal('hangup'), reason: z.string().max(256).optional() }),
]);
export type BotControl = z.infer<typeof BotControlSchema>;

export interface StartFrame {
  type: 'start';
  callId: string;
  sipCallId: string;
  from: string;
  to: string;
  headers: Record<string, string>;
  format: { encoding: 'L16'; sampleRate: number; channels: 1; frameMs: 20 };
}

export type EdgeEvent =
  | StartFrame
  | { type: 'dtmf'; digit: string; durationMs: number }
  | { type: 'mark'; name: string; cleared?: true }
  | { type: 'error'; reason: string }
  | { type: 'stop'; reason: string };

export type ParsedBotText = { ok: true; msg: BotControl } | { ok: false; reason: string };

/** Parses one text frame from the bot; never throws. The reason names the problem for the bot's log. */
export function parseBotText(text: string): ParsedBotText {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'text frame is not JSON' };
  }
  const r = BotControlSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.') || 'type';
    return { ok: false, reason: `invalid control message: ${field}: ${issue.message}` };
  }
  return { ok: true, msg: r.data };
}
