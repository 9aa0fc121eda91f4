/**
 * The probing thread's Scheduler: timers that end on the next multiple of
 * `tickMs`, kept in one bucket per tick and driven by a single Node timer set
 * for the earliest bucket.
 *
 * Why not Node's setTimeout per timer: at 5,000 checks a second the monitor
 * sets two timers per check (the next check, about an interval ahead, and the
 * guard of the one starting), and a Node Timeout with its wrapper lives about
 * an interval, long enough to survive young-generation collections (each one
 * copied, then promoted). Here a timer is one small object, and a cancelled
 * one leaves its bucket at once (it keeps nothing alive). Ending on ticks
 * also makes the checks due in one tick start together: the thread wakes
 * about 1000/tickMs times a second instead of at every check.
 *
 * Timers of one tick fire in the order they were set, ticks in time order.
 * A callback that throws does not stop the others; its error is thrown again
 * from a microtask (uncaught, as from a Node timer).
 */
import type { Scheduler, Timer } from './monitor.ts';

class TickTimer implements Timer {
  fn: (() => void) | undefined;
  bucket: TickTimer[] | undefined;
  index = 0;

  constructor(fn: () => void) {
    this.fn = fn;
  }

  cancel(): void {
    const b = this.bucket;
    this.fn = undefined;
    if (!b) return;
    this.bucket = undefined;
    // Swap-remove: O(1), and the cancelled timer (with what its callback holds) is garbage now.
    const last = b.pop()!;
    if (last !== this) {
      b[this.index] = last;
      last.index = this.index;
    }
  }
}

export class TickScheduler implements Scheduler {
  readonly #tickMs: number;
  readonly #clock: () => number;
  readonly #mono: () => number;
  readonly #buckets = new Map<number, TickTimer[]>();
  /** The tick the Node timer is set for (Infinity: none). */
  #armedFor = Infinity;
  #handle: NodeJS.Timeout | undefined;

  /**
   * @param now    the clock the monitor plans with (epoch ms)
   * @param mono   the monotonic ms the ticks are counted on (default performance.now)
   */
  constructor(tickMs: number, now: () => number, mono: () => number = () => performance.now()) {
    this.#tickMs = tickMs;
    this.#clock = now;
    this.#mono = mono;
  }

  now(): number {
    return this.#clock();
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const tick = Math.ceil((this.#mono() + Math.max(0, ms)) / this.#tickMs);
    const t = new TickTimer(fn);
    let b = this.#buckets.get(tick);
    if (!b) this.#buckets.set(tick, (b = []));
    t.bucket = b;
    t.index = b.length;
    b.push(t);
    if (tick < this.#armedFor) this.#arm(tick);
    return t;
  }

  /** Timers not fired nor cancelled (tests). */
  get pending(): number {
    let n = 0;
    for (const b of this.#buckets.values()) n += b.length;
    return n;
  }

  #arm(tick: number): void {
    if (this.#handle) clearTimeout(this.#handle);
    this.#armedFor = tick;
    this.#handle = setTimeout(this.#fire, Math.max(1, Math.ceil(tick * this.#tickMs - this.#mono())));
    // The monitor's timers never keep a process alive.
    this.#handle.unref();
  }

  readonly #fire = (): void => {
    this.#handle = undefined;
    this.#armedFor = Infinity;
    const nowTick = Math.floor(this.#mono() / this.#tickMs);
    for (;;) {
      let first = Infinity;
      for (const k of this.#buckets.keys()) if (k < first) first = k;
      if (first > nowTick) {
        if (first !== Infinity) this.#arm(first);
        return;
      }
      const b = this.#buckets.get(first)!;
      this.#buckets.delete(first);
      // Timers set by these callbacks for this tick or an earlier one get a bucket of their own, run in this loop.
      for (let i = 0; i < b.length; i++) {
        const t = b[i]!;
        const fn = t.fn;
        t.fn = undefined;
        t.bucket = undefined;
        if (!fn) continue;
        try {
          fn();
        } catch (e) {
          queueMicrotask(() => {
            throw e;
          });
        }
      }
    }
  };
}
