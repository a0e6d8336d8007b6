/**
 * The real Opus task, except that a frame whose payload starts with DE AD BE EF kills the worker
 * (process.exit in a worker thread ends that thread), as a WASM abort or an out-of-memory would.
 */
import { REQUEST_ITEM_INTS, type TickRequest, type TickResponse } from '../../../workers/opus-protocol.js';
import opusTick from '../../../workers/opus-task.js';

export default function crashingOpusTick(req: TickRequest): TickResponse {
  const head = new Int32Array(req.buf, 0, req.count * REQUEST_ITEM_INTS);
  const bytes = new Uint8Array(req.buf);
  for (let i = 0; i < req.count; i++) {
    const at = head[i * REQUEST_ITEM_INTS + 2]!;
    const len = head[i * REQUEST_ITEM_INTS + 3]!;
    if (len >= 4 && bytes[at] === 0xde && bytes[at + 1] === 0xad && bytes[at + 2] === 0xbe && bytes[at + 3] === 0xef) process.exit(1);
  }
  return opusTick(req);
}
