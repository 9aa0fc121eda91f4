/**
 * TCP per RFC 7766 and against abusive clients: framing, partial reads,
 * pipelining, connection caps, idle and slow-drip timeouts, and backpressure
 * against a client that never reads.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { buildQuery, udpQuery, addresses } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const ZONE = `
origin: example.test
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 60 }
records:
  "@": { NS: [ns1] }
  ns1: { A: 127.0.0.1 }
  www: { A: [127.0.0.10, 127.0.0.11, 127.0.0.12] }
`;
const LIMITS = { maxConnections: 8, idleTimeoutMs: 800, maxPendingAnswers: 8, maxQueuedBytes: 16 * 1024 };

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ 'example.test.yaml': ZONE }, { tcp: LIMITS });
});
afterAll(() => t.close());

const frame = (msg: Buffer) => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(t.port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Collects framed replies until `count` arrived (bounded wait). */
function readReplies(socket: net.Socket, count: number, timeoutMs = 5000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`got ${out.length}/${count} replies`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= count) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(out);
      }
    };
    socket.on('data', onData);
  });
}

const closed = (socket: net.Socket, timeoutMs = 10_000) =>
  new Promise<boolean>((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

async function stillServes(): Promise<void> {
  expect(addresses((await udpQuery(t.port, 'www.example.test')).packet)).toHaveLength(3);
  const s = await connect();
  s.write(frame(buildQuery('www.example.test', { id: 777 })));
  const [reply] = await readReplies(s, 1);
  expect(Packet.parse(reply!).header.id).toBe(777);
  s.destroy();
}

describe('RFC 7766 framing', () => {
  it('answers a query written one byte at a time', async () => {
    const s = await connect();
    const bytes = frame(buildQuery('www.example.test', { id: 1001 }));
    const replies = readReplies(s, 1);
    for (const b of bytes) {
      s.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    const [reply] = await replies;
    const p = Packet.parse(reply!);
    expect(p.header.id).toBe(1001);
    expect(addresses(p)).toHaveLength(3);
    s.destroy();
  });

  it('answers several pipelined queries in one write, in order, rotating each time', async () => {
    const s = await connect();
    const ids = [11, 12, 13, 14, 15, 16];
    s.write(Buffer.concat(ids.map((id) => frame(buildQuery('www.example.test', { id })))));
    const replies = (await readReplies(s, ids.length)).map((r) => Packet.parse(r));
    expect(replies.map((p) => p.header.id)).toEqual(ids);
    const firsts = replies.map((p) => addresses(p)[0]);
    expect(new Set(firsts).size).toBe(3);
    s.destroy();
  });

  it('a zero-length frame and a garbage frame do not end the connection', async () => {
    const s = await connect();
    s.write(Buffer.concat([Buffer.from([0, 0]), frame(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])), frame(buildQuery('www.example.test', { id: 4242 }))]));
    const replies = await readReplies(s, 2);
    const ids = replies.map((r) => r.readUInt16BE(0));
    expect(ids).toContain(4242);
    s.destroy();
  });
});

describe('limits', () => {
  it('closes connections beyond maxConnections, and accepts again once they go', async () => {
    const sockets = await Promise.all(Array.from({ length: LIMITS.maxConnections }, connect));
    const extra = await Promise.all(Array.from({ length: 4 }, () => connect().catch(() => null)));
    const extraClosed = await Promise.all(extra.map((s) => (s ? closed(s, 3000) : Promise.resolve(true))));
    expect(extraClosed.every(Boolean)).toBe(true);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    await stillServes();
  });

  it('closes an idle connection', async () => {
    const s = await connect();
    expect(await closed(s)).toBe(true);
  });

  it('closes a client that drips a message slower than the idle timeout', async () => {
    const s = await connect();
    const bytes = frame(buildQuery('www.example.test'));
    let i = 0;
    // One byte every 300 ms keeps the socket active but never completes the message in time.
    const timer = setInterval(() => {
      if (i < bytes.length && !s.destroyed) s.write(bytes.subarray(i, ++i));
    }, 300);
    const wasClosed = await closed(s, 15_000);
    clearInterval(timer);
    expect(wasClosed).toBe(true);
    expect(i).toBeLessThan(bytes.length);
  });

  it('stops reading from a client that never reads its answers (backpressure), and others are served', async () => {
    const s = await connect();
    s.pause(); // never read
    const query = frame(buildQuery('www.example.test'));
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => query));
    let written = 0;
    // Bounded: at most 200 batches (200 000 queries) or until our own send buffer backs up.
    for (let i = 0; i < 200; i++) {
      written += batch.length;
      if (!s.write(batch)) break;
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 500));
    // The server stopped reading: our writes pile up on our side instead of being consumed.
    expect(s.writableLength).toBeGreaterThan(0);
    // It stopped answering too: what it queued for us stays within the cap (plus one answer),
    // although we sent it far more queries than that.
    const stats = t.server.transportStats();
    expect(stats.tcpConnections).toBe(1);
    expect(stats.tcpPeakQueuedBytes).toBeGreaterThan(0);
    expect(stats.tcpPeakQueuedBytes).toBeLessThanOrEqual(LIMITS.maxQueuedBytes + 512);
    expect(written).toBeGreaterThan(20 * LIMITS.maxQueuedBytes);
    await stillServes();
    s.destroy();
    expect(written).toBeGreaterThan(0);
  });

  it('100 concurrent clients each get their answer', async () => {
    const many = await startTestServer({ 'example.test.yaml': ZONE }, { tcp: { ...LIMITS, maxConnections: 200 } });
    try {
      const results = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const s = await new Promise<net.Socket>((resolve) => {
            const c = net.connect(many.port, '127.0.0.1', () => resolve(c));
          });
          s.write(frame(buildQuery('www.example.test', { id: i })));
          const [reply] = await readReplies(s, 1);
          s.destroy();
          return Packet.parse(reply!).header.id;
        }),
      );
      expect(results).toEqual(Array.from({ length: 100 }, (_, i) => i));
    } finally {
      await many.close();
    }
  });
});
