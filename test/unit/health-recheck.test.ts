/**
 * Fast re-checks (fastInterval, HAProxy's fastinter): the pure planning rules
 * of src/health/recheck.ts as tables, then the monitor's actual schedule under
 * a manual clock: which checks run when, when health flips, and what
 * timeToPossibleChange says meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import type { Checker } from '../../src/health/checkers.ts';
import { ManualScheduler } from '../../src/health/manual-scheduler.ts';
import { HealthMonitor } from '../../src/health/monitor.ts';
import { earliestChange, nextCheck, settling, steadyHorizonMs, worstDetectionMs, type EarliestChangeInput, type NextCheckInput, type StreakState } from '../../src/health/recheck.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';

describe('settling', () => {
  const cases: { name: string; s: StreakState; want: boolean }[] = [
    { name: 'up, passing', s: { health: 'up', consecutiveOk: 5, consecutiveFail: 0 }, want: false },
    { name: 'up, first failure', s: { health: 'up', consecutiveOk: 0, consecutiveFail: 1 }, want: true },
    { name: 'down, failing', s: { health: 'down', consecutiveOk: 0, consecutiveFail: 4 }, want: false },
    { name: 'down, first success', s: { health: 'down', consecutiveOk: 1, consecutiveFail: 0 }, want: true },
    { name: 'no result yet', s: { health: 'up', consecutiveOk: 0, consecutiveFail: 0 }, want: false },
  ];
  for (const c of cases) it(c.name, () => expect(settling(c.s)).toBe(c.want));
});

describe('nextCheck', () => {
  const base = { interval: 2000, now: 10_000, lastStartedAt: 10_000, gridAt: 12_000 };
  const cases: { name: string; in: NextCheckInput; want: ReturnType<typeof nextCheck> }[] = [
    { name: 'no fastInterval: the grid', in: { ...base, settling: true }, want: { at: 12_000, gridAt: 12_000, fast: false } },
    { name: 'steady: the grid', in: { ...base, fastInterval: 500, settling: false }, want: { at: 12_000, gridAt: 12_000, fast: false } },
    { name: 'settling: fastInterval after the last start', in: { ...base, fastInterval: 500, settling: true }, want: { at: 10_500, gridAt: 12_000, fast: true } },
    {
      name: 'settling, the check took 300 ms: still fastInterval after its start',
      in: { ...base, now: 10_300, fastInterval: 500, settling: true },
      want: { at: 10_500, gridAt: 12_000, fast: true },
    },
    {
      name: 'settling, the check took longer than fastInterval: at once',
      in: { ...base, now: 10_800, fastInterval: 500, settling: true },
      want: { at: 10_800, gridAt: 12_000, fast: true },
    },
    {
      name: 'settling, the grid slot comes sooner: the grid',
      in: { ...base, lastStartedAt: 11_700, now: 11_700, fastInterval: 500, settling: true },
      want: { at: 12_000, gridAt: 12_000, fast: false },
    },
    {
      name: 'settling, grid slot exactly at the fast time: the grid (one check, on the grid)',
      in: { ...base, lastStartedAt: 11_500, now: 11_500, fastInterval: 500, settling: true },
      want: { at: 12_000, gridAt: 12_000, fast: false },
    },
    {
      name: 'grid slots missed while the check ran are skipped, keeping the phase',
      in: { ...base, gridAt: 8_100, now: 12_400, lastStartedAt: 8_100, settling: false },
      want: { at: 14_100, gridAt: 14_100, fast: false },
    },
    {
      name: 'fastInterval equal to interval: no earlier than the grid',
      in: { ...base, lastStartedAt: 10_000, fastInterval: 2000, settling: true },
      want: { at: 12_000, gridAt: 12_000, fast: false },
    },
  ];
  for (const c of cases) it(c.name, () => expect(nextCheck(c.in)).toEqual(c.want));
});

describe('earliestChange', () => {
  const cases: { name: string; in: EarliestChangeInput; want: number }[] = [
    { name: 'next check decides', in: { firstAt: 2000, gridAt: 2000, interval: 2000, fastInterval: 500, needed: 1 }, want: 2000 },
    { name: 'no fastInterval: one interval per check', in: { firstAt: 2000, gridAt: 2000, interval: 2000, needed: 3 }, want: 6000 },
    { name: 'fast: the checks after the next one are fast', in: { firstAt: 2000, gridAt: 2000, interval: 2000, fastInterval: 500, needed: 3 }, want: 3000 },
    {
      name: 'a fast check in flight, grid slot planned later',
      in: { firstAt: 2500, gridAt: 4000, interval: 2000, fastInterval: 500, needed: 2 },
      want: 3000,
    },
    {
      name: 'the grid comes before the fast time',
      in: { firstAt: 3800, gridAt: 4000, interval: 2000, fastInterval: 500, needed: 2 },
      want: 4000,
    },
    { name: 'a regular check in flight (gridAt already the following slot)', in: { firstAt: 2000, gridAt: 4000, interval: 2000, needed: 2 }, want: 4000 },
    {
      name: 'fastInterval = interval: as without',
      in: { firstAt: 2000, gridAt: 2000, interval: 2000, fastInterval: 2000, needed: 3 },
      want: 6000,
    },
  ];
  for (const c of cases) it(c.name, () => expect(earliestChange(c.in)).toBe(c.want));
});

describe('worst-case figures', () => {
  const cases: { name: string; c: { interval: number; fastInterval?: number; timeout: number; fall: number }; detection: number; horizon: number }[] = [
    { name: 'interval 2 s, fall 2 (today)', c: { interval: 2000, timeout: 1000, fall: 2 }, detection: 5000, horizon: 4000 },
    { name: 'interval 2 s, fall 2, fastInterval 500 ms', c: { interval: 2000, fastInterval: 500, timeout: 1000, fall: 2 }, detection: 3500, horizon: 2500 },
    { name: 'fall 1: fastInterval changes nothing', c: { interval: 2000, fastInterval: 500, timeout: 1000, fall: 1 }, detection: 3000, horizon: 2000 },
    { name: 'fall 3, fastInterval 1 s', c: { interval: 5000, fastInterval: 1000, timeout: 2000, fall: 3 }, detection: 9000, horizon: 7000 },
  ];
  for (const c of cases)
    it(c.name, () => {
      expect(worstDetectionMs(c.c)).toBe(c.detection);
      expect(steadyHorizonMs(c.c)).toBe(c.horizon);
    });
});

// ------------------------------------------------------------------------------------------------
// The monitor's schedule. Documentation addresses: the checker is scripted, nothing is sent.

function tgt(input: CheckConfigInput, i = 1): CheckTarget {
  return makeTarget(`192.0.2.${i}`, 'www.example.test', CheckSchema.parse({ timeout: '100ms', ...input }));
}

/** Runs one target through `script` (outcome of check n; true past its end) for `forMs`; offsets from the start. */
async function runScript(input: CheckConfigInput, script: boolean[], forMs: number) {
  const sched = new ManualScheduler();
  const t0 = sched.now();
  const starts: number[] = [];
  const flips: { at: number; to: string }[] = [];
  const ttpc: { at: number; ms: number }[] = [];
  let m!: HealthMonitor;
  const t = tgt(input);
  const check: Checker = async () => {
    starts.push(sched.now() - t0);
    return { ok: script[starts.length - 1] ?? true, detail: 'scripted', latencyMs: 0 };
  };
  m = new HealthMonitor({
    check,
    scheduler: sched,
    onChange: (s) => flips.push({ at: sched.now() - t0, to: s.health }),
    onResult: () => queueMicrotask(() => ttpc.push({ at: sched.now() - t0, ms: m.timeToPossibleChange(t.key) })),
  });
  m.setTargets([t]);
  await m.firstRound();
  await sched.advance(forMs);
  await m.close();
  return { starts, flips, ttpc };
}

describe('the monitor with fastInterval', () => {
  const cases: {
    name: string;
    check: CheckConfigInput;
    script: boolean[];
    starts: number[];
    flips: { at: number; to: string }[];
  }[] = [
    {
      name: 'steady up: probed at the interval, no extra checks',
      check: { interval: '2s', fastInterval: '500ms', fall: 2 },
      script: [],
      starts: [0, 2000, 4000, 6000, 8000],
      flips: [],
    },
    {
      name: 'backend stops after the first check (fall 2): one fast re-check, then back on the grid',
      check: { interval: '2s', fastInterval: '500ms', fall: 2 },
      script: [true, false, false, false, false, false],
      starts: [0, 2000, 2500, 4000, 6000, 8000],
      flips: [{ at: 2500, to: 'down' }],
    },
    {
      name: 'the same without fastInterval (today)',
      check: { interval: '2s', fall: 2 },
      script: [true, false, false, false, false],
      starts: [0, 2000, 4000, 6000, 8000],
      flips: [{ at: 4000, to: 'down' }],
    },
    {
      name: 'one failure then a pass: the streak breaks, back on the grid, health unchanged',
      check: { interval: '2s', fastInterval: '500ms', fall: 2 },
      script: [true, false, true],
      starts: [0, 2000, 2500, 4000, 6000, 8000],
      flips: [],
    },
    {
      name: 'fall 3, fastInterval 1 s: the third failure falls on the grid slot and is the grid check',
      check: { interval: '2s', fastInterval: '1s', fall: 3 },
      script: [true, false, false, false, false],
      starts: [0, 2000, 3000, 4000, 6000, 8000],
      flips: [{ at: 4000, to: 'down' }],
    },
    {
      name: 'down, recovering (rise 3): fast re-checks until up',
      check: { interval: '2s', fastInterval: '500ms', fall: 2, rise: 3 },
      script: [false, false, true, true, true],
      starts: [0, 2000, 4000, 4500, 5000, 6000, 8000],
      flips: [
        { at: 0, to: 'down' },
        { at: 5000, to: 'up' },
      ],
    },
    {
      name: 'flapping backend (fail, pass, fail…) at fall 2, rise 2: one fast re-check per failure, never a flip',
      check: { interval: '2s', fastInterval: '500ms', fall: 2, rise: 2 },
      script: [true, false, true, false, true, false, true],
      starts: [0, 2000, 2500, 4000, 4500, 6000, 6500, 8000],
      flips: [],
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const r = await runScript(c.check, c.script, 8000);
      expect(r.starts).toEqual(c.starts);
      expect(r.flips).toEqual(c.flips);
    });

  it('timeToPossibleChange counts the fast re-checks (the health-aware TTL shrinks accordingly)', async () => {
    const r = await runScript({ interval: '2s', fastInterval: '500ms', fall: 3 }, [true, false, false, false], 4000);
    expect(r.ttpc.slice(0, 4)).toEqual([
      { at: 0, ms: 3000 }, // up, steady: the grid check at 2000, then two fast ones (2500, 3000)
      { at: 2000, ms: 1000 }, // one failure: fast checks at 2500 and 3000
      { at: 2500, ms: 500 }, // two: the 3000 one decides
      { at: 3000, ms: 1500 }, // down now (rise 2): the grid check at 4000, then a fast one at 4500
    ]);
    const without = await runScript({ interval: '2s', fall: 3 }, [true, false], 2000);
    expect(without.ttpc.slice(0, 2)).toEqual([
      { at: 0, ms: 6000 },
      { at: 2000, ms: 4000 },
    ]);
  });

  it('targets spread over the interval each return to their own phase after fast re-checks', async () => {
    const sched = new ManualScheduler();
    const t0 = sched.now();
    const starts = new Map<string, number[]>();
    const targets = [1, 2, 3, 4].map((i) => tgt({ interval: '2s', fastInterval: '300ms', fall: 3 }, i));
    const failing = targets[2]!; // phase 1000 ms
    const check: Checker = async (t) => {
      const list = starts.get(t.key) ?? [];
      list.push(sched.now() - t0);
      starts.set(t.key, list);
      // failing: passes its first check, then fails for good
      return { ok: !(t.key === failing.key && list.length > 1), detail: 'scripted', latencyMs: 0 };
    };
    const m = new HealthMonitor({ check, scheduler: sched });
    m.setTargets(targets);
    await m.firstRound();
    await sched.advance(10_000);
    expect(starts.get(failing.key)).toEqual([0, 3000, 3300, 3600, 5000, 7000, 9000]);
    expect(m.state(failing.key)!.health).toBe('down');
    targets.forEach((t, k) => {
      const steady = starts.get(t.key)!.filter((at) => at > 0 && ![3300, 3600].includes(at));
      for (const at of steady) expect(at % 2000).toBe((k * 500 + 2000) % 2000);
    });
    await m.close();
  });

  // A backend dies at 20 instants spread evenly over one interval: the mean time until it is seen down
  // is interval/2 + (fall − 1) × fastInterval, against interval/2 + (fall − 1) × interval without.
  const detection: { name: string; check: CheckConfigInput; mean: number }[] = [
    { name: 'interval 2 s, fall 2, fastInterval 500 ms', check: { interval: '2s', fastInterval: '500ms', fall: 2 }, mean: 1000 + 500 },
    { name: 'interval 2 s, fall 2, no fastInterval', check: { interval: '2s', fall: 2 }, mean: 1000 + 2000 },
    { name: 'interval 2 s, fall 3, fastInterval 250 ms', check: { interval: '2s', fastInterval: '250ms', fall: 3 }, mean: 1000 + 500 },
  ];
  for (const c of detection)
    it(`mean detection, ${c.name}: ${c.mean} ms`, async () => {
      const n = 20;
      let total = 0;
      for (let k = 0; k < n; k++) {
        const sched = new ManualScheduler();
        const t0 = sched.now();
        const deathAt = t0 + 4000 + Math.round(((k + 0.5) * 2000) / n); // mid-points of 20 slices of one interval
        let downAt: number | undefined;
        const m = new HealthMonitor({
          check: async () => ({ ok: sched.now() < deathAt, detail: 'scripted', latencyMs: 0 }),
          scheduler: sched,
          onChange: (s) => {
            if (s.health === 'down') downAt = sched.now();
          },
        });
        m.setTargets([tgt(c.check)]);
        await m.firstRound();
        await sched.advance(12_000);
        await m.close();
        expect(downAt).toBeDefined();
        total += downAt! - deathAt;
      }
      expect(total / n).toBe(c.mean);
    });
});
