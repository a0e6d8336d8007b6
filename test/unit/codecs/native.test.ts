import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { jsG711, type G711Impl } from '../../../codecs/g711.js';
import { g711, g711Backend, nativeG711, nativeLoadError } from '../../../codecs/native.js';

// CI builds the addon (`npm ci` runs node-gyp), so a missing addon is a failure here — unless the
// run asked for the fallback with BOTEDGE_NATIVE=0, in which case the fallback must be what we get.
const forcedFallback = process.env['BOTEDGE_NATIVE'] === '0';

function requireNative(): G711Impl {
  assert.ok(nativeG711, `native addon is not loaded: ${nativeLoadError?.message}`);
  return nativeG711;
}

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, i) => i);
const ALL_SAMPLES = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);

// One of the two suites runs per process: CI runs this file twice, once with BOTEDGE_NATIVE=0.
const suite = (name: string, active: boolean, fn: () => void) => (active ? describe(name, fn) : undefined);

suite('native G.711 addon', !forcedFallback, () => {
  it('is built and selected at start-up', { timeout: 5000 }, () => {
    assert.equal(nativeLoadError, undefined, `addon failed to load: ${nativeLoadError?.message}`);
    assert.equal(g711Backend, 'native');
    assert.equal(g711, nativeG711);
  });

  for (const law of ['ulaw', 'alaw'] as const) {
    const decode = `${law}Decode` as const;
    const encode = `${law}Encode` as const;

    it(`decodes all 256 ${law} codes exactly as the TypeScript codec does`, { timeout: 5000 }, () => {
      const native = requireNative();
      const expected = new Int16Array(256);
      const actual = new Int16Array(256);
      jsG711[decode](ALL_CODES, expected);
      native[decode](ALL_CODES, actual);
      assert.deepEqual(actual, expected);
    });

    it(`encodes all 65536 samples to ${law} exactly as the TypeScript codec does`, { timeout: 5000 }, () => {
      const native = requireNative();
      const expected = new Uint8Array(65536);
      const actual = new Uint8Array(65536);
      jsG711[encode](ALL_SAMPLES, expected);
      native[encode](ALL_SAMPLES, actual);
      assert.deepEqual(actual, expected);
    });
  }

  it('converts a subarray view at its own offset, not from the start of the buffer', { timeout: 5000 }, () => {
    const native = requireNative();
    const codes = Uint8Array.of(0x00, 0xff, 0x80);
    const out = new Int16Array(4);
    native.ulawDecode(codes.subarray(1), out.subarray(1));
    assert.deepEqual([...out], [0, 0, 32124, 0]);
  });

  it('rejects a short destination with a RangeError and a wrong array type with a TypeError', { timeout: 5000 }, () => {
    const native = requireNative();
    assert.throws(() => native.ulawEncode(new Int16Array(4), new Uint8Array(3)), RangeError);
    assert.throws(
      () => native.alawDecode(new Int16Array(4) as unknown as Uint8Array, new Int16Array(4)),
      TypeError,
    );
  });
});

suite('G.711 fallback under BOTEDGE_NATIVE=0', forcedFallback, () => {
  it('selects the TypeScript implementation and does not load the addon', { timeout: 5000 }, () => {
    assert.equal(g711Backend, 'js');
    assert.equal(g711, jsG711);
    assert.equal(nativeG711, undefined);
  });
});
