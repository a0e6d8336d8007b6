import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, resolveMediaNodeOptions, routeFor } from '../../../edge/config.js';

const host = { hostname: 'box', pid: 7 };

describe('media node options', () => {
  it('fills defaults', () => {
    const o = resolveMediaNodeOptions({}, host);
    assert.equal(o.sipPort, 5060);
    assert.equal(o.nodeId, 'media-box-7');
    assert.equal(o.advertisedAddress, '127.0.0.1');
    assert.deepEqual(o.codecs, ['PCMU', 'PCMA']);
    assert.equal(o.botUnreachableStatus, 480);
    assert.equal(o.qosIntervalMs, 10000);
  });

  it('names the field that is wrong', () => {
    assert.throws(() => resolveMediaNodeOptions({ rtpPortMin: 30000, rtpPortMax: 20000 }, host), (e: unknown) => e instanceof ConfigError && e.field === 'rtpPortMin');
    assert.throws(() => resolveMediaNodeOptions({ sipPort: 70000 }, host), (e: unknown) => e instanceof ConfigError && e.field === 'sipPort');
    assert.throws(() => resolveMediaNodeOptions({ defaultRoute: { url: 'http://bot' } }, host), (e: unknown) => e instanceof ConfigError && e.field === 'defaultRoute.url');
    assert.throws(() => resolveMediaNodeOptions({ botUnreachableStatus: 500 as 480 }, host), (e: unknown) => e instanceof ConfigError && e.field === 'botUnreachableStatus');
    assert.throws(() => resolveMediaNodeOptions({ sipPrt: 1 } as never, host), (e: unknown) => e instanceof ConfigError);
    // QoS samples: none (0) or at most one a second per call.
    assert.throws(() => resolveMediaNodeOptions({ qosIntervalMs: 500 }, host), (e: unknown) => e instanceof ConfigError && e.field === 'qosIntervalMs' && /at least 1000/.test(e.message));
    assert.equal(resolveMediaNodeOptions({ qosIntervalMs: 0 }, host).qosIntervalMs, 0);
  });

  it('an Opus route\'s encoder complexity: 5 by default, 0–10, a bad one named', () => {
    const o = resolveMediaNodeOptions({ routes: { '100': { url: 'ws://a/', opusComplexity: 1 } }, defaultRoute: { url: 'ws://b/' } }, host);
    assert.equal(routeFor(o, '100')?.opusComplexity, 1);
    assert.equal(routeFor(o, '200')?.opusComplexity, 5);
    assert.throws(() => resolveMediaNodeOptions({ defaultRoute: { url: 'ws://b/', opusComplexity: 11 } }, host), (e: unknown) => e instanceof ConfigError && e.field === 'defaultRoute.opusComplexity');
    assert.throws(() => resolveMediaNodeOptions({ defaultRoute: { url: 'ws://b/', opusComplexity: 2.5 } }, host), (e: unknown) => e instanceof ConfigError && e.field === 'defaultRoute.opusComplexity');
  });

  it('routes by called number, falling back to the default route', () => {
    const o = resolveMediaNodeOptions({ routes: { '100': { url: 'ws://a/' } }, defaultRoute: { url: 'ws://b/' } }, host);
    assert.equal(routeFor(o, '100')?.url, 'ws://a/');
    assert.equal(routeFor(o, '200')?.url, 'ws://b/');
    const none = resolveMediaNodeOptions({}, host);
    assert.equal(routeFor(none, '200'), undefined);
  });
});
