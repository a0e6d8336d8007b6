import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SipParseError } from '../../../sip/errors.js';
import { SipStreamFramer } from '../../../sip/framing.js';
import { parseMessage } from '../../../sip/message.js';

const RFC4475 = new URL('../../../../test/fixtures/sip/rfc4475/', import.meta.url);
const fixture = (name: string): Buffer => readFileSync(new URL(name + '.dat', RFC4475));

function msg(body: string, extra: string[] = []): Buffer {
  return Buffer.from(
    [
      'MESSAGE sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/TCP pc33.example.com;branch=z9hG4bK776asdhds',
      'To: <sip:bob@example.com>',
      'From: <sip:alice@example.com>;tag=1',
      'Call-ID: x@y',
      'CSeq: 1 MESSAGE',
      ...extra,
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
}

describe('SipStreamFramer', () => {
  it('cuts back-to-back messages out of one chunk', () => {
    const a = msg('hello');
    const b = msg('world!');
    const out = new SipStreamFramer().push(Buffer.concat([a, b]));
    assert.deepEqual(out.map((m) => Buffer.from(m)), [a, b]);
  });

  it('reassembles a message fed one byte at a time', () => {
    const a = msg('split across many chunks');
    const f = new SipStreamFramer();
    const out: Uint8Array[] = [];
    for (let i = 0; i < a.length; i++) out.push(...f.push(a.subarray(i, i + 1)));
    assert.equal(out.length, 1);
    assert.deepEqual(Buffer.from(out[0] ?? []), a);
    assert.equal(f.buffered, 0);
  });

  it('reads a folded, compact Content-Length', () => {
    const raw = Buffer.from(msg('abc').toString().replace('Content-Length: 3', 'l:\r\n 3'));
    assert.deepEqual(new SipStreamFramer().push(raw).map((m) => Buffer.from(m)), [raw]);
  });

  it('frames the RFC 4475 dblreq datagram as two messages, then fails on the trailing octets', () => {
    // On a stream the "extra trailing octets" of dblreq are the INVITE, and the bytes after the
    // INVITE's 150-byte body are garbage: the good messages come out first, the error next.
    const f = new SipStreamFramer();
    const out = f.push(fixture('dblreq'));
    assert.deepEqual(
      out.map((m) => { const p = parseMessage(m); return p.kind === 'request' ? p.method : p.status; }),
      ['REGISTER', 'INVITE'],
    );
    assert.equal(f.error?.kind, 'missing-header');
    assert.throws(() => f.push(new Uint8Array(0)), (e: unknown) => e instanceof SipParseError && e.kind === 'missing-header');
  });

  it('skips CRLF keep-alives between messages and counts double-CRLF pings', () => {
    const f = new SipStreamFramer();
    assert.deepEqual(f.push(Buffer.from('\r\n\r\n')), []);
    assert.equal(f.pings, 1);
    const out = f.push(Buffer.concat([Buffer.from('\r\n'), msg('a'), Buffer.from('\r\n\r\n'), msg('b')]));
    assert.equal(out.length, 2);
    assert.equal(f.buffered, 0);
  });

  it('returns copies the caller owns, unaffected by later reuse of the input buffer', () => {
    const a = msg('abc');
    const input = Buffer.from(a);
    const [out] = new SipStreamFramer().push(input);
    input.fill(0);
    assert.deepEqual(Buffer.from(out ?? []), a);
  });

  it('throws missing-header when a stream message has no Content-Length, and keeps failing', () => {
    const raw = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n');
    const f = new SipStreamFramer();
    assert.throws(() => f.push(raw), (e: unknown) => e instanceof SipParseError && e.kind === 'missing-header');
    assert.throws(() => f.push(msg('ok')), (e: unknown) => e instanceof SipParseError && e.kind === 'missing-header');
  });

  it('throws content-length on conflicting or non-numeric values', () => {
    for (const extra of ['Content-Length: 7', 'Content-Length: -1']) {
      assert.throws(
        () => new SipStreamFramer().push(msg('abc', [extra])),
        (e: unknown) => e instanceof SipParseError && e.kind === 'content-length',
        extra,
      );
    }
  });

  it('throws too-large when the header section outgrows its bound before ending', () => {
    const f = new SipStreamFramer({ maxHeaderBytes: 1024 });
    assert.deepEqual(f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n')), []);
    assert.throws(
      () => f.push(Buffer.from('X-Pad: ' + 'a'.repeat(2000))),
      (e: unknown) => e instanceof SipParseError && e.kind === 'too-large',
    );
  });

  it('throws too-large for a Content-Length over the body bound, before the body arrives', () => {
    const f = new SipStreamFramer({ maxBodyBytes: 10 });
    const head = msg('x'.repeat(11)).subarray(0, -11);
    assert.throws(() => f.push(head), (e: unknown) => e instanceof SipParseError && e.kind === 'too-large');
  });

  it('waits for the whole body before emitting', () => {
    const a = msg('0123456789');
    const f = new SipStreamFramer();
    assert.deepEqual(f.push(a.subarray(0, a.length - 3)), []);
    assert.equal(f.push(a.subarray(a.length - 3)).length, 1);
  });
});
