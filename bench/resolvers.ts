/**
 * `npm run bench:resolvers [-- --seconds 40 --populations 12,3,1 --ttl 3 --pause 100 --seed 1]`
 *
 * Round-robin DNS behind real caching resolvers, on loopback
 * (test/support/resolver-farm.ts): three HTTP backends, rrdns, one Unbound
 * per client population, clients that take the first address. Runs the
 * same farm twice, plain round robin then load feedback (same seed, same
 * duration), and prints requests per backend, the spread (max/mean
 * requests per backend; 1.00 is even, 3.00 is all on one of three) over the
 * whole run and over its second half (after feedback has had time to act),
 * and the members' effective weights at the end. Figures only: nothing is
 * asserted here (the mechanism is tested in test/integration/resolver-farm.test.ts).
 */
import { parseArgs } from 'node:util';
import { toolPath } from '../test/support/tools.ts';
import { DEFAULT_POPULATIONS, spread, startFarm } from '../test/support/resolver-farm.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '40' },
    populations: { type: 'string', default: DEFAULT_POPULATIONS.join(',') },
    ttl: { type: 'string', default: '3' },
    pause: { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    interval: { type: 'string', default: '1s' },
  },
});
const seconds = Number(values.seconds);
const populations = values.populations.split(',').map(Number);
const ttl = Number(values.ttl);
const pauseMs = Number(values.pause);
const seed = Number(values.seed);
const interval = values.interval;
if (!(seconds >= 5 && seconds <= 300) || populations.some((n) => !Number.isInteger(n) || n < 1 || n > 50) || !(ttl >= 1) || !(pauseMs >= 10)) {
  console.error('usage: bench:resolvers [--seconds 5..300] [--populations 12,3,1 (1..50 each)] [--ttl S] [--pause MS>=10] [--seed N] [--interval 1s (feedback step)]');
  process.exit(2);
}
if (!toolPath('unbound')) {
  console.error("bench:resolvers needs unbound (Debian package 'unbound')");
  process.exit(2);
}

interface Result {
  mode: string;
  addresses: string[];
  total: number[];
  secondHalf: number[];
  weights: string[];
  /** Per resolver: its clients' requests per backend, in backend order. */
  byResolver: { clients: number; counts: number[] }[];
  errors: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function run(mode: 'round robin' | 'load feedback'): Promise<Result> {
  const farm = await startFarm({ feedback: mode === 'load feedback' && { interval }, populations, ttl, seed });
  try {
    await farm.ready();
    for (const b of farm.backends) b.resetCounts();
    const durationMs = seconds * 1000;
    const clients = farm.runClients({ durationMs, pauseMs });
    await sleep(durationMs / 2);
    const atHalf = farm.backends.map((b) => b.requests);
    const reports = await clients.finished;
    const total = farm.backends.map((b) => b.requests);
    const members = await farm.members();
    const weights = farm.backends.map((b) => {
      const m = members.find((x) => x.address === b.address);
      return m ? `${m.effectiveWeight.toFixed(2)}/${m.weight}` : '?';
    });
    return {
      mode,
      addresses: farm.backends.map((b) => b.address),
      total,
      secondHalf: total.map((n, i) => n - atHalf[i]!),
      weights,
      byResolver: reports.map((rep, i) => ({ clients: populations[i]!, counts: farm.backends.map((b) => rep.byFirst[b.address] ?? 0) })),
      errors: reports.reduce((a, r) => a + r.dnsErrors + r.httpErrors, 0),
    };
  } finally {
    await farm.close();
  }
}

console.log(`resolvers: ${populations.length} Unbound with ${populations.join(', ')} client loops; ${seconds} s per run; TTL ${ttl} s; pause ${pauseMs} ms; seed ${seed}; feedback interval ${interval}`);
const results: Result[] = [];
for (const mode of ['round robin', 'load feedback'] as const) {
  const r = await run(mode);
  results.push(r);
  console.log(`\n${r.mode}`);
  console.log(`  ${'backend'.padEnd(12)} ${'requests'.padStart(9)} ${'2nd half'.padStart(9)}  effective/configured weight at the end`);
  r.addresses.forEach((a, i) => console.log(`  ${a.padEnd(12)} ${String(r.total[i]).padStart(9)} ${String(r.secondHalf[i]).padStart(9)}  ${r.weights[i]}`));
  console.log(`  spread max/mean: ${spread(r.total).toFixed(2)} (whole run), ${spread(r.secondHalf).toFixed(2)} (second half); client errors: ${r.errors}`);
  const pct = (n: number, all: number[]) => `${Math.round((100 * n) / Math.max(1, all.reduce((a, b) => a + b, 0)))}%`.padStart(5);
  r.byResolver.forEach((v, i) => console.log(`  resolver ${i + 1} (${String(v.clients).padStart(2)} clients): first address ${v.counts.map((n) => pct(n, v.counts)).join(' ')}`));
}
console.log('\nsummary (spread max/mean requests per backend, whole run / second half)');
for (const r of results) console.log(`  ${r.mode.padEnd(14)} ${spread(r.total).toFixed(2)} / ${spread(r.secondHalf).toFixed(2)}`);
