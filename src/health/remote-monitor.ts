/**
 * The health monitor as the answering thread sees it when the monitor runs
 * in the probing thread (monitor-worker.ts, monitor-host.ts): the same API as
 * HealthMonitor (MonitorApi) over a mirror of every check's state.
 *
 * Why: the answering thread also answers UDP. With the schedule here and only
 * the probes in a worker, 5,000 checks a second meant 5,000 timers, promises,
 * abort controllers and outcome objects a second on this thread, most of them
 * living about an interval: they survived young-generation collections, which
 * then took 20-30 ms each and delayed answers by as much. Now this thread
 * sends what to watch (once, and on change) and receives one message per
 * BATCH_MS with the completed checks as rows of numbers, applied in place to
 * the mirror: no object per probe.
 *
 * Synchronous like HealthMonitor: setTargets and setProbing change the mirror
 * at once (new targets are provisionally up with no result; probing off resets
 * to no result) and the probing thread follows; results of a check the thread
 * started before it heard of a change are recognised by their generation and
 * dropped. firstRound() resolves when the probing thread's first round after
 * the last change is over (its results are in the mirror by then).
 * timeToPossibleChange counts down from the time the probing thread reported
 * with the last result (the plan it made for the next check).
 *
 * A probing thread that dies is restarted (100 ms doubling to 5 s while it
 * keeps dying, reset after a minute without a death) and given every target
 * with the mirror's state, so verdicts and fall/rise counts survive; its first
 * checks run at once. When no worker can be created, the host runs in this
 * thread (the old cost, but it works).
 */
import { Worker } from 'node:worker_threads';
// Types only: undici (through checkers.ts) is loaded on this thread only when no worker can start.
import type { CheckOutcome } from './checkers.ts';
import type { IcmpLog } from './icmp/icmp-checker.ts';
import { MonitorHost } from './monitor-host.ts';
import { Flag, ROW, Row, type AddedTarget, type FromMonitor, type RestoredState, type ToMonitor } from './monitor-protocol.ts';
import { copyOutcome, realScheduler, type MemberHealth, type MutableOutcome, type MonitorApi, type SetTargetsOptions, type TargetState } from './monitor.ts';
import type { CheckTarget } from './target.ts';
import { PROBING_RESOURCE_LIMITS } from './probing-heap.ts';

/** After this many probing threads in a row die before saying anything, the checks run in the answering thread. */
export const SILENT_DEATHS_BEFORE_FALLBACK = 3;

export interface RemoteMonitorDeps {
  /** On every change of measured health (a copy of the state, the previous health, the reason). */
  onChange?: (state: TargetState, previous: MemberHealth, reason: string) => void;
  /**
   * After every completed check. `state` and `outcome` are the mirror's own
   * objects, updated in place by later results: read them in the call, do not keep them.
   */
  onResult?: (state: TargetState, outcome: CheckOutcome) => void;
  /** The probing thread died; it is restarted after `restartInMs`. */
  onCrash?: (error: unknown, restartInMs: number) => void;
  /** No worker thread could be started: the monitor runs in this thread. */
  onFallback?: (error: unknown) => void;
  /** What the checker logs (fping dying, say). */
  onLog?: IcmpLog;
  /** Local address probes of its family connect from (--check-source-address). */
  sourceAddress?: string;
  /** Bound on close(): after it the worker is terminated (default 5000 ms). */
  closeTimeoutMs?: number;
  /**
   * The probing side in this thread instead of a worker (tests: a MonitorHost
   * with a scripted checker and a manual clock); `post` delivers its messages.
   */
  host?: (post: (m: FromMonitor) => void) => LocalHost;
  /** The clock (default: realScheduler's); the probing side must use the same one. */
  clock?: () => number;
}

/** The probing side when it runs in this thread. */
export interface LocalHost {
  handle(m: ToMonitor): void;
  close(): Promise<void>;
}

interface Mirror {
  slot: number;
  target: CheckTarget;
  state: TargetState;
  /** Absent fields are undefined (the shape stays fixed: writes are in place). */
  outcome: MutableOutcome;
  hasOutcome: boolean;
  probing: boolean;
  gen: number;
  /** When the health could next change (epoch ms), as the probing thread planned it with the last result. */
  changeAt: number;
}

export class RemoteMonitor implements MonitorApi {
  readonly #d: RemoteMonitorDeps;
  readonly #byKey = new Map<string, Mirror>();
  readonly #bySlot = new Map<number, Mirror>();
  #nextSlot = 1;
  #seq = 0;
  /** The last `seq` whose first round the probing thread reported over. */
  #firstDone = 0;
  #firstWaiters: { seq: number; resolve: () => void }[] = [];
  #worker: Worker | undefined;
  /** The host in this thread when no worker can be started. */
  #local: { host: LocalHost } | undefined;
  /** The in-thread checker being loaded (no worker could start). */
  #fallbackLoading: Promise<void> | undefined;
  #started = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #restarts = 0;
  /** Probing threads in a row that exited without a message (see SILENT_DEATHS_BEFORE_FALLBACK). */
  #silentDeaths = 0;
  readonly #recentDeaths: number[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;

  readonly #now: () => number;

  constructor(d: RemoteMonitorDeps = {}) {
    this.#d = d;
    this.#now = d.clock ?? realScheduler.now;
  }

  /** How many times the probing thread was restarted after dying. */
  get restarts(): number {
    return this.#restarts;
  }

  /** The running worker (tests make it die). */
  workerForTest(): Worker | undefined {
    return this.#worker;
  }

  setTargets(targets: readonly CheckTarget[], options: SetTargetsOptions = {}): void {
    if (this.#closed) return;
    const wanted = new Map<string, CheckTarget>();
    for (const t of targets) if (!wanted.has(t.key)) wanted.set(t.key, t);
    const remove: number[] = [];
    for (const [key, m] of this.#byKey) {
      if (wanted.has(key)) continue;
      this.#byKey.delete(key);
      this.#bySlot.delete(m.slot);
      remove.push(m.slot);
    }
    const add: AddedTarget[] = [];
    const now = this.#now();
    for (const [key, target] of wanted) {
      if (this.#byKey.has(key)) continue;
      const probe = options.probe?.(target) ?? true;
      const m: Mirror = {
        slot: this.#nextSlot++,
        target,
        state: { key, address: target.address, name: target.name, health: 'up', since: now, consecutiveOk: 0, consecutiveFail: 0, checks: 0 },
        outcome: { ok: false, detail: '', status: undefined, latencyMs: 0, load: undefined },
        hasOutcome: false,
        probing: probe,
        gen: 0,
        changeAt: 0,
      };
      this.#byKey.set(key, m);
      this.#bySlot.set(m.slot, m);
      add.push({ slot: m.slot, target, probe, gen: 0 });
    }
    if (add.length === 0 && remove.length === 0) return;
    // The thread starts with the first targets (and is sent them all then): zones without health checks
    // never pay for its isolate (~40 MB).
    if (!this.#started) this.#start();
    else this.#send({ kind: 'targets', seq: ++this.#seq, add, remove });
  }

  firstRound(): Promise<void> {
    if (this.#closed || this.#firstDone >= this.#seq || !this.#started) return Promise.resolve();
    const seq = this.#seq;
    return new Promise((resolve) => this.#firstWaiters.push({ seq, resolve }));
  }

  setProbing(key: string, on: boolean): boolean {
    const m = this.#byKey.get(key);
    if (!m || this.#closed) return false;
    if (m.probing === on) return true;
    m.probing = on;
    m.gen++;
    if (!on) {
      const s = m.state;
      s.health = 'up';
      s.since = this.#now();
      s.consecutiveOk = 0;
      s.consecutiveFail = 0;
      s.checks = 0;
      delete s.lastCheckAt;
      delete s.lastOutcome;
      m.hasOutcome = false;
    }
    this.#send({ kind: 'probing', seq: ++this.#seq, slot: m.slot, on, gen: m.gen });
    return true;
  }

  probing(key: string): boolean {
    return this.#byKey.get(key)?.probing ?? false;
  }

  state(key: string): TargetState | undefined {
    const m = this.#byKey.get(key);
    return m ? this.#copy(m) : undefined;
  }

  states(): TargetState[] {
    return [...this.#byKey.values()].map((m) => this.#copy(m));
  }

  target(key: string): CheckTarget | undefined {
    return this.#byKey.get(key)?.target;
  }

  targets(): CheckTarget[] {
    return [...this.#byKey.values()].map((m) => m.target);
  }

  timeToPossibleChange(key: string): number {
    const m = this.#byKey.get(key);
    if (m && !m.probing) return Infinity;
    if (!m || m.state.checks === 0) return 0;
    return Math.max(0, m.changeAt - this.#now());
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      if (this.#restartTimer) clearTimeout(this.#restartTimer);
      this.#wakeFirst(Infinity);
      await this.#fallbackLoading;
      if (this.#local) return this.#local.host.close();
      const w = this.#worker;
      if (!w) return;
      // The thread closes its monitor and checker (every socket) and says so; past the bound it is terminated.
      await new Promise<void>((resolve) => {
        const bound = setTimeout(() => void w.terminate().then(() => resolve()), this.#d.closeTimeoutMs ?? 5000);
        const done = () => {
          clearTimeout(bound);
          resolve();
        };
        w.on('message', (m: FromMonitor) => m.kind === 'closed' && done());
        w.once('exit', done);
        w.postMessage({ kind: 'close' } satisfies ToMonitor);
      });
      await w.terminate();
      this.#worker = undefined;
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------------------------

  #copy(m: Mirror): TargetState {
    const c = { ...m.state };
    if (m.hasOutcome) c.lastOutcome = copyOutcome(m.outcome);
    return c;
  }

  #send(msg: ToMonitor): void {
    if (this.#local) this.#local.host.handle(msg);
    else if (this.#worker) this.#worker.postMessage(msg);
    // No thread now (it died, a restart is due): the restart sends the whole set.
  }

  #start(): void {
    this.#started = true;
    this.#restartTimer = undefined;
    if (this.#closed) return;
    if (this.#d.host) {
      this.#local = { host: this.#d.host((m) => this.#onMessage(m)) };
      this.#sendAll();
      return;
    }
    const file = import.meta.url.endsWith('.ts') ? './monitor-worker.ts' : './monitor-worker.js';
    const epochAtHr0 = this.#now() - Number(process.hrtime.bigint()) / 1e6;
    let w: Worker;
    try {
      w = new Worker(new URL(file, import.meta.url), { name: 'rrdns-health', resourceLimits: PROBING_RESOURCE_LIMITS, workerData: { sourceAddress: this.#d.sourceAddress, epochAtHr0 } });
    } catch (e) {
      this.#runHere(e);
      return;
    }
    // The monitor's timers never keep a process alive; neither does its thread.
    w.unref();
    this.#worker = w;
    let heard = false;
    w.on('message', (m: FromMonitor) => {
      heard = true;
      this.#onMessage(m);
    });
    w.on('error', () => {}); // 'exit' follows and decides
    w.once('exit', (code) => {
      if (this.#worker === w) this.#worker = undefined;
      if (this.#closed) return;
      const error = new Error(`health-check worker exited with code ${code}`);
      // A thread that dies before it says anything, again and again, will not start here (a broken
      // install, flags the thread cannot take): the checks run in this thread rather than never,
      // and the first round (which start() awaits) is not left waiting for a thread that never comes.
      this.#silentDeaths = heard ? 0 : this.#silentDeaths + 1;
      if (this.#silentDeaths >= SILENT_DEATHS_BEFORE_FALLBACK) this.#runHere(error);
      else this.#died(error);
    });
    this.#sendAll();
  }

  /** No probing thread: the same host runs in this thread, with the checker (and undici) loaded now. */
  #runHere(reason: unknown): void {
    this.#d.onFallback?.(reason);
    // What changes while the module loads is in the mirror: the whole set goes once the host is there.
    this.#fallbackLoading = import('./checkers.ts').then(
        ({ createChecker }) => {
          if (this.#closed) return;
          const checker = createChecker({ ...(this.#d.sourceAddress ? { sourceAddress: this.#d.sourceAddress } : {}), ...(this.#d.onLog ? { icmp: { log: this.#d.onLog } } : {}) });
          this.#local = { host: new MonitorHost({ check: checker.check, closeChecker: () => checker.close(), post: (m) => this.#onMessage(m) }) };
          this.#sendAll();
        },
        (err: unknown) => {
          // Neither a thread nor the module: nothing is probed (every target stays as it is, fail open); said once.
          this.#d.onLog?.('error', 'health checks cannot run: no worker thread and no checker module', { err: String(err) });
          this.#wakeFirst(Infinity);
        },
      );
  }

  /** A new thread gets every target, each with the state it had (nothing is lost with the old thread). */
  #sendAll(): void {
    const add: AddedTarget[] = [];
    for (const m of this.#byKey.values()) {
      const a: AddedTarget = { slot: m.slot, target: m.target, probe: m.probing, gen: m.gen };
      if (m.state.checks > 0) a.restore = this.#restored(m);
      add.push(a);
    }
    this.#send({ kind: 'targets', seq: ++this.#seq, add, remove: [] });
  }

  #restored(m: Mirror): RestoredState {
    const s = m.state;
    const r: RestoredState = { health: s.health, since: s.since, consecutiveOk: s.consecutiveOk, consecutiveFail: s.consecutiveFail, checks: s.checks };
    if (s.lastCheckAt !== undefined) r.lastCheckAt = s.lastCheckAt;
    if (m.hasOutcome) r.lastOutcome = copyOutcome(m.outcome);
    return r;
  }

  #died(error: unknown): void {
    this.#restarts++;
    const now = Date.now();
    this.#recentDeaths.push(now);
    while (this.#recentDeaths.length > 0 && this.#recentDeaths[0]! < now - 60_000) this.#recentDeaths.shift();
    const delay = Math.min(5000, 100 * 2 ** (this.#recentDeaths.length - 1));
    this.#d.onCrash?.(error, delay);
    this.#restartTimer = setTimeout(() => this.#start(), delay);
    this.#restartTimer.unref();
  }

  #onMessage(m: FromMonitor): void {
    if (m.kind === 'results') this.#apply(m.rows, m.texts);
    else if (m.kind === 'first') this.#wakeFirst(m.seq);
    else if (m.kind === 'log') this.#d.onLog?.(m.level, m.msg, m.fields);
  }

  #wakeFirst(seq: number): void {
    this.#firstDone = Math.max(this.#firstDone, seq);
    if (this.#firstWaiters.length === 0) return;
    const waiting = this.#firstWaiters;
    this.#firstWaiters = [];
    for (const w of waiting) {
      if (w.seq <= seq) w.resolve();
      else this.#firstWaiters.push(w);
    }
  }

  /**
   * Results, in the order the checks completed: applied in place, then the
   * callbacks (as HealthMonitor calls them). Allocation-free per row: integers
   * are read as int32 (small integers, no number boxes), doubles go to fields
   * that only ever hold doubles (written in place), no closure per call.
   */
  #apply(rows: Float64Array, texts: string[]): void {
    let t = 0;
    for (let at = 0; at < rows.length; at += ROW) {
      const flags = rows[at + Row.flags]! | 0;
      const detail = flags & Flag.detail ? texts[t++]! : undefined;
      const reason = flags & Flag.changed ? texts[t++]! : undefined;
      const m = this.#bySlot.get(rows[at + Row.slot]! | 0);
      // Gone (a reload removed it), or a check from before probing went off or on again: not ours.
      if (m === undefined || m.gen !== (rows[at + Row.gen]! | 0) || !m.probing || this.#closed) continue;
      const s = m.state;
      const o = m.outcome;
      const previous = s.health;
      o.ok = (flags & Flag.ok) !== 0;
      if (detail !== undefined) o.detail = detail;
      o.status = flags & Flag.hasStatus ? rows[at + Row.status]! | 0 : undefined;
      o.latencyMs = rows[at + Row.latencyMs]!;
      o.load = flags & Flag.hasLoad ? rows[at + Row.load]! : undefined;
      s.health = flags & Flag.down ? 'down' : 'up';
      s.checks = rows[at + Row.checks]! | 0;
      s.consecutiveOk = rows[at + Row.consecutiveOk]! | 0;
      s.consecutiveFail = rows[at + Row.consecutiveFail]! | 0;
      s.since = rows[at + Row.since]!;
      s.lastCheckAt = rows[at + Row.lastCheckAt]!;
      if (!m.hasOutcome) {
        m.hasOutcome = true;
        s.lastOutcome = o as CheckOutcome;
      }
      m.changeAt = rows[at + Row.changeAt]!;
      try {
        if (reason !== undefined) this.#d.onChange?.(this.#copy(m), previous, reason);
      } catch (e) {
        this.#warn(e);
      }
      try {
        this.#d.onResult?.(s, o as CheckOutcome);
      } catch (e) {
        this.#warn(e);
      }
    }
  }

  /** A throwing callback must not stop the monitor; its error is reported asynchronously as a warning. */
  #warn(e: unknown): void {
    process.emitWarning(`health monitor callback threw: ${String(e)}`);
  }
}
