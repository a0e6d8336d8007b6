// DtmfSender lives in edge/media; its test sits with the bot tests that drive it (sendDtmf).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DtmfSender, type DtmfStep } from '../../../../edge/media/dtmf-sender.js';

function drain(s: DtmfSender): DtmfStep[] {
  const out: DtmfStep[] = [];
  for (let st = s.next(); st; st = s.next()) out.push(st);
  return out;
}

describe('RFC 4733 DTMF sender', () => {
  it('sends a 100 ms digit as 4 growing packets, then 3 end packets, then a 60 ms gap', () => {
    const s = new DtmfSender(60);
    assert.equal(s.enqueue('5', 100), 1);
    const steps = drain(s);
    const ev = steps.filter((x) => x.kind === 'event');
    assert.deepEqual(ev.map((x) => (x.kind === 'event' ? [x.event, x.end, x.durationUnits, x.marker] : [])), [
      [5, false, 160, true],
      [5, false, 320, false],
      [5, false, 480, false],
      [5, false, 640, false],
      [5, true, 800, false],
      [5, true, 800, false],
      [5, true, 800, false],
    ]);
    assert.equal(steps.slice(ev.length).filter((x) => x.kind === 'gap').length, 3);
    assert.equal(s.active, false);
  });

  it('sends digits in order, skipping what is not a digit; * # and A-D map to events 10-15', () => {
    const s = new DtmfSender(0);
    assert.equal(s.enqueue('*x#D', 40), 3);
    const starts = drain(s).filter((x) => x.kind === 'event' && x.startsEvent).map((x) => (x.kind === 'event' ? x.event : -1));
    assert.deepEqual(starts, [10, 11, 15]);
  });
});
