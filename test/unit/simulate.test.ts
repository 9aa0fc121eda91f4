/**
 * The balancing simulator (bench/simulate): deterministic, on rrdns's real
 * answer path (zone loader, health monitor, pool policy, load feedback,
 * pipeline), with a small population so it runs in seconds. Times here are
 * simulated seconds, the same on every machine.
 */
import { describe, expect, it } from 'vitest';
import { runScenario, type ScenarioOptions } from '../../bench/simulate/simulation.ts';
import { poolZone, type Mechanism } from '../../bench/simulate/zone.ts';
import { AnswerPath } from '../../bench/simulate/answer-path.ts';
import { lineChart } from '../../bench/simulate/chart.ts';

const addresses = ['127.0.1.10', '127.0.1.11', '127.0.1.12'];

function scenario(mechanism: Mechanism, over: Partial<ScenarioOptions> = {}, relative = [1, 1, 1]): ScenarioOptions {
  const clients = 40_000;
  const clientRate = 0.05;
  const sum = relative.reduce((a, b) => a + b, 0);
  return {
    seed: 7,
    duration: 240,
    warmup: 100,
    window: 10,
    phase: 60,
    capacities: relative.map((c) => (clients * clientRate * c) / sum / 0.6),
    addresses,
    connect: 'first',
    fail: -1,
    failAt: 0,
    resolvers: 400,
    zipf: 1,
    clients,
    browsers: 400,
    clientRate,
    stretchShare: 0.03,
    stretchTo: 120,
    clampShare: 0.1,
    clampTo: 30,
    browserMinTtl: 60,
    ecsResolvers: 3,
    clientsPerSubnet: 250,
    zone: poolZone({ mechanism, addresses, capacities: relative, ttl: 20, minTtl: 5, checkInterval: 1 }),
    ...over,
  };
}

describe('balancing simulator', () => {
  it('is deterministic: the same seed gives the same loads', async () => {
    const a = await runScenario(scenario('all', { duration: 120, warmup: 60 }));
    const b = await runScenario(scenario('all', { duration: 120, warmup: 60 }));
    expect(b.queries).toBe(a.queries);
    expect(b.load.map((l) => [...l])).toEqual(a.load.map((l) => [...l]));
  });

  it('load feedback evens utilisation where plain round robin does not, and moves the effective weights', async () => {
    const rr = await runScenario(scenario('rr'));
    const feedback = await runScenario(scenario('feedback'));
    expect(feedback.meanRatio).toBeLessThan(rr.meanRatio);
    expect(rr.effectiveWeights).toEqual([1, 1, 1]);
    expect(feedback.effectiveWeights.some((w) => Math.abs(w - 1) > 0.01)).toBe(true);
  });

  it('weights follow unequal capacities: shares 3:2:1 with weighted rotation, not with plain rotation', async () => {
    const relative = [3, 2, 1];
    const weighted = await runScenario(scenario('weighted', {}, relative));
    const plain = await runScenario(scenario('rr', {}, relative));
    expect(weighted.share[0]).toBeGreaterThan(weighted.share[1]!);
    expect(weighted.share[1]).toBeGreaterThan(weighted.share[2]!);
    expect(Math.abs(plain.share[0]! - plain.share[2]!)).toBeLessThan(Math.abs(weighted.share[0]! - weighted.share[2]!));
  });

  it('a backend that fails mid-run loses its load once the real health checks mark it down', async () => {
    const r = await runScenario(scenario('rr', { fail: 1, failAt: 150, duration: 320 }));
    expect(r.drain).toBeDefined();
    expect(r.drain!.half).toBeLessThan(Infinity);
    // Caches that stretch TTLs keep sending to it the longest.
    expect(r.drain!.half).toBeLessThanOrEqual(r.drain!.hundredth);
    expect(r.load[1]![319]).toBeLessThan(r.load[1]![140]! * 0.01);
  });

  it('answers carry the pool ECS scope only where the pool enables it (the real pipeline answers)', () => {
    const probe = { up: () => true, load: () => 0.5 };
    const withEcs = new AnswerPath(poolZone({ mechanism: 'ecs', addresses, capacities: [1, 1, 1], ttl: 20, minTtl: 5, checkInterval: 1 }), addresses, probe);
    const without = new AnswerPath(poolZone({ mechanism: 'rr', addresses, capacities: [1, 1, 1], ttl: 20, minTtl: 5, checkInterval: 1 }), addresses, probe);
    expect(withEcs.query('127.0.0.1', [10, 0, 1]).scope).toBe(24);
    expect(without.query('127.0.0.1', [10, 0, 1]).scope).toBe(0);
    expect(without.query('127.0.0.1').order).toHaveLength(3);
  });

  it('draws one line per backend in the chart', () => {
    const svg = lineChart({ title: 'a <b>', series: [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]], labels: ['x', 'y'], yLabel: 'utilisation', smooth: 1, marks: [[1, 'fail']] });
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('a &lt;b&gt;');
    expect(svg.startsWith('<svg')).toBe(true);
  });
});
