/**
 * Rate limit for repetitive log lines (refused transfers, transport errors,
 * per-source events), so that no client can make rrdns write a line per
 * packet it sends.
 *
 * Each (kind, key) — e.g. ('xfr-refused', peer address) — has a token
 * bucket: `burst` lines at once, refilled at `perSecond`. A line without a
 * token is not written but counted; every `reportEveryMs` one line per key
 * says "suppressed N similar: <msg>" with the last fields seen. Keys are
 * bounded (`maxKeys`): past that, new keys of a kind share one overflow
 * bucket, so a client spreading over many addresses or ports gets no more
 * lines than one. The report timer is unref'd and runs only while something
 * is suppressed.
 */
import type { Logger } from './log.ts';
import { countSuppressed } from './log.ts';
import { monotonicMs } from '../zone/clock.ts';

export interface LimiterOptions {
  /** Lines a key may write at once. */
  burst: number;
  /** Lines per second a key earns back. */
  perSecond: number;
  /** Distinct keys tracked; more share their kind's overflow bucket. */
  maxKeys: number;
  /** How often the "suppressed N similar" lines are written. */
  reportEveryMs: number;
}

export const DEFAULT_LIMITER: LimiterOptions = { burst: 10, perSecond: 1, maxKeys: 1024, reportEveryMs: 10_000 };

type Level = 'info' | 'warn' | 'error';

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
  /** What the last suppressed line would have said. */
  level: Level;
  msg: string;
  fields: Record<string, unknown>;
  kind: string;
}

export class LogLimiter {
  private readonly log: Logger;
  private readonly opts: LimiterOptions;
  private readonly buckets = new Map<string, Bucket>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(log: Logger, opts: Partial<LimiterOptions> = {}, now: () => number = monotonicMs) {
    this.log = log;
    this.opts = { ...DEFAULT_LIMITER, ...opts };
    this.now = now;
  }

  /** Writes `msg` at `level` unless (kind, key) is over its rate; then counts it for the next report. */
  write(level: Level, kind: string, key: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.now();
    const id = `${kind}\u0000${key}`;
    let b = this.buckets.get(id);
    if (!b) {
      const overflow = `${kind}\u0000*`;
      if (this.buckets.size >= this.opts.maxKeys && now - this.lastSweep >= 1000) this.sweep(now);
      const useOverflow = this.buckets.size >= this.opts.maxKeys;
      b = useOverflow ? this.buckets.get(overflow) : undefined;
      if (!b) {
        b = { tokens: this.opts.burst, at: now, suppressed: 0, level, msg, fields, kind };
        this.buckets.set(useOverflow ? overflow : id, b);
      }
    }
    b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) / 1000) * this.opts.perSecond);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.log[level](fields, msg);
      return;
    }
    b.suppressed++;
    b.level = level;
    b.msg = msg;
    b.fields = fields;
    this.schedule();
  }

  private lastSweep = -Infinity;

  /** Forgets buckets that are full again and have nothing to report (at most once a second, when the key table is full). */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [id, b] of this.buckets) {
      if (b.suppressed === 0 && b.tokens + ((now - b.at) / 1000) * this.opts.perSecond >= this.opts.burst) this.buckets.delete(id);
    }
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.report();
    }, this.opts.reportEveryMs);
    this.timer.unref();
  }

  /** Writes one line per key with suppressed lines, and forgets full idle buckets. */
  report(): void {
    const now = this.now();
    for (const [id, b] of this.buckets) {
      if (b.suppressed > 0) {
        countSuppressed(b.kind, b.suppressed);
        try {
          this.log[b.level]({ ...b.fields, suppressed: b.suppressed }, `suppressed ${b.suppressed} similar: ${b.msg}`);
        } catch {
          // a failing log is not worth more
        }
        b.suppressed = 0;
      } else if (b.tokens + ((now - b.at) / 1000) * this.opts.perSecond >= this.opts.burst) {
        // Quiet long enough to be full again: nothing to remember.
        this.buckets.delete(id);
      }
    }
    if ([...this.buckets.values()].some((b) => b.suppressed > 0)) this.schedule();
  }

  /** Keys tracked now (bounded by maxKeys plus one overflow bucket per kind). */
  get size(): number {
    return this.buckets.size;
  }

  /** Reports what is still suppressed and stops the timer (at close). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.report();
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
