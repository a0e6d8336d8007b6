import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const preload = join(dirname(fileURLToPath(import.meta.url)), '../../../bench/old-space-sample.js');

interface ProfileNode {
  callFrame: { functionName: string };
  selfSize: number;
  children?: ProfileNode[];
}

/** Bytes sampled per function (self), over the whole tree. */
function bySite(node: ProfileNode, into = new Map<string, number>()): Map<string, number> {
  const name = node.callFrame.functionName;
  into.set(name, (into.get(name) ?? 0) + node.selfSize);
  for (const c of node.children ?? []) bySite(c, into);
  return into;
}

describe('bench old-space sample (--import preload)', () => {
  it('samples what outlives the young generation and dies later, not what dies young', { timeout: 30000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'old-space-'));
    try {
      // keepAWhile: objects held for a second (promoted, then garbage); dieYoung: as many bytes
      // of objects dropped at once.
      const script = `
        let held = [];
        function keepAWhile() { for (let i = 0; i < 2000; i++) held.push({ a: i, b: [i, i, i, i] }); }
        function dieYoung() { let x; for (let i = 0; i < 2000; i++) x = { a: i, b: [i, i, i, i] }; return x; }
        const t = setInterval(() => { keepAWhile(); dieYoung(); }, 5);
        setInterval(() => { held = []; }, 1000);
        setTimeout(() => process.exit(0), 3500);`;
      execFileSync(process.execPath, ['--max-semi-space-size=1', `--import=${preload}`, '-e', script], {
        env: { ...process.env, BOTEDGE_OLD_SPACE_SAMPLE: '0.2:2.5', BOTEDGE_OLD_SPACE_SAMPLE_DIR: dir },
      });
      const files = readdirSync(dir);
      assert.equal(files.length, 1, `one profile per process: ${files.join(', ')}`);
      const profile = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as { head: ProfileNode };
      const sites = bySite(profile.head);
      const kept = sites.get('keepAWhile') ?? 0;
      const young = sites.get('dieYoung') ?? 0;
      assert.ok(kept > 100_000, `keepAWhile's objects reached the old generation: ${kept} bytes sampled`);
      assert.ok(young < kept / 10, `dieYoung's did not: ${young} bytes sampled against ${kept}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
