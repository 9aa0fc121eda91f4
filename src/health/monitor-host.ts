/**
 * The probing thread's side of the remote monitor (remote-monitor.ts is the
 * answering thread's): the HealthMonitor itself, with its schedule, its timers
 * and its probes, all off the answering thread. The answering thread only
 * says what to watch (targets, probing on or off) and receives, every
 * BATCH_MS, one message with the completed checks as rows of numbers: no
 * message, timer, promise or object per probe reaches it (at 5,000 probes a
 * second those made young-generation collections that paused answering for
 * 20-30 ms each; see /work/notes/checks2.md and the README).
 *
 * Runs in the worker (monitor-worker.ts), or in the answering thread itself
 * when no worker can be started (then `post` is a plain call).
 */
import type { Checker } from './checkers.ts';
import { HealthMonitor, realScheduler, type Scheduler, type TargetState, type Timer } from './monitor.ts';
import { Flag, ROW, Row, type AddedTarget, type FromMonitor, type ToMonitor } from './monitor-protocol.ts';
import type { CheckTarget } from './target.ts';

/**
 * Results wait this long to travel together: each message wakes the answering
 * thread. A verdict is at most this late.
 */
export const BATCH_MS = 10;

export interface MonitorHostDeps {
  check: Checker;
  /** Closes the checker's connections (after the monitor closed). */
  closeChecker: () => Promise<void>;
  post: (m: FromMonitor, transfer?: ArrayBuffer[]) => void;
  scheduler?: Scheduler;
  batchMs?: number;
}

interface Slot {
  slot: number;
  target: CheckTarget;
  gen: number;
  /** The detail last sent for this slot: a row repeats it by not sending it. */
  detail: string | undefined;
  /** Why the health changed, set by onChange, taken by the onResult that follows it. */
  reason: string | undefined;
}

export class MonitorHost {
  readonly #d: MonitorHostDeps;
  readonly #monitor: HealthMonitor;
  readonly #slots = new Map<number, Slot>();
  readonly #byKey = new Map<string, Slot>();
  readonly #batchMs: number;
  #rows = new Float64Array(ROW * 256);
  #count = 0;
  #texts: string[] = [];
  #flushTimer: Timer | undefined;
  #closing: Promise<void> | undefined;

  constructor(d: MonitorHostDeps) {
    this.#d = d;
    this.#batchMs = d.batchMs ?? BATCH_MS;
    this.#monitor = new HealthMonitor({
      check: d.check,
      ...(d.scheduler ? { scheduler: d.scheduler } : {}),
      onChange: (state, _previous, reason) => {
        const s = this.#byKey.get(state.key);
        if (s) s.reason = reason;
      },
      onResult: (state) => this.#row(state),
    });
  }

  handle(m: ToMonitor): void {
    if (this.#closing) return;
    if (m.kind === 'targets') {
      for (const slot of m.remove) {
        const s = this.#slots.get(slot);
        if (!s) continue;
        this.#slots.delete(slot);
        if (this.#byKey.get(s.target.key) === s) this.#byKey.delete(s.target.key);
      }
      const added = new Map<string, AddedTarget>();
      for (const a of m.add) {
        // A Buffer arrives as a plain Uint8Array; TLS wants the Buffer back.
        if (a.target.ca) a.target.ca = Buffer.from(a.target.ca.buffer, a.target.ca.byteOffset, a.target.ca.byteLength);
        const s: Slot = { slot: a.slot, target: a.target, gen: a.gen, detail: a.restore?.lastOutcome?.detail, reason: undefined };
        this.#slots.set(a.slot, s);
        this.#byKey.set(a.target.key, s);
        added.set(a.target.key, a);
      }
      this.#monitor.setTargets(
        [...this.#slots.values()].map((s) => s.target),
        { probe: (t) => added.get(t.key)?.probe ?? true, restore: (t) => added.get(t.key)?.restore },
      );
      this.#answerFirst(m.seq);
    } else if (m.kind === 'probing') {
      const s = this.#slots.get(m.slot);
      if (s) {
        s.gen = m.gen;
        this.#monitor.setProbing(s.target.key, m.on);
        // Off: the next result starts from "no result"; its detail must travel again.
        if (!m.on) s.detail = undefined;
      }
      this.#answerFirst(m.seq);
    } else if (m.kind === 'close') {
      void this.close();
    }
  }

  /** Closes the monitor, then the checker; every result so far is sent first. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#monitor.close();
      await this.#d.closeChecker();
      this.#flush();
      this.#d.post({ kind: 'closed' });
    })();
    return this.#closing;
  }

  #answerFirst(seq: number): void {
    void this.#monitor.firstRound().then(() => {
      // Results before the answer: the answering thread reads the states as soon as the round is over.
      this.#flush();
      this.#d.post({ kind: 'first', seq });
    });
  }

  #row(state: TargetState): void {
    const s = this.#byKey.get(state.key);
    const o = state.lastOutcome;
    if (!s || !o) return;
    if ((this.#count + 1) * ROW > this.#rows.length) {
      const grown = new Float64Array(this.#rows.length * 2);
      grown.set(this.#rows);
      this.#rows = grown;
    }
    const r = this.#rows;
    const at = this.#count * ROW;
    let flags = (o.ok ? Flag.ok : 0) | (state.health === 'down' ? Flag.down : 0);
    if (o.status !== undefined) flags |= Flag.hasStatus;
    if (o.load !== undefined) flags |= Flag.hasLoad;
    if (o.detail !== s.detail) {
      flags |= Flag.detail;
      s.detail = o.detail;
      this.#texts.push(o.detail);
    }
    if (s.reason !== undefined) {
      flags |= Flag.changed;
      this.#texts.push(s.reason);
      s.reason = undefined;
    }
    r[at + Row.slot] = s.slot;
    r[at + Row.gen] = s.gen;
    r[at + Row.flags] = flags;
    r[at + Row.status] = o.status ?? 0;
    r[at + Row.latencyMs] = o.latencyMs;
    r[at + Row.load] = o.load ?? 0;
    r[at + Row.checks] = state.checks;
    r[at + Row.consecutiveOk] = state.consecutiveOk;
    r[at + Row.consecutiveFail] = state.consecutiveFail;
    r[at + Row.since] = state.since;
    r[at + Row.lastCheckAt] = state.lastCheckAt ?? 0;
    r[at + Row.changeAt] = Infinity;
    this.#count++;
    this.#flushTimer ??= (this.#d.scheduler ?? realScheduler).setTimeout(() => this.#flush(), this.#batchMs);
  }

  #flush(): void {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    if (this.#count === 0) return;
    const now = this.#now();
    const rows = this.#rows.slice(0, this.#count * ROW);
    // When the health could next change, read now that each result's next check is planned
    // (onResult runs before the monitor plans it): the answering thread's TTLs count down from it.
    for (let at = 0; at < rows.length; at += ROW) {
      const s = this.#slots.get(rows[at + Row.slot]!);
      if (!s) continue;
      const ms = this.#monitor.timeToPossibleChange(s.target.key);
      rows[at + Row.changeAt] = ms === Infinity ? Infinity : now + ms;
    }
    const texts = this.#texts;
    this.#count = 0;
    this.#texts = [];
    this.#d.post({ kind: 'results', rows, texts }, [rows.buffer]);
  }

  #now(): number {
    return (this.#d.scheduler ?? realScheduler).now();
  }
}
