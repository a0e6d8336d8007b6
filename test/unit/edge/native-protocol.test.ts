import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBotText } from '../../../edge/bot/native-protocol.js';

describe('native bot protocol: parsing what the bot sends', () => {
  it('accepts mark, clear and hangup', () => {
    assert.deepEqual(parseBotText('{"type":"mark","name":"m1"}'), { ok: true, msg: { type: 'mark', name: 'm1' } });
    assert.deepEqual(parseBotText('{"type":"clear"}'), { ok: true, msg: { type: 'clear' } });
    assert.deepEqual(parseBotText('{"type":"hangup","reason":"bye"}'), { ok: true, msg: { type: 'hangup', reason: 'bye' } });
  });

  it('rejects non-JSON with a reason that says so', () => {
    const r = parseBotText('hello');
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /not JSON/);
  });

  it('rejects an unknown type and a missing field, naming the field', () => {
    const unknown = parseBotText('{"type":"dance"}');
    assert.equal(unknown.ok, false);
    assert.match(!unknown.ok ? unknown.reason : '', /^invalid control message: type/);
    const noName = parseBotText('{"type":"mark"}');
    assert.equal(noName.ok, false);
    assert.match(!noName.ok ? noName.reason : '', /name/);
  });
});
