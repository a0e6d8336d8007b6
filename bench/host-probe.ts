/**
 * How fast the host is right now, before the run: a fixed piece of the node's kind of work (the
 * project's own 8 → 16 kHz resampler, its TypeScript loops, over 5,000 frames), timed five times on the idle machine, the
 * median reported (details.json `machine.host_probe_ms`, and printed).
 *
 * Why: this VM's host changes speed from hour to hour — every process of a run took 1.7× the CPU
 * in one hour that it took in another, with no stolen time reported — so a figure is comparable
 * only with figures from runs of a similar probe. It measures the host, not the build: the same
 * code every time (the TypeScript loops, whether or not the addon is built).
 */
import { Resampler } from '../codecs/resample.js';

const FRAMES = 5000;
const REPEATS = 5;

/** Median ms of REPEATS timings of FRAMES 20 ms frames through one 8 → 16 kHz resampler. */
export function probeHostMs(): number {
  const rs = new Resampler(8000, 16000, { native: false });
  const input = Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)));
  const output = new Int16Array(320);
  const run = () => {
    for (let f = 0; f < FRAMES; f++) rs.process(input, output);
  };
  run(); // warm: compiled before it is timed
  const times: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[REPEATS >> 1]! * 100) / 100;
}
