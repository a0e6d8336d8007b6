import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { describe, it } from 'node:test';

import { PortsExhaustedError, RtpPortPool } from '../../../../edge/media/port-pool.js';
import { createRtpIo, DgramRtpIo } from '../../../../edge/media/rtp-io.js';

function hold(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve(s));
  });
}

for (const [name, make] of [
  ['dgram', () => new DgramRtpIo()],
  ['auto (native when built)', () => createRtpIo('127.0.0.1', 'auto')],
] as const) {
  describe(`RtpPortPool (${name})`, () => {
    it('hands out an even RTP port with its RTCP socket on the next one, skipping a pair another process holds half of', async () => {
      const io = make();
      // A range of three pairs; the RTCP half of the first is taken.
      const base = 38000 + 2 * Math.floor(Math.random() * 400);
      const squatter = await hold(base + 1);
      const pool = new RtpPortPool(io, '127.0.0.1', base, base + 5);
      try {
        const a = await pool.bind();
        assert.equal(a.port, base + 2, 'the first pair was skipped: its RTCP port is taken');
        assert.equal(a.socket.port, base + 2);
        assert.equal(a.rtcp.port, base + 3);
        const b = await pool.bind();
        assert.equal(b.port, base + 4);
        // The skipped pair's RTP port was let go again, not leaked: with the squatter gone it is used.
        squatter.close();
        // Both closes (the squatter's, and the native I/O thread's of the skipped RTP socket) finish off the event loop.
        await new Promise((r) => setTimeout(r, 20));
        const c = await pool.bind();
        assert.equal(c.port, base);
        await assert.rejects(pool.bind(), PortsExhaustedError);
        for (const p of [a, b, c]) {
          p.socket.close();
          p.rtcp.close();
          pool.release(p.port);
        }
      } finally {
        io.close();
      }
    });
  });
}
