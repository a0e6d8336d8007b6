import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createResponse, parseMessage, type SipMessage, type SipRequest, type SipResponse } from '../../../sip/message.js';
import {
  InviteClientTransaction,
  InviteServerTransaction,
  InvalidStateError,
  NonInviteClientTransaction,
  NonInviteServerTransaction,
  createCancel,
  resolveTransactionOptions,
  topBranch,
  type ClientEvent,
  type ServerEvent,
  type TimerName,
  type TransactionAction,
} from '../../../sip/transaction.js';

const T = { timeout: 5000 };

function request(method: string, opts: { branch?: string; cseq?: number; toTag?: string } = {}): SipRequest {
  const branch = opts.branch ?? 'z9hG4bK-client-1';
  const raw =
    `${method} sip:bob@biloxi.example.com SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=${branch}\r\n` +
    `Max-Forwards: 70\r\n` +
    `Route: <sip:p1.example.com;lr>\r\n` +
    `To: Bob <sip:bob@biloxi.example.com>${opts.toTag ? `;tag=${opts.toTag}` : ''}\r\n` +
    `From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n` +
    `Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n` +
    `CSeq: ${opts.cseq ?? 314159} ${method}\r\n` +
    `Contact: <sip:alice@pc33.atlanta.example.com>\r\n` +
    `Content-Length: 0\r\n\r\n`;
  const msg = parseMessage(Buffer.from(raw));
  assert.equal(msg.kind, 'request');
  return msg as SipRequest;
}

function reply(req: SipRequest, status: number, toTag = 'bob-tag'): SipResponse {
  return createResponse(req, status, undefined, status === 100 ? {} : { toTag });
}

/** Runs one machine against a fake clock: timers fire in due order as time advances. */
function harness<E extends ClientEvent | ServerEvent>(tx: { handle(ev: E, now: number): TransactionAction[] }) {
  let now = 0;
  const timers = new Map<TimerName, number>();
  const sent: { at: number; msg: SipMessage }[] = [];
  const delivered: SipMessage[] = [];
  const timeouts: TimerName[] = [];
  const log: TransactionAction[] = [];
  let terminatedAt: number | undefined;
  let transportErrors = 0;

  function apply(actions: TransactionAction[]): void {
    for (const a of actions) {
      log.push(a);
      switch (a.type) {
        case 'send': sent.push({ at: now, msg: a.msg }); break;
        case 'start-timer': timers.set(a.name, now + a.ms); break;
        case 'cancel-timer': timers.delete(a.name); break;
        case 'deliver': delivered.push(a.msg); break;
        case 'timeout': timeouts.push(a.timer); break;
        case 'transport-error': transportErrors++; break;
        case 'terminated': terminatedAt = now; break;
      }
    }
  }
  const feed = (ev: E): void => apply(tx.handle(ev, now));
  return {
    feed,
    sent,
    delivered,
    timeouts,
    log,
    timers,
    get terminatedAt() { return terminatedAt; },
    get transportErrors() { return transportErrors; },
    get now() { return now; },
    /** Advance the clock to `t`, firing due timers in order. */
    advanceTo(t: number): void {
      for (;;) {
        let next: [TimerName, number] | undefined;
        for (const e of timers) if (e[1] <= t && (next === undefined || e[1] < next[1])) next = e;
        if (next === undefined) break;
        now = next[1];
        timers.delete(next[0]);
        feed({ type: 'timer', name: next[0] } as E);
      }
      now = t;
    },
  };
}

const sendTimes = (sent: { at: number; msg: SipMessage }[]) => sent.map((s) => s.at);

describe('InviteClientTransaction', () => {
  it('an INVITE client retransmits at T1, 2T1, 4T1 over UDP until a provisional arrives', T, () => {
    const invite = request('INVITE');
    const tx = new InviteClientTransaction(invite);
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.advanceTo(4000);
    assert.deepEqual(sendTimes(h.sent), [0, 500, 1500, 3500]);
    h.feed({ type: 'receive', msg: reply(invite, 180) });
    assert.equal(tx.state, 'proceeding');
    assert.equal(h.delivered.length, 1);
    h.advanceTo(120_000);
    assert.deepEqual(sendTimes(h.sent), [0, 500, 1500, 3500], 'no retransmission once proceeding');
    assert.deepEqual(h.timeouts, [], 'no Timer B in proceeding');
    assert.equal(tx.dump().retransmissions, 3);
  });

  it('Timer B fires after 64*T1 with no response and reports a timeout', T, () => {
    const tx = new InviteClientTransaction(request('INVITE'));
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.advanceTo(100_000);
    assert.deepEqual(sendTimes(h.sent), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert.deepEqual(h.timeouts, ['B']);
    assert.equal(h.terminatedAt, 32_000);
    assert.equal(tx.state, 'terminated');
    assert.equal(h.timers.size, 0, 'every timer is cancelled on termination');
  });

  it('a 486 to an INVITE client produces an ACK with the same branch', T, () => {
    const invite = request('INVITE', { branch: 'z9hG4bK-486' });
    const tx = new InviteClientTransaction(invite);
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    const busy = reply(invite, 486);
    h.feed({ type: 'receive', msg: busy });
    const ack = h.sent[1]?.msg as SipRequest;
    assert.equal(ack.method, 'ACK');
    assert.equal(ack.uri, invite.uri);
    assert.equal(topBranch(ack), 'z9hG4bK-486');
    assert.equal(ack.headers.get('CSeq'), '314159 ACK');
    assert.equal(ack.headers.get('To'), busy.headers.get('To'), 'To carries the tag of the response');
    assert.equal(ack.headers.get('From'), invite.headers.get('From'));
    assert.equal(ack.headers.get('Call-ID'), invite.headers.get('Call-ID'));
    assert.deepEqual(ack.headers.getAll('Route'), invite.headers.getAll('Route'));
    assert.deepEqual(h.delivered, [busy]);
    assert.equal(tx.state, 'completed');
  });

  it('a retransmitted final response gets the ACK again and is not delivered twice; Timer D ends it', T, () => {
    const invite = request('INVITE');
    const tx = new InviteClientTransaction(invite);
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.feed({ type: 'receive', msg: reply(invite, 503) });
    h.advanceTo(1000);
    h.feed({ type: 'receive', msg: reply(invite, 503) });
    assert.equal(h.sent.filter((s) => (s.msg as SipRequest).method === 'ACK').length, 2);
    assert.equal(h.delivered.length, 1);
    h.advanceTo(32_000);
    assert.equal(h.terminatedAt, 32_000);
  });

  it('a 2xx moves the INVITE client to accepted, where 2xx retransmissions still reach the TU until Timer M', T, () => {
    const invite = request('INVITE');
    const tx = new InviteClientTransaction(invite);
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.feed({ type: 'receive', msg: reply(invite, 200) });
    assert.equal(tx.state, 'accepted');
    assert.equal(h.sent.length, 1, 'the transaction does not ACK a 2xx');
    h.advanceTo(500);
    h.feed({ type: 'receive', msg: reply(invite, 200) });
    assert.equal(h.delivered.length, 2);
    h.advanceTo(32_000);
    assert.equal(h.terminatedAt, 32_000);
  });

  it('a transport error while calling terminates the INVITE client and says so', T, () => {
    const tx = new InviteClientTransaction(request('INVITE'));
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.feed({ type: 'transport-error' });
    assert.equal(h.transportErrors, 1);
    assert.equal(tx.state, 'terminated');
    assert.equal(h.timers.size, 0);
  });

  it('ignores a timer event for a timer it no longer runs', T, () => {
    const invite = request('INVITE');
    const tx = new InviteClientTransaction(invite);
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.feed({ type: 'receive', msg: reply(invite, 180) });
    h.feed({ type: 'timer', name: 'A' });
    h.feed({ type: 'timer', name: 'B' });
    assert.equal(h.sent.length, 1);
    assert.equal(tx.state, 'proceeding');
  });
});

describe('NonInviteClientTransaction', () => {
  it('a non-INVITE client over UDP retransmits capped at T2 and Timer F times out', T, () => {
    const tx = new NonInviteClientTransaction(request('OPTIONS'));
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.advanceTo(60_000);
    assert.deepEqual(sendTimes(h.sent), [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert.deepEqual(h.timeouts, ['F']);
    assert.equal(h.terminatedAt, 32_000);
  });

  it('a non-INVITE client in proceeding retransmits every T2', T, () => {
    const req = request('BYE');
    const tx = new NonInviteClientTransaction(req);
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.feed({ type: 'receive', msg: reply(req, 100) });
    assert.equal(tx.state, 'proceeding');
    h.advanceTo(9000);
    assert.deepEqual(sendTimes(h.sent), [0, 500, 4500, 8500]);
  });

  it('a final response completes the non-INVITE client, later copies are absorbed, Timer K (T4) ends it', T, () => {
    const req = request('BYE');
    const tx = new NonInviteClientTransaction(req);
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    h.feed({ type: 'receive', msg: reply(req, 200) });
    h.feed({ type: 'receive', msg: reply(req, 200) });
    assert.equal(h.delivered.length, 1);
    assert.equal(tx.state, 'completed');
    h.advanceTo(4999);
    assert.equal(h.terminatedAt, undefined);
    h.advanceTo(5000);
    assert.equal(h.terminatedAt, 5000);
  });

  it('over TCP no retransmission timers run and Timer K is zero', T, () => {
    const req = request('INFO');
    const tx = new NonInviteClientTransaction(req, { reliable: true });
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    assert.deepEqual([...h.timers.keys()], ['F']);
    h.feed({ type: 'receive', msg: reply(req, 200) });
    assert.equal(tx.state, 'terminated');
  });

  it('refuses INVITE and ACK', T, () => {
    assert.throws(() => new NonInviteClientTransaction(request('INVITE')), InvalidStateError);
    assert.throws(() => new NonInviteClientTransaction(request('ACK')), InvalidStateError);
  });
});

describe('InviteServerTransaction', () => {
  it('sends 100 Trying after 200 ms when the TU has not answered', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite);
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.advanceTo(199);
    assert.equal(h.sent.length, 0);
    h.advanceTo(200);
    assert.equal((h.sent[0]?.msg as SipResponse).status, 100);
  });

  it('sends no 100 Trying when the TU answers within 200 ms', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite);
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.advanceTo(50);
    h.feed({ type: 'tu-respond', response: reply(invite, 180) });
    h.advanceTo(1000);
    assert.deepEqual(h.sent.map((s) => (s.msg as SipResponse).status), [180]);
  });

  it('a retransmitted INVITE gets the last provisional again', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite, { tryingDelay: 0 });
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.feed({ type: 'receive', msg: request('INVITE') });
    h.feed({ type: 'tu-respond', response: reply(invite, 183) });
    h.feed({ type: 'receive', msg: request('INVITE') });
    assert.deepEqual(h.sent.map((s) => (s.msg as SipResponse).status), [100, 100, 183, 183]);
    assert.equal(h.delivered.length, 0, 'retransmissions never reach the TU');
  });

  it('an INVITE server retransmits its final response on Timer G until ACK, Timer H abandons it', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite, { tryingDelay: null });
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.feed({ type: 'tu-respond', response: reply(invite, 486) });
    h.advanceTo(10_000);
    assert.deepEqual(sendTimes(h.sent), [0, 500, 1500, 3500, 7500]);
    h.advanceTo(40_000);
    assert.deepEqual(h.timeouts, ['H']);
    assert.equal(h.terminatedAt, 32_000);
    assert.equal(h.sent.at(-1)?.at, 31_500);
  });

  it('an ACK stops Timer G, and Timer I (T4) then ends the INVITE server', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite, { tryingDelay: null });
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.feed({ type: 'tu-respond', response: reply(invite, 404) });
    h.advanceTo(600);
    h.feed({ type: 'receive', msg: request('ACK', { toTag: 'bob-tag' }) });
    assert.equal(tx.state, 'confirmed');
    h.feed({ type: 'receive', msg: request('ACK', { toTag: 'bob-tag' }) });
    h.advanceTo(5600);
    assert.equal(h.sent.length, 2);
    assert.equal(h.terminatedAt, 5600);
    assert.equal(h.delivered.length, 0, 'the ACK for a non-2xx stays in the transaction');
  });

  it('a retransmitted INVITE in completed gets the final response again', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite, { tryingDelay: null, reliable: true });
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.feed({ type: 'tu-respond', response: reply(invite, 603) });
    h.feed({ type: 'receive', msg: request('INVITE') });
    assert.deepEqual(h.sent.map((s) => (s.msg as SipResponse).status), [603, 603]);
  });

  it('a 2xx moves the INVITE server to accepted: INVITEs absorbed, 2xx retransmits pass, ACK delivered, Timer L ends it', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite, { tryingDelay: null });
    const h = harness(tx);
    h.feed({ type: 'start' });
    const ok = reply(invite, 200);
    h.feed({ type: 'tu-respond', response: ok });
    assert.equal(tx.state, 'accepted');
    h.feed({ type: 'receive', msg: request('INVITE') });
    assert.equal(h.sent.length, 1, 'a retransmitted INVITE is absorbed');
    h.feed({ type: 'tu-respond', response: ok });
    assert.equal(h.sent.length, 2);
    const ack = request('ACK', { toTag: 'bob-tag' });
    h.feed({ type: 'receive', msg: ack });
    assert.deepEqual(h.delivered, [ack]);
    assert.throws(() => h.feed({ type: 'tu-respond', response: reply(invite, 486) }), InvalidStateError);
    h.advanceTo(32_000);
    assert.equal(h.terminatedAt, 32_000);
  });

  it('over TCP no retransmission timers run', T, () => {
    const invite = request('INVITE');
    const tx = new InviteServerTransaction(invite, { tryingDelay: null, reliable: true });
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.feed({ type: 'tu-respond', response: reply(invite, 486) });
    assert.deepEqual([...h.timers.keys()], ['H']);
    h.feed({ type: 'receive', msg: request('ACK', { toTag: 'bob-tag' }) });
    assert.equal(tx.state, 'terminated', 'Timer I is zero over a reliable transport');
    assert.equal(h.sent.length, 1);
  });
});

describe('NonInviteServerTransaction', () => {
  it('absorbs retransmissions while trying, then repeats its last response', T, () => {
    const req = request('OPTIONS');
    const tx = new NonInviteServerTransaction(req);
    const h = harness(tx);
    h.feed({ type: 'start' });
    h.feed({ type: 'receive', msg: request('OPTIONS') });
    assert.equal(h.sent.length, 0);
    h.feed({ type: 'tu-respond', response: reply(req, 200) });
    h.feed({ type: 'receive', msg: request('OPTIONS') });
    assert.deepEqual(h.sent.map((s) => (s.msg as SipResponse).status), [200, 200]);
    assert.throws(() => h.feed({ type: 'tu-respond', response: reply(req, 500) }), InvalidStateError);
  });

  it('Timer J keeps the non-INVITE server 64*T1 over UDP and zero over TCP', T, () => {
    const req = request('BYE');
    const udp = new NonInviteServerTransaction(req);
    const h = harness(udp);
    h.feed({ type: 'start' });
    h.feed({ type: 'tu-respond', response: reply(req, 200) });
    h.advanceTo(31_999);
    assert.equal(udp.state, 'completed');
    h.advanceTo(32_000);
    assert.equal(udp.state, 'terminated');

    const tcp = new NonInviteServerTransaction(req, { reliable: true });
    const h2 = harness(tcp);
    h2.feed({ type: 'start' });
    h2.feed({ type: 'tu-respond', response: reply(req, 200) });
    assert.equal(tcp.state, 'terminated');
  });
});

describe('helpers', () => {
  it('a CANCEL copies the INVITE branch, Request-URI and CSeq number', T, () => {
    const invite = request('INVITE', { branch: 'z9hG4bK-cancel-me' });
    const cancel = createCancel(invite);
    assert.equal(cancel.method, 'CANCEL');
    assert.equal(cancel.uri, invite.uri);
    assert.equal(topBranch(cancel), 'z9hG4bK-cancel-me');
    assert.equal(cancel.headers.get('CSeq'), '314159 CANCEL');
    assert.equal(cancel.headers.get('To'), invite.headers.get('To'));
  });

  it('resolves options with defaults and names the bad field', T, () => {
    assert.deepEqual(resolveTransactionOptions(), { t1: 500, t2: 4000, t4: 5000, reliable: false, tryingDelay: 200 });
    assert.throws(() => resolveTransactionOptions({ t1: 0 }), /t1/);
    assert.throws(() => resolveTransactionOptions({ t1: 5000, t2: 4000 }), /t2/);
  });

  it('dump() reports state and running timers', T, () => {
    const tx = new InviteClientTransaction(request('INVITE'));
    const h = harness(tx);
    h.feed({ type: 'send-request' });
    const d = tx.dump();
    assert.equal(d.state, 'calling');
    assert.equal(d.kind, 'invite-client');
    assert.deepEqual(d.timers, { A: 500, B: 32_000 });
  });
});
