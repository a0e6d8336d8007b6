import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newBranch, newCallId, newTag } from '../../../sip/ids.js';
import { parseMessage, serializeMessage, type SipMessage, type SipRequest, type SipResponse } from '../../../sip/message.js';
import {
  TransactionLayer,
  responseDestination,
  type Destination,
  type Scheduler,
  type ServerTransactionHandle,
} from '../../../sip/transaction-layer.js';
import { InvalidStateError, topBranch, topVia } from '../../../sip/transaction.js';
import { parseVia } from '../../../sip/uri.js';

const T = { timeout: 5000 };

/** A manual clock: timers run in due order (then creation order) as `advance` moves time. */
class FakeClock implements Scheduler {
  #now = 0;
  #seq = 0;
  #timers = new Map<number, { at: number; seq: number; fn: () => void }>();
  now(): number {
    return this.#now;
  }
  setTimer(ms: number, fn: () => void): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + ms, seq: id, fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; seq: number; fn: () => void }] | undefined;
      for (const e of this.#timers) {
        if (e[1].at > end) continue;
        if (next === undefined || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq)) next = e;
      }
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = end;
  }
}

const ALICE: Destination = { address: '192.0.2.10', port: 5060, transport: 'udp' };
const BOB: Destination = { address: '192.0.2.20', port: 5060, transport: 'udp' };

function invite(opts: { branch?: string | null; method?: string; cseq?: number } = {}): SipRequest {
  const method = opts.method ?? 'INVITE';
  const via =
    opts.branch === null
      ? ''
      : `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=${opts.branch ?? newBranch()};rport\r\n`;
  const raw =
    `${method} sip:bob@192.0.2.20 SIP/2.0\r\n` +
    via +
    `Max-Forwards: 70\r\n` +
    `To: <sip:bob@example.com>\r\n` +
    `From: <sip:alice@example.com>;tag=${newTag()}\r\n` +
    `Call-ID: ${newCallId('192.0.2.10')}\r\n` +
    `CSeq: ${opts.cseq ?? 1} ${method}\r\n` +
    `Contact: <sip:alice@192.0.2.10>\r\n` +
    `Content-Length: 0\r\n\r\n`;
  return parseMessage(Buffer.from(raw)) as SipRequest;
}

/** Round-trip through bytes, as a transport would. */
function wire<M extends SipMessage>(m: M): M {
  return parseMessage(serializeMessage(m)) as M;
}

/**
 * Two layers joined by a fake network with 1 ms latency. `drop(n)` decides whether the network
 * loses the n-th packet (counted per direction, from 0).
 */
function pair(opts: { drop?: (n: number, msg: SipMessage) => boolean } = {}) {
  const clock = new FakeClock();
  const serverRequests: { req: SipRequest; tx: ServerTransactionHandle | undefined }[] = [];
  const packets: { from: string; msg: SipMessage; dropped: boolean }[] = [];
  const counts = new Map<string, number>();
  let onServerRequest: (req: SipRequest, tx: ServerTransactionHandle | undefined) => void = () => {};
  const deliver = (to: () => TransactionLayer, from: Destination, label: string) => (msg: SipMessage) => {
    const n = counts.get(label) ?? 0;
    counts.set(label, n + 1);
    const dropped = opts.drop?.(n, msg) ?? false;
    packets.push({ from: label, msg, dropped });
    if (!dropped) {
      const copy = wire(msg);
      clock.setTimer(1, () => to().receive(copy, from));
    }
  };
  const client: TransactionLayer = new TransactionLayer({
    send: (msg) => deliver(() => server, ALICE, 'alice')(msg),
    scheduler: clock,
    onRequest: () => {},
    localVia: () => ({ host: ALICE.address, port: ALICE.port }),
  });
  const server: TransactionLayer = new TransactionLayer({
    send: (msg) => deliver(() => client, BOB, 'bob')(msg),
    scheduler: clock,
    onRequest: (req, tx) => {
      serverRequests.push({ req, tx });
      onServerRequest(req, tx);
    },
  });
  return {
    clock,
    client,
    server,
    serverRequests,
    packets,
    set onServerRequest(fn: (req: SipRequest, tx: ServerTransactionHandle | undefined) => void) {
      onServerRequest = fn;
    },
  };
}

describe('TransactionLayer', () => {
  it('carries an INVITE, 180 and 486 between a client layer and a server layer and ACKs inside the transaction', T, () => {
    const p = pair();
    p.onServerRequest = (_req, tx) => {
      tx?.reply(180, 'Ringing', { toTag: 'b1' });
      p.clock.setTimer(100, () => tx?.reply(486, 'Busy Here', { toTag: 'b1' }));
    };
    const got: number[] = [];
    const h = p.client.sendRequest(invite(), BOB, { onResponse: (r) => got.push(r.status) });
    p.clock.advance(1000);
    assert.deepEqual(got, [180, 486]);
    assert.equal(h.state, 'completed');
    assert.equal(p.serverRequests.length, 1, 'the ACK for the 486 never reaches the server TU');
    assert.deepEqual(p.server.dump().servers.map((s) => s.state), ['confirmed']);
    p.clock.advance(40_000);
    assert.equal(p.client.size + p.server.size, 0);
    assert.equal(p.clock.pending, 0);
  });

  it('a retransmitted request reaches the server TU once', T, () => {
    const p = pair();
    let h: ServerTransactionHandle | undefined;
    p.onServerRequest = (_req, tx) => (h = tx);
    p.client.sendRequest(invite({ method: 'OPTIONS' }), BOB);
    p.clock.advance(2000);
    assert.equal(p.serverRequests.length, 1);
    assert.equal(p.server.stats.retransmittedRequests, 2);
    h?.reply(200);
    p.clock.advance(10);
    assert.equal(p.client.dump().clients[0]?.state, 'completed');
  });

  it('a CANCEL matches the INVITE server transaction by branch', T, () => {
    const p = pair();
    const cancels: { cancel: ServerTransactionHandle; invite: ServerTransactionHandle | undefined }[] = [];
    p.onServerRequest = (req, tx) => {
      if (req.method === 'INVITE') tx?.reply(180, 'Ringing', { toTag: 'b1' });
      if (req.method === 'CANCEL' && tx) {
        cancels.push({ cancel: tx, invite: tx.cancels });
        tx.reply(200);
        tx.cancels?.reply(487, 'Request Terminated', { toTag: 'b1' });
      }
    };
    const got: string[] = [];
    const h = p.client.sendRequest(invite(), BOB, { onResponse: (r) => got.push(`${r.status}`) });
    p.clock.advance(50);
    h.cancel();
    p.clock.advance(100);
    assert.equal(cancels.length, 1);
    assert.equal(cancels[0]?.invite?.request.method, 'INVITE');
    assert.equal(topBranch(cancels[0]!.cancel.request), topBranch(cancels[0]!.invite!.request));
    assert.deepEqual(got, ['180', '487']);
  });

  it('a CANCEL sent before any provisional waits for one', T, () => {
    const p = pair();
    p.onServerRequest = (req, tx) => {
      if (req.method === 'INVITE') p.clock.setTimer(300, () => tx?.reply(180, 'Ringing', { toTag: 'b1' }));
    };
    const h = p.client.sendRequest(invite(), BOB);
    h.cancel();
    p.clock.advance(100);
    assert.equal(p.serverRequests.filter((r) => r.req.method === 'CANCEL').length, 0);
    p.clock.advance(300);
    assert.equal(p.serverRequests.filter((r) => r.req.method === 'CANCEL').length, 1);
  });

  it('a CANCEL for no known transaction is answered 481 without the TU', T, () => {
    const p = pair();
    const got: number[] = [];
    p.client.sendRequest(invite({ method: 'CANCEL' }), BOB, { onResponse: (r) => got.push(r.status) });
    p.clock.advance(10);
    assert.deepEqual(got, [481]);
    assert.equal(p.serverRequests.length, 0);
  });

  it('an ACK for a 2xx has its own branch and goes to the TU without a transaction', T, () => {
    const p = pair();
    p.onServerRequest = (req, tx) => {
      if (req.method === 'INVITE') tx?.reply(200, 'OK', { toTag: 'b1' });
    };
    let ok: SipResponse | undefined;
    const inv = invite();
    p.client.sendRequest(inv, BOB, { onResponse: (r) => (ok = r) });
    p.clock.advance(10);
    assert.equal(ok?.status, 200);
    const ack = invite({ method: 'ACK' });
    p.client.sendStateless(ack, BOB);
    p.clock.advance(10);
    const last = p.serverRequests.at(-1);
    assert.equal(last?.req.method, 'ACK');
    assert.equal(last?.tx, undefined);
  });

  it('RFC 2543 requests without the magic cookie still match their transaction', T, () => {
    const clock = new FakeClock();
    const sent: SipMessage[] = [];
    const seen: string[] = [];
    const layer = new TransactionLayer({
      send: (m) => sent.push(m),
      scheduler: clock,
      onRequest: (req, tx) => {
        seen.push(req.method);
        if (req.method === 'INVITE') tx?.reply(486, 'Busy Here', { toTag: 'b1' });
      },
    });
    const inv = invite({ branch: 'old-style-1' });
    layer.receive(wire(inv), ALICE);
    layer.receive(wire(inv), ALICE);
    assert.deepEqual(seen, ['INVITE']);
    assert.equal(sent.length, 2, 'the retransmission got the 486 again');
    const ack = wire(inv);
    ack.method = 'ACK';
    ack.headers.set('CSeq', '1 ACK');
    ack.headers.set('To', '<sip:bob@example.com>;tag=b1');
    layer.receive(ack, ALICE);
    assert.deepEqual(seen, ['INVITE'], 'the ACK was absorbed by the INVITE transaction');
    assert.equal(layer.dump().servers[0]?.state, 'confirmed');
  });

  it('a response is matched by branch and CSeq method, so a CANCEL response does not hit the INVITE', T, () => {
    const clock = new FakeClock();
    const sent: SipMessage[] = [];
    const layer = new TransactionLayer({ send: (m) => sent.push(m), scheduler: clock, onRequest: () => {} });
    const inv = invite();
    const got: number[] = [];
    const h = layer.sendRequest(inv, BOB, { onResponse: (r) => got.push(r.status) });
    const raw = serializeMessage(inv).toString('latin1').replace(/^INVITE .*\r\n/, 'SIP/2.0 200 OK\r\n').replace('1 INVITE', '1 CANCEL');
    layer.receive(parseMessage(Buffer.from(raw, 'latin1')), BOB);
    assert.deepEqual(got, []);
    assert.equal(layer.stats.strayResponses, 1);
    assert.equal(h.state, 'calling');
  });

  it('Timer F expiry through the layer calls onTimeout and forgets the transaction', T, () => {
    const clock = new FakeClock();
    const layer = new TransactionLayer({ send: () => {}, scheduler: clock, onRequest: () => {} });
    let timedOut = false;
    let terminated = false;
    layer.sendRequest(invite({ method: 'OPTIONS' }), BOB, {
      onTimeout: () => (timedOut = true),
      onTerminated: () => (terminated = true),
    });
    clock.advance(31_999);
    assert.equal(timedOut, false);
    clock.advance(1);
    assert.equal(timedOut, true);
    assert.equal(terminated, true);
    assert.equal(layer.size, 0);
    assert.equal(clock.pending, 0);
  });

  it('Timer H expiry through the layer calls the server handle onTimeout', T, () => {
    const clock = new FakeClock();
    let timedOut = false;
    const layer = new TransactionLayer({
      send: () => {},
      scheduler: clock,
      onRequest: (_req, tx) => {
        if (tx) {
          tx.onTimeout = () => (timedOut = true);
          tx.reply(480, 'Temporarily Unavailable', { toTag: 'x' });
        }
      },
    });
    layer.receive(wire(invite()), ALICE);
    clock.advance(64 * 500);
    assert.equal(timedOut, true);
    assert.equal(layer.size, 0);
  });

  it('a 2xx retransmitted after Timer L still goes out, and any other late response throws', T, () => {
    const clock = new FakeClock();
    const sent: SipMessage[] = [];
    let h: ServerTransactionHandle | undefined;
    const layer = new TransactionLayer({ send: (m) => sent.push(m), scheduler: clock, onRequest: (_r, tx) => (h = tx) });
    layer.receive(wire(invite()), ALICE);
    const ok = h!.reply(200, 'OK', { toTag: 't' });
    clock.advance(32_000);
    assert.equal(h!.state, 'terminated');
    h!.respond(ok);
    assert.equal(sent.length, 2);
    assert.throws(() => h!.reply(500), InvalidStateError);
  });

  it('a send that throws is a transport error for the client transaction', T, () => {
    const clock = new FakeClock();
    const layer = new TransactionLayer({
      send: () => {
        throw new Error('EHOSTUNREACH');
      },
      scheduler: clock,
      onRequest: () => {},
    });
    let err = false;
    layer.sendRequest(invite(), BOB, { onTransportError: () => (err = true) });
    assert.equal(err, true);
    assert.equal(layer.size, 0);
    assert.equal(clock.pending, 0);
  });

  it('adds a Via with a fresh z9hG4bK branch and rport when the request has none', T, () => {
    const clock = new FakeClock();
    const sent: SipMessage[] = [];
    const layer = new TransactionLayer({
      send: (m) => sent.push(m),
      scheduler: clock,
      onRequest: () => {},
      localVia: () => ({ host: '198.51.100.1', port: 5080 }),
    });
    layer.sendRequest(invite({ branch: null, method: 'OPTIONS' }), BOB);
    const via = topVia(sent[0]!)!;
    assert.equal(via.host, '198.51.100.1');
    assert.equal(via.port, 5080);
    assert.ok(via.params.get('branch')?.startsWith('z9hG4bK'));
    assert.ok(via.params.has('rport'));
  });

  it('stamps received and rport on the request and answers to the NATed source port', T, () => {
    const clock = new FakeClock();
    const sent: { msg: SipMessage; dest: Destination }[] = [];
    const layer = new TransactionLayer({
      send: (msg, dest) => sent.push({ msg, dest }),
      scheduler: clock,
      onRequest: (_req, tx) => tx?.reply(200),
    });
    const natted: Destination = { address: '203.0.113.7', port: 40000, transport: 'udp' };
    layer.receive(wire(invite({ method: 'OPTIONS' })), natted);
    assert.deepEqual(sent[0]?.dest, natted);
    const via = topVia(sent[0]!.msg)!;
    assert.equal(via.params.get('received'), '203.0.113.7');
    assert.equal(via.params.get('rport'), '40000');
  });

  it('an INVITE over a lossy network that drops every other packet each way still completes', T, () => {
    const p = pair({ drop: (n) => n % 2 === 0 });
    let abandoned = false;
    p.onServerRequest = (req, tx) => {
      if (req.method === 'INVITE' && tx) {
        tx.onTimeout = () => (abandoned = true);
        tx?.reply(180, 'Ringing', { toTag: 'b1' });
        p.clock.setTimer(2000, () => tx?.reply(603, 'Decline', { toTag: 'b1' }));
      }
    };
    const got: number[] = [];
    const h = p.client.sendRequest(invite(), BOB, { onResponse: (r) => got.push(r.status) });
    p.clock.advance(20_000);
    assert.ok(got.includes(603), `got ${got.join(',')}`);
    assert.equal(got.filter((s) => s === 603).length, 1, 'the final response reaches the TU once');
    assert.ok(p.packets.some((x) => x.dropped));
    assert.notEqual(h.state, 'calling');
    assert.equal(abandoned, false, 'the ACK got through before Timer H');
    p.clock.advance(60_000);
    assert.equal(p.client.size + p.server.size, 0);
  });

  it('a non-INVITE over a lossy network that drops every other packet each way still completes', T, () => {
    const p = pair({ drop: (n) => n % 2 === 0 });
    p.onServerRequest = (_req, tx) => tx?.reply(200);
    const got: number[] = [];
    p.client.sendRequest(invite({ method: 'OPTIONS' }), BOB, { onResponse: (r) => got.push(r.status) });
    p.clock.advance(10_000);
    assert.deepEqual(got, [200]);
    assert.equal(p.serverRequests.length, 1);
  });

  it('close() clears every timer and transaction', T, () => {
    const p = pair();
    p.client.sendRequest(invite(), BOB);
    p.client.close();
    p.client.close();
    assert.equal(p.client.size, 0);
  });
});

describe('responseDestination', () => {
  const src: Destination = { address: '203.0.113.7', port: 40000, transport: 'udp' };
  it('uses received and the sent-by port without rport', T, () => {
    const via = parseVia('SIP/2.0/UDP host.example.com:5070;branch=z9hG4bK1;received=203.0.113.7');
    assert.deepEqual(responseDestination(via, src), { address: '203.0.113.7', port: 5070, transport: 'udp' });
  });
  it('uses the sent-by host and default port when nothing was stamped', T, () => {
    const via = parseVia('SIP/2.0/UDP 203.0.113.7;branch=z9hG4bK1');
    assert.deepEqual(responseDestination(via, src), { address: '203.0.113.7', port: 5060, transport: 'udp' });
  });
  it('uses rport (RFC 3581)', T, () => {
    const via = parseVia('SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=203.0.113.7;rport=40000');
    assert.deepEqual(responseDestination(via, src), { address: '203.0.113.7', port: 40000, transport: 'udp' });
  });
  it('uses maddr when present', T, () => {
    const via = parseVia('SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;maddr=239.1.1.1');
    assert.deepEqual(responseDestination(via, src), { address: '239.1.1.1', port: 5062, transport: 'udp' });
  });
  it('answers over the same connection on reliable transports', T, () => {
    const tcp: Destination = { address: '203.0.113.7', port: 51000, transport: 'tcp' };
    const via = parseVia('SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1');
    assert.deepEqual(responseDestination(via, tcp), tcp);
  });
});
