/**
 * The load generator's Opus callers (`npm run bench -- --codec opus`): every call replays the same
 * few seconds of Opus, encoded once at start-up, so the generator spends its CPU on sending, not
 * encoding (its CPU is not the system's, but a busy generator sends late and skews the figures).
 *
 * The audio is speech-like rather than a pure tone (three harmonics gliding in pitch, with a
 * syllable-rate envelope), 48 kHz, encoded as a real caller would (20 ms, 24 kbit/s VBR, in-band
 * FEC on since the node's answer asks for it): the node decodes what a phone sends.
 *
 * Loss is counted by frames, not by markers: a marker cannot survive a lossy codec, so the
 * generator counts RTP packets sent and received per call, and the bot counts frames it got.
 * Per-frame latency is not measured for Opus.
 */
import { OpusEncoder } from '../codecs/opus.js';

export const OPUS_PT_OFFERED = 96;
const RATE = 48000;
const FRAME = 960; // 20 ms at 48 kHz
/** Frames pre-encoded and replayed: long enough that the encoder state is not obviously periodic. */
const FRAMES = 150; // 3 s

/** The pre-encoded stream; call `frame(i)` for the payload of frame i (wrapping). */
export class OpusReplay {
  readonly #frames: Uint8Array[] = [];
  /** Largest payload, bytes: what a packet buffer must hold past its 12-byte header. */
  readonly maxBytes: number;

  constructor() {
    const enc = new OpusEncoder({ sampleRate: RATE, fec: true, packetLossPercent: 5 });
    const pcm = new Int16Array(FRAME);
    let phase = 0;
    for (let f = 0; f < FRAMES; f++) {
      for (let i = 0; i < FRAME; i++) {
        const t = (f * FRAME + i) / RATE;
        // Pitch glides 110-190 Hz over 1.5 s; a 4 Hz envelope makes syllables.
        const pitch = 150 + 40 * Math.sin(2 * Math.PI * t / 1.5);
        phase += (2 * Math.PI * pitch) / RATE;
        const env = 0.35 + 0.65 * Math.abs(Math.sin(2 * Math.PI * 2 * t));
        const s = Math.sin(phase) + 0.5 * Math.sin(2 * phase) + 0.25 * Math.sin(3 * phase);
        pcm[i] = Math.round(6000 * env * s);
      }
      this.#frames.push(enc.encode(pcm).slice());
    }
    enc.close();
    this.maxBytes = Math.max(...this.#frames.map((f) => f.length));
  }

  frame(i: number): Uint8Array {
    return this.#frames[i % FRAMES]!;
  }
}
