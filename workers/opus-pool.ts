/**
 * OpusPool: Opus encode/decode for many calls in worker threads, batched per 20 ms tick.
 *
 * The media tick submits each call's frames (`decode`, `conceal`, `decodeFec`, `encode`, each
 * returning a promise of that frame's result) and then calls `flush()` once: every worker with work
 * gets one request holding all of its calls' frames, opens and closes (workers/opus-protocol.ts),
 * and answers once. Per call, results resolve in submission order.
 *
 * Calls are pinned to a worker by a hash of the call id, so a call's encoder and decoder state
 * stays in one worker. Pinning is done with one single-thread Piscina per worker rather than one
 * Piscina of N threads: Piscina's loadBalancer sees neither the task's payload nor a stable worker
 * order (a replaced worker joins at the end), so it cannot route by call. Everything else Piscina
 * gives is kept: a replaced worker on crash, transfer lists, the Atomics-based wake-up.
 *
 * When a worker dies, the frames in its batch reject with OpusPoolError('worker-lost'); Piscina
 * starts a new worker and the pool re-opens that worker's calls at the next flush (their codec
 * state starts afresh, as after a lost packet). A corrupt packet rejects only its own frame, with
 * the codec's OpusError.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

import { Piscina } from 'piscina';

import { OpusError, resolveOpusDecoderOptions, resolveOpusEncoderOptions, type OpusErrorKind } from '../codecs/opus.js';
import {
  ITEM_ERROR_KINDS,
  OP_CONCEAL,
  OP_DECODE,
  OP_DECODE_FEC,
  OP_ENCODE,
  REQUEST_ITEM_INTS,
  RESPONSE_ITEM_INTS,
  align8,
  type OpenSpec,
  type OpusCallParams,
  type OpusOp,
  type TickRequest,
  type TickResponse,
} from './opus-protocol.js';

export type { OpusCallParams } from './opus-protocol.js';

export type OpusPoolErrorKind =
  /** The worker died with this frame in flight (its calls are re-opened at the next flush). */
  | 'worker-lost'
  /** The call was never opened, or was closed. */
  | 'not-open'
  /** The pool was destroyed. */
  | 'closed';

export class OpusPoolError extends Error {
  override name = 'OpusPoolError';
  readonly kind: OpusPoolErrorKind;
  readonly callId: string | undefined;

  constructor(kind: OpusPoolErrorKind, message: string, options?: { callId?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.callId = options?.callId;
  }
}

export interface OpusPoolOptions {
  /** Worker threads. Default: available cores − 1, at least 1. */
  threads?: number;
  /** The task module. Default: workers/opus-task.js beside this file. Tests substitute their own. */
  filename?: string;
  /**
   * Lowers the workers' scheduling priority by this much (nice(2); Piscina's `niceIncrement`, via
   * @napi-rs/nice). Default 0. A media node raises it so that, on a core shared with the workers,
   * the thread that owns the RTP sockets wins the CPU when it wakes.
   */
  niceIncrement?: number;
}

export interface OpusPoolStats {
  /** Requests sent (at most one per worker per flush). */
  batches: number;
  frames: number;
  /** Frames that failed, for any reason. */
  errors: number;
  /** Workers found dead or replaced. */
  workerRestarts: number;
  /** The last worker start's codec rehearsal (decision 0025): rounds run and how long it took, ms; 0 before one is reported or when off. */
  warmUpRounds: number;
  warmUpMs: number;
}

interface Pending {
  handle: number;
  op: OpusOp;
  payload: Uint8Array | undefined;
  callId: string;
  resolve: (value: Int16Array & Uint8Array) => void;
  reject: (err: Error) => void;
}

interface Call {
  id: string;
  handle: number;
  shard: Shard;
  params: OpusCallParams;
}

interface Shard {
  index: number;
  piscina: Piscina<TickRequest, TickResponse>;
  calls: Map<number, Call>;
  open: OpenSpec[];
  close: number[];
  queue: Pending[];
  /** Bytes the queued payloads need in the request, aligned. */
  queuedBytes: number;
  epoch: string | undefined;
}

/** FNV-1a over UTF-16 code units: stable, cheap, well spread for call ids. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class OpusPool {
  readonly threads: number;
  readonly #shards: Shard[];
  readonly #calls = new Map<string, Call>();
  #nextHandle = 1;
  #destroyed = false;
  readonly #stats: OpusPoolStats = { batches: 0, frames: 0, errors: 0, workerRestarts: 0, warmUpRounds: 0, warmUpMs: 0 };

  constructor(options: OpusPoolOptions = {}) {
    const threads = options.threads ?? Math.max(1, availableParallelism() - 1);
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be an integer >= 1 (got ${threads})`);
    this.threads = threads;
    const filename = options.filename ?? fileURLToPath(new URL('./opus-task.js', import.meta.url));
    this.#shards = [];
    for (let index = 0; index < threads; index++) {
      this.#shards.push({
        index,
        piscina: new Piscina<TickRequest, TickResponse>({
          filename,
          minThreads: 1,
          maxThreads: 1,
          idleTimeout: Infinity,
          concurrentTasksPerWorker: 1,
          niceIncrement: options.niceIncrement ?? 0,
        }),
        calls: new Map(),
        open: [],
        close: [],
        queue: [],
        queuedBytes: 0,
        epoch: undefined,
      });
    }
  }

  get stats(): OpusPoolStats {
    return { ...this.#stats };
  }

  /** Frames submitted and not yet flushed. */
  get pending(): number {
    let n = 0;
    for (const s of this.#shards) n += s.queue.length;
    return n;
  }

  /** Which worker a call id is pinned to. */
  shardOf(callId: string): number {
    return hash(callId) % this.threads;
  }

  /**
   * Opens a call's codecs. Options are validated now (throwing OpusError naming the field); the
   * state is created in the worker at the next flush, before that flush's frames.
   */
  open(callId: string, params: OpusCallParams): void {
    this.#checkAlive();
    if (params.encode) resolveOpusEncoderOptions(params.encode);
    if (params.decode) resolveOpusDecoderOptions(params.decode);
    if (this.#calls.has(callId)) this.close(callId);
    const shard = this.#shards[this.shardOf(callId)]!;
    const call: Call = { id: callId, handle: this.#nextHandle++, shard, params };
    this.#calls.set(callId, call);
    shard.calls.set(call.handle, call);
    shard.open.push({ handle: call.handle, params });
  }

  /** Closes a call: its state is freed at the next flush; frames already queued still run. */
  close(callId: string): void {
    const call = this.#calls.get(callId);
    if (!call) return;
    this.#calls.delete(callId);
    call.shard.calls.delete(call.handle);
    call.shard.close.push(call.handle);
  }

  decode(callId: string, packet: Uint8Array): Promise<Int16Array> {
    return this.#submit(callId, OP_DECODE, packet);
  }

  /** PLC: one 20 ms frame for a lost packet. */
  conceal(callId: string): Promise<Int16Array> {
    return this.#submit(callId, OP_CONCEAL, undefined);
  }

  /** The lost frame before `nextPacket`, from that packet's FEC data (or PLC without it). */
  decodeFec(callId: string, nextPacket: Uint8Array): Promise<Int16Array> {
    return this.#submit(callId, OP_DECODE_FEC, nextPacket);
  }

  /** Encodes one 20 ms frame of PCM at the call's encoder rate. */
  encode(callId: string, pcm: Int16Array): Promise<Uint8Array> {
    return this.#submit(callId, OP_ENCODE, new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }

  #submit(callId: string, op: OpusOp, payload: Uint8Array | undefined): Promise<Int16Array & Uint8Array> {
    if (this.#destroyed) return Promise.reject(new OpusPoolError('closed', 'OpusPool was destroyed', { callId }));
    const call = this.#calls.get(callId);
    if (!call) return Promise.reject(new OpusPoolError('not-open', `call ${callId} is not open`, { callId }));
    const shard = call.shard;
    return new Promise((resolve, reject) => {
      shard.queue.push({ handle: call.handle, op, payload, callId, resolve, reject });
      shard.queuedBytes += align8(payload ? payload.length : 0);
    });
  }

  /**
   * Resolves when every worker has started — loaded libopus and rehearsed it (decision 0025) — and
   * answered one request (empty, or carrying what is queued). A media node waits for it before it
   * opens its SIP port, so no call meets a worker that is still starting.
   */
  async ready(): Promise<void> {
    this.#checkAlive();
    await Promise.all(this.#shards.map((shard) => this.#flushShard(shard)));
  }

  /**
   * Sends each worker with work one request holding everything queued for it, and resolves when
   * every result of this flush has been delivered. Call once per tick.
   */
  async flush(): Promise<void> {
    const inFlight: Promise<void>[] = [];
    for (const shard of this.#shards) {
      if (shard.queue.length === 0 && shard.open.length === 0 && shard.close.length === 0) continue;
      inFlight.push(this.#flushShard(shard));
    }
    await Promise.all(inFlight);
  }

  async #flushShard(shard: Shard): Promise<void> {
    const items = shard.queue;
    const count = items.length;
    const headerBytes = align8(count * REQUEST_ITEM_INTS * 4);
    const buf = new ArrayBuffer(headerBytes + shard.queuedBytes);
    const head = new Int32Array(buf, 0, count * REQUEST_ITEM_INTS);
    const bytes = new Uint8Array(buf);
    let offset = headerBytes;
    for (let i = 0; i < count; i++) {
      const it = items[i]!;
      const length = it.payload ? it.payload.length : 0;
      head[i * REQUEST_ITEM_INTS] = it.handle;
      head[i * REQUEST_ITEM_INTS + 1] = it.op;
      head[i * REQUEST_ITEM_INTS + 2] = offset;
      head[i * REQUEST_ITEM_INTS + 3] = length;
      if (it.payload) bytes.set(it.payload, offset);
      offset += align8(length);
    }
    const req: TickRequest = { open: shard.open, close: shard.close, count, buf };
    shard.queue = [];
    shard.queuedBytes = 0;
    shard.open = [];
    shard.close = [];
    this.#stats.batches++;
    this.#stats.frames += count;

    let res: TickResponse;
    try {
      res = await shard.piscina.run(req, { transferList: [buf] });
    } catch (cause) {
      this.#workerLost(shard, cause);
      const err = new OpusPoolError('worker-lost', `Opus worker ${shard.index} died`, { cause });
      this.#stats.errors += count;
      for (const it of items) it.reject(new OpusPoolError('worker-lost', err.message, { callId: it.callId, cause }));
      return;
    }
    if (shard.epoch !== undefined && res.epoch !== shard.epoch) this.#workerLost(shard, undefined);
    shard.epoch = res.epoch;
    if (res.warmUp) {
      this.#stats.warmUpRounds = res.warmUp.rounds;
      this.#stats.warmUpMs = Math.round(res.warmUp.ms);
    }

    const failedOpen = new Map<number, OpusError>();
    for (const f of res.openFailures) {
      failedOpen.set(f.handle, new OpusError(f.kind === 'not-open' ? 'internal' : f.kind, f.message));
    }
    const status = new Int32Array(res.buf, 0, count * RESPONSE_ITEM_INTS);
    for (let i = 0; i < count; i++) {
      const it = items[i]!;
      const n = status[i * RESPONSE_ITEM_INTS]!;
      if (n >= 0) {
        const at = status[i * RESPONSE_ITEM_INTS + 1]!;
        // Decode results are PCM, encode results bytes; the views share the response buffer.
        const view = it.op === OP_ENCODE ? new Uint8Array(res.buf, at, n) : new Int16Array(res.buf, at, n >> 1);
        it.resolve(view as Int16Array & Uint8Array);
        continue;
      }
      this.#stats.errors++;
      const kind = ITEM_ERROR_KINDS[-n - 1] ?? 'internal';
      const openErr = failedOpen.get(it.handle);
      if (openErr) it.reject(openErr);
      else if (kind === 'not-open') it.reject(new OpusPoolError('not-open', `call ${it.callId} has no state in worker ${shard.index}`, { callId: it.callId }));
      else it.reject(new OpusError(kind as OpusErrorKind, `Opus ${opName(it.op)} failed for call ${it.callId}: ${kind}`));
    }
  }

  /** The shard's worker lost its state: re-open every call pinned to it at the next flush. */
  #workerLost(shard: Shard, _cause: unknown): void {
    this.#stats.workerRestarts++;
    shard.epoch = undefined;
    const reopen = new Set(shard.open.map((o) => o.handle));
    for (const call of shard.calls.values()) {
      if (!reopen.has(call.handle)) shard.open.push({ handle: call.handle, params: call.params });
    }
  }

  #checkAlive(): void {
    if (this.#destroyed) throw new OpusPoolError('closed', 'OpusPool was destroyed');
  }

  /** Rejects what is queued and stops the workers. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const shard of this.#shards) {
      for (const it of shard.queue) it.reject(new OpusPoolError('closed', 'OpusPool was destroyed', { callId: it.callId }));
      shard.queue = [];
    }
    await Promise.all(this.#shards.map((s) => s.piscina.destroy()));
  }
}

function opName(op: OpusOp): string {
  return op === OP_ENCODE ? 'encode' : op === OP_CONCEAL ? 'conceal' : op === OP_DECODE_FEC ? 'FEC decode' : 'decode';
}
