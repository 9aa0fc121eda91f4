import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { CountedHistogram } from '../../src/observability/counted-histogram.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The same observations through prom-client's Histogram and ours, each in a registry of its own. */
function both(observations: readonly [result: 'ok' | 'fail', seconds: number][]) {
  const theirs = new Registry();
  const ours = new Registry();
  const h = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['result'] as const, buckets: BUCKETS, registers: [theirs] });
  const c = new CountedHistogram({ name: 'x_seconds', help: 'h', labelName: 'result', labelValues: ['ok', 'fail'], buckets: BUCKETS, registers: [ours] });
  for (const [result, s] of observations) {
    h.labels(result).observe(s);
    c.observe(result === 'ok' ? 0 : 1, s);
  }
  return { theirs, ours, c };
}

describe('CountedHistogram', () => {
  const cases: { name: string; observations: [result: 'ok' | 'fail', seconds: number][] }[] = [
    { name: 'values on the bounds count in that bucket (le is inclusive)', observations: [['ok', 0.001], ['ok', 0.0025], ['fail', 10], ['fail', 0.5]] },
    { name: 'values past the last bound count only in +Inf', observations: [['ok', 11], ['ok', 1e9], ['fail', 0]] },
    { name: 'many values of both results', observations: Array.from({ length: 500 }, (_, i) => [i % 3 === 1 ? 'fail' : 'ok', (i * 7919) % 12_000 / 1000] as ['ok' | 'fail', number]) },
  ];
  for (const t of cases) {
    it(`prints what prom-client's Histogram prints: ${t.name}`, async () => {
      const { theirs, ours } = both(t.observations);
      expect(await ours.metrics()).toBe(await theirs.metrics());
      // JSON too (what a registry merge or the admin API would read), without prom-client's empty exemplar fields.
      const plain = async (r: Registry) => (await r.getMetricsAsJSON()).map((m) => ({ ...m, values: m.values.map((v) => ({ metricName: (v as { metricName?: string }).metricName, labels: v.labels, value: v.value })) }));
      expect(await plain(ours)).toEqual(await plain(theirs));
    });
  }

  it('ignores values that are not finite (prom-client would throw on the answering thread)', async () => {
    const { ours, c } = both([['ok', 0.02]]);
    c.observe(0, Number.NaN);
    c.observe(0, Infinity);
    c.observe(7, 0.02); // no such label value
    expect(await ours.metrics()).toContain('x_seconds_count{result="ok"} 1');
  });

  it('shows zero counts for a label value never observed, and the registry reset clears it', async () => {
    const { ours } = both([['ok', 0.02]]);
    let text = await ours.metrics();
    expect(text).toContain('x_seconds_count{result="fail"} 0');
    expect(text).toContain('x_seconds_bucket{le="0.025",result="ok"} 1');
    ours.resetMetrics();
    text = await ours.metrics();
    expect(text).toContain('x_seconds_count{result="ok"} 0');
  });

  it('refuses bounds that do not ascend', () => {
    expect(() => new CountedHistogram({ name: 'y', help: 'h', labelName: 'r', labelValues: ['a'], buckets: [1, 1], registers: [] })).toThrow(/ascend/);
  });
});
