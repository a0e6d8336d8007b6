import { z } from 'zod';
import { DTMF_DIGITS, bytesOfPcm, pcmFromBytes, type BotCommand, type BotProtocol, type BotRate, type CallInfo, type Decoded, type EdgeEvent, type OutFrame } from './protocol.js';

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
  /** Blind transfer: REFER the caller to this SIP URI (or tel: URI). */
  z.object({ type: z.literal('transfer'), target: z.string().regex(/^(sips?|tel):\S+$/, 'must be a sip:, sips: or tel: URI').max(512) }),
  /** Send DTMF to the caller as RFC 4733 telephone-events. */
  z.object({
    type: z.literal('sendDtmf'),
    digits: z.string().regex(DTMF_DIGITS, 'must be 1-64 of 0-9 * # A-D'),
    durationMs: z.number().int().min(40).max(2000).optional(),
  }),
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

export const DEFAULT_DTMF_MS = 100;

export class NativeProtocol implements BotProtocol {
  readonly name = 'native' as const;
  readonly subprotocols: string[] = [];
  readonly binaryIsPcm = true;

  constructor(
    private readonly call: CallInfo,
    readonly rate: BotRate,
  ) {}

  handshakeHeaders(): Record<string, string> {
    return {};
  }

  open(): OutFrame[] {
    const start: StartFrame = {
      type: 'start',
      callId: this.call.callId,
      sipCallId: this.call.sipCallId,
      from: this.call.from,
      to: this.call.to,
      headers: this.call.headers,
      format: { encoding: 'L16', sampleRate: this.rate, channels: 1, frameMs: 20 },
    };
    return [JSON.stringify(start)];
  }

  /** The byte view of the last frame sent: callers hand the same reused frame buffer every tick. */
  #lastPcm: Int16Array | undefined;
  #lastBytes: Buffer | undefined;

  audio(pcm: Int16Array): OutFrame {
    // A view's offset and length never change, so the same Int16Array means the same bytes.
    if (pcm !== this.#lastPcm) {
      this.#lastPcm = pcm;
      this.#lastBytes = bytesOfPcm(pcm);
    }
    return this.#lastBytes!;
  }

  event(ev: EdgeEvent): OutFrame {
    if (ev.type === 'mark') return JSON.stringify(ev.cleared ? { type: 'mark', name: ev.name, cleared: true } : { type: 'mark', name: ev.name });
    return JSON.stringify(ev);
  }

  decode(data: Buffer, isBinary: boolean): Decoded {
    if (isBinary) {
      if (data.length % 2 !== 0) return { ok: false, kind: 'odd-length', reason: `binary frame of ${data.length} bytes is not whole 16-bit samples` };
      return { ok: true, cmd: { type: 'audio', samples: pcmFromBytes(data) } };
    }
    const parsed = parseBotText(data.toString('utf8'));
    if (!parsed.ok) return { ok: false, kind: parsed.reason, reason: parsed.reason };
    const m = parsed.msg;
    let cmd: BotCommand;
    switch (m.type) {
      case 'hangup':
        cmd = { type: 'hangup', reason: m.reason ?? 'bot asked to hang up' };
        break;
      case 'sendDtmf':
        cmd = { type: 'sendDtmf', digits: m.digits, durationMs: m.durationMs ?? DEFAULT_DTMF_MS };
        break;
      default:
        cmd = m;
    }
    return { ok: true, cmd };
  }
}
