import { createHmac, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { g711 } from '../../codecs/native.js';
import { jsonObject, type BotProtocol, type CallInfo, type Decoded, type EdgeEvent, type OutFrame } from './protocol.js';

/**
 * Twilio Media Streams, bidirectional (`<Connect><Stream>`), field for field as Twilio documents it
 * (twilio.com/docs/voice/media-streams/websocket-messages). Edge → bot:
 *
 *   connected  {"event":"connected","protocol":"Call","version":"1.0.0"}
 *   start      {"event":"start","sequenceNumber":"1","start":{accountSid,streamSid,callSid,tracks,
 *               customParameters,mediaFormat:{encoding:"audio/x-mulaw",sampleRate:8000,channels:1}},"streamSid"}
 *   media      {"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1",
 *               "timestamp":"0","payload":"<base64 µ-law>"},"streamSid"}
 *   dtmf       {"event":"dtmf","streamSid","sequenceNumber","dtmf":{"track":"inbound_track","digit":"1"}}
 *   mark       {"event":"mark","sequenceNumber","streamSid","mark":{"name":"…"}}
 *   stop       {"event":"stop","sequenceNumber","streamSid","stop":{accountSid,callSid}}
 *
 * `sequenceNumber` is a string counting from "1" on every message after `connected`; `chunk` counts
 * media messages from "1"; `timestamp` is ms since the stream started. Bot → edge: `media`
 * (`media.payload`, base64 µ-law 8 kHz, any length), `mark` (`mark.name`), `clear`; each carries the
 * `streamSid`. After a `clear`, every pending mark comes back as a `mark` event (Twilio has no
 * "cleared" flag). Our extensions `overflow`, `backpressure` and `error` are events Twilio never sends;
 * bots that switch on `event` ignore them.
 */
export interface TwilioOptions {
  accountSid: string;
  authToken?: string | undefined;
  customParameters: Record<string, string>;
}

const sid = (prefix: string) => prefix + randomBytes(16).toString('hex');

const StreamSid = z.string().min(1);
const TwilioInSchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('media'), streamSid: StreamSid, media: z.object({ payload: z.string() }) }),
  z.object({ event: z.literal('mark'), streamSid: StreamSid, mark: z.object({ name: z.string().min(1).max(256) }) }),
  z.object({ event: z.literal('clear'), streamSid: StreamSid }),
]);

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * X-Twilio-Signature as Twilio computes it for a request without POST parameters (a WebSocket
 * connect): base64(HMAC-SHA1(authToken, url)). Twilio's helper libraries' `validateRequest`
 * accepts it (tested with the `twilio` npm package).
 */
export function twilioSignature(authToken: string, url: string): string {
  return createHmac('sha1', authToken).update(Buffer.from(url, 'utf8')).digest('base64');
}

export class TwilioProtocol implements BotProtocol {
  readonly name = 'twilio' as const;
  readonly rate = 8000 as const;
  readonly subprotocols: string[] = [];
  /** Media arrives as JSON text (base64 µ-law); a binary frame is an error. */
  readonly binaryIsPcm = false;
  readonly streamSid = sid('MZ');
  readonly callSid = sid('CA');
  #seq = 0;
  #chunk = 0;
  #ulaw = new Uint8Array(160);

  constructor(
    private readonly call: CallInfo,
    private readonly opts: TwilioOptions,
  ) {}

  get accountSid(): string {
    return this.opts.accountSid;
  }

  handshakeHeaders(url: string): Record<string, string> {
    return this.opts.authToken ? { 'X-Twilio-Signature': twilioSignature(this.opts.authToken, url) } : {};
  }

  #next(): string {
    return String(++this.#seq);
  }

  open(): OutFrame[] {
    const connected = JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    const start = JSON.stringify({
      event: 'start',
      sequenceNumber: this.#next(),
      start: {
        accountSid: this.opts.accountSid,
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ['inbound'],
        customParameters: { ...this.call.headers, ...this.opts.customParameters },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: this.streamSid,
    });
    return [connected, start];
  }

  audio(pcm: Int16Array, atMs: number): OutFrame {
    if (this.#ulaw.length < pcm.length) this.#ulaw = new Uint8Array(pcm.length);
    const ulaw = this.#ulaw.subarray(0, pcm.length);
    g711.ulawEncode(pcm, ulaw);
    return JSON.stringify({
      event: 'media',
      sequenceNumber: this.#next(),
      media: { track: 'inbound', chunk: String(++this.#chunk), timestamp: String(Math.max(0, Math.round(atMs))), payload: Buffer.from(ulaw.buffer, ulaw.byteOffset, ulaw.length).toString('base64') },
      streamSid: this.streamSid,
    });
  }

  event(ev: EdgeEvent): OutFrame | undefined {
    const base = () => ({ sequenceNumber: this.#next(), streamSid: this.streamSid });
    switch (ev.type) {
      case 'dtmf':
        return JSON.stringify({ event: 'dtmf', streamSid: this.streamSid, sequenceNumber: this.#next(), dtmf: { track: 'inbound_track', digit: ev.digit } });
      case 'mark':
        return JSON.stringify({ event: 'mark', ...base(), mark: { name: ev.name } });
      case 'stop':
        return JSON.stringify({ event: 'stop', ...base(), stop: { accountSid: this.opts.accountSid, callSid: this.callSid } });
      case 'overflow':
        return JSON.stringify({ event: 'overflow', ...base(), overflow: { droppedMs: ev.droppedMs, totalDroppedMs: ev.totalDroppedMs } });
      case 'backpressure':
        return JSON.stringify({ event: 'backpressure', ...base(), backpressure: { framesDropped: ev.framesDropped, totalFramesDropped: ev.totalFramesDropped } });
      case 'error':
        return JSON.stringify({ event: 'error', ...base(), error: { reason: ev.reason } });
      case 'transfer':
        return undefined;
    }
  }

  decode(data: Buffer, isBinary: boolean): Decoded {
    if (isBinary) return { ok: false, kind: 'binary', reason: 'binary frame: Twilio Media Streams carries audio as base64 in JSON media messages' };
    const obj = jsonObject(data.toString('utf8'));
    if (!obj) return { ok: false, kind: 'not-json', reason: 'text frame is not a JSON object' };
    if (obj.event === 'connected' || obj.event === 'start' || obj.event === 'stop') return { ok: true, cmd: undefined };
    const r = TwilioInSchema.safeParse(obj);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const field = issue.path.join('.') || 'event';
      return { ok: false, kind: `invalid:${field}`, reason: `invalid message: ${field}: ${issue.message}` };
    }
    const m = r.data;
    if (m.streamSid !== this.streamSid) return { ok: false, kind: 'streamSid', reason: `streamSid ${m.streamSid.slice(0, 40)} is not this stream's (${this.streamSid})` };
    switch (m.event) {
      case 'media': {
        const p = m.media.payload;
        if (!BASE64.test(p)) return { ok: false, kind: 'base64', reason: 'media.payload is not valid base64' };
        const ulaw = Buffer.from(p, 'base64');
        const pcm = new Int16Array(ulaw.length);
        g711.ulawDecode(ulaw, pcm);
        return { ok: true, cmd: { type: 'audio', samples: pcm } };
      }
      case 'mark':
        return { ok: true, cmd: { type: 'mark', name: m.mark.name } };
      case 'clear':
        return { ok: true, cmd: { type: 'clear' } };
    }
  }
}
