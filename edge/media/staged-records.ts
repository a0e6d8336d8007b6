/**
 * Packets laid out as native/rtp_io.cc's staged records, for one `stageRecords` (sent at the beat's
 * due time) or `sendRecords` (sent at once) instead of an N-API call per packet: a sender of many
 * streams (the bench's load generator) or a test hands over a batch this way. The receive lane lays
 * out its own in C++ (rx_lane.cc) in the same format.
 */

/** A record's header: slot u32, ip u32, port u16, length u16, little-endian; then the packet, padded to 4 bytes. */
export const STAGED_HEADER = 12;

/** A reusable batch: add packets, hand `bytes` (valid until the next add) to the engine, clear. */
export class StagedRecords {
  #bytes = new Uint8Array(64 * 1024);
  #view = new DataView(this.#bytes.buffer);
  /** Bytes laid out so far. */
  length = 0;
  /** Records laid out so far. */
  count = 0;

  /** The batch so far: `bytes.subarray(0, length)` is what the engine takes. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Appends `packet[0, len)` for socket slot `slot`, to ip:port; grows the buffer when it must. */
  add(slot: number, packet: Uint8Array, len: number, ip: number, port: number): void {
    const at = this.length;
    const size = STAGED_HEADER + ((len + 3) & ~3);
    if (at + size > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(this.#bytes.length * 2, at + size));
      grown.set(this.#bytes.subarray(0, at));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    const view = this.#view;
    view.setUint32(at, slot, true);
    view.setUint32(at + 4, ip, true);
    view.setUint16(at + 8, port, true);
    view.setUint16(at + 10, len, true);
    this.#bytes.set(len === packet.length ? packet : packet.subarray(0, len), at + STAGED_HEADER);
    this.length = at + size;
    this.count++;
  }

  clear(): void {
    this.length = 0;
    this.count = 0;
  }
}
