import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RouteSchema } from '../../../edge/config.js';
import { newPlayout, PlayoutBuffer } from '../../../edge/media/playout.js';

const ramp = (from: number, n: number) => Int16Array.from({ length: n }, (_, i) => from + i);

describe('PlayoutBuffer', () => {
  it('plays a burst out one frame at a time, in order, then silence', () => {
    const b = new PlayoutBuffer(1000);
    b.push(ramp(1, 400));
    const out = new Int16Array(160);
    const marks: string[] = [];
    assert.equal(b.read(out, (m) => marks.push(m)), 160);
    assert.deepEqual([out[0], out[159]], [1, 160]);
    assert.equal(b.read(out, (m) => marks.push(m)), 160);
    assert.equal(out[0], 161);
    assert.equal(b.read(out, (m) => marks.push(m)), 80);
    assert.deepEqual([out[79], out[80], out[159]], [400, 0, 0]);
    assert.equal(b.read(out, () => undefined), 0);
    assert.equal(b.buffered, 0);
  });

  it('reports a mark only when the audio queued before it has been played', () => {
    const b = new PlayoutBuffer(1000);
    const marks: string[] = [];
    b.push(ramp(1, 200));
    b.mark('after-200');
    b.push(ramp(1, 100));
    b.mark('after-300');
    const out = new Int16Array(160);
    b.read(out, (m) => marks.push(m));
    assert.equal(marks.length, 0);
    b.read(out, (m) => marks.push(m));
    assert.deepEqual(marks, ['after-200', 'after-300']);
  });

  it('a mark on an empty buffer is reached at the next read', () => {
    const b = new PlayoutBuffer(100);
    const marks: string[] = [];
    b.mark('now');
    b.read(new Int16Array(160), (m) => marks.push(m));
    assert.deepEqual(marks, ['now']);
  });

  it('clear drops all audio at once and returns the marks that will never play', () => {
    const b = new PlayoutBuffer(1000);
    b.push(ramp(1, 500));
    b.mark('a');
    b.mark('b');
    assert.deepEqual(b.clear(), ['a', 'b']);
    const out = new Int16Array(160);
    assert.equal(b.read(out, () => assert.fail('no mark after clear')), 0);
    assert.ok(out.every((v) => v === 0));
  });

  it('is bounded: past capacity the oldest audio is dropped and counted', () => {
    const b = new PlayoutBuffer(300);
    b.push(ramp(1, 200));
    b.push(ramp(201, 200));
    assert.equal(b.buffered, 300);
    assert.equal(b.overflowSamples, 100);
    const out = new Int16Array(300);
    b.read(out, () => undefined);
    assert.deepEqual([out[0], out[299]], [101, 400]);
    b.push(ramp(1, 1000));
    assert.equal(b.overflowSamples, 100 + 700);
    b.read(out, () => undefined);
    assert.deepEqual([out[0], out[299]], [701, 1000]);
  });

  it('wraps around the ring without losing or reordering samples', () => {
    const b = new PlayoutBuffer(170);
    const out = new Int16Array(160);
    let next = 1;
    for (let i = 0; i < 20; i++) {
      b.push(ramp(next, 160));
      b.read(out, () => undefined);
      assert.equal(out[0], next);
      assert.equal(out[159], next + 159);
      next += 160;
    }
  });
});

describe('PlayoutBuffer.clearMarks', () => {
  it('forgets pending marks without touching the audio', () => {
    const b = new PlayoutBuffer(1000);
    b.push(ramp(1, 100));
    b.mark('gone');
    b.clearMarks();
    const out = new Int16Array(160);
    assert.equal(b.read(out, () => assert.fail('no mark after clearMarks')), 100);
    assert.equal(out[99], 100);
  });
});

describe('PlayoutBuffer memory', () => {
  it('starts small and grows to capacity only when a burst needs it, keeping order', () => {
    const b = new PlayoutBuffer(48000, 8000);
    assert.equal(b.allocated, 8000);
    const out = new Int16Array(160);
    b.push(ramp(1, 5000));
    b.read(out, () => undefined); // read position 160: the ring now wraps on growth
    b.push(ramp(5001, 20000));
    assert.equal(b.allocated, 32000);
    assert.equal(b.buffered, 24840);
    assert.equal(out[0], 1);
    const all = new Int16Array(24840);
    b.read(all, () => undefined);
    assert.equal(all[0], 161);
    assert.equal(all[24839], 25000);
    for (let i = 1; i < all.length; i++) assert.equal(all[i], all[i - 1]! + 1);
    b.push(ramp(1, 60000));
    assert.equal(b.allocated, 48000);
    assert.equal(b.overflowSamples, 12000);
  });

  describe('live-stream trim', () => {
    const frame = () => new Int16Array(160);

    it('is off unless asked for', () => assert.equal(new PlayoutBuffer(8000).trimWindow, 0));

    /**
     * A bot streaming speech in real time (each frame a ramp, never silent): one frame in per frame
     * out, then two frames land in one tick (jitter) and leave a standing one-frame cushion.
     */
    const liveStream = (b: PlayoutBuffer, out: Int16Array) => {
      const s = {
        next: 1,
        push() {
          b.push(ramp(s.next, 160));
          s.next += 160;
        },
      };
      for (let i = 0; i < 10; i++) {
        s.push();
        b.read(out, () => undefined);
      }
      s.push();
      s.push();
      b.read(out, () => undefined);
      return s;
    };

    it('drops one frame of a standing queue left by a jitter burst, so latency comes back down', () => {
      const b = new PlayoutBuffer(8000, 8000, 50);
      const out = frame();
      const bot = liveStream(b, out);
      assert.equal(b.buffered, 160, 'a standing one-frame queue: +20 ms for the rest of the call without the trim');
      let reads = 0;
      while (b.trimmedSamples === 0 && reads < 200) {
        bot.push();
        b.read(out, () => undefined);
        reads++;
      }
      assert.equal(b.trimmedSamples, 160);
      assert.ok(reads <= 100, `trimmed after ${reads} reads`);
      assert.equal(b.buffered, 0);
      // Audio goes on in order after the dropped frame, and nothing more is dropped.
      for (let i = 0; i < 100; i++) {
        bot.push();
        b.read(out, () => undefined);
        assert.equal(out[0], bot.next - 160);
      }
      assert.equal(b.trimmedSamples, 160);
    });

    it('never trims a TTS burst being played out', () => {
      const b = new PlayoutBuffer(48000, 8000, 50);
      b.push(ramp(1, 16000)); // 2 s in one message
      b.mark('end');
      const out = frame();
      const marks: string[] = [];
      for (let i = 0; i < 100; i++) {
        b.read(out, (m) => marks.push(m));
        assert.equal(out[0], i * 160 + 1);
      }
      assert.equal(b.trimmedSamples, 0);
      assert.deepEqual(marks, ['end']);
    });

    it('in silence mode drops only a silent frame of the standing queue: the next pause is 20 ms shorter, no speech is lost', () => {
      const b = new PlayoutBuffer(8000, 8000, 50, 'silence');
      const out = frame();
      const bot = liveStream(b, out);
      assert.equal(b.buffered, 160, 'a standing one-frame cushion');
      // Three seconds of speech: the cushion stands, but no frame is silent, so nothing is dropped
      // and every sample is played in order.
      for (let i = 0; i < 150; i++) {
        bot.push();
        b.read(out, () => undefined);
        assert.equal(out[0], bot.next - 320, 'speech plays in order, a frame behind');
      }
      assert.equal(b.trimmedSamples, 0);
      // A pause in the bot's speech (silent frames, still in real time): the first silent frame to
      // reach the head is dropped and the stream is a frame earlier from then on.
      let read = 0;
      for (let i = 0; i < 5; i++) {
        b.push(new Int16Array(160).fill(i % 2 === 0 ? 40 : -40)); // within ±64: silence
        b.read(out, () => undefined);
        read++;
      }
      assert.equal(b.trimmedSamples, 160, `one silent frame dropped after ${read} reads`);
      assert.ok(b.buffered < 160, 'the cushion is gone');
      bot.push();
      b.read(out, () => undefined);
      assert.equal(out[0], bot.next - 160, 'the next word plays at once, a frame earlier than before');
    });

    it('in silence mode leaves a TTS burst alone even where it is silent', () => {
      const b = new PlayoutBuffer(48000, 8000, 50, 'silence');
      b.push(new Int16Array(16000)); // 2 s of silence in one message: a burst, not a cushion
      const out = frame();
      for (let i = 0; i < 100; i++) b.read(out, () => undefined);
      assert.equal(b.trimmedSamples, 0);
      assert.equal(b.buffered, 0);
    });

    it('is what a route asks for: silence by default, any for true, none for off or false', () => {
      const route = (playoutTrim?: unknown) => RouteSchema.parse({ url: 'ws://127.0.0.1:9/bot', ...(playoutTrim === undefined ? {} : { playoutTrim }) }).playoutTrim;
      assert.equal(route(), 'silence');
      assert.equal(route(true), 'any');
      assert.equal(route(false), 'off');
      assert.equal(route('off'), 'off');
      assert.equal(route('any'), 'any');
      assert.throws(() => route('sometimes'));
      assert.equal(newPlayout(8000, 1600, 'silence').trimMode, 'silence');
      assert.equal(newPlayout(8000, 1600, 'silence').trimWindow, 50);
      assert.equal(newPlayout(8000, 1600, 'any').trimMode, 'any');
      assert.equal(newPlayout(8000, 1600, 'off').trimWindow, 0);
      assert.equal(newPlayout(8000, 1600).trimWindow, 0);
    });

    it('leaves a queue that empties now and then alone, and can be switched off', () => {
      const out = frame();
      for (const window of [50, 0]) {
        const b = new PlayoutBuffer(8000, 8000, window);
        for (let i = 0; i < 200; i++) {
          // Two frames every other tick: the queue goes 1, 0, 1, 0…
          if (i % 2 === 0) {
            b.push(ramp(1, 160));
            b.push(ramp(1, 160));
          }
          b.read(out, () => undefined);
        }
        assert.equal(b.trimmedSamples, 0);
      }
      const off = new PlayoutBuffer(8000, 8000, 0);
      off.push(ramp(1, 320));
      for (let i = 0; i < 100; i++) {
        off.push(ramp(1, 160));
        off.read(out, () => undefined);
      }
      assert.equal(off.trimmedSamples, 0);
      assert.equal(off.buffered, 320);
    });
  });
});
