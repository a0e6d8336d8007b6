/**
 * Our own bounded queue in front of `ws.send`, for frames to a bot that reads too slowly.
 *
 * Why not just `ws.send`: once a frame is handed to `ws` it sits in the socket's write buffer and
 * cannot be taken back, so "drop the oldest" is impossible there. So the socket gets frames only
 * while its `bufferedAmount` is under a bound; the rest wait here, where the oldest caller audio is
 * dropped (and counted) once `maxAudio` frames wait. Events (marks, DTMF, stop) are never dropped
 * while audio can go instead; past `maxEvents` the oldest event goes too, so memory stays bounded
 * whatever the bot does. Items are encoded only when sent, so protocol counters (Twilio's
 * sequenceNumber) have no gaps. Pure: no socket, no timer.
 */
export type QueueItem<A, E> = { kind: 'audio'; audio: A } | { kind: 'event'; event: E };

export class SendQueue<A, E> {
  #items: QueueItem<A, E>[] = [];
  #audio = 0;
  /** Audio frames dropped because `maxAudio` were already waiting. */
  audioDropped = 0;
  eventsDropped = 0;

  constructor(
    readonly maxAudio: number,
    readonly maxEvents = 1000,
  ) {}

  get length(): number {
    return this.#items.length;
  }

  pushAudio(audio: A): void {
    if (this.#audio >= this.maxAudio) {
      const i = this.#items.findIndex((it) => it.kind === 'audio');
      this.#items.splice(i, 1);
      this.#audio--;
      this.audioDropped++;
    }
    this.#items.push({ kind: 'audio', audio });
    this.#audio++;
  }

  pushEvent(event: E): void {
    if (this.#items.length - this.#audio >= this.maxEvents) {
      const i = this.#items.findIndex((it) => it.kind === 'event');
      this.#items.splice(i, 1);
      this.eventsDropped++;
    }
    this.#items.push({ kind: 'event', event });
  }

  shift(): QueueItem<A, E> | undefined {
    const it = this.#items.shift();
    if (it?.kind === 'audio') this.#audio--;
    return it;
  }
}
