import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  LibopusDecoder,
  OpusEncoder,
  OpusError,
  createOpusDecoder,
  resolveOpusEncoderOptions,
  type OpusDecoder,
  type OpusSampleRate,
} from '../../../codecs/opus.js';
import { amplitudeAt, sine } from '../../fixtures/audio.js';

const AMPLITUDE = 8000;

function tone(rate: number, frequency: number, samples: number, amplitude = AMPLITUDE): Int16Array {
  return sine(rate, frequency, samples, amplitude);
}


/** The frequency (1 Hz steps between lo and hi) holding the most energy. */
function peakFrequency(signal: Int16Array, rate: number, lo: number, hi: number): number {
  let best = lo;
  let bestAmp = -1;
  for (let f = lo; f <= hi; f += 1) {
    const a = amplitudeAt(signal, rate, f);
    if (a > bestAmp) {
      bestAmp = a;
      best = f;
    }
  }
  return best;
}

/** SNR of `decoded` against `reference`, at the codec delay (searched) that maximises it. */
function snrDb(reference: Int16Array, decoded: Int16Array, maxDelay: number): number {
  let best = -Infinity;
  const n = reference.length - maxDelay;
  for (let d = 0; d <= maxDelay; d++) {
    let sig = 0;
    let err = 0;
    for (let i = 0; i < n; i++) {
      const r = reference[i]!;
      const e = (decoded[i + d] ?? 0) - r;
      sig += r * r;
      err += e * e;
    }
    best = Math.max(best, 10 * Math.log10(sig / Math.max(err, 1)));
  }
  return best;
}

const rms = (s: Int16Array): number => Math.sqrt(s.reduce((a, v) => a + v * v, 0) / Math.max(s.length, 1));
const db = (ratio: number): number => 20 * Math.log10(ratio);

/** Encodes `pcm` in 20 ms frames and decodes every packet; returns the packets and the output. */
function roundTrip(enc: OpusEncoder, dec: OpusDecoder, pcm: Int16Array): { packets: Uint8Array[]; out: Int16Array } {
  const packets: Uint8Array[] = [];
  const out = new Int16Array((pcm.length / enc.frameSize) * dec.frameSize);
  let n = 0;
  for (let i = 0; i + enc.frameSize <= pcm.length; i += enc.frameSize) {
    const packet = enc.encode(pcm.subarray(i, i + enc.frameSize));
    packets.push(packet);
    const frame = dec.decode(packet);
    out.set(frame, n);
    n += frame.length;
  }
  return { packets, out };
}

describe('OpusEncoder and LibopusDecoder', () => {
  for (const rate of [48000, 16000] as OpusSampleRate[]) {
    it(`a 440 Hz tone at ${rate} Hz comes back at 440 Hz, within 1 dB, with SNR above 10 dB`, { timeout: 10000 }, () => {
      const enc = new OpusEncoder({ sampleRate: rate, bitrate: 32000 });
      const dec = new LibopusDecoder({ sampleRate: rate });
      const input = tone(rate, 440, rate); // 1 s
      const { packets, out } = roundTrip(enc, dec, input);
      assert.equal(packets.length, 50);
      assert.equal(out.length, input.length);
      // Skip the first 100 ms: encoder start-up and the codec's look-ahead.
      const steady = out.subarray(rate / 10);
      assert.ok(Math.abs(peakFrequency(steady, rate, 400, 480) - 440) <= 2);
      assert.ok(Math.abs(db(rms(steady) / rms(input.subarray(rate / 10)))) < 1);
      const snr = snrDb(input.subarray(rate / 10, rate / 2), out.subarray(rate / 10), rate / 100);
      assert.ok(snr > 10, `SNR ${snr.toFixed(1)} dB`);
      // 32 kbit/s, 20 ms: about 80 bytes a packet, VBR allows some spread.
      const mean = packets.reduce((a, p) => a + p.length, 0) / packets.length;
      assert.ok(mean > 40 && mean < 160, `mean packet ${mean} bytes`);
      enc.close();
      dec.close();
    });
  }

  it('decodes 48 kHz packets to 16 kHz output (320 samples a frame)', () => {
    const enc = new OpusEncoder({ sampleRate: 48000 });
    const dec = new LibopusDecoder({ sampleRate: 16000 });
    const { out } = roundTrip(enc, dec, tone(48000, 1000, 48000));
    assert.equal(out.length, 16000);
    assert.ok(Math.abs(peakFrequency(out.subarray(1600), 16000, 950, 1050) - 1000) <= 2);
  });

  it('writes into a caller buffer without allocating a result array', () => {
    const enc = new OpusEncoder();
    const dec = new LibopusDecoder();
    const packetBuf = new Uint8Array(4000);
    const pcmBuf = new Int16Array(960);
    const n = enc.encodeInto(tone(48000, 440, 960), packetBuf);
    assert.ok(n > 0);
    const pcm = dec.decode(packetBuf.subarray(0, n), pcmBuf);
    assert.equal(pcm.buffer, pcmBuf.buffer);
    assert.equal(pcm.length, 960);
  });

  it('conceals a lost frame with exactly one 20 ms frame that continues the tone', () => {
    const enc = new OpusEncoder();
    const dec = new LibopusDecoder();
    const input = tone(48000, 440, 48000 / 2);
    for (let i = 0; i < 10; i++) dec.decode(enc.encode(input.subarray(i * 960, (i + 1) * 960)));
    const plc = dec.conceal();
    assert.equal(plc.length, 960);
    assert.ok(rms(plc) > AMPLITUDE / Math.SQRT2 / 4, `PLC rms ${rms(plc)}`);
    // And decoding carries on afterwards.
    const next = dec.decode(enc.encode(input.subarray(11 * 960, 12 * 960)));
    assert.equal(next.length, 960);
  });

  it('recovers a lost frame from the next packet when the encoder sends FEC', () => {
    const enc = new OpusEncoder({ fec: true, packetLossPercent: 20, bitrate: 32000 });
    const dec = new LibopusDecoder();
    const input = tone(48000, 440, 48000 / 2);
    const packets: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) packets.push(enc.encode(input.subarray(i * 960, (i + 1) * 960)));
    for (let i = 0; i < 10; i++) dec.decode(packets[i]!);
    const recovered = dec.decodeFec(packets[11]!); // packet 10 is lost
    assert.equal(recovered.length, 960);
    assert.ok(rms(recovered) > AMPLITUDE / Math.SQRT2 / 4, `FEC rms ${rms(recovered)}`);
    assert.equal(dec.decode(packets[11]!).length, 960);
  });

  it('rejects a garbage packet with a typed OpusError and keeps decoding', () => {
    const enc = new OpusEncoder();
    const dec = new LibopusDecoder();
    // TOC byte 0x03 (code 3) with a frame count of 0 is invalid (RFC 6716 §3.2.5, R5).
    assert.throws(
      () => dec.decode(Uint8Array.of(0x03, 0x00)),
      (err: unknown) => err instanceof OpusError && err.kind === 'invalid-packet' && err.code === -4,
    );
    assert.throws(() => dec.decode(new Uint8Array(0)), (err: unknown) => err instanceof OpusError && err.kind === 'invalid-packet');
    assert.throws(() => dec.decode(new Uint8Array(9000)), (err: unknown) => err instanceof OpusError && err.kind === 'invalid-packet');
    // Random bytes: either a typed error or some PCM, never a crash.
    let seed = 1;
    for (let k = 0; k < 200; k++) {
      const junk = new Uint8Array(1 + (k % 90));
      for (let i = 0; i < junk.length; i++) junk[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      try {
        dec.decode(junk);
      } catch (err) {
        assert.ok(err instanceof OpusError, String(err));
      }
    }
    assert.equal(dec.decode(enc.encode(tone(48000, 440, 960))).length, 960);
  });

  it('refuses PCM that is not one 20 ms frame, and use after close', () => {
    const enc = new OpusEncoder({ sampleRate: 16000 });
    assert.throws(() => enc.encode(new Int16Array(960)), (err: unknown) => err instanceof OpusError && err.kind === 'frame-size');
    enc.close();
    enc.close();
    assert.throws(() => enc.encode(new Int16Array(320)), (err: unknown) => err instanceof OpusError && err.kind === 'closed');
    const dec = new LibopusDecoder();
    dec.close();
    assert.throws(() => dec.conceal(), (err: unknown) => err instanceof OpusError && err.kind === 'closed');
  });

  it('validates options naming the field', () => {
    assert.throws(() => resolveOpusEncoderOptions({ complexity: 11 }), /complexity/);
    assert.throws(() => resolveOpusEncoderOptions({ bitrate: 100 }), /bitrate/);
    assert.throws(() => resolveOpusEncoderOptions({ sampleRate: 44100 as OpusSampleRate }), /sampleRate/);
    assert.deepEqual(resolveOpusEncoderOptions({}), {
      sampleRate: 48000, bitrate: 24000, complexity: 5, application: 'voip', cbr: false, fec: false, packetLossPercent: 0, dtx: false,
    });
  });
});

describe('the opus-decoder package backend', () => {
  it('decodes the same packets to the same tone, and conceals one 20 ms frame', { timeout: 10000 }, async () => {
    const enc = new OpusEncoder();
    const dec = await createOpusDecoder({ backend: 'opus-decoder' });
    assert.equal(dec.backend, 'opus-decoder');
    const input = tone(48000, 440, 48000 / 2);
    const { out } = roundTrip(enc, dec, input);
    const steady = out.subarray(4800);
    assert.ok(Math.abs(peakFrequency(steady, 48000, 400, 480) - 440) <= 2);
    assert.ok(Math.abs(db(rms(steady) / rms(input.subarray(4800)))) < 1);
    assert.equal(dec.conceal().length, 960);
    dec.close();
    assert.throws(() => dec.conceal(), (err: unknown) => err instanceof OpusError && err.kind === 'closed');
  });
});
