/**
 * Start-up selection between the native addon (build/Release/botedge_native.node, built by
 * `node-gyp rebuild` from binding.gyp) and the pure TypeScript codecs. Both produce identical output
 * (test/unit/codecs/native.test.ts checks every input); the addon is only faster.
 *
 * `BOTEDGE_NATIVE=0` forces the TypeScript fallback. This module is the one exception to "only edge/
 * reads process.env": the choice has to be made once, at module load, before any call can run, and
 * threading a flag through every importer would make the hot path check it per call. It reads this one
 * variable and nothing else.
 */
import { createRequire } from 'node:module';

import type { FirLoops, FirPlan, FixedFir } from './fir.js';
import { jsG711, type G711Impl } from './g711.js';

export type { G711Impl } from './g711.js';

export type NativeBackend = 'native' | 'js';

/** The resampler's FIR loops (native/fir.cc), the twin of codecs/fir.ts's `jsFir`. */
export type NativeFir = FirLoops;

/**
 * The addon's FIR exports: `firPrepare` checks and copies a filter once, `firUp`/`firDown` run it.
 * (An addon built before the Int16 loops has Float64 firUp/firDown and no firPrepare: not used.)
 */
interface NativeFirExports {
  firPrepare(up: boolean, coefs: Int16Array, lengths: Uint32Array, reach: Uint32Array, factor: number, shift: number, history: number): FirPlan;
  firUp: FirLoops['up'];
  firDown: FirLoops['down'];
  /** Which loops the usual filters run on this CPU (native/fir.cc): across outputs with AVX2, or portable. */
  firKernel?: () => 'avx2' | 'portable';
}

/**
 * The addon's G.722 (native/g722.cc): the codec's state lives in an Int32Array of `stateWords`
 * that the caller owns; encode/decode return what they wrote.
 */
export interface NativeG722 {
  stateWords: number;
  reset(state: Int32Array): void;
  encode(state: Int32Array, pcm: Int16Array, out: Uint8Array): number;
  decode(state: Int32Array, codes: Uint8Array, out: Int16Array): number;
}

interface NativeG722Exports {
  g722StateWords: number;
  g722Reset: NativeG722['reset'];
  g722Encode: NativeG722['encode'];
  g722Decode: NativeG722['decode'];
}

/** What the addon exports (native/addon.cc). */
interface NativeAddon extends G711Impl, Partial<NativeFirExports>, Partial<NativeG722Exports> {}

/** Why the addon is not in use, for a start-up log line; undefined when it is. */
export let nativeLoadError: Error | undefined;

function loadAddon(): NativeAddon | undefined {
  if (process.env['BOTEDGE_NATIVE'] === '0') {
    nativeLoadError = new Error('native addon disabled by BOTEDGE_NATIVE=0');
    return undefined;
  }
  try {
    // Compiled JS lives in dist/codecs/, so the package root is two levels up.
    const require = createRequire(import.meta.url);
    const addon = require('../../build/Release/botedge_native.node') as Partial<NativeAddon>;
    for (const name of ['ulawDecode', 'ulawEncode', 'alawDecode', 'alawEncode'] as const) {
      if (typeof addon[name] !== 'function') throw new Error(`native addon lacks ${name}()`);
    }
    return addon as NativeAddon;
  } catch (err) {
    nativeLoadError = err instanceof Error ? err : new Error(String(err));
    return undefined;
  }
}

const addon = loadAddon();

/**
 * One more of the addon's exports (`RtpIo`, `RxLane`, …) for the module that wraps it, from the
 * process's one load of the addon; or why there is none (addon missing or disabled, or a build
 * without it).
 */
export function nativeExport<T>(name: string): T | Error {
  if (!addon) return nativeLoadError ?? new Error('native addon not loaded');
  const value = (addon as unknown as Record<string, unknown>)[name];
  return value === undefined ? new Error(`native addon has no ${name} (not Linux, or an older build)`) : (value as T);
}

/** The native G.711 implementation, or undefined when the addon is missing or disabled. */
export const nativeG711: G711Impl | undefined = addon
  ? Object.freeze({
      ulawDecode: addon.ulawDecode,
      ulawEncode: addon.ulawEncode,
      alawDecode: addon.alawDecode,
      alawEncode: addon.alawEncode,
    })
  : undefined;

/** The native FIR loops, or undefined (addon missing, disabled, or built before they existed). */
export const nativeFir: NativeFir | undefined =
  typeof addon?.firPrepare === 'function' && typeof addon.firUp === 'function' && typeof addon.firDown === 'function'
    ? nativeFirOf(addon as NativeFirExports)
    : undefined;

/**
 * The native FIR's loops on this CPU: "avx2" (sixteen outputs at a time) or "portable" (also with
 * BOTEDGE_FIR_SIMD=0); undefined without the native FIR.
 */
export const nativeFirKernel: 'avx2' | 'portable' | undefined = nativeFir ? ((addon as NativeFirExports).firKernel?.() ?? 'portable') : undefined;

/** The native G.722, or undefined (addon missing, disabled, or built before it existed). */
export const nativeG722: NativeG722 | undefined =
  typeof addon?.g722Encode === 'function' && typeof addon.g722Decode === 'function' && typeof addon.g722Reset === 'function' && typeof addon.g722StateWords === 'number'
    ? Object.freeze({ stateWords: addon.g722StateWords, reset: addon.g722Reset, encode: addon.g722Encode, decode: addon.g722Decode })
    : undefined;

function nativeFirOf(fir: NativeFirExports): NativeFir {
  return Object.freeze({
    prepare: (f: FixedFir) => fir.firPrepare(f.up, f.coefs, f.lengths, f.reach, f.factor, f.shift, f.history),
    up: fir.firUp,
    down: fir.firDown,
  });
}

/** The G.711 implementation every caller should use. */
export const g711: G711Impl = nativeG711 ?? jsG711;

/** Which implementation `g711` is. */
export const g711Backend: NativeBackend = nativeG711 ? 'native' : 'js';

export { jsG711 };
