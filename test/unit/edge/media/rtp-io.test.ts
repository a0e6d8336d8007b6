import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createRtpIo, DgramRtpIo, NativeRtpIo, type RtpIo } from '../../../../edge/media/rtp-io.js';
import { ipv4ToU32, u32ToIpv4, type RtpSocket } from '../../../../edge/media/rtp-socket.js';
import { monoUs32 } from '../../../../edge/media/mono-clock.js';
import { StagedRecords } from '../../../../edge/media/staged-records.js';
import type { WriteLatencySummary } from '../../../../edge/media/write-latency.js';

const LOCAL = ipv4ToU32('127.0.0.1')!;

async function peer(): Promise<{ sock: Socket; port: number; got: { data: Buffer; at: number }[] }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const got: { data: Buffer; at: number }[] = [];
  sock.on('message', (data) => got.push({ data, at: performance.now() }));
  return { sock, port: sock.address().port, got };
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ipv4 helpers', () => {
  it('round-trips dotted quads and refuses anything else', () => {
    for (const a of ['0.0.0.0', '127.0.0.1', '10.1.2.3', '255.255.255.255', '192.168.100.7']) assert.equal(u32ToIpv4(ipv4ToU32(a)!), a);
    assert.equal(ipv4ToU32('127.0.0.1'), 0x7f000001);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '::1', 'host.example', '1..2.3', '1.2.3.', '1234.1.1.1']) assert.equal(ipv4ToU32(bad), undefined, bad);
  });
});

/** The same behaviour, asked of both backends. */
function backendSuite(name: string, make: () => RtpIo): void {
  describe(`RtpIo: ${name}`, () => {
    const io = make();
    const opened: RtpSocket[] = [];
    const peers: Socket[] = [];
    after(() => {
      for (const s of opened) s.close();
      for (const p of peers) p.close();
      io.close();
    });

    it('is the backend asked for', () => assert.equal(io.kind, name));

    it('grants the receive buffer asked for (within rmem_max; Linux reports double)', async () => {
      const s = await io.bind('127.0.0.1', 0);
      opened.push(s);
      assert.equal(s.receiveBuffer(128 * 1024), 256 * 1024);
    });

    it('receives datagrams with their source address and port', async () => {
      const s = await io.bind('127.0.0.1', 0);
      opened.push(s);
      assert.ok(s.port > 0);
      const p = await peer();
      peers.push(p.sock);
      const got: { bytes: number[]; ip: number; port: number }[] = [];
      s.onPacket = (pkt, ip, port) => got.push({ bytes: [...pkt], ip, port });
      for (let i = 0; i < 20; i++) p.sock.send(Buffer.from([i, 1, 2, 3, 4]), s.port, '127.0.0.1');
      await until(() => got.length === 20);
      assert.deepEqual(got.map((g) => g.bytes[0]), [...Array(20).keys()]);
      assert.deepEqual(got[5]!.bytes, [5, 1, 2, 3, 4]);
      assert.equal(got[0]!.ip, LOCAL);
      assert.equal(got[0]!.port, p.port);
    });

    it('stamps each datagram with its arrival on the machine-wide clock', async () => {
      const s = await io.bind('127.0.0.1', 0);
      opened.push(s);
      const p = await peer();
      peers.push(p.sock);
      const seen: { arrivalUs: number; handledUs: number }[] = [];
      s.onPacket = (_pkt, _ip, _port, arrivalUs) => seen.push({ arrivalUs, handledUs: monoUs32() });
      const sentUs = monoUs32();
      p.sock.send(Buffer.from([1, 2, 3]), s.port, '127.0.0.1');
      await until(() => seen.length === 1);
      const { arrivalUs, handledUs } = seen[0]!;
      const afterSend = (arrivalUs - sentUs) >>> 0; // µs mod 2^32, as the stamps are
      const beforeHandler = (handledUs - arrivalUs) >>> 0;
      assert.ok(afterSend < 1_000_000 && beforeHandler < 1_000_000, `sent ${sentUs}, arrived ${arrivalUs}, handled ${handledUs}`);
    });

    it('refuses a port that is taken, with the errno name', async () => {
      const s = await io.bind('127.0.0.1', 0);
      opened.push(s);
      await assert.rejects(io.bind('127.0.0.1', s.port), (err: Error & { code?: string }) => err.code === 'EADDRINUSE');
    });

    it('sends one packet per tick, runs `after` once they left, and keeps a 20 ms cadence', async () => {
      const s = await io.bind('127.0.0.1', 0);
      opened.push(s);
      const p = await peer();
      peers.push(p.sock);
      const pkt = new Uint8Array(172);
      let n = 0;
      const seenAtAfter: number[] = [];
      const fn = (): void => {
        pkt[0] = n++;
        s.send(pkt, pkt.length, LOCAL, p.port);
        pkt[0] = 0xee; // the caller may reuse its buffer at once
      };
      io.clock.add(fn, () => seenAtAfter.push(n));
      await until(() => p.got.length >= 10);
      io.clock.delete(fn);
      const firsts = p.got.slice(0, 10).map((g) => g.data[0]);
      assert.deepEqual(firsts, [...Array(10).keys()]);
      assert.ok(p.got.every((g) => g.data.length === 172));
      assert.ok(seenAtAfter.length >= 9, `after ran ${seenAtAfter.length} times`);
      // Generous: this is a shared machine; the benchmark measures the real jitter.
      const span = p.got[9]!.at - p.got[0]!.at;
      assert.ok(span > 9 * 20 * 0.5 && span < 9 * 20 * 3, `10 packets over ${span} ms`);
    });

    it('does not call a subscriber in a beat its skip word marks done (the lane played it out), clears the word, and still runs `after`', async () => {
      const table = new Float64Array(4);
      let calls = 0;
      const seen: number[] = []; // calls so far, at each beat's `after`
      const fn = (): void => void calls++;
      table[2] = 1; // the first beat: done already
      io.clock.add(fn, () => {
        seen.push(calls);
        if (seen.length === 3) table[2] = 1; // and the fourth
      }, { skip: { table, index: 2 } });
      await until(() => seen.length >= 6);
      io.clock.delete(fn);
      assert.deepEqual(seen.slice(0, 6), [0, 1, 2, 2, 3, 4]);
      assert.equal(table[2], 0);
    });

    it('acceptOnly() turns away every other source before onPacket and counts it; (0, 0) takes all again', async () => {
      const s = await io.bind('127.0.0.1', 0);
      const a = await peer();
      const b = await peer();
      peers.push(a.sock, b.sock);
      const from: number[] = [];
      s.onPacket = (_pkt, _ip, port) => void from.push(port);
      const send = async (p: { sock: Socket }, n: number) => {
        for (let i = 0; i < n; i++) await new Promise((r) => p.sock.send(Buffer.from([i]), s.port, '127.0.0.1', r));
      };
      s.acceptOnly(LOCAL, a.port);
      await send(b, 5);
      await send(a, 3);
      await until(() => from.length >= 3);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(from, [a.port, a.port, a.port]);
      assert.equal(s.foreignDropped, 5);
      s.acceptOnly(0, 0);
      await send(b, 2);
      await until(() => from.length >= 5);
      assert.deepEqual(from.slice(3), [b.port, b.port]);
      s.close();
      assert.equal(s.foreignDropped, 5, 'still readable after close');
    });

    it('replace() rewrites a packet that has not left (native) and is refused once it has (dgram)', async () => {
      const s = await io.bind('127.0.0.1', 0);
      opened.push(s);
      const p = await peer();
      peers.push(p.sock);
      // One packet per attempt. The barge-in runs as a microtask after the tick's staging and
      // commit, which is before its due time unless this thread lost the CPU for the whole lead:
      // then the packet has left and replace() must say so. Up to 5 attempts for one that wins.
      for (let attempt = 0; attempt < 5; attempt++) {
        let replaced: boolean | undefined;
        let sent = false;
        const fn = (): void => {
          if (sent) return;
          sent = true;
          s.send(Uint8Array.of(0xaa, attempt), 2, LOCAL, p.port);
          queueMicrotask(() => (replaced = s.replace(Uint8Array.of(0xbb, attempt), 2)));
        };
        io.clock.add(fn);
        await until(() => p.got.length > attempt);
        io.clock.delete(fn);
        const got = [...p.got[attempt]!.data];
        if (io.kind === 'dgram') {
          assert.equal(replaced, false, 'dgram writes at once: nothing left to replace');
          assert.deepEqual(got, [0xaa, attempt]);
          return;
        }
        // Whatever replace() answered is what the peer received.
        assert.deepEqual(got, replaced ? [0xbb, attempt] : [0xaa, attempt]);
        if (replaced) return;
      }
      assert.fail('replace() never caught a packet before its due time in 5 attempts');
    });

    it('sendNow() sends at once, outside any tick, and the buffer may be reused', async () => {
      const s = await io.bind('127.0.0.1', 0);
      opened.push(s);
      const p = await peer();
      peers.push(p.sock);
      const before = io.stats()['sentNow'] ?? 0;
      const pkt = Uint8Array.of(0xcc, 7, 7);
      s.sendNow(pkt, 2, LOCAL, p.port); // len 2: only the head goes
      pkt[0] = 0; // reused at once
      // No clock subscriber: nothing would be sent if this waited for a tick.
      await until(() => p.got.length >= 1);
      assert.deepEqual([...p.got[0]!.data], [0xcc, 7]);
      if (io.kind === 'native') assert.equal(io.stats()['sentNow'], before + 1);
    });

    it('stops delivering to a closed socket and frees its port', async () => {
      const s = await io.bind('127.0.0.1', 0);
      const port = s.port;
      let got = 0;
      s.onPacket = () => got++;
      s.close();
      const p = await peer();
      peers.push(p.sock);
      p.sock.send(Buffer.from([1]), port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(got, 0);
      // The native thread closes the fd on its next turn; the port is then free again.
      await until(() => {
        try {
          const probe = createSocket('udp4');
          let ok = true;
          probe.on('error', () => (ok = false));
          probe.bind(port, '127.0.0.1', () => probe.close());
          return ok;
        } catch {
          return false;
        }
      });
      const again = await io.bind('127.0.0.1', port).catch(async () => {
        await new Promise((r) => setTimeout(r, 50));
        return io.bind('127.0.0.1', port);
      });
      opened.push(again);
      assert.equal(again.port, port);
    });
  });
}

backendSuite('dgram', () => new DgramRtpIo());
const native = createRtpIo('127.0.0.1', 'auto');
if (native.kind === 'native') {
  backendSuite('native', () => native);
  describe('RtpIo: native polling', () => {
    it('polls the sockets once per batch window under a steady stream, loses nothing, and goes back to waiting when idle', async () => {
      const io = createRtpIo('127.0.0.1', 'native');
      const socks = await Promise.all(Array.from({ length: 20 }, () => io.bind('127.0.0.1', 0)));
      const p = await peer();
      try {
        const got = socks.map(() => [] as number[]);
        socks.forEach((s, i) => (s.onPacket = (pkt) => got[i]!.push(pkt[0]!)));
        // 20 "calls", 1500 packets spaced 0.2 ms apart (sent from a busy loop: timers are too coarse;
        // through connected sockets, which send at once instead of after an address lookup).
        // A thread that waits on the sockets wakes for nearly every one of them; a polling thread
        // wakes about once per 2 ms window (plus hand-overs to the event loop).
        const senders = await Promise.all(
          socks.map(async (s) => {
            const c = createSocket('udp4');
            await new Promise<void>((r) => c.connect(s.port, '127.0.0.1', () => r()));
            return c;
          }),
        );
        const at = performance.now();
        for (let i = 0; i < 1500; i++) {
          while (performance.now() < at + i * 0.2) {
            // spin
          }
          senders[i % 20]!.send(Buffer.from([Math.floor(i / 20) & 0xff, 9, 9, 9]));
        }
        for (const c of senders) c.close();
        await until(() => got.every((g) => g.length === 75));
        for (const g of got) assert.deepEqual(g, Array.from({ length: 75 }, (_, i) => i));
        const busy = io.stats();
        assert.equal(busy['received'], 1500);
        assert.ok(busy['pollStarts']! >= 1, 'the stream switched the thread to polling');
        assert.ok(busy['wakeups']! < 750, `wakeups ${busy['wakeups']} for 1500 packets`);
        // Idle for a while, then one packet: it must still arrive (the thread waits on the sockets again).
        await new Promise((r) => setTimeout(r, 50));
        const idleWakeups = io.stats()['wakeups']!;
        await new Promise((r) => setTimeout(r, 100));
        assert.ok(io.stats()['wakeups']! - idleWakeups < 10, 'an idle thread does not keep polling');
        const sent = performance.now();
        let arrived = 0;
        socks[0]!.onPacket = () => (arrived = performance.now());
        p.sock.send(Buffer.from([1]), socks[0]!.port, '127.0.0.1');
        await until(() => arrived > 0);
        assert.ok(arrived - sent < 50, `a lone packet after idle took ${arrived - sent} ms`);
        assert.ok(io.stats()['pollStarts']! > busy['pollStarts']!, 'the lone packet woke the waiting thread');
      } finally {
        for (const s of socks) s.close();
        p.sock.close();
        io.close();
      }
    });

    it('hands the event loop one event per turn: under a flood its batches never chain inside one turn, so timers and other sockets get theirs', { timeout: 20000 }, async () => {
      // A 64 kB arena holds at most this many 172-byte datagrams (16-byte record header each).
      const arenaBytes = 1 << 16;
      const perArena = Math.floor(arenaBytes / (16 + 172));
      const io = createRtpIo('127.0.0.1', 'native', { arenaBytes });
      const s = await io.bind('127.0.0.1', 0);
      // A real thread floods the socket as fast as it can for 1.5 s; every packet costs the handler
      // 20 µs, more than the flood leaves it: the I/O thread always has the next batch ready. Node
      // dispatches a thread-safe function's queued calls back to back (up to 1,000 in one turn),
      // which is what starved every timer and socket of the process for seconds before.
      const flood = new Worker(
        `const { createSocket } = require('node:dgram');
         const { workerData } = require('node:worker_threads');
         const c = createSocket('udp4');
         const buf = Buffer.alloc(172);
         const end = Date.now() + 1500;
         c.connect(workerData.port, '127.0.0.1', () => {
           const go = () => { if (Date.now() > end) return c.close(); for (let i = 0; i < 64; i++) c.send(buf); setImmediate(go); };
           go();
         });`,
        { eval: true, workerData: { port: s.port } },
      );
      let turn = 0;
      let spinning = true;
      const spin = () => {
        turn++;
        if (spinning) setImmediate(spin);
      };
      spin();
      let packets = 0;
      let inTurn = 0;
      let lastTurn = -1;
      let mostInOneTurn = 0;
      const turnsWithPackets = new Set<number>();
      s.onPacket = () => {
        packets++;
        if (turn !== lastTurn) {
          lastTurn = turn;
          inTurn = 0;
          turnsWithPackets.add(turn);
        }
        mostInOneTurn = Math.max(mostInOneTurn, ++inTurn);
        const until = performance.now() + 0.02;
        while (performance.now() < until) {
          // the handler's work
        }
      };
      try {
        await new Promise((r) => flood.once('exit', r));
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(packets > 2 * perArena, `${packets} packets handled`);
        assert.ok(turnsWithPackets.size >= 5, `packets in ${turnsWithPackets.size} turns`);
        assert.ok(mostInOneTurn <= perArena, `${mostInOneTurn} packets in one turn of the loop (one arena holds ${perArena})`);
        assert.ok(io.stats()['heldPosts']! > 0, 'events came due while one was out, and waited for the turn');
      } finally {
        spinning = false;
        s.close();
        io.close();
      }
    });

    it('stamps a datagram before the I/O thread hands it over, not when a busy event loop gets to it', async () => {
      const io = createRtpIo('127.0.0.1', 'native');
      const s = await io.bind('127.0.0.1', 0);
      const p = await peer();
      try {
        let stamp: { arrivalUs: number; handledUs: number } | undefined;
        s.onPacket = (_pkt, _ip, _port, arrivalUs) => (stamp = { arrivalUs, handledUs: monoUs32() });
        const sentUs = monoUs32();
        // dgram sends after an address lookup on a later tick: wait until it has left.
        await new Promise((r) => p.sock.send(Buffer.from([7]), s.port, '127.0.0.1', r));
        // The event loop is busy for 60 ms: the datagram waits in the arena, its stamp does not.
        const until60 = performance.now() + 60;
        while (performance.now() < until60) {
          // spin
        }
        await until(() => stamp !== undefined);
        const waited = ((stamp!.handledUs - stamp!.arrivalUs) >>> 0) / 1000;
        const flight = ((stamp!.arrivalUs - sentUs) >>> 0) / 1000;
        assert.ok(waited >= 40, `handled ${waited} ms after the thread read it (the loop was busy for 60 ms)`);
        assert.ok(flight < 20, `read ${flight} ms after it was sent`);
      } finally {
        s.close();
        p.sock.close();
        io.close();
      }
    });

    it('delivers a ready arena from a safe point (before a bot message) while the loop is busy; its event then finds nothing, and a handler cannot nest a delivery', async () => {
      const io = createRtpIo('127.0.0.1', 'native') as NativeRtpIo;
      const s = await io.bind('127.0.0.1', 0);
      const p = await peer();
      try {
        assert.ok(io.lane?.beforeBot, 'the lane calls it before each bot message it takes');
        const handled: number[] = [];
        let nested = 0;
        s.onPacket = (pkt) => {
          handled.push(pkt[0]!);
          const before = io.earlyDeliveries;
          io.deliverReady();
          if (io.earlyDeliveries !== before) nested++;
        };
        await new Promise((r) => p.sock.send(Buffer.from([7]), s.port, '127.0.0.1', r));
        // The loop is busy: the thread readies the arena after its 2 ms window, its event cannot run.
        const busyUntil = performance.now() + 30;
        while (performance.now() < busyUntil) {
          // spin
        }
        io.lane!.beforeBot!();
        assert.deepEqual(handled, [7], 'delivered inside the busy turn, at the safe point');
        assert.equal(io.earlyDeliveries, 1);
        io.lane!.beforeBot!();
        assert.equal(io.earlyDeliveries, 1, 'nothing ready: nothing delivered');
        await new Promise((r) => setTimeout(r, 30));
        assert.deepEqual(handled, [7], 'the event that followed delivered it no second time');
        await new Promise((r) => p.sock.send(Buffer.from([8]), s.port, '127.0.0.1', r));
        await until(() => handled.length === 2);
        assert.deepEqual(handled, [7, 8], 'the next arena by its event, as ever');
        assert.equal(io.earlyDeliveries, 1);
        assert.equal(nested, 0, 'deliverReady from inside a delivery does nothing');
        assert.equal(io.stats()['earlyDeliveries'], 1, 'in the status counters');
      } finally {
        s.close();
        p.sock.close();
        io.close();
      }
    });

    it('leaves every arena to its event with deliverEarly: false (BOTEDGE_DELIVER_EARLY=0)', () => {
      const io = createRtpIo('127.0.0.1', 'native', { deliverEarly: false }) as NativeRtpIo;
      try {
        assert.ok(io.lane, 'the lane is there');
        assert.equal(io.lane.beforeBot, undefined);
      } finally {
        io.close();
      }
    });

    it('stamps a datagram when the kernel queued it: one that waited in the socket while both arenas were full keeps its arrival time', { timeout: 10000 }, async () => {
      // 64 KiB arenas (the least): the thread reads while a whole recvmmsg batch of the largest
      // datagrams fits (33,024 bytes), so each holds 176–188 of these 172-byte packets, and at most
      // 376 fill both. A loopback socket's default buffer queues only ≈ 47 more of them.
      const io = createRtpIo('127.0.0.1', 'native', { arenaBytes: 1 << 16 });
      const s = await io.bind('127.0.0.1', 0);
      const stamps = new Map<number, { arrivalUs: number; handledUs: number }>();
      s.onPacket = (pkt, _ip, _port, arrivalUs) => {
        if (pkt[0] === 0xee) stamps.set(pkt[1]!, { arrivalUs, handledUs: monoUs32() });
      };
      // A real thread sends 380 packets (both arenas fill; the rest waits in the socket), then,
      // 30 ms later, three marked ones, each with its send time on the stamps' clock.
      const sender = new Worker(
        `const { createSocket } = require('node:dgram');
         const { workerData, parentPort } = require('node:worker_threads');
         const us32 = () => Number((process.hrtime.bigint() / 1000n) % 4294967296n);
         const c = createSocket('udp4');
         c.connect(workerData.port, '127.0.0.1', () => {
           for (let i = 0; i < 380; i++) c.send(Buffer.alloc(172));
           setTimeout(() => {
             const sent = [];
             for (let i = 0; i < 3; i++) {
               const b = Buffer.alloc(172);
               b[0] = 0xee;
               b[1] = i;
               sent.push(us32());
               c.send(b);
             }
             setTimeout(() => { parentPort.postMessage(sent); c.close(); }, 10);
           }, 30);
         });`,
        { eval: true, workerData: { port: s.port } },
      );
      try {
        const sent = new Promise<number[]>((r) => sender.once('message', r));
        await new Promise((r) => sender.once('online', r));
        // The event loop is busy for 150 ms: the first arena waits for it, the second fills, and
        // the marked packets wait in the socket's queue until the loop releases the arenas.
        const until150 = performance.now() + 150;
        while (performance.now() < until150) {
          // spin
        }
        const sentUs = await sent;
        await until(() => stamps.size === 3).catch((err: unknown) => {
          throw new Error(`${stamps.size} of the 3 marked packets arrived; ${JSON.stringify(io.stats())}`, { cause: err });
        });
        for (let i = 0; i < 3; i++) {
          const { arrivalUs, handledUs } = stamps.get(i)!;
          const flight = ((arrivalUs - sentUs[i]!) | 0) / 1000;
          const waited = ((handledUs - arrivalUs) >>> 0) / 1000;
          assert.ok(flight >= 0 && flight < 10, `marked packet ${i}: stamped ${flight} ms after it was sent`);
          assert.ok(waited >= 50, `marked packet ${i}: handled ${waited} ms after its stamp (it waited behind full arenas)`);
        }
      } finally {
        await sender.terminate();
        s.close();
        io.close();
      }
    });

    /**
     * One datagram through a fresh native backend: `setup` installs the handler (and the hook),
     * `done` says when the turn's work has run; returns the write-latency window and the arrival.
     */
    async function timeOneDatagram(setup: (io: NativeRtpIo, s: RtpSocket, arrived: (us: number) => void) => void, done: () => boolean): Promise<{ t: WriteLatencySummary; arrival: number; io: NativeRtpIo }> {
      const io = createRtpIo('127.0.0.1', 'native') as NativeRtpIo;
      const s = await io.bind('127.0.0.1', 0);
      const p = await peer();
      try {
        let arrival = 0;
        setup(io, s, (us) => (arrival = us));
        io.arrivalToWrite!.summary(true);
        await new Promise((r) => p.sock.send(Buffer.from([1]), s.port, '127.0.0.1', r));
        await until(done);
        await new Promise((r) => setImmediate(r));
        return { t: io.arrivalToWrite!.summary(true), arrival, io };
      } finally {
        s.close();
        p.sock.close();
        io.close();
      }
    }

    const spin = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        // busy
      }
    };

    it('without afterInbound, times each datagram from its arrival to the end of the turn that handled it, after what the turn scheduled with setImmediate (a mux batch’s flush)', async () => {
      const flushes: number[] = [];
      const { t, arrival, io } = await timeOneDatagram(
        (_io, s, arrived) => {
          s.onPacket = (_pkt, _ip, _port, arrivalUs) => {
            arrived(arrivalUs);
            // The handler's work holds the turn 30 ms, then schedules its flush, as a mux batch does.
            spin(30);
            setImmediate(() => flushes.push(monoUs32()));
          };
        },
        () => flushes.length === 1,
      );
      const toFlushMs = ((flushes[0]! - arrival) >>> 0) / 1000;
      assert.equal(t.count, 1);
      assert.ok(toFlushMs >= 30, `flushed ${toFlushMs} ms after arrival`);
      assert.ok(t.max >= toFlushMs && t.max < toFlushMs + 20, `turn ended ${t.max} ms after arrival, the flush ${toFlushMs} ms`);
      assert.equal(io.arrivalToWrite!.summary(false).count, 0, 'reset');
    });

    it('with afterInbound, times each datagram to the hook’s return (the bots’ batches sent), not to the rest of the turn', async () => {
      let hookDone = 0;
      let laterWorkDone = 0;
      const { t, arrival } = await timeOneDatagram(
        (io, s, arrived) => {
          s.onPacket = (_pkt, _ip, _port, arrivalUs) => {
            arrived(arrivalUs);
            // Later work of the same turn (the tick of every call, say): 40 ms.
            setImmediate(() => {
              spin(40);
              laterWorkDone = monoUs32();
            });
          };
          io.afterInbound = () => {
            spin(10); // the batches' writes
            hookDone = monoUs32();
          };
        },
        () => laterWorkDone !== 0,
      );
      const toHook = ((hookDone - arrival) >>> 0) / 1000;
      const toLater = ((laterWorkDone - arrival) >>> 0) / 1000;
      assert.equal(t.count, 1);
      assert.ok(t.max >= toHook && t.max < toLater, `timed ${t.max} ms: the hook returned at ${toHook} ms, the turn's later work at ${toLater} ms`);
    });

    it('does not time writes when not asked to (the load generator)', async () => {
      const io = createRtpIo('127.0.0.1', 'native', { timeWrites: false }) as NativeRtpIo;
      try {
        assert.equal(io.arrivalToWrite, undefined);
      } finally {
        io.close();
      }
    });

    it('tells a beat when its staged packets leave (dueUs), and sends none of them before it', async () => {
      // The load generator's pacing: a 5 ms clock whose packets are stamped with their due time.
      const io = createRtpIo('127.0.0.1', 'native', { periodMs: 5, maxLeadMs: 4 }) as NativeRtpIo;
      const tx = await io.bind('127.0.0.1', 0);
      const rx = await io.bind('127.0.0.1', 0);
      try {
        const dues: number[] = [];
        const arrivals = new Map<number, number>();
        rx.onPacket = (pkt, _ip, _port, arrivalUs) => void arrivals.set(pkt[0]!, arrivalUs);
        const beat = () => {
          if (dues.length === 40) return;
          dues.push(io.clock.dueUs);
          tx.send(Uint8Array.of(dues.length - 1), 1, ipv4ToU32('127.0.0.1')!, rx.port);
        };
        io.clock.add(beat);
        await until(() => arrivals.size === 40);
        io.clock.delete(beat);
        for (let i = 1; i < dues.length; i++) {
          const step = (dues[i]! - dues[i - 1]!) >>> 0;
          assert.ok(step > 0 && step % 5000 === 0, `due times ${dues[i - 1]} → ${dues[i]}: not a whole number of 5 ms periods`);
        }
        for (let i = 0; i < 40; i++) {
          const early = (dues[i]! - arrivals.get(i)!) | 0; // > 0: it arrived before it was due
          assert.ok(early <= 0, `packet ${i} arrived ${early} µs before its due time`);
        }
        // And on the arrival stamps' clock (a stamp on another clock would be seconds or hours off;
        // the bound is loose because a busy machine delays the read, not the send).
        const after = Array.from({ length: 40 }, (_, i) => (arrivals.get(i)! - dues[i]!) >>> 0).sort((a, b) => a - b);
        assert.ok(after[20]! < 50_000, `median ${after[20]} µs from due time to arrival`);
      } finally {
        tx.close();
        rx.close();
        io.close();
      }
    });

    it('stageRecords() sends records laid out as staged packets at the beat, and refuses a malformed batch whole', async () => {
      const io = createRtpIo('127.0.0.1', 'native') as NativeRtpIo;
      const p = await peer();
      try {
        const s = (await io.bind('127.0.0.1', 0)) as RtpSocket & { slot: number };
        // Two records (5 bytes padded to 8, then 4), as the receive lane's tick lays them out.
        const records = new Uint8Array(12 + 8 + 12 + 4);
        const view = new DataView(records.buffer);
        for (const [off, len, fill] of [[0, 5, 0x11], [20, 4, 0x22]] as const) {
          view.setUint32(off, s.slot, true);
          view.setUint32(off + 4, LOCAL, true);
          view.setUint16(off + 8, p.port, true);
          view.setUint16(off + 10, len, true);
          records.fill(fill, off + 12, off + 12 + len);
        }
        // The same layout from the builder a sender uses (edge/media/staged-records.ts).
        const built = new StagedRecords();
        built.add(s.slot, new Uint8Array(5).fill(0x11), 5, LOCAL, p.port);
        built.add(s.slot, new Uint8Array(9).fill(0x22), 4, LOCAL, p.port);
        assert.deepEqual(built.bytes.subarray(0, built.length), records);
        assert.equal(built.count, 2);
        const bad = records.slice();
        new DataView(bad.buffer).setUint16(30, 1501, true); // the second record's length: too long
        const answers: boolean[] = [];
        let done = false;
        const fn = (): void => {
          if (done) return;
          done = true;
          answers.push(io.engine.stageRecords(bad, bad.length), io.engine.stageRecords(records, records.length));
        };
        io.clock.add(fn);
        await until(() => p.got.length >= 2);
        await new Promise((r) => setTimeout(r, 60)); // nothing more comes
        io.clock.delete(fn);
        assert.deepEqual(answers, [false, true]);
        assert.deepEqual(p.got.map((g) => [...g.data]), [[0x11, 0x11, 0x11, 0x11, 0x11], [0x22, 0x22, 0x22, 0x22]]);
        assert.throws(() => (io.engine.stageRecords as (...a: unknown[]) => unknown)('x', 3), /RtpIo.stageRecords: expected/);
        s.close();
      } finally {
        p.sock.close();
        io.close();
      }
    });

    it('sendRecords() sends records at once, with no clock running, and refuses a malformed batch whole', async () => {
      const io = createRtpIo('127.0.0.1', 'native') as NativeRtpIo;
      const p = await peer();
      try {
        const s = (await io.bind('127.0.0.1', 0)) as RtpSocket & { slot: number };
        // Two records (6 bytes padded to 8, then 4), as the receive lane lays out the held slots' packets.
        const records = new Uint8Array(12 + 8 + 12 + 4);
        const view = new DataView(records.buffer);
        for (const [off, len, fill] of [[0, 6, 0x33], [20, 4, 0x44]] as const) {
          view.setUint32(off, s.slot, true);
          view.setUint32(off + 4, LOCAL, true);
          view.setUint16(off + 8, p.port, true);
          view.setUint16(off + 10, len, true);
          records.fill(fill, off + 12, off + 12 + len);
        }
        const bad = records.slice();
        new DataView(bad.buffer).setUint32(20, 1 << 30, true); // the second record's slot: out of range
        const sentNow = io.engine.stats()['sentNow']!;
        assert.throws(() => io.engine.sendRecords(bad, bad.length), /RtpIo.sendRecords: a malformed record/);
        assert.throws(() => (io.engine.sendRecords as (...a: unknown[]) => unknown)('x', 3), /RtpIo.sendRecords: expected/);
        assert.equal(io.engine.sendRecords(records, records.length), 2);
        await until(() => p.got.length >= 2);
        await new Promise((r) => setTimeout(r, 60)); // nothing more comes
        assert.deepEqual(p.got.map((g) => [...g.data]), [[0x33, 0x33, 0x33, 0x33, 0x33, 0x33], [0x44, 0x44, 0x44, 0x44]], 'the two good records, once each');
        assert.equal(io.engine.stats()['sentNow']! - sentNow, 2, 'counted as sent at once');
        s.close();
      } finally {
        p.sock.close();
        io.close();
      }
    });

    it('grants a receive buffer beyond rmem_max when root (SO_RCVBUFFORCE)', async () => {
      const io = createRtpIo('127.0.0.1', 'native') as NativeRtpIo;
      try {
        const s = await io.bind('127.0.0.1', 0);
        // 8 MiB: above a default rmem_max (208 KiB) and this machine's (4 MiB). Without
        // CAP_NET_ADMIN it is capped at rmem_max.
        const got = s.receiveBuffer(8 << 20);
        const max = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
        assert.equal(got, process.getuid?.() === 0 ? 16 << 20 : 2 * max);
        s.close();
        assert.equal(s.receiveBuffer(1 << 20), 0, 'a closed socket has none');
      } finally {
        io.close();
      }
    });

    it('sends runs of records from one socket together and loses none, at the beat and at once', async () => {
      // A load generator speaks for many calls from one socket: a run of its records leaves with
      // one sendmmsg (64 at most). Runs longer than a batch, a run of one, and runs that switch
      // socket, each datagram once, from the right socket, in order.
      const io = createRtpIo('127.0.0.1', 'native') as NativeRtpIo;
      const got: { from: number; n: number }[] = [];
      const sink = createSocket('udp4');
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
      sink.on('message', (data, rinfo) => got.push({ from: rinfo.port, n: data.readUInt16BE(0) }));
      try {
        const a = (await io.bind('127.0.0.1', 0)) as RtpSocket & { slot: number };
        const b = (await io.bind('127.0.0.1', 0)) as RtpSocket & { slot: number };
        const plan: [RtpSocket & { slot: number }, number][] = [[a, 150], [b, 1], [a, 1], [b, 70]];
        const build = (base: number): { records: Uint8Array; want: { from: number; n: number }[] } => {
          const want: { from: number; n: number }[] = [];
          for (const [sock, count] of plan) for (let i = 0; i < count; i++) want.push({ from: sock.port, n: base + want.length });
          const batch = new StagedRecords();
          const payload = new Uint8Array(2);
          for (const w of want) {
            new DataView(payload.buffer).setUint16(0, w.n); // the payload: its number, big-endian
            batch.add(w.from === a.port ? a.slot : b.slot, payload, 2, LOCAL, sink.address().port);
          }
          return { records: batch.bytes.slice(0, batch.length), want };
        };
        const now = build(0);
        const sent = io.engine.stats()['sent']!;
        const calls = io.engine.stats()['sendCalls']!;
        assert.equal(io.engine.sendRecords(now.records, now.records.length), now.want.length);
        // 150 = 64 + 64 + 22, then 1, 1, and 70 = 64 + 6: seven system calls for 222 datagrams.
        assert.equal(io.engine.stats()['sendCalls']! - calls, 7);
        await until(() => got.length >= now.want.length);
        const beat = build(1000);
        let staged = false;
        const fn = (): void => {
          if (!staged) staged = io.engine.stageRecords(beat.records, beat.records.length);
        };
        io.clock.add(fn);
        await until(() => got.length >= now.want.length + beat.want.length);
        io.clock.delete(fn);
        await new Promise((r) => setTimeout(r, 60)); // nothing more comes
        // Loopback keeps each socket's order; across the two sockets the kernel may interleave.
        const bySource = (list: { from: number; n: number }[], port: number) => list.filter((g) => g.from === port).map((g) => g.n);
        const want = [...now.want, ...beat.want];
        for (const port of [a.port, b.port]) assert.deepEqual(bySource(got, port), bySource(want, port), `from ${port}`);
        assert.equal(got.length, want.length);
        assert.equal(io.engine.stats()['sent']! - sent, want.length, 'each counted as sent');
        a.close();
        b.close();
      } finally {
        sink.close();
        io.close();
      }
    });

    it('lets the process exit while its clock runs, closed or not, without aborting', { timeout: 60000 }, () => {
      // An event still queued at exit is dispatched while Node tears the environment down; the
      // addon once turned the refused call into a JavaScript exception there, and Node aborted
      // (FATAL ERROR … napi_throw) in a quarter of these exits.
      const module = new URL('../../../../edge/media/rtp-io.js', import.meta.url).href;
      const script = (close: boolean) => `
        const { createRtpIo } = await import(${JSON.stringify(module)});
        const io = createRtpIo('127.0.0.1', 'native');
        const s = await io.bind('127.0.0.1', 0);
        io.clock.add(() => {});
        await new Promise((r) => setTimeout(r, 60));
        ${close ? 's.close(); io.close();' : ''}`;
      const failed: string[] = [];
      for (let i = 0; i < 24; i++) {
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(i % 2 === 0)], { encoding: 'utf8', timeout: 10000 });
        if (r.status !== 0) failed.push(`exit ${i} (${i % 2 === 0 ? 'closed' : 'open'}): status ${r.status} signal ${r.signal} ${r.stderr.split('\n')[0]}`);
      }
      assert.deepEqual(failed, []);
    });

    it('refuses a packet that is not a typed array, naming the call', () => {
      const io = createRtpIo('127.0.0.1', 'native') as NativeRtpIo;
      try {
        for (const fn of ['stage', 'sendNow'] as const) {
          assert.throws(() => (io.engine[fn] as (...a: unknown[]) => unknown)(0, 'not bytes', 3, LOCAL, 9), (e: Error) => e instanceof TypeError && e.message.includes(`RtpIo.${fn}: expected`));
          assert.throws(() => (io.engine[fn] as (...a: unknown[]) => unknown)(0, new Uint8Array(3)), TypeError);
        }
      } finally {
        io.close();
      }
    });
  });
} else {
  // The fallback run (BOTEDGE_NATIVE=0) has no native backend; say why instead of passing silently.
  describe('RtpIo: native', () => {
    it('falls back to dgram only when the addon is disabled or missing', () => {
      assert.ok(process.env['BOTEDGE_NATIVE'] === '0' || process.env['BOTEDGE_RTP_IO'] === 'dgram', 'native RTP I/O should load in a normal build');
      native.close();
    });
  });
}

describe('createRtpIo', () => {
  it('refuses native for a host that is not IPv4', () => {
    if (process.env['BOTEDGE_NATIVE'] === '0') {
      assert.throws(() => createRtpIo('127.0.0.1', 'native'), /BOTEDGE_NATIVE=0/);
      return;
    }
    assert.throws(() => createRtpIo('::1', 'native'), /not an IPv4/);
    const io = createRtpIo('::1', 'auto');
    assert.equal(io.kind, 'dgram');
    io.close();
  });

  it('gives the native backend real instances', () => {
    const io = createRtpIo('127.0.0.1', 'dgram');
    assert.ok(io instanceof DgramRtpIo);
    io.close();
    if (process.env['BOTEDGE_NATIVE'] !== '0') {
      const n = createRtpIo('127.0.0.1', 'native');
      assert.ok(n instanceof NativeRtpIo);
      n.close();
    }
  });
});
