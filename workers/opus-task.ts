/**
 * The Piscina task that runs inside each Opus worker: it keeps the codec state of the calls pinned
 * to this worker and processes one tick request (workers/opus-protocol.ts) per call.
 *
 * The libopus WASM module is compiled once per worker, when this module loads, and rehearsed
 * (workers/opus-warm-up.ts); encoders and decoders live in its memory until their call closes.
 * Results are written into one scratch area and copied once into an ArrayBuffer sized to fit,
 * which is transferred back (Piscina's move()).
 */
import { threadId } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';

import { LibopusDecoder, OpusEncoder, OpusError, preloadOpus } from '../codecs/opus.js';
import {
  ITEM_ERROR_KINDS,
  OP_CONCEAL,
  OP_DECODE,
  OP_DECODE_FEC,
  OP_ENCODE,
  REQUEST_ITEM_INTS,
  RESPONSE_ITEM_INTS,
  align8,
  type ItemErrorKind,
  type OpenFailure,
  type TickRequest,
  type TickResponse,
} from './opus-protocol.js';
import { warmUpEnabled, warmUpOpus, type WarmUpResult } from './opus-warm-up.js';

preloadOpus();

/**
 * The codec rehearsed before this worker takes its first tick (decision 0025), reported with the
 * first response; undefined once reported, or when switched off.
 */
let warmUp: WarmUpResult | undefined = warmUpEnabled() ? warmUpOpus() : undefined;

/** Distinguishes this worker from the one Piscina starts if this one dies. */
const EPOCH = `${threadId}:${Math.random().toString(36).slice(2)}`;

interface CallState {
  enc: OpusEncoder | undefined;
  dec: LibopusDecoder | undefined;
}

const calls = new Map<number, CallState>();

/** 120 ms at 48 kHz, the longest an Opus packet decodes to. */
const pcm = new Int16Array(5760);
const packet = new Uint8Array(4000);
let scratch = new Uint8Array(1 << 20);

function ensure(bytes: number): void {
  if (bytes <= scratch.length) return;
  const bigger = new Uint8Array(Math.max(bytes, scratch.length * 2));
  bigger.set(scratch);
  scratch = bigger;
}

function errorStatus(kind: ItemErrorKind): number {
  return -(1 + ITEM_ERROR_KINDS.indexOf(kind));
}

function kindOf(err: unknown): ItemErrorKind {
  return err instanceof OpusError ? err.kind : 'internal';
}

function closeCall(handle: number): void {
  const c = calls.get(handle);
  c?.enc?.close();
  c?.dec?.close();
  calls.delete(handle);
}

export default function opusTick(req: TickRequest): TickResponse {
  const openFailures: OpenFailure[] = [];
  for (const { handle, params } of req.open) {
    closeCall(handle);
    let enc: OpusEncoder | undefined;
    try {
      enc = params.encode ? new OpusEncoder(params.encode) : undefined;
      const dec = params.decode ? new LibopusDecoder(params.decode) : undefined;
      calls.set(handle, { enc, dec });
    } catch (err) {
      enc?.close();
      openFailures.push({ handle, kind: kindOf(err), message: err instanceof Error ? err.message : String(err) });
    }
  }
  for (const handle of req.close) closeCall(handle);

  const count = req.count;
  const head = new Int32Array(req.buf, 0, count * REQUEST_ITEM_INTS);
  const bytes = new Uint8Array(req.buf);
  const headerBytes = align8(count * RESPONSE_ITEM_INTS * 4);
  ensure(headerBytes);
  let out = headerBytes;
  const status = new Int32Array(count * RESPONSE_ITEM_INTS);
  for (let i = 0; i < count; i++) {
    const handle = head[i * REQUEST_ITEM_INTS]!;
    const op = head[i * REQUEST_ITEM_INTS + 1]!;
    const offset = head[i * REQUEST_ITEM_INTS + 2]!;
    const length = head[i * REQUEST_ITEM_INTS + 3]!;
    const input = bytes.subarray(offset, offset + length);
    const c = calls.get(handle);
    let result: number;
    try {
      if (!c) {
        result = errorStatus('not-open');
      } else if (op === OP_ENCODE) {
        if (!c.enc) throw new OpusError('invalid-state', 'call has no encoder');
        // Int16 view needs 2-byte alignment: the request packs payloads 8-byte aligned.
        const n = c.enc.encodeInto(new Int16Array(input.buffer, input.byteOffset, length >> 1), packet);
        ensure(out + n + 8);
        scratch.set(packet.subarray(0, n), out);
        result = n;
      } else {
        if (!c.dec) throw new OpusError('invalid-state', 'call has no decoder');
        const frame =
          op === OP_DECODE ? c.dec.decode(input, pcm)
          : op === OP_CONCEAL ? c.dec.conceal(pcm)
          : op === OP_DECODE_FEC ? c.dec.decodeFec(input, pcm)
          : undefined;
        if (!frame) throw new OpusError('bad-arg', `unknown op ${op}`);
        const n = frame.length * 2;
        ensure(out + n + 8);
        scratch.set(new Uint8Array(frame.buffer, frame.byteOffset, n), out);
        result = n;
      }
    } catch (err) {
      result = errorStatus(kindOf(err));
    }
    status[i * RESPONSE_ITEM_INTS] = result;
    status[i * RESPONSE_ITEM_INTS + 1] = result >= 0 ? out : 0;
    if (result > 0) out = align8(out + result);
  }
  const buf = new ArrayBuffer(out);
  const view = new Uint8Array(buf);
  view.set(scratch.subarray(0, out));
  new Int32Array(buf, 0, count * RESPONSE_ITEM_INTS).set(status);
  const response: TickResponse = { epoch: EPOCH, count, buf, openFailures };
  if (warmUp) {
    response.warmUp = { rounds: warmUp.rounds, ms: warmUp.ms };
    warmUp = undefined;
  }
  return move(new MovedResponse(response)) as unknown as TickResponse;
}

/** Piscina's Transferable: the response is the value, its buffer is moved rather than cloned. */
class MovedResponse {
  readonly #response: TickResponse;
  constructor(response: TickResponse) {
    this.#response = response;
  }
  get [transferableSymbol](): ArrayBuffer {
    return this.#response.buf;
  }
  get [valueSymbol](): TickResponse {
    return this.#response;
  }
}
