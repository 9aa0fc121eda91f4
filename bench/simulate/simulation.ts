/**
 * The discrete-event simulation. Each cache re-asks rrdns at the first client
 * request after its answer expired: its clients make requests as a Poisson
 * process, so that moment is the expiry plus an exponential gap (the request
 * that triggers the query is the first one served by the new answer). Until
 * it expires, every request of the cache's clients goes to the answer's first
 * address (or, with --connect random, to a random address of the set); loads
 * are accounted per second as the expected request count of those Poisson
 * processes. Backends report their last second's utilisation to their health
 * checks, and can fail mid-run.
 */
import { AnswerPath, type BackendProbe, type SimAnswer } from './answer-path.ts';
import { exponentialMs, keptTtl, makePopulation, prng, type Cache, type PopulationOptions } from './population.ts';

export interface ScenarioOptions extends PopulationOptions {
  seed: number;
  /** Seconds simulated. */
  duration: number;
  /** Balance is measured from here (s): caches filled, feedback settled. */
  warmup: number;
  /** Requests per second each backend can serve. */
  capacities: number[];
  /** Zone text of the pool (built by zone.ts). */
  zone: string;
  addresses: string[];
  connect: 'first' | 'random';
  /** Backend index that stops answering at failAt seconds; -1 for none. */
  fail: number;
  failAt: number;
  /** Seconds per utilisation window. */
  window: number;
  /** Caches make their first query at a random time within this many seconds. */
  phase: number;
}

export interface ScenarioResult {
  /** Requests per backend per second. */
  load: Float64Array[];
  utilisation: number[][];
  /** Per window: max/mean utilisation over live backends (measured windows only). */
  ratios: number[];
  share: number[];
  meanRatio: number;
  p95Ratio: number;
  worstRatio: number;
  /** Seconds after the failure until the failed backend's load fell below 50%, 10%, 1% of its load before, and to 0. */
  drain: { half: number; tenth: number; hundredth: number; zero: number } | undefined;
  queries: number;
  effectiveWeights: number[];
}

/** A binary min-heap of (time, cache) events. */
class EventQueue {
  private times: number[] = [];
  private items: number[] = [];
  get size(): number {
    return this.times.length;
  }
  peekTime(): number {
    return this.times[0]!;
  }
  push(time: number, item: number): void {
    const t = this.times;
    const it = this.items;
    let i = t.length;
    t.push(time);
    it.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (t[p]! <= time) break;
      t[i] = t[p]!;
      it[i] = it[p]!;
      i = p;
    }
    t[i] = time;
    it[i] = item;
  }
  pop(): number {
    const t = this.times;
    const it = this.items;
    const top = it[0]!;
    const lastT = t.pop()!;
    const lastI = it.pop()!;
    if (t.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= t.length) break;
        const c = l + 1 < t.length && t[l + 1]! < t[l]! ? l + 1 : l;
        if (t[c]! >= lastT) break;
        t[i] = t[c]!;
        it[i] = it[c]!;
        i = c;
      }
      t[i] = lastT;
      it[i] = lastI;
    }
    return top;
  }
}

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const random = prng(o.seed);
  const n = o.capacities.length;
  const seconds = o.duration;
  const load = o.capacities.map(() => new Float64Array(seconds + 1));
  let clock = 0;
  const probe: BackendProbe = {
    up: (i) => !(i === o.fail && clock >= o.failAt * 1000),
    // What the backend's /health reports: its utilisation over the last whole second.
    load: (i) => {
      const s = Math.floor(clock / 1000) - 1;
      return s >= 0 ? load[i]![s]! / o.capacities[i]! : 0;
    },
  };
  const path = new AnswerPath(o.zone, o.addresses, probe);
  let caches = makePopulation(o, random);
  caches = mergeUnscopedEcs(caches, path);

  const queue = new EventQueue();
  // Caches do not start in step: each one's first query falls anywhere in the first `phase` seconds, as if it had
  // been caching all along (a population that starts together would re-ask in lockstep for the whole run).
  caches.forEach((c, i) => queue.push(random() * o.phase * 1000 + exponentialMs(random, c.rate), i));
  const spread = (c: Cache, answer: SimAnswer, from: number, until: number) => {
    const targets = answer.order.length === 0 ? [] : o.connect === 'first' ? [answer.order[0]!] : answer.order;
    if (targets.length === 0) return;
    const rate = c.rate / targets.length;
    const endS = Math.min(seconds, Math.floor(until / 1000));
    for (let s = Math.floor(from / 1000); s <= endS; s++) {
      const overlap = (Math.min(until, (s + 1) * 1000) - Math.max(from, s * 1000)) / 1000;
      if (overlap <= 0) continue;
      for (const b of targets) load[b]![s]! += rate * overlap;
    }
  };

  let queries = 0;
  for (let s = 0; s < seconds; s++) {
    const end = (s + 1) * 1000;
    while (queue.size > 0 && queue.peekTime() < end) {
      const at = queue.peekTime();
      const i = queue.pop();
      const c = caches[i]!;
      path.setQueryTime(at);
      const answer = path.query(c.source, c.ecs);
      queries++;
      const kept = keptTtl(c.ttlRule, answer.ttl, o) * 1000;
      spread(c, answer, at, at + kept);
      queue.push(at + kept + exponentialMs(random, c.rate), i);
    }
    clock = end;
    await path.advanceTo(end);
  }

  const utilisation = load.map((l, i) => Array.from(l.subarray(0, seconds), (x) => x / o.capacities[i]!));
  const ratios: number[] = [];
  const measuredUntil = o.fail >= 0 ? Math.min(o.failAt, seconds) : seconds;
  for (let w = o.warmup; w + o.window <= measuredUntil; w += o.window) {
    const u = utilisation.map((series) => series.slice(w, w + o.window).reduce((a, b) => a + b, 0) / o.window);
    const mean = u.reduce((a, b) => a + b, 0) / n;
    ratios.push(Math.max(...u) / mean);
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  const totals = load.map((l) => l.subarray(o.warmup, measuredUntil).reduce((a, b) => a + b, 0));
  const all = totals.reduce((a, b) => a + b, 0);
  const snapshot = path.snapshot()[0]!;
  return {
    load,
    utilisation,
    ratios,
    share: totals.map((t) => t / all),
    meanRatio: ratios.reduce((a, b) => a + b, 0) / Math.max(1, ratios.length),
    p95Ratio: sorted[Math.floor(sorted.length * 0.95)] ?? NaN,
    worstRatio: sorted[sorted.length - 1] ?? NaN,
    drain: o.fail >= 0 && o.failAt < seconds ? drainTimes(load[o.fail]!, o.failAt, seconds) : undefined,
    queries,
    effectiveWeights: o.addresses.map((a) => snapshot.members.find((m) => m.address === a)?.effectiveWeight ?? NaN),
  };
}

/** How long the failed backend keeps receiving requests: seconds until its load is below each fraction of its load just before. */
function drainTimes(series: Float64Array, failAt: number, seconds: number) {
  const before = series.slice(Math.max(0, failAt - 10), failAt).reduce((a, b) => a + b, 0) / Math.min(10, failAt);
  const first = (fraction: number) => {
    for (let s = failAt; s < seconds; s++) if (series[s]! <= before * fraction) return s - failAt;
    return Infinity;
  };
  return { half: first(0.5), tenth: first(0.1), hundredth: first(0.01), zero: first(0) };
}

/**
 * An ECS-sending resolver caches per client subnet only when rrdns answers
 * with a scope (RFC 7871 §7.3.1); with scope 0 the answer serves all its
 * clients. One probe query per such resolver, through the real answer path,
 * tells which: its subnet caches are merged into one when the scope is 0.
 */
function mergeUnscopedEcs(caches: Cache[], path: AnswerPath): Cache[] {
  const out: Cache[] = [];
  const merged = new Map<number, Cache>();
  for (const c of caches) {
    if (c.ecs === undefined) {
      out.push(c);
      continue;
    }
    const existing = merged.get(c.rank);
    if (existing) {
      existing.clients += c.clients;
      existing.rate += c.rate;
      continue;
    }
    if (path.query(c.source, c.ecs).scope > 0) {
      out.push(c);
      continue;
    }
    const one = { ...c };
    merged.set(c.rank, one);
    out.push(one);
  }
  return out;
}
