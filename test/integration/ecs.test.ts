/**
 * EDNS Client Subnet (RFC 7871) end to end: the real server, real `dig
 * +subnet`, raw bytes for what dig will not send, and Unbound with its
 * subnetcache module caching per client subnet when rrdns answers with a
 * scope, and once for everyone when it answers with scope 0.
 *
 * The pools' members are real HTTP backends on 127.0.0.x; the subnets in the
 * ECS options (192.0.2.0/24, 10.1.0.0/24, ...) are only option contents: no
 * packet goes to them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../support/dig.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, type Backend } from '../support/backends.ts';
import { startUnbound, type UnboundServer } from '../support/unbound.ts';
import { ednsOption, parseHeader, rawQuery, sleep, UdpPeer } from '../support/rawdns.ts';
import { decodeMessage } from '../support/wire-decode.ts';
import { missing } from '../support/tools.ts';

const FAST = { interval: '500ms', timeout: '400ms', fall: 2, rise: 1 };
/**
 * For the tests of Unbound's cache: the health-aware TTL is at most the time
 * until a member could next flip, which FAST makes 0 or 1 s, so whether
 * Unbound still held an answer depended on where in that second the next
 * query fell. With 10 s checks the answers live for seconds, longer than
 * these tests take.
 */
const STEADY = { interval: '10s', timeout: '400ms', fall: 2, rise: 1 };

/** A zone whose `www` is a pool of `backends` checked with `check`, with `balance.ecs` when `ecs` is given; `static` is a plain name. */
function zoneText(origin: string, backends: Backend[], ecs?: { ipv4: number; ipv6: number }, check: typeof FAST = FAST): string {
  const members = Object.fromEntries(backends.map((b) => [b.address, { check: { port: b.port } }]));
  const pool = { check, members, ...(ecs ? { balance: { ecs } } : {}) };
  const zone = {
    origin,
    ttl: { default: 300, min: 0 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
    records: {
      '@': { NS: 'ns1' },
      ns1: { A: '127.0.0.1' },
      www: { A: backends.map((b) => b.address), pool },
      static: { A: '192.0.2.30' },
    },
  };
  // JSON is YAML: the native zone format reads it as it is.
  return JSON.stringify(zone, null, 2);
}

/** The ECS line dig prints in the OPT pseudo-section ('CLIENT-SUBNET: 192.0.2.0/24/24'), or undefined. */
const clientSubnet = (r: { ednsOptions: string[] }) => r.ednsOptions.find((l) => l.startsWith('CLIENT-SUBNET:'));

/** rrdns_queries_total for A queries of `zone` (all rcodes and transports). */
async function aQueries(t: TestServer, zone: string): Promise<number> {
  const text = await t.server.metrics.text();
  const escaped = zone.replace(/\./g, '\\.');
  const re = new RegExp(`^rrdns_queries_total\\{(?=[^}]*zone="${escaped}\\.")(?=[^}]*qtype="A")[^}]*\\} (\\d+)$`, 'gm');
  return [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
}

/** Waits (bounded) until `read` returns at least `want`; returns the last value read. */
async function reaches(read: () => Promise<number>, want: number, what: string): Promise<number> {
  let last = 0;
  for (let i = 0; i < 100; i++) {
    last = await read();
    if (last >= want) return last;
    await sleep(50);
  }
  throw new Error(`gave up waiting for ${what} to reach ${want}; last ${last}`);
}

const canDig = !missing('dig', 'bind9-dnsutils');

describe.skipIf(!canDig)('ECS answered by rrdns (dig +subnet)', () => {
  let t: TestServer;
  const backends: Backend[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) backends.push(await startHttpBackend());
    t = await startTestServer({ 'ecs.test.yaml': zoneText('ecs.test', backends, { ipv4: 24, ipv6: 56 }) });
  });
  afterAll(async () => {
    await t?.close();
    for (const b of backends) await b.close();
  });

  const ask = (name: string, ...args: string[]) => dig(t.port, [name, 'A', ...args]);

  it.each([
    { name: 'an IPv4 /24 to the pool with balance.ecs {ipv4: 24}: scope 24', qname: 'www.ecs.test', subnet: '192.0.2.0/24', line: 'CLIENT-SUBNET: 192.0.2.0/24/24' },
    { name: 'an IPv6 /56 to the same pool: its IPv6 scope 56', qname: 'www.ecs.test', subnet: '2001:db8::/56', line: 'CLIENT-SUBNET: 2001:db8::/56/56' },
    { name: 'a name without ECS: scope 0', qname: 'static.ecs.test', subnet: '192.0.2.0/24', line: 'CLIENT-SUBNET: 192.0.2.0/24/0' },
    { name: 'a nonexistent name: scope 0', qname: 'nope.ecs.test', subnet: '192.0.2.0/24', line: 'CLIENT-SUBNET: 192.0.2.0/24/0' },
    { name: 'outside every zone (REFUSED): echoed, scope 0', qname: 'www.example.com', subnet: '198.51.100.0/24', line: 'CLIENT-SUBNET: 198.51.100.0/24/0' },
    { name: '+subnet=0 (no address wanted): scope 0 even for the pool', qname: 'www.ecs.test', subnet: '0', line: 'CLIENT-SUBNET: 0.0.0.0/0/0' },
  ])('$name', async ({ qname, subnet, line }) => {
    const r = await ask(qname, `+subnet=${subnet}`);
    expect(clientSubnet(r)).toBe(line);
    expect(r.rcode).toBe(qname.endsWith('example.com') ? 'REFUSED' : qname.startsWith('nope') ? 'NXDOMAIN' : 'NOERROR');
  });

  it('the pool answer with ECS is the whole set, the same records as without', async () => {
    const withEcs = await ask('www.ecs.test', '+subnet=192.0.2.0/24');
    const without = await ask('www.ecs.test');
    expect(withEcs.answer.map((a) => a.data).sort()).toEqual(backends.map((b) => b.address).sort());
    expect(without.answer.map((a) => a.data).sort()).toEqual(backends.map((b) => b.address).sort());
  });

  it('no ECS in the query: no ECS in the answer, over UDP and TCP', async () => {
    for (const transport of ['+notcp', '+tcp']) {
      const r = await ask('www.ecs.test', transport);
      expect(r.rcode).toBe('NOERROR');
      expect(r.opt).toBeDefined();
      expect(clientSubnet(r)).toBeUndefined();
    }
  });

  it('ECS over TCP is echoed too', async () => {
    const r = await ask('www.ecs.test', '+tcp', '+subnet=192.0.2.0/24');
    expect(clientSubnet(r)).toBe('CLIENT-SUBNET: 192.0.2.0/24/24');
  });

  it.each([
    { name: 'nonzero bits beyond the source prefix', data: [0, 1, 23, 0, 192, 0, 3] },
    { name: 'address too long', data: [0, 1, 24, 0, 192, 0, 2, 0] },
    { name: 'family 3', data: [0, 3, 24, 0, 192, 0, 2] },
    { name: 'scope in the query', data: [0, 1, 24, 24, 192, 0, 2] },
  ])('malformed ECS ($name): FORMERR with OPT and no ECS', async ({ data }) => {
    const peer = await UdpPeer.open();
    try {
      const msg = rawQuery('www.ecs.test', { id: 4242, opt: { rdata: ednsOption(8, Buffer.from(data)) } });
      await peer.send(msg, t.port);
      const [reply] = await peer.until((m) => parseHeader(m).id === 4242, 3000, 'FORMERR reply');
      const m = decodeMessage(reply!);
      expect(m.rcode).toBe(1);
      expect(m.question).toEqual([{ name: 'www.ecs.test', type: 1, cls: 1 }]);
      const opt = m.additional.filter((r) => r.type === 41);
      expect(opt).toHaveLength(1);
      expect(opt[0]!.rdata.length).toBe(0);
    } finally {
      await peer.close();
    }
  });
});

describe.skipIf(!canDig || missing('unbound', 'unbound'))('ECS through Unbound with subnetcache', () => {
  let t: TestServer;
  let unbound: UnboundServer;
  const backends: Backend[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) backends.push(await startHttpBackend());
    // Same members, one zone whose pool answers with scope /24, one whose pool does not enable ECS (scope 0).
    t = await startTestServer({ 'scoped.test.yaml': zoneText('scoped.test', backends, { ipv4: 24, ipv6: 56 }, STEADY), 'unscoped.test.yaml': zoneText('unscoped.test', backends, undefined, STEADY) });
    unbound = await startUnbound({
      stubs: [
        { zone: 'scoped.test', port: t.port },
        { zone: 'unscoped.test', port: t.port },
      ],
      extraServerLines: [
        // The later module-config wins over the harness's "iterator".
        'module-config: "subnetcache iterator"',
        // ECS goes only to the servers listed here; 127.0.0.1 is rrdns.
        'send-client-subnet: 127.0.0.1',
        'max-client-subnet-ipv4: 24',
        'max-client-subnet-ipv6: 56',
      ],
    });
    // Every member healthy, so the set (and with it the rotation) stays the same for the whole suite.
    for (let i = 0; i < 100; i++) {
      const pools = t.server.healthSnapshot();
      if (pools.length === 2 && pools.every((p) => p.members.every((m) => m.health === 'up'))) break;
      await sleep(50);
    }
  });
  afterAll(async () => {
    await unbound?.close();
    await t?.close();
    for (const b of backends) await b.close();
  });

  const resolve = (name: string, subnet: string) => dig(unbound.port, ['+recurse', name, 'A', `+subnet=${subnet}`]);
  const order = (r: { answer: { data: string }[] }) => r.answer.map((a) => a.data);

  it('scope /24: each client subnet is its own cache entry, so each one reaches rrdns and gets its own rotation', async () => {
    const before = await aQueries(t, 'scoped.test');
    const first = await resolve('www.scoped.test', '10.1.0.0/24');
    const second = await resolve('www.scoped.test', '10.2.0.0/24');
    expect([first.rcode, second.rcode]).toEqual(['NOERROR', 'NOERROR']);
    expect(order(first)).toHaveLength(3);
    // Unbound passes the scope on to its client.
    expect(clientSubnet(first)).toBe('CLIENT-SUBNET: 10.1.0.0/24/24');
    expect(clientSubnet(second)).toBe('CLIENT-SUBNET: 10.2.0.0/24/24');
    // rrdns answered twice: one query per subnet, the second one step further in the rotation.
    expect(await reaches(() => aQueries(t, 'scoped.test'), before + 2, 'queries for scoped.test')).toBe(before + 2);
    expect(order(second)).not.toEqual(order(first));
    expect([...order(second)].sort()).toEqual([...order(first)].sort());
    // The first subnet again: from Unbound's cache for 10.1.0.0/24, as rrdns first gave it.
    const again = await resolve('www.scoped.test', '10.1.0.0/24');
    expect(order(again)).toEqual(order(first));
  });

  it('scope 0: the second subnet is answered from Unbound\'s cache, rrdns sees one query', async () => {
    const before = await aQueries(t, 'unscoped.test');
    const first = await resolve('www.unscoped.test', '10.1.0.0/24');
    const second = await resolve('www.unscoped.test', '10.2.0.0/24');
    expect([first.rcode, second.rcode]).toEqual(['NOERROR', 'NOERROR']);
    expect(order(second)).toEqual(order(first));
    // A direct query as a marker: once it is counted, anything Unbound sent before it is counted too.
    await dig(t.port, ['www.unscoped.test', 'A']);
    expect(await reaches(() => aQueries(t, 'unscoped.test'), before + 2, 'queries for unscoped.test')).toBe(before + 2);
  });
});
