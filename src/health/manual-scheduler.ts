/**
 * A scheduler driven by hand, for tests of anything built on the health monitor:
 * time only moves when `advance()` is called, and timers fire in time order.
 */
import type { Scheduler, Timer } from './monitor.ts';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/** Lets every promise callback queued so far (and those they queue) run. */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class ManualScheduler implements Scheduler {
  #now: number;
  #seq = 0;
  #timers: Pending[] = [];
  /** Every setTimeout call as [time it was made, delay], for tests that inspect the plan. */
  readonly log: { at: number; delay: number }[] = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const delay = Math.max(0, ms);
    const t: Pending = { at: this.#now + delay, seq: this.#seq++, fn, live: true };
    this.#timers.push(t);
    this.log.push({ at: this.#now, delay });
    return {
      cancel: () => {
        t.live = false;
      },
    };
  }

  /** Timers not yet fired nor cancelled. */
  pending(): number {
    return this.#timers.filter((t) => t.live).length;
  }

  /**
   * Moves time forward by `ms`, firing due timers in (time, creation) order; after
   * each one, pending promise callbacks run, so async work started by a timer can
   * complete and schedule more before time moves on. Throws past `maxTimers` firings.
   */
  async advance(ms: number, maxTimers = 100_000): Promise<void> {
    const until = this.#now + ms;
    await flushPromises();
    for (let fired = 0; ; fired++) {
      if (fired >= maxTimers) throw new Error(`ManualScheduler: more than ${maxTimers} timers fired in one advance()`);
      this.#timers = this.#timers.filter((t) => t.live);
      let next: Pending | undefined;
      for (const t of this.#timers) {
        if (t.at <= until && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      next.live = false;
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await flushPromises();
    }
    this.#now = until;
    await flushPromises();
  }
}
