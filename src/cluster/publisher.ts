/**
 * This instance's verdicts into etcd: written when a check's health or the
 * sign of its last result changes (batched per event-loop turn, one
 * transaction per 100), plus a periodic refresh of the ones whose last check
 * time moved, never per probe. Withdrawn when the instance stops probing a
 * check. What is pending is a set of check keys (bounded by the checks).
 */
import type { TargetState } from '../health/monitor.ts';
import type { KeyLayout, VerdictRecord } from './keys.ts';
import type { ClusterStore } from './store.ts';
import { iso, type ClusterMetricsSink, type MonitorPort } from './types.ts';
import type { Verdict } from './quorum.ts';

interface Published {
  health: Verdict;
  lastOk: boolean | null;
  lastCheckAt: number | undefined;
}

export interface PublisherDeps {
  instance: string;
  keys: KeyLayout;
  store: ClusterStore;
  monitor: MonitorPort;
  now: () => number;
  metrics: ClusterMetricsSink | undefined;
  /** Writes go out only while connected. */
  connected: () => boolean;
  /** Whether this instance publishes `key` now (a served check it probes). */
  publishes: (key: string) => boolean;
  /** The current connection's generation, and the failure sink (goes degraded). */
  generation: () => number;
  trouble: (op: string, e: unknown, gen: number) => void;
}

/** The verdict record written for `key` from its monitor state. */
export function verdictRecord(s: TargetState, now: number, msToChange: number): VerdictRecord {
  return {
    health: s.health,
    checks: s.checks,
    lastOk: s.lastOutcome?.ok ?? null,
    lastResult: s.lastOutcome?.detail ?? null,
    lastCheckAt: iso(s.lastCheckAt),
    since: new Date(s.since).toISOString(),
    at: new Date(now).toISOString(),
    changeAt: now + msToChange,
  };
}

export class VerdictPublisher {
  readonly #d: PublisherDeps;
  /** What etcd holds of our verdicts. */
  readonly #published = new Map<string, Published>();
  readonly #dirty = new Set<string>();
  #queued = false;
  #flushing: Promise<void> | undefined;

  constructor(deps: PublisherDeps) {
    this.#d = deps;
  }

  get size(): number {
    return this.#published.size;
  }

  /** A probe result for `s.key`: queued when its verdict or the sign of its last result changed. */
  observe(s: TargetState): void {
    if (s.checks === 0 || !this.#d.publishes(s.key)) return;
    const p = this.#published.get(s.key);
    if (!p || p.health !== s.health || p.lastOk !== (s.lastOutcome?.ok ?? null)) this.mark(s.key);
  }

  /** Queues `key` for writing (if it has a result by then). */
  mark(key: string): void {
    this.#dirty.add(key);
    this.#schedule();
  }

  /** Queues every check in `keys` that has a result and is not in etcd yet. */
  markUnpublished(keys: Iterable<string>): void {
    for (const key of keys) if (this.#d.publishes(key) && !this.#published.has(key) && (this.#d.monitor.state(key)?.checks ?? 0) > 0) this.#dirty.add(key);
    this.#schedule();
  }

  /** After a (re)connection: the lease may be new, so everything goes out again. */
  republish(keys: Iterable<string>): void {
    this.#published.clear();
    this.markUnpublished(keys);
  }

  /** Our verdict for `key` leaves etcd (we stopped probing it, or it is gone). */
  withdraw(key: string): void {
    this.#dirty.delete(key);
    if (!this.#published.delete(key) || !this.#d.connected()) return;
    const gen = this.#d.generation();
    void this.#d.store.write([{ key: this.#d.keys.verdict(this.#d.instance, key), value: null, lease: false }]).then(
      () => this.#d.metrics?.verdictWrites(1),
      (e: unknown) => this.#d.trouble('delete', e, gen),
    );
  }

  /** Periodic: verdicts whose last check time moved get their time refreshed. */
  refreshTimes(): void {
    if (!this.#d.connected()) return;
    for (const [key, p] of this.#published) if (this.#d.monitor.state(key)?.lastCheckAt !== p.lastCheckAt) this.#dirty.add(key);
    this.#schedule();
  }

  /** Resolves when no write is in flight (close). */
  async idle(): Promise<void> {
    await this.#flushing?.catch(() => undefined);
  }

  #schedule(): void {
    if (this.#queued || !this.#d.connected() || this.#dirty.size === 0) return;
    this.#queued = true;
    setImmediate(() => {
      this.#queued = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    const gen = this.#d.generation();
    const run = async () => {
      while (this.#dirty.size > 0 && this.#d.connected() && gen === this.#d.generation()) {
        const keys = [...this.#dirty];
        this.#dirty.clear();
        const ops: { key: string; value: string; lease: boolean }[] = [];
        const wrote: [string, Published][] = [];
        const now = this.#d.now();
        for (const key of keys) {
          const s = this.#d.monitor.state(key);
          if (!s || s.checks === 0 || !this.#d.publishes(key)) continue;
          const rec = verdictRecord(s, now, this.#d.monitor.timeToPossibleChange(key));
          ops.push({ key: this.#d.keys.verdict(this.#d.instance, key), value: JSON.stringify(rec), lease: true });
          wrote.push([key, { health: s.health, lastOk: rec.lastOk, lastCheckAt: s.lastCheckAt }]);
        }
        if (ops.length === 0) continue;
        try {
          await this.#d.store.write(ops);
        } catch (e) {
          for (const k of keys) this.#dirty.add(k);
          this.#d.trouble('put', e, gen);
          return;
        }
        for (const [k, p] of wrote) this.#published.set(k, p);
        this.#d.metrics?.verdictWrites(ops.length);
      }
    };
    this.#flushing = run().finally(() => (this.#flushing = undefined));
    await this.#flushing;
  }
}
