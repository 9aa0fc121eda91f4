/**
 * Pool policy tables: which members serve, in which mode, and the
 * health-aware TTL, from members' roles, overrides and measured health.
 */
import { describe, expect, it } from 'vitest';
import { decidePool, decideServing, failoverEstimates, healthAwareTtl, steeringWeights, type PolicyMember } from '../../src/server/pool-policy.ts';
import { buildZone } from '../../src/zone/zone.ts';
import { parseNativeText } from '../support/zone-text.ts';
import type { Serving } from '../../src/observability/snapshot.ts';

/** `p+` primary up, `p-` primary down, `s+`/`s-` standby; `*N` weight N (default 1); `:drain` `:force-up` `:force-down` override. */
function members(spec: string): PolicyMember[] {
  return spec.split(' ').filter(Boolean).map((m) => {
    const [head, override] = m.split(':');
    const [who, weight] = head!.split('*');
    return {
      role: who![0] === 'p' ? 'primary' : 'standby',
      health: who![1] === '+' ? 'up' : 'down',
      override: (override ?? null) as PolicyMember['override'],
      msToPossibleChange: 60_000,
      weight: weight === undefined ? 1 : Number(weight),
    };
  });
}

describe('decideServing', () => {
  const cases: { name: string; members: string; allDown?: 'serveAll' | 'backup' | 'nodata' | 'servfail'; minHealthy?: number; serving: Serving; served: number[] }[] = [
    { name: 'all up: every primary', members: 'p+ p+ p+', serving: 'healthy', served: [0, 1, 2] },
    { name: 'one down: the others', members: 'p+ p- p+', serving: 'healthy', served: [0, 2] },
    { name: 'drained member leaves though up', members: 'p+:drain p+', serving: 'healthy', served: [1] },
    { name: 'force-up brings a down member in', members: 'p-:force-up p+', serving: 'healthy', served: [0, 1] },
    { name: 'force-down takes an up member out', members: 'p+:force-down p+', serving: 'healthy', served: [1] },
    { name: 'all down, serveAll: fail open', members: 'p- p-', serving: 'allDown:serveAll', served: [0, 1] },
    { name: 'all down, fail open keeps drained out', members: 'p- p-:drain', serving: 'allDown:serveAll', served: [0] },
    { name: 'all drained: fail open serves all primaries', members: 'p+:drain p+:drain', serving: 'allDown:serveAll', served: [0, 1] },
    { name: 'all down, backup: healthy standbys', members: 'p- p- s+ s-', allDown: 'backup', serving: 'allDown:backup', served: [2] },
    { name: 'all down, backup with no healthy standby: fail open', members: 'p- p- s-', allDown: 'backup', serving: 'allDown:serveAll', served: [0, 1] },
    { name: 'all down, nodata', members: 'p- p-', allDown: 'nodata', serving: 'allDown:nodata', served: [] },
    { name: 'all down, servfail', members: 'p- p-', allDown: 'servfail', serving: 'allDown:servfail', served: [] },
    { name: 'below minHealthy: every not-drained primary', members: 'p+ p- p- p-:drain', minHealthy: 0.5, serving: 'minHealthy', served: [0, 1, 2] },
    { name: 'at minHealthy: the healthy ones', members: 'p+ p+ p- p-', minHealthy: 0.5, serving: 'healthy', served: [0, 1] },
    { name: 'standbys never serve while a primary is up', members: 'p+ s+', allDown: 'backup', serving: 'healthy', served: [0] },
    { name: 'weight 0 stays out while a weighted member is up', members: 'p+*0 p+*2 p+', serving: 'healthy', served: [1, 2] },
    { name: 'weight 0 serves when every weighted member is down', members: 'p+*0 p-*2 p-', serving: 'healthy', served: [0] },
    { name: 'weight 0 serves before falling back to standby', members: 'p+*0 p- s+', allDown: 'backup', serving: 'healthy', served: [0] },
    { name: 'a weight-0 standby serves only when no weighted standby is up', members: 'p- s+*0 s+', allDown: 'backup', serving: 'allDown:backup', served: [2] },
    { name: 'weight 0 still counts as healthy for minHealthy', members: 'p+*0 p+ p- p-', minHealthy: 0.5, serving: 'healthy', served: [1] },
    { name: 'fail open serves weight-0 members too', members: 'p-*0 p-', serving: 'allDown:serveAll', served: [0, 1] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(decideServing(members(c.members), { allDown: c.allDown ?? 'serveAll', minHealthy: c.minHealthy })).toEqual({ serving: c.serving, members: c.served });
    });
  }
});

describe('healthAwareTtl', () => {
  const policy = { defaultTtl: 300, minTtl: 5, maxTtl: 86400 };
  const m = (ms: number, override: PolicyMember['override'] = null): PolicyMember => ({ role: 'primary', health: 'up', override, msToPossibleChange: ms, weight: 1 });
  const cases: { name: string; members: PolicyMember[]; ttl: number; want: number }[] = [
    { name: 'capped by the soonest possible change', members: [m(30_000), m(12_500)], ttl: 300, want: 12 },
    { name: 'the record TTL when shorter', members: [m(600_000)], ttl: 60, want: 60 },
    { name: 'overridden members do not count', members: [m(1_000, 'force-up'), m(40_000)], ttl: 300, want: 40 },
    { name: 'all overridden: the record TTL', members: [m(1_000, 'drain')], ttl: 120, want: 120 },
    { name: 'clamped up to minTtl', members: [m(0)], ttl: 300, want: 5 },
  ];
  for (const c of cases) it(c.name, () => expect(healthAwareTtl(c.members, c.ttl, policy)).toBe(c.want));
});

describe('decidePool: members, weights and TTL together', () => {
  const policy = { defaultTtl: 300, minTtl: 5, maxTtl: 86400 };
  const cases: { name: string; members: string; allDown?: 'serveAll' | 'backup'; minHealthy?: number; served: number[]; weights: number[] | undefined }[] = [
    { name: 'equal weights: plain rotation', members: 'p+*2 p+*2 p+*2', served: [0, 1, 2], weights: undefined },
    { name: 'unequal weights of the served members', members: 'p+*3 p+ p+*2', served: [0, 1, 2], weights: [3, 1, 2] },
    { name: 'a down member takes its weight with it', members: 'p+*3 p-*5 p+', served: [0, 2], weights: [3, 1] },
    { name: 'weight-0 reserve alone serves evenly', members: 'p+*0 p+*0 p-*4', served: [0, 1], weights: undefined },
    { name: 'standby weights count under backup', members: 'p- s+*1 s+*4', allDown: 'backup', served: [1, 2], weights: [1, 4] },
    { name: 'below minHealthy every primary serves evenly (sparing the survivors)', members: 'p+*4 p- p-', minHealthy: 0.5, served: [0, 1, 2], weights: undefined },
    { name: 'fail open serves evenly', members: 'p-*4 p-', served: [0, 1], weights: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = decidePool(members(c.members), { allDown: c.allDown ?? 'serveAll', minHealthy: c.minHealthy }, 60, policy);
      expect({ served: d.members, weights: d.weights }).toEqual({ served: c.served, weights: c.weights });
      expect(d.ttl).toBe(60);
    });
  }
});

describe('how heavy resolvers are steered (balance.resolvers.steer): weights by headroom', () => {
  it.each([
    { name: 'the least loaded gets the most: weight × (mean / load)²', weights: [1, 1, 1], loads: [0.8, 0.4, 0.6], want: [0.5625, 2.25, 1] },
    { name: 'capacity counts too: mean weighted by weight', weights: [2, 1], loads: [0.5, 1], want: [2 * (2 / 3 / 0.5) ** 2, (2 / 3) ** 2] },
    { name: 'equal loads: no steering (the rotation already follows the weights)', weights: [1, 3, 1], loads: [0.5, 0.5, 0.5], want: undefined },
    { name: 'a load missing: no steering', weights: [2, 1], loads: [0.9, undefined], want: undefined },
    { name: 'no loads: no steering', weights: [1, 4], loads: [undefined, undefined], want: undefined },
    { name: 'all idle: no steering', weights: [1, 1], loads: [0, 0], want: undefined },
    { name: 'a single member: no steering', weights: [1], loads: [0.2], want: undefined },
  ])('$name', ({ weights, loads, want }) => {
    const got = steeringWeights(weights, loads);
    if (want === undefined) expect(got).toBeUndefined();
    else want.forEach((w, i) => expect(got![i]).toBeCloseTo(w, 9));
  });

  it('decidePool steers among the served members only, and only when the pool steers', () => {
    const policy = { defaultTtl: 300, minTtl: 5, maxTtl: 86400 };
    const m = members('p+ p- p+ p+');
    m[0]!.load = 0.9;
    m[1]!.load = 0.1; // down: not served, not steered to
    m[2]!.load = 0.3;
    m[3]!.load = 0.6;
    const steer = { allDown: 'serveAll' as const, minHealthy: undefined, balance: { resolvers: { heavyShare: 0.02, ttl: 5, steer: true } } };
    const d = decidePool(m, steer, 60, policy);
    expect(d.members).toEqual([0, 2, 3]);
    expect(d.steer).toHaveLength(3);
    expect(d.steer![1]).toBeGreaterThan(d.steer![2]!);
    expect(d.steer![2]).toBeGreaterThan(d.steer![0]!);
    expect(decidePool(m, { ...steer, balance: {} }, 60, policy).steer).toBeUndefined();
  });
});

describe('failoverEstimates (rrdns check): worst case with and without fastInterval', () => {
  const zoneWith = (check: string, ttl = 30) => {
    const text = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    ttl: ${ttl}
    A: [127.0.0.1, 127.0.0.2]
    pool: { check: ${check} }
`;
    const { input, issues } = parseNativeText(text, 'example.test');
    expect(issues).toEqual([]);
    return buildZone(input!).zone!;
  };
  const cases: { name: string; check: string; detectionMs: number; ttl: number; fast: boolean }[] = [
    { name: 'interval 2 s, fall 2, timeout 1 s: interval x fall + timeout', check: '{ interval: 2s, timeout: 1s, fall: 2 }', detectionMs: 5000, ttl: 4, fast: false },
    { name: 'the same with fastInterval 500 ms: interval + (fall - 1) x fastInterval + timeout', check: '{ interval: 2s, fastInterval: 500ms, timeout: 1s, fall: 2 }', detectionMs: 3500, ttl: 2, fast: true },
    { name: 'fall 3, fastInterval 1 s', check: '{ interval: 5s, fastInterval: 1s, timeout: 2s, fall: 3 }', detectionMs: 9000, ttl: 7, fast: true },
  ];
  for (const c of cases)
    it(c.name, () => {
      const [f] = failoverEstimates(zoneWith(c.check));
      expect(f).toMatchObject({ detectionMs: c.detectionMs, ttl: c.ttl, worstCaseMs: c.detectionMs + c.ttl * 1000, fast: c.fast });
    });
  it('the check line names the fast interval', () => {
    expect(failoverEstimates(zoneWith('{ interval: 2s, fastInterval: 500ms, timeout: 1s, fall: 2 }'))[0]!.check).toBe('http GET / port 80, every 2s (0.5s while settling), timeout 1s, fall 2, rise 2');
  });
});
