import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { RtpParseError } from '../../../codecs/errors.js';
import { isRtcp, newRtpFields, parseRtp, parseRtpInto, rtpSerializedSize, serializeRtpInto } from '../../../codecs/rtp.js';

// Compiled to dist/test/unit/codecs/, so the package root is four levels up.
const FIXTURES = new URL('../../../../test/fixtures/rtp/', import.meta.url);
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, FIXTURES)));

describe('RTP parsing', () => {
  it('reads every fixed header field of a PCMU packet', { timeout: 5000 }, () => {
    const p = parseRtp(fixture('valid-pcmu.bin'));
    assert.equal(p.type, 'rtp');
    assert.equal(p.marker, true);
    assert.equal(p.payloadType, 0);
    assert.equal(p.sequenceNumber, 1000);
    assert.equal(p.timestamp, 160000);
    assert.equal(p.ssrc, 0x11223344);
    assert.deepEqual(p.csrc, []);
    assert.equal(p.extension, undefined);
    assert.equal(p.payload.length, 160);
  });

  it('returns the payload as a view of the input buffer, not a copy', { timeout: 5000 }, () => {
    const raw = fixture('valid-pcmu.bin');
    const p = parseRtp(raw);
    assert.equal(p.payload.buffer, raw.buffer);
    assert.equal(p.payload.byteOffset, raw.byteOffset + 12);
  });

  it('reads CSRCs, skips the header extension and removes padding', { timeout: 5000 }, () => {
    const p = parseRtp(fixture('valid-csrc-ext-padding.bin'));
    assert.deepEqual(p.csrc, [1, 2]);
    assert.equal(p.sequenceNumber, 65535);
    assert.equal(p.timestamp, 0xfffffff0);
    assert.equal(p.ssrc, 0xdeadbeef);
    assert.equal(p.payloadType, 8);
    assert.equal(p.extension?.profile, 0xbede);
    assert.deepEqual([...(p.extension?.data ?? [])], [0x10, 0xaa, 0, 0]);
    assert.equal(p.paddingLength, 4);
    assert.deepEqual([...p.payload], new Array(8).fill(0xd5));
  });

  it('parses a packet that sits at an offset inside a larger buffer', { timeout: 5000 }, () => {
    const raw = fixture('valid-telephone-event.bin');
    const big = new Uint8Array(raw.length + 7);
    big.set(raw, 5);
    const p = parseRtp(big.subarray(5, 5 + raw.length));
    assert.equal(p.payloadType, 101);
    assert.equal(p.ssrc, 0x01020304);
    assert.deepEqual([...p.payload], [5, 0x8a, 0x03, 0x20]);
  });

  const bad: [string, string, number][] = [
    ['truncated-header.bin', 'truncated', 11],
    ['invalid-version1.bin', 'bad-version', 0],
    ['truncated-csrc.bin', 'truncated-csrc', 20],
    ['truncated-extension.bin', 'truncated-extension', 20],
    ['invalid-padding-too-long.bin', 'bad-padding', 15],
  ];
  for (const [name, kind, offset] of bad) {
    it(`rejects ${name} with an RtpParseError of kind ${kind}`, { timeout: 5000 }, () => {
      assert.throws(
        () => parseRtp(fixture(name)),
        (err: unknown) => err instanceof RtpParseError && err.kind === kind && err.offset === offset,
      );
    });
  }

  it('rejects every truncation of a valid packet with an RtpParseError, never a RangeError', { timeout: 5000 }, () => {
    const raw = fixture('valid-csrc-ext-padding.bin');
    for (let len = 0; len < 28; len++) {
      assert.throws(() => parseRtp(raw.subarray(0, len)), RtpParseError, `length ${len}`);
    }
  });

  it('rejects a padded packet whose padding count is zero', { timeout: 5000 }, () => {
    const raw = Uint8Array.of(0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9, 0);
    assert.throws(() => parseRtp(raw), (e: unknown) => e instanceof RtpParseError && e.kind === 'bad-padding');
  });
});

describe('RTP serialization', () => {
  it('parses into one reused fields object, leaving nothing of the previous packet behind', { timeout: 5000 }, () => {
    const f = newRtpFields();
    const rich = fixture('valid-csrc-ext-padding.bin');
    const plain = fixture('valid-pcmu.bin');
    for (const raw of [rich, plain, rich, fixture('valid-telephone-event.bin')]) {
      const p = parseRtp(raw);
      assert.equal(parseRtpInto(raw, f), f);
      assert.deepEqual(
        [f.marker, f.payloadType, f.sequenceNumber, f.timestamp, f.ssrc, f.csrcCount, f.paddingLength, [...f.payload]],
        [p.marker, p.payloadType, p.sequenceNumber, p.timestamp, p.ssrc, p.csrc.length, p.paddingLength, [...p.payload]],
      );
      assert.equal(f.extensionAt >= 0, p.extension !== undefined);
    }
    assert.throws(() => parseRtpInto(plain.subarray(0, 11), f), RtpParseError);
  });

  it('round-trips packets without padding byte for byte', { timeout: 5000 }, () => {
    for (const name of ['valid-pcmu.bin', 'valid-telephone-event.bin']) {
      const raw = fixture(name);
      const p = parseRtp(raw);
      const out = new Uint8Array(raw.length);
      assert.equal(serializeRtpInto(out, 0, p, p.payload), raw.length);
      assert.deepEqual(out, raw);
    }
  });

  it('writes CSRCs and the header extension so that parsing gives them back', { timeout: 5000 }, () => {
    const p = parseRtp(fixture('valid-csrc-ext-padding.bin'));
    const out = new Uint8Array(64);
    const n = serializeRtpInto(out, 3, p, p.payload);
    assert.equal(n, rtpSerializedSize(p, p.payload.length));
    const q = parseRtp(out.subarray(3, 3 + n));
    assert.deepEqual(q.csrc, p.csrc);
    assert.deepEqual(q.extension, p.extension);
    assert.deepEqual(q.payload, p.payload);
    assert.equal(q.paddingLength, 0);
  });

  it('wraps the sequence number and timestamp to their field widths', { timeout: 5000 }, () => {
    const out = new Uint8Array(12);
    serializeRtpInto(out, 0, { marker: false, payloadType: 0, sequenceNumber: 65536, timestamp: 2 ** 32 + 5, ssrc: -1 }, new Uint8Array(0));
    const p = parseRtp(out);
    assert.equal(p.sequenceNumber, 0);
    assert.equal(p.timestamp, 5);
    assert.equal(p.ssrc, 0xffffffff);
  });

  it('throws a RangeError instead of writing past the end of the output', { timeout: 5000 }, () => {
    const header = { marker: false, payloadType: 0, sequenceNumber: 1, timestamp: 1, ssrc: 1 };
    assert.throws(() => serializeRtpInto(new Uint8Array(171), 0, header, new Uint8Array(160)), RangeError);
    assert.throws(() => serializeRtpInto(new Uint8Array(172), 1, header, new Uint8Array(160)), RangeError);
  });
});

describe('RTP/RTCP demultiplexing', () => {
  it('recognizes RTCP packet types 192-223 and leaves RTP alone', { timeout: 5000 }, () => {
    assert.equal(isRtcp(fixture('rtcp-receiver-report.bin')), true);
    assert.equal(isRtcp(fixture('valid-pcmu.bin')), false);
    assert.equal(isRtcp(fixture('valid-telephone-event.bin')), false);
    for (const pt of [200, 201, 202, 203, 204]) {
      assert.equal(isRtcp(Uint8Array.of(0x80, pt, 0, 1, 0, 0, 0, 0)), true, `PT ${pt}`);
    }
    assert.equal(isRtcp(Uint8Array.of(0x80, 0xe0, 0, 1, 0, 0, 0, 0)), false);
    assert.equal(isRtcp(Uint8Array.of(0x80, 200)), false);
  });
});
