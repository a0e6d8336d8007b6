import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, createConnection, type Server, type Socket as TcpSocket } from 'node:net';
import { SipParseError } from '../sip/errors.js';
import { SipStreamFramer } from '../sip/framing.js';
import { parseMessage, serializeMessage, type SipMessage } from '../sip/message.js';
import type { Destination } from '../sip/transaction-layer.js';
import { logger } from './log.js';

const log = logger('edge:sip:transport');

export interface SipTransportStats {
  received: number;
  sent: number;
  /** Datagrams or stream messages that did not parse. */
  malformed: number;
  /** Of those, how many got a 400 back (the rest lacked what a response needs, RFC 3261 §8.2.6). */
  rejected400: number;
}

export type SipReceiver = (msg: SipMessage, source: Destination) => void;

/**
 * SIP over UDP and TCP on one port (RFC 3261 §18). Parses, hands messages up, serializes what goes
 * down. A message that does not parse never reaches the stack: it is counted, answered 400 when
 * it carries enough of a request to address a response, and otherwise dropped.
 */
export class SipTransport {
  readonly stats: SipTransportStats = { received: 0, sent: 0, malformed: 0, rejected400: 0 };
  readonly #tcp = new Map<string, TcpSocket>();
  #closed = false;

  private constructor(
    private readonly udp: UdpSocket,
    private readonly server: Server,
    private readonly receive: SipReceiver,
  ) {}

  /**
   * Binds UDP and TCP on `port`. Port 0 lets the kernel choose the UDP port from its ephemeral
   * range, where the same number can already be the local port of one of our outgoing TCP
   * connections (a bot's WebSocket): then TCP cannot listen on it, and we try another choice.
   * `ports` is the sequence of UDP ports to try; a test hands it a port it holds on TCP first.
   */
  static async listen(host: string, port: number, receive: SipReceiver, ports: Iterable<number> = port === 0 ? zeroTries() : [port]): Promise<SipTransport> {
    let lastError: Error | undefined;
    const tried: number[] = [];
    for (const p of ports) {
      const udp = await bindUdp(host, p);
      const bound = udp.address().port;
      tried.push(bound);
      try {
        const server = await listenTcp(host, bound);
        return SipTransport.#adoptBound(udp, server, receive);
      } catch (err) {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        lastError = err as Error;
      }
    }
    throw new Error(`SIP needs one port free for both UDP and TCP; on ${host} TCP was taken on ${tried.join(', ')}`, { cause: lastError });
  }

  static #adoptBound(udp: UdpSocket, server: Server, receive: SipReceiver): SipTransport {
    const t = new SipTransport(udp, server, receive);
    udp.on('message', (buf, rinfo) => t.#onBytes(buf, { address: rinfo.address, port: rinfo.port, transport: 'udp' }));
    udp.on('error', (err) => log.error({ err: err.message }, 'udp socket error'));
    server.on('connection', (sock) => t.#adopt(sock));
    return t;
  }

  get port(): number {
    return this.udp.address().port;
  }

  #onBytes(buf: Uint8Array, source: Destination): void {
    let msg: SipMessage;
    try {
      msg = parseMessage(buf);
    } catch (err) {
      this.stats.malformed++;
      if (err instanceof SipParseError) this.#reject(buf, err, source);
      else log.error({ err }, 'parser threw a non-SipParseError (bug)');
      return;
    }
    this.stats.received++;
    try {
      this.receive(msg, source);
    } catch (err) {
      log.error({ err }, 'stack failed on a message');
    }
  }

  #reject(buf: Uint8Array, err: SipParseError, source: Destination): void {
    const res = badRequestFor(buf, err);
    if (!res) return;
    this.stats.rejected400++;
    this.#write(res, source);
  }

  #adopt(sock: TcpSocket): void {
    const key = `${sock.remoteAddress}:${sock.remotePort}`;
    const source: Destination = { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0, transport: 'tcp' };
    this.#tcp.set(key, sock);
    const framer = new SipStreamFramer();
    sock.setNoDelay(true);
    sock.on('data', (chunk) => {
      let messages: Uint8Array[];
      try {
        messages = framer.push(chunk);
      } catch (err) {
        // A stream without framing cannot be resynchronised: close it (RFC 3261 §18.3).
        this.stats.malformed++;
        if (err instanceof SipParseError) log.warn({ peer: key, kind: err.kind }, 'unframeable SIP stream closed');
        sock.destroy();
        return;
      }
      for (const m of messages) this.#onBytes(m, source);
      // The framer hands out the good messages of a chunk before reporting the bytes after them
      // that cannot be framed; close now rather than wait for a next chunk that may never come.
      if (framer.error) {
        this.stats.malformed++;
        log.warn({ peer: key, kind: framer.error.kind }, 'unframeable SIP stream closed');
        sock.destroy();
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.#tcp.delete(key));
  }

  /** Sends a message; over TCP reuses the connection the peer opened, or opens one. */
  send(msg: SipMessage, dest: Destination): void {
    this.#write(serializeMessage(msg), dest);
  }

  #write(bytes: Uint8Array, dest: Destination): void {
    if (this.#closed) return;
    this.stats.sent++;
    if (dest.transport === 'tcp') {
      const key = `${dest.address}:${dest.port}`;
      let sock = this.#tcp.get(key);
      if (!sock || sock.destroyed) {
        sock = createConnection({ host: dest.address, port: dest.port });
        this.#adopt(sock);
        this.#tcp.set(key, sock);
      }
      sock.write(bytes);
      return;
    }
    this.udp.send(bytes, dest.port, dest.address);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#tcp.values()) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise<void>((resolve) => this.udp.close(() => resolve()));
  }
}

const REQUEST_LINE = /^[A-Za-z!%*_+`'~.-]+ [^ \r\n]+ SIP\/\d+\.\d+\r?\n/;
const NEEDED: [RegExp, string][] = [
  [/^(?:via|v)[ \t]*:(.*)$/im, 'Via'],
  [/^(?:from|f)[ \t]*:(.*)$/im, 'From'],
  [/^(?:to|t)[ \t]*:(.*)$/im, 'To'],
  [/^(?:call-id|i)[ \t]*:(.*)$/im, 'Call-ID'],
  [/^cseq[ \t]*:(.*)$/im, 'CSeq'],
];

/**
 * A best-effort 400 for a request that did not parse (RFC 3261 §8.2.6.1 wants Via, From, To,
 * Call-ID and CSeq copied). The reason phrase says what was wrong. Returns undefined for responses
 * and for requests too broken to address an answer — those are dropped (§16.3 and RFC 4475 §3.1.2).
 */
export function badRequestFor(buf: Uint8Array, err: SipParseError): Buffer | undefined {
  const head = Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.length, 8192)).toString('latin1');
  if (!REQUEST_LINE.test(head) || head.startsWith('SIP/')) return undefined;
  const headerSection = head.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const lines: string[] = [];
  for (const [re, name] of NEEDED) {
    const m = re.exec(headerSection);
    if (!m || !m[1]) return undefined;
    const value = m[1].trim();
    if (/[\r\n]/.test(value) || value.length === 0) return undefined;
    lines.push(`${name}: ${value}`);
  }
  const reason = `Bad Request (${err.kind}: ${err.message})`.replace(/[\r\n]+/g, ' ').slice(0, 200);
  return Buffer.from(`SIP/2.0 400 ${reason}\r\n${lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, 'latin1');
}

/** Port 0 a few times: each is a fresh choice by the kernel. */
function* zeroTries(): Generator<number> {
  for (let i = 0; i < 8; i++) yield 0;
}

function bindUdp(host: string, port: number): Promise<UdpSocket> {
  const udp = createSocket({ type: 'udp4' });
  return new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, host, () => {
      udp.off('error', reject);
      resolve(udp);
    });
  });
}

function listenTcp(host: string, port: number): Promise<Server> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
