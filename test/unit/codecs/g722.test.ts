import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { G722Decoder, G722Encoder } from '../../../codecs/g722.js';

const RATE = 16000;

function tone(hz: number, amplitude: number, n = RATE): Int16Array {
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / RATE));
  return pcm;
}

/** Encodes and decodes in 20 ms frames (320 samples, 160 bytes), as a call does. */
function roundTrip(pcm: Int16Array, native = true): { codes: Uint8Array; out: Int16Array } {
  const enc = new G722Encoder({ native });
  const dec = new G722Decoder({ native });
  const codes = new Uint8Array(pcm.length / 2);
  const out = new Int16Array(pcm.length);
  for (let at = 0; at < pcm.length; at += 320) {
    assert.equal(enc.encode(pcm.subarray(at, at + 320), codes.subarray(at / 2, at / 2 + 160)), 160);
    assert.equal(dec.decode(codes.subarray(at / 2, at / 2 + 160), out.subarray(at, at + 320)), 320);
  }
  return { codes, out };
}

/** SNR (dB) of `out` against `pcm` delayed by `delay` samples, after the first 200 ms (adaptation). */
function snr(pcm: Int16Array, out: Int16Array, delay: number): number {
  let signal = 0;
  let noise = 0;
  for (let i = 3200; i < pcm.length; i++) {
    const x = pcm[i - delay]!;
    signal += x * x;
    noise += (x - out[i]!) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}

/** The QMF pair's delay: the 24-tap transmit and receive filters, 22 samples end to end. */
const DELAY = 22;

describe('G.722 at 64 kbit/s', () => {
  it('carries low-band tones at unity gain with a high SNR, 22 samples late', () => {
    for (const hz of [300, 1000, 3000]) {
      const pcm = tone(hz, 8000);
      const { out } = roundTrip(pcm);
      const s = snr(pcm, out, DELAY);
      assert.ok(s > 38, `${hz} Hz: SNR ${s.toFixed(1)} dB`);
      // The delay is the codec's, not a coincidence of the tone's period: it is worse a sample off.
      assert.ok(snr(pcm, out, DELAY + 1) < s - 6, `${hz} Hz: delay ${DELAY} is the best fit`);
    }
  });

  it('carries the high band (4–8 kHz, 2 bits a sample) too, with less SNR', () => {
    for (const hz of [5000, 6500]) {
      const pcm = tone(hz, 8000);
      const { out } = roundTrip(pcm);
      const s = snr(pcm, out, DELAY);
      assert.ok(s > 18, `${hz} Hz: SNR ${s.toFixed(1)} dB`);
    }
  });

  it('keeps its state across frames: 20 ms frames code exactly as one long buffer, in either coder', () => {
    const pcm = tone(1000, 12000, 3200);
    for (const native of [true, false]) {
      const whole = new Uint8Array(1600);
      new G722Encoder({ native }).encode(pcm, whole);
      assert.deepEqual(roundTrip(pcm, native).codes, whole);
    }
  });

  it('rewinds to a checkpoint: a frame replaced after encoding codes as if it had never been, and a second rewind undoes it', () => {
    const pcm = tone(700, 9000, 960);
    const [a, b, c] = [pcm.subarray(0, 320), pcm.subarray(320, 640), pcm.subarray(640, 960)];
    const silence = new Int16Array(320);
    const codes = () => new Uint8Array(160);
    for (const native of [true, false]) {
      // Barge-in: B was encoded (staged), then silence goes in its place.
      const enc = new G722Encoder({ native });
      enc.encode(a, codes());
      enc.checkpoint();
      enc.encode(b, codes());
      enc.rewind();
      const replaced = codes();
      enc.encode(silence, replaced);
      const plain = new G722Encoder({ native });
      plain.encode(a, codes());
      const expected = codes();
      plain.encode(silence, expected);
      assert.deepEqual(replaced, expected, `${native ? 'native' : 'TypeScript'}: the silence codes as it would have after A`);
      const next = codes();
      enc.encode(c, next);
      const plainNext = codes();
      plain.encode(c, plainNext);
      assert.deepEqual(next, plainNext, 'and it carries on from there');

      // The packet had already left: rewinding again returns to the state after B.
      const left = new G722Encoder({ native });
      left.encode(a, codes());
      left.checkpoint();
      left.encode(b, codes());
      left.rewind();
      left.encode(silence, codes());
      left.rewind();
      const afterB = codes();
      left.encode(c, afterB);
      const sent = new G722Encoder({ native });
      for (const f of [a, b]) sent.encode(f, codes());
      const sentC = codes();
      sent.encode(c, sentC);
      assert.deepEqual(afterB, sentC, 'back to the state after B');
    }
  });

  it('carries the tones as well in TypeScript as with the addon', () => {
    const pcm = tone(1000, 8000);
    assert.ok(snr(pcm, roundTrip(pcm, false).out, DELAY) > 38);
  });

  it('turns silence into silence', () => {
    const { out } = roundTrip(new Int16Array(3200));
    let peak = 0;
    for (const v of out) peak = Math.max(peak, Math.abs(v));
    assert.ok(peak < 20, `peak ${peak} out of silence`);
  });

  it('refuses an odd number of samples and a short output, as RangeError', () => {
    assert.throws(() => new G722Encoder().encode(new Int16Array(3), new Uint8Array(2)), RangeError);
    assert.throws(() => new G722Encoder({ native: false }).encode(new Int16Array(3), new Uint8Array(2)), RangeError);
    assert.throws(() => new G722Encoder().encode(new Int16Array(4), new Uint8Array(1)), RangeError);
    assert.throws(() => new G722Decoder().decode(new Uint8Array(4), new Int16Array(7)), RangeError);
  });
});
