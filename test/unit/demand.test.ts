/**
 * Resolver demand (src/balancing/demand.ts) and resolver-aware TTLs in the
 * answer path (server/resolver-ttl.ts): the bounded heavy-hitter table, the
 * demand estimate from re-ask gaps, prefix grouping, and the real
 * QueryPipeline over a real ServedZone with an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { DemandTable, DemandTracker, demandSizeFor, heavyTtl, MAX_GAP_MS } from '../../src/balancing/demand.ts';
import { Address, maskAddress, parseAddress } from '../../src/zone/address.ts';
import { prng, rawQuery } from '../support/rawdns.ts';
import { QueryPipeline } from '../../src/server/pipeline.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { QueryView } from '../../src/wire/query.ts';
import { buildZone, type RRset } from '../../src/zone/zone.ts';
import { formatIssue } from '../../src/errors.ts';
import { parseNativeText } from '../support/zone-text.ts';
import { decodeMessage } from '../support/wire-decode.ts';
import { firstSteps } from '../../src/wire/answer.ts';
import type { LiveSet } from '../../src/resolver/resolve.ts';

const ANSWER = 0x1234;

/** Records a query from an IPv4 /24 numbered `i` (its own /24 per i). */
function key(i: number): [number, number, number, number, number] {
  return [4, ((10 << 24) | (i << 8)) >>> 0, 0, 0, 0];
}

/** Exponential with rate `perSecond`, in ms. */
const exponentialMs = (rand: () => number, perSecond: number) => (-Math.log(1 - rand()) / perSecond) * 1000;

describe('the heavy-hitter table', () => {
  it('a Zipf stream from 10,000 sources into 1,024 entries finds the true top-20 heavy hitters, in fixed memory', () => {
    const rand = prng(10);
    const sources = 10_000;
    const queries = 200_000;
    // Zipf(1.0): P(rank r) ∝ 1/r; sampled by inverse CDF over the cumulative weights.
    const cumulative = new Float64Array(sources);
    let sum = 0;
    for (let r = 0; r < sources; r++) cumulative[r] = sum += 1 / (r + 1);
    // Ranks are scattered over the address space so the heavy ones are not neighbours.
    const addressOf = Uint32Array.from({ length: sources }, (_, r) => (r * 7919) % 65_536);
    const table = new DemandTable(1024);
    const bytes = table.bytes;
    const truth = new Map<number, number>();
    for (let q = 0; q < queries; q++) {
      const u = rand() * sum;
      let lo = 0;
      let hi = sources - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid]! < u) lo = mid + 1;
        else hi = mid;
      }
      const a = addressOf[lo]!;
      truth.set(a, (truth.get(a) ?? 0) + 1);
      const [f, w0, w1, w2, w3] = key(a);
      table.record(f, w0, w1, w2, w3, ANSWER, q);
    }
    const prefixOf = (a: number) => `10.${a >> 8}.${a & 255}.0/24`;
    const byCount = [...truth.entries()].sort((x, y) => y[1] - x[1]);
    const trueTop = byCount.slice(0, 20);
    const twentieth = byCount[19]![1];
    const rows = table.top(table.capacity, queries);
    const found = rows.slice(0, 20).map((r) => r.prefix);
    const trueCount = new Map([...truth.entries()].map(([a, n]) => [prefixOf(a), n]));
    // The true top-20 (sources tied with the 20th at the boundary are equally right): every source counted
    // more often than the 21st is found, and everything found was counted at least as often as the 20th.
    for (const [a, n] of byCount) if (n > byCount[20]![1]) expect(found).toContain(prefixOf(a));
    for (const p of found) expect(trueCount.get(p)).toBeGreaterThanOrEqual(twentieth);
    expect(found).toHaveLength(20);
    // Space-Saving's bounds hold for each: count - error <= true count <= count.
    for (const [a, n] of trueTop) {
      const row = rows.find((r) => r.prefix === prefixOf(a))!;
      expect(row.queries).toBeGreaterThanOrEqual(n);
      expect(row.queries - row.error).toBeLessThanOrEqual(n);
    }
    expect(table.capacity).toBe(1024);
    expect(table.bytes).toBe(bytes);
    expect(table.occupied()).toBeLessThanOrEqual(1024);
  });

  it.each([
    { name: 'rounded up to a power of two', size: 1000, want: 1024 },
    { name: 'at least one set', size: 1, want: 8 },
    { name: 'a power of two stays', size: 4096, want: 4096 },
  ])('table size: $name', ({ size, want }) => {
    expect(demandSizeFor(size)).toBe(want);
    expect(new DemandTable(size).capacity).toBe(want);
  });

  it('another thread sees the same entries through the buffer', () => {
    const table = new DemandTable(64);
    const at = table.record(...key(1), ANSWER, 0);
    const view = new DemandTable(table.buffer);
    expect(view.record(...key(1), ANSWER, 1)).toBe(at);
    expect(table.top(1, 2)[0]!.queries).toBe(2);
  });
});

/**
 * One resolver with `clients` clients, each asking as a Poisson process of
 * `lambda` per second: client requests arrive at clients × lambda; the
 * resolver asks us on the first request after its cached answer (TTL `ttl`)
 * expired. Returns the estimate after `cycles` re-asks.
 */
function simulateResolver(seed: number, clients: number, lambda: number, ttl: number, cycles: number): { demand: number; samples: number; queries: number } {
  const rand = prng(seed);
  const table = new DemandTable(64);
  const rate = clients * lambda;
  let now = 1000;
  let at = table.record(...key(5), ANSWER, now);
  table.answered(at, ANSWER, ttl, now);
  let expiresAt = now + ttl * 1000;
  for (let asked = 0; asked < cycles; ) {
    now += exponentialMs(rand, rate);
    if (now < expiresAt) continue; // served from the resolver's cache
    at = table.record(...key(5), ANSWER, now);
    table.answered(at, ANSWER, ttl, now);
    expiresAt = now + ttl * 1000;
    asked++;
  }
  const row = table.top(1, now)[0]!;
  return { demand: table.demand(at, now), samples: row.samples, queries: row.queries };
}

describe('the demand estimate', () => {
  it.each([
    { name: 'a resolver with 1,000 clients (10 req/s)', clients: 1000, lambda: 0.01, ttl: 30, seed: 1 },
    { name: 'a resolver with 200 clients (2 req/s) and a 5 s TTL', clients: 200, lambda: 0.01, ttl: 5, seed: 2 },
    { name: 'a resolver with 5,000 clients (50 req/s)', clients: 5000, lambda: 0.01, ttl: 60, seed: 3 },
  ])('$name: within 20% of the true rate', ({ clients, lambda, ttl, seed }) => {
    const r = simulateResolver(seed, clients, lambda, ttl, 300);
    const rate = clients * lambda;
    expect(r.samples).toBe(300);
    expect(Math.abs(r.demand - rate) / rate).toBeLessThan(0.2);
  });

  it('a single-client cache shows a small demand, far below a big resolver', () => {
    const small = simulateResolver(4, 1, 1 / 60, 30, 50);
    const big = simulateResolver(5, 1000, 0.01, 30, 50);
    expect(small.demand).toBeLessThan(0.05);
    expect(big.demand / small.demand).toBeGreaterThan(100);
  });

  it('re-asks before expiry only count as queries', () => {
    const table = new DemandTable(64);
    let at = table.record(...key(7), ANSWER, 0);
    table.answered(at, ANSWER, 30, 0);
    // At 10 s (before the 30 s expiry): a query, and a fresh answer restarting the expiry (now 40 s).
    at = table.record(...key(7), ANSWER, 10_000);
    table.answered(at, ANSWER, 30, 10_000);
    // At 30.1 s: after the first answer's expiry, but before the second's: still no sample.
    at = table.record(...key(7), ANSWER, 30_100);
    table.answered(at, ANSWER, 30, 30_100);
    let row = table.top(1, 30_100)[0]!;
    expect(row).toMatchObject({ queries: 3, samples: 0, demand: 0 });
    // 100 ms after the last expiry (60.1 s): one sample of 100 ms, 10 requests/s.
    at = table.record(...key(7), ANSWER, 60_200);
    row = table.top(1, 60_200)[0]!;
    expect(row.samples).toBe(1);
    expect(table.demand(at, 60_200)).toBeCloseTo(10, 6);
  });

  it('a re-ask for another name than the one tracked is not a sample', () => {
    const table = new DemandTable(64);
    let at = table.record(...key(8), ANSWER, 0);
    table.answered(at, ANSWER, 30, 0);
    at = table.record(...key(8), ANSWER + 1, 30_050);
    expect(table.top(1, 30_050)[0]!.samples).toBe(0);
    // The tracked answer had expired, so the other name takes over; its own re-ask after expiry is measured.
    table.answered(at, ANSWER + 1, 30, 30_050);
    table.record(...key(8), ANSWER + 1, 60_100);
    expect(table.top(1, 60_100)[0]!.samples).toBe(1);
  });

  it('a resolver that went quiet decays: its demand is at most 1 / the gap running now', () => {
    const table = new DemandTable(64);
    let at = table.record(...key(9), ANSWER, 0);
    table.answered(at, ANSWER, 30, 0);
    at = table.record(...key(9), ANSWER, 30_100);
    table.answered(at, ANSWER, 30, 30_100);
    expect(table.demand(at, 30_200)).toBeCloseTo(10, 6);
    // Silent for 100 s after the expiry at 60.1 s.
    expect(table.demand(at, 160_100)).toBeCloseTo(1000 / 100_000, 9);
    expect(MAX_GAP_MS).toBeGreaterThan(100_000);
  });

  it('shares: a big resolver is heavy against many small ones, they are not', () => {
    const table = new DemandTable(256);
    const tracker = new DemandTracker(table, () => now);
    let now = 0;
    const handles = new Map<string, number>();
    const ask = (remote: string) => {
      const at = tracker.observe(remote, ANSWER);
      tracker.answered(at, ANSWER, 30);
      handles.set(remote, at);
    };
    // Ten small resolvers re-ask 10 s after expiry (0.1/s each), one big one 50 ms after (20/s).
    for (let cycle = 0; cycle < 5; cycle++) {
      for (let i = 0; i < 10; i++) ask(`198.51.${i}.1`);
      ask('203.0.113.9');
      now += 30_050;
      ask('203.0.113.9');
      now += 9950;
    }
    now += 1000;
    const big = tracker.table.share(handles.get('203.0.113.9')!, now);
    expect(big).toBeGreaterThan(0.9);
    expect(tracker.heavy(handles.get('203.0.113.9')!, 0.3)).toBe(true);
    expect(tracker.heavy(handles.get('198.51.0.1')!, 0.3)).toBe(false);
  });
});

describe('grouping sources into resolvers', () => {
  it.each([
    { name: 'IPv4 /24: two hosts of one /24 are one resolver', remotes: ['192.0.2.1', '192.0.2.200'], prefixes: ['192.0.2.0/24'], bits: { ipv4: 24, ipv6: 56 } },
    { name: 'IPv4 /24: neighbouring /24s are two', remotes: ['192.0.2.1', '192.0.3.1'], prefixes: ['192.0.2.0/24', '192.0.3.0/24'], bits: { ipv4: 24, ipv6: 56 } },
    { name: 'IPv4-mapped IPv6 counts with its IPv4 /24', remotes: ['::ffff:192.0.2.9', '192.0.2.10'], prefixes: ['192.0.2.0/24'], bits: { ipv4: 24, ipv6: 56 } },
    { name: 'IPv6 /56: two /64s of one /56 are one resolver', remotes: ['2001:db8:aa:bb01::1', '2001:db8:aa:bbff::2'], prefixes: ['2001:db8:aa:bb00::/56'], bits: { ipv4: 24, ipv6: 56 } },
    { name: 'IPv6 /56: the next /56 is another', remotes: ['2001:db8:aa:bb01::1', '2001:db8:aa:bc00::1'], prefixes: ['2001:db8:aa:bb00::/56', '2001:db8:aa:bc00::/56'], bits: { ipv4: 24, ipv6: 56 } },
    { name: 'IPv4 /32 (configured): each host its own', remotes: ['127.0.0.2', '127.0.0.3'], prefixes: ['127.0.0.2/32', '127.0.0.3/32'], bits: { ipv4: 32, ipv6: 128 } },
  ])('$name', ({ remotes, prefixes, bits }) => {
    const tracker = new DemandTracker(new DemandTable(64), () => 0, bits);
    for (const r of remotes) expect(tracker.observe(r, ANSWER)).toBeGreaterThanOrEqual(0);
    const rows = tracker.top(10);
    expect(rows.map((r) => r.prefix).sort()).toEqual([...prefixes].sort());
    expect(rows.reduce((n, r) => n + r.queries, 0)).toBe(remotes.length);
  });

  it('an address it cannot read is not counted', () => {
    const tracker = new DemandTracker(new DemandTable(64), () => 0);
    expect(tracker.observe('not an address', ANSWER)).toBe(-1);
    expect(tracker.table.occupied()).toBe(0);
  });

  it('the masked key matches the shared parser', () => {
    const a = new Address();
    parseAddress('192.0.2.77', a);
    maskAddress(a, 24);
    expect(a.w[0]).toBe(0xc0000200);
  });
});

describe('the heavy TTL', () => {
  it.each([
    { name: "the pool's TTL below the answer's", spec: 5, answer: 30, min: 3, want: 5 },
    { name: "never above the answer's own (health-aware) TTL", spec: 5, answer: 4, min: 3, want: 4 },
    { name: 'never below the zone minimum', spec: 5, answer: 30, min: 10, want: 10 },
    { name: 'a 1 s pool TTL is raised to the zone minimum', spec: 1, answer: 30, min: 3, want: 3 },
  ])('$name', ({ spec, answer, min, want }) => expect(heavyTtl(spec, answer, min)).toBe(want));
});

describe('steering', () => {
  it.each([
    { name: 'plain rotation: step k starts at record k', count: 3, period: 3, order: undefined, stride: 0, want: [0, 1, 2] },
    { name: 'weighted 2,1 (order 0,1,0): record 0 first at step 0, record 1 at step 1', count: 2, period: 3, order: Uint16Array.from([0, 1, 1, 0, 0, 1]), stride: 2, want: [0, 1] },
    { name: 'weighted, one position only (stride 1)', count: 3, period: 4, order: Uint16Array.from([1, 0, 1, 2]), stride: 1, want: [1, 0, 3] },
    { name: 'a weight-0 member never comes first', count: 3, period: 3, order: Uint16Array.from([1, 2, 2, 1, 1, 2]), stride: 2, want: [-1, 0, 1] },
  ])('first steps: $name', ({ count, period, order, stride, want }) => {
    expect([...firstSteps(count, period, order, stride)]).toEqual(want);
  });
});

/** A pool zone parsed as a native zone file; the pool's resolver-aware TTLs as given. */
function poolZone(resolvers: string) {
  const text = `ttl: { default: 300, min: 3 }
soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    ttl: 30
    A: [192.0.2.1, 192.0.2.2, 192.0.2.3]
    pool: { check: { type: tcp, port: 9 }, balance: { resolvers: ${resolvers} } }
`;
  const parsed = parseNativeText(text, 'pool.test');
  if (!parsed.input) throw new Error(parsed.issues.map(formatIssue).join('\n'));
  const built = buildZone(parsed.input);
  if (!built.zone) throw new Error(built.issues.map(formatIssue).join('\n'));
  return built.zone;
}

describe('resolver-aware TTLs in the real pipeline (injected clock)', () => {
  function setup(resolvers: string, steer?: number[]) {
    let now = 1_000;
    const zone = poolZone(resolvers);
    // The registry's view, as the server passes it: the records, their TTL and the steering weights by headroom.
    const live = (rrset: RRset): LiveSet => ({ kind: 'records', records: rrset.records, ttl: rrset.ttl, steer });
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map([[zone.originKey, new ServedZone(zone, live, undefined, undefined, () => now)]]));
    const table = new DemandTable(256);
    const pipeline = new QueryPipeline(store, { demand: { table, now: () => now, bits: { ipv4: 32, ipv6: 128 } } });
    const view = new QueryView();
    const ask = (remote: string, qname = 'www.pool.test', edns = false) => {
      const msg = rawQuery(qname, edns ? { opt: { udpSize: 1232 } } : {});
      const m = decodeMessage(pipeline.handle(msg, msg.length, 'udp', view, remote) as Buffer);
      return { ttls: m.answer.map((r) => r.ttl), first: m.answer[0] ? [...m.answer[0].rdata].join('.') : undefined, additional: m.additional };
    };
    return { ask, table, advance: (ms: number) => (now += ms) };
  }

  it('a heavy resolver gets the shorter TTL (never below the zone minimum), a light one the normal TTL', () => {
    const { ask, advance, table } = setup('{ heavyShare: 0.3, ttl: 5 }');
    // The heavy resolver re-asks 20 ms after each expiry; the light one 20 s after.
    let heavyTtl = 30;
    let lightTtl = 30;
    let heavyAt = 0;
    let lightAt = 0;
    let t = 0;
    const heavySeen: number[] = [];
    for (let step = 0; step < 400 && t < 400_000; step++) {
      const nextHeavy = heavyAt + heavyTtl * 1000 + 20;
      const nextLight = lightAt + lightTtl * 1000 + 20_000;
      const next = Math.min(nextHeavy, nextLight);
      advance(next - t);
      t = next;
      if (next === nextHeavy) {
        const r = ask('127.0.0.2');
        heavyTtl = r.ttls[0]!;
        heavyAt = t;
        heavySeen.push(...r.ttls);
      } else {
        const r = ask('127.0.0.3');
        lightTtl = r.ttls[0]!;
        lightAt = t;
        expect(r.ttls).toEqual([30, 30, 30]);
      }
    }
    // Heavy once measured: from then on every answer carries 5 s (the zone minimum is 3).
    expect(heavySeen.slice(0, 3)).toEqual([30, 30, 30]);
    expect(heavySeen.slice(-30).every((x) => x === 5)).toBe(true);
    expect(Math.min(...heavySeen)).toBeGreaterThanOrEqual(3);
    const rows = table.top(2, t, { ipv4: 32, ipv6: 128 });
    expect(rows[0]!.prefix).toBe('127.0.0.2/32');
    expect(rows[0]!.share).toBeGreaterThan(0.9);
  });

  it('with steer, a heavy resolver gets the member with all the headroom first; a light one the rotation', () => {
    const { ask, advance } = setup('{ heavyShare: 0.3, ttl: 5, steer: true }', [0, 0, 1]);
    ask('127.0.0.2');
    advance(30_020);
    ask('127.0.0.2'); // one sample: 20 ms after expiry, the only resolver with demand: heavy
    const firsts: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      advance(5_020);
      const r = ask('127.0.0.2');
      expect(r.ttls).toEqual([5, 5, 5]);
      firsts.push(r.first);
    }
    expect(firsts).toEqual(Array(6).fill('192.0.2.3'));
    // With EDNS: the TTLs rewritten, the OPT record after them intact.
    advance(5_020);
    const withOpt = ask('127.0.0.2', 'www.pool.test', true);
    expect(withOpt.ttls).toEqual([5, 5, 5]);
    expect(withOpt.additional.map((r) => r.type)).toEqual([41]);
    const light = new Set<unknown>();
    for (let i = 0; i < 6; i++) light.add(ask('127.0.0.77').first);
    expect(light.size).toBe(3);
  });

  it('heavy resolvers are spread by headroom, not all sent to one member', () => {
    const { ask, advance } = setup('{ heavyShare: 0.01, ttl: 5, steer: true }', [1, 1, 2]);
    ask('127.0.0.2');
    advance(30_020);
    ask('127.0.0.2');
    const firsts = new Map<unknown, number>();
    for (let i = 0; i < 200; i++) {
      advance(5_020);
      const r = ask('127.0.0.2');
      expect(r.ttls).toEqual([5, 5, 5]);
      firsts.set(r.first, (firsts.get(r.first) ?? 0) + 1);
    }
    expect(firsts.size).toBe(3);
    expect(firsts.get('192.0.2.3')!).toBeGreaterThan(firsts.get('192.0.2.1')!);
    expect(firsts.get('192.0.2.3')!).toBeGreaterThan(firsts.get('192.0.2.2')!);
  });

  it('answers outside such pools record nothing', () => {
    const zone = poolZone('{ heavyShare: 0.3 }');
    const table = new DemandTable(64);
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map([[zone.originKey, new ServedZone(zone)]]));
    const pipeline = new QueryPipeline(store, { demand: { table, now: () => 0 } });
    const msg = rawQuery('ns1.pool.test');
    const out = decodeMessage(pipeline.handle(msg, msg.length, 'udp', new QueryView(), '127.0.0.2') as Buffer);
    expect(out.answer.map((r) => r.ttl)).toEqual([300]);
    expect(table.occupied()).toBe(0);
  });
});
