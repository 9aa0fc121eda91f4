/**
 * An in-process answer path as the server builds it, for the answer-path
 * tests and bench/answer-path.ts: a realistic zone (static names, a
 * health-checked pool with weighted rotation, resolver-aware TTLs and an ECS
 * scope, a wildcard, a delegation), its pool registry and health monitor on
 * a manual scheduler (every member up), and a QueryPipeline with response
 * rate limiting, cookies and resolver demand on. Time is fixed unless the
 * caller moves it, so compiled answers never expire under a measurement.
 */
import { parseNativeZone } from '../../src/zone/native.ts';
import { buildZone } from '../../src/zone/zone.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { HealthMonitor } from '../../src/health/monitor.ts';
import { ManualScheduler } from '../../src/health/manual-scheduler.ts';
import { PoolRegistry } from '../../src/server/pool-registry.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { QueryPipeline, type PipelineOptions } from '../../src/server/pipeline.ts';
import { AnswerCache } from '../../src/server/answer-cache.ts';
import { DemandTable } from '../../src/balancing/demand.ts';
import { ResponseLimiter } from '../../src/rrl/limiter.ts';
import { BucketTable } from '../../src/rrl/table.ts';
import { CookieSecrets } from '../../src/cookies/secrets.ts';
import { ServerCookies } from '../../src/cookies/server-cookies.ts';
import { CookieCounts, QueryCounts } from '../../src/observability/metrics.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { ednsOption, rawQuery } from './rawdns.ts';

export const ORIGIN = 'hot.test';
export const POOL_MEMBERS = ['192.0.2.10', '192.0.2.11', '192.0.2.12', '192.0.2.13'];

const ZONE = `origin: ${ORIGIN}
ttl: { default: 300, min: 5, max: 86400 }
soa: { mname: ns1, rname: hostmaster, serial: 1, refresh: 3600, retry: 900, expire: 1209600, minimum: 60 }
records:
  "@":
    NS: [ns1, ns2]
    MX: ["10 mail", "20 mail2"]
    TXT: '"v=spf1 mx -all"'
  ns1: { A: 192.0.2.53 }
  ns2: { A: 192.0.2.54 }
  mail: { A: 192.0.2.25 }
  mail2: { A: 192.0.2.26 }
  www:
    ttl: 30
    A: [192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4]
    AAAA: ["2001:db8::10", "2001:db8::11"]
  blog: { CNAME: www }
  "*.apps": { A: 192.0.2.30 }
  sub: { NS: ns1.sub }
  ns1.sub: { A: 192.0.2.60 }
  pool:
    ttl: 60
    A: [${POOL_MEMBERS.join(', ')}]
    pool:
      check: { type: http, port: 80, path: /health, interval: 1s, timeout: 500ms, fall: 2, rise: 2 }
      members:
${POOL_MEMBERS.map((a, i) => `        "${a}": { weight: ${i + 1} }`).join('\n')}
      balance:
        resolvers: { heavyShare: 0.02, ttl: 10, steer: true }
        ecs: { ipv4: 24, ipv6: 56 }
`;

export interface FixtureOptions {
  rrl?: boolean;
  cookies?: boolean;
  /** Responses per second per bucket (high by default so that the measured path answers). */
  rate?: number;
  requireCookies?: boolean;
}

export interface AnswerFixture {
  pipeline: QueryPipeline;
  counts: QueryCounts;
  /** Sets the clock every part reads (ms). */
  setNow(ms: number): void;
  /** Lets the health monitor see every member up (runs its first checks). */
  warm(): Promise<void>;
}

/** The pipeline over the fixture zone, its clock at 0. */
export function answerFixture(opts: FixtureOptions = {}): AnswerFixture {
  const parsed = parseNativeZone(ZONE, { file: `${ORIGIN}.yaml`, defaultOrigin: ORIGIN, readMasterFile: () => '' });
  if (!parsed.input) throw new Error(`fixture zone does not parse: ${parsed.issues.map((i) => i.message).join('; ')}`);
  const built = buildZone(parsed.input);
  if (!built.zone) throw new Error(`fixture zone does not build: ${built.issues.map((i) => i.message).join('; ')}`);
  const zone = built.zone;
  const scheduler = new ManualScheduler(1_700_000_000_000);
  let now = 0;
  let served: ServedZone | undefined;
  const monitor = new HealthMonitor({ check: async () => ({ ok: true, detail: 'HTTP 200', status: 200, latencyMs: 1 }), scheduler, onChange: () => served?.invalidate() });
  const registry = new PoolRegistry(monitor);
  const entries = PoolRegistry.plan([zone]);
  monitor.setTargets(PoolRegistry.targets(entries));
  registry.use(entries);
  served = new ServedZone(zone, (rrset) => registry.liveSet(rrset), undefined, new AnswerCache(), () => now);
  const store = new ZoneStore<ServedZone>();
  store.replace(new Map([[zone.originKey, served]]));
  const settings = parseConfig({ zonesDir: '/x', listen: ['127.0.0.1:53'], rrl: { responsesPerSecond: opts.rate ?? 1_000_000, nxdomainsPerSecond: opts.rate ?? 1_000_000, nodataPerSecond: opts.rate ?? 1_000_000, referralsPerSecond: opts.rate ?? 1_000_000, errorsPerSecond: opts.rate ?? 1_000_000, slip: 2 } }).rrl;
  const counts = new QueryCounts();
  const options: PipelineOptions = {
    observe: (q, rcode, z, transport) => counts.count(z?.label, q.qtype, rcode, transport),
    demand: { table: new DemandTable(4096, undefined, [0x9e3779b9, 0x85ebca6b]), now: () => now },
  };
  if (opts.rrl !== false) options.rrl = new ResponseLimiter(settings, new BucketTable(4096));
  if (opts.cookies !== false) {
    options.cookies = { server: new ServerCookies(new CookieSecrets(Buffer.alloc(32, 7), 26 * 3600, () => 1_700_000_000)), require: opts.requireCookies ?? false, counts: new CookieCounts() };
  }
  return {
    pipeline: new QueryPipeline(store, options),
    counts,
    setNow: (ms) => {
      now = ms;
    },
    warm: async () => {
      for (let i = 0; i < 4; i++) await scheduler.advance(1000);
    },
  };
}

/** A client cookie (8 octets) as a COOKIE option. */
export function clientCookieOption(seed = 1): Buffer {
  const c = Buffer.alloc(8);
  c.writeUInt32BE(seed >>> 0, 0);
  c.writeUInt32BE(0x5eed, 4);
  return ednsOption(10, c);
}

/** An ECS option for an IPv4 /24. */
export function ecsOption(a: number, b: number, c: number): Buffer {
  return ednsOption(8, Buffer.from([0, 1, 24, 0, a, b, c]));
}

/** The query kinds the benchmark and the allocation test ask. */
export const QUERY_KINDS = {
  static: () => rawQuery(`www.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, rdata: clientCookieOption() } }),
  pool: () => rawQuery(`pool.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, rdata: Buffer.concat([clientCookieOption(), ecsOption(198, 51, 100)]) } }),
  nxdomain: () => rawQuery(`nope.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, rdata: clientCookieOption() } }),
  mixedCase: () => rawQuery(`WwW.HoT.TeSt`, { qtype: 28 }),
  wildcard: () => rawQuery(`x1.apps.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232 } }),
  mx: () => rawQuery(ORIGIN, { qtype: 15, opt: { udpSize: 1232 } }),
  refused: () => rawQuery('example.com', { qtype: 1 }),
} as const;
