/**
 * A deliberately small SIP UAC for tests that need to send what no well-behaved client would:
 * raw bytes, broken SDP, requests at chosen moments. It parses what comes back with our parser.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseMessage, type SipMessage, type SipRequest, type SipResponse } from '../../sip/message.js';

export interface Sent {
  callId: string;
  fromTag: string;
  branch: string;
  cseq: number;
}

export class RawUac {
  readonly received: SipMessage[] = [];
  #waiters: { pred: (m: SipMessage) => boolean; resolve: (m: SipMessage) => void }[] = [];

  private constructor(
    readonly socket: Socket,
    readonly target: { host: string; port: number },
  ) {
    socket.on('message', (buf) => {
      let msg: SipMessage;
      try {
        msg = parseMessage(buf);
      } catch {
        return;
      }
      this.received.push(msg);
      for (const w of [...this.#waiters]) {
        if (w.pred(msg)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
    });
  }

  static async open(targetPort: number): Promise<RawUac> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    return new RawUac(socket, { host: '127.0.0.1', port: targetPort });
  }

  get port(): number {
    return this.socket.address().port;
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.send(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, this.target.port, this.target.host);
  }

  /** Waits for a message matching `pred` (including one already received). */
  waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 5000, what = 'a SIP message'): Promise<SipMessage> {
    const seen = this.received.find(pred);
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: SipMessage) => (clearTimeout(t), this.received.splice(this.received.indexOf(m), 1), resolve(m)) };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** The final response (≥ 200) to the request with this branch. */
  async finalResponse(branch: string, timeoutMs = 8000): Promise<SipResponse> {
    return (await this.waitFor(
      (m) => m.kind === 'response' && m.status >= 200 && (m.headers.get('Via') ?? '').includes(branch),
      timeoutMs,
      `final response for ${branch}`,
    )) as SipResponse;
  }

  waitForRequest(method: string, callId: string, timeoutMs = 8000): Promise<SipRequest> {
    return this.waitFor((m) => m.kind === 'request' && m.method === method && m.headers.get('Call-ID') === callId, timeoutMs, `${method}`) as Promise<SipRequest>;
  }

  newCall(): Sent {
    return { callId: `${randomBytes(8).toString('hex')}@test`, fromTag: randomBytes(4).toString('hex'), branch: newBranch(), cseq: 1 };
  }

  /** Builds request text; `body` may be any string (broken SDP included). */
  request(method: string, user: string, s: Sent, opts: { toTag?: string; body?: string; contentType?: string; cseqMethod?: string; extra?: string[] } = {}): string {
    const body = opts.body ?? '';
    const lines = [
      `${method} sip:${user}@${this.target.host}:${this.target.port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${s.branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:tester@127.0.0.1:${this.port}>;tag=${s.fromTag}`,
      `To: <sip:${user}@${this.target.host}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
      `Call-ID: ${s.callId}`,
      `CSeq: ${s.cseq} ${opts.cseqMethod ?? method}`,
      `Contact: <sip:tester@127.0.0.1:${this.port}>`,
      ...(opts.extra ?? []),
      ...(body ? [`Content-Type: ${opts.contentType ?? 'application/sdp'}`] : []),
      `Content-Length: ${Buffer.byteLength(body, 'latin1')}`,
      '',
      body,
    ];
    return lines.join('\r\n');
  }

  close(): void {
    this.socket.close();
  }
}

export function newBranch(): string {
  return `z9hG4bK${randomBytes(6).toString('hex')}`;
}

export function sdpOffer(rtpPort: number, opts: { payloads?: string; direction?: string; address?: string } = {}): string {
  const payloads = opts.payloads ?? '0 8 101';
  const rtpmaps = payloads
    .split(' ')
    .map((pt) => ({ '0': 'a=rtpmap:0 PCMU/8000', '8': 'a=rtpmap:8 PCMA/8000', '9': 'a=rtpmap:9 G722/8000', '101': 'a=rtpmap:101 telephone-event/8000', '18': 'a=rtpmap:18 G729/8000' })[pt])
    .filter(Boolean);
  return [
    'v=0',
    `o=tester 1 1 IN IP4 127.0.0.1`,
    's=-',
    `c=IN IP4 ${opts.address ?? '127.0.0.1'}`,
    't=0 0',
    `m=audio ${rtpPort} RTP/AVP ${payloads}`,
    ...rtpmaps,
    `a=${opts.direction ?? 'sendrecv'}`,
    '',
  ].join('\r\n');
}
