import type { RtpIo } from './rtp-io.js';
import type { RtpSocket } from './rtp-socket.js';

export class PortsExhaustedError extends Error {
  override name = 'PortsExhaustedError';
}

/**
 * Hands out RTP sockets on even ports from a range, each with its RTCP socket on the next odd port
 * (RFC 3550 §11). Walks the range round-robin so a just-freed port is not reused at once (late
 * packets of the old call would land in the new one). Pairs another process holds part of are
 * skipped.
 */
export class RtpPortPool {
  readonly #inUse = new Set<number>();
  #next: number;

  constructor(
    private readonly io: RtpIo,
    private readonly host: string,
    private readonly min: number,
    private readonly max: number,
  ) {
    this.#next = min + (min % 2);
  }

  get size(): number {
    return Math.floor((this.max - this.min + 1) / 2);
  }

  async bind(): Promise<{ socket: RtpSocket; rtcp: RtpSocket; port: number }> {
    const attempts = this.size;
    for (let i = 0; i < attempts; i++) {
      const port = this.#take();
      if (port === undefined) break;
      let socket: RtpSocket | undefined;
      try {
        socket = await this.io.bind(this.host, port);
        return { socket, rtcp: await this.io.bind(this.host, port + 1), port };
      } catch {
        socket?.close();
        this.#inUse.delete(port);
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
