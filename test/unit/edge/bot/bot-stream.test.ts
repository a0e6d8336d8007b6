import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { BotStream, BotUnreachableError } from '../../../../edge/bot/bot-stream.js';
import { NativeProtocol } from '../../../../edge/bot/native-protocol.js';
import type { BotCommand } from '../../../../edge/bot/protocol.js';
import { verifyConnect } from '../../../../edge/bot/signing.js';

const log = pino({ level: 'silent' });
const call = { callId: 'call-9', sipCallId: 's@x', from: 'sip:a@x', to: 'sip:b@x', headers: {} };
const base = { callId: 'call-9', timeoutMs: 2000, sendBufferBytes: 4096, queueFrames: 50, readTimeoutMs: 300, log };

async function server(onConnection: (ws: WebSocket, req: { headers: Record<string, string | string[] | undefined> }) => void): Promise<{ url: string; wss: WebSocketServer }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws, req) => onConnection(ws, req));
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/bot`, wss };
}

describe('BotStream', { timeout: 20000 }, () => {
  it('signs the connect so the bot can verify it, sends start first and delivers commands', async () => {
    let verified: unknown;
    const got: BotCommand[] = [];
    const { url, wss } = await server((ws, req) => {
      verified = verifyConnect('0123456789abcdef', url, req.headers, Date.now());
      ws.send(JSON.stringify({ type: 'mark', name: 'x' }));
    });
    const s = await BotStream.connect(url, new NativeProtocol(call, 8000), { ...base, signingSecret: '0123456789abcdef' }, { onCommand: (c) => got.push(c), onClose: () => undefined });
    while (got.length === 0) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(verified, { ok: true, callId: 'call-9' });
    assert.deepEqual(got, [{ type: 'mark', name: 'x' }]);
    s.close('done');
    wss.close();
  });

  it('drops the oldest caller audio beyond its queue when the bot stops reading, then disconnects it as stalled', async () => {
    const { url, wss } = await server((ws) => (ws as unknown as { _socket: { pause(): void } })._socket.pause());
    let closed: { reason: string; failure: boolean } | undefined;
    const s = await BotStream.connect(url, new NativeProtocol(call, 8000), base, { onCommand: () => undefined, onClose: (reason, failure) => (closed = { reason, failure }) });
    // 12.8 MB at once: far more than the kernel's socket buffers hold for a reader that never reads.
    const big = new Int16Array(16384);
    for (let i = 0; i < 400; i++) s.sendAudio(big, i * 20);
    assert.ok(s.framesDropped > 0, 'frames were dropped');
    assert.equal(s.framesSent + s.framesDropped + 50, 400, 'sent + dropped + the 50 still queued');
    const t0 = performance.now();
    while (!closed && performance.now() - t0 < 3000) {
      s.pump(performance.now());
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(closed?.failure, true);
    assert.match(closed?.reason ?? '', /stopped reading/);
    wss.close();
  });

  it('connects over wss:// with a configured CA, and refuses an unknown CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'botedge-tls-'));
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    assert.equal(r.status, 0, 'openssl made a certificate');
    const cert = readFileSync(join(dir, 'cert.pem'));
    const https = createHttpsServer({ cert, key: readFileSync(join(dir, 'key.pem')) });
    const wss = new WebSocketServer({ server: https });
    let started = '';
    wss.on('connection', (ws) => ws.once('message', (d) => (started = d.toString())));
    await new Promise<void>((res) => https.listen(0, '127.0.0.1', () => res()));
    const url = `wss://127.0.0.1:${(https.address() as { port: number }).port}/`;
    const handlers = { onCommand: () => undefined, onClose: () => undefined };
    await assert.rejects(BotStream.connect(url, new NativeProtocol(call, 8000), base, handlers), BotUnreachableError);
    const s = await BotStream.connect(url, new NativeProtocol(call, 8000), { ...base, ca: cert }, handlers);
    while (!started) await new Promise((res) => setTimeout(res, 10));
    assert.match(started, /"type":"start"/);
    s.close('done');
    wss.close();
    https.closeAllConnections();
    https.close();
  });
});
