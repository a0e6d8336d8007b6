/**
 * A preload that samples what a process allocates into its old generation: objects that outlive
 * the young generation (promoted, or allocated there by pretenuring) and die there, plus what is
 * still live at the end. That garbage is what grows the heap between major GCs, and with it the
 * resident memory a run reads at its window's end (docs/benchmarks/capacity.md, "Measured:
 * catch-up in the lane"):
 *
 *   BOTEDGE_OLD_SPACE_SAMPLE="30:10" npm run bench -- … \
 *     --node-flags="<the node's flags> --import=./dist/bench/old-space-sample.js"
 *
 * `start:seconds` (default 30:10): from `start` s after the process starts, V8's sampling heap
 * profiler runs for `seconds` s with objects collected by major GCs kept and those collected by
 * scavenges left out; a full GC ends it, and the profile (Chrome DevTools' .heapprofile) goes to
 * `$BOTEDGE_OLD_SPACE_SAMPLE_DIR/<script>-<pid>.heapprofile` (default the current directory).
 * A diagnostic, not a measurement: the sampling and the closing GC cost the process time.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

const [startS, forS] = (process.env['BOTEDGE_OLD_SPACE_SAMPLE'] ?? '30:10').split(':').map(Number);
const script = (process.argv[1] ?? 'node').split('/').pop();
const file = join(process.env['BOTEDGE_OLD_SPACE_SAMPLE_DIR'] ?? '.', `${script}-${process.pid}.heapprofile`);

const session = new Session();
session.connect();

async function sample(): Promise<void> {
  await session.post('HeapProfiler.enable');
  // One sample per 16 kB allocated, on average: fine enough for sites of a few kB a second.
  await session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  await new Promise((resolve) => setTimeout(resolve, (forS ?? 10) * 1000).unref());
  // Whatever reached the old generation and died meanwhile is collected, so it is in the profile.
  await session.post('HeapProfiler.collectGarbage');
  const { profile } = await session.post('HeapProfiler.stopSampling');
  writeFileSync(file, JSON.stringify(profile));
}

setTimeout(() => void sample().catch((err: unknown) => process.stderr.write(`old-space-sample: ${String(err)}\n`)), (startS ?? 30) * 1000).unref();
