import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const preload = join(dirname(fileURLToPath(import.meta.url)), '../../../bench/stall-trace.js');

describe('bench stall trace (--import preload)', () => {
  it('records a blocked event loop as one stall, on the machine-wide clock, and the GCs', { timeout: 20000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'stall-trace-'));
    try {
      // A process that allocates (GCs), then blocks its loop for 80 ms, then lives past a flush.
      const script = `
        const junk = []; for (let i = 0; i < 200000; i++) junk.push({ i }); junk.length = 0;
        setTimeout(() => {
          process.stdout.write(String(Number(process.hrtime.bigint() / 1000n) / 1000));
          const s = performance.now(); while (performance.now() - s < 80) {}
        }, 100);
        setTimeout(() => {}, 1600);`;
      const before = Number(process.hrtime.bigint() / 1000n) / 1000;
      // When the block began, on the machine-wide clock (the child prints it).
      const blockAt = Number(execFileSync(process.execPath, [`--import=${preload}`, '-e', script], { env: { ...process.env, BOTEDGE_STALL_TRACE_DIR: dir }, encoding: 'utf8' }));
      const after = Number(process.hrtime.bigint() / 1000n) / 1000;
      const files = readdirSync(dir);
      assert.equal(files.length, 1, `one file per process: ${files.join(', ')}`);
      const lines = readFileSync(join(dir, files[0]!), 'utf8').trim().split('\n');
      const stalls = lines.filter((l) => l.startsWith('stall ')).map((l) => l.split(' ').map(Number));
      // The block is one stall, stamped where the loop's timer was due during it. (A loaded
      // machine may stall the child elsewhere too, e.g. while it starts: those are not asserted.)
      const block = stalls.filter(([, at, ms]) => ms! >= 70 && at! > blockAt - 100 && at! < blockAt + 80);
      assert.equal(block.length, 1, `one stall of the 80 ms block from ${blockAt}: ${lines.join(' | ')}`);
      const [, at, ms] = block[0]!;
      assert.ok(ms! < 200, `${ms} ms`);
      assert.ok(blockAt > before && blockAt < after && at! > before && at! < after, 'stamped on the machine-wide monotonic clock, inside the run');
      assert.ok(lines.some((l) => /^gc [\d.]+ [\d.]+ \d+$/.test(l)), 'GC lines');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
