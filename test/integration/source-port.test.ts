/**
 * Queries from the edges of the source-port range. A reply to port 0 cannot
 * be sent at all (Node's dgram throws ERR_SOCKET_BAD_PORT synchronously; once
 * that killed the server): it must be dropped and counted in /metrics, and the
 * server must keep answering, in the main thread and in the UDP worker
 * threads alike. Port 0 needs a raw socket (root and python3: skipped with a
 * notice otherwise); ports 65535 and 1 are ordinary sockets, whose queries
 * must simply be answered.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { addresses, buildQuery, udpQuery } from '../support/dnsclient.ts';
import { dig } from '../support/dig.ts';
import { metricSum } from '../support/metrics-text.ts';
import { parseHeader, withTimeout } from '../support/rawdns.ts';
import { rawUdpUnavailable, sendRawUdp } from '../support/raw-udp.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { missing } from '../support/tools.ts';

const ZONE = `$ORIGIN sp.test.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 900 1209600 60
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.1
www  IN A   192.0.2.2
`;
const WWW = ['192.0.2.1', '192.0.2.2'];

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(udpThreads: number): Promise<TestServer> {
  const t = await startTestServer({ 'sp.test.zone': ZONE }, { udpThreads });
  servers.push(t);
  return t;
}

const badPortDrops = async (t: TestServer) => metricSum(await t.server.metrics.text(), 'rrdns_send_errors_total', { transport: 'udp', code: 'ERR_SOCKET_BAD_PORT' });

async function answersWww(t: TestServer): Promise<void> {
  expect(addresses((await udpQuery(t.port, 'www.sp.test')).packet).sort()).toEqual(WWW);
  if (!missing('dig', 'bind9-dnsutils')) {
    const r = await dig(t.port, ['www.sp.test', 'A']);
    expect(r.rcode).toBe('NOERROR');
    expect(r.answer.map((a) => a.data).sort()).toEqual(WWW);
    const tcp = await dig(t.port, ['+tcp', 'www.sp.test', 'A']);
    expect(tcp.answer.map((a) => a.data).sort()).toEqual(WWW);
  }
}

const rawSkip = rawUdpUnavailable();
if (rawSkip) console.warn(`[rrdns tests] skipping the UDP source port 0 tests: ${rawSkip}`);

describe.skipIf(rawSkip !== undefined)('UDP queries from source port 0 (raw socket)', () => {
  // 32 spoofed sources: the kernel spreads them over the threads' sockets by address (SO_REUSEPORT),
  // so with a worker thread both threads get some (all on one: chance 2^-31).
  const SOURCES = Array.from({ length: 32 }, (_, i) => `127.0.${Math.floor(i / 8)}.${(i % 8) + 2}`);
  const cases = [
    { name: 'main thread only', udpThreads: 1 },
    { name: 'with a UDP worker thread', udpThreads: 2 },
  ];
  for (const c of cases) {
    it(`${c.name}: every query is dropped and counted, and the server keeps answering`, async () => {
      const t = await serve(c.udpThreads);
      await answersWww(t);
      expect(await badPortDrops(t)).toBe(0);
      const query = buildQuery('www.sp.test', { id: 0x0bad });
      for (const src of SOURCES) await sendRawUdp({ srcHost: src, srcPort: 0, dstPort: t.port, payload: query, count: 3 });
      // Workers hand their counts over once a second: wait (bounded) for all of them.
      const expected = SOURCES.length * 3;
      for (let i = 0; i < 50 && (await badPortDrops(t)) < expected; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await badPortDrops(t)).toBe(expected);
      await answersWww(t);
      if (c.udpThreads > 1) {
        // The worker is still there and still answers its share.
        expect(t.server.udpThreadStats().workers).toBe(1);
        const before = t.server.udpThreadStats().answeredByWorkers;
        for (let i = 0; i < 40; i++) expect(addresses((await udpQuery(t.port, 'www.sp.test')).packet).sort()).toEqual(WWW);
        for (let i = 0; i < 50 && t.server.udpThreadStats().answeredByWorkers === before; i++) await new Promise((r) => setTimeout(r, 100));
        expect(t.server.udpThreadStats().answeredByWorkers).toBeGreaterThan(before);
      }
    });
  }
});

/** A socket bound to `port` on loopback, or undefined when the port is taken (or not ours to bind). */
function bindPort(port: number): Promise<dgram.Socket | undefined> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => {
      socket.close();
      resolve(undefined);
    });
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}

describe('UDP queries from the highest and lowest real source ports', () => {
  const cases = [
    { name: 'port 65535', port: 65535 },
    { name: 'port 1 (privileged)', port: 1 },
  ];
  for (const c of cases) {
    it(`${c.name}: answered, and the server keeps answering`, async (ctx) => {
      const t = await serve(1);
      const socket = await bindPort(c.port);
      if (!socket) {
        console.warn(`[rrdns tests] skipping the source ${c.name} test: cannot bind it on 127.0.0.1`);
        ctx.skip();
        return;
      }
      try {
        const reply = withTimeout(new Promise<Buffer>((resolve) => socket.once('message', resolve)), 3000, `reply to source ${c.name}`);
        socket.send(buildQuery('www.sp.test', { id: 0x1e55 }), t.port, '127.0.0.1');
        const raw = await reply;
        expect(parseHeader(raw)).toMatchObject({ id: 0x1e55, qr: true, rcode: 0 });
        expect(addresses(Packet.parse(raw)).sort()).toEqual(WWW);
      } finally {
        socket.close();
      }
      expect(metricSum(await t.server.metrics.text(), 'rrdns_send_errors_total')).toBe(0);
      await answersWww(t);
    });
  }
});
