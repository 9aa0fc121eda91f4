import { describe, expect, it } from 'vitest';
import { nextSlot, spreadPhases } from '../../src/health/spread.ts';

describe('spreadPhases: M checks sharing an interval get M evenly spaced phases', () => {
  const cases: { count: number; interval: number; phases: number[] }[] = [
    { count: 0, interval: 1000, phases: [] },
    { count: 1, interval: 1000, phases: [0] },
    { count: 2, interval: 1000, phases: [0, 500] },
    { count: 4, interval: 1000, phases: [0, 250, 500, 750] },
    { count: 3, interval: 1000, phases: [0, 333, 666] },
    { count: 3, interval: 100, phases: [0, 33, 66] },
    { count: 5, interval: 3, phases: [0, 0, 1, 1, 2] }, // more checks than milliseconds: floor, still within the interval
  ];
  for (const c of cases) {
    it(`${c.count} at ${c.interval} ms -> ${JSON.stringify(c.phases)}`, () => {
      expect(spreadPhases(c.count, c.interval)).toEqual(c.phases);
    });
  }

  it('5,000 checks at 1 s: 5 per millisecond, none outside the interval', () => {
    const phases = spreadPhases(5000, 1000);
    const perMs = new Map<number, number>();
    for (const p of phases) perMs.set(p, (perMs.get(p) ?? 0) + 1);
    expect(perMs.size).toBe(1000);
    expect(new Set(perMs.values())).toEqual(new Set([5]));
    expect(Math.min(...phases)).toBe(0);
    expect(Math.max(...phases)).toBe(999);
  });
});

describe('nextSlot: the next start on a check\'s grid, missed slots skipped', () => {
  const cases: { name: string; nextAt: number; now: number; interval: number; want: number }[] = [
    { name: 'slot still ahead', nextAt: 2000, now: 1500, interval: 1000, want: 2000 },
    { name: 'slot is now', nextAt: 2000, now: 2000, interval: 1000, want: 2000 },
    { name: 'one slot missed', nextAt: 2000, now: 2001, interval: 1000, want: 3000 },
    { name: 'several slots missed, phase kept', nextAt: 2250, now: 5300, interval: 1000, want: 6250 },
    { name: 'exactly on a later slot', nextAt: 2000, now: 4000, interval: 1000, want: 4000 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(nextSlot(c.nextAt, c.now, c.interval)).toBe(c.want);
    });
  }
});
