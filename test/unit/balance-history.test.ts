/**
 * The balance history: first-position shares from counter deltas, weights
 * and loads per sample, the ring bound, members dropped when they go, and the
 * sparklines the status page draws from it.
 */
import { describe, expect, it } from 'vitest';
import { BalanceHistory } from '../../src/observability/balance-history.ts';
import { renderBalance, sparkline } from '../../src/observability/status-page.ts';
import type { MemberSnapshot, PoolSnapshot } from '../../src/observability/snapshot.ts';

type M = { address: string; first: number | null; weight?: number; load?: number | null };

function pool(members: M[], name = 'www.example.test.'): PoolSnapshot {
  return {
    zone: 'example.test.',
    name,
    type: 'A',
    allDown: 'serveAll',
    minHealthy: null,
    serving: 'healthy',
    ttl: 30,
    members: members.map(
      (m): MemberSnapshot => ({
        address: m.address,
        role: 'primary',
        health: 'up',
        override: null,
        overrideSource: null,
        served: true,
        since: null,
        lastCheckAt: null,
        lastResult: null,
        lastOk: null,
        latencyMs: null,
        consecutiveOk: 0,
        consecutiveFail: 0,
        check: '',
        weight: m.weight ?? 1,
        effectiveWeight: m.weight ?? 1,
        load: m.load ?? null,
        firstShare: null,
        firstServed: m.first,
      }),
    ),
  };
}

const share = (h: BalanceHistory, address: string) => h.share('example.test.', 'www.example.test.', 'A', address);

describe('BalanceHistory shares', () => {
  it.each([
    { name: 'the first sample has nothing to compare: no share', samples: [[30, 10]], want: [null, null] },
    { name: 'deltas 30 and 10 are 75% and 25%', samples: [[0, 0], [30, 10]], want: [0.75, 0.25] },
    { name: 'shares are of the last interval, not since start', samples: [[0, 0], [30, 10], [40, 40]], want: [0.25, 0.75] },
    { name: 'an interval with no answers has no share', samples: [[5, 5], [5, 5]], want: [null, null] },
    { name: 'a member not counted (null) is left out of the total', samples: [[0, null], [10, null]], want: [1, null] },
  ])('$name', ({ samples, want }) => {
    const h = new BalanceHistory();
    samples.forEach((counts, i) => h.sample(i * 10_000, [pool([{ address: 'a', first: counts[0]! }, { address: 'b', first: counts[1] ?? null }])]));
    expect([share(h, 'a'), share(h, 'b')]).toEqual(want);
  });

  it('a member that appears later gets a share from its second sample on', () => {
    const h = new BalanceHistory();
    h.sample(0, [pool([{ address: 'a', first: 0 }])]);
    h.sample(10_000, [pool([{ address: 'a', first: 10 }, { address: 'b', first: 0 }])]);
    expect([share(h, 'a'), share(h, 'b')]).toEqual([1, null]);
    h.sample(20_000, [pool([{ address: 'a', first: 20 }, { address: 'b', first: 30 }])]);
    expect([share(h, 'a'), share(h, 'b')]).toEqual([0.25, 0.75]);
  });
});

describe('BalanceHistory series and bounds', () => {
  it('keeps weight and load per sample, null where the load is unknown, oldest first', () => {
    const h = new BalanceHistory();
    h.sample(0, [pool([{ address: 'a', first: 0, weight: 3, load: null }])]);
    h.sample(10_000, [pool([{ address: 'a', first: 5, weight: 2.5, load: 0.73 }])]);
    expect(h.series('example.test.', 'www.example.test.', 'A', 'a')).toEqual({ address: 'a', firstShare: [null, 1], effectiveWeight: [3, 2.5], load: [null, 0.73] });
    expect(h.view().at).toEqual([0, 10_000]);
  });

  it.each([
    { name: '15 minutes of 10 s samples keep 90', intervalMs: 10_000, windowMs: 900_000, taken: 200, want: 90 },
    { name: 'fewer samples than the window keep them all', intervalMs: 10_000, windowMs: 900_000, taken: 5, want: 5 },
    { name: 'a window of 1 minute at 20 s keeps 3', intervalMs: 20_000, windowMs: 60_000, taken: 10, want: 3 },
  ])('$name', ({ intervalMs, windowMs, taken, want }) => {
    const h = new BalanceHistory({ intervalMs, windowMs });
    for (let i = 0; i < taken; i++) h.sample(i * intervalMs, [pool([{ address: 'a', first: i }])]);
    const v = h.view();
    expect(v.at.length).toBe(want);
    expect(v.at[want - 1]).toBe((taken - 1) * intervalMs);
    expect(v.at[0]).toBe((taken - want) * intervalMs);
    expect(v.pools[0]!.members[0]!.effectiveWeight.length).toBe(want);
  });

  it('members missing from a sample are dropped, and their pools with them', () => {
    const h = new BalanceHistory();
    h.sample(0, [pool([{ address: 'a', first: 0 }, { address: 'b', first: 0 }]), pool([{ address: 'c', first: 0 }], 'api.example.test.')]);
    expect(h.size).toBe(3);
    h.sample(10_000, [pool([{ address: 'a', first: 1 }])]);
    expect(h.size).toBe(1);
    expect(h.view().pools.map((p) => p.members.map((m) => m.address))).toEqual([['a']]);
  });

  it('at most maxMembers members are kept; the rest are not tracked', () => {
    const h = new BalanceHistory({ maxMembers: 2 });
    h.sample(0, [pool([{ address: 'a', first: 0 }, { address: 'b', first: 0 }, { address: 'c', first: 0 }])]);
    expect(h.size).toBe(2);
    expect(h.series('example.test.', 'www.example.test.', 'A', 'c')).toBeUndefined();
  });
});

describe('sparklines', () => {
  it.each([
    { name: 'a rising line from bottom to top', values: [0, 0.5, 1], max: 1, want: 'M0.0 19.0L48.0 10.0L96.0 1.0' },
    { name: 'a null breaks the line', values: [1, null, 1], max: 1, want: 'M0.0 1.0M96.0 1.0' },
    { name: 'values above max are drawn at the top', values: [2, 4], max: 2, want: 'M0.0 1.0L96.0 1.0' },
  ])('$name', ({ values, max, want }) => {
    expect(sparkline(values, max, 'x')).toContain(`d="${want}"`);
  });

  it('no value: an empty chart, no path', () => {
    const svg = sparkline([null, null], 1, 'x');
    expect(svg).toMatch(/^<svg [^>]*class="sparkline"/);
    expect(svg).not.toContain('<path');
  });

  it('the label is escaped; a member shows its three charts with the current values', () => {
    expect(sparkline([1], 1, '<b>"')).toContain('aria-label="&lt;b&gt;&quot;"');
    const m = pool([{ address: 'a', first: 3, weight: 3, load: 0.5 }]).members[0]!;
    const html = renderBalance({ ...m, firstShare: 0.75 }, { address: 'a', firstShare: [null, 0.75], effectiveWeight: [3, 3], load: [0.4, 0.5] });
    expect(html.match(/<svg /g)?.length).toBe(3);
    expect(html).toContain('<span class="now">75%</span>');
    expect(html).toContain('<span class="now">3</span>');
    expect(html).toContain('<span class="now">0.50</span>');
  });
});
