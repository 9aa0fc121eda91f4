/**
 * Resolver-aware TTLs on the real server (issue 10, acceptance 4): real
 * HTTP backends behind a health-checked pool with balance.resolvers, real
 * `dig` clients bound to two loopback addresses, the admin API and status
 * page over HTTP. Only the demand table's clock is injected
 * (ServerDeps.demandClock): a resolver's re-ask after a 30 s TTL is
 * simulated by advancing it, so the test never waits for a TTL.
 *
 * Grouping: 127.0.0.2 and 127.0.0.3 share a /24, so the server groups
 * sources by /32 here (config resolverDemand.ipv4Prefix), making them two
 * resolvers.
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.ts';
import { createLogger } from '../../src/observability/log.ts';
import { RrdnsServer } from '../../src/server/server.ts';
import { startHttpBackend, waitFor, type Backend } from '../support/backends.ts';
import { dig, type DigResult } from '../support/dig.ts';
import { writeZones } from '../support/server.ts';

const HEAVY = '127.0.0.2';
const LIGHT = '127.0.0.3';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('resolver-aware TTLs on the real server', () => {
  let backends: Backend[] = [];
  let server: RrdnsServer;
  let dir: string;
  let now = 5_000_000;
  let port = 0;

  beforeAll(async () => {
    // Loads 0.9, 0.9 and 0.1: the third member has by far the most headroom.
    backends = await Promise.all(['0.9', '0.9', '0.1'].map((load) => startHttpBackend({ headers: { 'X-Load': load } })));
    // Each member is checked on its own port; interval 60 s keeps the health-aware TTL at the record's 30.
    const members = backends
      .map((x) => `        "${x.address}": { check: { type: http, port: ${x.port}, path: /, interval: 60s, timeout: 1s, load: { header: X-Load } } }`)
      .join('\n');
    const text = `ttl: { default: 300, min: 3 }
soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    ttl: 30
    A: [${backends.map((x) => x.address).join(', ')}]
    pool:
      members:
${members}
      balance: { resolvers: { heavyShare: 0.3, ttl: 5, steer: true }, feedback: { signal: load, interval: 200ms } }
`;
    dir = writeZones({ 'rt.test.yaml': text });
    const config = parseConfig({
      zonesDir: dir,
      listen: ['127.0.0.1:0'],
      logLevel: 'silent',
      admin: { listen: '127.0.0.1:0' },
      watch: { enabled: false },
      rrl: { mode: 'off' },
      stateDir: 'off',
      resolverDemand: { ipv4Prefix: 32 },
    });
    server = new RrdnsServer(config, { logger: createLogger('silent'), demandClock: () => now });
    await server.start();
    port = server.addresses[0]!.port;
  });

  afterAll(async () => {
    await server?.close();
    await Promise.all(backends.map((b) => b.close()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const ask = (from: string): Promise<DigResult> => dig(port, ['-b', from, 'www.rt.test', 'A']);

  it('the heavy resolver gets TTL 5 and mostly the member with the most headroom first; the light one TTL 30; /api/v1/resolvers and the page list them', async () => {
    const preferred = backends[2]!.address;
    // Steering needs every member's load: wait until load feedback has read them.
    await waitFor(() => server.healthSnapshot()[0]!.members.every((m) => m.load !== null), 10_000, 'loads read by load feedback');
    // The heavy resolver re-asks 30 ms after each expiry (its clients ask ~33 times a second);
    // the light one 20 s after (0.05/s). Events in clock order, each one real dig query.
    let heavyNext = now;
    let lightNext = now;
    const heavy: DigResult[] = [];
    const light: DigResult[] = [];
    for (let i = 0; i < 40; i++) {
      const isHeavy = heavyNext <= lightNext;
      now = isHeavy ? heavyNext : lightNext;
      const r = await ask(isHeavy ? HEAVY : LIGHT);
      expect(r.rcode).toBe('NOERROR');
      expect(r.answer).toHaveLength(3);
      const ttl = r.answer[0]!.ttl;
      if (isHeavy) {
        heavy.push(r);
        heavyNext = now + ttl * 1000 + 30;
      } else {
        light.push(r);
        lightNext = now + ttl * 1000 + 20_000;
      }
    }
    expect(light.length).toBeGreaterThanOrEqual(2);
    expect(heavy.length).toBeGreaterThan(20);
    // The first answer, before anything was measured: the normal TTL.
    expect(heavy[0]!.answer.map((x) => x.ttl)).toEqual([30, 30, 30]);
    // From the first re-ask after expiry on: heavy, 5 s (the zone minimum is 3), steered by headroom: the third
    // member's steering weight is about 60 times each other's, so it comes first in nearly every heavy answer.
    for (const r of heavy.slice(1)) expect(r.answer.map((x) => x.ttl)).toEqual([5, 5, 5]);
    const steered = heavy.slice(1).filter((r) => r.answer[0]!.data === preferred).length;
    expect(steered / (heavy.length - 1)).toBeGreaterThanOrEqual(0.8);
    for (const r of light) expect(r.answer.map((x) => x.ttl)).toEqual([30, 30, 30]);

    const admin = server.adminAddress!;
    const api = await get(admin.port, '/api/v1/resolvers');
    expect(api.status).toBe(200);
    const body = JSON.parse(api.body) as { grouping: { ipv4: number }; heavyShare: number; resolvers: { prefix: string; heavy: boolean; demand: number; queries: number; share: number }[] };
    expect(body.grouping.ipv4).toBe(32);
    expect(body.heavyShare).toBe(0.3);
    const heavyRow = body.resolvers.find((r) => r.prefix === `${HEAVY}/32`)!;
    const lightRow = body.resolvers.find((r) => r.prefix === `${LIGHT}/32`)!;
    expect(body.resolvers[0]!.prefix).toBe(`${HEAVY}/32`);
    expect(heavyRow).toMatchObject({ heavy: true, queries: heavy.length });
    expect(heavyRow.demand).toBeGreaterThan(10);
    expect(lightRow).toMatchObject({ heavy: false, queries: light.length });
    expect(lightRow.demand).toBeLessThan(1);

    const page = await get(admin.port, '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('Top resolvers');
    expect(page.body).toContain(`${HEAVY}/32`);
  });
});

describe('the demand table is shared with the UDP worker threads', () => {
  let pair: Backend[] = [];
  let server: RrdnsServer;
  let dir: string;

  beforeAll(async () => {
    pair = await Promise.all([startHttpBackend(), startHttpBackend()]);
    const text = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    A: [${pair[0]!.address}, ${pair[1]!.address}]
    pool:
      members:
        "${pair[0]!.address}": { check: { type: tcp, port: ${pair[0]!.port}, interval: 60s, timeout: 1s } }
        "${pair[1]!.address}": { check: { type: tcp, port: ${pair[1]!.port}, interval: 60s, timeout: 1s } }
      balance: { resolvers: { heavyShare: 0.3 } }
`;
    dir = writeZones({ 'rw.test.yaml': text });
    const config = parseConfig({ zonesDir: dir, listen: ['127.0.0.1:0'], logLevel: 'silent', admin: { listen: 'off' }, watch: { enabled: false }, rrl: { mode: 'off' }, stateDir: 'off', udpThreads: 2 });
    server = new RrdnsServer(config, { logger: createLogger('silent') });
    await server.start();
  });

  afterAll(async () => {
    await server?.close();
    await Promise.all(pair.map((b) => b.close()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('queries answered by either thread count in one entry for the resolver', async () => {
    const port = server.addresses[0]!.port;
    // dig picks a new source port each run, so the kernel spreads the runs over both sockets.
    let sent = 0;
    for (let i = 0; i < 40 && (sent < 10 || server.udpThreadStats().answeredByWorkers === 0); i++) {
      const r = await dig(port, ['-b', HEAVY, 'www.rw.test', 'A']);
      expect(r.answer).toHaveLength(2);
      sent++;
    }
    expect(server.udpThreadStats().workers).toBe(1);
    // Some were answered by the worker (its count reaches the main thread within a second).
    await waitFor(() => server.udpThreadStats().answeredByWorkers > 0, 5000, 'a query answered by the worker thread');
    // Workers report their query counts once a second; the demand table itself is shared memory, read now.
    const rows = server.resolvers().resolvers;
    expect(rows).toEqual([expect.objectContaining({ prefix: '127.0.0.0/24', queries: sent })]);
  });
});
