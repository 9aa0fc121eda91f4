/**
 * Visibility of the balance (issue 10, point 7) on the real server: a pool
 * with weights 3,1 on two real HTTP backends, N UDP queries answered (by the
 * main thread alone, and by three threads sharing the port), then
 * /metrics counts each member's first positions exactly as the answers put
 * them, and the status page and the history API show each member's charts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, type Backend } from '../support/backends.ts';
import { metricSum } from '../support/metrics-text.ts';
import type { BalanceHistoryView } from '../../src/observability/balance-history.ts';

const servers: TestServer[] = [];
const backends: Backend[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const b of backends.splice(0)) await b.close();
});

const CHECK = '{ interval: 500ms, timeout: 400ms, fall: 2, rise: 2 }';

async function weightedPool(udpThreads: number): Promise<{ t: TestServer; heavy: Backend; light: Backend; admin: string }> {
  const heavy = await startHttpBackend({ mode: 'ok' });
  const light = await startHttpBackend({ mode: 'ok' });
  backends.push(heavy, light);
  const zone = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    A: [${heavy.address}, ${light.address}]
    pool:
      check: ${CHECK}
      members:
        ${heavy.address}: { check: { port: ${heavy.port} }, weight: 3 }
        ${light.address}: { check: { port: ${light.port} }, weight: 1 }
`;
  const t = await startTestServer({ 'vis.test.yaml': zone }, { udpThreads, admin: { listen: '127.0.0.1:0' } });
  servers.push(t);
  const a = t.server.adminAddress!;
  return { t, heavy, light, admin: `http://${a.host}:${a.port}` };
}

const get = async (url: string) => {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return { text: await res.text(), headers: res.headers };
};

describe.each([
  { name: 'main thread only', udpThreads: 1 },
  { name: 'three UDP threads sharing the port', udpThreads: 3 },
])('first positions in /metrics ($name)', ({ udpThreads }) => {
  it('weights 3,1: rrdns_pool_member_first_total sums to N and splits 3:1 exactly over whole cycles, as the answers did', async () => {
    const { t, heavy, light, admin } = await weightedPool(udpThreads);
    const CYCLES = 25;
    const N = 4 * CYCLES;
    const firsts = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const got = addresses((await udpQuery(t.port, 'www.vis.test')).packet);
      expect([...got].sort()).toEqual([heavy.address, light.address].sort());
      firsts.set(got[0]!, (firsts.get(got[0]!) ?? 0) + 1);
    }
    const text = (await get(`${admin}/metrics`)).text;
    const labels = (address: string) => ({ zone: 'vis.test.', name: 'www.vis.test.', type: 'A', address });
    const h = metricSum(text, 'rrdns_pool_member_first_total', labels(heavy.address));
    const l = metricSum(text, 'rrdns_pool_member_first_total', labels(light.address));
    expect(h + l).toBe(N);
    expect([h, l]).toEqual([3 * CYCLES, CYCLES]);
    // What the counters say is what the wire said, answer by answer.
    expect([h, l]).toEqual([firsts.get(heavy.address), firsts.get(light.address)]);
    expect(metricSum(text, 'rrdns_pool_member_configured_weight', labels(heavy.address))).toBe(3);
    expect(metricSum(text, 'rrdns_pool_member_weight', labels(light.address))).toBe(1);
    if (udpThreads > 1) {
      // Workers report their query counts once a second: wait (bounded) to see that they answered some of the N.
      for (let i = 0; i < 60 && t.server.udpThreadStats().answeredByWorkers === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(t.server.udpThreadStats().answeredByWorkers).toBeGreaterThan(0);
    }
  });
});

describe('the balance on the status page and in the history API', () => {
  it('each member has its three sparklines and current values; the history holds each member’s series', async () => {
    const { t, heavy, light, admin } = await weightedPool(1);
    for (let i = 0; i < 40; i++) await udpQuery(t.port, 'www.vis.test');
    // The server sampled at start; one more sample now gives every member a share of the interval.
    t.server.sampleBalance();

    const page = await get(`${admin}/`);
    // Inline SVG and no script beyond the page's own nonce'd one: the CSP stays as strict as it was.
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'nonce-/);
    expect(page.text.match(/<script/g)).toHaveLength(1);
    for (const b of [heavy, light]) {
      const li = new RegExp(`<li class="member[^"]*" data-address="${b.address.replace(/\./g, '\\.')}"[\\s\\S]*?</li>`).exec(page.text)?.[0];
      expect(li, `${b.address} on the page`).toBeDefined();
      for (const kind of ['first', 'weight', 'load']) expect(li).toMatch(new RegExp(`<span class="spark spark-${kind}"[^>]*>${kind} <svg class="sparkline"[^>]*>.*?</svg>`));
      expect(li).toMatch(/spark-first"[^>]*>first <svg[^]*?<\/svg> <span class="now">\d+%<\/span>/);
    }

    const history = JSON.parse((await get(`${admin}/api/v1/pools/history`)).text) as BalanceHistoryView;
    expect(history.intervalMs).toBe(10_000);
    const pool = history.pools.find((p) => p.name === 'www.vis.test.' && p.type === 'A')!;
    expect(pool.members.map((m) => m.address).sort()).toEqual([heavy.address, light.address].sort());
    for (const m of pool.members) {
      expect(m.firstShare).toHaveLength(history.at.length);
      expect(m.effectiveWeight.at(-1)).toBe(m.address === heavy.address ? 3 : 1);
    }
    // The last interval's shares (however the 10 s timer cut the 40 answers) cover every answer: they sum to 1.
    const last = pool.members.map((m) => m.firstShare.at(-1)!);
    expect(last.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    const snap = t.server.healthSnapshot().find((p) => p.name === 'www.vis.test.')!;
    for (const m of snap.members) expect(m.firstShare).toBe(pool.members.find((x) => x.address === m.address)!.firstShare.at(-1));
  });
});
