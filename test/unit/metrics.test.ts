import { afterEach, describe, expect, it, vi } from 'vitest';
import { Counter, Gauge } from 'prom-client';
import { CookieCell, CookieCounts, Metrics } from '../../src/observability/metrics.ts';
import { samplePools } from '../support/admin-fake.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (format 0.0.4) into samples; throws on a line it cannot read. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let consumed = 0;
    for (let l = re.exec(body); l; l = re.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = re.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`unparsable labels: ${line}`);
    const v = m[3]!;
    out.push({ name: m[1]!, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return out;
}

function pick(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = pick(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

async function scrape(m: Metrics): Promise<Sample[]> {
  return parse(await m.text());
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('rrdns_queries_total', () => {
  it('renders one series per zone, qtype, rcode and transport with text labels', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.countQuery('example.test.', 1, 0, 'udp');
    m.countQuery('example.test.', 1, 0, 'udp');
    m.countQuery('example.test.', 28, 0, 'tcp');
    m.countQuery('example.test.', 1, 3, 'udp');
    m.countQuery('other.test.', 15, 0, 'udp');
    m.countQuery(undefined, 1, 5, 'udp');
    const s = await scrape(m);
    expect(pick(s, 'rrdns_queries_total')).toHaveLength(5);
    expect(value(s, 'rrdns_queries_total', { zone: 'example.test.', qtype: 'A', rcode: 'NOERROR', transport: 'udp' })).toBe(2);
    expect(value(s, 'rrdns_queries_total', { zone: 'example.test.', qtype: 'AAAA', rcode: 'NOERROR', transport: 'tcp' })).toBe(1);
    expect(value(s, 'rrdns_queries_total', { zone: 'example.test.', qtype: 'A', rcode: 'NXDOMAIN', transport: 'udp' })).toBe(1);
    expect(value(s, 'rrdns_queries_total', { zone: 'other.test.', qtype: 'MX', rcode: 'NOERROR', transport: 'udp' })).toBe(1);
    expect(value(s, 'rrdns_queries_total', { zone: 'none', qtype: 'A', rcode: 'REFUSED', transport: 'udp' })).toBe(1);
    expect(await m.text()).toContain('# TYPE rrdns_queries_total counter');
  });

  it('bounds label values: unknown qtypes and rcodes count as OTHER', async () => {
    const m = new Metrics({ defaultMetrics: false });
    for (let qtype = 1000; qtype < 1100; qtype++) m.countQuery('example.test.', qtype, 0, 'udp');
    m.countQuery('example.test.', 65, 16, 'udp'); // HTTPS, BADVERS
    m.countQuery('example.test.', 255, 4000, 'tcp');
    m.countQuery('example.test.', 252, 5, 'tcp'); // AXFR refused
    const s = await scrape(m);
    expect(value(s, 'rrdns_queries_total', { qtype: 'OTHER', rcode: 'NOERROR' })).toBe(100);
    expect(value(s, 'rrdns_queries_total', { qtype: 'HTTPS', rcode: 'BADVERS' })).toBe(1);
    expect(value(s, 'rrdns_queries_total', { qtype: 'ANY', rcode: 'OTHER', transport: 'tcp' })).toBe(1);
    expect(value(s, 'rrdns_queries_total', { qtype: 'AXFR', rcode: 'REFUSED', transport: 'tcp' })).toBe(1);
  });

  it('countQuery touches no prom-client metric: 100k queries, then one scrape has the totals', async () => {
    // prom-client binds `inc` to `incWithoutExemplar` in the constructor: spy before constructing.
    const proto = Counter.prototype as unknown as { incWithoutExemplar: (...a: unknown[]) => unknown; labels: (...a: unknown[]) => unknown };
    const inc = vi.spyOn(proto, 'incWithoutExemplar');
    const labels = vi.spyOn(proto, 'labels');
    const m = new Metrics({ defaultMetrics: false });
    const zones = ['a.test.', 'b.test.', undefined] as const;
    const qtypes = [1, 28, 15, 16];
    const rcodes = [0, 3, 5];
    const expected = new Map<string, number>();
    const N = 100_000;
    for (let i = 0; i < N; i++) {
      const zone = zones[i % 3];
      const qtype = qtypes[i % 4]!;
      const rcode = rcodes[(i >> 2) % 3]!;
      const transport = i % 7 === 0 ? 'tcp' : 'udp';
      m.countQuery(zone, qtype, rcode, transport);
      const key = `${zone ?? 'none'}|${qtype}|${rcode}|${transport}`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    expect(inc).not.toHaveBeenCalled();
    expect(labels).not.toHaveBeenCalled();

    const s = await scrape(m);
    const series = pick(s, 'rrdns_queries_total');
    // One prom-client update per series at scrape time, not one per query.
    expect(inc.mock.calls.length).toBe(series.length);
    expect(series.length).toBe(expected.size);
    expect(series.reduce((a, x) => a + x.value, 0)).toBe(N);
    const qname: Record<number, string> = { 1: 'A', 28: 'AAAA', 15: 'MX', 16: 'TXT' };
    const rname: Record<number, string> = { 0: 'NOERROR', 3: 'NXDOMAIN', 5: 'REFUSED' };
    for (const [key, n] of expected) {
      const [zone, qtype, rcode, transport] = key.split('|') as [string, string, string, string];
      expect(value(s, 'rrdns_queries_total', { zone, qtype: qname[Number(qtype)]!, rcode: rname[Number(rcode)]!, transport }), key).toBe(n);
    }
  });

  it('keeps counting across scrapes (counters never go back)', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.countQuery('example.test.', 1, 0, 'udp');
    expect(value(await scrape(m), 'rrdns_queries_total', { qtype: 'A' })).toBe(1);
    m.countQuery('example.test.', 1, 0, 'udp');
    m.countQuery('example.test.', 1, 0, 'udp');
    expect(value(await scrape(m), 'rrdns_queries_total', { qtype: 'A' })).toBe(3);
    expect(value(await scrape(m), 'rrdns_queries_total', { qtype: 'A' })).toBe(3);
  });

  it('retainZones forgets zones no longer served', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.countQuery('old.test.', 1, 0, 'udp');
    m.countQuery('kept.test.', 1, 0, 'udp');
    m.countQuery(undefined, 1, 5, 'udp');
    m.retainZones(['kept.test.']);
    m.countQuery('kept.test.', 1, 0, 'udp');
    const s = await scrape(m);
    expect(pick(s, 'rrdns_queries_total', { zone: 'old.test.' })).toEqual([]);
    expect(value(s, 'rrdns_queries_total', { zone: 'kept.test.' })).toBe(2);
    expect(value(s, 'rrdns_queries_total', { zone: 'none' })).toBe(1);
  });

  it('each Metrics has its own registry', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.countQuery('a.test.', 1, 0, 'udp');
    expect(pick(await scrape(b), 'rrdns_queries_total')).toEqual([]);
    expect(pick(await scrape(a), 'rrdns_queries_total')).toHaveLength(1);
  });
});

describe('rrdns_cookies_total', () => {
  it('counts by result, adds what worker threads took, and a take() starts again from zero', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.cookies.count(CookieCell.VALID);
    m.cookies.count(CookieCell.VALID);
    m.cookies.count(CookieCell.MALFORMED);
    const worker = new CookieCounts();
    expect(worker.take()).toBeUndefined();
    worker.count(CookieCell.VALID);
    worker.count(CookieCell.CLIENT_ONLY);
    m.cookies.add(worker.take()!);
    expect(worker.take()).toBeUndefined();
    const s = parse(await m.registry.metrics());
    const by = (result: string) => pick(s, 'rrdns_cookies_total', { result }).reduce((a, x) => a + x.value, 0);
    expect([by('client-only'), by('valid'), by('invalid'), by('malformed'), by('badcookie'), by('truncated')]).toEqual([1, 3, 0, 1, 0, 0]);
  });
});

describe('health check metrics', () => {
  it('counts results by address and observes durations by result', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.checkResult('http 192.0.2.1:80 /', '192.0.2.1', true, 12);
    m.checkResult('http 192.0.2.1:80 /', '192.0.2.1', true, 30);
    m.checkResult('http 192.0.2.1:80 /', '192.0.2.1', false, 2000);
    m.checkResult('tcp [2001:db8::1]:443', '2001:db8::1', false, 1.5);
    const s = await scrape(m);
    expect(value(s, 'rrdns_health_checks_total', { address: '192.0.2.1', result: 'ok' })).toBe(2);
    expect(value(s, 'rrdns_health_checks_total', { address: '192.0.2.1', result: 'fail' })).toBe(1);
    expect(value(s, 'rrdns_health_checks_total', { address: '2001:db8::1', result: 'fail' })).toBe(1);
    expect(value(s, 'rrdns_health_check_duration_seconds_count', { result: 'ok' })).toBe(2);
    expect(value(s, 'rrdns_health_check_duration_seconds_sum', { result: 'ok' })).toBeCloseTo(0.042, 9);
    expect(value(s, 'rrdns_health_check_duration_seconds_count', { result: 'fail' })).toBe(2);
    expect(value(s, 'rrdns_health_check_duration_seconds_bucket', { result: 'ok', le: '0.01' })).toBe(0);
    expect(value(s, 'rrdns_health_check_duration_seconds_bucket', { result: 'ok', le: '0.025' })).toBe(1);
    expect(value(s, 'rrdns_health_check_duration_seconds_bucket', { result: 'ok', le: '0.05' })).toBe(2);
    expect(value(s, 'rrdns_health_check_duration_seconds_bucket', { result: 'fail', le: '0.0025' })).toBe(1);
    expect(value(s, 'rrdns_health_check_duration_seconds_bucket', { result: 'fail', le: '+Inf' })).toBe(2);
  });
});

describe('pool gauges', () => {
  it('publish a hand-made snapshot: counts by state, each address, the serving mode, the TTL', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setPools(samplePools());
    const s = await scrape(m);
    const www = { zone: 'example.test.', name: 'www.example.test.', type: 'A' };
    expect(value(s, 'rrdns_pool_members', { ...www, state: 'up' })).toBe(2);
    expect(value(s, 'rrdns_pool_members', { ...www, state: 'down' })).toBe(1);
    expect(value(s, 'rrdns_pool_members', { ...www, state: 'unknown' })).toBe(1);
    expect(value(s, 'rrdns_pool_members', { name: 'api.example.test.', type: 'A', state: 'down' })).toBe(2);
    expect(value(s, 'rrdns_pool_members', { name: 'api.example.test.', type: 'A', state: 'up' })).toBe(1);
    expect(pick(s, 'rrdns_pool_members')).toHaveLength(3 * 3);

    const up = (name: string, type: string, address: string) => value(s, 'rrdns_pool_member_up', { name, type, address });
    expect(up('www.example.test.', 'A', '192.0.2.10')).toBe(1);
    expect(up('www.example.test.', 'A', '192.0.2.11')).toBe(0);
    expect(up('www.example.test.', 'A', '192.0.2.12')).toBe(0); // unknown
    expect(up('www.example.test.', 'A', '192.0.2.13')).toBe(1); // drained but measured up
    expect(up('www.example.test.', 'AAAA', '2001:db8::10')).toBe(1);
    expect(value(s, 'rrdns_pool_member_up', { address: '192.0.2.30', role: 'standby' })).toBe(1);
    expect(value(s, 'rrdns_pool_member_served', { address: '192.0.2.13' })).toBe(0);
    expect(value(s, 'rrdns_pool_member_served', { address: '192.0.2.30' })).toBe(1);
    expect(value(s, 'rrdns_pool_member_served', { address: '2001:db8::11' })).toBe(0);

    expect(value(s, 'rrdns_pool_serving', { name: 'api.example.test.', type: 'A', mode: 'allDown:backup' })).toBe(1);
    expect(pick(s, 'rrdns_pool_serving', { name: 'api.example.test.', type: 'A' }).filter((x) => x.value === 1)).toHaveLength(1);
    expect(value(s, 'rrdns_pool_serving', { name: 'www.example.test.', type: 'A', mode: 'healthy' })).toBe(1);
    expect(value(s, 'rrdns_pool_serving', { name: 'www.example.test.', type: 'A', mode: 'allDown:serveAll' })).toBe(0);
    expect(value(s, 'rrdns_pool_ttl_seconds', { name: 'api.example.test.', type: 'A' })).toBe(5);
  });

  it('reads a callback once per scrape and drops pools that went away', async () => {
    let pools = samplePools();
    const source = vi.fn(() => pools);
    const m = new Metrics({ defaultMetrics: false, pools: source });
    const set = vi.spyOn(Gauge.prototype, 'set');
    let s = await scrape(m);
    expect(source).toHaveBeenCalledTimes(1);
    expect(set).toHaveBeenCalled();
    expect(pick(s, 'rrdns_pool_member_up', { name: 'api.example.test.' })).toHaveLength(3);

    pools = pools.filter((p) => p.name !== 'api.example.test.');
    pools[0]!.members[1]!.health = 'up';
    s = await scrape(m);
    expect(source).toHaveBeenCalledTimes(2);
    expect(pick(s, 'rrdns_pool_member_up', { name: 'api.example.test.' })).toEqual([]);
    expect(value(s, 'rrdns_pool_member_up', { name: 'www.example.test.', address: '192.0.2.11' })).toBe(1);
  });

  it('a failing pool source leaves the pool gauges empty, not the scrape broken', async () => {
    const m = new Metrics({
      defaultMetrics: false,
      pools: () => {
        throw new Error('boom');
      },
    });
    m.countQuery('example.test.', 1, 0, 'udp');
    const s = await scrape(m);
    expect(pick(s, 'rrdns_pool_members')).toEqual([]);
    expect(value(s, 'rrdns_queries_total', { qtype: 'A' })).toBe(1);
  });
});

describe('balance series per pool member', () => {
  it('first positions, effective and configured weights, and load only where known', async () => {
    const pools = samplePools();
    const www = pools[0]!;
    Object.assign(www.members[0]!, { firstServed: 300, weight: 3, effectiveWeight: 2.5, load: 0.7 });
    Object.assign(www.members[1]!, { firstServed: 100 });
    const m = new Metrics({ defaultMetrics: false });
    m.setPools(pools);
    m.setFirstServed(() => ({ untracked: 2, uncounted: 9 }));
    const s = await scrape(m);
    const at = (address: string) => ({ zone: 'example.test.', name: 'www.example.test.', type: 'A', address });
    expect(value(s, 'rrdns_pool_member_first_total', at('192.0.2.10'))).toBe(300);
    expect(value(s, 'rrdns_pool_member_first_total', at('192.0.2.11'))).toBe(100);
    // Not counted (firstServed null): no series rather than a false 0.
    expect(value(s, 'rrdns_pool_member_first_total', at('192.0.2.12'))).toBeUndefined();
    expect(value(s, 'rrdns_pool_member_weight', at('192.0.2.10'))).toBe(2.5);
    expect(value(s, 'rrdns_pool_member_configured_weight', at('192.0.2.10'))).toBe(3);
    expect(value(s, 'rrdns_pool_member_weight', at('192.0.2.11'))).toBe(1);
    expect(value(s, 'rrdns_pool_member_load', at('192.0.2.10'))).toBe(0.7);
    expect(pick(s, 'rrdns_pool_member_load')).toHaveLength(1);
    expect(value(s, 'rrdns_pool_first_untracked_members', {})).toBe(2);
    expect(value(s, 'rrdns_pool_first_uncounted_total', {})).toBe(9);
  });
});

describe('exposition', () => {
  it('includes the default process metrics and the Prometheus content type', async () => {
    const m = new Metrics();
    const s = await scrape(m);
    expect(pick(s, 'process_cpu_user_seconds_total')).toHaveLength(1);
    expect(pick(s, 'nodejs_heap_size_used_bytes')).toHaveLength(1);
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('lazy zone metrics', () => {
  it('count the zones built now and every build a query caused', async () => {
    const { LazyZone, dropAllZones } = await import('../../src/zone/lazy-zone.ts');
    const { zoneFromText } = await import('../support/zone-text.ts');
    const text = '$ORIGIN lz.test.\n@ 300 SOA ns1 hostmaster 1 3600 900 604800 60\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n';
    const built = zoneFromText('lz.test', text);
    const builder = { build: () => zoneFromText('lz.test', text), reserial: (z: typeof built) => z };
    const m = new Metrics({ defaultMetrics: false });
    dropAllZones();
    const before = await scrape(m);
    expect(value(before, 'rrdns_zones_built', {})).toBe(0);
    const builds = value(before, 'rrdns_zone_builds_total', {})!;
    const lazy = new LazyZone(built, { serial: 1, declaredSerial: 1, digest: 'd' }, { text }, builder);
    void lazy.nodes;
    void lazy.soa;
    const after = await scrape(m);
    expect(value(after, 'rrdns_zones_built', {})).toBe(1);
    expect(value(after, 'rrdns_zone_builds_total', {})).toBe(builds + 1);
    dropAllZones();
    expect(value(await scrape(m), 'rrdns_zones_built', {})).toBe(0);
  });
});
