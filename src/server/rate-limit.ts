/**
 * Response rate limiting as the server runs it: one BucketTable in shared
 * memory for every UDP thread, a ResponseLimiter per thread, and on the main
 * thread the totals for /metrics and the summary log line.
 *
 * The summary is itself rate-limited: at most one line every `summaryMs`
 * (10 s) while responses are being limited, naming the prefixes limited most
 * (top 5) with their counts, and one line when limiting has stopped (a whole
 * period without a limited response). Nothing is logged per response.
 */
import type { Logger } from '../observability/log.ts';
import { RESPONSE_CLASS_NAMES, RESPONSE_CLASSES } from '../rrl/classify.ts';
import { Action, ACTIONS, ResponseLimiter, TALLY_KEYS, type RrlReport, type RrlSettings } from '../rrl/limiter.ts';
import { BucketTable } from '../rrl/table.ts';

/** What a UDP worker needs to limit in the same buckets (WorkerSetup.rrl). */
export interface RrlShared {
  settings: RrlSettings;
  table: SharedArrayBuffer;
}

/** A thread's limiter over the shared table; undefined when RRL is off (no work at all on the hot path). */
export function limiterFor(shared: RrlShared | undefined): ResponseLimiter | undefined {
  if (!shared || shared.settings.mode === 'off') return undefined;
  return new ResponseLimiter(shared.settings, new BucketTable(shared.table));
}

export const SUMMARY_EVERY_MS = 10_000;
/** Prefixes named in a summary line. */
const TOP = 5;
/** Prefixes the main thread tallies per period, over all threads (the rest are "other"). */
const PERIOD_KEYS = 4 * TALLY_KEYS;

/** Counters as /metrics shows them (Metrics.setRateLimit). */
export interface RrlTotals {
  readonly dropped: Record<string, number>;
  readonly slipped: Record<string, number>;
  readonly wouldDrop: Record<string, number>;
  readonly wouldSlip: Record<string, number>;
}

export class RateLimiting {
  readonly shared: RrlShared | undefined;
  /** The main thread's limiter (its UDP sockets). */
  readonly limiter: ResponseLimiter | undefined;
  private readonly log: Logger;
  private readonly totals = new Float64Array(ACTIONS * RESPONSE_CLASSES);
  private readonly period = new Map<string, number>();
  private periodOther = 0;
  private periodCounts = new Float64Array(ACTIONS * RESPONSE_CLASSES);
  private active = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(settings: RrlSettings, log: Logger, summaryMs = SUMMARY_EVERY_MS) {
    this.log = log;
    if (settings.mode === 'off') return;
    const table = new BucketTable(settings.tableSize);
    this.shared = { settings, table: table.buffer };
    this.limiter = new ResponseLimiter(settings, table);
    this.timer = setInterval(() => this.summarise(), summaryMs);
    this.timer.unref();
    log.info({ mode: settings.mode, buckets: table.capacity, tableBytes: table.bytes, responsesPerSecond: settings.responsesPerSecond, window: settings.window, slip: settings.slip }, 'response rate limiting');
  }

  /** Adds what a thread limited (a worker's report, or the main limiter's). */
  add(report: RrlReport | undefined): void {
    if (!report) return;
    for (let i = 0; i < report.counts.length; i++) {
      this.totals[i] = this.totals[i]! + report.counts[i]!;
      this.periodCounts[i] = this.periodCounts[i]! + report.counts[i]!;
    }
    for (const [prefix, n] of report.prefixes) {
      const had = this.period.get(prefix);
      if (had !== undefined) this.period.set(prefix, had + n);
      else if (this.period.size < PERIOD_KEYS) this.period.set(prefix, n);
      else this.periodOther += n;
    }
    this.periodOther += report.other;
  }

  /** Totals so far by action and class, the main thread's own included. */
  totalsNow(): RrlTotals {
    this.add(this.limiter?.take());
    const pick = (action: number) => Object.fromEntries(RESPONSE_CLASS_NAMES.map((name, cls) => [name, this.totals[action * RESPONSE_CLASSES + cls]!]));
    return { dropped: pick(Action.DROPPED), slipped: pick(Action.SLIPPED), wouldDrop: pick(Action.WOULD_DROP), wouldSlip: pick(Action.WOULD_SLIP) };
  }

  /** Writes the period's summary line (if anything was limited) and starts a new period. */
  summarise(): void {
    this.add(this.limiter?.take());
    const counts = this.periodCounts;
    let limited = 0;
    for (const n of counts) limited += n;
    if (limited === 0) {
      if (this.active) this.log.info('response rate limiting stopped: nothing limited in the last period');
      this.active = false;
      return;
    }
    this.active = true;
    const byClass: Record<string, number> = {};
    RESPONSE_CLASS_NAMES.forEach((name, cls) => {
      let n = 0;
      for (let action = 0; action < ACTIONS; action++) n += counts[action * RESPONSE_CLASSES + cls]!;
      if (n > 0) byClass[name] = n;
    });
    const sum = (action: number) => counts.slice(action * RESPONSE_CLASSES, (action + 1) * RESPONSE_CLASSES).reduce((a, b) => a + b, 0);
    const top = [...this.period].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([prefix, responses]) => ({ prefix, responses }));
    const logOnly = this.shared?.settings.mode === 'log-only';
    this.log.warn(
      {
        mode: this.shared?.settings.mode,
        ...(logOnly ? { wouldDrop: sum(Action.WOULD_DROP), wouldSlip: sum(Action.WOULD_SLIP) } : { dropped: sum(Action.DROPPED), slipped: sum(Action.SLIPPED) }),
        byClass,
        top,
        prefixes: this.period.size + (this.periodOther > 0 ? 1 : 0),
        otherResponses: this.periodOther,
      },
      logOnly ? 'response rate limiting (log-only): responses over the limit, sent anyway' : 'response rate limiting: responses dropped or truncated',
    );
    this.periodCounts = new Float64Array(ACTIONS * RESPONSE_CLASSES);
    this.period.clear();
    this.periodOther = 0;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
