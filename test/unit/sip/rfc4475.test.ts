/**
 * RFC 4475 torture tests: every message of the RFC, read as the RFC section for it explains.
 * https://www.rfc-editor.org/rfc/rfc4475
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SipError, SipParseError, type SipParseErrorKind } from '../../../sip/errors.js';
import { parseMessage, requestBranch, type SipMessage, type SipRequest, type SipResponse } from '../../../sip/message.js';
import { parseCSeq, parseNameAddr, parseUri, parseVia, unescapeUri } from '../../../sip/uri.js';
import { checkRequest, type UasPolicy } from '../../../sip/validate.js';

const DIR = new URL('../../../../test/fixtures/sip/rfc4475/', import.meta.url);

function bytes(name: string): Buffer {
  return readFileSync(new URL(name + '.dat', DIR));
}

function request(name: string): SipRequest {
  const m = parseMessage(bytes(name));
  assert.equal(m.kind, 'request');
  return m as SipRequest;
}

function response(name: string): SipResponse {
  const m = parseMessage(bytes(name));
  assert.equal(m.kind, 'response');
  return m as SipResponse;
}

function header(m: SipMessage, name: string): string {
  const v = m.headers.get(name);
  assert.ok(v !== undefined, `${name} present`);
  return v;
}

const UAS: UasPolicy = { supportedExtensions: ['100rel', 'timer'], acceptContentTypes: ['application/sdp'] };
const PROXY: UasPolicy = { ...UAS, isProxy: true };

const manifest = readFileSync(new URL('MANIFEST.tsv', DIR), 'latin1')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split('\t') as [string, string, string, string]);

describe('RFC 4475 manifest', () => {
  it('every valid, transaction, application and backward-compat message parses', () => {
    for (const [file, , cls] of manifest) {
      if (cls === 'invalid') continue;
      assert.doesNotThrow(() => parseMessage(readFileSync(new URL(file, DIR))), file);
    }
  });

  it('every invalid message is rejected with a SipParseError', () => {
    for (const [file, , cls] of manifest) {
      if (cls !== 'invalid') continue;
      assert.throws(() => parseMessage(readFileSync(new URL(file, DIR))), SipParseError, file);
    }
  });
});

describe('RFC 4475 §3.1.1 valid messages', () => {
  it('wsinv: folded, LWS-laden headers are unfolded and read field by field', () => {
    const m = request('wsinv');
    assert.equal(m.method, 'INVITE');
    assert.equal(m.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam');
    assert.equal(parseUri(m.uri).params.get('unknownparam'), null);

    const to = parseNameAddr(header(m, 'To'));
    assert.equal(to.displayName, undefined);
    assert.equal(to.uri.user, 'vivekg');
    assert.equal(to.uri.host, 'chair-dnrc.example.com');
    assert.equal(to.params.get('tag'), '1918181833n');

    const from = parseNameAddr(header(m, 'From'));
    assert.equal(from.displayName, 'J Rosenberg \\"');
    assert.equal(from.uri.user, 'jdrosen');
    assert.equal(from.params.get('tag'), '98asjd8');

    assert.equal(header(m, 'Max-Forwards'), '0068');
    assert.equal(Number(header(m, 'Max-Forwards')), 68);
    assert.equal(header(m, 'Call-ID'), 'wsinv.ndaksdj@192.0.2.1');
    assert.deepEqual(parseCSeq(header(m, 'CSeq')), { seq: 9, method: 'INVITE' });
    assert.equal(header(m, 'Content-Length'), '150');
    assert.equal(m.body.length, 150);
    assert.equal(header(m, 'Subject'), '');
    assert.equal(header(m, 'NewFangledHeader'), 'newfangled value continued newfangled value');
    assert.equal(header(m, 'UnknownHeaderWithUnusualValue'), ';;,,;;,;');
    assert.equal(header(m, 'Content-Type'), 'application/sdp');

    const route = parseNameAddr(header(m, 'Route'));
    assert.equal(route.uri.host, 'services.example.com');
    assert.equal(route.uri.params.get('lr'), null);
    assert.equal(route.uri.params.get('unknownwith'), 'value');
    assert.equal(route.uri.params.get('unknown-no-value'), null);

    const vias = m.headers.getAll('Via').map(parseVia);
    assert.deepEqual(
      vias.map((v) => [v.transport, v.host, v.params.get('branch')]),
      [
        ['UDP', '192.0.2.2', '390skdjuw'],
        ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
        ['UDP', '192.168.255.111', 'z9hG4bK30239'],
      ],
    );
    assert.equal(requestBranch(m), '390skdjuw');

    const contact = parseNameAddr(header(m, 'Contact'));
    assert.equal(contact.displayName, 'Quoted string ""');
    assert.equal(contact.uri.user, 'jdrosen');
    assert.deepEqual([...contact.params], [['newparam', 'newvalue'], ['secondparam', null], ['q', '0.33']]);
  });

  it('intmeth: the full range of token, word and quoted-string characters is accepted', () => {
    const m = request('intmeth');
    const method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert.equal(m.method, method);
    assert.equal(parseCSeq(header(m, 'CSeq')).method, method);
    assert.equal(parseCSeq(header(m, 'CSeq')).seq, 139122385);

    const ruri = parseUri(m.uri);
    assert.equal(ruri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert.equal(ruri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert.equal(ruri.host, 'example.com');

    const to = parseNameAddr(header(m, 'To'));
    assert.equal(to.displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
    assert.equal(to.uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");

    const from = parseNameAddr(header(m, 'From'));
    assert.equal(from.displayName, "token1~` token2'+_ token3*%!.-");
    assert.equal(from.params.get("fromparam''~+*_!.-%"), '"работающий"');
    assert.equal(from.params.get('tag'), "_token~1'+`*%!-.");

    assert.equal(header(m, 'Call-ID'), 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
    assert.equal(parseVia(header(m, 'Via')).params.get('branch'), "z9hG4bK-.!%66*_+`'~");
    assert.equal(header(m, "extensionHeader-!.%*+_`'~"), '\ufeff大停電');
    assert.equal(m.body.length, 0);
  });

  it('esc01: %-escapes in user parts and URI parameters decode to what the RFC lists', () => {
    const m = request('esc01');
    const ruri = parseUri(m.uri);
    assert.equal(ruri.user, 'sips%3Auser%40example.com');
    assert.equal(unescapeUri(ruri.user ?? ''), 'sips:user@example.com');
    assert.equal(ruri.host, 'example.net');

    const to = parseNameAddr(header(m, 'To'));
    assert.equal(unescapeUri(to.uri.user ?? ''), 'user');
    const from = parseNameAddr(header(m, 'From'));
    assert.equal(unescapeUri(from.uri.user ?? ''), 'I have spaces');
    assert.equal(from.params.get('tag'), '938');

    assert.equal(header(m, 'Call-ID'), 'esc01.239409asdfakjkn23onasd0-3234');
    assert.equal(header(m, 'Content-Type'), 'application/sdp'); // from the compact form "C"
    const contact = parseNameAddr(header(m, 'Contact'));
    assert.equal(unescapeUri(contact.uri.user ?? ''), 'caller');
    const params = [...contact.uri.params].map(([k, v]) => [unescapeUri(k), v === null ? null : unescapeUri(v)]);
    assert.deepEqual(params, [['lr', null], ['name', 'value%41']]);
    assert.equal(m.body.length, 150);
  });

  it('escnull: escaped nulls stay in the user part and distinguish the two Contacts', () => {
    const m = request('escnull');
    assert.equal(m.method, 'REGISTER');
    const to = parseNameAddr(header(m, 'To'));
    assert.equal(to.uri.user, 'null-%00-null');
    assert.equal(unescapeUri(to.uri.user ?? ''), 'null-\0-null');
    assert.equal(parseNameAddr(header(m, 'From')).params.get('tag'), '839923423');
    const contacts = m.headers.getAll('Contact').map((c) => parseNameAddr(c).uri.user);
    assert.deepEqual(contacts, ['%00', '%00%00']);
    assert.equal(header(m, 'Content-Length'), '0');
  });

  it('esc02: a % that is not an escape is taken literally in method, display name, branch and header name', () => {
    const m = request('esc02');
    assert.equal(m.method, 'RE%47IST%45R');
    assert.equal(parseCSeq(header(m, 'CSeq')).method, 'RE%47IST%45R');
    assert.equal(parseNameAddr(header(m, 'To')).displayName, '%Z%45');
    assert.equal(parseNameAddr(header(m, 'From')).displayName, '%Z%45');
    assert.equal(parseVia(header(m, 'Via')).params.get('branch'), 'z9hG4bK209%fzsnel234');
    // "C%6Fntact" is an unknown header, not a third Contact
    assert.deepEqual(
      m.headers.getAll('Contact').map((c) => parseNameAddr(c).uri.host),
      ['host1.example.com', 'host3.example.com'],
    );
    assert.equal(header(m, 'C%6Fntact'), '<sip:alias2@host2.example.com>');
  });

  it('lwsdisp: a display name needs no LWS before <', () => {
    const m = request('lwsdisp');
    const from = parseNameAddr(header(m, 'From'));
    assert.equal(from.displayName, 'caller');
    assert.equal(from.uri.user, 'caller');
    assert.equal(from.params.get('tag'), '323');
  });

  it('longreq: long values and many Via headers (in every spelling) are all read', () => {
    const m = request('longreq');
    const to = parseNameAddr(header(m, 'To'));
    assert.match(to.displayName ?? '', /^I have a user name of (extreme){10} proportion$/);
    assert.equal(to.uri.port, 6000);
    assert.ok((to.uri.params.get('unknownparam1') ?? '').length > 80);
    const from = parseNameAddr(header(m, 'From'));
    assert.equal(from.uri.user, 'amazinglylongcallername'.repeat(5));
    assert.match(from.params.get('tag') ?? '', /^1(298){40,}2424$/);
    assert.equal(from.params.get('unknownheaderparamname' + 'name'.repeat(19)), 'unknowheaderparamvalue' + 'value'.repeat(14));
    assert.equal(from.params.get('unknownvaluelessparamname' + 'paramname'.repeat(9)), null);
    assert.ok(header(m, 'Call-ID').startsWith('longreq.onereallyreally'));
    const vias = m.headers.getAll('Via').map(parseVia);
    assert.equal(vias.length, 34);
    assert.equal(vias[0]?.host, 'sip33.example.com');
    assert.equal(vias[32]?.host, 'sip1.example.com');
    const last = vias[33];
    assert.equal(last?.params.get('received'), '192.0.2.5');
    assert.ok((last?.params.get('branch') ?? '').endsWith('longbranchvalue'));
    assert.equal(m.body.length, 150);
  });

  it('dblreq: only the first message of the datagram is read', () => {
    const m = request('dblreq');
    assert.equal(m.method, 'REGISTER');
    assert.equal(header(m, 'Call-ID'), 'dblreq.0ha0isndaksdj99sdfafnl3lk233412');
    assert.equal(m.body.length, 0);
    assert.equal(m.headers.getAll('Via').length, 1);
  });

  it('semiuri: the user part may hold ";" and the Accept list is split', () => {
    const m = request('semiuri');
    const ruri = parseUri(m.uri);
    assert.equal(ruri.user, 'user;par=u%40example.net');
    assert.equal(ruri.host, 'example.com');
    assert.equal(ruri.params.size, 0);
    assert.deepEqual(m.headers.getAll('Accept'), [
      'application/sdp',
      'application/pkcs7-mime',
      'multipart/mixed',
      'multipart/signed',
      'message/sip',
      'message/sipfrag',
    ]);
  });

  it('transports: known and unknown Via transports are read', () => {
    const m = request('transports');
    assert.deepEqual(
      m.headers.getAll('Via').map((v) => parseVia(v).transport),
      ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP'],
    );
    assert.equal(header(m, 'Call-ID'), 'transports.kijh4akdnaqjkwendsasfdj');
  });

  it('mpart01: a multipart body with binary octets stays intact', () => {
    const raw = bytes('mpart01');
    const m = request('mpart01');
    assert.equal(m.body.length, 553);
    assert.deepEqual(Buffer.from(m.body), raw.subarray(raw.length - 553));
    assert.equal(header(m, 'Content-Type'), 'multipart/mixed;boundary=7a9cbec02ceef655');
    assert.equal(parseVia(header(m, 'Via')).params.get('rport'), null);
    assert.equal(parseVia(header(m, 'Via')).port, 5070);
    assert.ok(m.headers.has('Identity'));
  });

  it('unreason: an unusual UTF-8 reason phrase is kept whole', () => {
    const m = response('unreason');
    assert.equal(m.status, 200);
    assert.equal(m.reason, '= 2**3 * 5**2 но сто девяносто девять - простое');
    assert.equal(m.body.length, 154);
  });

  it('noreason: an empty reason phrase is accepted', () => {
    const m = response('noreason');
    assert.equal(m.status, 100);
    assert.equal(m.reason, '');
  });
});

describe('RFC 4475 §3.1.2 invalid messages', () => {
  const cases: [string, SipParseErrorKind, string][] = [
    ['badinv01', 'header', 'extraneous ";" and "," in Via and Contact'],
    ['clerr', 'content-length', 'Content-Length larger than the message'],
    ['ncl', 'content-length', 'negative Content-Length'],
    ['scalar02', 'cseq', 'CSeq of 2**64 and more'],
    ['scalarlg', 'cseq', 'CSeq of 2**73 in a response'],
    ['quotbal', 'quoted-string', 'unterminated quoted display name'],
    ['ltgtruri', 'uri', 'Request-URI in <>'],
    ['lwsruri', 'uri', 'LWS inside the Request-URI'],
    ['lwsstart', 'start-line', 'several SP between request line elements'],
    ['trws', 'start-line', 'SP after SIP-Version'],
    ['escruri', 'uri', 'headers in the Request-URI'],
    ['baddate', 'header', 'Date in EST'],
    ['regbadct', 'uri', 'a URI with headers outside <>'],
    ['badaspec', 'uri', 'spaces inside <>'],
    ['baddn', 'header', 'a comma in an unquoted display name'],
    ['badvers', 'version', 'SIP/7.0'],
    ['mismatch01', 'method-mismatch', 'OPTIONS with CSeq INVITE'],
    ['mismatch02', 'method-mismatch', 'unknown method with CSeq INVITE'],
    ['bigcode', 'status-code', 'status code 4294967301'],
  ];
  for (const [name, kind, what] of cases) {
    it(`${name}: ${what} is a SipParseError of kind ${kind}`, () => {
      assert.throws(
        () => parseMessage(bytes(name)),
        (e: unknown) => e instanceof SipParseError && e.kind === kind,
      );
    });
  }

  it('scalar02: the overlarge Max-Forwards, Expires and Contact expires are each rejected on their own', () => {
    const fixed = bytes('scalar02').toString('latin1').replace('36893488147419103232', '1');
    assert.throws(() => parseMessage(Buffer.from(fixed, 'latin1')), (e: unknown) => e instanceof SipParseError && /Max-Forwards/.test(e.message));
    const mf = fixed.replace('Max-Forwards: 300', 'Max-Forwards: 70');
    assert.throws(() => parseMessage(Buffer.from(mf, 'latin1')), (e: unknown) => e instanceof SipParseError && e.kind === 'header');
    const ex = mf.replace(/Expires: 1\d+/, 'Expires: 3600');
    assert.throws(() => parseMessage(Buffer.from(ex, 'latin1')), (e: unknown) => e instanceof SipParseError && e.kind === 'header');
    const ok = ex.replace('expires=280297596632815', 'expires=3600');
    assert.equal(parseMessage(Buffer.from(ok, 'latin1')).kind, 'request');
  });
});

describe('RFC 4475 §3.2 transaction layer', () => {
  it('badbranch: a branch that is only the magic cookie parses but yields no transaction id', () => {
    const m = request('badbranch');
    assert.equal(parseVia(header(m, 'Via')).params.get('branch'), 'z9hG4bK');
    assert.equal(requestBranch(m), undefined);
  });
});

describe('RFC 4475 §3.3 application layer', () => {
  function status(name: string, policy = UAS): SipError | null {
    return checkRequest(request(name), policy);
  }

  it('insuf: missing To, From and Call-ID is answered 400', () => {
    const e = status('insuf');
    assert.ok(e instanceof SipError);
    assert.equal(e.status, 400);
    assert.match(e.reason, /To/);
  });

  it('unkscm: an unknown Request-URI scheme is answered 416', () => {
    assert.equal(status('unkscm')?.status, 416);
  });

  it('novelsc: a registered but atypical scheme parses, and is accepted when the policy serves it', () => {
    const m = request('novelsc');
    assert.equal(parseUri(m.uri).scheme, 'soap.beep');
    assert.equal(checkRequest(m, UAS)?.status, 416);
    assert.equal(checkRequest(m, { ...UAS, uriSchemes: ['sip', 'soap.beep'] }), null);
  });

  it('unksm2: unknown schemes in To, From and Contact parse and are kept verbatim', () => {
    const m = request('unksm2');
    assert.equal(parseNameAddr(header(m, 'To')).uri.scheme, 'isbn');
    assert.equal(parseNameAddr(header(m, 'To')).uri.raw, 'isbn:2983792873');
    assert.equal(parseNameAddr(header(m, 'From')).uri.raw, 'http://www.example.com');
    assert.equal(parseNameAddr(header(m, 'From')).params.get('tag'), '3234233');
    assert.equal(parseNameAddr(header(m, 'Contact')).uri.scheme, 'name');
    assert.equal(status('unksm2'), null);
  });

  it('bext01: unknown Require options give a UAS 420 listing them; a proxy lists Proxy-Require', () => {
    const uas = status('bext01');
    assert.equal(uas?.status, 420);
    assert.deepEqual(uas?.unsupported, ['nothingSupportsThis', 'nothingSupportsThisEither']);
    const proxy = status('bext01', PROXY);
    assert.equal(proxy?.status, 420);
    assert.deepEqual(proxy?.unsupported, ['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']);
  });

  it('invut: an unknown Content-Type is answered 415', () => {
    assert.equal(status('invut')?.status, 415);
  });

  it('regaut01: an unknown Authorization scheme parses and passes these checks', () => {
    const m = request('regaut01');
    assert.equal(header(m, 'Authorization'), 'NoOneKnowsThisScheme opaque-data=here');
    assert.equal(checkRequest(m, UAS), null);
  });

  it('multi01: several To, From, Call-ID and CSeq values are answered 400', () => {
    const m = request('multi01');
    assert.equal(m.headers.getAll('CSeq').length, 2);
    assert.equal(checkRequest(m, UAS)?.status, 400);
  });

  it('mcl01: conflicting Content-Length values are answered 400', () => {
    const m = request('mcl01');
    assert.deepEqual(m.headers.getAll('Content-Length'), ['13', '5']);
    assert.equal(checkRequest(m, UAS)?.status, 400);
  });

  it('bcast: a 200 with a broadcast Via parses', () => {
    const m = response('bcast');
    assert.equal(m.status, 200);
    assert.equal(parseVia(m.headers.getAll('Via')[1] ?? '').host, '255.255.255.255');
  });

  it('zeromf: Max-Forwards 0 is 483 at a proxy, while a UAS may answer the OPTIONS', () => {
    assert.equal(status('zeromf', PROXY)?.status, 483);
    assert.equal(status('zeromf'), null);
  });

  it('cparam01: a parameter after an addr-spec Contact is a contact parameter', () => {
    const c = parseNameAddr(header(request('cparam01'), 'Contact'));
    assert.equal(c.uri.user, '+19725552222');
    assert.equal(c.params.get('unknownparam'), null);
    assert.equal(c.uri.params.size, 0);
  });

  it('cparam02: a parameter inside <> is a URI parameter', () => {
    const c = parseNameAddr(header(request('cparam02'), 'Contact'));
    assert.equal(c.uri.params.get('unknownparam'), null);
    assert.equal(c.params.size, 0);
  });

  it('regescrt: an escaped header in a Contact URI inside <> is a URI header', () => {
    const c = parseNameAddr(header(request('regescrt'), 'Contact'));
    assert.equal(c.uri.headers.get('Route'), '%3Csip:sip.example.com%3E');
    assert.equal(unescapeUri(c.uri.headers.get('Route') ?? ''), '<sip:sip.example.com>');
    assert.equal(status('regescrt'), null);
  });

  it('sdp01: an Accept the UAS cannot meet still parses (the answer is a 406 decision, not a parse error)', () => {
    const m = request('sdp01');
    assert.equal(header(m, 'Accept'), 'text/nobodyKnowsThis');
    assert.equal(checkRequest(m, UAS), null);
  });
});

describe('RFC 4475 §3.4 backward compatibility', () => {
  it('inv2543: an RFC 2543 INVITE without Content-Length, Max-Forwards or branch is accepted', () => {
    const raw = bytes('inv2543');
    const m = request('inv2543');
    assert.equal(m.headers.has('Content-Length'), false);
    assert.equal(m.body.length, raw.length - (raw.indexOf('\r\n\r\n') + 4));
    assert.equal(requestBranch(m), undefined);
    const to = parseNameAddr(header(m, 'To'));
    assert.equal(to.params.get('user'), 'phone'); // addr-spec form: a header parameter
    assert.equal(checkRequest(m, UAS), null);
  });
});
