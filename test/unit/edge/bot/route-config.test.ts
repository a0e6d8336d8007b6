import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, resolveMediaNodeOptions, type MediaNodeOptions } from '../../../../edge/config.js';

const host = { hostname: 'box', pid: 7 };
const rejects = (o: MediaNodeOptions, field: string) => assert.throws(() => resolveMediaNodeOptions(o, host), (e: unknown) => e instanceof ConfigError && e.field === field);

describe('route protocol options', () => {
  it('accepts the example of docs/config.md', () => {
    const md = readFileSync(fileURLToPath(new URL('../../../../../docs/config.md', import.meta.url)), 'utf8');
    const json = /Example:\s*```json\n([\s\S]*?)```/.exec(md)![1]!.replace('"…"', '"token"');
    const o = resolveMediaNodeOptions(JSON.parse(json) as MediaNodeOptions, host);
    assert.equal(o.routes['18005550101']?.protocol, 'twilio');
    assert.equal(o.routes['18005550102']?.sampleRate, 16000);
    assert.equal(o.botReadTimeoutMs, 10000);
  });

  it('names the field that is wrong', () => {
    rejects({ defaultRoute: { url: 'ws://b/', protocol: 'twilio', sampleRate: 16000 } }, 'defaultRoute.sampleRate');
    rejects({ defaultRoute: { url: 'ws://b/', onBotFailure: 'prompt' } }, 'defaultRoute.fallbackPrompt');
    rejects({ defaultRoute: { url: 'ws://b/', protocol: 'sip' as 'native' } }, 'defaultRoute.protocol');
    rejects({ defaultRoute: { url: 'ws://b/', twilio: { accountSid: 'AC1' } } }, 'defaultRoute.twilio.accountSid');
    rejects({ defaultRoute: { url: 'ws://b/', signingSecret: 'short' } }, 'defaultRoute.signingSecret');
    rejects({ botReadTimeoutMs: 10 }, 'botReadTimeoutMs');
  });
});
