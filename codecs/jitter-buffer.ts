/**
 * An adaptive jitter buffer for one call's RTP stream: a pure processor with no timers.
 *
 * The caller pushes every packet as it arrives (`push(seq, timestamp, payload, arrivalMs)`) and
 * pulls one frame per frame interval from its tick (`pop(nowMs)`). `pop` answers with the frame
 * due, with an instruction to conceal one frame (the caller decides how: G.711 repeats or
 * attenuates the last frame, or plays silence; Opus runs PLC, or FEC from `next`), or with `wait`
 * while the buffer fills.
 *
 * Depth adapts to the network:
 * - Inter-arrival jitter J is estimated as in RFC 3550 §6.4.1 (J += (|D| - J) / 16, D the change in
 *   transit time between consecutive arrivals, in timestamp units), and the target depth is
 *   clamp(k·J, minDepthMs, maxDepthMs), rounded up to whole frames.
 * - The buffer grows by holding: when the frame due is missing and fewer than the target depth of
 *   later frames are buffered (underrun), `pop` conceals without advancing, so the late packet still
 *   plays, one frame later than planned. With a target depth of later frames present, the missing
 *   one is declared lost and skipped.
 * - It shrinks by dropping: when more than target + 1 frames have stayed buffered for
 *   `shrinkAfterMs`, one frame is discarded. (A smarter version drops during silence only.)
 *
 * Sequence numbers are extended past 65535 (RFC 3550 A.1) and timestamps past 2^32, so reordering,
 * loss and duplicates are recognised across the wrap. A jump of more than MAX_DROPOUT ahead or
 * MAX_MISORDER behind is taken as a restarted stream once two consecutive packets confirm it.
 *
 * Payloads are copied into one preallocated slab (capacity × maxPayloadBytes), so the caller may
 * reuse its receive buffer and the hot path allocates only the small result object. A frame's
 * `payload` is a view into the slab, valid until `capacity` more packets have been pushed.
 */

export interface JitterBufferOptions {
  /** RTP clock rate, Hz (8000 for G.711, 48000 for Opus). Default 8000. */
  clockRate?: number;
  /** Frame (packet) duration, ms. Default 20. */
  frameMs?: number;
  /** Smallest target depth, ms. Default 40. */
  minDepthMs?: number;
  /** Largest target depth, ms; also how long a silent stream may stay dry before re-buffering. Default 200. */
  maxDepthMs?: number;
  /** k: target depth = k × jitter. Default 3. */
  jitterFactor?: number;
  /** How long more than target + 1 frames must stay buffered before one is dropped, ms. Default 400. */
  shrinkAfterMs?: number;
  /** Slots, i.e. the reorder window in packets; must exceed 2 × maxDepthMs / frameMs. Default 32. */
  capacity?: number;
  /** Largest payload kept, bytes; larger packets are dropped and counted. Default 512. */
  maxPayloadBytes?: number;
}

export type ResolvedJitterBufferOptions = Required<JitterBufferOptions>;

export class JitterBufferOptionsError extends Error {
  override name = 'JitterBufferOptionsError';
  readonly field: keyof JitterBufferOptions;
  constructor(field: keyof JitterBufferOptions, reason: string) {
    super(`${field} ${reason}`);
    this.field = field;
  }
}

export function resolveJitterBufferOptions(options: JitterBufferOptions = {}): ResolvedJitterBufferOptions {
  const r: ResolvedJitterBufferOptions = {
    clockRate: options.clockRate ?? 8000,
    frameMs: options.frameMs ?? 20,
    minDepthMs: options.minDepthMs ?? 40,
    maxDepthMs: options.maxDepthMs ?? 200,
    jitterFactor: options.jitterFactor ?? 3,
    shrinkAfterMs: options.shrinkAfterMs ?? 400,
    capacity: options.capacity ?? 32,
    maxPayloadBytes: options.maxPayloadBytes ?? 512,
  };
  const positive = (field: keyof JitterBufferOptions): void => {
    const v = r[field];
    if (!(Number.isFinite(v) && v > 0)) throw new JitterBufferOptionsError(field, `must be a positive number (got ${v})`);
  };
  for (const f of ['clockRate', 'frameMs', 'minDepthMs', 'maxDepthMs', 'jitterFactor', 'shrinkAfterMs', 'capacity', 'maxPayloadBytes'] as const) positive(f);
  if (!Number.isInteger((r.clockRate * r.frameMs) / 1000)) {
    throw new JitterBufferOptionsError('frameMs', `must be a whole number of clock ticks at ${r.clockRate} Hz`);
  }
  if (r.minDepthMs > r.maxDepthMs) throw new JitterBufferOptionsError('minDepthMs', 'must be <= maxDepthMs');
  if (!Number.isInteger(r.capacity) || r.capacity <= (2 * r.maxDepthMs) / r.frameMs) {
    throw new JitterBufferOptionsError('capacity', `must be an integer > 2 × maxDepthMs / frameMs (${(2 * r.maxDepthMs) / r.frameMs})`);
  }
  return r;
}

export type JitterPushResult = 'ok' | 'duplicate' | 'late' | 'oversize' | 'jump';

export type JitterOutput =
  | { type: 'frame'; seq: number; timestamp: number; payload: Uint8Array }
  /**
   * Play one concealment frame for `seq`. 'loss': the packet is missing while a target depth's worth
   * of later ones arrived, and playout moves past it; 'underrun': the buffer is dry or thinner than
   * its target, so playout holds at `seq` (the buffer grows by a frame) and the packet still plays
   * if it arrives. `next` is the payload
   * of seq + 1 when buffered, for Opus FEC.
   */
  | { type: 'conceal'; reason: 'loss' | 'underrun'; seq: number; timestamp: number; next: Uint8Array | undefined }
  /** Still filling (at start or after the stream paused): play nothing or comfort noise. */
  | { type: 'wait' };

export interface JitterBufferStats {
  /** Packets accepted into the buffer. */
  received: number;
  duplicates: number;
  /** Arrived after their slot was played or concealed. */
  late: number;
  oversize: number;
  /** Packets ignored as a jump, and stream restarts accepted. */
  jumps: number;
  resets: number;
  played: number;
  /** Concealments for missing packets with later ones present. */
  lost: number;
  underruns: number;
  /** Frames dropped to shrink the buffer, or because it overflowed. */
  discarded: number;
  /** Current interarrival jitter, ms. */
  jitterMs: number;
  targetDepthMs: number;
  /** Frames buffered from the playout point to the newest packet, in ms. */
  depthMs: number;
}

/** RFC 3550 A.1: the sequence jumps treated as a restart rather than reordering. */
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;

const EMPTY = 0;
const BUFFERED = 1;
const PLAYED = 2;

const TWO_32 = 4294967296;
const wrap32 = (v: number): number => ((v % TWO_32) + TWO_32) % TWO_32;

export class JitterBuffer {
  readonly options: ResolvedJitterBufferOptions;
  readonly #frameTs: number;
  readonly #cap: number;
  readonly #maxPayload: number;
  readonly #slotSeq: Float64Array;
  readonly #slotTs: Float64Array;
  readonly #slotLen: Int32Array;
  readonly #slotState: Uint8Array;
  readonly #data: Uint8Array;

  #started = false;
  #playing = false;
  /** After a pause: the next packet re-anchors playout. */
  #rebuffer = false;
  #bufferingSinceMs = 0;
  #highest = 0;
  #next = 0;
  #lastTs32 = 0;
  #lastTsExt = 0;
  /** Extended timestamp of the last frame played or concealed. */
  #playedTs = 0;
  #havePlayedTs = false;
  #transit = 0;
  #haveTransit = false;
  /** Jitter in timestamp units. */
  #jitter = 0;
  #surplusPops = 0;
  #dryPops = 0;
  /** A sequence jump awaiting confirmation by its successor. */
  #probation = -1;

  readonly #stats = {
    received: 0, duplicates: 0, late: 0, oversize: 0, jumps: 0, resets: 0,
    played: 0, lost: 0, underruns: 0, discarded: 0,
  };

  constructor(options: JitterBufferOptions = {}) {
    const o = (this.options = resolveJitterBufferOptions(options));
    this.#frameTs = (o.clockRate * o.frameMs) / 1000;
    this.#cap = o.capacity;
    this.#maxPayload = o.maxPayloadBytes;
    this.#slotSeq = new Float64Array(o.capacity).fill(NaN);
    this.#slotTs = new Float64Array(o.capacity);
    this.#slotLen = new Int32Array(o.capacity);
    this.#slotState = new Uint8Array(o.capacity);
    this.#data = new Uint8Array(o.capacity * o.maxPayloadBytes);
  }

  #slot(ext: number): number {
    return ((ext % this.#cap) + this.#cap) % this.#cap;
  }

  #has(ext: number): boolean {
    const i = this.#slot(ext);
    return this.#slotSeq[i] === ext && this.#slotState[i] === BUFFERED;
  }

  #view(ext: number): Uint8Array {
    const i = this.#slot(ext);
    const off = i * this.#maxPayload;
    return this.#data.subarray(off, off + (this.#slotLen[i] ?? 0));
  }

  /** Target depth in whole frames. */
  #targetFrames(): number {
    const o = this.options;
    const jitterMs = (this.#jitter * 1000) / o.clockRate;
    const ms = Math.min(o.maxDepthMs, Math.max(o.minDepthMs, o.jitterFactor * jitterMs));
    return Math.ceil(ms / o.frameMs - 1e-9);
  }

  #start(ext: number, ts: number, arrivalMs: number): void {
    this.#started = true;
    this.#playing = false;
    this.#rebuffer = false;
    this.#highest = ext;
    this.#next = ext;
    this.#lastTs32 = ts >>> 0;
    this.#lastTsExt = ts >>> 0;
    this.#haveTransit = false;
    this.#bufferingSinceMs = arrivalMs;
    this.#slotSeq.fill(NaN);
    this.#slotState.fill(EMPTY);
  }

  /** Takes one packet. Returns what became of it; only 'ok' packets can be played. */
  push(seq: number, timestamp: number, payload: Uint8Array, arrivalMs: number): JitterPushResult {
    const s = this.#stats;
    if (payload.length > this.#maxPayload) {
      s.oversize++;
      return 'oversize';
    }
    seq &= 0xffff;
    let ext: number;
    if (!this.#started) {
      this.#start(seq, timestamp, arrivalMs);
      ext = seq;
    } else {
      const delta = ((seq - (this.#highest & 0xffff) + 32768) & 0xffff) - 32768;
      ext = this.#highest + delta;
      if (delta > MAX_DROPOUT || ext < this.#next - MAX_MISORDER) {
        // RFC 3550 A.1: a restarted sender, or a stray packet? Two in a row decide.
        if (this.#probation >= 0 && seq === ((this.#probation + 1) & 0xffff)) {
          s.resets++;
          this.#probation = -1;
          this.#start(seq, timestamp, arrivalMs);
          ext = seq;
        } else {
          this.#probation = seq;
          s.jumps++;
          return 'jump';
        }
      }
    }
    this.#probation = -1;

    if (this.#rebuffer && ext >= this.#next) {
      // First packet after a pause: playout restarts from it.
      this.#rebuffer = false;
      this.#next = ext;
      this.#bufferingSinceMs = arrivalMs;
    }
    const slot = this.#slot(ext);
    if (this.#slotSeq[slot] === ext) {
      s.duplicates++;
      return 'duplicate';
    }

    // Timestamps extended past 2^32 by the signed 32-bit difference to the previous arrival's.
    const tsExt = this.#lastTsExt + ((timestamp - this.#lastTs32) | 0);
    this.#lastTs32 = timestamp >>> 0;
    this.#lastTsExt = tsExt;
    // RFC 3550 §6.4.1, in timestamp units. Late packets count: they are the jitter.
    const transit = (arrivalMs * this.options.clockRate) / 1000 - tsExt;
    if (this.#haveTransit) this.#jitter += (Math.abs(transit - this.#transit) - this.#jitter) / 16;
    this.#transit = transit;
    this.#haveTransit = true;

    if (ext < this.#next) {
      if (!this.#playing && !this.#rebuffer && this.#highest - ext < this.#cap) {
        this.#next = ext; // reordered before the first packet played: back-fill
      } else {
        s.late++;
        return 'late';
      }
    }
    if (ext - this.#next >= this.#cap) {
      // Too far ahead of the playout point: drop the oldest frames to make room.
      const newNext = ext - this.#cap + 1;
      for (let e = this.#next; e < newNext && e < this.#next + this.#cap; e++) {
        if (this.#has(e)) {
          this.#slotState[this.#slot(e)] = PLAYED;
          s.discarded++;
        }
      }
      this.#next = newNext;
    }


    this.#slotSeq[slot] = ext;
    this.#slotTs[slot] = tsExt;
    this.#slotLen[slot] = payload.length;
    this.#slotState[slot] = BUFFERED;
    this.#data.set(payload, slot * this.#maxPayload);
    if (ext > this.#highest) this.#highest = ext;
    s.received++;

    return 'ok';
  }

  /** The frame due now, or what to play instead. Call once per frame interval. */
  pop(nowMs: number): JitterOutput {
    if (!this.#started || this.#rebuffer) return { type: 'wait' };
    const o = this.options;
    const s = this.#stats;
    const target = this.#targetFrames();
    if (!this.#playing) {
      const span = this.#highest - this.#next + 1;
      if (span < target && nowMs - this.#bufferingSinceMs < target * o.frameMs) return { type: 'wait' };
      this.#playing = true;
      this.#surplusPops = 0;
      this.#dryPops = 0;
    }

    if (this.#has(this.#next)) {
      const span = this.#highest - this.#next + 1;
      const maxFrames = Math.ceil(o.maxDepthMs / o.frameMs);
      this.#surplusPops = span > target + 1 ? this.#surplusPops + 1 : 0;
      if ((this.#surplusPops * o.frameMs >= o.shrinkAfterMs || span > maxFrames + 1) && this.#has(this.#next + 1)) {
        this.#slotState[this.#slot(this.#next)] = PLAYED;
        this.#next++;
        this.#surplusPops = 0;
        s.discarded++;
      }
      const ext = this.#next;
      const slot = this.#slot(ext);
      this.#slotState[slot] = PLAYED;
      this.#next++;
      this.#dryPops = 0;
      s.played++;
      const ts = this.#slotTs[slot] ?? 0;
      this.#playedTs = ts;
      this.#havePlayedTs = true;
      return { type: 'frame', seq: ext & 0xffff, timestamp: wrap32(ts), payload: this.#view(ext) };
    }

    const ext = this.#next;
    const timestamp = wrap32(this.#havePlayedTs ? this.#playedTs + this.#frameTs : this.#lastTsExt);
    const span = this.#highest - ext + 1;
    if (span > 1 && span >= target) {
      // Missing while a full target's worth of later packets is here: it is lost (or later than
      // the buffer is deep). With fewer, it is more likely late than lost: hold instead (below).
      this.#next++;
      this.#dryPops = 0;
      this.#playedTs = this.#havePlayedTs ? this.#playedTs + this.#frameTs : this.#lastTsExt;
      this.#havePlayedTs = true;
      s.lost++;
      const next = this.#has(ext + 1) ? this.#view(ext + 1) : undefined;
      return { type: 'conceal', reason: 'loss', seq: ext & 0xffff, timestamp, next };
    }

    // Underrun: hold the playout point (the buffer grows by one frame) unless the stream has paused.
    s.underruns++;
    if (span <= 1) this.#dryPops++;
    if (this.#dryPops * o.frameMs > o.maxDepthMs) {
      this.#playing = false;
      this.#rebuffer = true;
      return { type: 'wait' };
    }
    return { type: 'conceal', reason: 'underrun', seq: ext & 0xffff, timestamp, next: undefined };
  }

  get stats(): JitterBufferStats {
    const o = this.options;
    const span = this.#started ? Math.max(0, this.#highest - this.#next + 1) : 0;
    return {
      ...this.#stats,
      jitterMs: (this.#jitter * 1000) / o.clockRate,
      targetDepthMs: this.#targetFrames() * o.frameMs,
      depthMs: span * o.frameMs,
    };
  }

  /** State for debugging (werift's dump): never on the hot path. */
  dump(): Record<string, unknown> {
    const buffered: number[] = [];
    for (let e = this.#next; e <= this.#highest && e < this.#next + this.#cap; e++) if (this.#has(e)) buffered.push(e & 0xffff);
    return {
      started: this.#started,
      playing: this.#playing,
      rebuffer: this.#rebuffer,
      next: this.#next & 0xffff,
      highest: this.#highest & 0xffff,
      buffered,
      stats: this.stats,
    };
  }
}
