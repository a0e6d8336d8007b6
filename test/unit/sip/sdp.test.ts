import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import {
  NoCommonCodecError,
  SdpParseError,
  answerOffer,
  applyAnswer,
  createOffer,
  formatSdp,
  parseSdp,
  type LocalMediaOptions,
  type SdpParseErrorKind,
} from '../../../sip/sdp.js';

// Compiled to dist/test/unit/sip/, so the package root is four levels up.
const FIXTURES = new URL('../../../../test/fixtures/sdp/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const offer = (name: string) => parseSdp(fixture(name));

const LOCAL: LocalMediaOptions = {
  address: '10.0.0.5',
  port: 40000,
  codecs: ['PCMU', 'PCMA'],
  telephoneEvent: true,
  sessionId: '555',
  sessionVersion: 1,
};

describe('SDP parsing', () => {
  it('reads origin, connection and an audio stream with rtpmap, ptime and direction', { timeout: 5000 }, () => {
    const sdp = offer('offer-pcma-pcmu-te101.sdp');
    assert.deepEqual(sdp.origin, {
      username: 'root', sessionId: '1821934477', sessionVersion: '1821934477', netType: 'IN', addrType: 'IP4', address: '203.0.113.10',
    });
    assert.equal(sdp.sessionName, 'Asterisk PBX 18.0.0');
    assert.equal(sdp.connection?.address, '203.0.113.10');
    const m = sdp.media[0]!;
    assert.equal(m.type, 'audio');
    assert.equal(m.port, 16384);
    assert.equal(m.proto, 'RTP/AVP');
    assert.deepEqual(m.formats, ['8', '0', '101']);
    assert.deepEqual(m.rtpmaps[2], { payloadType: 101, encodingName: 'telephone-event', clockRate: 8000 });
    assert.deepEqual(m.fmtps, [{ format: '101', parameters: '0-16' }]);
    assert.equal(m.ptime, 20);
    assert.equal(m.direction, 'sendrecv');
    assert.deepEqual(m.attributes, [{ name: 'maxptime', value: '150' }]);
  });

  it('reads every RFC 4566 session field, multicast addresses and several media sections', { timeout: 5000 }, () => {
    const sdp = offer('canonical-full.sdp');
    assert.equal(sdp.information, 'A Seminar on the session description protocol');
    assert.deepEqual(sdp.emails, ['j.doe@example.com (Jane Doe)']);
    assert.deepEqual(sdp.connection, { netType: 'IN', addrType: 'IP4', address: '224.2.17.12', ttl: 127 });
    assert.deepEqual(sdp.bandwidths, [{ type: 'CT', value: 128 }]);
    assert.deepEqual(sdp.timing, [{ start: 2873397496, stop: 2873404696, repeats: ['7d 1h 0 25h'] }]);
    assert.equal(sdp.direction, 'recvonly');
    assert.equal(sdp.media.length, 2);
    assert.equal(sdp.media[0]!.portCount, 2);
    assert.deepEqual(sdp.media[0]!.connection, { netType: 'IN', addrType: 'IP4', address: '224.2.17.13', ttl: 127, count: 2 });
    assert.deepEqual(sdp.media[0]!.rtpmaps[0], { payloadType: 96, encodingName: 'L16', clockRate: 16000, encodingParameters: '2' });
    assert.deepEqual(sdp.media[1]!.formats, ['wb']);
  });

  it('accepts bare LF line ends', { timeout: 5000 }, () => {
    const sdp = parseSdp(fixture('offer-pcmu-only.sdp').replaceAll('\r\n', '\n'));
    assert.equal(sdp.media[0]!.port, 49170);
  });

  for (const name of readdirSync(FIXTURES).filter((n) => n.startsWith('offer-') || n.startsWith('canonical-'))) {
    it(`formats ${name} back to the same bytes`, { timeout: 5000 }, () => {
      const raw = fixture(name);
      assert.equal(formatSdp(parseSdp(raw)), raw);
    });
  }

  const malformed: [string, SdpParseErrorKind, number][] = [
    ['invalid-missing-version.sdp', 'missing-version', 1],
    ['invalid-bad-version.sdp', 'bad-version', 1],
    ['invalid-bad-origin.sdp', 'bad-origin', 2],
    ['invalid-missing-connection.sdp', 'missing-connection', 5],
    ['invalid-bad-connection.sdp', 'bad-connection', 4],
    ['invalid-bad-port.sdp', 'bad-port', 6],
    ['invalid-bad-payload-type.sdp', 'bad-media', 6],
    ['invalid-bad-rtpmap.sdp', 'bad-attribute', 7],
    ['invalid-garbage.sdp', 'syntax', 4],
    ['invalid-unknown-type.sdp', 'unknown-type', 4],
    ['invalid-timing-in-media.sdp', 'misplaced-line', 6],
    ['truncated-after-origin.sdp', 'missing-session-name', 3],
    ['truncated-media-line.sdp', 'bad-media', 6],
    ['truncated-empty.sdp', 'missing-version', 1],
  ];
  for (const [name, kind, line] of malformed) {
    it(`rejects ${name} with an SdpParseError of kind ${kind} at line ${line}`, { timeout: 5000 }, () => {
      assert.throws(
        () => parseSdp(fixture(name)),
        (e: unknown) => e instanceof SdpParseError && e.kind === kind && e.line === line,
      );
    });
  }

  it('throws only SdpParseError for every truncation of a valid SDP', { timeout: 5000 }, () => {
    const raw = fixture('canonical-full.sdp');
    for (let len = 0; len < raw.length; len++) {
      try {
        parseSdp(raw.slice(0, len));
      } catch (e) {
        assert.ok(e instanceof SdpParseError, `length ${len}: ${String(e)}`);
      }
    }
  });
});

describe('SDP offer/answer', () => {
  it('answers a PCMU-only offer with PCMU and sends to the offered address', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-pcmu-only.sdp'), LOCAL);
    assert.deepEqual(r.codec, { name: 'PCMU', payloadType: 0, clockRate: 8000, params: {} });
    assert.deepEqual(r.remote, { address: '198.51.100.7', port: 49170 });
    assert.equal(r.direction, 'sendrecv');
    assert.equal(r.telephoneEventPt, undefined);
    assert.equal(r.ptime, 20);
    assert.equal(
      formatSdp(r.answer),
      ['v=0', 'o=- 555 1 IN IP4 10.0.0.5', 's=-', 'c=IN IP4 10.0.0.5', 't=0 0', 'm=audio 40000 RTP/AVP 0',
        'a=rtpmap:0 PCMU/8000', 'a=ptime:20', 'a=sendrecv', ''].join('\r\n'),
    );
  });

  it("reads the offerer's RTCP address from a=rtcp (RFC 3605), with or without an address", { timeout: 5000 }, () => {
    const base = fixture('offer-pcmu-only.sdp');
    assert.equal(answerOffer(parseSdp(base), LOCAL).remoteRtcp, undefined, 'none: RTP port + 1 applies');
    const withPort = parseSdp(base.replace('m=audio 49170 RTP/AVP 0\r\n', 'm=audio 49170 RTP/AVP 0\r\na=rtcp:53020\r\n'));
    assert.deepEqual(answerOffer(withPort, LOCAL).remoteRtcp, { address: '198.51.100.7', port: 53020 });
    const withAddress = parseSdp(base.replace('m=audio 49170 RTP/AVP 0\r\n', 'm=audio 49170 RTP/AVP 0\r\na=rtcp:53020 IN IP4 192.0.2.9\r\n'));
    assert.deepEqual(answerOffer(withAddress, LOCAL).remoteRtcp, { address: '192.0.2.9', port: 53020 });
    const garbage = parseSdp(base.replace('m=audio 49170 RTP/AVP 0\r\n', 'm=audio 49170 RTP/AVP 0\r\na=rtcp:port\r\n'));
    assert.equal(answerOffer(garbage, LOCAL).remoteRtcp, undefined, 'unreadable: ignored');
  });

  it('takes RTP/RTCP multiplexing when offered (RFC 5761, and RFC 8858 rtcp-mux-only), and only then', { timeout: 5000 }, () => {
    const base = fixture('offer-pcmu-only.sdp');
    const plain = answerOffer(parseSdp(base), LOCAL);
    assert.equal(plain.rtcpMux, false);
    assert.doesNotMatch(formatSdp(plain.answer), /rtcp-mux/);
    for (const attr of ['a=rtcp-mux', 'a=rtcp-mux-only\r\na=rtcp-mux', 'a=rtcp-mux-only']) {
      const r = answerOffer(parseSdp(base.replace('m=audio 49170 RTP/AVP 0\r\n', `m=audio 49170 RTP/AVP 0\r\n${attr}\r\n`)), LOCAL);
      assert.equal(r.rtcpMux, true, attr);
      const text = formatSdp(r.answer);
      // The answer says a=rtcp-mux once, in the audio section, and never rtcp-mux-only (§5.1.1 of 5761, §4.3 of 8858).
      assert.equal(text.match(/\r\na=rtcp-mux\r\n/g)?.length, 1, text);
      assert.doesNotMatch(text, /rtcp-mux-only/);
      assert.ok(text.indexOf('a=rtcp-mux') > text.indexOf('m=audio'), text);
    }
    // As offerer: muxed only when our offer and the answer both carry it.
    const ours = createOffer({ ...LOCAL, codecs: ['PCMU'] });
    const muxedAnswer = parseSdp(formatSdp(answerOffer(parseSdp(formatSdp(ours)), LOCAL).answer).replace('a=sendrecv', 'a=rtcp-mux\r\na=sendrecv'));
    assert.equal(applyAnswer(ours, muxedAnswer).rtcpMux, false, 'we did not offer it');
    ours.media[0]!.attributes.push({ name: 'rtcp-mux' });
    assert.equal(applyAnswer(ours, muxedAnswer).rtcpMux, true);
  });

  it('negotiates G.722 at static payload type 9 on its 8 kHz RTP clock, with or without an rtpmap', { timeout: 5000 }, () => {
    const base = fixture('offer-pcmu-only.sdp');
    const withMap = parseSdp(base.replace('m=audio 49170 RTP/AVP 0\r\n', 'm=audio 49170 RTP/AVP 0 9\r\na=rtpmap:9 G722/8000\r\n'));
    const r = answerOffer(withMap, { ...LOCAL, codecs: ['G722', 'PCMU'] });
    assert.deepEqual(r.codec, { name: 'G722', payloadType: 9, clockRate: 8000, params: {} });
    assert.match(formatSdp(r.answer), /m=audio 40000 RTP\/AVP 9\r\na=rtpmap:9 G722\/8000\r\n/);
    const staticOnly = parseSdp(base.replace('m=audio 49170 RTP/AVP 0\r\n', 'm=audio 49170 RTP/AVP 9 0\r\n'));
    assert.equal(answerOffer(staticOnly, { ...LOCAL, codecs: ['G722', 'PCMU'] }).codec.name, 'G722');
    assert.equal(answerOffer(staticOnly, LOCAL).codec.name, 'PCMU', 'not configured: not chosen');
    const offerOut = createOffer({ ...LOCAL, codecs: ['G722', 'PCMA'] });
    assert.deepEqual(offerOut.media[0]!.formats, ['9', '8', '101']);
  });

  it('chooses by our preference, not the offer order', { timeout: 5000 }, () => {
    const sdp = offer('offer-pcma-pcmu-te101.sdp');
    assert.equal(answerOffer(sdp, LOCAL).codec.name, 'PCMU');
    assert.deepEqual(answerOffer(sdp, { ...LOCAL, codecs: ['PCMA', 'PCMU'] }).codec, { name: 'PCMA', payloadType: 8, clockRate: 8000, params: {} });
  });

  it('recognizes static payload types 0 and 8 without an rtpmap', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-static-no-rtpmap.sdp'), { ...LOCAL, codecs: ['PCMA'] });
    assert.equal(r.codec.payloadType, 8);
    assert.equal(r.answer.media[0]!.rtpmaps[0]!.encodingName, 'PCMA');
  });

  it('echoes telephone-event at the offered payload type 101 with its fmtp', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-pcma-pcmu-te101.sdp'), LOCAL);
    assert.equal(r.telephoneEventPt, 101);
    const m = r.answer.media[0]!;
    assert.deepEqual(m.formats, ['0', '101']);
    assert.deepEqual(m.fmtps, [{ format: '101', parameters: '0-16' }]);
  });

  it('echoes a dynamic telephone-event at payload type 96, matching names case-insensitively', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-dynamic-te96.sdp'), LOCAL);
    assert.equal(r.codec.payloadType, 0);
    assert.equal(r.telephoneEventPt, 96);
    assert.equal(r.ptime, 30);
    assert.deepEqual(r.answer.media[0]!.formats, ['0', '96']);
  });

  it('leaves telephone-event out when we do not support it', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-dynamic-te96.sdp'), { ...LOCAL, telephoneEvent: false });
    assert.equal(r.telephoneEventPt, undefined);
    assert.deepEqual(r.answer.media[0]!.formats, ['0']);
  });

  it('throws NoCommonCodecError listing the offered codecs when only G.729 is offered', { timeout: 5000 }, () => {
    assert.throws(
      () => answerOffer(offer('offer-g729-only.sdp'), LOCAL),
      (e: unknown) => e instanceof NoCommonCodecError && e.offered.join() === 'G729/8000,telephone-event/8000',
    );
  });

  it('throws NoCommonCodecError when the offer has no audio stream at all', { timeout: 5000 }, () => {
    const sdp = offer('offer-audio-video.sdp');
    sdp.media = sdp.media.slice(0, 1);
    assert.throws(() => answerOffer(sdp, LOCAL), NoCommonCodecError);
  });

  it('answers a sendonly (hold) offer with recvonly and an unhold with sendrecv', { timeout: 5000 }, () => {
    const hold = answerOffer(offer('offer-hold-sendonly.sdp'), LOCAL);
    assert.equal(hold.direction, 'recvonly');
    assert.equal(hold.answer.media[0]!.direction, 'recvonly');
    assert.equal(answerOffer(offer('offer-pcmu-only.sdp'), LOCAL).direction, 'sendrecv');
  });

  it('treats c=0.0.0.0 as RFC 2543 hold: we receive but do not send', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-hold-rfc2543.sdp'), LOCAL);
    assert.equal(r.direction, 'recvonly');
    assert.deepEqual(r.remote, { address: '0.0.0.0', port: 49170 });
  });

  it('reverses recvonly to sendonly and combines with our own hold to inactive', { timeout: 5000 }, () => {
    const sdp = offer('offer-audio-video.sdp');
    assert.equal(answerOffer(sdp, LOCAL).direction, 'sendonly');
    assert.equal(answerOffer(sdp, { ...LOCAL, direction: 'recvonly' }).direction, 'inactive');
  });

  it('rejects the video stream with port 0 and accepts the audio stream after it', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-audio-video.sdp'), LOCAL);
    const [video, audio] = r.answer.media;
    assert.deepEqual({ type: video?.type, port: video?.port, formats: video?.formats }, { type: 'video', port: 0, formats: ['97', '98'] });
    assert.equal(audio?.port, 40000);
    assert.deepEqual(r.codec, { name: 'PCMU', payloadType: 96, clockRate: 8000, params: {} });
    assert.deepEqual(r.remote, { address: '192.0.2.51', port: 49174 });
    // The answer is itself valid SDP.
    assert.deepEqual(parseSdp(formatSdp(r.answer)), r.answer);
  });
});

describe('SDP offer/answer with Opus (RFC 7587)', () => {
  const OPUS_FIRST: LocalMediaOptions = { ...LOCAL, codecs: ['opus', 'PCMU', 'PCMA'] };

  it('answers opus/48000/2 at the offer\'s dynamic payload type with our fmtp, and telephone-event at 48 kHz', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-opus-pcmu-pcma-te.sdp'), OPUS_FIRST);
    assert.deepEqual(r.codec, {
      name: 'opus', payloadType: 111, clockRate: 48000, params: { useinbandfec: '1', maxplaybackrate: '16000', minptime: '10' },
    });
    assert.equal(r.telephoneEventPt, 110);
    assert.equal(r.telephoneEventRate, 48000);
    assert.equal(
      formatSdp(r.answer),
      ['v=0', 'o=- 555 1 IN IP4 10.0.0.5', 's=-', 'c=IN IP4 10.0.0.5', 't=0 0', 'm=audio 40000 RTP/AVP 111 110',
        'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 useinbandfec=1; stereo=0', 'a=rtpmap:110 telephone-event/48000', 'a=fmtp:110 0-16',
        'a=ptime:20', 'a=sendrecv', ''].join('\r\n'),
    );
  });

  it('keeps G.711 first by default: an Opus offer to a PCMU, PCMA node gets PCMU', { timeout: 5000 }, () => {
    const r = answerOffer(offer('offer-opus-pcmu-pcma-te.sdp'), LOCAL);
    assert.deepEqual(r.codec, { name: 'PCMU', payloadType: 0, clockRate: 8000, params: {} });
    assert.equal(r.telephoneEventPt, 101);
    assert.equal(r.telephoneEventRate, 8000);
  });

  it('takes telephone-event/8000 beside Opus when the offer has no 48 kHz one', { timeout: 5000 }, () => {
    const sdp = offer('offer-opus-pcmu-pcma-te.sdp');
    const m = sdp.media[0]!;
    m.formats = m.formats.filter((f) => f !== '110');
    m.rtpmaps = m.rtpmaps.filter((r) => r.payloadType !== 110);
    const r = answerOffer(sdp, OPUS_FIRST);
    assert.equal(r.codec.name, 'opus');
    assert.equal(r.telephoneEventPt, 101);
    assert.equal(r.telephoneEventRate, 8000);
  });

  it('finds opus case-insensitively and does not mistake opus at another clock rate for it', { timeout: 5000 }, () => {
    const sdp = offer('offer-opus-pcmu-pcma-te.sdp');
    sdp.media[0]!.rtpmaps[0]!.encodingName = 'OPUS';
    assert.equal(answerOffer(sdp, OPUS_FIRST).codec.payloadType, 111);
    sdp.media[0]!.rtpmaps[0]!.clockRate = 16000;
    assert.equal(answerOffer(sdp, OPUS_FIRST).codec.name, 'PCMU');
    assert.throws(() => answerOffer(sdp, { ...LOCAL, codecs: ['opus'] }), NoCommonCodecError);
  });

  it('offers Opus at 96 with telephone-event at both clocks, and reads an Opus answer back', { timeout: 5000 }, () => {
    const ours = createOffer({ ...LOCAL, codecs: ['opus', 'PCMU'] });
    assert.equal(
      formatSdp(ours),
      ['v=0', 'o=- 555 1 IN IP4 10.0.0.5', 's=-', 'c=IN IP4 10.0.0.5', 't=0 0', 'm=audio 40000 RTP/AVP 96 0 101 102',
        'a=rtpmap:96 opus/48000/2', 'a=fmtp:96 useinbandfec=1; stereo=0', 'a=rtpmap:0 PCMU/8000',
        'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', 'a=rtpmap:102 telephone-event/48000', 'a=fmtp:102 0-15',
        'a=ptime:20', 'a=sendrecv', ''].join('\r\n'),
    );
    const theirs = answerOffer(parseSdp(formatSdp(ours)), { ...OPUS_FIRST, address: '192.0.2.9', port: 7078 });
    const r = applyAnswer(ours, parseSdp(formatSdp(theirs.answer)));
    assert.deepEqual(r.codec, { name: 'opus', payloadType: 96, clockRate: 48000, params: { useinbandfec: '1', stereo: '0' } });
    assert.equal(r.telephoneEventPt, 102);
    assert.equal(r.telephoneEventRate, 48000);
    // A G.711-only answerer picks PCMU from the same offer.
    const g711 = answerOffer(parseSdp(formatSdp(ours)), { ...LOCAL, address: '192.0.2.9' });
    assert.equal(applyAnswer(ours, g711.answer).codec.name, 'PCMU');
  });
});

describe('SDP offers we make', () => {
  it('offers our codecs at their static payload types and telephone-event at 101', { timeout: 5000 }, () => {
    const sdp = createOffer({ ...LOCAL, codecs: ['PCMA', 'PCMU'] });
    assert.equal(
      formatSdp(sdp),
      ['v=0', 'o=- 555 1 IN IP4 10.0.0.5', 's=-', 'c=IN IP4 10.0.0.5', 't=0 0', 'm=audio 40000 RTP/AVP 8 0 101',
        'a=rtpmap:8 PCMA/8000', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15',
        'a=ptime:20', 'a=sendrecv', ''].join('\r\n'),
    );
  });

  it('uses IP6 for an IPv6 address', { timeout: 5000 }, () => {
    const sdp = createOffer({ ...LOCAL, address: '2001:db8::5' });
    assert.equal(sdp.origin.addrType, 'IP6');
    assert.equal(sdp.connection?.addrType, 'IP6');
  });

  it('reads the codec, telephone-event and remote address from the answer to our offer', { timeout: 5000 }, () => {
    const ours = createOffer(LOCAL);
    const theirs = answerOffer(parseSdp(formatSdp(ours)), {
      address: '192.0.2.9', port: 7078, codecs: ['PCMA', 'PCMU'], telephoneEvent: true, sessionId: '9',
    });
    const r = applyAnswer(ours, parseSdp(formatSdp(theirs.answer)));
    assert.deepEqual(r.codec, { name: 'PCMA', payloadType: 8, clockRate: 8000, params: {} });
    assert.equal(r.telephoneEventPt, 101);
    assert.deepEqual(r.remote, { address: '192.0.2.9', port: 7078 });
    assert.equal(r.direction, 'sendrecv');
    assert.equal(r.ptime, 20);
  });

  it('learns that it is on hold from a recvonly answer to a hold offer', { timeout: 5000 }, () => {
    const ours = createOffer({ ...LOCAL, direction: 'sendonly' });
    const theirs = answerOffer(ours, { ...LOCAL, address: '192.0.2.9' });
    assert.equal(theirs.direction, 'recvonly');
    assert.equal(applyAnswer(ours, theirs.answer).direction, 'sendonly');
  });

  it('throws NoCommonCodecError when the answer rejects the audio stream', { timeout: 5000 }, () => {
    const ours = createOffer(LOCAL);
    const answer = parseSdp(formatSdp(ours));
    answer.media[0]!.port = 0;
    assert.throws(() => applyAnswer(ours, answer), NoCommonCodecError);
  });
});
