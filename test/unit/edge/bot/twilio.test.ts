import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import twilio from 'twilio';
import { ulawDecode, ulawEncode } from '../../../../codecs/g711.js';
import { TwilioProtocol, twilioSignature } from '../../../../edge/bot/twilio.js';

const call = { callId: 'c1', sipCallId: 's1@x', from: 'sip:alice@a', to: 'sip:100@b', headers: { 'X-Customer': '42' } };
const opts = { accountSid: 'AC' + 'ab'.repeat(16), authToken: 'secret-token', customParameters: { lang: 'en' } };
const parse = (f: string | Buffer) => JSON.parse(f.toString()) as Record<string, any>;

describe('twilio protocol: what the node sends', () => {
  it('opens with connected (no sequenceNumber), then start with sequenceNumber "1" and every start field', () => {
    const p = new TwilioProtocol(call, opts);
    const [connected, start] = p.open().map(parse);
    assert.deepEqual(connected, { event: 'connected', protocol: 'Call', version: '1.0.0' });
    assert.equal(start!.event, 'start');
    assert.equal(start!.sequenceNumber, '1');
    assert.equal(start!.streamSid, p.streamSid);
    assert.match(p.streamSid, /^MZ[0-9a-f]{32}$/);
    assert.deepEqual(start!.start, {
      accountSid: opts.accountSid,
      streamSid: p.streamSid,
      callSid: p.callSid,
      tracks: ['inbound'],
      customParameters: { 'X-Customer': '42', lang: 'en' },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    });
    assert.match(p.callSid, /^CA[0-9a-f]{32}$/);
  });

  it('numbers media from chunk "1" with string sequence numbers and ms timestamps, payload base64 µ-law', () => {
    const p = new TwilioProtocol(call, opts);
    p.open();
    const pcm = Int16Array.from({ length: 160 }, (_, i) => Math.round(5000 * Math.sin(i / 5)));
    const m1 = parse(p.audio(pcm, 0));
    const m2 = parse(p.audio(pcm, 20.4));
    assert.deepEqual([m1.event, m1.sequenceNumber, m1.media.chunk, m1.media.timestamp, m1.media.track], ['media', '2', '1', '0', 'inbound']);
    assert.deepEqual([m2.sequenceNumber, m2.media.chunk, m2.media.timestamp], ['3', '2', '20']);
    const ulaw = Buffer.from(m1.media.payload as string, 'base64');
    assert.equal(ulaw.length, 160);
    const want = new Uint8Array(160);
    ulawEncode(pcm, want);
    assert.deepEqual(new Uint8Array(ulaw), want);
  });

  it('sends dtmf, mark and stop in Twilio shape, continuing the sequence', () => {
    const p = new TwilioProtocol(call, opts);
    p.open();
    const d = parse(p.event({ type: 'dtmf', digit: '7', durationMs: 100 })!);
    assert.deepEqual(d, { event: 'dtmf', streamSid: p.streamSid, sequenceNumber: '2', dtmf: { track: 'inbound_track', digit: '7' } });
    const m = parse(p.event({ type: 'mark', name: 'greeting', cleared: true })!);
    assert.deepEqual(m, { event: 'mark', sequenceNumber: '3', streamSid: p.streamSid, mark: { name: 'greeting' } });
    const s = parse(p.event({ type: 'stop', reason: 'caller-hangup' })!);
    assert.deepEqual(s, { event: 'stop', sequenceNumber: '4', streamSid: p.streamSid, stop: { accountSid: opts.accountSid, callSid: p.callSid } });
  });

  it('signs the connect as Twilio does: validateRequest of the twilio helper library accepts it', () => {
    const url = 'wss://bot.example.com/stream?x=1';
    const p = new TwilioProtocol(call, opts);
    const sig = p.handshakeHeaders(url)['X-Twilio-Signature']!;
    assert.equal(sig, twilioSignature(opts.authToken, url));
    assert.equal(twilio.validateRequest(opts.authToken, sig, url, {}), true);
    assert.equal(twilio.validateRequest('other-token', sig, url, {}), false);
    assert.deepEqual(new TwilioProtocol(call, { ...opts, authToken: undefined }).handshakeHeaders(url), {});
  });
});

describe('twilio protocol: what a bot sends', () => {
  const p = new TwilioProtocol(call, opts);
  const frame = (o: unknown) => Buffer.from(JSON.stringify(o));

  it('decodes media (base64 µ-law of any length), mark and clear', () => {
    const ulaw = new Uint8Array([0xff, 0x80, 0x00, 0x7f, 0x10]);
    const d = p.decode(frame({ event: 'media', streamSid: p.streamSid, media: { payload: Buffer.from(ulaw).toString('base64') } }), false);
    assert.ok(d.ok && d.cmd?.type === 'audio');
    const want = new Int16Array(5);
    ulawDecode(ulaw, want);
    assert.deepEqual(d.ok && d.cmd?.type === 'audio' ? [...d.cmd.samples] : [], [...want]);
    assert.deepEqual(p.decode(frame({ event: 'mark', streamSid: p.streamSid, mark: { name: 'm1' } }), false), { ok: true, cmd: { type: 'mark', name: 'm1' } });
    assert.deepEqual(p.decode(frame({ event: 'clear', streamSid: p.streamSid }), false), { ok: true, cmd: { type: 'clear' } });
  });

  it('rejects bad input with a kind and a reason, never throwing', () => {
    const cases: [Buffer, boolean, RegExp][] = [
      [Buffer.from('nope'), false, /not a JSON object/],
      [Buffer.from('[1,2]'), false, /not a JSON object/],
      [Buffer.from([1, 2, 3]), true, /binary frame/],
      [frame({ event: 'dance', streamSid: p.streamSid }), false, /event/],
      [frame({ event: 'media', streamSid: p.streamSid }), false, /media/],
      [frame({ event: 'media', streamSid: p.streamSid, media: { payload: '!!not base64!!' } }), false, /base64/],
      [frame({ event: 'media', streamSid: p.streamSid, media: { payload: 'abc' } }), false, /base64/],
      [frame({ event: 'mark', streamSid: p.streamSid, mark: {} }), false, /mark\.name/],
      [frame({ event: 'clear', streamSid: 'MZ0' }), false, /streamSid/],
      [frame({ event: 'clear' }), false, /streamSid/],
    ];
    for (const [buf, bin, re] of cases) {
      const d = p.decode(buf, bin);
      assert.equal(d.ok, false, buf.toString());
      assert.match(!d.ok ? d.reason : '', re);
    }
  });
});
