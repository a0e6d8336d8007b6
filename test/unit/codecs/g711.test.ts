import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { alawDecode, alawEncode, ulawDecode, ulawEncode } from '../../../codecs/g711.js';

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, i) => i);

function decodeAll(decode: (src: Uint8Array, dst: Int16Array) => void): Int16Array {
  const out = new Int16Array(256);
  decode(ALL_CODES, out);
  return out;
}

function sine(length: number, frequency: number, amplitude: number, rate = 8000): Int16Array {
  const out = new Int16Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * frequency * i) / rate));
  }
  return out;
}

function snrDb(reference: Int16Array, actual: Int16Array): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]!;
    const d = r - actual[i]!;
    signal += r * r;
    noise += d * d;
  }
  return 10 * Math.log10(signal / noise);
}

describe('G.711 µ-law', () => {
  it('decodes the ITU reference values 0xFF→0, 0x00→-32124, 0x80→32124, 0x7F→0', { timeout: 5000 }, () => {
    const pcm = decodeAll(ulawDecode);
    assert.equal(pcm[0xff], 0);
    assert.equal(pcm[0x00], -32124);
    assert.equal(pcm[0x80], 32124);
    assert.equal(pcm[0x7f], 0);
    assert.equal(pcm[0xfe], 8);
    assert.equal(pcm[0x7e], -8);
  });

  it('re-encodes every decoded code to itself, except negative zero 0x7F which becomes 0xFF', { timeout: 5000 }, () => {
    const pcm = decodeAll(ulawDecode);
    const codes = new Uint8Array(256);
    ulawEncode(pcm, codes);
    for (let code = 0; code < 256; code++) {
      assert.equal(codes[code], code === 0x7f ? 0xff : code, `code 0x${code.toString(16)}`);
    }
  });

  it('clips samples beyond full scale to the largest code', { timeout: 5000 }, () => {
    const codes = new Uint8Array(2);
    ulawEncode(Int16Array.of(32767, -32768), codes);
    assert.deepEqual([...codes], [0x80, 0x00]);
  });

  it('carries a sine through encode and decode with an SNR above 35 dB', { timeout: 5000 }, () => {
    const ref = sine(8000, 1004, 16000);
    const codes = new Uint8Array(ref.length);
    const back = new Int16Array(ref.length);
    ulawEncode(ref, codes);
    ulawDecode(codes, back);
    assert.ok(snrDb(ref, back) > 35, `SNR ${snrDb(ref, back).toFixed(1)} dB`);
  });
});

describe('G.711 A-law', () => {
  it('decodes the ITU reference values 0xD5→8, 0x55→-8, 0xAA→32256, 0x2A→-32256', { timeout: 5000 }, () => {
    const pcm = decodeAll(alawDecode);
    assert.equal(pcm[0xd5], 8);
    assert.equal(pcm[0x55], -8);
    assert.equal(pcm[0xaa], 32256);
    assert.equal(pcm[0x2a], -32256);
  });

  it('re-encodes every decoded code to itself', { timeout: 5000 }, () => {
    const pcm = decodeAll(alawDecode);
    const codes = new Uint8Array(256);
    alawEncode(pcm, codes);
    assert.deepEqual([...codes], [...ALL_CODES]);
  });

  it('encodes silence as 0xD5 and clips full scale to 0xAA / 0x2A', { timeout: 5000 }, () => {
    const codes = new Uint8Array(3);
    alawEncode(Int16Array.of(0, 32767, -32768), codes);
    assert.deepEqual([...codes], [0xd5, 0xaa, 0x2a]);
  });

  it('carries a sine through encode and decode with an SNR above 35 dB', { timeout: 5000 }, () => {
    const ref = sine(8000, 1004, 16000);
    const codes = new Uint8Array(ref.length);
    const back = new Int16Array(ref.length);
    alawEncode(ref, codes);
    alawDecode(codes, back);
    assert.ok(snrDb(ref, back) > 35, `SNR ${snrDb(ref, back).toFixed(1)} dB`);
  });
});

describe('G.711 batch functions', () => {
  it('write only src.length values and leave the rest of a longer destination alone', { timeout: 5000 }, () => {
    const dst = new Int16Array(4).fill(7);
    ulawDecode(Uint8Array.of(0xff, 0x80), dst);
    assert.deepEqual([...dst], [0, 32124, 7, 7]);
  });

  it('throw a RangeError when the destination is shorter than the source', { timeout: 5000 }, () => {
    assert.throws(() => alawEncode(new Int16Array(4), new Uint8Array(3)), RangeError);
    assert.throws(() => ulawDecode(new Uint8Array(4), new Int16Array(3)), RangeError);
  });
});
