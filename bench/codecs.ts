/**
 * Codec and worker-pool micro-benchmark: CPU per 20 ms frame of each codec path, and what the Opus
 * pool costs the socket-owning main thread per tick, batched vs one message per frame.
 *
 *   npx tsc -p . && node dist/bench/codecs.js [--out docs/benchmarks/codecs.md] [--reps 7]
 *
 * Every figure is the median of `reps` runs; the ratios are computed within this one run. Not a
 * test: nothing here asserts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

import { JitterBuffer } from '../codecs/jitter-buffer.js';
import { jsG711 } from '../codecs/g711.js';
import { G722Decoder, G722Encoder } from '../codecs/g722.js';
import { nativeFirKernel, nativeG711, nativeG722, nativeLoadError } from '../codecs/native.js';
import { LibopusDecoder, OpusEncoder, createOpusDecoder } from '../codecs/opus.js';
import { Resampler } from '../codecs/resample.js';
import { OpusPool } from '../workers/opus-pool.js';

const args = process.argv.slice(2);
const argValue = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const REPS = Number(argValue('--reps') ?? 7);
const OUT = argValue('--out');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Median µs per call of `fn` over REPS runs of `iters` calls (after one warm-up run). */
function perOp(iters: number, fn: (i: number) => void): number {
  for (let i = 0; i < iters; i++) fn(i);
  const runs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) fn(i);
    runs.push(Number(process.hrtime.bigint() - t0) / 1000 / iters);
  }
  return median(runs);
}

function tone(rate: number, frequency: number, samples: number): Int16Array {
  const out = new Int16Array(samples);
  for (let i = 0; i < samples; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * frequency * i) / rate));
  return out;
}

const rows: [string, string, string][] = [];
const row = (what: string, value: number, unit: string, note = ''): void => {
  rows.push([what, `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ${unit}`, note]);
  console.log(`${what.padEnd(64)} ${value.toFixed(2).padStart(10)} ${unit} ${note}`);
};

// ---------------------------------------------------------------------------------------------
// Opus, inline (one thread)

const FRAMES = 50;
const pcm48 = tone(48000, 440, 960 * FRAMES);
const pcm16 = tone(16000, 440, 320 * FRAMES);
const frame48 = (i: number): Int16Array => pcm48.subarray((i % FRAMES) * 960, ((i % FRAMES) + 1) * 960);
const frame16 = (i: number): Int16Array => pcm16.subarray((i % FRAMES) * 320, ((i % FRAMES) + 1) * 320);
const packetOut = new Uint8Array(4000);

const enc48 = new OpusEncoder({ sampleRate: 48000, bitrate: 24000, complexity: 5 });
const packets48 = Array.from({ length: FRAMES }, (_, i) => enc48.encode(frame48(i)));
const opusEnc48c5 = perOp(400, (i) => enc48.encodeInto(frame48(i), packetOut));
row('Opus encode 20 ms, 48 kHz in, 24 kbit/s, complexity 5 (libopus WASM)', opusEnc48c5, 'µs/frame');
const enc48c9 = new OpusEncoder({ sampleRate: 48000, bitrate: 24000, complexity: 9 });
row('Opus encode 20 ms, 48 kHz in, complexity 9', perOp(300, (i) => enc48c9.encodeInto(frame48(i), packetOut)), 'µs/frame');
const enc16 = new OpusEncoder({ sampleRate: 16000, bitrate: 24000, complexity: 5 });
const opusEnc16 = perOp(400, (i) => enc16.encodeInto(frame16(i), packetOut));
row('Opus encode 20 ms, 16 kHz in, complexity 5', opusEnc16, 'µs/frame');

const dec48 = new LibopusDecoder({ sampleRate: 48000 });
const pcmOut = new Int16Array(5760);
const opusDec48 = perOp(1000, (i) => dec48.decode(packets48[i % FRAMES]!, pcmOut));
row('Opus decode 20 ms to 48 kHz (libopus WASM)', opusDec48, 'µs/frame');
const dec16 = new LibopusDecoder({ sampleRate: 16000 });
const opusDec16 = perOp(1000, (i) => dec16.decode(packets48[i % FRAMES]!, pcmOut));
row('Opus decode 20 ms to 16 kHz (libopus WASM)', opusDec16, 'µs/frame');
const pkgDec = await createOpusDecoder({ backend: 'opus-decoder', sampleRate: 48000 });
const opusPkgDec48 = perOp(1000, (i) => pkgDec.decode(packets48[i % FRAMES]!, pcmOut));
row('Opus decode 20 ms to 48 kHz (opus-decoder package)', opusPkgDec48, 'µs/frame', `libopus is ${(opusPkgDec48 / opusDec48).toFixed(2)}× faster`);
row('Opus PLC, one 20 ms frame (libopus)', perOp(1000, () => dec48.conceal(pcmOut)), 'µs/frame');
const pkgPlc = perOp(300, () => pkgDec.conceal(pcmOut));
row('Opus PLC (opus-decoder: conceals 120 ms, keeps 20)', pkgPlc, 'µs/frame');
pkgDec.close();

// ---------------------------------------------------------------------------------------------
// G.711: native vs JS, per frame vs many calls in one call

const CALLS_G711 = 100;
const ulaw = new Uint8Array(160 * CALLS_G711).map((_, i) => (i * 37) & 0xff);
const lin = new Int16Array(160 * CALLS_G711);
const linSrc = tone(8000, 440, 160 * CALLS_G711);
const g711Row = (name: string, impl: typeof jsG711): { perFrame: number; batched: number } => {
  // Per frame: one call per 160-sample frame, 100 calls' frames a tick.
  const perFrame =
    perOp(2000, () => {
      for (let c = 0; c < CALLS_G711; c++) impl.ulawDecode(ulaw.subarray(c * 160, (c + 1) * 160), lin.subarray(c * 160, (c + 1) * 160));
    }) / CALLS_G711;
  // Batched: the tick's 100 frames in one contiguous call.
  const batched = perOp(2000, () => impl.ulawDecode(ulaw, lin)) / CALLS_G711;
  row(`G.711 µ-law decode 160 samples, ${name}, one call per frame`, perFrame, 'µs/frame');
  row(`G.711 µ-law decode 160 samples, ${name}, ${CALLS_G711} frames per call`, batched, 'µs/frame');
  const encFrame =
    perOp(2000, () => {
      for (let c = 0; c < CALLS_G711; c++) impl.ulawEncode(linSrc.subarray(c * 160, (c + 1) * 160), ulaw.subarray(c * 160, (c + 1) * 160));
    }) / CALLS_G711;
  row(`G.711 µ-law encode 160 samples, ${name}, one call per frame`, encFrame, 'µs/frame');
  return { perFrame, batched };
};
const js711 = g711Row('JS', jsG711);
if (nativeG711) {
  const nat = g711Row('native', nativeG711);
  row('  ratio JS / native, per frame', js711.perFrame / nat.perFrame, '×');
  row('  ratio JS / native, 100 frames per call', js711.batched / nat.batched, '×');
} else {
  console.log(`native addon not loaded: ${nativeLoadError?.message}`);
  rows.push(['G.711 native', 'not loaded', nativeLoadError?.message ?? '']);
}

// ---------------------------------------------------------------------------------------------
// G.722 at 64 kbit/s: 320 samples (16 kHz) ↔ 160 bytes per 20 ms, native vs TypeScript

const g722Pcm = tone(16000, 440, 320);
const g722Codes = new Uint8Array(160);
const g722Out = new Int16Array(320);
const g722Row = (native: boolean): number => {
  const enc = new G722Encoder({ native });
  const dec = new G722Decoder({ native });
  const e = perOp(2000, () => enc.encode(g722Pcm, g722Codes));
  const d = perOp(2000, () => dec.decode(g722Codes, g722Out));
  row(`G.722 encode 20 ms (320 samples → 160 bytes), ${enc.backend}`, e, 'µs/frame');
  row(`G.722 decode 20 ms (160 bytes → 320 samples), ${dec.backend}`, d, 'µs/frame');
  return e + d;
};
const js722 = g722Row(false);
if (nativeG722) row('  ratio JS / native, encode + decode', js722 / g722Row(true), '×');

// ---------------------------------------------------------------------------------------------
// Resampling and the jitter buffer

const in8 = tone(8000, 440, 160);
const in16 = tone(16000, 440, 320);
const resampleRow = (label: string, native: boolean, portable = false): { up: number; down: number } => {
  // The addon picks a plan's loops when the plan is made (BOTEDGE_FIR_SIMD=0: the portable ones).
  if (portable) process.env['BOTEDGE_FIR_SIMD'] = '0';
  const up = new Resampler(8000, 16000, { native, ownPlan: portable });
  const down = new Resampler(16000, 8000, { native, ownPlan: portable });
  if (portable) delete process.env['BOTEDGE_FIR_SIMD'];
  const out16 = new Int16Array(up.maxOutputLength(160) + 8);
  const out8 = new Int16Array(down.maxOutputLength(320) + 8);
  const u = perOp(5000, () => up.process(in8, out16));
  const d = perOp(5000, () => down.process(in16, out8));
  row(`Resample 8 → 16 kHz, 20 ms frame, ${label}`, u, 'µs/frame');
  row(`Resample 16 → 8 kHz, 20 ms frame, ${label}`, d, 'µs/frame');
  return { up: u, down: d };
};
const jsResample = resampleRow('JS loops', false);
if (new Resampler(8000, 16000).native) {
  const natResample = resampleRow(`native loops (${nativeFirKernel})`, true);
  row('  ratio JS / native, 8 → 16 + 16 → 8', (jsResample.up + jsResample.down) / (natResample.up + natResample.down), '×');
  if (nativeFirKernel === 'avx2') {
    const portable = resampleRow('native loops (portable)', true, true);
    row('  ratio portable / avx2, 8 → 16 + 16 → 8', (portable.up + portable.down) / (natResample.up + natResample.down), '×');
  }
}

const jb = new JitterBuffer();
const payload = new Uint8Array(160);
let seq = 0;
const jbCost = perOp(20000, () => {
  const s = seq++;
  jb.push(s & 0xffff, (s * 160) >>> 0, payload, s * 20 + ((s * 7) % 13));
  jb.pop(s * 20 + 40);
});
row('Jitter buffer push + pop, 160-byte payload', jbCost, 'µs/frame', `${jb.stats.played} played, ${jb.stats.lost} lost of ${seq} pushed`);

// ---------------------------------------------------------------------------------------------
// The Opus pool: N calls, each decoding one packet and encoding one frame per tick

interface PoolResult {
  mainMsPerTick: number;
  wallMsPerTick: number;
  framesPerS: number;
}

async function poolRun(pool: OpusPool, calls: number, ticks: number, batched: boolean): Promise<PoolResult> {
  const ids = Array.from({ length: calls }, (_, i) => `bench-${i}`);
  for (const id of ids) pool.open(id, { decode: { sampleRate: 16000 }, encode: { sampleRate: 16000, bitrate: 24000, complexity: 5 } });
  await pool.flush();
  const runTicks = async (n: number): Promise<void> => {
    for (let t = 0; t < n; t++) {
      const results: Promise<unknown>[] = [];
      const flushes: Promise<void>[] = [];
      for (let c = 0; c < calls; c++) {
        results.push(pool.decode(ids[c]!, packets48[(t + c) % FRAMES]!));
        if (!batched) flushes.push(pool.flush());
        results.push(pool.encode(ids[c]!, frame16(t + c)));
        if (!batched) flushes.push(pool.flush());
      }
      if (batched) flushes.push(pool.flush());
      await Promise.all(flushes);
      await Promise.all(results);
    }
  };
  await runTicks(5);
  const mains: number[] = [];
  const walls: number[] = [];
  for (let r = 0; r < Math.min(REPS, 5); r++) {
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    await runTicks(ticks);
    const wall = performance.now() - t0;
    const elu = performance.eventLoopUtilization(elu0);
    mains.push(elu.active / ticks);
    walls.push(wall / ticks);
  }
  for (const id of ids) pool.close(id);
  await pool.flush();
  const wallMsPerTick = median(walls);
  return { mainMsPerTick: median(mains), wallMsPerTick, framesPerS: (2 * calls * 1000) / wallMsPerTick };
}

const poolRows: string[] = [];
for (const threads of [1, 2]) {
  const pool = new OpusPool({ threads });
  for (const calls of [100, 400]) {
    const b = await poolRun(pool, calls, 20, true);
    const f = await poolRun(pool, calls, 20, false);
    const line = `| ${threads} | ${calls} | ${b.mainMsPerTick.toFixed(2)} | ${f.mainMsPerTick.toFixed(2)} | ${(f.mainMsPerTick / b.mainMsPerTick).toFixed(1)}× | ${b.wallMsPerTick.toFixed(2)} | ${f.wallMsPerTick.toFixed(2)} | ${Math.round(b.framesPerS)} | ${Math.round(f.framesPerS)} |`;
    poolRows.push(line);
    console.log(line);
  }
  await pool.destroy();
}

// ---------------------------------------------------------------------------------------------

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const load = loadavg().map((l) => l.toFixed(1)).join(' / ');
const report = `# Codec and worker-pool benchmark

Command (builds first):

\`\`\`sh
npx tsc -p . && node dist/bench/codecs.js --out docs/benchmarks/codecs.md
\`\`\`

\`bench/codecs.ts\`. Each figure is the median of ${REPS} runs (pool: ${Math.min(REPS, 5)} runs of 20 ticks) after a
warm-up, all from one run of the command on ${cpus().length} × ${cpu}, Node ${process.version},
${new Date().toISOString().slice(0, 10)}. Single-threaded figures are CPU per 20 ms frame on the
calling thread. Inputs: a 440 Hz tone (Opus packets at 24 kbit/s, about 60 bytes), G.711 over a
byte ramp, 160-byte jitter-buffer payloads with a little arrival jitter. Load average when the
run ended (1 / 5 / 15 min): ${load} — other processes shared the cores, so absolute figures are
pessimistic; ratios within the run are the comparison to read. The "one call per frame" G.711 rows
include the two \`subarray\` views made per frame, which is what a per-call caller pays.

## Per frame

| what | median | note |
| --- | --- | --- |
${rows.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`).join('\n')}

## Opus pool: ${'N'} calls, each one decode (48 kHz packet → 16 kHz PCM) + one encode (16 kHz, complexity 5) per tick

Ticks run back to back (not paced at 20 ms), so wall time per tick is the pool's capacity.
\`main ms/tick\` is the main thread's event-loop active time per tick (\`performance.eventLoopUtilization\`):
submitting, building requests, posting, and resolving results. *Batched*: one \`flush()\` per tick, one request
per worker. *Per frame*: one request per frame (the same pool, \`flush()\` after each submit).

| threads | calls | main ms/tick batched | main ms/tick per frame | main-thread ratio | wall ms/tick batched | wall ms/tick per frame | frames/s batched | frames/s per frame |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${poolRows.join('\n')}
`;

if (OUT) {
  // Earlier figures kept by hand under "## History" (before/after a change) survive a rerun.
  const previous = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
  const history = previous.indexOf('\n## History');
  writeFileSync(OUT, history >= 0 ? report + previous.slice(history) : report);
  console.log(`wrote ${OUT}`);
} else {
  console.log(report);
}
