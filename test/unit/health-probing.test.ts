/**
 * The HealthMonitor's probing switch (setProbing / setTargets' `probe` option)
 * under a manual clock: targets watched without being probed, switched on and
 * off, and how that meets the first round, the schedule and checks in flight.
 */
import { describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import type { CheckOutcome, Checker } from '../../src/health/checkers.ts';
import { flushPromises, ManualScheduler } from '../../src/health/manual-scheduler.ts';
import { HealthMonitor, type MemberHealth, type TargetState } from '../../src/health/monitor.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';

const OK: Omit<CheckOutcome, 'latencyMs'> = { ok: true, detail: 'HTTP 200', status: 200 };
const FAIL: Omit<CheckOutcome, 'latencyMs'> = { ok: false, detail: 'HTTP 500', status: 500 };

// Documentation addresses: no probe leaves the process (the checkers are scripted).
function tgt(i: number, input: CheckConfigInput = {}): CheckTarget {
  return makeTarget(`192.0.2.${i}`, 'www.example.test', CheckSchema.parse({ interval: '1s', timeout: '500ms', fall: 2, rise: 2, ...input }));
}

/** Instant answers from `decide(key, n)`; records each check's start. */
function scripted(sched: ManualScheduler, decide: (key: string, n: number) => boolean) {
  const calls: { key: string; at: number }[] = [];
  const counts = new Map<string, number>();
  const check: Checker = async (t) => {
    const n = counts.get(t.key) ?? 0;
    counts.set(t.key, n + 1);
    calls.push({ key: t.key, at: sched.now() });
    return { ...(decide(t.key, n) ? OK : FAIL), latencyMs: 0 };
  };
  return { check, startsOf: (key: string) => calls.filter((c) => c.key === key).map((c) => c.at) };
}

/** Checks that stay in flight until settled (or aborted). */
function held(sched: ManualScheduler) {
  const open = new Map<number, { key: string; aborted: () => boolean; settle: (ok: boolean) => void }>();
  let id = 0;
  let maxPerKey = 0;
  const perKey = new Map<string, number>();
  const starts: { key: string; at: number }[] = [];
  const check: Checker = (t, signal) =>
    new Promise<CheckOutcome>((resolve) => {
      const me = id++;
      starts.push({ key: t.key, at: sched.now() });
      perKey.set(t.key, (perKey.get(t.key) ?? 0) + 1);
      maxPerKey = Math.max(maxPerKey, perKey.get(t.key)!);
      const settle = (ok: boolean) => {
        if (!open.delete(me)) return;
        perKey.set(t.key, perKey.get(t.key)! - 1);
        resolve({ ...(ok ? OK : FAIL), latencyMs: 0 });
      };
      open.set(me, { key: t.key, aborted: () => signal.aborted, settle });
      signal.addEventListener('abort', () => settle(false), { once: true });
    });
  return {
    check,
    open,
    starts,
    get maxPerKey() {
      return maxPerKey;
    },
    settle(key: string, ok: boolean) {
      for (const o of [...open.values()]) if (o.key === key) o.settle(ok);
    },
  };
}

function changes() {
  const seen: { key: string; health: MemberHealth }[] = [];
  return { seen, onChange: (s: TargetState) => seen.push({ key: s.key, health: s.health }) };
}

describe('targets added without probing', () => {
  it('are watched (state, probing false) but never checked; firstRound does not wait for them', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    const probed = tgt(1);
    const cold = tgt(2);
    m.setTargets([probed, cold], { probe: (t) => t.key !== cold.key });
    expect(m.probing(probed.key)).toBe(true);
    expect(m.probing(cold.key)).toBe(false);
    expect(h.open.size).toBe(1);
    let ready = false;
    const first = m.firstRound().then(() => (ready = true));
    h.settle(probed.key, true);
    await first;
    expect(ready).toBe(true);
    await sched.advance(5000);
    h.settle(probed.key, true);
    expect(h.starts.filter((s) => s.key === cold.key)).toEqual([]);
    expect(m.state(cold.key)).toMatchObject({ health: 'up', checks: 0, consecutiveOk: 0, consecutiveFail: 0 });
    // Nothing changes an unprobed target on its own: it never shortens a health-aware TTL.
    expect(m.timeToPossibleChange(cold.key)).toBe(Infinity);
    await m.close();
  });

  it('a firstRound with only unprobed new targets resolves at once', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    m.setTargets([tgt(1), tgt(2)], { probe: () => false });
    await m.firstRound();
    expect(h.open.size).toBe(0);
    expect(sched.pending()).toBe(0);
    await m.close();
  });

  it('the option only applies to targets the call adds: survivors keep their probing state', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, () => true);
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const a = tgt(1);
    const b = tgt(2);
    m.setTargets([a], { probe: () => false });
    m.setTargets([a, b], { probe: () => true });
    expect(m.probing(a.key)).toBe(false);
    expect(m.probing(b.key)).toBe(true);
    m.setTargets([a, b], { probe: () => false });
    expect(m.probing(b.key)).toBe(true);
    await m.close();
  });
});

describe('setProbing(key, true)', () => {
  it('checks at once, then on the planned phase, at least half an interval later; firstRound waits for it', async () => {
    const sched = new ManualScheduler();
    const t0 = sched.now();
    const s = scripted(sched, () => true);
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const targets = [tgt(1), tgt(2), tgt(3), tgt(4)]; // phases 0, 250, 500, 750 ms
    const cold = targets[3]!;
    m.setTargets(targets, { probe: (t) => t.key !== cold.key });
    await m.firstRound();
    await sched.advance(2100);
    expect(s.startsOf(cold.key)).toEqual([]);

    // t0 + 2100: the next slot of its phase (750) is t0 + 2750, more than half an interval away.
    expect(m.setProbing(cold.key, true)).toBe(true);
    expect(m.probing(cold.key)).toBe(true);
    await m.firstRound();
    expect(m.state(cold.key)).toMatchObject({ health: 'up', checks: 1 });
    await sched.advance(2000);
    expect(s.startsOf(cold.key)).toEqual([t0 + 2100, t0 + 2750, t0 + 3750]);
    await m.close();
  });

  it('a slot closer than half an interval is skipped', async () => {
    const sched = new ManualScheduler();
    const t0 = sched.now();
    const s = scripted(sched, () => true);
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const cold = tgt(1); // alone: phase 0, slots t0 + n·1000
    m.setTargets([cold], { probe: () => false });
    await sched.advance(1800);
    m.setProbing(cold.key, true);
    await sched.advance(1500);
    expect(s.startsOf(cold.key)).toEqual([t0 + 1800, t0 + 3000]);
    await m.close();
  });

  it('the first result decides health directly, as for a new target', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, () => false);
    const rec = changes();
    const m = new HealthMonitor({ check: s.check, scheduler: sched, onChange: rec.onChange });
    const cold = tgt(1);
    m.setTargets([cold], { probe: () => false });
    m.setProbing(cold.key, true);
    await m.firstRound();
    expect(m.state(cold.key)).toMatchObject({ health: 'down', checks: 1, consecutiveFail: 1 });
    expect(rec.seen).toEqual([{ key: cold.key, health: 'down' }]);
    await m.close();
  });

  it('is bounded by maxConcurrentFirstChecks like the first checks of added targets', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched, maxConcurrentFirstChecks: 2 });
    const targets = [tgt(1), tgt(2), tgt(3)];
    m.setTargets(targets, { probe: () => false });
    for (const t of targets) m.setProbing(t.key, true);
    expect(h.open.size).toBe(2);
    h.settle(targets[0]!.key, true);
    await flushPromises();
    expect(h.open.size).toBe(2);
    expect(h.starts.map((x) => x.key)).toEqual(targets.map((t) => t.key));
    await m.close();
  });

  it('is idempotent, and false for an unknown key', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, () => true);
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const a = tgt(1);
    m.setTargets([a]);
    await m.firstRound();
    expect(m.setProbing(a.key, true)).toBe(true);
    await sched.advance(3000);
    expect(s.startsOf(a.key)).toHaveLength(4); // no extra check from the repeated call
    expect(m.setProbing('no-such-key', true)).toBe(false);
    expect(m.probing('no-such-key')).toBe(false);
    await m.close();
  });
});

describe('setProbing(key, false)', () => {
  it('cancels the schedule and resets the state to no result, without an onChange', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, () => false);
    const rec = changes();
    const m = new HealthMonitor({ check: s.check, scheduler: sched, onChange: rec.onChange });
    const a = tgt(1);
    m.setTargets([a]);
    await m.firstRound();
    await sched.advance(2500);
    expect(m.state(a.key)).toMatchObject({ health: 'down', checks: 3, consecutiveFail: 3 });
    const before = s.startsOf(a.key).length;
    m.setProbing(a.key, false);
    const st = m.state(a.key)!;
    expect(st).toMatchObject({ health: 'up', checks: 0, consecutiveOk: 0, consecutiveFail: 0, since: sched.now() });
    expect(st.lastOutcome).toBeUndefined();
    expect(st.lastCheckAt).toBeUndefined();
    expect(sched.pending()).toBe(0);
    await sched.advance(5000);
    expect(s.startsOf(a.key)).toHaveLength(before);
    expect(rec.seen).toEqual([{ key: a.key, health: 'down' }]); // the first check's, not the reset
    await m.close();
  });

  it('aborts a check in flight and ignores its result; firstRound stops waiting for it', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    const a = tgt(1);
    const b = tgt(2);
    m.setTargets([a, b]);
    h.settle(b.key, true);
    let ready = false;
    const first = m.firstRound().then(() => (ready = true));
    await flushPromises();
    expect(ready).toBe(false); // a still in flight
    const [inFlight] = [...h.open.values()];
    m.setProbing(a.key, false);
    expect(inFlight!.aborted()).toBe(true);
    await first;
    expect(ready).toBe(true);
    expect(m.state(a.key)).toMatchObject({ health: 'up', checks: 0 }); // the aborted failure was not applied
    await m.close();
  });

  it('a result that arrives after the switch (checker ignoring its abort) is ignored too', async () => {
    const sched = new ManualScheduler();
    let resolveLate!: (o: CheckOutcome) => void;
    const m = new HealthMonitor({ check: () => new Promise<CheckOutcome>((r) => (resolveLate = r)), scheduler: sched });
    const a = tgt(1);
    m.setTargets([a]);
    m.setProbing(a.key, false);
    resolveLate({ ...FAIL, latencyMs: 0 });
    await flushPromises();
    expect(m.state(a.key)).toMatchObject({ health: 'up', checks: 0 });
    await sched.advance(5000);
    expect(m.state(a.key)!.checks).toBe(0);
    await m.close();
  });

  it('off and on again before the queued first check ran: one check, never two in flight', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched, maxConcurrentFirstChecks: 1 });
    const a = tgt(1);
    const b = tgt(2);
    m.setTargets([a, b]); // b waits in the queue behind a
    m.setProbing(b.key, false);
    m.setProbing(b.key, true);
    m.setProbing(b.key, false);
    m.setProbing(b.key, true);
    h.settle(a.key, true);
    await flushPromises();
    expect(h.starts.filter((x) => x.key === b.key)).toHaveLength(1);
    h.settle(b.key, true);
    await m.firstRound();
    await sched.advance(3000);
    for (const t of [a, b]) h.settle(t.key, true);
    expect(h.maxPerKey).toBe(1);
    expect(m.state(b.key)!.checks).toBeGreaterThanOrEqual(2);
    await m.close();
  });

  it('on after off: a fresh start, the old streak is gone', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, (_k, n) => n !== 1); // the second check fails
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const a = tgt(1);
    m.setTargets([a]);
    await m.firstRound();
    await sched.advance(1000);
    expect(m.state(a.key)).toMatchObject({ health: 'up', consecutiveFail: 1, checks: 2 });
    m.setProbing(a.key, false);
    m.setProbing(a.key, true);
    await m.firstRound();
    expect(m.state(a.key)).toMatchObject({ health: 'up', consecutiveFail: 0, consecutiveOk: 1, checks: 1 });
    await m.close();
  });
});
