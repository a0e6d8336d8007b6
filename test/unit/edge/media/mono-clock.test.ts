import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { monoMs, monoUs32, perfMsOfUs32 } from '../../../../edge/media/mono-clock.js';

describe('mono-clock', () => {
  it('is CLOCK_MONOTONIC, the clock other processes and the native I/O thread read', () => {
    const hr = Number(process.hrtime.bigint() / 1000n) / 1000;
    assert.ok(Math.abs(monoMs() - hr) < 5, `monoMs ${monoMs()} vs hrtime ${hr}`);
    const us = monoUs32();
    assert.ok(Number.isInteger(us) && us >= 0 && us < 2 ** 32);
  });

  it('turns a stamp taken earlier into the performance.now() reading of that moment', () => {
    const perfThen = performance.now();
    const stamp = monoUs32();
    const until = performance.now() + 15;
    while (performance.now() < until) {
      // spin: the stamp is 15 ms old when it is converted
    }
    const back = perfMsOfUs32(stamp);
    assert.ok(Math.abs(back - perfThen) < 0.5, `converted ${back}, taken at ${perfThen}`);
    assert.ok(performance.now() - back >= 15);
  });

  it('reads a stamp from a moment ahead (calibration noise) as now, and an old one by its age mod 2^32', () => {
    const ahead = (monoUs32() + 1000) >>> 0;
    const now = performance.now();
    const back = perfMsOfUs32(ahead);
    assert.ok(back >= now && back - now < 5, `ahead ${back} vs ${now}`);
    // Stamps are µs mod 2^32: whichever side of a wrap they were taken, the age is the difference mod 2^32.
    const stamp = (monoUs32() - 2000) >>> 0;
    const old = perfMsOfUs32(stamp);
    assert.ok(performance.now() - old >= 2 && performance.now() - old < 10);
  });
});
