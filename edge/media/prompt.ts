import { readFileSync } from 'node:fs';
import { resampleClip, type SampleRate } from '../../codecs/resample.js';

/**
 * Loads a fallback prompt as 8 kHz PCM: a WAV file (PCM, 16-bit, mono, 8/16/24/48 kHz, resampled
 * to 8 kHz) or, for any other file, raw 16-bit little-endian 8 kHz PCM. Read once per path and
 * kept: a prompt is small and shared by every call of the route.
 */
const cache = new Map<string, Int16Array>();

export class PromptError extends Error {
  override name = 'PromptError';
}

export function loadPrompt(path: string): Int16Array {
  const hit = cache.get(path);
  if (hit) return hit;
  const pcm = decodePrompt(readFileSync(path));
  cache.set(path, pcm);
  return pcm;
}

export function decodePrompt(buf: Buffer): Int16Array {
  if (buf.length >= 12 && buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WAVE') return decodeWav(buf);
  const n = buf.length >> 1;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}

function decodeWav(buf: Buffer): Int16Array {
  let off = 12;
  let fmt: { format: number; channels: number; rate: number; bits: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ' && size >= 16 && body + 16 <= buf.length) {
      fmt = { format: buf.readUInt16LE(body), channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!fmt) throw new PromptError('WAV data chunk before its fmt chunk');
      if (fmt.format !== 1 || fmt.bits !== 16 || fmt.channels !== 1) throw new PromptError('WAV must be PCM 16-bit mono');
      if (![8000, 16000, 24000, 48000].includes(fmt.rate)) throw new PromptError(`WAV rate ${fmt.rate} Hz: use 8000, 16000, 24000 or 48000`);
      const end = Math.min(buf.length, body + size);
      const n = (end - body) >> 1;
      const pcm = new Int16Array(n);
      for (let i = 0; i < n; i++) pcm[i] = buf.readInt16LE(body + i * 2);
      return resampleClip(pcm, fmt.rate as SampleRate, 8000);
    }
    off = body + size + (size & 1);
  }
  throw new PromptError('WAV has no data chunk');
}
