import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JambonzProtocol } from '../../../../edge/bot/jambonz.js';

const call = { callId: 'c1', sipCallId: 's1@x', from: 'sip:+15551230000@a', to: 'sip:100@b', headers: {} };
const opts = { subprotocol: 'audio.jambonz.org' as const, metadata: { tenant: 't1' }, accountSid: 'acc', applicationSid: 'app', passDtmf: true };
const frame = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('jambonz listen protocol', () => {
  it('offers the subprotocol and opens with one metadata text frame: call attributes, sampleRate, mixType, metadata merged', () => {
    const p = new JambonzProtocol(call, 16000, opts);
    assert.deepEqual(p.subprotocols, ['audio.jambonz.org']);
    const frames = p.open();
    assert.equal(frames.length, 1);
    const meta = JSON.parse(frames[0] as string) as Record<string, unknown>;
    assert.equal(meta.sampleRate, 16000);
    assert.equal(meta.mixType, 'mono');
    assert.equal(meta.callSid, 'c1');
    assert.equal(meta.callId, 's1@x');
    assert.equal(meta.from, '+15551230000');
    assert.equal(meta.to, '100');
    assert.equal(meta.direction, 'inbound');
    assert.equal(meta.tenant, 't1');
    assert.deepEqual(new JambonzProtocol(call, 8000, { ...opts, subprotocol: 'audio.drachtio.org' }).subprotocols, ['audio.drachtio.org']);
  });

  it('sends caller audio as binary L16 and events in jambonz shape', () => {
    const p = new JambonzProtocol(call, 8000, opts);
    const pcm = Int16Array.from([1, -2, 300]);
    const b = p.audio(pcm) as Buffer;
    assert.deepEqual([b.readInt16LE(0), b.readInt16LE(2), b.readInt16LE(4)], [1, -2, 300]);
    assert.deepEqual(JSON.parse(p.event({ type: 'dtmf', digit: '5', durationMs: 200 }) as string), { event: 'dtmf', dtmf: '5', duration: '1600' });
    assert.deepEqual(JSON.parse(p.event({ type: 'mark', name: 'a', cleared: false }) as string), { type: 'mark', data: { name: 'a', event: 'playout' } });
    assert.deepEqual(JSON.parse(p.event({ type: 'mark', name: 'a', cleared: true }) as string), { type: 'mark', data: { name: 'a', event: 'cleared' } });
    assert.equal(p.event({ type: 'stop', reason: 'x' }), undefined);
    assert.equal(new JambonzProtocol(call, 8000, { ...opts, passDtmf: false }).event({ type: 'dtmf', digit: '1', durationMs: 1 }), undefined);
  });

  it('decodes killAudio, disconnect, mark, clearMarks and binary audio', () => {
    const p = new JambonzProtocol(call, 24000, opts);
    assert.deepEqual(p.decode(frame({ type: 'killAudio' }), false), { ok: true, cmd: { type: 'clear' } });
    assert.deepEqual(p.decode(frame({ type: 'disconnect' }), false), { ok: true, cmd: { type: 'hangup', reason: 'bot sent disconnect' } });
    assert.deepEqual(p.decode(frame({ type: 'mark', data: { name: 'm' } }), false), { ok: true, cmd: { type: 'mark', name: 'm' } });
    assert.deepEqual(p.decode(frame({ type: 'clearMarks' }), false), { ok: true, cmd: { type: 'clearMarks' } });
    const d = p.decode(Buffer.from([1, 0, 2, 0]), true);
    assert.deepEqual(d.ok && d.cmd?.type === 'audio' ? [...d.cmd.samples] : [], [1, 2]);
  });

  it('drops bad input with a reason: odd-length binary, non-JSON, unknown type, missing mark name, playAudio', () => {
    const p = new JambonzProtocol(call, 8000, opts);
    for (const [buf, bin, re] of [
      [Buffer.from([1, 2, 3]), true, /whole 16-bit/],
      [Buffer.from('{'), false, /JSON/],
      [frame({ type: 'dance' }), false, /type/],
      [frame({ type: 'mark', data: {} }), false, /data\.name/],
      [frame({ type: 'playAudio', data: {} }), false, /playAudio/],
    ] as [Buffer, boolean, RegExp][]) {
      const r = p.decode(buf, bin);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', re);
    }
  });
});
