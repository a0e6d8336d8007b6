import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { jsG711, type G711Impl } from '../../../codecs/g711.js';
import { G722Decoder, G722Encoder } from '../../../codecs/g722.js';
import { g711, g711Backend, nativeG711, nativeG722, nativeLoadError } from '../../../codecs/native.js';

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

suite('native G.722', !forcedFallback, () => {
  it('is built, and codes every input exactly as the TypeScript coder does', { timeout: 10000 }, () => {
    assert.ok(nativeG722, 'the addon has no G.722');
    // Speech-like sweeps, noise and full-scale bursts in 20 ms frames, so both bands adapt
    // through their whole range; then every byte value, decoded, for the decoder's tables.
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pcm = new Int16Array(16000 * 4);
    for (let i = 0; i < pcm.length; i++) {
      const sweep = 12000 * Math.sin((2 * Math.PI * (200 + i / 10) * i) / 16000);
      const burst = i % 8000 < 400 ? 60000 * (rnd() - 0.5) : 0;
      pcm[i] = Math.max(-32768, Math.min(32767, Math.round(sweep + 4000 * (rnd() - 0.5) + burst)));
    }
    const run = (native: boolean) => {
      const enc = new G722Encoder({ native });
      const dec = new G722Decoder({ native });
      assert.equal(enc.backend, native ? 'native' : 'js');
      const codes = new Uint8Array(pcm.length / 2);
      const out = new Int16Array(pcm.length);
      for (let at = 0; at < pcm.length; at += 320) {
        enc.encode(pcm.subarray(at, at + 320), codes.subarray(at / 2, at / 2 + 160));
        dec.decode(codes.subarray(at / 2, at / 2 + 160), out.subarray(at, at + 320));
      }
      const all = Uint8Array.from({ length: 256 * 40 }, (_, i) => (i * 97) & 0xff);
      const allOut = new Int16Array(all.length * 2);
      new G722Decoder({ native }).decode(all, allOut);
      return { codes, out, allOut };
    };
    const n = run(true);
    const js = run(false);
    assert.deepEqual(n.codes, js.codes);
    assert.deepEqual(n.out, js.out);
    assert.deepEqual(n.allOut, js.allOut);
  });

  it('refuses a wrong state, an odd number of samples and short outputs as typed errors', { timeout: 5000 }, () => {
    const g = nativeG722!;
    assert.throws(() => g.encode(new Int32Array(3), new Int16Array(2), new Uint8Array(1)), TypeError);
    const state = new Int32Array(g.stateWords);
    g.reset(state);
    assert.throws(() => g.encode(state, new Int16Array(3), new Uint8Array(2)), RangeError);
    assert.throws(() => g.decode(state, new Uint8Array(4), new Int16Array(7)), RangeError);
    assert.throws(() => g.decode(state, new Uint8Array(4) as never, new Uint8Array(8) as never), TypeError);
  });
});

suite('G.711 fallback under BOTEDGE_NATIVE=0', forcedFallback, () => {
  it('codes G.722 in TypeScript', { timeout: 5000 }, () => {
    assert.equal(nativeG722, undefined);
    assert.equal(new G722Encoder().backend, 'js');
    assert.equal(new G722Decoder().backend, 'js');
  });

  it('selects the TypeScript implementation and does not load the addon', { timeout: 5000 }, () => {
    assert.equal(g711Backend, 'js');
    assert.equal(g711, jsG711);
    assert.equal(nativeG711, undefined);
  });
});
