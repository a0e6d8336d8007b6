import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';

/**
 * dgram resolves every send's address through `lookup`, and Node's own answers even an IP literal
 * on process.nextTick: the packet leaves only after the caller's whole turn of the event loop (for
 * a tick, after every call's work). Answering IP literals at once makes `send` write the datagram
 * right away, so a call's RTP leaves when its frame is ready. Names still go to DNS.
 */
const syncLookup = ((host: string, options: unknown, callback: (err: Error | null, address: string, family: number) => void) => {
  const family = isIP(host);
  if (family !== 0) callback(null, host, family);
  else dnsLookup(host, options as number, callback);
}) as unknown as NonNullable<SocketOptions['lookup']>;

export class PortsExhaustedError extends Error {
  override name = 'PortsExhaustedError';
}

/**
 * Hands out RTP sockets on even ports from a range (RFC 3550 §11: RTP on even, RTCP on the next
 * odd port). Walks the range round-robin so a just-freed port is not reused at once (late packets
 * of the old call would land in the new one). Ports another process holds are skipped.
 */
export class RtpPortPool {
  readonly #inUse = new Set<number>();
  #next: number;

  constructor(
    private readonly host: string,
    private readonly min: number,
    private readonly max: number,
  ) {
    this.#next = min + (min % 2);
  }

  get size(): number {
    return Math.floor((this.max - this.min + 1) / 2);
  }

  async bind(): Promise<{ socket: Socket; port: number }> {
    const attempts = this.size;
    for (let i = 0; i < attempts; i++) {
      const port = this.#take();
      if (port === undefined) break;
      const socket = createSocket({ type: 'udp4', reuseAddr: false, lookup: syncLookup });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind(port, this.host, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        return { socket, port };
      } catch {
        this.#inUse.delete(port);
        socket.close();
      }
    }
    throw new PortsExhaustedError(`no free RTP port in ${this.min}-${this.max}`);
  }

  release(port: number): void {
    this.#inUse.delete(port);
  }

  #take(): number | undefined {
    for (let i = 0; i < this.size; i++) {
      const port = this.#next;
      this.#next += 2;
      if (this.#next > this.max - 1) this.#next = this.min + (this.min % 2);
      if (!this.#inUse.has(port)) {
        this.#inUse.add(port);
        return port;
      }
    }
    return undefined;
  }
}
