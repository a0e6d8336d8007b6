import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { signConnect, verifyConnect } from '../../../../edge/bot/signing.js';

const secret = 'a-very-long-shared-secret';
const url = 'wss://bot.example.com/v1?tenant=9';
const lower = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

describe('connect signing', () => {
  it('signs "v1:<ts>:<callId>:<url>" with HMAC-SHA256, as documented', () => {
    const h = signConnect(secret, url, 'call-1', 1_763_712_000_500);
    assert.equal(h['X-BotEdge-Timestamp'], '1763712000');
    const mac = createHmac('sha256', secret).update(`v1:1763712000:call-1:${url}`).digest('hex');
    assert.equal(h['X-BotEdge-Signature'], `v1=${mac}`);
  });

  it('verifies a fresh signature and refuses a wrong secret, another URL, a stale timestamp, missing headers', () => {
    const now = 1_763_712_000_000;
    const h = lower(signConnect(secret, url, 'call-1', now));
    assert.deepEqual(verifyConnect(secret, url, h, now + 1000), { ok: true, callId: 'call-1' });
    assert.equal(verifyConnect('another-long-secret!!', url, h, now).ok, false);
    assert.equal(verifyConnect(secret, url + 'x', h, now).ok, false);
    assert.equal(verifyConnect(secret, url, h, now + 301_000).ok, false);
    assert.equal(verifyConnect(secret, url, {}, now).ok, false);
    assert.equal(verifyConnect(secret, url, { ...h, 'x-botedge-call-id': 'call-2' }, now).ok, false);
  });
});
