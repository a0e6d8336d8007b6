/**
 * A preload for any process of a bench run that records when its event loop stalled and when it
 * collected garbage, on the machine-wide monotonic clock (edge/media/mono-clock.ts), so the
 * stalls of the node, the generator and the bot can be lined up with each other and with the
 * window (details.json `steps[].window_mono_ms`) and its `latency_slices`:
 *
 *   npm run bench -- … --node-flags="<the node's flags> --import=./dist/bench/stall-trace.js" \
 *     --bot-flags="--import=./dist/bench/stall-trace.js" --loadgen-flags="--import=./dist/bench/stall-trace.js"
 *
 * Each process appends lines to `$BOTEDGE_STALL_TRACE_DIR/<script>-<pid>.txt` (default the
 * current directory), once a second:
 *
 *   stall <mono ms when the loop was last seen> <ms it was away>   (a 5 ms timer ran > 15 ms late)
 *   gc <mono ms at its start> <ms> <kind>                          (perf_hooks' GC entries)
 *
 * A diagnostic, not a measurement: the 5 ms timer costs the process a few hundred wake-ups a
 * second, so runs traced are not compared with runs that are not.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { monoMs } from './clock.js';

const CHECK_MS = 5;
/** Later than this, the loop is counted as having stalled. */
const STALL_MS = 15;

const offsetMs = monoMs() - performance.now();
const script = (process.argv[1] ?? 'node').split('/').pop();
const file = join(process.env['BOTEDGE_STALL_TRACE_DIR'] ?? '.', `${script}-${process.pid}.txt`);
const lines: string[] = [];

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
    lines.push(`gc ${(e.startTime + offsetMs).toFixed(1)} ${e.duration.toFixed(2)} ${kind}`);
  }
}).observe({ entryTypes: ['gc'] });

let last = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - last > STALL_MS) lines.push(`stall ${(last + offsetMs).toFixed(1)} ${(now - last).toFixed(1)}`);
  last = now;
}, CHECK_MS).unref();

setInterval(() => {
  if (lines.length === 0) return;
  appendFileSync(file, `${lines.join('\n')}\n`);
  lines.length = 0;
}, 1000).unref();
