import { z } from 'zod';
import { bytesOfPcm, jsonObject, pcmFromBytes, type BotProtocol, type BotRate, type CallInfo, type Decoded, type EdgeEvent, type OutFrame } from './protocol.js';

/**
 * The jambonz `listen` protocol with streaming bidirectional audio (docs.jambonz.org, verb
 * `listen`, and its "Bidirectional audio" section), as a jambonz feature server speaks it:
 *
 * - subprotocol `audio.jambonz.org` (or the older `audio.drachtio.org`);
 * - one text frame first: the call's attributes (`callSid`, `callId`, `from`, `to`, `direction`, …)
 *   plus `sampleRate` and `mixType`, with the route's `metadata` merged in at the top level;
 * - then binary frames of L16 (little-endian 16-bit) mono PCM at `sampleRate`, both ways;
 * - DTMF (`passDtmf`): `{"event":"dtmf","dtmf":"5","duration":"1600"}` (duration in RTP units);
 * - from the bot: `killAudio` (flush queued audio; pending marks come back with `"event":"cleared"`),
 *   `disconnect` (close the stream; here it ends the call, as there is no next verb), `mark`
 *   (`{"type":"mark","data":{"name":"x"}}` → `{"type":"mark","data":{"name":"x","event":"playout"}}`
 *   when played), `clearMarks` (forget pending marks, report none).
 *
 * Our extensions (overflow, backpressure, error, transfer results) are `{"type":…,"data":{…}}`
 * frames jambonz never sends; the legacy non-streaming `playAudio` is refused as bad input.
 */
export interface JambonzOptions {
  subprotocol: 'audio.jambonz.org' | 'audio.drachtio.org';
  metadata: Record<string, unknown>;
  accountSid: string;
  applicationSid: string;
  passDtmf: boolean;
}

const JambonzInSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('killAudio') }),
  z.object({ type: z.literal('disconnect') }),
  z.object({ type: z.literal('mark'), data: z.object({ name: z.string().min(1).max(256) }) }),
  z.object({ type: z.literal('clearMarks') }),
]);

export class JambonzProtocol implements BotProtocol {
  readonly name = 'jambonz' as const;
  readonly subprotocols: string[];
  readonly binaryIsPcm = true;

  constructor(
    private readonly call: CallInfo,
    readonly rate: BotRate,
    private readonly opts: JambonzOptions,
  ) {
    this.subprotocols = [opts.subprotocol];
  }

  handshakeHeaders(): Record<string, string> {
    return {};
  }

  open(): OutFrame[] {
    const meta = {
      sampleRate: this.rate,
      mixType: 'mono',
      callSid: this.call.callId,
      callId: this.call.sipCallId,
      direction: 'inbound',
      from: userOf(this.call.from),
      to: userOf(this.call.to),
      callerId: userOf(this.call.from),
      callStatus: 'in-progress',
      sipStatus: 200,
      accountSid: this.opts.accountSid,
      applicationSid: this.opts.applicationSid,
      ...(Object.keys(this.call.headers).length ? { sipHeaders: this.call.headers } : {}),
      ...this.opts.metadata,
    };
    return [JSON.stringify(meta)];
  }

  audio(pcm: Int16Array): OutFrame {
    return bytesOfPcm(pcm);
  }

  event(ev: EdgeEvent): OutFrame | undefined {
    switch (ev.type) {
      case 'dtmf':
        return this.opts.passDtmf ? JSON.stringify({ event: 'dtmf', dtmf: ev.digit, duration: String(ev.durationMs * 8) }) : undefined;
      case 'mark':
        return JSON.stringify({ type: 'mark', data: { name: ev.name, event: ev.cleared ? 'cleared' : 'playout' } });
      case 'stop':
        // jambonz just closes the socket; the close reason carries why.
        return undefined;
      default: {
        const { type, ...data } = ev;
        return JSON.stringify({ type, data });
      }
    }
  }

  decode(data: Buffer, isBinary: boolean): Decoded {
    if (isBinary) {
      if (data.length % 2 !== 0) return { ok: false, kind: 'odd-length', reason: `binary frame of ${data.length} bytes is not whole 16-bit samples` };
      return { ok: true, cmd: { type: 'audio', samples: pcmFromBytes(data) } };
    }
    const obj = jsonObject(data.toString('utf8'));
    if (!obj) return { ok: false, kind: 'not-json', reason: 'text frame is not a JSON object' };
    if (obj.type === 'playAudio') return { ok: false, kind: 'playAudio', reason: 'playAudio (non-streaming) is not supported: stream L16 binary frames' };
    const r = JambonzInSchema.safeParse(obj);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const field = issue.path.join('.') || 'type';
      return { ok: false, kind: `invalid:${field}`, reason: `invalid command: ${field}: ${issue.message}` };
    }
    const m = r.data;
    switch (m.type) {
      case 'killAudio':
        return { ok: true, cmd: { type: 'clear' } };
      case 'disconnect':
        return { ok: true, cmd: { type: 'hangup', reason: 'bot sent disconnect' } };
      case 'mark':
        return { ok: true, cmd: { type: 'mark', name: m.data.name } };
      case 'clearMarks':
        return { ok: true, cmd: { type: 'clearMarks' } };
    }
  }
}

/** `sip:alice@host` → `alice` (jambonz puts the user part in from/to). */
function userOf(uri: string): string {
  const m = /^(?:sips?|tel):([^@;>]+)/.exec(uri);
  return m ? m[1]! : uri;
}
