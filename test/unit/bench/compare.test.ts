import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { compareRuns } from '../../../bench/compare.js';
import type { BenchResult } from '../../../bench/run.js';

function result(over: Partial<BenchResult>, scenario: string): BenchResult {
  return {
    scenario,
    cores: 2,
    node_version: 'v20',
    calls_target: 200,
    calls_established: 200,
    calls_failed: 0,
    window_s: 20,
    media_node_flags: [],
    loadgen_rtp_io: 'native',
    loadgen_sockets: 'shared',
    loadgen_pacing: 'io',
    cpu_us_per_call_second: 2000,
    rss_kb_per_call: 150,
    loss_caller_to_bot: 0,
    loss_bot_to_caller: 0,
    latency_ms: { caller_to_bot: { p50: 1, p99: 5, max: 9 }, bot_to_caller: { p50: 15, p99: 30, max: 40 } },
    setup_ms: { p50: 3, p99: 9 },
    cps: 50,
    loadgen_cpu_us_per_call_second: 700,
    bot_rate_hz: 16000,
    event_loop_delay_ms: { p50: 0.1, p99: 2, max: 10 },
    ...over,
  };
}

describe('compareRuns', () => {
  it('puts each figure of the two runs side by side with the fallback / native ratio', () => {
    const c = compareRuns({
      native: result({}, 'fixed:media-direct:pcmu-20ms:native-echo-l16@16k:talk3000-pause600:rtp-native'),
      fallback: result({ cpu_us_per_call_second: 2500, rss_kb_per_call: 300, event_loop_delay_ms: { p50: 0.1, p99: 3, max: 12 } }, 'x:rtp-dgram'),
      kind: 'dgram',
    });
    assert.equal(c.scenario, 'fixed:media-direct:pcmu-20ms:native-echo-l16@16k:talk3000-pause600');
    assert.equal(c.calls, 200);
    assert.equal(c.fallback, 'dgram');
    assert.deepEqual(c.figures['cpu_us_per_call_second'], { native: 2000, fallback: 2500, fallback_over_native: 1.25 });
    assert.deepEqual(c.figures['rss_kb_per_call'], { native: 150, fallback: 300, fallback_over_native: 2 });
    assert.deepEqual(c.figures['event_loop_delay_p99_ms'], { native: 2, fallback: 3, fallback_over_native: 1.5 });
    // A zero on the native side has no ratio rather than Infinity.
    assert.deepEqual(c.figures['loss_bot_to_caller'], { native: 0, fallback: 0, fallback_over_native: null });
  });
});
