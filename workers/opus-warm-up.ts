import { LibopusDecoder, OpusEncoder, opusFrameSize, type OpusSampleRate } from '../codecs/opus.js';

/** What one rehearsal did (workers/opus-warm-up.ts warmUpOpus). */
export interface WarmUpResult {
  /** Rounds run (each: 2 encodes, 2 decodes, and every 8th a conceal and an FEC decode). */
  rounds: number;
  ms: number;
  /** RMS of the last decoded 16 kHz frame against the tone's (a broken codec reads ≈ 0). */
  level: number;
}

/** Rounds that took the measured flushes to their steady time, with room. */
export const WARM_UP_ROUNDS = 300;
/** A bound for a slow or busy host: the worker serves nothing until this returns. */
export const WARM_UP_MAX_MS = 3000;

/** `BOTEDGE_OPUS_WARM_UP=0` skips it (to measure what it saves). */
export function warmUpEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['BOTEDGE_OPUS_WARM_UP'] !== '0';
}

/**
 * Runs the libopus WASM module through the work a call gives it, once, when an Opus worker starts
 * (decision 0025), so that the first calls do not pay for its compilation.
 *
 * V8 starts WASM on its baseline compiler and recompiles the hot functions in the background. On
 * a node pinned to one core that background work competes with the codec itself: measured on this
 * host (10 calls, a flush of 10 encodes and 10 decodes per 20 ms tick), the worker's first flushes
 * took 50–180 ms each, then 4–6 ms from about the tenth. Meanwhile the pool fell behind, and the
 * calls shed their codec work (OpusBatch.congested): the first second of the first calls after a
 * start or a worker restart was lost audio both ways.
 *
 * The rehearsal encodes speech-like audio at 16 kHz (SILK: what a bot's audio becomes; at every
 * complexity a route may choose, half of them with FEC) and at 48 kHz with FEC (CELT and hybrid,
 * the LBRR path: what callers send), decodes both at 16 kHz, and conceals and recovers a frame now
 * and then. It stops after `rounds` rounds or `maxMs`, whichever comes first; then a steady tone
 * through the complexity-5 encoder checks that what comes back is the tone.
 */
export function warmUpOpus(rounds = WARM_UP_ROUNDS, maxMs = WARM_UP_MAX_MS): WarmUpResult {
  const t0 = performance.now();
  // A 16 kHz encoder per complexity (routes choose one, decision 0026), every other one with FEC.
  const wide = Array.from({ length: 11 }, (_, complexity) => new OpusEncoder({ sampleRate: 16000, complexity, fec: complexity % 2 === 1, packetLossPercent: complexity % 2 === 1 ? 10 : 0 }));
  const full = new OpusEncoder({ sampleRate: 48000, fec: true, packetLossPercent: 10 });
  const dec = new LibopusDecoder({ sampleRate: 16000 });
  const speechWide = speech(16000);
  const speechFull = speech(48000);
  const pcm = new Int16Array(opusFrameSize(16000));
  const packet = new Uint8Array(4000);
  const toneWide = tone(16000);
  let round = 0;
  let level = 0;
  try {
    for (; round < rounds && performance.now() - t0 < maxMs; round++) {
      const f = round % SPEECH_FRAMES;
      dec.decode(packet.subarray(0, full.encodeInto(speechFull[f]!, packet)), pcm);
      const n = wide[round % wide.length]!.encodeInto(speechWide[f]!, packet);
      if (round % 8 === 7) {
        dec.conceal(pcm);
        dec.decodeFec(packet.subarray(0, n), pcm);
      }
      dec.decode(packet.subarray(0, n), pcm);
    }
    // The check: a steady tone through the complexity-5 encoder decodes back at its level.
    for (let i = 0; i < 20; i++) dec.decode(packet.subarray(0, wide[5]!.encodeInto(toneWide, packet)), pcm);
    level = rms(pcm) / rms(toneWide);
  } finally {
    for (const e of wide) e.close();
    full.close();
    dec.close();
  }
  return { rounds: round, ms: performance.now() - t0, level };
}

/** Frames of the rehearsal's speech-like signal (1 s). */
const SPEECH_FRAMES = 50;

/**
 * 1 s of speech-like audio at `rate`, in 20 ms frames: voiced stretches (harmonics of a gliding
 * pitch, a syllable envelope), an unvoiced hiss and a pause — what calls carry, so the encoder's
 * mode and bandwidth decisions and the decoder's transitions run too, not only a steady tone's
 * path (a tone-only first cut saved about as much over whole bench runs; decision 0025).
 */
function speech(rate: OpusSampleRate): Int16Array[] {
  const n = opusFrameSize(rate);
  const frames: Int16Array[] = [];
  let phase = 0;
  let seed = 12345;
  for (let f = 0; f < SPEECH_FRAMES; f++) {
    const out = new Int16Array(n);
    for (let i = 0; i < n; i++) {
      const t = (f * n + i) / rate;
      const pitch = 130 + 50 * Math.sin((2 * Math.PI * t) / 0.7);
      phase += (2 * Math.PI * pitch) / rate;
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; // 32-bit LCG: a product past 2^53 would lose bits
      const noise = seed / 2 ** 31 - 1;
      let v = 0;
      if (f < 30) v = Math.abs(Math.sin(2 * Math.PI * 3 * t)) * (Math.sin(phase) + 0.5 * Math.sin(2 * phase) + 0.3 * Math.sin(3 * phase) + 0.2 * Math.sin(5 * phase));
      else if (f < 40) v = 0.4 * noise;
      out[i] = Math.round(6000 * v);
    }
    frames.push(out);
  }
  return frames;
}

/** 20 ms of speech-band tones (300 Hz and 1.1 kHz) at `rate`, a whole number of cycles of each: the check's signal. */
function tone(rate: OpusSampleRate): Int16Array {
  const n = opusFrameSize(rate);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(6000 * Math.sin((2 * Math.PI * 300 * i) / rate) + 3000 * Math.sin((2 * Math.PI * 1100 * i) / rate));
  return out;
}

function rms(x: Int16Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / x.length);
}
