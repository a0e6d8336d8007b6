/**
 * The bot → caller playout queue: bot audio arrives in bursts (TTS sends seconds in milliseconds)
 * and leaves at exactly one frame per tick. Bounded: past `capacity` samples the OLDEST audio is
 * dropped and counted, so a runaway bot costs a fixed amount of memory. Marks sit at sample
 * positions and are reported when playout passes them; `clear()` (barge-in) drops all audio and
 * returns the pending marks.
 *
 * Pure: no timers, no I/O. One preallocated ring of Int16 per call.
 */
export class PlayoutBuffer {
  readonly #ring: Int16Array;
  #read = 0; // absolute sample index of the next sample to play
  #write = 0; // absolute sample index one past the last queued sample
  #marks: { name: string; at: number }[] = [];
  /** Samples dropped because the buffer was full. */
  overflowSamples = 0;

  constructor(readonly capacity: number) {
    this.#ring = new Int16Array(capacity);
  }

  get buffered(): number {
    return this.#write - this.#read;
  }

  /** Queues PCM samples (copied). */
  push(samples: Int16Array): void {
    const cap = this.capacity;
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
  }

  /**
   * Fills `out` with the next samples; zero-fills what is missing. Returns how many real samples
   * were written (0 = silence). Reached marks are passed to `onMark` in order.
   */
  read(out: Int16Array, onMark: (name: string) => void): number {
    const cap = this.capacity;
    const n = Math.min(out.length, this.buffered);
    const pos = this.#read % cap;
    const first = Math.min(n, cap - pos);
    out.set(this.#ring.subarray(pos, pos + first), 0);
    if (first < n) out.set(this.#ring.subarray(0, n - first), first);
    if (n < out.length) out.fill(0, n);
    this.#read += n;
    while (this.#marks.length > 0 && this.#marks[0]!.at <= this.#read) onMark(this.#marks.shift()!.name);
    return n;
  }

  /** Forgets pending marks without reporting them (jambonz `clearMarks`); the audio stays. */
  clearMarks(): void {
    this.#marks = [];
  }

  /** Barge-in: drops all queued audio; returns the names of marks that will now never play. */
  clear(): string[] {
    this.#read = this.#write;
    const names = this.#marks.map((m) => m.name);
    this.#marks = [];
    return names;
  }
}
