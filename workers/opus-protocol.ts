/**
 * The messages between OpusPool (main thread) and workers/opus-task.ts (a worker), one request and
 * one response per worker per 20 ms tick.
 *
 * A tick request carries the calls to open, the calls to close and every frame of the tick for that
 * worker, in that order of processing. Frames travel in one ArrayBuffer, transferred (not copied):
 *
 *   request.buf:  count × [handle i32, op i32, offset i32, length i32]  then the payload bytes
 *   response.buf: count × [status i32, offset i32]                      then the output bytes
 *
 * `offset` counts bytes from the start of the buffer. Output offsets are 8-byte aligned so a decode
 * result is an Int16Array view in place. `status` >= 0 is the output length in bytes; < 0 is an
 * error, -(1 + index into ITEM_ERROR_KINDS).
 */
import type { OpusEncoderOptions, OpusErrorKind, OpusSampleRate } from '../codecs/opus.js';

export const OP_DECODE = 0;
export const OP_CONCEAL = 1;
export const OP_DECODE_FEC = 2;
export const OP_ENCODE = 3;
export type OpusOp = typeof OP_DECODE | typeof OP_CONCEAL | typeof OP_DECODE_FEC | typeof OP_ENCODE;

export const REQUEST_ITEM_INTS = 4;
export const RESPONSE_ITEM_INTS = 2;

/** Per-item failures: the codec's own kinds, plus 'not-open' (no state for that handle here). */
export type ItemErrorKind = OpusErrorKind | 'not-open';
export const ITEM_ERROR_KINDS: readonly ItemErrorKind[] = [
  'bad-arg', 'buffer-too-small', 'internal', 'invalid-packet', 'unimplemented', 'invalid-state',
  'alloc-fail', 'frame-size', 'closed', 'not-open',
];

export interface OpusCallParams {
  /** Decoder for packets from the caller; omitted: this call only encodes. */
  decode?: { sampleRate?: OpusSampleRate };
  /** Encoder for audio to the caller; omitted: this call only decodes. */
  encode?: OpusEncoderOptions;
}

export interface OpenSpec {
  handle: number;
  params: OpusCallParams;
}

export interface TickRequest {
  open: OpenSpec[];
  close: number[];
  count: number;
  buf: ArrayBuffer;
}

export interface OpenFailure {
  handle: number;
  kind: ItemErrorKind;
  message: string;
}

export interface TickResponse {
  /** Identifies the worker instance; a new value means a replaced worker that lost every state. */
  epoch: string;
  count: number;
  buf: ArrayBuffer;
  openFailures: OpenFailure[];
  /** A worker's first response: its codec rehearsal at start (workers/opus-warm-up.ts), when it ran one. */
  warmUp?: { rounds: number; ms: number };
}

export const align8 = (n: number): number => (n + 7) & ~7;
