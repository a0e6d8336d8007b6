import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SipError } from '../../../sip/errors.js';
import { parseMessage, type SipRequest } from '../../../sip/message.js';
import { checkRequest, type UasPolicy } from '../../../sip/validate.js';

const UAS: UasPolicy = { supportedExtensions: ['100rel', 'timer'], acceptContentTypes: ['application/sdp', 'multipart/*'] };

const BASE = [
  'Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'To: <sip:bob@example.com>',
  'From: <sip:alice@example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.example.com',
];

/** A request built from BASE with `drop` removed and `extra` appended. */
function req(opts: { method?: string; uri?: string; extra?: string[]; drop?: string[]; body?: string; cseq?: string } = {}): SipRequest {
  const method = opts.method ?? 'INVITE';
  const lines = [
    `${method} ${opts.uri ?? 'sip:bob@example.com'} SIP/2.0`,
    ...BASE.filter((l) => !(opts.drop ?? []).some((d) => l.startsWith(d + ':'))),
    ...((opts.drop ?? []).includes('CSeq') ? [] : [`CSeq: ${opts.cseq ?? '1 ' + method}`]),
    ...(opts.extra ?? []),
    `Content-Length: ${Buffer.byteLength(opts.body ?? '')}`,
    '',
    opts.body ?? '',
  ];
  const m = parseMessage(Buffer.from(lines.join('\r\n')));
  assert.equal(m.kind, 'request');
  return m as SipRequest;
}

function statusOf(e: SipError | null): number | null {
  return e === null ? null : e.status;
}

describe('checkRequest', () => {
  it('accepts a well-formed request', () => {
    assert.equal(checkRequest(req({ body: 'v=0\r\n', extra: ['Content-Type: application/sdp'] }), UAS), null);
  });

  it('answers 400 naming each missing mandatory header', () => {
    for (const name of ['To', 'From', 'CSeq', 'Call-ID', 'Via']) {
      const e = checkRequest(req({ drop: [name] }), UAS);
      assert.ok(e instanceof SipError, name);
      assert.equal(e.status, 400);
      assert.match(e.reason, new RegExp(name));
    }
  });

  it('requires Max-Forwards only when the policy asks for it', () => {
    const r = req({ drop: ['Max-Forwards'] });
    assert.equal(checkRequest(r, UAS), null);
    assert.equal(statusOf(checkRequest(r, { ...UAS, requireMaxForwards: true })), 400);
  });

  it('answers 400 to several values of a single-value header', () => {
    for (const dup of ['To: <sip:carol@example.com>', 'Call-ID: other@host', 'Max-Forwards: 10', 'CSeq: 1 INVITE']) {
      assert.equal(statusOf(checkRequest(req({ extra: [dup] }), UAS)), 400, dup);
    }
  });

  it('answers 400 to conflicting Content-Length values but not to repeated equal ones', () => {
    const lines = (cls: string[]): SipRequest =>
      parseMessage(Buffer.from(['OPTIONS sip:b@example.com SIP/2.0', ...BASE, 'CSeq: 1 OPTIONS', ...cls, '', ''].join('\r\n'))) as SipRequest;
    assert.equal(statusOf(checkRequest(lines(['Content-Length: 0', 'Content-Length: 3']), UAS)), 400);
    assert.equal(checkRequest(lines(['Content-Length: 0', 'Content-Length: 00']), UAS), null);
  });

  it('answers 400 when the CSeq method differs from the method of a request built in code', () => {
    const r = req();
    r.headers.set('CSeq', '1 BYE');
    assert.equal(statusOf(checkRequest(r, UAS)), 400);
    r.headers.set('CSeq', 'garbage');
    assert.equal(statusOf(checkRequest(r, UAS)), 400);
  });

  it('answers 400 to a body without Content-Type', () => {
    assert.equal(statusOf(checkRequest(req({ body: 'v=0\r\n' }), UAS)), 400);
  });

  it('answers 416 to a Request-URI scheme outside the policy', () => {
    assert.equal(statusOf(checkRequest(req({ uri: 'mailto:bob@example.com' }), UAS)), 416);
    assert.equal(checkRequest(req({ uri: 'tel:+15551234' }), UAS), null);
    assert.equal(checkRequest(req({ uri: 'SIPS:bob@example.com' }), UAS), null);
  });

  it('answers 420 with the unsupported option tags of Require, in order', () => {
    const e = checkRequest(req({ extra: ['Require: timer, foo', 'Require: bar'] }), UAS);
    assert.equal(e?.status, 420);
    assert.deepEqual(e?.unsupported, ['foo', 'bar']);
  });

  it('never rejects ACK or CANCEL over Require', () => {
    assert.equal(checkRequest(req({ method: 'ACK', extra: ['Require: foo'] }), UAS), null);
    assert.equal(checkRequest(req({ method: 'CANCEL', extra: ['Require: foo'] }), UAS), null);
  });

  it('answers 415 to a body type outside the policy, matching wildcards and ignoring parameters', () => {
    const body = 'x';
    assert.equal(statusOf(checkRequest(req({ body, extra: ['Content-Type: text/plain'] }), UAS)), 415);
    assert.equal(checkRequest(req({ body, extra: ['Content-Type: Application/SDP ; charset=utf-8'] }), UAS), null);
    assert.equal(checkRequest(req({ body, extra: ['Content-Type: multipart/mixed;boundary=x'] }), UAS), null);
    assert.equal(checkRequest(req({ extra: ['Content-Type: text/plain'] }), UAS), null); // no body, nothing to refuse
  });

  it('checks in RFC 3261 §8.2 order: 400 before 416 before 420 before 415', () => {
    const all = { uri: 'mailto:x@y', body: 'x', extra: ['Require: foo', 'Content-Type: text/plain'] };
    assert.equal(statusOf(checkRequest(req({ ...all, drop: ['To'] }), UAS)), 400);
    assert.equal(statusOf(checkRequest(req(all), UAS)), 416);
    assert.equal(statusOf(checkRequest(req({ ...all, uri: 'sip:b@example.com' }), UAS)), 420);
    assert.equal(statusOf(checkRequest(req({ ...all, uri: 'sip:b@example.com', extra: ['Content-Type: text/plain'] }), UAS)), 415);
  });

  it('as a proxy: 483 at Max-Forwards 0, 420 over Proxy-Require, and neither Require nor Content-Type matter', () => {
    const proxy = { ...UAS, isProxy: true };
    const zero = req({ drop: ['Max-Forwards'], extra: ['Max-Forwards: 0'] });
    assert.equal(statusOf(checkRequest(zero, proxy)), 483);
    assert.equal(checkRequest(zero, UAS), null);
    const e = checkRequest(req({ extra: ['Proxy-Require: sec-agree', 'Require: foo'] }), proxy);
    assert.equal(e?.status, 420);
    assert.deepEqual(e?.unsupported, ['sec-agree']);
    assert.equal(checkRequest(req({ body: 'x', extra: ['Require: foo', 'Content-Type: text/plain'] }), proxy), null);
    // a UAS ignores Proxy-Require
    assert.equal(checkRequest(req({ extra: ['Proxy-Require: sec-agree'] }), UAS), null);
  });
});
