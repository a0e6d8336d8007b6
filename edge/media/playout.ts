/**
 * The bot → caller playout queue: bot audio arrives in bursts (TTS sends seconds in milliseconds)
 * and leaves at exactly one frame per tick. Bounded: past `capacity` samples the OLDEST audio is
 * dropped and counted, so a runaway bot costs a fixed amount of memory. Marks sit at sample
 * positions and are reported when playout passes them; `clear()` (barge-in) drops all audio and
 * returns the pending marks.
 *
 * Live-stream trim: a bot that streams in real time (speech-to-speech, echo) delivers one frame per
 * tick with jitter. Whenever two frames land in one tick the queue grows by a frame, and nothing
 * ever shrinks it again (an underflow inserts silence, which also delays what follows): latency
 * ratchets up over a call. So when the queue has held at least one whole frame after every read
 * for a window (`trimWindow` reads) while never exceeding a few frames (so it is a standing
 * cushion, not a TTS burst being played out), one frame is dropped (counted in `trimmedSamples`).
 * A burst of seconds is never trimmed: its depth is far above the bound. In `silence` mode the
 * frame dropped is the next silent one to reach the head while the cushion still stands (a gap
 * between words or sentences is 20 ms shorter, no speech is lost); `any` drops the next frame,
 * whatever it holds.
 *
 * Pure: no timers, no I/O. One ring of Int16 per call, grown on demand up to `capacity`.
 */
/** The deepest standing queue (in frames) the trim treats as jitter rather than a burst. */
const MAX_CUSHION_FRAMES = 4;
/** A frame whose every sample is within ±this (−54 dBFS) is silence the silence trim may drop. */
const SILENCE_PEAK = 64;

/** Which frame of a standing cushion the trim drops: the next one, or the next silent one. */
export type TrimMode = 'any' | 'silence';
/** A route's `playoutTrim`: a trim mode, or none. */
export type PlayoutTrim = 'off' | TrimMode;

/**
 * The buffer's state, in words of a Float64Array (`PLAY`): positions, the next mark, the trim's
 * window and its settings. In an array so the G.711 lanes (rx-lane.ts) can queue a call's bot
 * frames and play its frames out too; otherwise the buffer's own.
 */
export const PLAY = {
  /** The absolute sample index of the next sample to play. */
  read: 0,
  /** One past the last queued sample. */
  write: 1,
  /** Where the oldest pending mark sits (Infinity: none). */
  nextMark: 2,
  winReads: 3,
  winMin: 4,
  winMax: 5,
  /** 1: silence mode saw a cushion stand for a window; the next silent frame at the head goes. */
  trimDue: 6,
  /** Samples dropped by the live-stream trim. */
  trimmed: 7,
  /** Reads per trim window (0: no trim). */
  trimWindow: 8,
  /** 0 any, 1 silence. */
  trimMode: 9,
} as const;
export const PLAY_WORDS = 10;

export class PlayoutBuffer {
  /**
   * Grows on demand from `initial` (callers start at 200 ms) up to `capacity`: most calls never queue more than a second or
   * two, and a 30 s ring allocated up front is 480 kB per call (the benchmark's rss_kb_per_call).
   */
  #ring: Int16Array;
  readonly #s: Float64Array;
  /** Called with the new ring when the buffer grows (the receive lane writes into the ring). */
  onRing: ((ring: Int16Array) => void) | undefined;
  #marks: { name: string; at: number }[] = [];
  /** Samples dropped because the buffer was full. */
  overflowSamples = 0;

  constructor(
    readonly capacity: number,
    initial = 8000,
    /** Reads per trim window (50: one second of 20 ms reads); 0, the default, turns the trim off. */
    readonly trimWindow = 0,
    readonly trimMode: TrimMode = 'any',
    /** Where to keep the state (PLAY_WORDS words, set here), when something else shares it. */
    state: Float64Array = new Float64Array(PLAY_WORDS),
  ) {
    this.#ring = new Int16Array(Math.min(capacity, initial));
    this.#s = state;
    state.fill(0);
    state[PLAY.nextMark] = Infinity;
    state[PLAY.winMin] = Infinity;
    state[PLAY.trimWindow] = trimWindow;
    state[PLAY.trimMode] = trimMode === 'silence' ? 1 : 0;
  }

  /** The ring itself (the receive lane writes into it; it changes when the buffer grows). */
  get ring(): Int16Array {
    return this.#ring;
  }

  get #read(): number {
    return this.#s[PLAY.read]!;
  }

  set #read(v: number) {
    this.#s[PLAY.read] = v;
  }

  get #write(): number {
    return this.#s[PLAY.write]!;
  }

  set #write(v: number) {
    this.#s[PLAY.write] = v;
  }

  /** Samples dropped by the live-stream trim. */
  get trimmedSamples(): number {
    return this.#s[PLAY.trimmed]!;
  }

  /** Samples of ring memory held now (≤ capacity). */
  get allocated(): number {
    return this.#ring.length;
  }

  #grow(need: number): void {
    let size = this.#ring.length;
    while (size < need && size < this.capacity) size = Math.min(this.capacity, size * 2);
    if (size === this.#ring.length) return;
    const old = this.#ring;
    const ring = new Int16Array(size);
    // Positions are absolute sample indices modulo the ring size: re-place what is queued.
    for (let i = this.#read; i < this.#write; i++) ring[i % size] = old[i % old.length]!;
    this.#ring = ring;
    this.onRing?.(ring);
  }

  get buffered(): number {
    return this.#write - this.#read;
  }

  /** Queues PCM samples (copied). */
  push(samples: Int16Array): void {
    if (this.buffered + samples.length > this.#ring.length) this.#grow(this.buffered + samples.length);
    const cap = this.#ring.length;
    let src = samples;
    if (src.length > cap) {
      this.overflowSamples += src.length - cap;
      src = src.subarray(src.length - cap);
    }
    const overflow = this.buffered + src.length - cap;
    if (overflow > 0) {
      this.#read += overflow;
      this.overflowSamples += overflow;
    }
    const pos = this.#write % cap;
    const first = Math.min(src.length, cap - pos);
    this.#ring.set(src.subarray(0, first), pos);
    if (first < src.length) this.#ring.set(src.subarray(first), 0);
    this.#write += src.length;
  }

  /** Places a mark after the audio queued so far. */
  mark(name: string): void {
    this.#marks.push({ name, at: this.#write });
    if (this.#marks.length === 1) this.#s[PLAY.nextMark] = this.#write;
  }

  #marksChanged(): void {
    this.#s[PLAY.nextMark] = this.#marks.length > 0 ? this.#marks[0]!.at : Infinity;
  }

  /**
   * Fills `out` with the next samples; zero-fills what is missing. Returns how many real samples
   * were written (0 = silence). Reached marks are passed to `onMark` in order.
   */
  read(out: Int16Array, onMark: (name: string) => void): number {
    const cap = this.#ring.length;
    const n = Math.min(out.length, this.buffered);
    const pos = this.#read % cap;
    const first = Math.min(n, cap - pos);
    // Element loops, not set(subarray): a view per read was garbage on every JavaScript tick.
    const ring = this.#ring;
    for (let i = 0; i < first; i++) out[i] = ring[pos + i]!;
    for (let i = first; i < n; i++) out[i] = ring[i - first]!;
    if (n < out.length) out.fill(0, n);
    this.#read += n;
    if (this.trimWindow > 0) this.#trim(out.length);
    if (this.#s[PLAY.nextMark]! <= this.#read) {
      while (this.#marks.length > 0 && this.#marks[0]!.at <= this.#read) onMark(this.#marks.shift()!.name);
      this.#marksChanged();
    }
    return n;
  }

  /**
   * The live-stream trim (see the class comment); `frame` is the samples one read takes. (Twin:
   * native/rx_lane.cc Trim, which plays a G.711 call's plain frames out on the same words.)
   */
  #trim(frame: number): void {
    const s = this.#s;
    const left = this.buffered;
    if (left < s[PLAY.winMin]!) s[PLAY.winMin] = left;
    if (left > s[PLAY.winMax]!) s[PLAY.winMax] = left;
    if (++s[PLAY.winReads]! >= this.trimWindow) {
      if (s[PLAY.winMin]! >= frame && s[PLAY.winMax]! <= frame * MAX_CUSHION_FRAMES) {
        if (this.trimMode === 'any') this.#drop(frame);
        else s[PLAY.trimDue] = 1;
      }
      this.#resetWindow();
    }
    if (s[PLAY.trimDue] === 0) return;
    // Silence mode: drop the first silent frame at the head while the cushion stands; once it is
    // gone (or has become a burst) there is nothing standing to trim.
    if (left < frame || left > frame * MAX_CUSHION_FRAMES) s[PLAY.trimDue] = 0;
    else if (this.#headIsSilent(frame)) this.#drop(frame);
  }

  #resetWindow(): void {
    const s = this.#s;
    s[PLAY.winReads] = 0;
    s[PLAY.winMin] = Infinity;
    s[PLAY.winMax] = 0;
  }

  #drop(frame: number): void {
    // Marks inside the dropped audio are passed (reported by the caller's loop), as if played.
    this.#read += frame;
    this.#s[PLAY.trimmed] = this.#s[PLAY.trimmed]! + frame;
    this.#s[PLAY.trimDue] = 0;
  }

  /** Whether the next `frame` queued samples are all silence. */
  #headIsSilent(frame: number): boolean {
    const ring = this.#ring;
    const cap = ring.length;
    for (let i = this.#read, end = this.#read + frame; i < end; i++) {
      const v = ring[i % cap]!;
      if (v > SILENCE_PEAK || v < -SILENCE_PEAK) return false;
    }
    return true;
  }

  /** Forgets pending marks without reporting them (jambonz `clearMarks`); the audio stays. */
  clearMarks(): void {
    this.#marks = [];
    this.#marksChanged();
  }

  /** Barge-in: drops all queued audio; returns the names of marks that will now never play. */
  clear(): string[] {
    this.#read = this.#write;
    this.#s[PLAY.trimDue] = 0;
    this.#resetWindow();
    const names = this.#marks.map((m) => m.name);
    this.#marks = [];
    this.#marksChanged();
    return names;
  }
}

/** A call's playout queue with the route's trim: one second of 20 ms reads per trim window. */
export function newPlayout(capacity: number, initial: number, trim: PlayoutTrim = 'off', state?: Float64Array): PlayoutBuffer {
  return trim === 'off' ? new PlayoutBuffer(capacity, initial, 0, 'any', state) : new PlayoutBuffer(capacity, initial, 50, trim, state);
}
