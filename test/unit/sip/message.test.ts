import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { SipParseError } from '../../../sip/errors.js';
import { SipHeaders } from '../../../sip/headers.js';
import {
  createResponse,
  parseMessage,
  requestBranch,
  serializeMessage,
  type SipMessage,
  type SipRequest,
} from '../../../sip/message.js';
import {
  formatNameAddr,
  formatUri,
  formatVia,
  parseCSeq,
  parseNameAddr,
  parseSipDate,
  parseUri,
  parseVia,
} from '../../../sip/uri.js';

const FIXTURES = new URL('../../../../test/fixtures/sip/', import.meta.url);
const RFC4475 = new URL('rfc4475/', FIXTURES);
const MANIFEST = readFileSync(new URL('MANIFEST.tsv', RFC4475), 'latin1')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split('\t') as [string, string, string, string]);
const PARSEABLE = MANIFEST.filter(([, , cls]) => cls !== 'invalid').map(([f]) => f);

function fixture(path: string): Buffer {
  return readFileSync(new URL(path, FIXTURES));
}

function crlf(lines: string[]): Buffer {
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

const INVITE = crlf([
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds',
  'Via: SIP/2.0/TCP proxy.example.com:5061;branch=z9hG4bKnashds8;received=192.0.2.1;rport',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.example.com>',
  'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@pc33.atlanta.example.com>',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\r\n',
]);

function parseRequest(buf: Uint8Array): SipRequest {
  const m = parseMessage(buf);
  assert.equal(m.kind, 'request');
  return m as SipRequest;
}

function fields(m: SipMessage): unknown {
  return {
    start: m.kind === 'request' ? [m.method, m.uri] : [m.status, m.reason],
    headers: [...m.headers.entries()].filter(([n]) => n !== 'Content-Length'),
    body: Buffer.from(m.body).toString('latin1'),
  };
}

function onlySipParseErrors(buf: Uint8Array, label: string): void {
  try {
    parseMessage(buf);
  } catch (e) {
    if (!(e instanceof SipParseError)) {
      assert.fail(`${label}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
  }
}

describe('SipHeaders', () => {
  it('looks names up case-insensitively and expands compact forms to canonical names', () => {
    const h = new SipHeaders([
      ['i', 'abc@host'],
      ['CALL-id', 'second'],
      ['v', 'SIP/2.0/UDP a;branch=z9hG4bK1'],
      ['x-custom', 'kept'],
    ]);
    assert.equal(h.get('Call-ID'), 'abc@host');
    assert.deepEqual(h.getAll('call-id'), ['abc@host', 'second']);
    assert.equal(h.get('I'), 'abc@host');
    assert.deepEqual(
      [...h.entries()].map(([n]) => n),
      ['Call-ID', 'Call-ID', 'Via', 'x-custom'],
    );
    assert.equal(h.has('X-CUSTOM'), true);
  });

  it('splits list headers on top-level commas only', () => {
    const h = new SipHeaders();
    h.append('Contact', '"Smith, John" <sip:a@b;x=1,2>, <sip:c@d>;q=0.5');
    h.append('Supported', 'timer, 100rel ,replaces');
    h.append('Contact', '*');
    h.append('Authorization', 'Digest username="a", realm="b"');
    assert.deepEqual(h.getAll('m'), ['"Smith, John" <sip:a@b;x=1,2>', '<sip:c@d>;q=0.5', '*']);
    assert.deepEqual(h.getAll('k'), ['timer', '100rel', 'replaces']);
    assert.equal(h.get('Contact'), '"Smith, John" <sip:a@b;x=1,2>');
    assert.deepEqual(h.getAll('Authorization'), ['Digest username="a", realm="b"']);
  });

  it('set replaces all values in place, prepend puts a new top Via, delete removes all', () => {
    const h = new SipHeaders([
      ['Via', 'SIP/2.0/UDP a'],
      ['To', 'sip:x@y'],
      ['Via', 'SIP/2.0/UDP b'],
    ]);
    h.prepend('Via', 'SIP/2.0/UDP top');
    assert.deepEqual(h.getAll('Via'), ['SIP/2.0/UDP top', 'SIP/2.0/UDP a', 'SIP/2.0/UDP b']);
    h.set('via', 'SIP/2.0/UDP only');
    assert.deepEqual([...h.entries()], [
      ['Via', 'SIP/2.0/UDP only'],
      ['To', 'sip:x@y'],
    ]);
    h.prepend('Record-Route', '<sip:p1;lr>');
    assert.equal(h.get('Record-Route'), '<sip:p1;lr>');
    h.delete('VIA');
    assert.equal(h.has('Via'), false);
  });

  it('clone is independent of the original', () => {
    const h = new SipHeaders([['To', 'sip:a@b']]);
    const c = h.clone();
    c.set('To', 'sip:c@d');
    assert.equal(h.get('To'), 'sip:a@b');
    assert.equal(c.get('To'), 'sip:c@d');
  });
});

describe('URIs', () => {
  it('parses every part of a SIP URI and formats it back', () => {
    const text = 'sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=project%20x&priority=urgent';
    const u = parseUri(text);
    assert.equal(u.scheme, 'sips');
    assert.equal(u.user, 'alice');
    assert.equal(u.password, 'secret');
    assert.equal(u.host, '[2001:db8::1]');
    assert.equal(u.port, 5061);
    assert.deepEqual([...u.params], [['transport', 'tcp'], ['lr', null]]);
    assert.deepEqual([...u.headers], [['subject', 'project%20x'], ['priority', 'urgent']]);
    assert.equal(formatUri(u), text);
  });

  it('reads tel: URIs minimally and keeps unknown schemes verbatim', () => {
    const t = parseUri('tel:+1-201-555-0123;phone-context=example.com');
    assert.equal(t.user, '+1-201-555-0123');
    assert.equal(t.params.get('phone-context'), 'example.com');
    assert.equal(formatUri(t), 'tel:+1-201-555-0123;phone-context=example.com');
    const u = parseUri('urn:service:sos');
    assert.equal(u.scheme, 'urn');
    assert.equal(formatUri(u), 'urn:service:sos');
  });

  it('rejects malformed SIP URIs with kind uri', () => {
    for (const bad of [
      'sip:user@exa mple.com',
      'sip:user@example.com:99999',
      'sip:user@example.com:5o60',
      'sip:@example.com',
      'sip:user@',
      'sip:us%zzer@example.com',
      'sip:user@example.com;=x',
      'sip:a@b@c',
      'sip:user@example.com?noequals',
      '1sip:user@example.com',
      'nocolon',
    ]) {
      assert.throws(() => parseUri(bad), (e: unknown) => e instanceof SipParseError && e.kind === 'uri', bad);
    }
  });

  it('reads name-addr and addr-spec forms, with header parameters after an addr-spec', () => {
    const a = parseNameAddr('"Bob \\"B\\"" <sip:bob@example.com;transport=udp>;tag=x1;expires=60');
    assert.equal(a.displayName, 'Bob "B"');
    assert.equal(a.uri.params.get('transport'), 'udp');
    assert.equal(a.params.get('tag'), 'x1');
    assert.equal(formatNameAddr(a), '"Bob \\"B\\"" <sip:bob@example.com;transport=udp>;tag=x1;expires=60');
    const b = parseNameAddr('sip:bob@example.com;transport=udp;tag=x2');
    assert.equal(b.uri.params.size, 0);
    assert.equal(b.params.get('transport'), 'udp');
    assert.equal(b.params.get('tag'), 'x2');
    assert.equal(formatNameAddr(b), '<sip:bob@example.com>;transport=udp;tag=x2');
  });

  it('reads a Via with LWS anywhere the grammar allows it, and formats it canonically', () => {
    const v = parseVia('SIP / 2.0 / udp  host.example.com : 5070 ; branch = z9hG4bK1 ;rport; received=[2001:db8::9]');
    assert.equal(v.transport, 'UDP');
    assert.equal(v.host, 'host.example.com');
    assert.equal(v.port, 5070);
    assert.equal(v.params.get('rport'), null);
    assert.equal(v.params.get('received'), '[2001:db8::9]');
    assert.equal(formatVia(v), 'SIP/2.0/UDP host.example.com:5070;branch=z9hG4bK1;rport;received=[2001:db8::9]');
    for (const bad of ['SIP/2.0 host', 'SIP/2.0/UDP', 'SIP/2.0/UDP host;branch', 'SIP/2.0/UDP host:70000', 'SIP/2.0/UDP host;ttl=256']) {
      assert.throws(() => parseVia(bad), (e: unknown) => e instanceof SipParseError && e.kind === 'header', bad);
    }
  });

  it('reads CSeq numbers below 2**31 only', () => {
    assert.deepEqual(parseCSeq('2147483647 BYE'), { seq: 2147483647, method: 'BYE' });
    for (const bad of ['2147483648 BYE', 'BYE', '1', '1 BYE x', '-1 BYE']) {
      assert.throws(() => parseCSeq(bad), (e: unknown) => e instanceof SipParseError && e.kind === 'cseq', bad);
    }
  });

  it('reads a GMT Date and rejects other zones', () => {
    assert.equal(parseSipDate('Sat, 15 Oct 2005 04:44:56 GMT').toISOString(), '2005-10-15T04:44:56.000Z');
    assert.throws(() => parseSipDate('Sat, 15 Oct 2005 04:44:56 EST'), SipParseError);
    assert.throws(() => parseSipDate('Sat, 31 Feb 2005 04:44:56 GMT'), SipParseError);
  });
});

describe('parseMessage', () => {
  it('reads a request: start line, headers in wire order, body as bytes', () => {
    const m = parseRequest(INVITE);
    assert.equal(m.method, 'INVITE');
    assert.equal(m.uri, 'sip:bob@biloxi.example.com');
    assert.equal(m.headers.getAll('Via').length, 2);
    assert.equal(m.headers.get('Max-Forwards'), '70');
    assert.ok(m.body instanceof Uint8Array);
    assert.equal(Buffer.from(m.body).toString(), 'v=0\r');
    assert.equal(requestBranch(m), 'z9hG4bK776asdhds');
  });

  it('skips CRLFs before the start line', () => {
    const m = parseMessage(Buffer.concat([Buffer.from('\r\n\r\n'), INVITE]));
    assert.equal(m.kind, 'request');
  });

  it('takes the rest of the datagram as body when Content-Length is absent', () => {
    const m = parseMessage(crlf(['MESSAGE sip:a@b SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bKx', '', 'hello']));
    assert.equal(Buffer.from(m.body).toString(), 'hello');
  });

  it('rejects a header line without a colon, a non-token name and a bare LF', () => {
    for (const line of ['NoColonHere', 'Bad Name: x', 'X-A: a\nb', ' leading-continuation']) {
      const msg = crlf(['OPTIONS sip:a@b SIP/2.0', line, 'Content-Length: 0', '', '']);
      const raw = line.startsWith(' ') ? crlf(['OPTIONS sip:a@b SIP/2.0', line, '', '']) : msg;
      assert.throws(() => parseMessage(raw), (e: unknown) => e instanceof SipParseError && e.kind === 'header', line);
    }
  });

  it('accepts a base64 Call-ID with "=" padding but rejects one with embedded whitespace', () => {
    const ok = crlf(['OPTIONS sip:a@b SIP/2.0', 'Call-ID: YWJjZA==@host', 'Content-Length: 0', '', '']);
    assert.equal(parseMessage(ok).headers.get('Call-ID'), 'YWJjZA==@host');
    const bad = crlf(['OPTIONS sip:a@b SIP/2.0', 'Call-ID: abc def', 'Content-Length: 0', '', '']);
    assert.throws(() => parseMessage(bad), (e: unknown) => e instanceof SipParseError && e.kind === 'header');
  });

  it('rejects response status codes outside 100..699', () => {
    for (const code of ['099', '700', '20', '2000', 'abc']) {
      const raw = crlf([`SIP/2.0 ${code} Odd`, 'Content-Length: 0', '', '']);
      assert.throws(() => parseMessage(raw), (e: unknown) => e instanceof SipParseError && e.kind === 'status-code', code);
    }
  });

  it('rejects a header section over 64 KiB and more than 256 headers as too-large', () => {
    const big = crlf(['OPTIONS sip:a@b SIP/2.0', 'X-Big: ' + 'a'.repeat(70_000), 'Content-Length: 0', '', '']);
    assert.throws(() => parseMessage(big), (e: unknown) => e instanceof SipParseError && e.kind === 'too-large');
    const endless = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nX-Big: ' + 'a'.repeat(70_000));
    assert.throws(() => parseMessage(endless), (e: unknown) => e instanceof SipParseError && e.kind === 'too-large');
    const many = crlf(['OPTIONS sip:a@b SIP/2.0', ...Array.from({ length: 300 }, (_, i) => `X-H${i}: v`), '', '']);
    assert.throws(() => parseMessage(many), (e: unknown) => e instanceof SipParseError && e.kind === 'too-large');
    assert.throws(
      () => parseMessage(INVITE, { maxHeaders: 5 }),
      (e: unknown) => e instanceof SipParseError && e.kind === 'too-large',
    );
  });
});

describe('truncated messages', () => {
  const cases: [string, string][] = [
    ['in-start-line.dat', 'truncated'],
    ['in-header.dat', 'truncated'],
    ['in-header-section-end.dat', 'truncated'],
    ['in-body.dat', 'content-length'],
  ];
  for (const [file, kind] of cases) {
    it(`a message cut ${file.replace('.dat', '').replace(/-/g, ' ')} is a SipParseError of kind ${kind}`, () => {
      assert.throws(
        () => parseMessage(fixture('truncated/' + file)),
        (e: unknown) => e instanceof SipParseError && e.kind === kind,
      );
    });
  }

  it('an empty datagram or one of only CRLFs is truncated', () => {
    for (const raw of ['', '\r\n', '\r\n\r\n']) {
      assert.throws(() => parseMessage(Buffer.from(raw)), (e: unknown) => e instanceof SipParseError && e.kind === 'truncated');
    }
  });
});

describe('fuzzing the fixtures', () => {
  it('cutting every fixture at every offset throws nothing but SipParseError', () => {
    const names = readdirSync(RFC4475).filter((f) => f.endsWith('.dat'));
    for (const name of names) {
      const raw = readFileSync(new URL(name, RFC4475));
      for (let cut = 0; cut < raw.length; cut++) onlySipParseErrors(raw.subarray(0, cut), `${name}[0,${cut})`);
    }
  });

  it('flipping, inserting and deleting bytes throws nothing but SipParseError', () => {
    // Deterministic xorshift so a failure reproduces.
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const interesting = [0x00, 0x0d, 0x0a, 0x20, 0x09, 0x22, 0x5c, 0x3c, 0x3e, 0x3a, 0x3b, 0x2c, 0x3d, 0x25, 0x40, 0x80, 0xff];
    const names = readdirSync(RFC4475).filter((f) => f.endsWith('.dat'));
    for (const name of names) {
      const raw = readFileSync(new URL(name, RFC4475));
      for (let round = 0; round < 300; round++) {
        const buf = Buffer.from(raw);
        let out: Buffer = buf;
        const edits = 1 + rand(4);
        for (let e = 0; e < edits; e++) {
          const at = rand(out.length);
          const byte = rand(2) === 0 ? (interesting[rand(interesting.length)] ?? 0) : rand(256);
          switch (rand(3)) {
            case 0:
              out[at] = byte;
              break;
            case 1:
              out = Buffer.concat([out.subarray(0, at), Buffer.from([byte]), out.subarray(at)]);
              break;
            default:
              out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
          }
        }
        onlySipParseErrors(out, `${name} round ${round}`);
      }
    }
  });
});

describe('serializeMessage', () => {
  it('every parseable RFC 4475 message round-trips to the same fields', () => {
    for (const name of PARSEABLE) {
      const first = parseMessage(readFileSync(new URL(name, RFC4475)));
      const wire = serializeMessage(first);
      const second = parseMessage(wire);
      assert.deepEqual(fields(second), fields(first), name);
      // and serializing is then a fixed point
      assert.deepEqual(serializeMessage(second), wire, name);
    }
  });

  it('writes canonical names, CRLF line ends and a Content-Length computed from the body', () => {
    const m = parseRequest(crlf(['OPTIONS sip:a@b SIP/2.0', 'i: x@y', 'l: 0', 'v: SIP/2.0/UDP h;branch=z9hG4bK1', '', '']));
    m.body = Buffer.from('four');
    m.headers.set('c', 'text/plain');
    assert.equal(
      serializeMessage(m).toString(),
      'OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x@y\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Type: text/plain\r\n' +
        'Content-Length: 4\r\n\r\nfour',
    );
  });
});

describe('createResponse', () => {
  it('copies Record-Route into a dialog-creating 2xx, in order, and not into a failure', () => {
    const req = parseRequest(INVITE);
    req.headers.prepend('Record-Route', '<sip:p2.example.com;lr>');
    req.headers.prepend('Record-Route', '<sip:p1.example.com;lr>');
    const ok = createResponse(req, 200, undefined, { toTag: 'x' });
    assert.deepEqual(ok.headers.getAll('Record-Route'), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    assert.equal(createResponse(req, 486).headers.has('Record-Route'), false);
    assert.equal(createResponse(req, 100).headers.has('Record-Route'), false);
  });

  it('copies Via in order, From, To, Call-ID and CSeq, and adds the To tag', () => {
    const req = parseRequest(INVITE);
    const res = createResponse(req, 180, undefined, { toTag: 'a6c85cf' });
    assert.equal(res.kind, 'response');
    assert.equal(res.reason, 'Ringing');
    assert.deepEqual(res.headers.getAll('Via'), req.headers.getAll('Via'));
    assert.equal(res.headers.get('From'), req.headers.get('From'));
    assert.equal(res.headers.get('To'), 'Bob <sip:bob@biloxi.example.com>;tag=a6c85cf');
    assert.equal(res.headers.get('Call-ID'), req.headers.get('Call-ID'));
    assert.equal(res.headers.get('CSeq'), '314159 INVITE');
    assert.equal(res.headers.has('Contact'), false);
    const wire = parseMessage(serializeMessage(res));
    assert.equal(wire.kind === 'response' && wire.status, 180);
  });

  it('keeps an existing To tag, adds extra headers and a typed body', () => {
    const req = parseRequest(INVITE);
    req.headers.set('To', '<sip:bob@biloxi.example.com>;tag=already');
    const res = createResponse(req, 200, 'Fine', {
      toTag: 'other',
      headers: [['Contact', '<sip:bob@192.0.2.4>']],
      body: Buffer.from('v=0\r\n'),
      contentType: 'application/sdp',
    });
    assert.equal(res.reason, 'Fine');
    assert.equal(res.headers.get('To'), '<sip:bob@biloxi.example.com>;tag=already');
    assert.equal(res.headers.get('Contact'), '<sip:bob@192.0.2.4>');
    assert.equal(res.headers.get('Content-Type'), 'application/sdp');
    assert.equal(res.body.length, 5);
  });

  it('falls back to a class reason phrase for unlisted codes', () => {
    assert.equal(createResponse(parseRequest(INVITE), 499).reason, 'Bad Request');
    assert.equal(createResponse(parseRequest(INVITE), 415).reason, 'Unsupported Media Type');
  });
});
