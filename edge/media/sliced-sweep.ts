/**
 * Visits a live collection a slice at a time, round robin. The media node's once-a-second pass over
 * its calls (each call's RTCP report and `qos` sample, when due) was one block of work: at 1,000
 * calls, 9–23 ms of the event loop every second (a CPU profile of the capacity benchmark), long
 * enough to make a tick's bot frames miss their slot. Cut into slices of a few calls each, spread
 * over the second, the same work never holds the loop for more than a fraction of a millisecond.
 *
 * Pure: no timers. Each `visit` continues where the last one stopped, so every item is visited once
 * per lap, whatever the slice size. The collection is read live through `items` (a Map's `values()`
 * iterator sees deletions and additions made between slices); a lap that ends inside a slice ends
 * the slice, and the next slice starts the next lap.
 */
export class SlicedSweep<T> {
  #it: Iterator<T> | undefined;

  constructor(private readonly items: () => Iterable<T>) {}

  /** Calls `fn` for up to `count` items, continuing the current lap. Returns how many it visited. */
  visit(count: number, fn: (item: T) => void): number {
    let visited = 0;
    while (visited < count) {
      this.#it ??= this.items()[Symbol.iterator]();
      const r = this.#it.next();
      if (r.done === true) {
        this.#it = undefined;
        break;
      }
      visited++;
      fn(r.value);
    }
    return visited;
  }
}

/** Items per slice so that `size` items are visited once per `lapMs`, with a slice every `sliceMs`. */
export function sliceSize(size: number, sliceMs: number, lapMs: number): number {
  return Math.ceil((size * sliceMs) / lapMs);
}
