/**
 * Opus (RFC 6716) encode and decode for 20 ms mono frames, over libopus compiled to WebAssembly.
 *
 * Two decoders sit behind one interface:
 * - `libopus` (default): the libopus 1.x WASM build shipped inside the `@evan/opus` package
 *   (`wasm/simd.wasm`), driven through its raw exports (`opus_decode`, `opus_encode`, ctls). It gives
 *   packet-loss concealment for exactly one 20 ms frame (`opus_decode(NULL, frame_size)`) and in-band
 *   FEC (`decode_fec = 1` on the next packet), and 16-bit PCM with no float conversion. The same
 *   module encodes.
 * - `opus-decoder`: the `opus-decoder` package named by DESIGN.md. It exposes neither FEC nor a PLC
 *   frame size: a zero-length frame conceals 120 ms, of which we keep the first 20 ms (six times
 *   the work, and the decoder's clock runs 100 ms ahead of the stream). It prints to console.error
 *   on every corrupt packet. Kept for comparison (bench/codecs.ts); docs/decisions/0004 records why
 *   libopus is the default.
 *
 * The libopus module is compiled and instantiated once per thread, on first use, and every encoder
 * and decoder of that thread lives in its memory (about 43 KB per encoder, 18 KB per decoder at
 * mono). Reading the .wasm file is the one piece of I/O in codecs/, for the same reason
 * codecs/native.ts loads its addon: it happens once, before any call runs.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Rates libopus decodes to and encodes from. RTP carries Opus at a 48 kHz clock whatever this is. */
export type OpusSampleRate = 8000 | 12000 | 16000 | 24000 | 48000;

export const OPUS_SAMPLE_RATES: readonly OpusSampleRate[] = [8000, 12000, 16000, 24000, 48000];

/** Every frame in and out of this module is 20 ms. */
export const OPUS_FRAME_MS = 20;

/** Samples in one 20 ms frame at `rate`. */
export function opusFrameSize(rate: OpusSampleRate): number {
  return (rate / 1000) * OPUS_FRAME_MS;
}

/** The largest packet libopus writes or reads (RFC 6716 §3.2.1: 1275 bytes per frame, 48 frames). */
const MAX_PACKET = 7680;
/** The longest Opus packet is 120 ms: 5760 samples at 48 kHz. */
const MAX_SAMPLES_48K = 5760;

export type OpusErrorKind =
  | 'bad-arg'
  | 'buffer-too-small'
  | 'internal'
  | 'invalid-packet'
  | 'unimplemented'
  | 'invalid-state'
  | 'alloc-fail'
  /** PCM handed to an encoder is not exactly one 20 ms frame. */
  | 'frame-size'
  /** The encoder or decoder was closed. */
  | 'closed';

/** libopus error codes (opus_defines.h) to kinds. */
const LIBOPUS_ERRORS: Record<number, OpusErrorKind> = {
  [-1]: 'bad-arg',
  [-2]: 'buffer-too-small',
  [-3]: 'internal',
  [-4]: 'invalid-packet',
  [-5]: 'unimplemented',
  [-6]: 'invalid-state',
  [-7]: 'alloc-fail',
};

/** A failed Opus operation: `kind`, and `code` when libopus returned one (negative). */
export class OpusError extends Error {
  override name = 'OpusError';
  readonly kind: OpusErrorKind;
  readonly code: number | undefined;

  constructor(kind: OpusErrorKind, message: string, options?: { code?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.code = options?.code;
  }

  static fromCode(code: number, what: string): OpusError {
    const kind = LIBOPUS_ERRORS[code] ?? 'internal';
    return new OpusError(kind, `${what}: libopus ${code} (${kind})`, { code });
  }
}

// ---------------------------------------------------------------------------------------------
// The libopus WASM module: one instance per thread

/**
 * The slice of the WebAssembly JS API used here: tsconfig's lib (ES2023, no DOM) does not declare
 * the global, though Node has it.
 */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface LibopusExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(ptr: number): void;
  _initialize?: () => void;
  opus_encoder_get_size(channels: number): number;
  opus_encoder_init(st: number, rate: number, channels: number, application: number): number;
  opus_encode(st: number, pcm: number, frameSize: number, data: number, maxBytes: number): number;
  opus_encoder_ctl_set(st: number, request: number, value: number): number;
  opus_encoder_ctl_get(st: number, request: number): number;
  opus_decoder_get_size(channels: number): number;
  opus_decoder_init(st: number, rate: number, channels: number): number;
  opus_decode(st: number, data: number, len: number, pcm: number, frameSize: number, fec: number): number;
  opus_decoder_ctl_set(st: number, request: number, value: number): number;
}

/** The thread's libopus instance, with one scratch packet buffer and one PCM buffer in its memory. */
class Libopus {
  readonly x: LibopusExports;
  readonly packetPtr: number;
  readonly pcmPtr: number;
  #buffer: ArrayBuffer;
  #u8: Uint8Array;
  #i16: Int16Array;

  constructor(x: LibopusExports) {
    this.x = x;
    x._initialize?.();
    this.packetPtr = x.malloc(MAX_PACKET);
    this.pcmPtr = x.malloc(MAX_SAMPLES_48K * 2);
    this.#buffer = x.memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#i16 = new Int16Array(this.#buffer);
  }

  /** Views over the module's memory, renewed after the memory grew (which detaches the old ones). */
  get u8(): Uint8Array {
    if (this.x.memory.buffer !== this.#buffer) this.#renew();
    return this.#u8;
  }

  get i16(): Int16Array {
    if (this.x.memory.buffer !== this.#buffer) this.#renew();
    return this.#i16;
  }

  #renew(): void {
    this.#buffer = this.x.memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#i16 = new Int16Array(this.#buffer);
  }
}

let libopus: Libopus | undefined;

/** SIMD validation probe used by @evan/opus itself (a v128 instruction). */
const SIMD_PROBE = Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 9, 1, 7, 0, 65, 0, 253, 15, 26, 11);

function getLibopus(): Libopus {
  if (libopus) return libopus;
  const require = createRequire(import.meta.url);
  const file = wasmApi.validate(SIMD_PROBE) ? 'simd.wasm' : 'opus.wasm';
  const module = new wasmApi.Module(readFileSync(require.resolve(`@evan/opus/wasm/${file}`)));
  const noop = (): number => 0;
  const instance = new wasmApi.Instance(module, {
    wasi_snapshot_preview1: { fd_seek: noop, fd_write: noop, fd_close: noop, proc_exit: noop },
    // Views are renewed lazily (Libopus.u8/i16) whenever memory.buffer changed identity.
    env: { emscripten_notify_memory_growth: noop },
  });
  libopus = new Libopus(instance.exports as unknown as LibopusExports);
  return libopus;
}

/** Loads the libopus WASM module now (it otherwise loads on first use). Idempotent. */
export function preloadOpus(): void {
  getLibopus();
}

// opus_defines.h
const OPUS_APPLICATION = { voip: 2048, audio: 2049, lowdelay: 2051 } as const;
const OPUS_SET_BITRATE = 4002;
const OPUS_SET_VBR = 4006;
const OPUS_SET_COMPLEXITY = 4010;
const OPUS_SET_INBAND_FEC = 4012;
const OPUS_SET_PACKET_LOSS_PERC = 4014;
const OPUS_SET_DTX = 4016;
const OPUS_SET_SIGNAL = 4024;
const OPUS_SIGNAL_VOICE = 3001;

// ---------------------------------------------------------------------------------------------
// Encoder

export interface OpusEncoderOptions {
  /** Input PCM rate, Hz. Default 48000. */
  sampleRate?: OpusSampleRate;
  /** Target bitrate, bits/s, 6000..510000. Default 24000 (wideband speech). */
  bitrate?: number;
  /** CPU/quality trade-off, 0..10. Default 5 (libopus' own default is 9; 5 costs about half). */
  complexity?: number;
  /** libopus application. Default 'voip'. */
  application?: keyof typeof OPUS_APPLICATION;
  /** Constant bitrate instead of VBR. Default false. */
  cbr?: boolean;
  /** In-band FEC (LBRR) for the previous frame in each packet. Default false. */
  fec?: boolean;
  /** Expected loss, percent 0..100; makes FEC actually spend bits. Default 0. */
  packetLossPercent?: number;
  /** Discontinuous transmission in silence. Default false. */
  dtx?: boolean;
}

export type ResolvedOpusEncoderOptions = Required<OpusEncoderOptions>;

function checkRate(rate: number, field: string): asserts rate is OpusSampleRate {
  if (!OPUS_SAMPLE_RATES.includes(rate as OpusSampleRate)) {
    throw new OpusError('bad-arg', `${field} must be one of ${OPUS_SAMPLE_RATES.join(', ')} (got ${rate})`);
  }
}

function checkInt(value: number, min: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OpusError('bad-arg', `${field} must be an integer in ${min}..${max} (got ${value})`);
  }
}

export function resolveOpusEncoderOptions(options: OpusEncoderOptions = {}): ResolvedOpusEncoderOptions {
  const r: ResolvedOpusEncoderOptions = {
    sampleRate: options.sampleRate ?? 48000,
    bitrate: options.bitrate ?? 24000,
    complexity: options.complexity ?? 5,
    application: options.application ?? 'voip',
    cbr: options.cbr ?? false,
    fec: options.fec ?? false,
    packetLossPercent: options.packetLossPercent ?? 0,
    dtx: options.dtx ?? false,
  };
  checkRate(r.sampleRate, 'sampleRate');
  checkInt(r.bitrate, 6000, 510000, 'bitrate');
  checkInt(r.complexity, 0, 10, 'complexity');
  if (!(r.application in OPUS_APPLICATION)) {
    throw new OpusError('bad-arg', `application must be voip, audio or lowdelay (got ${String(r.application)})`);
  }
  checkInt(r.packetLossPercent, 0, 100, 'packetLossPercent');
  return r;
}

/** A mono Opus encoder taking exactly one 20 ms frame of 16-bit PCM per call. */
export class OpusEncoder {
  readonly options: ResolvedOpusEncoderOptions;
  readonly sampleRate: OpusSampleRate;
  /** Samples per 20 ms frame at `sampleRate`. */
  readonly frameSize: number;
  readonly #lib: Libopus;
  #state: number;

  constructor(options: OpusEncoderOptions = {}) {
    this.options = resolveOpusEncoderOptions(options);
    this.sampleRate = this.options.sampleRate;
    this.frameSize = opusFrameSize(this.sampleRate);
    const lib = (this.#lib = getLibopus());
    const x = lib.x;
    this.#state = x.malloc(x.opus_encoder_get_size(1));
    const o = this.options;
    const rc = x.opus_encoder_init(this.#state, o.sampleRate, 1, OPUS_APPLICATION[o.application]);
    if (rc < 0) {
      x.free(this.#state);
      this.#state = 0;
      throw OpusError.fromCode(rc, 'opus_encoder_init');
    }
    const set = (request: number, value: number, what: string): void => {
      const code = x.opus_encoder_ctl_set(this.#state, request, value);
      if (code < 0) throw OpusError.fromCode(code, what);
    };
    set(OPUS_SET_BITRATE, o.bitrate, 'OPUS_SET_BITRATE');
    set(OPUS_SET_COMPLEXITY, o.complexity, 'OPUS_SET_COMPLEXITY');
    set(OPUS_SET_VBR, o.cbr ? 0 : 1, 'OPUS_SET_VBR');
    set(OPUS_SET_INBAND_FEC, o.fec ? 1 : 0, 'OPUS_SET_INBAND_FEC');
    set(OPUS_SET_PACKET_LOSS_PERC, o.packetLossPercent, 'OPUS_SET_PACKET_LOSS_PERC');
    set(OPUS_SET_DTX, o.dtx ? 1 : 0, 'OPUS_SET_DTX');
    set(OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE, 'OPUS_SET_SIGNAL');
  }

  get closed(): boolean {
    return this.#state === 0;
  }

  /**
   * Encodes one frame into `out` (at least 1275 bytes is always enough at these bitrates; 4000 is
   * what RFC 7587 implementations allocate) and returns the packet length. Allocates nothing.
   */
  encodeInto(pcm: Int16Array, out: Uint8Array): number {
    if (this.#state === 0) throw new OpusError('closed', 'encode() on a closed OpusEncoder');
    if (pcm.length !== this.frameSize) {
      throw new OpusError('frame-size', `encode() takes ${this.frameSize} samples (20 ms at ${this.sampleRate} Hz), got ${pcm.length}`);
    }
    const lib = this.#lib;
    lib.i16.set(pcm, lib.pcmPtr >> 1);
    const max = Math.min(out.length, MAX_PACKET);
    let n: number;
    try {
      n = lib.x.opus_encode(this.#state, lib.pcmPtr, this.frameSize, lib.packetPtr, max);
    } catch (cause) {
      throw new OpusError('internal', 'opus_encode trapped', { cause });
    }
    if (n < 0) throw OpusError.fromCode(n, 'opus_encode');
    out.set(lib.u8.subarray(lib.packetPtr, lib.packetPtr + n));
    return n;
  }

  /** Encodes one frame and returns a new packet. */
  encode(pcm: Int16Array): Uint8Array {
    const scratch = encodeScratch ?? (encodeScratch = new Uint8Array(MAX_PACKET));
    const n = this.encodeInto(pcm, scratch);
    return scratch.slice(0, n);
  }

  /** Frees the libopus state. Idempotent. */
  close(): void {
    if (this.#state !== 0) {
      this.#lib.x.free(this.#state);
      this.#state = 0;
    }
  }
}

let encodeScratch: Uint8Array | undefined;

// ---------------------------------------------------------------------------------------------
// Decoders

export type OpusDecoderBackend = 'libopus' | 'opus-decoder';

export interface OpusDecoderOptions {
  /** Output PCM rate, Hz. Default 48000. */
  sampleRate?: OpusSampleRate;
  /** Which WASM decoder. Default 'libopus' (PLC per frame, FEC); see the module comment. */
  backend?: OpusDecoderBackend;
}

export type ResolvedOpusDecoderOptions = Required<OpusDecoderOptions>;

export function resolveOpusDecoderOptions(options: OpusDecoderOptions = {}): ResolvedOpusDecoderOptions {
  const r: ResolvedOpusDecoderOptions = {
    sampleRate: options.sampleRate ?? 48000,
    backend: options.backend ?? 'libopus',
  };
  checkRate(r.sampleRate, 'sampleRate');
  if (r.backend !== 'libopus' && r.backend !== 'opus-decoder') {
    throw new OpusError('bad-arg', `backend must be libopus or opus-decoder (got ${String(r.backend)})`);
  }
  return r;
}

/**
 * A mono Opus decoder. Every method returns 16-bit PCM: into `out` when given (a subarray of it,
 * no allocation), else a new array. A packet may hold more than 20 ms; `out` must then be large
 * enough (120 ms at the output rate always is).
 */
export interface OpusDecoder {
  readonly backend: OpusDecoderBackend;
  readonly sampleRate: OpusSampleRate;
  /** Samples per 20 ms frame at `sampleRate`. */
  readonly frameSize: number;
  readonly closed: boolean;
  /** Decodes one packet. A corrupt packet throws OpusError('invalid-packet'). */
  decode(packet: Uint8Array, out?: Int16Array): Int16Array;
  /** Packet-loss concealment: one 20 ms frame standing in for a lost packet. */
  conceal(out?: Int16Array): Int16Array;
  /**
   * Recovers the lost frame before `nextPacket` from the FEC data that packet carries (the encoder
   * must have had `fec` on), or conceals when it carries none or the backend cannot. Decode
   * `nextPacket` itself afterwards, as usual.
   */
  decodeFec(nextPacket: Uint8Array, out?: Int16Array): Int16Array;
  close(): void;
}

/** The libopus decoder. Synchronous to create: the module is compiled on first use. */
export class LibopusDecoder implements OpusDecoder {
  readonly backend = 'libopus' as const;
  readonly sampleRate: OpusSampleRate;
  readonly frameSize: number;
  readonly #lib: Libopus;
  readonly #maxSamples: number;
  #state: number;

  constructor(options: Omit<OpusDecoderOptions, 'backend'> = {}) {
    const o = resolveOpusDecoderOptions(options);
    this.sampleRate = o.sampleRate;
    this.frameSize = opusFrameSize(this.sampleRate);
    this.#maxSamples = (MAX_SAMPLES_48K * this.sampleRate) / 48000;
    const lib = (this.#lib = getLibopus());
    this.#state = lib.x.malloc(lib.x.opus_decoder_get_size(1));
    const rc = lib.x.opus_decoder_init(this.#state, this.sampleRate, 1);
    if (rc < 0) {
      lib.x.free(this.#state);
      this.#state = 0;
      throw OpusError.fromCode(rc, 'opus_decoder_init');
    }
  }

  get closed(): boolean {
    return this.#state === 0;
  }

  decode(packet: Uint8Array, out?: Int16Array): Int16Array {
    if (packet.length === 0) throw new OpusError('invalid-packet', 'decode() of an empty packet (use conceal())');
    return this.#run(packet, this.#maxSamples, 0, out);
  }

  conceal(out?: Int16Array): Int16Array {
    return this.#run(undefined, this.frameSize, 0, out);
  }

  decodeFec(nextPacket: Uint8Array, out?: Int16Array): Int16Array {
    if (nextPacket.length === 0) return this.conceal(out);
    // With decode_fec = 1 libopus conceals by itself when the packet has no LBRR data.
    return this.#run(nextPacket, this.frameSize, 1, out);
  }

  #run(packet: Uint8Array | undefined, frameSize: number, fec: number, out: Int16Array | undefined): Int16Array {
    if (this.#state === 0) throw new OpusError('closed', 'decode on a closed OpusDecoder');
    const lib = this.#lib;
    let len = 0;
    if (packet) {
      if (packet.length > MAX_PACKET) {
        throw new OpusError('invalid-packet', `packet of ${packet.length} bytes exceeds the Opus maximum ${MAX_PACKET}`);
      }
      lib.u8.set(packet, lib.packetPtr);
      len = packet.length;
    }
    const limit = out ? Math.min(out.length, frameSize) : frameSize;
    let n: number;
    try {
      n = lib.x.opus_decode(this.#state, packet ? lib.packetPtr : 0, len, lib.pcmPtr, limit, fec);
    } catch (cause) {
      throw new OpusError('internal', 'opus_decode trapped', { cause });
    }
    if (n < 0) throw OpusError.fromCode(n, 'opus_decode');
    const base = lib.pcmPtr >> 1;
    const pcm = lib.i16.subarray(base, base + n);
    if (out) {
      out.set(pcm);
      return out.subarray(0, n);
    }
    return pcm.slice();
  }

  close(): void {
    if (this.#state !== 0) {
      this.#lib.x.free(this.#state);
      this.#state = 0;
    }
  }
}

/** What we use of the `opus-decoder` package (its types.d.ts). */
interface WasmAudioOpusDecoder {
  ready: Promise<void>;
  free(): void;
  decodeFrame(frame: Uint8Array): { channelData: Float32Array[]; samplesDecoded: number; errors: unknown[] };
}

/** The `opus-decoder` package behind the same interface. Create with createOpusDecoder(). */
class PackageOpusDecoder implements OpusDecoder {
  readonly backend = 'opus-decoder' as const;
  readonly sampleRate: OpusSampleRate;
  readonly frameSize: number;
  #dec: WasmAudioOpusDecoder | undefined;

  constructor(dec: WasmAudioOpusDecoder, sampleRate: OpusSampleRate) {
    this.#dec = dec;
    this.sampleRate = sampleRate;
    this.frameSize = opusFrameSize(sampleRate);
  }

  get closed(): boolean {
    return this.#dec === undefined;
  }

  decode(packet: Uint8Array, out?: Int16Array): Int16Array {
    if (packet.length === 0) throw new OpusError('invalid-packet', 'decode() of an empty packet (use conceal())');
    return this.#run(packet, Infinity, out);
  }

  conceal(out?: Int16Array): Int16Array {
    // A zero-length frame makes libopus conceal; this package asks for 120 ms, we keep 20.
    return this.#run(new Uint8Array(0), this.frameSize, out);
  }

  decodeFec(_nextPacket: Uint8Array, out?: Int16Array): Int16Array {
    return this.conceal(out);
  }

  #run(packet: Uint8Array, limit: number, out: Int16Array | undefined): Int16Array {
    const dec = this.#dec;
    if (!dec) throw new OpusError('closed', 'decode on a closed OpusDecoder');
    const r = dec.decodeFrame(packet);
    if (r.errors.length > 0) {
      throw new OpusError('invalid-packet', 'opus-decoder: corrupt packet', { code: -4, cause: r.errors[0] });
    }
    const ch = r.channelData[0] ?? new Float32Array(0);
    const n = Math.min(r.samplesDecoded, limit, out ? out.length : Infinity);
    const dst = out ?? new Int16Array(n);
    for (let i = 0; i < n; i++) {
      const v = Math.round((ch[i] ?? 0) * 32768);
      dst[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    return out ? out.subarray(0, n) : dst;
  }

  close(): void {
    this.#dec?.free();
    this.#dec = undefined;
  }
}

/** Creates a decoder of either backend (the `opus-decoder` package compiles asynchronously). */
export async function createOpusDecoder(options: OpusDecoderOptions = {}): Promise<OpusDecoder> {
  const o = resolveOpusDecoderOptions(options);
  if (o.backend === 'libopus') return new LibopusDecoder({ sampleRate: o.sampleRate });
  const mod = (await import('opus-decoder')) as unknown as {
    OpusDecoder: new (options: { channels: number; sampleRate: number }) => WasmAudioOpusDecoder;
  };
  const dec = new mod.OpusDecoder({ channels: 1, sampleRate: o.sampleRate });
  await dec.ready;
  return new PackageOpusDecoder(dec, o.sampleRate);
}
