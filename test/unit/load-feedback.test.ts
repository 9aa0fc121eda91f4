/**
 * Load feedback: the control law (stepWeights) as tables and against a
 * simple plant, and LoadFeedback's bookkeeping (when a pool steps, which
 * readings count, what it publishes) with hand-made check states.
 */
import { describe, expect, it } from 'vitest';
import { feedbackStep, PROPORTIONAL_RANGE, stepWeights, type FeedbackMember, type FeedbackParams } from '../../src/balancing/feedback.ts';
import { LoadFeedback, type BalancedPool, type SignalState } from '../../src/balancing/load-feedback.ts';
import type { FeedbackSpec, PoolSpec } from '../../src/zone/zone.ts';

const SPEC: FeedbackParams = { gain: 0.5, maxStep: 0.25, floor: 0.1 };

/** `c/e@s` configured c, effective e (default c), signal s (absent: none); `!` not usable. */
function members(spec: string): FeedbackMember[] {
  return spec.split(' ').filter(Boolean).map((m) => {
    const usable = !m.startsWith('!');
    const [weights, signal] = m.replace(/^!/, '').split('@');
    const [c, e] = weights!.split('/');
    return { configured: Number(c), effective: Number(e ?? c), signal: signal === undefined ? undefined : Number(signal), usable };
  });
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('stepWeights', () => {
  const cases: {
    name: string;
    members: string;
    spec?: Partial<FeedbackParams>;
    /** Exact result. */
    want?: number[];
    /** Or a property of the result. */
    check?: (next: number[], before: FeedbackMember[]) => void;
  }[] = [
    { name: 'equal loads: no change', members: '1@0.5 1@0.5 1@0.5', want: [1, 1, 1] },
    { name: 'equal loads with unequal weights: no change', members: '1@0.4 3@0.4 6@0.4', want: [1, 3, 6] },
    { name: 'all idle (every load 0): no change', members: '1@0 2@0', want: [1, 2] },
    {
      name: 'overloaded member loses weight, the others gain, bounded by maxStep',
      members: '1@0.9 1@0.3 1@0.3',
      check: (next) => {
        expect(next[0]).toBeLessThan(1);
        expect(next[1]).toBeGreaterThan(1);
        expect(next[1]).toBeCloseTo(next[2]!, 12);
        for (const w of next) {
          expect(w).toBeGreaterThanOrEqual(1 / 1.25 - 1e-12);
          expect(w).toBeLessThanOrEqual(1.25 + 1e-12);
        }
        expect(sum(next)).toBeCloseTo(3, 9);
      },
    },
    {
      name: 'a huge load moves its weight by at most maxStep per step',
      members: '2@1000 2@1 2@1',
      spec: { maxStep: 0.1 },
      check: (next) => {
        expect(next[0]).toBeCloseTo(2 / 1.1, 9);
        expect(sum(next)).toBeCloseTo(6, 9);
      },
    },
    {
      name: 'an idle member (load 0) gains at most maxStep',
      members: '1@0 1@1 1@1',
      check: (next) => {
        expect(next[0]).toBeLessThanOrEqual(1.25 + 1e-12);
        expect(next[0]).toBeGreaterThan(1);
      },
    },
    {
      name: 'floor holds: an overloaded member stays at floor × configured',
      members: '4/0.45@50 4/5.5@1 4/6.05@1',
      spec: { floor: 0.1 },
      check: (next) => {
        expect(next[0]).toBeCloseTo(0.4, 12);
        expect(sum(next)).toBeCloseTo(12, 9);
      },
    },
    {
      name: 'a member below its floor (the floor was raised) comes up to it',
      members: '1/0.05@9 1@1',
      spec: { floor: 0.5 },
      check: (next) => expect(next[0]).toBeGreaterThanOrEqual(0.5),
    },
    { name: 'no signal: decays towards configured by gain', members: '2/1 2/3', want: [1.5, 2.5] },
    { name: 'no signal, within SNAP of configured: exactly configured', members: '2/1.995 1/1.004', want: [2, 1] },
    { name: 'unusable members keep their weight', members: '!1/0.3@9 !2/2.7 1@0.5', want: [0.3, 2.7, 1] },
    {
      name: 'an unusable member keeps its weight while the others balance',
      members: '!1/0.3@0.1 1@0.9 1@0.3',
      check: (next) => {
        expect(next[0]).toBe(0.3);
        expect(next[1]).toBeLessThan(1);
        expect(next[2]).toBeGreaterThan(1);
        expect(next[1]! + next[2]!).toBeCloseTo(2, 9);
      },
    },
    { name: 'configured 0 stays 0 (a reserve), with or without a signal', members: '0/0.5@0.1 0 1@0.5 1@0.5', want: [0, 0, 1, 1] },
    {
      name: 'only members with fresh signals are balanced; the others decay',
      members: '1@0.9 1@0.3 1/2',
      check: (next) => {
        expect(next[2]).toBe(1.5);
        expect(next[0]).toBeLessThan(1);
        expect(next[0]! + next[1]!).toBeCloseTo(2, 9);
      },
    },
    { name: 'a single balanced member has nothing to balance against', members: '3@0.9', want: [3] },
    { name: 'a non-finite or negative signal counts as none', members: '2/1@-1 2/3@NaN', want: [1.5, 2.5] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const before = members(c.members);
      const next = stepWeights(before, { ...SPEC, ...c.spec });
      if (c.want) expect(next).toEqual(c.want);
      if (c.check) c.check(next, before);
      expect(c.want ?? c.check).toBeDefined();
    });
  }

  it('is deterministic: the same inputs give the same weights', () => {
    const m = members('1@0.9 2@0.3 3@0.7 1/0.4@0.2');
    expect(stepWeights(m, SPEC)).toEqual(stepWeights(m, SPEC));
  });
});

/**
 * A plant: demand spread by weight share, each member's load its share over
 * its capacity (utilisation). Runs `steps` control steps; returns the weights
 * and the first step from which every utilisation stayed within 2% of the mean.
 */
function simulate(configured: number[], capacity: number[], steps: number, spec: FeedbackParams = SPEC, lag = 0) {
  let w = [...configured];
  const history: number[][] = [];
  let settledAt = -1;
  let utilisation: number[] = [];
  const utilisationOf = (weights: number[]) => {
    const total = sum(weights);
    return weights.map((x, i) => (0.6 * (x / total) * capacity.length) / capacity[i]!);
  };
  for (let k = 0; k <= steps; k++) {
    history.push(w);
    utilisation = utilisationOf(w);
    const mean = sum(utilisation) / utilisation.length;
    const within = utilisation.every((u) => Math.abs(u / mean - 1) <= 0.02);
    if (!within) settledAt = -1;
    else if (settledAt < 0) settledAt = k;
    // With a lag, the backends report the load of the weights of `lag` steps ago.
    const measured = utilisationOf(history[Math.max(0, history.length - 1 - lag)]!);
    w = stepWeights(w.map((e, i) => ({ configured: configured[i]!, effective: e, signal: measured[i], usable: true })), spec);
  }
  return { weights: w, utilisation, settledAt };
}

describe('stepWeights converges on a plant (load = demand × share / capacity)', () => {
  const cases: { name: string; configured: number[]; capacity: number[]; spec?: Partial<FeedbackParams>; lag?: number; within: number }[] = [
    { name: 'equal weights, capacities 1:2:3', configured: [1, 1, 1], capacity: [1, 2, 3], within: 8 },
    { name: 'weights 3:2:1 against capacities 1:2:3 (configured backwards)', configured: [3, 2, 1], capacity: [1, 2, 3], within: 12 },
    { name: 'one big backend among four (1:1:1:10)', configured: [1, 1, 1, 1], capacity: [1, 1, 1, 10], within: 14 },
    { name: 'gain 1, large maxStep: one step', configured: [1, 1, 1], capacity: [1, 2, 3], spec: { gain: 1, maxStep: 4 }, within: 1 },
    { name: 'a one-step measurement lag still settles', configured: [1, 1, 1], capacity: [1, 2, 3], lag: 1, within: 14 },
    { name: 'a two-step lag settles at gain 0.25', configured: [1, 1, 1], capacity: [1, 2, 3], lag: 2, spec: { gain: 0.25 }, within: 16 },
  ];
  for (const c of cases) {
    it(`${c.name}: utilisations within 2% after at most ${c.within} steps, and stay there`, () => {
      const { utilisation, settledAt, weights } = simulate(c.configured, c.capacity, 60, { ...SPEC, ...c.spec }, c.lag);
      expect(settledAt).toBeGreaterThanOrEqual(0);
      expect(settledAt).toBeLessThanOrEqual(c.within);
      const mean = sum(utilisation) / utilisation.length;
      for (const u of utilisation) expect(Math.abs(u / mean - 1)).toBeLessThanOrEqual(0.02);
      // The pool's total weight stays the configured total; only the split moved.
      expect(sum(weights)).toBeCloseTo(sum(c.configured), 6);
    });
  }

  it('decays back to the configured weights once signals stop', () => {
    const configured = [1, 1, 1];
    let w = simulate(configured, [1, 2, 3], 20).weights;
    expect(w).not.toEqual(configured);
    for (let k = 0; k < 20 && w.some((x, i) => x !== configured[i]); k++) {
      w = stepWeights(w.map((e, i) => ({ configured: configured[i]!, effective: e, signal: undefined, usable: true })), SPEC);
    }
    expect(w).toEqual(configured);
  });
});

describe('feedbackStep: the proportional part for loads that follow slowly', () => {
  const cases: { name: string; members: string; responseSteps: number; check: (r: { integral: number[]; effective: number[] }, integralOnly: number[]) => void }[] = [
    {
      name: 'a load that follows at once (responseSteps 1) is the integral law alone',
      members: '1@0.9 1@0.3 1@0.3',
      responseSteps: 1,
      check: (r, integralOnly) => {
        expect(r.effective).toEqual(integralOnly);
        expect(r.integral).toEqual(integralOnly);
      },
    },
    {
      name: 'a slow load corrects at once beyond the integral step, without remembering it',
      members: '1@0.9 1@0.3 1@0.3',
      responseSteps: 5,
      check: (r) => {
        // The integral moves by gain/5 only; the effective weight of the hot member is far lower.
        expect(r.integral[0]).toBeLessThan(1);
        expect(r.effective[0]).toBeLessThan(r.integral[0]!);
        expect(r.effective[1]).toBeGreaterThan(r.integral[1]!);
      },
    },
    {
      name: 'equal loads: no correction',
      members: '2@0.5 1@0.5',
      responseSteps: 5,
      check: (r) => expect(r.effective).toEqual([2, 1]),
    },
    {
      name: 'the floor holds and the total stays the integral total',
      members: '1@5 1@0.1 1@0.1',
      responseSteps: 10,
      check: (r) => {
        expect(r.effective[0]).toBeGreaterThanOrEqual(0.1);
        expect(sum(r.effective)).toBeCloseTo(sum(r.integral), 6);
      },
    },
    {
      name: 'the correction is bounded either way',
      members: '1@0.001 1@1',
      responseSteps: 20,
      check: (r) => {
        expect(r.effective[0]! / r.integral[0]!).toBeLessThanOrEqual(PROPORTIONAL_RANGE);
        expect(r.effective[1]! / r.integral[1]!).toBeGreaterThanOrEqual(1 / PROPORTIONAL_RANGE);
      },
    },
    {
      name: 'members without a signal or not usable are left to the integral law',
      members: '1@0.9 1 !1@0.1 1@0.3',
      responseSteps: 5,
      check: (r) => {
        expect(r.effective[1]).toBe(r.integral[1]);
        expect(r.effective[2]).toBe(r.integral[2]);
        expect(r.effective[0]).toBeLessThan(r.effective[3]!);
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const m = members(c.members);
      c.check(feedbackStep(m, SPEC, c.responseSteps), stepWeights(m, SPEC));
    });
  }

  it('on a plant that follows over 5 steps (caches re-pin a fifth of the load per step) it settles within 2%', () => {
    const capacity = [1, 2, 3];
    const configured = [1, 1, 1];
    // Load share moves a fifth of the way to the weight share each step, as caches with a TTL of 5 steps re-ask.
    let share = [1 / 3, 1 / 3, 1 / 3];
    let integral = [...configured];
    let utilisation: number[] = [];
    for (let step = 0; step < 80; step++) {
      utilisation = share.map((s, i) => s / capacity[i]!);
      const r = feedbackStep(configured.map((c, i) => ({ configured: c, effective: integral[i]!, signal: utilisation[i], usable: true })), SPEC, 5);
      integral = r.integral;
      const total = sum(r.effective);
      share = share.map((s, i) => s + (r.effective[i]! / total - s) / 5);
    }
    const mean = sum(utilisation) / 3;
    for (const u of utilisation) expect(Math.abs(u / mean - 1)).toBeLessThanOrEqual(0.02);
  });
});

// ---------------------------------------------------------------------------------------------
// LoadFeedback: bookkeeping around the law

const FEEDBACK: FeedbackSpec = { signal: 'load', gain: 0.5, maxStep: 0.25, floor: 0.1, intervalMs: 1000, staleMs: 3000 };

/** A pool of `addresses`; feedback null: not balanced. */
function pool(key: string, addresses: string[], feedback: FeedbackSpec | null = FEEDBACK, weights: Record<string, number> = {}): BalancedPool {
  return {
    key,
    spec: { weights: new Map(Object.entries(weights)), balance: { feedback: feedback ?? undefined } } as unknown as PoolSpec,
    members: addresses.map((address) => ({ address, target: { key: `${key}/${address}` } })),
  };
}

/** Check states by target key; `report` sets a passing check's load at `at`. */
function checks() {
  const states = new Map<string, SignalState>();
  return {
    state: (key: string) => states.get(key),
    report(p: BalancedPool, loads: (number | undefined)[], at: number, ok = true) {
      p.members.forEach((m, i) => states.set(m.target.key, { lastCheckAt: at, lastOutcome: { ok, latencyMs: 5 + i, load: loads[i] } }));
    },
  };
}

const all = (p: BalancedPool) => p.members.map(() => true);
const weightsOf = (fb: LoadFeedback, p: BalancedPool) => p.members.map((m) => fb.weight(p.key, m.address, p.spec.weights.get(m.address) ?? 1));

describe('LoadFeedback', () => {
  it('steps a pool from the loads its checks report and says when the weights changed', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('www.|A', ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    c.report(p, [0.9, 0.3, 0.3], 0);
    expect(fb.step([p], 0, all)).toBe(true);
    const w = weightsOf(fb, p);
    expect(w[0]).toBeLessThan(1);
    expect(w[1]).toBeGreaterThan(1);
    expect(fb.load(p.key, '10.0.0.1')).toBe(0.9);
  });

  it('a pool without balance.feedback keeps its configured weights and is not tracked', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('plain.|A', ['10.0.0.1', '10.0.0.2'], null, { '10.0.0.1': 3 });
    c.report(p, [0.9, 0.1], 0);
    expect(fb.step([p], 0, all)).toBe(false);
    expect(weightsOf(fb, p)).toEqual([3, 1]);
    expect(fb.load(p.key, '10.0.0.1')).toBeUndefined();
  });

  it('uses each reading once: no second step until every member reported again, nor before the interval', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('www.|A', ['10.0.0.1', '10.0.0.2']);
    c.report(p, [0.9, 0.3], 0);
    fb.step([p], 0, all);
    const after1 = weightsOf(fb, p);
    // Interval passed, same readings: no step.
    expect(fb.step([p], 1000, all)).toBe(false);
    expect(weightsOf(fb, p)).toEqual(after1);
    // Only one member reported again: still no step.
    c.report(p, [0.9, 0.3], 1100);
    c.report({ ...p, members: p.members.slice(1) }, [0.3], 0);
    expect(fb.step([p], 1200, all)).toBe(false);
    expect(weightsOf(fb, p)).toEqual(after1);
    // Both new now.
    c.report(p, [0.9, 0.3], 1300);
    // Due and new: steps further.
    expect(fb.step([p], 1400, all)).toBe(true);
    const after2 = weightsOf(fb, p);
    expect(after2[0]).toBeLessThan(after1[0]!);
    // New readings, but before the interval since that step: no step.
    c.report(p, [0.9, 0.3], 1500);
    expect(fb.step([p], 1800, all)).toBe(false);
    expect(weightsOf(fb, p)).toEqual(after2);
    expect(fb.step([p], 2400, all)).toBe(true);
  });

  it('stale or failed readings count as none: weights decay back to exactly the configured ones', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('www.|A', ['10.0.0.1', '10.0.0.2'], FEEDBACK, { '10.0.0.2': 2 });
    let t = 0;
    for (let k = 0; k < 5; k++, t += 1000) {
      c.report(p, [0.9, 0.1], t);
      fb.step([p], t, all);
    }
    expect(weightsOf(fb, p)).not.toEqual([1, 2]);
    // The checks fail from now on (their readings stop counting at once), then go stale.
    c.report(p, [0.9, 0.1], t, false);
    for (let k = 0; k < 30 && weightsOf(fb, p).join() !== '1,2'; k++, t += 1000) fb.step([p], t, all);
    expect(weightsOf(fb, p)).toEqual([1, 2]);
  });

  it('signal: latency balances on the check latency', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('www.|A', ['10.0.0.1', '10.0.0.2'], { ...FEEDBACK, signal: 'latency' });
    // latencyMs is 5 for the first member, 6 for the second; no load reported.
    c.report(p, [undefined, undefined], 0);
    expect(fb.step([p], 0, all)).toBe(true);
    const [a, b] = weightsOf(fb, p);
    expect(a).toBeGreaterThan(b!);
  });

  it('members that are not usable keep their weight and do not hold the others back', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('www.|A', ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    c.report(p, [0.9, 0.3, 0.1], 0);
    const usable = (p: BalancedPool) => p.members.map((_, i) => i !== 2);
    expect(fb.step([p], 0, usable)).toBe(true);
    const w = weightsOf(fb, p);
    expect(w[2]).toBe(1);
    expect(w[0]! + w[1]!).toBeCloseTo(2, 9);
  });

  it('forgets pools and members that are no longer served, and restarts a member whose configured weight changed', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('www.|A', ['10.0.0.1', '10.0.0.2']);
    c.report(p, [0.9, 0.3], 0);
    fb.step([p], 0, all);
    expect(weightsOf(fb, p)).not.toEqual([1, 1]);
    // A reload changes the first member's weight: it starts from the new configured weight.
    const reweighted = pool('www.|A', ['10.0.0.1', '10.0.0.2'], FEEDBACK, { '10.0.0.1': 4 });
    expect(fb.weight(reweighted.key, '10.0.0.1', 4)).toBe(4);
    // The pool goes away: its state does too.
    fb.step([], 5000, all);
    expect(weightsOf(fb, p)).toEqual([1, 1]);
    expect(fb.load(p.key, '10.0.0.1')).toBeUndefined();
  });

  it('changes below the publishing epsilon do not recompile answers', () => {
    const c = checks();
    const fb = new LoadFeedback({ state: c.state });
    const p = pool('www.|A', ['10.0.0.1', '10.0.0.2']);
    c.report(p, [0.5001, 0.5], 0);
    expect(fb.step([p], 0, all)).toBe(false);
    expect(weightsOf(fb, p)).toEqual([1, 1]);
  });
});
