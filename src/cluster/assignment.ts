/**
 * Which checks this instance probes. Every check, unless its pool says
 * `checkers: K` and the instance is connected: then only those whose K
 * live checkers (rendezvous hashing, members.ts) include it. Handing a check
 * over is make-before-break: the previous checker keeps probing until every
 * new checker has a verdict in etcd (at most one lease TTL), so moving a
 * check never leaves it without a verdict. Degraded or connecting: every
 * check is probed here, answers come from this instance's own verdicts.
 *
 * A chosen checker that has not published a verdict for a check within a
 * grace (one lease TTL plus two intervals after the check appeared here or
 * the connection began) is passed over for the next instance by score: an
 * instance still serving older zones (a rolling zone update) must not leave a
 * new pool without any probe. It takes its place back once it publishes.
 */
import type { Logger } from '../observability/log.ts';
import type { Membership } from './members.ts';
import type { RemoteVerdicts } from './remote-verdicts.ts';
import type { MonitorPort } from './types.ts';

export interface AssignmentDeps {
  instance: string;
  monitor: MonitorPort;
  members: Membership;
  remote: RemoteVerdicts;
  leaseTtlMs: number;
  connected: () => boolean;
  now: () => number;
  log: Logger;
  onViewChange: () => void;
  /** Our verdict for a check we stopped probing (or that is gone) leaves etcd. */
  withdraw: (key: string) => void;
}

export class ProbeAssignment {
  readonly #d: AssignmentDeps;
  /** Checks the served pools use: key → K (undefined: every instance probes it). */
  #checks = new Map<string, number | undefined>();
  /** Checks switched off here. */
  readonly #off = new Set<string>();
  /** Checks no longer assigned here, still probed until the new checkers have verdicts (deadline, ms). */
  readonly #releasing = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  /** When each check appeared here (epoch ms): the grace for its chosen checkers runs from then. */
  readonly #seenAt = new Map<string, number>();
  /** When the current connection began (set by the node on every (re)connection). */
  #connectedAt = 0;
  #tick: NodeJS.Timeout | undefined;
  #warnedNoSwitch = false;

  constructor(deps: AssignmentDeps) {
    this.#d = deps;
  }

  keys(): IterableIterator<string> {
    return this.#checks.keys();
  }

  get total(): number {
    return this.#checks.size;
  }

  get probedHere(): number {
    return this.#checks.size - this.#off.size;
  }

  has(key: string): boolean {
    return this.#checks.has(key);
  }

  /** Probed here (not switched off by the cluster). */
  probes(key: string): boolean {
    return !this.#off.has(key);
  }

  /** The K of `key`'s pools (the largest where pools share it; undefined: every instance). */
  checkersOf(key: string): number | undefined {
    return this.#checks.get(key);
  }

  /** A check being handed over (a remote verdict for it may complete the hand-over). */
  releasing(key: string): boolean {
    return this.#releasing.has(key);
  }

  /** The checks the served pools use now, each with its pool's `checkers`; decides what is probed. */
  setChecks(entries: Iterable<{ key: string; checkers: number | undefined }>): void {
    const next = new Map<string, number | undefined>();
    for (const { key, checkers } of entries) {
      if (!next.has(key)) next.set(key, checkers);
      else {
        const prev = next.get(key);
        next.set(key, prev === undefined || checkers === undefined ? undefined : Math.max(prev, checkers));
      }
    }
    const now = this.#d.now();
    for (const key of next.keys()) if (!this.#seenAt.has(key)) this.#seenAt.set(key, now);
    for (const key of this.#checks.keys()) {
      if (next.has(key)) continue;
      this.#seenAt.delete(key);
      this.#off.delete(key);
      this.#releasing.delete(key);
      this.#d.withdraw(key);
    }
    this.#checks = next;
    this.reassign();
  }

  /** A connection began: chosen checkers get their grace from now. */
  connectedNow(): void {
    this.#connectedAt = this.#d.now();
  }

  /**
   * The K instances that should probe `key`: by rendezvous score, passing
   * over one that has had no verdict for it past the grace (it lacks the check).
   */
  #effective(key: string, k: number): string[] {
    const ranked = this.#d.members.checkers(key, this.#d.members.liveIds().length);
    const held = this.#d.remote.of(key);
    const interval = this.#d.monitor.target(key)?.config.interval ?? 0;
    const graceOver = this.#d.now() - Math.max(this.#seenAt.get(key) ?? 0, this.#connectedAt) > this.#d.leaseTtlMs + 2 * interval;
    const out: string[] = [];
    for (const i of ranked) {
      if (out.length >= k) break;
      if (i === this.#d.instance || held?.has(i) === true || !graceOver) out.push(i);
    }
    return out;
  }

  #wants(key: string): boolean {
    if (!this.#d.connected()) return true;
    const k = this.#checks.get(key);
    return k === undefined || this.#effective(key, k).includes(this.#d.instance);
  }

  /** Every live checker of `key` other than us has a verdict for it. */
  #handedOver(key: string): boolean {
    const held = this.#d.remote.of(key);
    const k = this.#checks.get(key);
    const checkers = k === undefined ? this.#d.members.liveIds() : this.#effective(key, k);
    return checkers.every((i) => i === this.#d.instance || held?.has(i) === true);
  }

  /** Re-decides what is probed here (membership, checks or connection state changed). */
  reassign(): void {
    const sw = this.#d.monitor.setProbing?.bind(this.#d.monitor);
    if (!sw) {
      if (!this.#warnedNoSwitch && [...this.#checks.values()].some((k) => k !== undefined)) {
        this.#warnedNoSwitch = true;
        this.#d.log.warn("cluster: checkers: K needs the health monitor's probing switch; every instance probes every check");
      }
      return;
    }
    const now = this.#d.now();
    let started = 0;
    let stopped = 0;
    for (const key of this.#checks.keys()) {
      if (this.#wants(key)) {
        this.#releasing.delete(key);
        if (this.#off.delete(key)) {
          sw(key, true);
          started++;
        }
        continue;
      }
      if (this.#off.has(key)) continue;
      if (this.#d.monitor.state(key) === undefined) {
        // Not watched yet (an install is about to add it): nothing to hand over; it starts unprobed
        // (the switch records the wish, setTargets' probe option reads it).
        this.#off.add(key);
        sw(key, false);
        continue;
      }
      if (!this.#releasing.has(key)) this.#releasing.set(key, now + this.#d.leaseTtlMs);
      if (this.#handedOver(key) || now >= this.#releasing.get(key)!) {
        this.#releasing.delete(key);
        this.#off.add(key);
        sw(key, false);
        this.#d.withdraw(key);
        stopped++;
      }
    }
    // While connected, a chosen checker's grace can run out with no event: look again every second.
    if (this.#d.connected() && !this.#tick && [...this.#checks.values()].some((k) => k !== undefined)) {
      this.#tick = setInterval(() => this.reassign(), 1000);
      this.#tick.unref();
    }
    if (this.#releasing.size > 0 && !this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.reassign();
      }, 1000);
      this.#timer.unref();
    }
    if (started + stopped > 0) {
      this.#d.log.info({ probedHere: this.probedHere, started, stopped, releasing: this.#releasing.size }, 'cluster: checks reassigned');
      this.#d.onViewChange();
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    clearInterval(this.#tick);
  }
}
