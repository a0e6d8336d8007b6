import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SipParseError } from '../../../sip/errors.js';
import { parseMessage } from '../../../sip/message.js';
import { badRequestFor } from '../../../edge/sip-transport.js';

const err = new SipParseError('header', 'bad Max-Forwards');

describe('a 400 for a request that did not parse', () => {
  it('copies Via, From, To, Call-ID and CSeq and says why in the reason phrase', () => {
    const raw = Buffer.from(
      'INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\nf: <sip:c@d>;tag=1\r\nt: <sip:a@b>\r\ni: abc\r\nCSeq: 1 INVITE\r\nMax-Forwards: lots\r\n\r\n',
    );
    const out = badRequestFor(raw, err);
    assert.ok(out);
    const res = parseMessage(out);
    assert.equal(res.kind, 'response');
    assert.equal(res.kind === 'response' && res.status, 400);
    assert.match(res.kind === 'response' ? res.reason : '', /header: bad Max-Forwards/);
    assert.equal(res.headers.get('Call-ID'), 'abc');
    assert.equal(res.headers.get('CSeq'), '1 INVITE');
  });

  it('drops responses and requests without what a response needs', () => {
    assert.equal(badRequestFor(Buffer.from('SIP/2.0 200 OK\r\nVia: x\r\n\r\n'), err), undefined);
    assert.equal(badRequestFor(Buffer.from('INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n'), err), undefined);
    assert.equal(badRequestFor(Buffer.from([0, 1, 2, 3]), err), undefined);
  });
});
