import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { describe, it } from 'node:test';

import { writeCallerFrame } from '../../../bench/frame.js';
import { readTonePcm16k, readToneUlaw, unwrapUs24, writeFillerUlaw, writeTonePcm16k, writeToneUlaw, type ToneMark } from '../../../bench/tone-mark.js';
import { alawDecode, ulawDecode, ulawEncode } from '../../../codecs/g711.js';
import { Resampler } from '../../../codecs/resample.js';
import { sine } from '../../fixtures/audio.js';

/**
 * One call's media path as the node runs it with a 16 kHz bot (edge/media/call-media.ts): caller
 * µ-law → PCM → 8→16 kHz toward the bot; the bot's 16 kHz PCM → 16→8 kHz → µ-law toward the caller.
 * One Resampler per direction for the whole call, so each frame is filtered with the previous one
 * as history, exactly as on the node.
 */
class NodePath {
  readonly #up = new Resampler(8000, 16000);
  readonly #down = new Resampler(16000, 8000);
  readonly #pcm8 = new Int16Array(160);
  readonly #pcm16 = new Int16Array(320);
  readonly #back8 = new Int16Array(160);

  /** A caller µ-law frame in; the bot's 640 bytes of little-endian PCM out (a fresh buffer, as ws gives). */
  toBot(ulaw: Uint8Array): Uint8Array {
    ulawDecode(ulaw, this.#pcm8);
    assert.equal(this.#up.process(this.#pcm8, this.#pcm16), 320);
    return new Uint8Array(this.#pcm16.buffer.slice(0));
  }

  /** The bot's 640 bytes in; the caller's 160 µ-law bytes out. */
  toCaller(pcmBytes: Uint8Array): Uint8Array {
    const pcm = new Int16Array(pcmBytes.buffer.slice(pcmBytes.byteOffset, pcmBytes.byteOffset + pcmBytes.byteLength));
    assert.equal(this.#down.process(pcm, this.#back8), 160);
    const out = new Uint8Array(160);
    ulawEncode(this.#back8, out);
    return out;
  }
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const mark = (): ToneMark => ({ tag: -1, seq: -1, us24: -1 });

function ulawOf(pcm: Int16Array): Uint8Array {
  const out = new Uint8Array(pcm.length);
  ulawEncode(pcm, out);
  return out;
}

function pcmBytes(pcm: Int16Array): Uint8Array {
  return new Uint8Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
}

/** The A-law audio of SIPp's uac_pcap (the `bench sipp` run's caller), as 8 kHz PCM; undefined without SIPp. */
function sippRecording(): Int16Array | undefined {
  const path = '/usr/share/sip-tester/g711a.pcap';
  if (!existsSync(path)) return undefined;
  const file = readFileSync(path);
  assert.equal(file.readUInt32LE(0), 0xa1b2c3d4, 'little-endian pcap');
  assert.equal(file.readUInt32LE(20), 1, 'Ethernet frames');
  const chunks: Int16Array[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const len = file.readUInt32LE(at + 8);
    const pkt = file.subarray(at + 16, at + 16 + len);
    at += 16 + len;
    if (pkt.readUInt16BE(12) !== 0x0800) continue;
    const ip = pkt.subarray(14);
    if (ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0]! & 0x0f) * 4);
    const rtp = udp.subarray(8, udp.readUInt16BE(4));
    if (rtp[0]! >> 6 !== 2 || (rtp[1]! & 0x7f) !== 8) continue;
    const payload = rtp.subarray(12 + (rtp[0]! & 0x0f) * 4);
    const pcm = new Int16Array(payload.length);
    alawDecode(payload, pcm);
    chunks.push(pcm);
  }
  const all = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let n = 0;
  for (const c of chunks) {
    all.set(c, n);
    n += c.length;
  }
  return all;
}

describe('tone marker (--bot-rate 16000)', () => {
  assert.equal(endianness(), 'LE', 'the bot protocols carry little-endian PCM; these tests view it as Int16Array');

  it('reads back every field of 3000 random marks, both ways, frame after frame through one call\'s resamplers and µ-law', { timeout: 30000 }, () => {
    const rnd = random(1);
    const path = new NodePath();
    const got = mark();
    for (let n = 0; n < 3000; n++) {
      const tag = Math.floor(rnd() * 4096);
      const seq = Math.floor(rnd() * 256);
      const callerUs = Math.floor(rnd() * 2 ** 24);
      const frame = new Uint8Array(160);
      writeToneUlaw(frame, tag, seq, callerUs);
      const atBot = path.toBot(frame);
      assert.ok(readTonePcm16k(atBot, got), `frame ${n}: the bot reads a mark`);
      assert.deepEqual(got, { tag, seq, us24: callerUs }, `frame ${n} at the bot`);

      // The bot writes its own mark over the frame it echoes, as bench/echo-bot.ts does.
      const botUs = Math.floor(rnd() * 2 ** 24);
      writeTonePcm16k(atBot, tag, seq, botUs);
      const atCaller = path.toCaller(atBot);
      assert.ok(readToneUlaw(atCaller, got), `frame ${n}: the caller reads a mark`);
      assert.deepEqual(got, { tag, seq, us24: botUs }, `frame ${n} back at the caller`);
    }
  });

  it('reads the extreme marks (all bits 0, all bits 1) right after loud foreign audio in the filters\' history', { timeout: 10000 }, () => {
    const rnd = random(2);
    for (const [tag, seq, us] of [
      [0, 0, 0],
      [0xfff, 0xff, 0xffffff],
      [0xaaa, 0x55, 0xa5a5a5],
    ] as const) {
      const path = new NodePath();
      // A full-scale noise frame each way first: its tail rings into the next frame's first samples.
      const noise8 = Int16Array.from({ length: 160 }, () => Math.round((rnd() * 2 - 1) * 32767));
      const noise16 = Int16Array.from({ length: 320 }, () => Math.round((rnd() * 2 - 1) * 32767));
      path.toBot(ulawOf(noise8));
      path.toCaller(pcmBytes(noise16));
      const got = mark();
      const frame = new Uint8Array(160);
      writeToneUlaw(frame, tag, seq, us);
      const atBot = path.toBot(frame);
      assert.deepEqual(readTonePcm16k(atBot, got), { tag, seq, us24: us });
      writeTonePcm16k(atBot, tag, seq, us);
      assert.deepEqual(readToneUlaw(path.toCaller(atBot), got), { tag, seq, us24: us });
    }
  });

  it('writes the frame its header specifies: 48 tones at k × 62.5 Hz, Newman phases, 600 peak, within 6 of the exact sum', { timeout: 10000 }, () => {
    // The bit layout of bench/tone-mark.ts's header, computed here from scratch (no tables).
    const popcount = (v: number) => v.toString(2).split('1').length - 1;
    const exact = (rate: number, tag: number, seq: number, us: number): Float64Array => {
      const bits: number[] = [];
      for (let b = 0; b < 12; b++) bits.push((tag >> b) & 1);
      for (let b = 0; b < 8; b++) bits.push((seq >> b) & 1);
      for (let b = 0; b < 24; b++) bits.push((us >> b) & 1);
      // Check: the number of 1 bits in 0..43, inverted, mod 8.
      const ones = popcount(tag) + popcount(seq) + popcount(us);
      for (let b = 0; b < 3; b++) bits.push((~ones >> b) & 1);
      const samples = rate / 50;
      const out = new Float64Array(samples);
      for (let t = 0, b = 0; t < 48; t++) {
        // Tone 14 is the pilot, always on; the others carry bits 0..46 in order.
        if (t !== 14 && bits[b++] !== 1) continue;
        const hz = (6 + t) * 62.5;
        const phase = (Math.PI * t * t) / 48;
        for (let i = 0; i < samples; i++) out[i]! += 600 * Math.sin((2 * Math.PI * hz * i) / rate + phase);
      }
      return out;
    };
    const rnd = random(4);
    const ulawOut = new Uint8Array(160);
    const backing = new Uint8Array(641);
    for (let n = 0; n < 200; n++) {
      const [tag, seq, us] = n === 0 ? [0xfff, 0xff, 0xffffff] : [Math.floor(rnd() * 4096), Math.floor(rnd() * 256), Math.floor(rnd() * 2 ** 24)];
      // 16 kHz PCM, written at an odd offset too (mux records need not be 2-byte aligned in a Buffer).
      const out = backing.subarray(n & 1, (n & 1) + 640);
      writeTonePcm16k(out, tag, seq, us);
      const want16 = exact(16000, tag, seq, us);
      for (let i = 0; i < 320; i++) {
        const got = ((out[2 * i + 1]! << 8) | out[2 * i]!) << 16 >> 16;
        assert.ok(Math.abs(got - want16[i]!) <= 6, `16 kHz frame ${n} sample ${i}: ${got} vs ${want16[i]!.toFixed(1)}`);
      }
      // µ-law at 8 kHz: the same frame, encoded (µ-law of the exact sum, give or take one code).
      writeToneUlaw(ulawOut, tag, seq, us);
      const want8 = ulawOf(Int16Array.from(exact(8000, tag, seq, us), (x) => Math.round(x)));
      const decoded = new Int16Array(160);
      const wantDecoded = new Int16Array(160);
      ulawDecode(ulawOut, decoded);
      ulawDecode(want8, wantDecoded);
      for (let i = 0; i < 160; i++) {
        // One µ-law step at that level (segment s: step 8·2^s of 16-bit PCM), taken at the larger value.
        const level = Math.max(Math.abs(decoded[i]!), Math.abs(wantDecoded[i]!));
        const step = 8 * 2 ** Math.min(7, Math.max(0, Math.floor(Math.log2((level + 132) / 132))));
        assert.ok(Math.abs(decoded[i]! - wantDecoded[i]!) <= step, `8 kHz frame ${n} sample ${i}: ${decoded[i]} vs ${wantDecoded[i]}`);
      }
    }
  });

  it('keeps only the low 12, 8 and 24 bits of tag, sequence and time', { timeout: 5000 }, () => {
    const frame = new Uint8Array(160);
    writeToneUlaw(frame, 4096 + 7, 256 + 9, 2 ** 24 + 11);
    assert.deepEqual(readToneUlaw(frame, mark()), { tag: 7, seq: 9, us24: 11 });
  });

  it('rejects a mark with one tone added (the check bits catch a single misread bit)', { timeout: 5000 }, () => {
    // All-zero data: every data tone off, so adding any one of them flips exactly one bit.
    const frame = new Uint8Array(160);
    writeToneUlaw(frame, 0, 0, 0);
    const pcm = new Int16Array(160);
    ulawDecode(frame, pcm);
    assert.deepEqual(readToneUlaw(ulawOf(pcm), mark()), { tag: 0, seq: 0, us24: 0 }, 'the unaltered frame reads');
    for (const hz of [375, 437.5, 1187.5, 2000, 3250]) {
      const tone = sine(8000, hz, 160, 600);
      const altered = pcm.map((v, i) => v + tone[i]!);
      assert.equal(readToneUlaw(ulawOf(altered), mark()), undefined, `${hz} Hz added`);
    }
  });

  it('never reads silence, a lone tone, noise, the 8 kHz byte marker, the filler or the SIPp recording as a mark', { timeout: 30000 }, () => {
    const rnd = random(3);
    let tried = 0;
    const notMarked = (ulaw: Uint8Array, pcm16: Uint8Array, what: string) => {
      tried++;
      assert.equal(readToneUlaw(ulaw, mark()), undefined, `${what} (µ-law at the caller)`);
      assert.equal(readTonePcm16k(pcm16, mark()), undefined, `${what} (16 kHz PCM at the bot)`);
    };
    const up = new NodePath();
    const both = (pcm8: Int16Array, what: string) => notMarked(ulawOf(pcm8), up.toBot(ulawOf(pcm8)), what);

    both(new Int16Array(160), 'digital silence');
    // `--mark-every`'s filler, through one call's path, between marked frames (the filters' history).
    const filler = new Uint8Array(160);
    writeFillerUlaw(filler);
    const marked = new Uint8Array(160);
    const path = new NodePath();
    for (let n = 0; n < 20; n++) {
      writeToneUlaw(marked, 7, n, 1000 * n);
      path.toBot(marked);
      notMarked(filler, path.toBot(filler), `filler after marked frame ${n}`);
      notMarked(filler, path.toBot(filler), `filler after filler ${n}`);
    }
    notMarked(new Uint8Array(160).fill(0xff), new Uint8Array(640), 'G.711 silence');
    // A lone tone on every marker frequency, and between them, at amplitudes around the marker's.
    for (let hz = 300; hz <= 3400; hz += 31.25) {
      for (const amplitude of [300, 600, 1200, 3277]) both(sine(8000, hz, 160, amplitude), `${hz} Hz at ${amplitude}`);
    }
    for (let n = 0; n < 200; n++) {
      const level = 100 + rnd() * 20000;
      both(Int16Array.from({ length: 160 }, () => Math.round((rnd() * 2 - 1) * level)), `white noise at ${Math.round(level)}`);
    }
    // The --bot-rate 8000 marker: loud µ-law codes then a 400 Hz tone.
    for (let n = 0; n < 200; n++) {
      const frame = new Uint8Array(160);
      writeCallerFrame(frame, n + 1, n, Math.floor(rnd() * 2 ** 32));
      notMarked(frame, up.toBot(frame), `byte-marked frame ${n}`);
    }
    const sipp = sippRecording();
    if (sipp) {
      // Every 20 ms of the recording, at four alignments, through the upsampler as the bot gets it.
      for (const offset of [0, 40, 80, 120]) {
        const path = new NodePath();
        for (let at = offset; at + 160 <= sipp.length; at += 160) {
          const ulaw = ulawOf(sipp.subarray(at, at + 160));
          notMarked(ulaw, path.toBot(ulaw), `SIPp audio at sample ${at}`);
        }
      }
      assert.ok(tried > 1000, `${tried} frames tried`);
    }
  });

  it('unwraps 24-bit stamps against the reader\'s 32-bit clock across both wraps, up to ±8 s', { timeout: 5000 }, () => {
    const cases: [number, number][] = [
      // [send time, receive time], µs mod 2^32
      [1_000_000, 1_020_000],
      [0x00fffffe, 0x01000005], // the 24-bit wrap between send and receive
      [0xfffffffe, 0x00000003], // the 32-bit wrap
      [0x12345678, 0x12345676], // received "before" sent by 2 µs (clock calibration)
      [0x7000_0000, 0x7000_0000 + 8_000_000],
    ];
    for (const [sent, now] of cases) assert.equal(unwrapUs24(sent & 0xffffff, now), sent, `sent ${sent} read at ${now}`);
  });
});
