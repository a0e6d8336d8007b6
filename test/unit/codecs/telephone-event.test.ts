import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { TelephoneEventParseError } from '../../../codecs/errors.js';
import {
  DtmfReceiver,
  digitToEvent,
  eventToDigit,
  parseTelephoneEvent,
  serializeTelephoneEventInto,
  type TelephoneEvent,
  type TelephoneEventPacket,
} from '../../../codecs/telephone-event.js';

function payload(ev: TelephoneEvent): Uint8Array {
  const out = new Uint8Array(4);
  serializeTelephoneEventInto(out, 0, ev);
  return out;
}

/** The packets an RFC 4733 sender emits for one key press: updates every 160 units, 3 end packets. */
function keyPress(event: number, timestamp: number, totalUnits: number): TelephoneEventPacket[] {
  const packets: TelephoneEventPacket[] = [];
  for (let d = 160; d < totalUnits; d += 160) {
    packets.push({ timestamp, marker: d === 160, payload: payload({ event, end: false, volume: 10, duration: d }) });
  }
  for (let i = 0; i < 3; i++) {
    packets.push({ timestamp, marker: false, payload: payload({ event, end: true, volume: 10, duration: totalUnits }) });
  }
  return packets;
}

function feed(rx: DtmfReceiver, packets: TelephoneEventPacket[]): { digit: string; durationMs: number }[] {
  return packets.flatMap((p) => rx.push(p));
}

describe('RFC 4733 telephone-event payload', () => {
  it('parses event, end bit, volume and duration', { timeout: 5000 }, () => {
    assert.deepEqual(parseTelephoneEvent(Uint8Array.of(5, 0x8a, 0x03, 0x20)), { event: 5, end: true, volume: 10, duration: 800 });
    assert.deepEqual(parseTelephoneEvent(Uint8Array.of(11, 0x7f, 0xff, 0xff)), { event: 11, end: false, volume: 63, duration: 65535 });
  });

  it('serializes to the same bytes it parses from', { timeout: 5000 }, () => {
    const raw = Uint8Array.of(9, 0x86, 0x01, 0x40);
    const out = new Uint8Array(6);
    assert.equal(serializeTelephoneEventInto(out, 2, parseTelephoneEvent(raw)), 4);
    assert.deepEqual(out.subarray(2), raw);
  });

  it('rejects a payload shorter than 4 bytes with a typed error', { timeout: 5000 }, () => {
    assert.throws(
      () => parseTelephoneEvent(Uint8Array.of(1, 2, 3)),
      (e: unknown) => e instanceof TelephoneEventParseError && e.kind === 'truncated' && e.offset === 3,
    );
  });

  it('maps event codes 0-15 to 0-9 * # A-D and back', { timeout: 5000 }, () => {
    const digits = '0123456789*#ABCD';
    for (let i = 0; i < 16; i++) {
      assert.equal(eventToDigit(i), digits[i]);
      assert.equal(digitToEvent(digits[i]!), i);
    }
    assert.equal(digitToEvent('a'), 12);
    assert.equal(eventToDigit(16), undefined);
    assert.equal(digitToEvent('E'), undefined);
    assert.equal(digitToEvent('12'), undefined);
  });
});

describe('DtmfReceiver', () => {
  it('reports one key press for an event and its three redundant end packets', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver();
    assert.deepEqual(feed(rx, keyPress(1, 16000, 800)), [{ digit: '1', durationMs: 100 }]);
  });

  it('reports the same digit pressed twice as two key presses', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver();
    const out = feed(rx, [...keyPress(5, 1000, 640), ...keyPress(5, 3000, 960)]);
    assert.deepEqual(out, [{ digit: '5', durationMs: 80 }, { digit: '5', durationMs: 120 }]);
  });

  it('ignores an end packet that arrives again after the next digit started', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver();
    const first = keyPress(2, 1000, 480);
    const second = keyPress(3, 3000, 480);
    const late = first[first.length - 1]!;
    const out = feed(rx, [...first, second[0]!, late, ...second.slice(1)]);
    assert.deepEqual(out.map((k) => k.digit), ['2', '3']);
  });

  it('reports a digit whose end packets were all lost when the next digit starts', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver();
    const lost = keyPress(4, 1000, 800).filter((p) => (p.payload[1]! & 0x80) === 0);
    const out = feed(rx, [...lost, ...keyPress(6, 9000, 320)]);
    assert.deepEqual(out, [{ digit: '4', durationMs: 80 }, { digit: '6', durationMs: 40 }]);
  });

  it('reports an unfinished digit on flush, once', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver();
    feed(rx, keyPress(10, 500, 800).slice(0, 2));
    assert.deepEqual(rx.flush(), [{ digit: '*', durationMs: 40 }]);
    assert.deepEqual(rx.flush(), []);
  });

  it('joins the segments of a long event into one key press', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver();
    const seg1: TelephoneEventPacket = { timestamp: 0, marker: true, payload: payload({ event: 0, end: false, volume: 10, duration: 65535 }) };
    const seg2 = keyPress(0, 65535, 800).map((p) => ({ ...p, marker: false }));
    assert.deepEqual(feed(rx, [seg1, ...seg2]), [{ digit: '0', durationMs: Math.round((66335 * 1000) / 8000) }]);
  });

  it('counts non-DTMF events and short payloads as dropped instead of throwing', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver();
    assert.deepEqual(rx.push({ timestamp: 1, marker: true, payload: payload({ event: 32, end: true, volume: 0, duration: 160 }) }), []);
    assert.deepEqual(rx.push({ timestamp: 2, marker: true, payload: Uint8Array.of(1) }), []);
    assert.equal(rx.state().dropped, 2);
  });

  it('uses the clock rate it was given for the duration', { timeout: 5000 }, () => {
    const rx = new DtmfReceiver({ clockRate: 16000 });
    assert.deepEqual(feed(rx, keyPress(9, 0, 1600)), [{ digit: '9', durationMs: 100 }]);
  });
});
