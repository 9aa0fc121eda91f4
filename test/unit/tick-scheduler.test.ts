/**
 * The probing thread's scheduler (tick-scheduler.ts) on a fake monotonic
 * clock and fake Node timers: timers end on tick boundaries, fire in order,
 * cancelled ones leave their bucket at once, a throwing callback does not
 * stop the others, and only one Node timer is set at a time.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TickScheduler } from '../../src/health/tick-scheduler.ts';

describe('TickScheduler', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'queueMicrotask', 'performance'] }));
  afterEach(() => vi.useRealTimers());
  const mono = () => performance.now();

  it('timers end on the next tick boundary, in the order set, ticks in time order', async () => {
    const s = new TickScheduler(10, () => 1e12 + performance.now(), mono);
    vi.advanceTimersByTime(3); // now 3 ms: a 5 ms timer ends at 10, a 0 ms one at 10 too, a 12 ms one at 20
    const fired: [string, number][] = [];
    s.setTimeout(() => fired.push(['b', performance.now()]), 12);
    s.setTimeout(() => fired.push(['a1', performance.now()]), 5);
    s.setTimeout(() => fired.push(['a2', performance.now()]), 0);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(6);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([
      ['a1', 10],
      ['a2', 10],
    ]);
    vi.advanceTimersByTime(10);
    expect(fired.map(([n, at]) => `${n}@${at}`)).toEqual(['a1@10', 'a2@10', 'b@20']);
    expect(vi.getTimerCount()).toBe(0);
    expect(s.now()).toBe(1e12 + 20);
  });

  it('a cancelled timer never fires and leaves its bucket at once; cancelling twice, or after it fired, is harmless', () => {
    const s = new TickScheduler(10, () => 0, mono);
    const fired: number[] = [];
    const timers = [0, 1, 2, 3].map((i) => s.setTimeout(() => fired.push(i), 15));
    expect(s.pending).toBe(4);
    timers[1]!.cancel();
    timers[1]!.cancel();
    timers[3]!.cancel();
    expect(s.pending).toBe(2);
    vi.advanceTimersByTime(20);
    expect(fired.sort()).toEqual([0, 2]);
    timers[0]!.cancel();
    expect(s.pending).toBe(0);
  });

  it('a callback may cancel a later timer of its own tick, or set new ones', () => {
    const s = new TickScheduler(10, () => 0, mono);
    const fired: string[] = [];
    let later: { cancel(): void } | undefined = undefined;
    s.setTimeout(() => {
      fired.push('first');
      later!.cancel();
      s.setTimeout(() => fired.push('next tick'), 1);
    }, 5);
    later = s.setTimeout(() => fired.push('cancelled'), 5);
    s.setTimeout(() => fired.push('third'), 5);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(['first', 'third']);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(['first', 'third', 'next tick']);
  });

  it('one callback throwing does not stop the others of its tick', () => {
    const s = new TickScheduler(10, () => 0, mono);
    const fired: string[] = [];
    s.setTimeout(() => {
      throw new Error('boom');
    }, 1);
    s.setTimeout(() => fired.push('after'), 1);
    // Thrown again from a microtask (uncaught, as from a Node timer), after the others ran.
    expect(() => vi.advanceTimersByTime(10)).toThrow('boom');
    expect(fired).toEqual(['after']);
  });

  it('an earlier timer re-arms the one Node timer; none is left once every timer is done', () => {
    const s = new TickScheduler(10, () => 0, mono);
    const fired: string[] = [];
    const late = s.setTimeout(() => fired.push('late'), 1000);
    s.setTimeout(() => fired.push('early'), 10);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(['early']);
    expect(vi.getTimerCount()).toBe(1);
    late.cancel();
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['early']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
