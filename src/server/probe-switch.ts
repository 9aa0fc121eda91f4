/**
 * One probing switch per check, several reasons to turn it off. The monitor's
 * setProbing is a single on/off per target, but more than one part of the
 * server has a say: cold standby (probe-plan.ts: idle while a primary is
 * usable) and, in a cluster, the shared check load (checkers: K: another
 * instance runs it). Each source states its wish per key; the monitor probes a
 * key that no source wants off. So neither source turns back on what the
 * other turned off.
 */
import type { HealthMonitor } from '../health/monitor.ts';

export type ProbeSource = 'cold' | 'cluster';

export class ProbeSwitch {
  readonly #monitor: Pick<HealthMonitor, 'setProbing' | 'probing' | 'state'>;
  /** key → the sources that want it off. */
  readonly #off = new Map<string, Set<ProbeSource>>();

  constructor(monitor: Pick<HealthMonitor, 'setProbing' | 'probing' | 'state'>) {
    this.#monitor = monitor;
  }

  /** Whether `key` should be probed: no source wants it off. */
  wants(key: string): boolean {
    return !this.#off.has(key);
  }

  /**
   * Records `source`'s wish for `key` and brings the monitor in line with all
   * wishes. Returns true when the monitor's switch flipped (false also for a
   * key the monitor does not watch yet: the wish waits for setTargets, whose
   * `probe` option should read wants()).
   */
  set(source: ProbeSource, key: string, on: boolean): boolean {
    const off = this.#off.get(key);
    if (on) {
      off?.delete(source);
      if (off?.size === 0) this.#off.delete(key);
    } else if (off) off.add(source);
    else this.#off.set(key, new Set([source]));
    if (this.#monitor.state(key) === undefined) return false;
    const want = this.wants(key);
    if (this.#monitor.probing(key) === want) return false;
    return this.#monitor.setProbing(key, want);
  }

  /** Keys `source` wants off now. */
  offBy(source: ProbeSource): string[] {
    return [...this.#off].filter(([, s]) => s.has(source)).map(([k]) => k);
  }

  /** Forgets the wishes for keys the monitor no longer watches (after a reload removed them). */
  prune(): void {
    for (const key of [...this.#off.keys()]) if (this.#monitor.state(key) === undefined) this.#off.delete(key);
  }
}
