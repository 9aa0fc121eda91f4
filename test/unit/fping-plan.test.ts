/** The pure policy that maps icmp checks onto fping processes (health/icmp/fping-plan.ts). */
import { describe, expect, it } from 'vitest';
import { echoPeriodMs, fpingArgs, idleLimitMs, placeTarget, processCapacity, restartDelayMs } from '../../src/health/icmp/fping-plan.ts';

describe('fping plan', () => {
  const periods: [string, number, number][] = [
    ['the default 2 s timeout: an echo a second', 2000, 1000],
    ['an odd timeout rounds down', 301, 150],
    ['the shortest icmp timeout, 20 ms: fping minimum period', 20, 10],
    ['below that the minimum still holds', 12, 10],
  ];
  it.each(periods)('echo period: %s', (_n, timeout, period) => expect(echoPeriodMs(timeout)).toBe(period));

  const capacities: [string, number, number][] = [
    ['1 s period: 5,000 targets (first echoes within half a period after a restart)', 1000, 5000],
    ['10 ms period: 50', 10, 50],
    ['never below one', 0.1, 1],
  ];
  it.each(capacities)('capacity: %s', (_n, period, cap) => expect(processCapacity(period)).toBe(cap));

  it('arguments: loop, period, per-echo timeout = the check timeout, 0.1 ms send gap, addresses as given', () => {
    expect(fpingArgs(2000, ['127.0.0.1', '::1'])).toEqual(['-l', '-p', '1000', '-t', '2000', '-i', '0.1', '127.0.0.1', '::1']);
  });

  const delays: [string, number, number][] = [
    ['first death', 1, 100],
    ['second within a minute', 2, 200],
    ['fifth', 5, 1600],
    ['capped at 5 s', 20, 5000],
    ['no death counted yet', 0, 100],
  ];
  it.each(delays)('restart delay: %s', (_n, deaths, ms) => expect(restartDelayMs(deaths)).toBe(ms));

  it('idle limit: two intervals plus the timeout', () => expect(idleLimitMs(5000, 2000)).toBe(12_000));

  const placements: [string, number[], number, number][] = [
    ['no process yet: a new one', [], 500, 0],
    ['the first with room', [500, 3, 0], 500, 1],
    ['an emptied one is reused', [500, 0], 500, 1],
    ['all full: a new one', [2, 2], 2, 2],
  ];
  it.each(placements)('placement: %s', (_n, sizes, cap, index) => expect(placeTarget(sizes, cap)).toBe(index));
});
