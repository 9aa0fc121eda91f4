/**
 * HealthMonitor logic under a manual clock: scripted checkers decide every
 * outcome, and time only moves when the test advances it.
 */
import { describe, expect, it, vi } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import type { CheckOutcome, Checker } from '../../src/health/checkers.ts';
import { flushPromises, ManualScheduler } from '../../src/health/manual-scheduler.ts';
import { HealthMonitor, type MemberHealth, type TargetState } from '../../src/health/monitor.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';

const OK: Omit<CheckOutcome, 'latencyMs'> = { ok: true, detail: 'HTTP 200', status: 200 };
const FAIL: Omit<CheckOutcome, 'latencyMs'> = { ok: false, detail: 'HTTP 500 not in 200-399', status: 500 };

function tgt(i: number, input: CheckConfigInput = {}, name = 'www.example.test'): CheckTarget {
  return makeTarget(`192.0.2.${i}`, name, CheckSchema.parse({ interval: '1s', timeout: '500ms', fall: 3, rise: 2, ...input }));
}

interface Call {
  key: string;
  at: number;
  n: number;
}

/** A checker answering instantly from `decide(key, n)` (n = 0-based check number of that key). */
function scripted(sched: ManualScheduler, decide: (key: string, n: number) => boolean) {
  const calls: Call[] = [];
  const counts = new Map<string, number>();
  const check: Checker = async (t) => {
    const n = counts.get(t.key) ?? 0;
    counts.set(t.key, n + 1);
    calls.push({ key: t.key, at: sched.now(), n });
    return { ...(decide(t.key, n) ? OK : FAIL), latencyMs: 0 };
  };
  return { check, calls, startsOf: (key: string) => calls.filter((c) => c.key === key).map((c) => c.at) };
}

/** A checker whose checks stay in flight until the test settles them (or their signal aborts). */
function held(sched: ManualScheduler) {
  const open = new Map<number, { key: string; settle: (ok: boolean) => void }>();
  let id = 0;
  let maxOpen = 0;
  const perKeyOpen = new Map<string, number>();
  let maxPerKey = 0;
  const check: Checker = (t, signal) =>
    new Promise<CheckOutcome>((resolve) => {
      const me = id++;
      const started = sched.now();
      perKeyOpen.set(t.key, (perKeyOpen.get(t.key) ?? 0) + 1);
      maxPerKey = Math.max(maxPerKey, perKeyOpen.get(t.key)!);
      const settle = (ok: boolean, detail?: string) => {
        if (!open.delete(me)) return;
        perKeyOpen.set(t.key, perKeyOpen.get(t.key)! - 1);
        resolve({ ...(ok ? OK : FAIL), ...(detail ? { detail } : {}), latencyMs: sched.now() - started });
      };
      open.set(me, { key: t.key, settle });
      maxOpen = Math.max(maxOpen, open.size);
      signal.addEventListener('abort', () => settle(false, 'aborted'), { once: true });
    });
  return {
    check,
    open,
    get maxOpen() {
      return maxOpen;
    },
    get maxPerKey() {
      return maxPerKey;
    },
    settleAll(ok: boolean) {
      for (const o of [...open.values()]) o.settle(ok);
    },
  };
}

function recorder() {
  const changes: { key: string; health: MemberHealth; previous: MemberHealth; reason: string; at: number }[] = [];
  const results: { key: string; ok: boolean; checks: number }[] = [];
  return {
    changes,
    results,
    onChange: (s: TargetState, previous: MemberHealth, reason: string) =>
      changes.push({ key: s.key, health: s.health, previous, reason, at: s.since }),
    onResult: (s: TargetState, o: CheckOutcome) => results.push({ key: s.key, ok: o.ok, checks: s.checks }),
  };
}

describe('first result', () => {
  it('decides health directly, in both directions; firstRound waits for it', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const rec = recorder();
    const m = new HealthMonitor({ check: h.check, scheduler: sched, ...rec });
    const good = tgt(1);
    const bad = tgt(2);
    m.setTargets([good, bad]);
    // Before any result: provisionally up, nothing known.
    expect(m.state(good.key)).toMatchObject({ health: 'up', checks: 0, consecutiveOk: 0, consecutiveFail: 0 });
    expect(m.timeToPossibleChange(good.key)).toBe(0);

    let ready = false;
    const first = m.firstRound().then(() => (ready = true));
    expect(h.open.size).toBe(2); // the first round starts at once
    const [g, b] = [...h.open.values()];
    g!.settle(true);
    await flushPromises();
    expect(ready).toBe(false); // one target still unchecked
    b!.settle(false);
    await first;

    expect(m.state(good.key)).toMatchObject({ health: 'up', checks: 1, consecutiveOk: 1, lastOutcome: { detail: 'HTTP 200' } });
    expect(m.state(bad.key)).toMatchObject({ health: 'down', checks: 1, consecutiveFail: 1 });
    // Only the real change is reported (good was provisionally up already).
    expect(rec.changes).toEqual([
      { key: bad.key, health: 'down', previous: 'up', reason: 'first check: HTTP 500 not in 200-399', at: sched.now() },
    ]);
    expect(rec.results.map((r) => r.key).sort()).toEqual([good.key, bad.key].sort());
    await m.close();
  });

  it('firstRound resolves at once with no targets, and after close', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    await m.firstRound();
    m.setTargets([tgt(1)]);
    const first = m.firstRound();
    await m.close();
    await first;
    expect(h.open.size).toBe(0); // close aborted the check
  });
});

describe('fall and rise', () => {
  it('goes down after `fall` consecutive failures and up after `rise` consecutive successes', async () => {
    const sched = new ManualScheduler();
    //             check: 0   1     2     3     4     5    6    7    8
    const script = [true, false, true, false, false, false, true, false, true, true];
    const s = scripted(sched, (_k, n) => script[n] ?? true);
    const rec = recorder();
    const m = new HealthMonitor({ check: s.check, scheduler: sched, ...rec });
    const t = tgt(1);
    m.setTargets([t]);
    await m.firstRound();
    const healthAfter: MemberHealth[] = [m.state(t.key)!.health];
    for (let i = 1; i < script.length; i++) {
      await sched.advance(1000);
      healthAfter.push(m.state(t.key)!.health);
    }
    expect(s.calls).toHaveLength(script.length);
    expect(healthAfter).toEqual(['up', 'up', 'up', 'up', 'up', 'down', 'down', 'down', 'down', 'up']);
    expect(rec.changes.map((c) => [c.previous, c.health, c.reason])).toEqual([
      ['up', 'down', '3 consecutive failures: HTTP 500 not in 200-399'],
      ['down', 'up', '2 consecutive successes: HTTP 200'],
    ]);
    expect(m.state(t.key)).toMatchObject({ checks: 10, consecutiveOk: 2, consecutiveFail: 0, since: rec.changes[1]!.at });
    await m.close();
  });

  it('fall 1 / rise 1 follow every result', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, (_k, n) => n % 2 === 0);
    const rec = recorder();
    const m = new HealthMonitor({ check: s.check, scheduler: sched, ...rec });
    m.setTargets([tgt(1, { fall: 1, rise: 1 })]);
    await m.firstRound();
    await sched.advance(4000);
    expect(rec.changes.map((c) => c.health)).toEqual(['down', 'up', 'down', 'up']);
    expect(rec.changes[0]!.reason).toBe('1 consecutive failure: HTTP 500 not in 200-399');
    await m.close();
  });

  it('a backend alternating ok/fail never changes state (fall 2, rise 2)', async () => {
    for (const startOk of [true, false]) {
      const sched = new ManualScheduler();
      const s = scripted(sched, (_k, n) => (n % 2 === 0) === startOk);
      const rec = recorder();
      const m = new HealthMonitor({ check: s.check, scheduler: sched, ...rec });
      const t = tgt(1, { fall: 2, rise: 2 });
      m.setTargets([t]);
      await m.firstRound();
      const firstHealth = m.state(t.key)!.health;
      const changesAfterFirst = rec.changes.length;
      for (let i = 0; i < 50; i++) await sched.advance(1000);
      expect(s.calls).toHaveLength(51);
      expect(firstHealth).toBe(startOk ? 'up' : 'down');
      expect(m.state(t.key)!.health).toBe(firstHealth);
      expect(rec.changes).toHaveLength(changesAfterFirst);
      await m.close();
    }
  });
});

describe('scheduling', () => {
  it('50 targets at 1s: first round at once, then spread evenly over the interval, without drift', async () => {
    const sched = new ManualScheduler();
    const t0 = sched.now();
    const s = scripted(sched, () => true);
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const targets = Array.from({ length: 50 }, (_, i) => tgt(i + 1));
    m.setTargets(targets);
    await m.firstRound();
    expect(s.calls.map((c) => c.at)).toEqual(Array(50).fill(t0));

    await sched.advance(3000);
    const round = (n: number) =>
      targets.map((t) => s.startsOf(t.key)[n]!).sort((a, b) => a - b);
    const second = round(1);
    expect(new Set(second).size).toBe(50); // distinct start times
    expect(second[0]).toBe(t0 + 1000);
    expect(second.at(-1)).toBeLessThan(t0 + 2000);
    const gaps = second.slice(1).map((at, i) => at - second[i]!);
    expect(new Set(gaps)).toEqual(new Set([20])); // 1000 ms / 50, evenly
    // Each target keeps its own phase: exactly one interval between its checks from then on.
    for (const t of targets) {
      const starts = s.startsOf(t.key);
      expect(starts.length).toBeGreaterThanOrEqual(3);
      for (let i = 2; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBe(1000);
    }
    await m.close();
  });

  it('slow checks do not shift the schedule, and a target never has two checks in flight', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const t = tgt(1, { interval: '1s', timeout: '900ms' });
    const starts: number[] = [];
    const wrapped = new HealthMonitor({
      check: (target, signal) => {
        starts.push(sched.now());
        return h.check(target, signal);
      },
      scheduler: sched,
      stuckGraceMs: 5000,
    });
    const t0 = sched.now();
    wrapped.setTargets([t]);
    // Every check takes 700 ms: the next still starts on the 1000 ms grid.
    for (let i = 0; i < 5; i++) {
      await sched.advance(700);
      h.settleAll(true);
      await sched.advance(300);
    }
    expect(starts).toEqual([0, 1000, 2000, 3000, 4000, 5000].map((d) => t0 + d));
    // The check started at 5000 takes 1500 ms (longer than the interval): the 6000 slot is skipped, never overlapped.
    await sched.advance(1500);
    h.settleAll(true);
    await sched.advance(1500);
    h.settleAll(true);
    expect(starts.slice(5)).toEqual([t0 + 5000, t0 + 7000]);
    expect(h.maxPerKey).toBe(1);
    await wrapped.close();
  });

  it('at most 64 first checks in flight; the rest start as they finish', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    const targets = Array.from({ length: 150 }, (_, i) => tgt(i + 1));
    let ready = false;
    m.setTargets(targets);
    const first = m.firstRound().then(() => (ready = true));
    expect(h.open.size).toBe(64);
    for (let i = 0; i < 5 && !ready; i++) {
      h.settleAll(true);
      await flushPromises();
    }
    await first;
    expect(h.maxOpen).toBe(64);
    expect(m.states().every((st) => st.checks === 1)).toBe(true);
    await m.close();
  });

  it('targets sharing a key are checked once', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, () => true);
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const cfg = { host: 'lb.example.test' };
    const shared = ['a.example.test', 'b.example.test', 'c.example.test'].map((n) => tgt(1, cfg, n));
    m.setTargets([...shared, tgt(2)]);
    await m.firstRound();
    await sched.advance(5000);
    expect(m.states()).toHaveLength(2);
    expect(s.startsOf(shared[0]!.key)).toHaveLength(6); // one per interval, not three
    // The second key runs at phase 500 ms: 0, 1500, 2500, 3500, 4500.
    expect(s.startsOf(m.states().find((st) => st.key !== shared[0]!.key)!.key)).toHaveLength(5);
    expect(s.calls).toHaveLength(11);
    await m.close();
  });
});

describe('setTargets', () => {
  it('keeps the state and phase of surviving keys, stops removed ones, starts new ones', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, (key, n) => !(key === a.key && n >= 1));
    const rec = recorder();
    const m = new HealthMonitor({ check: s.check, scheduler: sched, ...rec });
    const a = tgt(1);
    const b = tgt(2);
    const c = tgt(3);
    m.setTargets([a, b]);
    await m.firstRound();
    await sched.advance(3500); // a: 3 failures → down
    const aBefore = m.state(a.key)!;
    expect(aBefore).toMatchObject({ health: 'down', checks: 4, consecutiveFail: 3 });
    const callsOfB = s.startsOf(b.key).length;
    const aStarts = s.startsOf(a.key);

    m.setTargets([makeTarget('192.0.2.1', 'www.example.test', a.config), c]); // same key as a, new object
    expect(m.state(a.key)).toEqual(aBefore);
    expect(m.state(b.key)).toBeUndefined();
    expect(m.states().map((st) => st.key).sort()).toEqual([a.key, c.key].sort());
    let ready = false;
    const first = m.firstRound().then(() => (ready = true));
    await first;
    expect(ready).toBe(true);
    expect(s.startsOf(c.key)).toEqual([sched.now()]); // new target checked at once

    await sched.advance(3000);
    expect(s.startsOf(b.key)).toHaveLength(callsOfB); // removed: no more checks
    const aAfter = s.startsOf(a.key);
    // a kept its grid: every start is a whole number of intervals after its first one.
    for (const at of aAfter) expect((at - aStarts[0]!) % 1000).toBe(0);
    expect(aAfter.length).toBe(aStarts.length + 3);
    expect(m.state(a.key)!.checks).toBe(7);
    await m.close();
  });

  it('removing a target aborts its check in flight', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    m.setTargets([tgt(1)]);
    expect(h.open.size).toBe(1);
    m.setTargets([]);
    await flushPromises();
    expect(h.open.size).toBe(0);
    await m.firstRound();
    expect(m.states()).toEqual([]);
    await m.close();
  });
});

describe('timeToPossibleChange', () => {
  it('is interval × checks still needed minus the time since the last check started', async () => {
    const sched = new ManualScheduler();
    const script = [true, false, false, false, true];
    const s = scripted(sched, (_k, n) => script[n] ?? true);
    const m = new HealthMonitor({ check: s.check, scheduler: sched });
    const t = tgt(1, { interval: '1s', timeout: '500ms', fall: 3, rise: 2 });
    m.setTargets([t]);
    await m.firstRound();
    const formula = () => {
      const st = m.state(t.key)!;
      const needed = st.health === 'up' ? 3 - st.consecutiveFail : 2 - st.consecutiveOk;
      return Math.max(0, 1000 * needed - (sched.now() - st.lastCheckAt!));
    };
    // up, 0 failures: 3 checks needed.
    expect(m.timeToPossibleChange(t.key)).toBe(3000);
    await sched.advance(400);
    expect(m.timeToPossibleChange(t.key)).toBe(2600);
    expect(m.timeToPossibleChange(t.key)).toBe(formula());
    await sched.advance(600); // 1 failure: 2 more needed
    expect(m.timeToPossibleChange(t.key)).toBe(2000);
    await sched.advance(1250); // 2 failures: the next check decides
    expect(m.timeToPossibleChange(t.key)).toBe(750);
    expect(m.timeToPossibleChange(t.key)).toBe(formula());
    await sched.advance(750); // down now: rise 2
    expect(m.state(t.key)!.health).toBe('down');
    expect(m.timeToPossibleChange(t.key)).toBe(2000);
    await sched.advance(1000); // 1 success while down: 1 more
    expect(m.timeToPossibleChange(t.key)).toBe(1000);
    expect(m.timeToPossibleChange('no-such-key')).toBe(0);
    await m.close();
  });
});

describe('robustness and close', () => {
  it('a checker that throws or rejects is a failed check, not a crash', async () => {
    const sched = new ManualScheduler();
    let n = 0;
    const check: Checker = (t) => {
      if (n++ === 0) throw new Error('boom');
      return Promise.reject(Object.assign(new Error('nope'), { code: 'ECONNRESET' }));
    };
    const rec = recorder();
    const m = new HealthMonitor({ check, scheduler: sched, ...rec });
    const t = tgt(1);
    m.setTargets([t]);
    await m.firstRound();
    expect(m.state(t.key)).toMatchObject({ health: 'down', lastOutcome: { ok: false, detail: 'checker error: boom' } });
    await sched.advance(1000);
    expect(m.state(t.key)!.lastOutcome!.detail).toBe('checker error: ECONNRESET');
    await m.close();
  });

  it('a checker ignoring its signal is cut off after timeout + grace', async () => {
    const sched = new ManualScheduler();
    const never: Checker = () => new Promise<CheckOutcome>(() => {});
    const m = new HealthMonitor({ check: never, scheduler: sched, stuckGraceMs: 100 });
    const t = tgt(1, { timeout: '500ms' });
    m.setTargets([t]);
    await sched.advance(600);
    await m.firstRound();
    expect(m.state(t.key)).toMatchObject({
      health: 'down',
      lastOutcome: { ok: false, detail: 'no result within 500ms (checker ignored its timeout)' },
    });
    await m.close();
  });

  it('a throwing callback is reported as a warning and the monitor goes on', async () => {
    const sched = new ManualScheduler();
    const s = scripted(sched, () => false);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const m = new HealthMonitor({
        check: s.check,
        scheduler: sched,
        onChange: () => {
          throw new Error('listener bug');
        },
      });
      m.setTargets([tgt(1)]);
      await m.firstRound();
      await sched.advance(2000);
      expect(s.calls).toHaveLength(3);
      expect(warn).toHaveBeenCalledWith('health monitor callback threw: listener bug');
      await m.close();
    } finally {
      warn.mockRestore();
    }
  });

  it('close() is idempotent, aborts checks in flight and leaves no timer', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const rec = recorder();
    const m = new HealthMonitor({ check: h.check, scheduler: sched, ...rec });
    m.setTargets([tgt(1), tgt(2)]);
    expect(h.open.size).toBe(2);
    const c1 = m.close();
    expect(m.close()).toBe(c1);
    await c1;
    expect(h.open.size).toBe(0);
    expect(sched.pending()).toBe(0);
    expect(rec.results).toEqual([]); // aborted checks are not results
    await sched.advance(10_000);
    expect(h.open.size).toBe(0);
    m.setTargets([tgt(3)]); // ignored after close
    expect(h.open.size).toBe(0);
  });
});

describe('the first round is bounded by one timeout, however many checks', () => {
  const sizes = [{ name: '5,000 targets whose checks never answer', n: 5000 }, { name: '200 targets whose checks never answer', n: 200 }];
  for (const c of sizes) {
    it(`${c.name}: firstRound resolves after one timeout (500 ms) plus the stuck-check grace (1 s) of fake time, not before`, async () => {
      const sched = new ManualScheduler();
      const h = held(sched);
      const m = new HealthMonitor({ check: h.check, scheduler: sched });
      const targets = Array.from({ length: c.n }, (_, i) => makeTarget(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'www.example.test', CheckSchema.parse({ interval: '10s', timeout: '500ms' })));
      m.setTargets(targets);
      let ready = false;
      const first = m.firstRound().then(() => (ready = true));
      await sched.advance(1499);
      expect(ready).toBe(false);
      await sched.advance(1);
      await first;
      expect(ready).toBe(true);
      // Before: 64 checks at a time, each given up after 1.5 s, made 5,000 targets wait 79 rounds (about 2 minutes).
      expect(m.states().filter((s) => s.checks > 0).length).toBeLessThanOrEqual(64);
      // Targets without a result yet are provisionally up (fail open), and a later firstRound() does not wait again.
      expect(m.states().filter((s) => s.checks === 0).every((s) => s.health === 'up')).toBe(true);
      let again = false;
      void m.firstRound().then(() => (again = true));
      await flushPromises();
      expect(again).toBe(true);
      await m.close();
    });
  }

  it('targets added later (a reload) get a first round of their own, again bounded by one timeout', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    m.setTargets([tgt(1, { timeout: '800ms' })]);
    await sched.advance(1800);
    await m.firstRound();
    m.setTargets([tgt(1, { timeout: '800ms' }), tgt(2, { timeout: '800ms' })]);
    let ready = false;
    const first = m.firstRound().then(() => (ready = true));
    await sched.advance(1799);
    expect(ready).toBe(false);
    await sched.advance(1);
    await first;
    await m.close();
  });

  it('answers that come before the timeout end the round at once', async () => {
    const sched = new ManualScheduler();
    const h = held(sched);
    const m = new HealthMonitor({ check: h.check, scheduler: sched });
    m.setTargets(Array.from({ length: 10 }, (_, i) => tgt(i + 1)));
    let ready = false;
    const first = m.firstRound().then(() => (ready = true));
    await sched.advance(10);
    h.settleAll(true);
    await flushPromises();
    await first;
    expect(ready).toBe(true);
    expect(m.states().every((s) => s.checks === 1)).toBe(true);
    await m.close();
  });
});

describe('the real scheduler uses a monotonic clock', () => {
  it('a wall clock stepped back (Date.now) moves neither its time nor the monitor plan', async () => {
    const { realScheduler } = await import('../../src/health/monitor.ts');
    const before = realScheduler.now();
    const spy = vi.spyOn(Date, 'now').mockReturnValue(0); // the wall clock jumps back to 1970
    try {
      const m = new HealthMonitor({ check: async () => ({ ...OK, latencyMs: 0 }) });
      const target = tgt(1, { interval: '60s' });
      m.setTargets([target]);
      await m.firstRound();
      const key = target.key;
      const s = m.state(key)!;
      // lastCheckAt and the plan are on the monotonic clock: not 1970, and not behind the time before the jump.
      expect(s.lastCheckAt!).toBeGreaterThanOrEqual(before);
      const ttc = m.timeToPossibleChange(key);
      expect(ttc).toBeGreaterThan(0);
      expect(ttc).toBeLessThanOrEqual(60_000 * 3);
      expect(realScheduler.now()).toBeGreaterThanOrEqual(s.lastCheckAt!);
      await m.close();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('last outcome kept in place', () => {
  it('each result overwrites one outcome object; state() hands out copies with only the fields present', async () => {
    const sched = new ManualScheduler();
    // A status on the first result, none on the second (a TCP-like outcome), a load on the third.
    const script: Omit<CheckOutcome, 'latencyMs'>[] = [OK, { ok: false, detail: 'ECONNREFUSED' }, { ok: true, detail: 'HTTP 200, load 0.5', status: 200, load: 0.5 }];
    let n = 0;
    const seen: { outcome: CheckOutcome | undefined; checks: number }[] = [];
    const m = new HealthMonitor({
      check: async () => ({ ...script[n++]!, latencyMs: n }),
      scheduler: sched,
      // The live state, read during the call.
      onResult: (s) => seen.push({ outcome: s.lastOutcome, checks: s.checks }),
    });
    const t = tgt(1);
    m.setTargets([t]);
    await flushPromises();
    const first = m.state(t.key)!.lastOutcome!;
    expect(first).toStrictEqual({ ok: true, detail: 'HTTP 200', status: 200, latencyMs: 1 });
    await sched.advance(1000);
    const second = m.state(t.key)!.lastOutcome!;
    // No leftover status from the first result, and no key for what the outcome lacks.
    expect(second).toStrictEqual({ ok: false, detail: 'ECONNREFUSED', latencyMs: 2 });
    expect(first).toStrictEqual({ ok: true, detail: 'HTTP 200', status: 200, latencyMs: 1 }); // a copy: not changed since
    await sched.advance(1000);
    expect(m.state(t.key)!.lastOutcome).toStrictEqual({ ok: true, detail: 'HTTP 200, load 0.5', status: 200, load: 0.5, latencyMs: 3 });
    // onResult saw one and the same object each time, updated in place.
    expect(seen.map((x) => x.checks)).toEqual([1, 2, 3]);
    expect(new Set(seen.map((x) => x.outcome)).size).toBe(1);
    expect(seen[0]!.outcome).toMatchObject({ detail: 'HTTP 200, load 0.5', load: 0.5 });
    await m.close();
  });
});

describe('the signal a check gets', () => {
  it('one per target while nothing aborts; after an abort (probing off) the next check gets a fresh one', async () => {
    const sched = new ManualScheduler();
    const signals: AbortSignal[] = [];
    const h = held(sched);
    const m = new HealthMonitor({
      check: (t, signal) => {
        signals.push(signal);
        return h.check(t, signal);
      },
      scheduler: sched,
    });
    const t = tgt(1);
    m.setTargets([t]);
    h.settleAll(true);
    await flushPromises();
    await sched.advance(1000);
    h.settleAll(true);
    await flushPromises();
    expect(signals).toHaveLength(2);
    expect(signals[1]).toBe(signals[0]); // reused: no AbortController per probe
    expect(signals[0]!.aborted).toBe(false);
    // A check in flight when probing goes off is aborted through that signal…
    await sched.advance(1000);
    expect(signals).toHaveLength(3);
    m.setProbing(t.key, false);
    expect(signals[2]!.aborted).toBe(true);
    await flushPromises();
    // …and the next check (probing on again) does not get the aborted one.
    m.setProbing(t.key, true);
    expect(signals).toHaveLength(4);
    expect(signals[3]).not.toBe(signals[2]);
    expect(signals[3]!.aborted).toBe(false);
    h.settleAll(true);
    await m.close();
  });

  it('a check that ignores its abort is failed by the guard, and the next check gets a fresh signal', async () => {
    const sched = new ManualScheduler();
    const signals: AbortSignal[] = [];
    let n = 0;
    const m = new HealthMonitor({
      // The first check never settles (ignores its signal); the later ones pass at once.
      check: (_t, signal) => {
        signals.push(signal);
        return n++ === 0 ? new Promise<CheckOutcome>(() => {}) : Promise.resolve({ ...OK, latencyMs: 0 });
      },
      scheduler: sched,
      stuckGraceMs: 100,
    });
    const t = tgt(1);
    m.setTargets([t]);
    await sched.advance(600); // timeout 500 + grace 100
    expect(signals[0]!.aborted).toBe(true);
    expect(m.state(t.key)!.lastOutcome!.detail).toMatch(/no result within 500ms/);
    await sched.advance(1000);
    expect(signals.length).toBeGreaterThanOrEqual(2);
    expect(signals[1]).not.toBe(signals[0]);
    expect(signals[1]!.aborted).toBe(false);
    await m.close();
  });
});
