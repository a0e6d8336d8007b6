import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dialog, dialogId } from '../../../sip/dialog.js';
import { SipError } from '../../../sip/errors.js';
import { createResponse, parseMessage, type SipRequest } from '../../../sip/message.js';

const T = { timeout: 5000 };

function invite(extra = '', cseq = 1, method = 'INVITE'): SipRequest {
  const raw =
    `${method} sip:bob@biloxi.example.com SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n` +
    `Max-Forwards: 70\r\n` +
    `To: Bob <sip:bob@biloxi.example.com>\r\n` +
    `From: Alice <sip:alice@atlanta.example.com>;tag=alice-tag\r\n` +
    `Call-ID: call-1@pc33\r\n` +
    `CSeq: ${cseq} ${method}\r\n` +
    `Contact: <sip:alice@pc33.atlanta.example.com>\r\n` +
    extra +
    `Content-Length: 0\r\n\r\n`;
  return parseMessage(Buffer.from(raw)) as SipRequest;
}

/** An in-dialog request from Alice to Bob (Bob is the UAS of the INVITE). */
function fromAlice(method: string, cseq: number, extra = ''): SipRequest {
  const raw =
    `${method} sip:bob@192.0.2.4 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK-${method}-${cseq}\r\n` +
    `Max-Forwards: 70\r\n` +
    `To: Bob <sip:bob@biloxi.example.com>;tag=bob-tag\r\n` +
    `From: Alice <sip:alice@atlanta.example.com>;tag=alice-tag\r\n` +
    `Call-ID: call-1@pc33\r\n` +
    `CSeq: ${cseq} ${method}\r\n` +
    extra +
    `Content-Length: 0\r\n\r\n`;
  return parseMessage(Buffer.from(raw)) as SipRequest;
}

describe('Dialog (UAS)', () => {
  const rr = 'Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n';

  it('is built from the INVITE, our tag and our Contact', T, () => {
    const d = Dialog.fromUas(invite(rr), { localTag: 'bob-tag', localContact: 'sip:bob@192.0.2.4' });
    assert.equal(d.callId, 'call-1@pc33');
    assert.equal(d.localTag, 'bob-tag');
    assert.equal(d.remoteTag, 'alice-tag');
    assert.equal(d.localUri, 'sip:bob@biloxi.example.com');
    assert.equal(d.remoteUri, 'sip:alice@atlanta.example.com');
    assert.equal(d.remoteSeq, 1);
    assert.equal(d.localSeq, undefined);
    assert.equal(d.remoteTarget, 'sip:alice@pc33.atlanta.example.com');
    assert.deepEqual(d.routeSet, ['<sip:p2.example.com;lr>', '<sip:p1.example.com;lr>']);
    assert.equal(d.secure, false);
    assert.equal(d.state, 'confirmed');
  });

  it('builds a BYE with loose routing: Request-URI is the remote target, Route is the route set', T, () => {
    const d = Dialog.fromUas(invite(rr), { localTag: 'bob-tag' });
    const bye = d.createRequest('BYE');
    assert.equal(bye.uri, 'sip:alice@pc33.atlanta.example.com');
    assert.deepEqual(bye.headers.getAll('Route'), ['<sip:p2.example.com;lr>', '<sip:p1.example.com;lr>']);
    assert.match(bye.headers.get('From')!, /<sip:bob@biloxi\.example\.com>;tag=bob-tag$/);
    assert.match(bye.headers.get('To')!, /<sip:alice@atlanta\.example\.com>;tag=alice-tag$/);
    assert.equal(bye.headers.get('Call-ID'), 'call-1@pc33');
    assert.equal(bye.headers.get('CSeq'), '1 BYE');
    assert.equal(bye.headers.get('Max-Forwards'), '70');
    assert.equal(bye.headers.has('Via'), false, 'the transaction layer adds the Via');
    assert.equal(dialogId(bye, false), d.id, 'the request we send maps back to the dialog');
  });

  it('increments CSeq per request, and ACK reuses the INVITE number', T, () => {
    const d = Dialog.fromUas(invite(), { localTag: 'bob-tag', localContact: 'sip:bob@192.0.2.4', initialSeq: 100 });
    const reinvite = d.createRequest('INVITE', { body: 'v=0\r\n', contentType: 'application/sdp' });
    const info = d.createRequest('INFO');
    assert.equal(reinvite.headers.get('CSeq'), '100 INVITE');
    assert.equal(reinvite.headers.get('Contact'), '<sip:bob@192.0.2.4>');
    assert.equal(reinvite.headers.get('Content-Type'), 'application/sdp');
    assert.equal(new TextDecoder().decode(reinvite.body), 'v=0\r\n');
    assert.equal(info.headers.get('CSeq'), '101 INFO');
    assert.equal(info.headers.has('Contact'), false);
    assert.equal(d.createAck(100).headers.get('CSeq'), '100 ACK');
    assert.equal(d.localSeq, 101);
    assert.throws(() => d.createRequest('ACK'), RangeError);
  });

  it('refuses an in-dialog request with a lower CSeq with 500', T, () => {
    const d = Dialog.fromUas(invite('', 5), { localTag: 'bob-tag' });
    assert.deepEqual(d.receiveRequest(fromAlice('INFO', 6)), { ok: true });
    assert.equal(d.remoteSeq, 6);
    const r = d.receiveRequest(fromAlice('INFO', 4));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.error instanceof SipError && r.error.status === 500);
    assert.equal(d.remoteSeq, 6);
    assert.deepEqual(d.receiveRequest(fromAlice('ACK', 5)), { ok: true }, 'ACK is not ordered');
  });

  it('a re-INVITE with a new Contact refreshes the remote target', T, () => {
    const d = Dialog.fromUas(invite(), { localTag: 'bob-tag' });
    d.receiveRequest(fromAlice('INVITE', 2, 'Contact: <sip:alice@198.51.100.9:5070>\r\n'));
    assert.equal(d.remoteTarget, 'sip:alice@198.51.100.9:5070');
    d.receiveRequest(fromAlice('INFO', 3, 'Contact: <sip:ignored@example.com>\r\n'));
    assert.equal(d.remoteTarget, 'sip:alice@198.51.100.9:5070', 'INFO is not a target refresh');
  });

  it('dialogId of an incoming in-dialog request matches the UAS dialog', T, () => {
    const d = Dialog.fromUas(invite(), { localTag: 'bob-tag' });
    assert.equal(dialogId(fromAlice('BYE', 2), true), d.id);
    assert.equal(dialogId(invite(), true), undefined, 'no To tag, no dialog');
  });

  it('a terminated dialog answers 481', T, () => {
    const d = Dialog.fromUas(invite(), { localTag: 'bob-tag' });
    d.terminate();
    const r = d.receiveRequest(fromAlice('BYE', 2));
    assert.ok(!r.ok && r.error.status === 481);
    assert.throws(() => d.createRequest('BYE'), SipError);
  });
});

describe('Dialog (UAC)', () => {
  function answer(req: SipRequest, status: number, extra: [string, string][] = []) {
    return createResponse(req, status, undefined, {
      toTag: 'bob-tag',
      headers: [['Contact', '<sip:bob@192.0.2.4>'], ...extra],
    });
  }

  it('is built from our INVITE and the 2xx, with the Record-Route reversed', T, () => {
    const req = invite();
    const ok = answer(req, 200, [['Record-Route', '<sip:p2.example.com;lr>'], ['Record-Route', '<sip:p1.example.com;lr>']]);
    const d = Dialog.fromUac(req, ok);
    assert.equal(d.localTag, 'alice-tag');
    assert.equal(d.remoteTag, 'bob-tag');
    assert.equal(d.localSeq, 1);
    assert.equal(d.remoteSeq, undefined);
    assert.equal(d.remoteTarget, 'sip:bob@192.0.2.4');
    assert.deepEqual(d.routeSet, ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    assert.equal(d.id, dialogId(ok, false));
    const bye = d.createRequest('BYE');
    assert.equal(bye.uri, 'sip:bob@192.0.2.4');
    assert.deepEqual(bye.headers.getAll('Route'), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    assert.equal(bye.headers.get('CSeq'), '2 BYE');
  });

  it('uses strict routing when the first route has no lr parameter', T, () => {
    const req = invite();
    const ok = answer(req, 200, [['Record-Route', '<sip:p2.example.com;lr>'], ['Record-Route', '<sip:strict.example.com;transport=udp>']]);
    const d = Dialog.fromUac(req, ok);
    const bye = d.createRequest('BYE');
    assert.equal(bye.uri, 'sip:strict.example.com;transport=udp');
    assert.deepEqual(bye.headers.getAll('Route'), ['<sip:p2.example.com;lr>', '<sip:bob@192.0.2.4>']);
  });

  it('an early dialog from a 183 is confirmed by the 2xx, which fixes the route set and target', T, () => {
    const req = invite();
    const early = answer(req, 183, [['Record-Route', '<sip:early.example.com;lr>']]);
    const d = Dialog.fromUac(req, early);
    assert.equal(d.state, 'early');
    const ok = createResponse(req, 200, undefined, {
      toTag: 'bob-tag',
      headers: [['Contact', '<sip:bob@203.0.113.5>'], ['Record-Route', '<sip:final.example.com;lr>']],
    });
    d.receiveResponse(ok);
    assert.equal(d.state, 'confirmed');
    assert.deepEqual(d.routeSet, ['<sip:final.example.com;lr>']);
    assert.equal(d.remoteTarget, 'sip:bob@203.0.113.5');
  });

  it('a 481 to an in-dialog request ends the dialog', T, () => {
    const req = invite();
    const d = Dialog.fromUac(req, answer(req, 200));
    const info = d.createRequest('INFO');
    d.receiveResponse(createResponse(info, 481));
    assert.equal(d.state, 'terminated');
  });

  it('a sips Request-URI makes the dialog secure', T, () => {
    const raw = invite().headers;
    const req: SipRequest = { kind: 'request', method: 'INVITE', uri: 'sips:bob@biloxi.example.com', headers: raw, body: new Uint8Array(0) };
    const d = Dialog.fromUac(req, answer(req, 200));
    assert.equal(d.secure, true);
  });
});
