/**
 * TCP reassembly (src/wire/tcp-reassembly.ts) costs linear copying whatever
 * the segmentation: every adversarial pattern below checks that the octets
 * copied stay within 3x the octets received (no timing involved), and that
 * the messages come out whole and unchanged. Copying the pending bytes on
 * every segment (concatenation), or on every append after a message was
 * taken, fails these bounds by orders of magnitude.
 */
import { describe, expect, it } from 'vitest';
import { TcpReassembly } from '../../src/wire/tcp-reassembly.ts';
import { prng } from '../support/rawdns.ts';

/** A framed message of `size` octets whose body encodes `seed` (so mix-ups show). */
function framed(size: number, seed: number): Buffer {
  const b = Buffer.alloc(2 + size);
  b.writeUInt16BE(size, 0);
  for (let i = 0; i < size; i++) b[2 + i] = (seed + i * 7) & 0xff;
  return b;
}


/** Feeds `stream` in the given segment sizes, taking every complete message after each; returns them. */
function feed(r: TcpReassembly, stream: Buffer, sizes: Iterable<number>): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    if (at >= stream.length) break;
    // A fresh Buffer per segment, as node:net delivers them.
    r.append(Buffer.from(stream.subarray(at, Math.min(stream.length, at + n))));
    at += n;
    for (let m = r.take(); m; m = r.take()) out.push(Buffer.from(m));
  }
  expect(at).toBeGreaterThanOrEqual(stream.length);
  return out;
}

function* repeat(n: number): Generator<number> {
  for (;;) yield n;
}

function expectLinear(r: TcpReassembly): void {
  const { receivedBytes, copiedBytes } = r.stats;
  expect(copiedBytes, `copied ${copiedBytes} for ${receivedBytes} received`).toBeLessThanOrEqual(3 * receivedBytes);
}

describe('TcpReassembly', () => {
  it('a 65,535-octet message one octet per segment', () => {
    const r = new TcpReassembly();
    const msg = framed(65_535, 1);
    const out = feed(r, msg, repeat(1));
    expect(out).toHaveLength(1);
    expect(out[0]!.equals(msg.subarray(2))).toBe(true);
    expect(r.stats.receivedBytes).toBe(65_537);
    expectLinear(r);
    expect(r.length).toBe(0);
  });

  it('many small messages with a partial one behind each segment', () => {
    const msgs = Array.from({ length: 3000 }, (_, i) => framed(20 + (i % 40), i));
    const stream = Buffer.concat(msgs);
    const r = new TcpReassembly();
    // Segments of 3.5 messages: every segment ends inside a message.
    const out = feed(r, stream, repeat(Math.floor(3.5 * 42)));
    expect(out.map((m) => m.toString('hex'))).toEqual(msgs.map((m) => m.subarray(2).toString('hex')));
    expectLinear(r);
  });

  it('a small message and a large partial one, then the rest one octet at a time', () => {
    const small = framed(12, 3);
    const big = framed(60_000, 4);
    const stream = Buffer.concat([small, big]);
    const r = new TcpReassembly();
    const out = feed(r, stream, [small.length + 30_000, ...Array<number>(30_002).fill(1)]);
    expect(out).toHaveLength(2);
    expect(out[1]!.equals(big.subarray(2))).toBe(true);
    expectLinear(r);
  });

  it('one message taken per append while many wait (a reader held back by backpressure)', () => {
    // 4,000 queued queries arrive at once; the connection then takes one per segment of one octet.
    const msgs = Array.from({ length: 4000 }, (_, i) => framed(14, i));
    const tail = framed(200, 9);
    const r = new TcpReassembly();
    r.append(Buffer.concat(msgs));
    let taken = 0;
    for (let i = 0; i < tail.length; i++) {
      r.append(Buffer.from(tail.subarray(i, i + 1)));
      const m = r.take();
      if (m) {
        expect(m.equals(msgs[taken]!.subarray(2))).toBe(true);
        taken++;
      }
    }
    for (let m = r.take(); m; m = r.take()) taken++;
    expect(taken).toBe(4001);
    expectLinear(r);
  });

  it('random segmentations of random message sizes', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const next = prng(seed);
      const msgs = Array.from({ length: 400 }, (_, i) => framed(next() < 0.1 ? Math.floor(next() * 65_535) : Math.floor(next() * 300), i));
      const stream = Buffer.concat(msgs);
      const r = new TcpReassembly();
      const sizes = (function* () {
        for (;;) yield next() < 0.5 ? 1 + Math.floor(next() * 3) : 1 + Math.floor(next() * 70_000);
      })();
      const out = feed(r, stream, sizes);
      expect(out.length, `seed ${seed}`).toBe(msgs.length);
      for (const [i, m] of out.entries()) expect(m.equals(msgs[i]!.subarray(2)), `seed ${seed} message ${i}`).toBe(true);
      expectLinear(r);
    }
  });

  it('whole messages in one segment are used in place, without copying', () => {
    const r = new TcpReassembly();
    const seg = Buffer.concat([framed(30, 1), framed(40, 2)]);
    r.append(seg);
    const a = r.take()!;
    const b = r.take()!;
    expect(a.buffer).toBe(seg.buffer);
    expect(b.length).toBe(40);
    expect(r.take()).toBeUndefined();
    expect(r.stats.copiedBytes).toBe(0);
  });

  it('a message handed out stays unchanged while more arrives', () => {
    const r = new TcpReassembly();
    const first = framed(100, 1);
    const second = framed(5000, 2);
    const stream = Buffer.concat([first, second]);
    r.append(Buffer.from(stream.subarray(0, 50)));
    r.append(Buffer.from(stream.subarray(50, 120)));
    const held = r.take()!;
    const copy = Buffer.from(held);
    for (let at = 120; at < stream.length; at += 7) r.append(Buffer.from(stream.subarray(at, at + 7)));
    expect(held.equals(copy)).toBe(true);
    expect(r.take()!.equals(second.subarray(2))).toBe(true);
  });

  it('a length field split across segments, and an empty segment', () => {
    const r = new TcpReassembly();
    const m = framed(300, 5);
    r.append(m.subarray(0, 1));
    expect(r.nextSize()).toBe(-1);
    r.append(Buffer.alloc(0));
    r.append(Buffer.from(m.subarray(1, 2)));
    expect(r.nextSize()).toBe(300);
    expect(r.take()).toBeUndefined();
    r.append(Buffer.from(m.subarray(2)));
    expect(r.take()!.equals(m.subarray(2))).toBe(true);
    expect(r.length).toBe(0);
  });

  it('shares its counters with the listener', () => {
    const stats = { receivedBytes: 0, copiedBytes: 0 };
    const a = new TcpReassembly(stats);
    const b = new TcpReassembly(stats);
    a.append(Buffer.from([0, 1]));
    b.append(Buffer.from([0, 1, 9]));
    a.append(Buffer.from([7]));
    expect(stats.receivedBytes).toBe(6);
    expect(stats.copiedBytes).toBe(3);
  });
});
