import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NativeProtocol } from '../../../../edge/bot/native-protocol.js';

const call = { callId: 'c1', sipCallId: 's1@x', from: 'sip:a@a', to: 'sip:100@b', headers: { 'X-A': '1' } };
const frame = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('native protocol adapter', () => {
  it('opens with the start frame carrying the route rate (24 kHz too)', () => {
    const start = JSON.parse(new NativeProtocol(call, 24000).open()[0] as string) as { type: string; format: { sampleRate: number }; headers: unknown };
    assert.equal(start.type, 'start');
    assert.equal(start.format.sampleRate, 24000);
    assert.deepEqual(start.headers, { 'X-A': '1' });
  });

  it('decodes transfer and sendDtmf, with a default digit duration', () => {
    const p = new NativeProtocol(call, 8000);
    assert.deepEqual(p.decode(frame({ type: 'transfer', target: 'sip:agent@pbx' }), false), { ok: true, cmd: { type: 'transfer', target: 'sip:agent@pbx' } });
    assert.deepEqual(p.decode(frame({ type: 'sendDtmf', digits: '12#' }), false), { ok: true, cmd: { type: 'sendDtmf', digits: '12#', durationMs: 100 } });
    assert.equal(p.decode(frame({ type: 'sendDtmf', digits: '12x' }), false).ok, false);
    assert.equal(p.decode(frame({ type: 'transfer', target: 'http://x' }), false).ok, false);
  });

  it('reports marks with cleared only when cleared, and our events as they are', () => {
    const p = new NativeProtocol(call, 8000);
    assert.deepEqual(JSON.parse(p.event({ type: 'mark', name: 'm', cleared: false }) as string), { type: 'mark', name: 'm' });
    assert.deepEqual(JSON.parse(p.event({ type: 'mark', name: 'm', cleared: true }) as string), { type: 'mark', name: 'm', cleared: true });
    assert.deepEqual(JSON.parse(p.event({ type: 'overflow', droppedMs: 20, totalDroppedMs: 40 }) as string), { type: 'overflow', droppedMs: 20, totalDroppedMs: 40 });
  });
});
