import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { Membership } from '../../edge/cluster/membership.js';
import type { SipResponse } from '../../sip/message.js';
import { parseNameAddr } from '../../sip/uri.js';
import { startCluster } from './cluster-harness.js';
import { RawUac, newBranch, sdpOffer } from './raw-uac.js';

const toTag = (res: SipResponse) => parseNameAddr(res.headers.get('To') ?? '').params.get('tag') ?? '';

describe('the proxy, one request at a time', { timeout: 60000 }, () => {
  it('answers OPTIONS, 483 at Max-Forwards 0, fails over past a silent node, relays CANCEL, and 503s when no node is left', async () => {
    const c = await startCluster(['p1']);
    const blackhole = createSocket('udp4');
    await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
    const nc = await connect({ servers: c.nats.url });
    // A member row for a "node" that never answers; its id sorts first, so it is tried first.
    const ghost = await Membership.open(nc, { id: 'a-ghost', role: 'media', sip: `127.0.0.1:${blackhole.address().port}`, rtp: '', capacity: 1000 });
    const uac = await RawUac.open(c.proxyPort);
    try {
      await c.waitMembers(2);
      const opt = uac.newCall();
      uac.sendRaw(uac.request('OPTIONS', 'proxy', opt));
      assert.equal((await uac.finalResponse(opt.branch)).status, 200);

      const hop = uac.newCall();
      uac.sendRaw(uac.request('INVITE', 'svc', hop, { body: sdpOffer(40010) }).replace('Max-Forwards: 70', 'Max-Forwards: 0'));
      assert.equal((await uac.finalResponse(hop.branch)).status, 483);

      // The ghost gets the INVITE first and says nothing; it still heartbeats, so the proxy allows it
      // 4 failover periods (4 × 1 s) as a possibly overloaded node, then p1 answers.
      const s = uac.newCall();
      const t0 = Date.now();
      uac.sendRaw(uac.request('INVITE', 'svc', s, { body: sdpOffer(40012) }));
      const ok = await uac.finalResponse(s.branch, 10000);
      assert.equal(ok.status, 200);
      assert.ok(Date.now() - t0 >= 3900, 'the ghost was tried first, and given time as a live node');
      assert.ok(ok.headers.getAll('Record-Route').some((r) => r.includes(`:${c.proxyPort};lr`)));
      const created = c.events.of('created');
      assert.equal(created.length, 1);
      assert.equal(created[0]!.data.nodeId, 'p1');
      uac.sendRaw(uac.request('ACK', 'svc', { ...s, branch: newBranch() }, { toTag: toTag(ok), cseqMethod: 'ACK' }));
      const bye = { ...s, branch: newBranch(), cseq: 2 };
      uac.sendRaw(uac.request('BYE', 'svc', bye, { toTag: toTag(ok) }));
      assert.equal((await uac.finalResponse(bye.branch)).status, 200);
      await ghost.close();

      // CANCEL through the proxy: the node's 487 comes back.
      c.bot.calls.clear();
      const slow = uac.newCall();
      uac.sendRaw(uac.request('INVITE', 'svc', slow, { body: sdpOffer(40014) }));
      await uac.waitFor((m) => m.kind === 'response' && m.status === 100 && m.headers.get('Call-ID') === slow.callId, 3000, '100');
      uac.sendRaw(uac.request('CANCEL', 'svc', slow));
      const finals = [(await uac.finalResponse(slow.branch)).status, (await uac.finalResponse(slow.branch)).status].sort();
      // Either the CANCEL won (487) or the answer did (200, then we hang up): both are legal races.
      assert.equal(finals[0], 200);
      assert.ok(finals[1] === 487 || finals[1] === 200, `finals ${finals.join(',')}`);

      // Drain the only node: new INVITEs get 503 from the proxy.
      await nc.request('botedge.v1.node.p1.drain', '', { timeout: 3000 });
      await new Promise((r) => setTimeout(r, 300));
      const none = uac.newCall();
      uac.sendRaw(uac.request('INVITE', 'svc', none, { body: sdpOffer(40016) }));
      const refused = await uac.finalResponse(none.branch);
      assert.equal(refused.status, 503);
      assert.match(refused.reason, /no media node/);
    } finally {
      uac.close();
      blackhole.close();
      await ghost.close();
      await nc.close();
      await c.stop();
    }
  });
});
