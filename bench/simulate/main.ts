/**
 * `npm run simulate -- [options]`: why round robin is uneven behind caching
 * resolvers, and what each balancing mechanism does about it, on rrdns's real
 * answer path (answer-path.ts) with simulated resolvers, clients and backends.
 * Deterministic: the same options and seed print the same figures. No network.
 *
 * Prints, per mechanism: each backend's share of requests and utilisation,
 * the max/mean utilisation over 10 s windows (mean, p95, worst), how long
 * load takes to leave a backend that fails mid-run, and writes an SVG chart of
 * utilisation per backend over time (--out).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, type ScenarioOptions, type ScenarioResult } from './simulation.ts';
import { MECHANISMS, poolZone, type Mechanism } from './zone.ts';
import { lineChart } from './chart.ts';

const { values: v } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    duration: { type: 'string', default: '1200' },
    warmup: { type: 'string', default: '320' },
    backends: { type: 'string', default: '4' },
    capacities: { type: 'string' },
    utilisation: { type: 'string', default: '0.6' },
    resolvers: { type: 'string', default: '10000' },
    zipf: { type: 'string', default: '1.0' },
    clients: { type: 'string', default: '1000000' },
    'client-rate': { type: 'string', default: '0.05' },
    browsers: { type: 'string', default: '20000' },
    'stretch-share': { type: 'string', default: '0.03' },
    'stretch-to': { type: 'string', default: '300' },
    'clamp-share': { type: 'string', default: '0.1' },
    'clamp-to': { type: 'string', default: '30' },
    'browser-min-ttl': { type: 'string', default: '60' },
    'ecs-resolvers': { type: 'string', default: '10' },
    'clients-per-subnet': { type: 'string', default: '250' },
    ttl: { type: 'string', default: '20' },
    'min-ttl': { type: 'string', default: '5' },
    'check-interval': { type: 'string', default: '1' },
    connect: { type: 'string', default: 'first' },
    fail: { type: 'string', default: '0' },
    'fail-at': { type: 'string', default: '860' },
    window: { type: 'string', default: '10' },
    phase: { type: 'string', default: '300' },
    mechanism: { type: 'string', default: 'rr,weighted,feedback,resolvers,ecs,all' },
    out: { type: 'string' },
    name: { type: 'string', default: 'sim' },
    help: { type: 'boolean', default: false },
  },
});

if (v.help) {
  console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}

const num = (name: keyof typeof v) => {
  const x = Number(v[name]);
  if (!Number.isFinite(x)) throw new Error(`--${name} must be a number, got ${JSON.stringify(v[name])}`);
  return x;
};

const backends = v.capacities ? v.capacities.split(',').length : num('backends');
const relative = v.capacities ? v.capacities.split(',').map(Number) : Array<number>(backends).fill(1);
if (relative.some((c) => !(c > 0))) throw new Error('--capacities must be positive numbers');
if (v.connect !== 'first' && v.connect !== 'random') throw new Error('--connect is first or random');
const mechanisms = v.mechanism.split(',') as Mechanism[];
for (const m of mechanisms) if (!(m in MECHANISMS)) throw new Error(`--mechanism: ${m} is not one of ${Object.keys(MECHANISMS).join(', ')}`);

// Capacities scaled so the mean utilisation is --utilisation.
const demand = num('clients') * num('client-rate');
const relSum = relative.reduce((a, b) => a + b, 0);
const capacities = relative.map((c) => (demand * c) / relSum / num('utilisation'));
const addresses = relative.map((_, i) => `127.0.1.${10 + i}`);

const base: Omit<ScenarioOptions, 'zone'> = {
  seed: num('seed'),
  duration: num('duration'),
  warmup: num('warmup'),
  capacities,
  addresses,
  connect: v.connect,
  fail: num('fail'),
  failAt: num('fail-at'),
  window: num('window'),
  phase: num('phase'),
  resolvers: num('resolvers'),
  zipf: num('zipf'),
  clients: num('clients'),
  browsers: num('browsers'),
  clientRate: num('client-rate'),
  stretchShare: num('stretch-share'),
  stretchTo: num('stretch-to'),
  clampShare: num('clamp-share'),
  clampTo: num('clamp-to'),
  browserMinTtl: num('browser-min-ttl'),
  ecsResolvers: num('ecs-resolvers'),
  clientsPerSubnet: num('clients-per-subnet'),
};

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const secs = (x: number) => (x === Infinity ? 'never' : `${x} s`);

console.log(
  `rrdns balancing simulation (seed ${base.seed}): ${base.resolvers} resolvers (Zipf ${base.zipf}) + ${base.browsers} browser caches, ${base.clients} clients × ${base.clientRate} req/s;` +
    ` ${pct(base.stretchShare)} stretch TTLs to ${base.stretchTo} s, ${pct(base.clampShare)} clamp to ≥ ${base.clampTo} s; clients connect to the ${v.connect} address;` +
    ` ${backends} backends, relative capacities ${relative.join(':')}, mean utilisation ${v.utilisation}; TTL ${v.ttl} s; ${base.duration} s` +
    (base.fail >= 0 ? `, backend ${base.fail} fails at ${base.failAt} s` : ''),
);

const results: [Mechanism, ScenarioResult][] = [];
for (const mechanism of mechanisms) {
  const zone = poolZone({ mechanism, addresses, capacities: relative, ttl: num('ttl'), minTtl: num('min-ttl'), checkInterval: num('check-interval') });
  const started = performance.now();
  const r = await runScenario({ ...base, zone });
  const took = ((performance.now() - started) / 1000).toFixed(1);
  results.push([mechanism, r]);
  console.log(`\n## ${MECHANISMS[mechanism]} (${r.queries} queries answered by rrdns, ${took} s)`);
  console.log(`backend      share   utilisation   effective weight`);
  r.share.forEach((s, i) => {
    const u = r.utilisation[i]!.slice(base.warmup, base.fail >= 0 ? base.failAt : base.duration);
    console.log(`${addresses[i]!.padEnd(12)} ${pct(s).padStart(6)}   ${(u.reduce((a, b) => a + b, 0) / u.length).toFixed(3).padStart(11)}   ${r.effectiveWeights[i]!.toFixed(2).padStart(16)}`);
  });
  console.log(`max/mean utilisation over ${base.window} s windows: mean ${r.meanRatio.toFixed(3)}, p95 ${r.p95Ratio.toFixed(3)}, worst ${r.worstRatio.toFixed(3)}`);
  console.log('utilisation over time (per minute):');
  console.log(`  t(s)  ${addresses.map((a) => a.padStart(10)).join('')}`);
  for (let t = 0; t + 60 <= base.duration; t += 60) {
    console.log(`  ${String(t).padStart(4)}  ${r.utilisation.map((u) => (u.slice(t, t + 60).reduce((a, b) => a + b, 0) / 60).toFixed(3).padStart(10)).join('')}`);
  }
  if (r.drain) console.log(`failed backend ${addresses[base.fail]}: load below 50% after ${secs(r.drain.half)}, 10% after ${secs(r.drain.tenth)}, 1% after ${secs(r.drain.hundredth)}, none after ${secs(r.drain.zero)}`);
  if (v.out) {
    fs.mkdirSync(v.out, { recursive: true });
    const file = path.join(v.out, `${v.name}-${mechanism}.svg`);
    const marks: [number, string][] = [[base.warmup, 'measured from here']];
    if (r.drain) marks.push([base.failAt, `${addresses[base.fail]} fails`]);
    fs.writeFileSync(file, lineChart({ title: `${MECHANISMS[mechanism]}: utilisation per backend (max/mean ${r.meanRatio.toFixed(2)})`, series: r.utilisation, labels: addresses.map((a, i) => `${a} (cap ${relative[i]})`), yLabel: 'utilisation', smooth: 10, marks }));
    console.log(`chart: ${file}`);
  }
}

console.log('\n| mechanism | max/mean utilisation (mean, p95, worst) | shares | failed backend drained (50% / 99% / all) |');
console.log('| --- | --- | --- | --- |');
for (const [m, r] of results) {
  const drained = r.drain ? `${secs(r.drain.half)} / ${secs(r.drain.hundredth)} / ${secs(r.drain.zero)}` : 'n/a';
  console.log(`| ${MECHANISMS[m]} | ${r.meanRatio.toFixed(3)}, ${r.p95Ratio.toFixed(2)}, ${r.worstRatio.toFixed(2)} | ${r.share.map(pct).join(' ')} | ${drained} |`);
}
