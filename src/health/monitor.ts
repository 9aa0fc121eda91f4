/**
 * The health monitor: runs each distinct check (one per target key) on its own
 * schedule and turns results into measured health with fall/rise hysteresis.
 *
 * Scheduling. Targets added together start their first check at once (at most
 * `maxConcurrentFirstChecks` in flight, so sockets stay bounded). The first
 * round ends when every target has a result, or one check timeout (the
 * longest of those added) plus `stuckGraceMs` after they were added,
 * whichever comes first: however many targets there are, start-up and a
 * reload wait at most that long (the grace lets checks started at once
 * deliver their own timeout result first). Targets still without a result then stay provisionally up (fail
 * open) until their check completes;
 * after that, targets sharing an interval are spread evenly over it (spread.ts): the k-th of
 * M new targets is checked at t0 + phase + n·interval, phase = k·interval/M.
 * Times are planned from t0, never from completions, so nothing drifts; a slot
 * that comes while the previous check still runs is skipped, so one target never
 * has two checks in flight. With a `fastInterval` (recheck.ts), a target whose
 * health is settling is re-checked at that interval, off the grid, and returns
 * to its phase once settled.
 *
 * Probing. A target can be watched without being probed (cold standby, a check
 * another instance runs): added with `setTargets(…, { probe })` returning false,
 * or switched with `setProbing(key, false)`. Such a target has no result
 * (checks 0), no timer and no check in flight, firstRound() does not wait for it
 * and its health cannot change on its own (timeToPossibleChange: Infinity).
 * `setProbing(key, true)` starts a first check at once (like a newly added
 * target: it counts in the first round and its concurrency cap), then the
 * target goes back to its planned phase.
 *
 * Health. Before its first result a target is provisionally 'up' (checks = 0);
 * the first result decides directly, afterwards `fall` consecutive failures take
 * it down and `rise` consecutive successes bring it back. Overrides (drain,
 * force-up/down) are applied by the DNS layer, not here.
 */
import type { CheckOutcome, Checker } from './checkers.ts';
import { describeError } from './describe-error.ts';
import type { CheckTarget } from './target.ts';
import { nextSlot, spreadPhases } from './spread.ts';
import { earliestChange, nextCheck, settling } from './recheck.ts';
import { monotonicEpochMs } from '../zone/clock.ts';

export type MemberHealth = 'up' | 'down';
export type Override = 'drain' | 'force-up' | 'force-down';

export interface TargetState {
  key: string;
  address: string;
  name: string;
  health: MemberHealth;
  /** When `health` took its current value (epoch ms; the time the target was added until a first result changes it). */
  since: number;
  /** Start time of the last completed check (epoch ms). */
  lastCheckAt?: number;
  lastOutcome?: CheckOutcome;
  consecutiveOk: number;
  consecutiveFail: number;
  /** Completed checks since the target was added. */
  checks: number;
}

export interface Timer {
  cancel(): void;
}

export interface Scheduler {
  /** Milliseconds since the epoch; must not go backwards. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
}

/**
 * Real time: a monotonic clock expressed as epoch ms (wall-clock steps do not
 * disturb the schedule) and unref'd timers (the monitor never keeps a process alive).
 */
export const realScheduler: Scheduler = {
  now: monotonicEpochMs,
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

export interface HealthMonitorDeps {
  check: Checker;
  scheduler?: Scheduler;
  /** Called on every change of measured health, with a reason naming the outcome. */
  onChange?: (state: TargetState, previous: MemberHealth, reason: string) => void;
  /** Called after every completed check, with the monitor's own state: read it during the call, copy what you keep. */
  onResult?: (state: TargetState, outcome: CheckOutcome) => void;
  /** First checks in flight at once (default 64). */
  maxConcurrentFirstChecks?: number;
  /**
   * Extra time past a check's timeout after which the monitor stops waiting for a
   * checker that ignored its abort signal and records a failure (default 1000 ms).
   */
  stuckGraceMs?: number;
}

interface Running {
  controller: AbortController;
  startedAt: number;
}

/**
 * Aborts the entry's controller (a check in flight stops) and drops it: an
 * aborted signal cannot be used again. Until then one controller serves every
 * check of the entry (the checkers remove their listener when a check ends):
 * one per probe was an AbortController and its EventTarget 5,000 times a second.
 */
const abortChecks = (entry: Entry): void => {
  const c = entry.controller;
  entry.controller = undefined;
  c?.abort();
};

export interface SetTargetsOptions {
  /**
   * Whether a newly added target is probed from the start (default: yes). Only
   * targets added by this call: surviving ones keep their probing state.
   */
  probe?: (target: CheckTarget) => boolean;
  /**
   * The state a newly added target starts from instead of "no result" (a
   * restarted probing thread takes over the verdicts it had: remote-monitor.ts).
   * Its first check still runs at once; the result then counts with fall/rise.
   */
  restore?: (target: CheckTarget) => Partial<Omit<TargetState, 'key' | 'address' | 'name'>> | undefined;
}

/** What the server reads and drives: this monitor, or one that runs in the probing thread (remote-monitor.ts). */
export type MonitorApi = Pick<HealthMonitor, 'setTargets' | 'firstRound' | 'setProbing' | 'probing' | 'state' | 'states' | 'target' | 'targets' | 'timeToPossibleChange' | 'close'>;

interface Entry {
  target: CheckTarget;
  state: TargetState;
  interval: number;
  /** Planned start of the next periodic check (a slot of the target's grid). */
  nextAt: number;
  /** When the timer set now fires: nextAt, or a fast re-check before it. */
  timerAt: number;
  timer?: Timer | undefined;
  running?: Running | undefined;
  /** The signal this entry's checks get (see abortChecks); undefined until the next check needs one. */
  controller: AbortController | undefined;
  /** Counted in #pendingFirst: probed, first check since added (or since probing went on) not completed. */
  pending: boolean;
  active: boolean;
  /** Probed now (see setProbing). */
  probing: boolean;
  /** Bumped whenever probing goes off or on: a check or queue slot of an older generation is stale. */
  gen: number;
  /** Whether the timer set now is a fast re-check (off the grid). */
  fastNext: boolean;
  /** The periodic timer's callback, made once per entry. */
  readonly onTimer: () => void;
  /**
   * The last result, overwritten in place by each check (state.lastOutcome is
   * it once there is one): at 5,000 probes a second, an outcome object per probe
   * kept for an interval was young garbage that lived just long enough to be
   * copied and promoted.
   */
  outcome: MutableOutcome | undefined;
}

/** CheckOutcome with every field always present (a stable shape, updated in place); absent ones are undefined. */
export interface MutableOutcome {
  ok: boolean;
  detail: string;
  status: number | undefined;
  latencyMs: number;
  load: number | undefined;
}

/** A CheckOutcome of its own, without the fields that are absent. */
export const copyOutcome = (o: CheckOutcome | MutableOutcome): CheckOutcome => {
  const c: CheckOutcome = { ok: o.ok, detail: o.detail, latencyMs: o.latencyMs };
  if (o.status !== undefined) c.status = o.status;
  if (o.load !== undefined) c.load = o.load;
  return c;
};

interface Queued {
  entry: Entry;
  gen: number;
}

const copyState = (s: TargetState): TargetState => {
  const c = { ...s };
  if (s.lastOutcome) c.lastOutcome = copyOutcome(s.lastOutcome);
  return c;
};

const plural = (n: number, word: string) => `${n} consecutive ${word}${n === 1 ? '' : word.endsWith('s') ? 'es' : 's'}`;

export class HealthMonitor {
  readonly #check: Checker;
  readonly #sched: Scheduler;
  readonly #onChange: HealthMonitorDeps['onChange'];
  readonly #onResult: HealthMonitorDeps['onResult'];
  readonly #maxFirst: number;
  readonly #grace: number;

  readonly #entries = new Map<string, Entry>();
  /** Entries waiting for their first check (FIFO, consumed from #queueHead). */
  #queue: Queued[] = [];
  #queueHead = 0;
  #firstInFlight = 0;
  /** Active, probed entries whose first check has not completed. */
  #pendingFirst = 0;
  #firstWaiters: (() => void)[] = [];
  /** When the current first round ends at the latest (scheduler time), and its timer. */
  #firstDeadline = -Infinity;
  #firstDeadlineTimer: Timer | undefined;
  #firstRoundExpired = false;
  /** Checks in flight, including those of removed targets (close() waits for them). */
  #inFlight = 0;
  /** Set by close() while checks are in flight: called when the last one settles. */
  #drained: (() => void) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(deps: HealthMonitorDeps) {
    this.#check = deps.check;
    this.#sched = deps.scheduler ?? realScheduler;
    this.#onChange = deps.onChange;
    this.#onResult = deps.onResult;
    this.#maxFirst = Math.max(1, Math.floor(deps.maxConcurrentFirstChecks ?? 64));
    this.#grace = Math.max(0, deps.stuckGraceMs ?? 1000);
  }

  /** Replace the watched set (zone load/reload). Surviving keys keep their state and schedule; new ones start; removed ones stop. */
  setTargets(targets: readonly CheckTarget[], options: SetTargetsOptions = {}): void {
    if (this.#closed) return;
    const wanted = new Map<string, CheckTarget>();
    for (const t of targets) if (!wanted.has(t.key)) wanted.set(t.key, t);

    for (const [key, entry] of this.#entries) {
      if (wanted.has(key)) continue;
      entry.active = false;
      entry.timer?.cancel();
      entry.timer = undefined;
      abortChecks(entry);
      this.#clearPending(entry);
      this.#entries.delete(key);
    }

    const t0 = this.#sched.now();
    const added = new Map<number, Entry[]>();
    for (const [key, target] of wanted) {
      if (this.#entries.has(key)) continue;
      const interval = target.config.interval;
      const probing = options.probe?.(target) ?? true;
      const entry: Entry = {
        target,
        interval,
        nextAt: t0 + interval,
        timerAt: t0 + interval,
        pending: probing,
        active: true,
        probing,
        gen: 0,
        fastNext: false,
        controller: undefined,
        onTimer: () => this.#onTimer(entry),
        outcome: undefined,
        state: {
          key,
          address: target.address,
          name: target.name,
          health: 'up',
          since: t0,
          consecutiveOk: 0,
          consecutiveFail: 0,
          checks: 0,
        },
      };
      const restored = options.restore?.(target);
      if (restored) {
        Object.assign(entry.state, restored);
        if (restored.lastOutcome) entry.state.lastOutcome = entry.outcome = { status: undefined, load: undefined, ...restored.lastOutcome };
      }
      this.#entries.set(key, entry);
      if (probing) this.#pendingFirst++;
      let group = added.get(interval);
      if (!group) added.set(interval, (group = []));
      group.push(entry);
    }
    let longestTimeout = -1;
    for (const [interval, group] of added) {
      const phases = spreadPhases(group.length, interval);
      // Unprobed targets get their phase too: it is where they go when probing starts.
      group.forEach((entry, k) => {
        entry.nextAt = t0 + interval + phases[k]!;
        if (!entry.probing) return;
        longestTimeout = Math.max(longestTimeout, entry.target.config.timeout);
        this.#queue.push({ entry, gen: entry.gen });
      });
    }
    this.#pump();
    // Past timeout + grace even a checker that ignores its abort has a result (the guard in #run), so every check
    // started at once is in; later ones (over the concurrency cap) are not waited for.
    if (longestTimeout >= 0) this.#extendFirstDeadline(t0 + longestTimeout + this.#grace);
    this.#settleFirstRound();
  }

  /**
   * Resolves when every watched target has completed at least one check since
   * it was added, or one check timeout plus stuckGraceMs after the last targets were added,
   * whichever is first (or when the monitor closed).
   */
  firstRound(): Promise<void> {
    if (this.#closed || this.#pendingFirst === 0 || this.#firstRoundExpired) return Promise.resolve();
    return new Promise((resolve) => this.#firstWaiters.push(resolve));
  }

  /**
   * Switches probing of `key` (idempotent; false for an unknown key). Off: its
   * timer is cancelled, a check in flight is aborted (its result is ignored) and
   * its state reset to "no result" (health provisionally up, checks 0, no last
   * outcome), without an onChange call: the caller knows and re-reads. On: a
   * first check at once (as for a newly added target: counted in the first
   * round, bounded by maxConcurrentFirstChecks), then the target's normal
   * schedule, back on its planned phase (the next slot of it at least half an
   * interval after the switch, so the two first checks are not back to back).
   */
  setProbing(key: string, on: boolean): boolean {
    const entry = this.#entries.get(key);
    if (!entry || this.#closed) return false;
    if (entry.probing === on) return true;
    entry.probing = on;
    entry.gen++;
    const now = this.#sched.now();
    if (!on) {
      entry.timer?.cancel();
      entry.timer = undefined;
      abortChecks(entry);
      entry.running = undefined;
      this.#clearPending(entry);
      const s = entry.state;
      s.health = 'up';
      s.since = now;
      s.consecutiveOk = 0;
      s.consecutiveFail = 0;
      s.checks = 0;
      delete s.lastCheckAt;
      delete s.lastOutcome;
      entry.outcome = undefined;
      this.#settleFirstRound();
      return true;
    }
    entry.nextAt = nextSlot(entry.nextAt, now + entry.interval / 2, entry.interval);
    entry.pending = true;
    this.#pendingFirst++;
    this.#queue.push({ entry, gen: entry.gen });
    this.#pump();
    this.#extendFirstDeadline(now + entry.target.config.timeout + this.#grace);
    this.#settleFirstRound();
    return true;
  }

  /** Whether `key` is probed now (false for an unknown key). */
  probing(key: string): boolean {
    return this.#entries.get(key)?.probing ?? false;
  }

  state(key: string): TargetState | undefined {
    const e = this.#entries.get(key);
    return e ? copyState(e.state) : undefined;
  }

  states(): TargetState[] {
    return [...this.#entries.values()].map((e) => copyState(e.state));
  }

  /** The target watched under `key` (the first one given with that key). */
  target(key: string): CheckTarget | undefined {
    return this.#entries.get(key)?.target;
  }

  /** Every target watched now. */
  targets(): CheckTarget[] {
    return [...this.#entries.values()].map((e) => e.target);
  }

  /**
   * Time in ms until `key`'s health could next change: the start of the check
   * whose result could flip it, i.e. interval × checks still needed (fall −
   * consecutiveFail while up, rise − consecutiveOk while down) minus the time
   * since the last check started — computed from the actual plan (the check in
   * flight, else the next planned one), which equals that formula in steady
   * state and stays right in the first round. With a fastInterval the checks
   * after the next one are fast re-checks (recheck.ts earliestChange: each at
   * the sooner of fastInterval and the next grid slot). 0 before the first result and for
   * unknown keys; Infinity for a target not probed (nothing changes it until
   * probing starts, which its watcher decides).
   */
  timeToPossibleChange(key: string): number {
    const e = this.#entries.get(key);
    if (e && !e.probing) return Infinity;
    if (!e || e.state.checks === 0) return 0;
    const s = e.state;
    const cfg = e.target.config;
    const needed = Math.max(1, s.health === 'up' ? cfg.fall - s.consecutiveFail : cfg.rise - s.consecutiveOk);
    const firstAt = e.running ? e.running.startedAt : e.timerAt;
    const at = earliestChange({ firstAt, gridAt: e.nextAt, interval: e.interval, fastInterval: cfg.fastInterval, needed });
    return Math.max(0, at - this.#sched.now());
  }

  /** Idempotent: cancels timers, aborts in-flight checks and resolves once they have settled. Does not close the checker. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    for (const e of this.#entries.values()) {
      e.active = false;
      e.timer?.cancel();
      e.timer = undefined;
      abortChecks(e);
    }
    this.#queue = [];
    this.#queueHead = 0;
    this.#firstDeadlineTimer?.cancel();
    this.#firstDeadlineTimer = undefined;
    this.#resolveFirstWaiters();
    this.#closing = this.#inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#drained = resolve));
    return this.#closing;
  }

  // -------------------------------------------------------------------------------------------

  #pump(): void {
    while (!this.#closed && this.#firstInFlight < this.#maxFirst && this.#queueHead < this.#queue.length) {
      const { entry, gen } = this.#queue[this.#queueHead++]!;
      if (!entry.active || !entry.probing || entry.gen !== gen) continue;
      this.#firstInFlight++;
      this.#run(entry, true);
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    }
  }

  #run(entry: Entry, first: boolean): void {
    const startedAt = this.#sched.now();
    const gen = entry.gen;
    const controller = (entry.controller ??= new AbortController());
    const timeout = entry.target.config.timeout;
    let settled = false;
    this.#inFlight++;

    const finish = (outcome: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      guard.cancel();
      if (entry.running === running) entry.running = undefined;
      if (--this.#inFlight === 0) this.#drained?.();
      if (first) this.#firstInFlight--;
      if (!this.#closed && entry.active && entry.probing && entry.gen === gen) {
        this.#apply(entry, outcome, startedAt);
        if (first) this.#clearPending(entry);
        this.#scheduleNext(entry, startedAt);
      }
      if (first) this.#pump();
      this.#settleFirstRound();
    };

    const guard = this.#sched.setTimeout(() => {
      // This check's controller, unless the entry moved on to another one meanwhile.
      if (entry.controller === controller) abortChecks(entry);
      else controller.abort();
      finish({
        ok: false,
        detail: `no result within ${timeout}ms (checker ignored its timeout)`,
        latencyMs: this.#sched.now() - startedAt,
      });
    }, timeout + this.#grace);
    const running: Running = { controller, startedAt };
    entry.running = running;

    let result: Promise<CheckOutcome>;
    try {
      result = Promise.resolve(this.#check(entry.target, controller.signal));
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(finish, (e: unknown) =>
      finish({ ok: false, detail: `checker error: ${describeError(e)}`, latencyMs: this.#sched.now() - startedAt }),
    );
  }

  #scheduleNext(entry: Entry, lastStartedAt: number): void {
    const now = this.#sched.now();
    // Slots missed while the check ran (or waited in the first-round queue) are skipped, keeping the phase;
    // a settling target with a fastInterval is re-checked sooner, off the grid.
    const next = nextCheck({
      gridAt: entry.nextAt,
      now,
      interval: entry.interval,
      lastStartedAt,
      fastInterval: entry.target.config.fastInterval,
      settling: settling(entry.state),
    });
    entry.nextAt = next.gridAt;
    entry.timerAt = next.at;
    entry.fastNext = next.fast;
    entry.timer = this.#sched.setTimeout(entry.onTimer, next.at - now);
  }

  #onTimer(entry: Entry): void {
    entry.timer = undefined;
    if (this.#closed || !entry.active || !entry.probing) return;
    if (!entry.fastNext) entry.nextAt += entry.interval;
    this.#run(entry, false);
  }

  #apply(entry: Entry, outcome: CheckOutcome, startedAt: number): void {
    const s = entry.state;
    const { fall, rise } = entry.target.config;
    const previous = s.health;
    s.checks++;
    s.lastCheckAt = startedAt;
    const kept = entry.outcome;
    if (kept === undefined) {
      s.lastOutcome = entry.outcome = { ok: outcome.ok, detail: outcome.detail, status: outcome.status, latencyMs: outcome.latencyMs, load: outcome.load };
    } else {
      kept.ok = outcome.ok;
      kept.detail = outcome.detail;
      kept.status = outcome.status;
      kept.latencyMs = outcome.latencyMs;
      kept.load = outcome.load;
    }
    if (outcome.ok) {
      s.consecutiveOk++;
      s.consecutiveFail = 0;
    } else {
      s.consecutiveFail++;
      s.consecutiveOk = 0;
    }
    let reason: string | undefined;
    if (s.checks === 1) {
      s.health = outcome.ok ? 'up' : 'down';
      if (s.health !== previous) reason = `first check: ${outcome.detail}`;
    } else if (previous === 'up' && s.consecutiveFail >= fall) {
      s.health = 'down';
      reason = `${plural(s.consecutiveFail, 'failure')}: ${outcome.detail}`;
    } else if (previous === 'down' && s.consecutiveOk >= rise) {
      s.health = 'up';
      reason = `${plural(s.consecutiveOk, 'success')}: ${outcome.detail}`;
    }
    if (reason !== undefined) {
      s.since = this.#sched.now();
      this.#safely(() => this.#onChange?.(copyState(s), previous, reason));
    }
    // The live state, not a copy (one per probe was garbage): onResult reads it during the call and keeps nothing of it.
    if (this.#onResult) {
      try {
        this.#onResult(s, outcome);
      } catch (e) {
        this.#callbackThrew(e);
      }
    }
  }

  /** New targets: the first round lasts at least until `at`. */
  #extendFirstDeadline(at: number): void {
    this.#firstRoundExpired = false;
    if (at <= this.#firstDeadline && this.#firstDeadlineTimer) return;
    this.#firstDeadline = Math.max(this.#firstDeadline, at);
    this.#firstDeadlineTimer?.cancel();
    this.#firstDeadlineTimer = this.#sched.setTimeout(() => {
      this.#firstDeadlineTimer = undefined;
      this.#firstRoundExpired = true;
      this.#resolveFirstWaiters();
    }, this.#firstDeadline - this.#sched.now());
  }

  #clearPending(entry: Entry): void {
    if (!entry.pending) return;
    entry.pending = false;
    this.#pendingFirst--;
  }

  #settleFirstRound(): void {
    if (this.#pendingFirst === 0) this.#resolveFirstWaiters();
  }

  #resolveFirstWaiters(): void {
    const waiters = this.#firstWaiters;
    this.#firstWaiters = [];
    for (const w of waiters) w();
  }

  /** A throwing callback must not stop the monitor; its error is reported asynchronously as a warning. */
  #safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#callbackThrew(e);
    }
  }

  #callbackThrew(e: unknown): void {
    process.emitWarning(`health monitor callback threw: ${describeError(e)}`);
  }
}
