import { describe, expect, it } from 'vitest';
import { RotationCounters, rotatedWindow } from '../../src/rotation/rotation.ts';

describe('rotatedWindow', () => {
  it.each([
    { name: 'start 0 is the zone order', start: 0, size: undefined, want: ['a', 'b', 'c', 'd'] },
    { name: 'start 1 moves the first to the end', start: 1, size: undefined, want: ['b', 'c', 'd', 'a'] },
    { name: 'start 3 wraps', start: 3, size: undefined, want: ['d', 'a', 'b', 'c'] },
    { name: 'a window of 2 from 3 wraps', start: 3, size: 2, want: ['d', 'a'] },
  ])('$name', ({ start, size, want }) => {
    const records = Object.freeze(['a', 'b', 'c', 'd']);
    expect(rotatedWindow(records, start, size)).toEqual(want);
    expect(records).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('RotationCounters', () => {
  it('is cyclic: over k·n queries each of n records comes first exactly k times', () => {
    const counters = new RotationCounters(2);
    const n = 5;
    const k = 7;
    const firsts = new Map<number, number>();
    let previous = -1;
    for (let i = 0; i < k * n; i++) {
      const r = counters.next(0, n);
      if (previous >= 0) expect(r).toBe((previous + 1) % n);
      previous = r;
      firsts.set(r, (firsts.get(r) ?? 0) + 1);
    }
    expect([...firsts.values()]).toEqual(Array(n).fill(k));
  });
  it('keeps each RRset on its own counter', () => {
    const counters = new RotationCounters(2);
    expect([counters.next(0, 3), counters.next(0, 3), counters.next(1, 3), counters.next(0, 3)]).toEqual([0, 1, 0, 2]);
  });
});
