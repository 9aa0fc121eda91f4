/**
 * Per-client TCP connection caps on the real server (tcp.maxPerClient per
 * address, tcp.maxPerPrefix per IPv6 /64), and TCP reassembly costing linear
 * copying through a real socket.
 *
 * 127.0.0.0/8 is all loopback on Linux, so connections from 127.0.0.2 and
 * 127.0.0.3 are two different clients. All of ::1 is one /64: a per-prefix
 * cap below the per-client one shows the prefix cap biting.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, startTestServer, type TestServer } from '../support/server.ts';
import { dig } from '../support/dig.ts';
import { metricSum } from '../support/metrics-text.ts';
import { ednsOption, frame, parseHeader, rawQuery, TcpPeer, waitUntil } from '../support/rawdns.ts';

const ZONE = `origin: limits.test
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 60 }
records:
  "@": { NS: [ns1] }
  ns1: { A: 127.0.0.1 }
  www: { A: [192.0.2.1, 192.0.2.2] }
`;
const PER_CLIENT = 4;

function expectWww(answer: Buffer, id: number): void {
  const h = parseHeader(answer);
  expect(h.id).toBe(id);
  expect(h.rcode).toBe(0);
  expect(h.ancount).toBe(2);
}

async function refusedTotal(s: TestServer, reason: string): Promise<number> {
  return metricSum(await s.server.metrics.text(), 'rrdns_tcp_refused_total', { reason });
}

describe('per-client TCP connection cap (IPv4)', () => {
  let s: TestServer;
  beforeAll(async () => {
    // Long idle timeout: the held connections must outlive the test.
    s = await startTestServer({ 'limits.test.yaml': ZONE }, { tcp: { maxConnections: 64, idleTimeoutMs: 30_000, maxPerClient: PER_CLIENT, maxPerPrefix: 64 } });
  });
  afterAll(() => s.close());

  it('holds the per-client maximum from one address; the next is closed unanswered; another address still gets answers; a freed slot is usable again', { timeout: 30_000 }, async () => {
    const held: TcpPeer[] = [];
    const peers: TcpPeer[] = [];
    try {
      for (let i = 0; i < PER_CLIENT; i++) {
        const peer = await TcpPeer.connect(s.port, { localAddress: '127.0.0.2' });
        held.push(peer);
        // An answer proves the server accepted (and counts) this connection.
        expectWww(await peer.exchange(rawQuery('www.limits.test', { id: 10 + i })), 10 + i);
      }
      const before = await refusedTotal(s, 'per-client');

      // One more from 127.0.0.2: the handshake completes in the kernel, then the server closes it without an answer.
      const over = await TcpPeer.connect(s.port, { localAddress: '127.0.0.2' });
      peers.push(over);
      over.send(rawQuery('www.limits.test', { id: 99 }));
      await over.waitClosed(5000);
      expect(over.endedByPeer).toBe(true);
      expect(over.messages).toEqual([]);
      expect(await refusedTotal(s, 'per-client')).toBe(before + 1);

      // Another address is not affected: a raw TCP query and a real dig +tcp from 127.0.0.3.
      const other = await TcpPeer.connect(s.port, { localAddress: '127.0.0.3' });
      peers.push(other);
      expectWww(await other.exchange(rawQuery('www.limits.test', { id: 7 })), 7);
      const r = await dig(s.port, ['+tcp', '-b', '127.0.0.3', 'www.limits.test', 'A']);
      expect(r.rcode).toBe('NOERROR');
      expect(r.answer.map((a) => a.data).sort()).toEqual(['192.0.2.1', '192.0.2.2']);

      // The held ones were not disturbed.
      for (const [i, peer] of held.entries()) expectWww(await peer.exchange(rawQuery('www.limits.test', { id: 20 + i })), 20 + i);

      // Close two of 127.0.0.2's connections: it can connect again (twice), and not a third time.
      for (const p of held.splice(0, 2)) {
        p.destroy();
        await p.waitClosed(5000);
      }
      await waitUntil(() => s.server.transportStats().tcpConnections === held.length + 1, 5000, 'the server to see the closes');
      for (let i = 0; i < 2; i++) {
        const again = await TcpPeer.connect(s.port, { localAddress: '127.0.0.2' });
        held.push(again);
        expectWww(await again.exchange(rawQuery('www.limits.test', { id: 30 + i })), 30 + i);
      }
      const third = await TcpPeer.connect(s.port, { localAddress: '127.0.0.2' });
      peers.push(third);
      await third.waitClosed(5000);
      expect(third.messages).toEqual([]);
      expect(await refusedTotal(s, 'per-client')).toBe(before + 2);
    } finally {
      for (const p of [...held, ...peers]) p.destroy();
    }
    // Counts went back to nothing: every connection was uncounted exactly once.
    await waitUntil(() => s.server.transportStats().tcpConnections === 0, 5000, 'every connection to close');
    const fresh: TcpPeer[] = [];
    try {
      for (let i = 0; i < PER_CLIENT; i++) {
        const p = await TcpPeer.connect(s.port, { localAddress: '127.0.0.2' });
        fresh.push(p);
        expectWww(await p.exchange(rawQuery('www.limits.test', { id: 40 + i })), 40 + i);
      }
    } finally {
      for (const p of fresh) p.destroy();
    }
  });

  it('connections reset by the client before or right after connecting are uncounted too', { timeout: 30_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      const burst = Array.from({ length: PER_CLIENT * 3 }, () => {
        const socket = net.connect({ port: s.port, host: '127.0.0.1', localAddress: '127.0.0.4' });
        socket.on('error', () => undefined);
        socket.once('connect', () => socket.resetAndDestroy());
        return new Promise<void>((resolve) => socket.once('close', () => resolve()));
      });
      await Promise.all(burst);
    }
    await waitUntil(() => s.server.transportStats().tcpConnections === 0, 5000, 'every connection to close');
    // Had any been counted twice or never, 127.0.0.4 would now be refused (or the map would keep it).
    const peers: TcpPeer[] = [];
    try {
      for (let i = 0; i < PER_CLIENT; i++) {
        const p = await TcpPeer.connect(s.port, { localAddress: '127.0.0.4' });
        peers.push(p);
        expectWww(await p.exchange(rawQuery('www.limits.test', { id: 50 + i })), 50 + i);
      }
    } finally {
      for (const p of peers) p.destroy();
    }
  });
});

describe('refusals are counted, and logged rate-limited', () => {
  it('40 refused connections: 40 counted, a burst of log lines at most', { timeout: 30_000 }, async () => {
    const { logger, lines } = captureLogger('info');
    const s = await startTestServer({ 'limits.test.yaml': ZONE }, { tcp: { maxConnections: 64, idleTimeoutMs: 30_000, maxPerClient: 2, maxPerPrefix: 64 } }, logger);
    const held: TcpPeer[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const p = await TcpPeer.connect(s.port, { localAddress: '127.0.0.5' });
        held.push(p);
        expectWww(await p.exchange(rawQuery('www.limits.test', { id: 80 + i })), 80 + i);
      }
      const started = Date.now();
      for (let i = 0; i < 40; i++) {
        const p = await TcpPeer.connect(s.port, { localAddress: '127.0.0.5' });
        await p.waitClosed(5000);
        expect(p.messages).toEqual([]);
      }
      const seconds = Math.ceil((Date.now() - started) / 1000);
      expect(await refusedTotal(s, 'per-client')).toBe(40);
      const logged = lines.filter((l) => l.msg === 'transport error' && l.where === 'tcp accept');
      expect(logged.length).toBeGreaterThan(0);
      // LogLimiter defaults: a burst of 10, then 1 a second per place and code.
      expect(logged.length).toBeLessThanOrEqual(10 + seconds + 1);
      expect(JSON.stringify(logged[0])).toContain('127.0.0.5');
      // The held connections still work.
      for (const [i, p] of held.entries()) expectWww(await p.exchange(rawQuery('www.limits.test', { id: 90 + i })), 90 + i);
    } finally {
      for (const p of held) p.destroy();
      await s.close();
    }
  });
});

describe('per-/64 TCP connection cap (IPv6 ::1)', () => {
  let s: TestServer | undefined;
  beforeAll(async () => {
    s = await startTestServer({ 'limits.test.yaml': ZONE }, { listen: ['[::1]:0'], tcp: { maxConnections: 64, idleTimeoutMs: 30_000, maxPerClient: 8, maxPerPrefix: 3 } });
  });
  afterAll(() => s?.close());

  it('closes the connection over the /64 cap even though the address is under its own cap', { timeout: 30_000 }, async () => {
    const srv = s!;
    const held: TcpPeer[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const p = await TcpPeer.connect(srv.port, { host: '::1' });
        held.push(p);
        expectWww(await p.exchange(rawQuery('www.limits.test', { id: 60 + i })), 60 + i);
      }
      const over = await TcpPeer.connect(srv.port, { host: '::1' });
      held.push(over);
      over.send(rawQuery('www.limits.test', { id: 69 }));
      await over.waitClosed(5000);
      expect(over.messages).toEqual([]);
      expect(await refusedTotal(srv, 'per-prefix')).toBe(1);
      expect(await refusedTotal(srv, 'per-client')).toBe(0);
    } finally {
      for (const p of held) p.destroy();
    }
  });
});

describe('global cap', () => {
  it('counts connections the listener drops over maxConnections as reason="total"', { timeout: 30_000 }, async () => {
    const s = await startTestServer({ 'limits.test.yaml': ZONE }, { tcp: { maxConnections: 2, idleTimeoutMs: 30_000, maxPerClient: 16, maxPerPrefix: 64 } });
    const held: TcpPeer[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const p = await TcpPeer.connect(s.port, { localAddress: `127.0.0.${10 + i}` });
        held.push(p);
        expectWww(await p.exchange(rawQuery('www.limits.test', { id: 70 + i })), 70 + i);
      }
      const over = await TcpPeer.connect(s.port, { localAddress: '127.0.0.12' });
      held.push(over);
      await over.waitClosed(5000);
      expect(over.messages).toEqual([]);
      expect(await refusedTotal(s, 'total')).toBe(1);
      expect(await refusedTotal(s, 'per-client')).toBe(0);
    } finally {
      for (const p of held) p.destroy();
      await s.close();
    }
  });
});

describe('TCP reassembly through a real socket', () => {
  it('copies at most 3x the octets received for a large query one octet per segment and pipelined queries split mid-message', { timeout: 60_000 }, async () => {
    const s = await startTestServer({ 'limits.test.yaml': ZONE });
    const peer = await TcpPeer.connect(s.port);
    try {
      // A ~16 KB query (EDNS padding, RFC 7830), written one octet per write, each after the last has left.
      const big = frame(rawQuery('www.limits.test', { id: 1, opt: { udpSize: 1232, rdata: ednsOption(12, Buffer.alloc(16_000)) } }));
      for (let i = 0; i < big.length; i++) await new Promise<void>((resolve) => peer.socket.write(big.subarray(i, i + 1), () => resolve()));
      await peer.waitForMessages(1, 10_000);
      expect(parseHeader(peer.messages[0]!).id).toBe(1);
      // 300 small queries in segments of 3.5 queries: every segment ends inside a message.
      const small = Buffer.concat(Array.from({ length: 300 }, (_, i) => frame(rawQuery('www.limits.test', { id: 100 + i }))));
      const step = Math.floor(small.length / 300 * 3.5);
      for (let at = 0; at < small.length; at += step) await new Promise<void>((resolve) => peer.socket.write(small.subarray(at, at + step), () => resolve()));
      await peer.waitForMessages(301, 10_000);
      expect(peer.messages.slice(1).map((m) => parseHeader(m).id)).toEqual(Array.from({ length: 300 }, (_, i) => 100 + i));
      const { tcpReceivedBytes, tcpReassemblyCopiedBytes } = s.server.transportStats();
      expect(tcpReceivedBytes).toBe(big.length + small.length);
      expect(tcpReassemblyCopiedBytes, `copied ${tcpReassemblyCopiedBytes} of ${tcpReceivedBytes} received`).toBeLessThanOrEqual(3 * tcpReceivedBytes);
      // Not trivially zero: the dribbled query had to be copied together.
      expect(tcpReassemblyCopiedBytes).toBeGreaterThan(big.length / 2);
    } finally {
      peer.destroy();
      await s.close();
    }
  });
});
