/**
 * The balancing state of a running server, in one place: load feedback (the
 * effective weights the pool policy reads), the first-position counters every
 * thread counts into, their sampled history, and the resolver demand table.
 * It owns their timers (on the server's scheduler, so tests can drive them)
 * and stops them in close(). The server wires it; the registry and the
 * pipeline read from it.
 */
import { LoadFeedback } from '../balancing/load-feedback.ts';
import { FirstServedCounters } from '../balancing/first-served.ts';
import { DemandTable, type PrefixBits } from '../balancing/demand.ts';
import { BalanceHistory } from '../observability/balance-history.ts';
import type { ResolversSnapshot } from '../observability/snapshot.ts';
import type { Scheduler, TargetState, Timer } from '../health/monitor.ts';
import type { Zone } from '../zone/zone.ts';
import { processMs } from '../rrl/table.ts';
import type { PoolRegistry } from './pool-registry.ts';

/** Resolvers the status API and page list. */
export const TOP_RESOLVERS = 20;

export interface BalancingOptions {
  scheduler: Scheduler;
  /** The health monitor's state of a check target: where load feedback reads the signals. */
  state: (targetKey: string) => TargetState | undefined;
  demand: { tableSize: number; ipv4Prefix: number; ipv6Prefix: number };
  /** Monotonic ms of the demand table in this thread (default: the process-wide clock the UDP workers use). */
  demandClock?: (() => number) | undefined;
}

export class Balancing {
  readonly feedback: LoadFeedback;
  /** How many answers put each pool member first, counted by every thread (shared memory). */
  readonly firstServed = new FirstServedCounters();
  /** Per member: first-position share, effective weight and load over the last minutes (status page, admin API). */
  readonly history = new BalanceHistory();
  /** Resolver demand (balance.resolvers): one table for the server, shared with the UDP worker threads. */
  readonly demand: DemandTable;
  readonly demandBits: PrefixBits;
  readonly demandClock: () => number;
  private readonly scheduler: Scheduler;
  private feedbackTimer: Timer | undefined;
  private historyTimer: Timer | undefined;
  private closed = false;

  constructor(o: BalancingOptions) {
    this.scheduler = o.scheduler;
    this.feedback = new LoadFeedback({ state: o.state });
    this.demand = new DemandTable(o.demand.tableSize);
    this.demandBits = { ipv4: o.demand.ipv4Prefix, ipv6: o.demand.ipv6Prefix };
    this.demandClock = o.demandClock ?? processMs;
  }

  /** What the query pipeline needs for resolver-aware TTLs. */
  get demandOptions() {
    return { table: this.demand, now: this.demandClock, bits: this.demandBits };
  }

  /** What UDP worker threads share (WorkerSetup.firstServed, .demand). */
  get forWorkers() {
    return { firstServed: this.firstServed.buffer, demand: { table: this.demand.buffer, bits: this.demandBits } };
  }

  /**
   * Steps load feedback as often as the most frequent balanced pool asks, on the
   * monitor's scheduler (its clock is the one check times are on); no timer
   * while no pool is balanced. `changed` runs when a step moved weights (the
   * answers are recompiled as after a health change). Call again after every
   * zone install: the pools and their intervals may have changed.
   */
  scheduleFeedback(pools: PoolRegistry, changed: () => void): void {
    this.feedbackTimer?.cancel();
    this.feedbackTimer = undefined;
    if (this.closed) return;
    let every = Infinity;
    for (const p of pools.pools()) every = Math.min(every, p.spec.balance.feedback?.intervalMs ?? Infinity);
    if (every === Infinity) return;
    this.feedbackTimer = this.scheduler.setTimeout(() => {
      this.feedbackTimer = undefined;
      if (this.closed) return;
      if (this.feedback.step(pools.pools(), this.scheduler.now(), (entry) => pools.usableMembers(entry), (entry) => pools.servedTtlMs(entry))) changed();
      this.scheduleFeedback(pools, changed);
    }, every);
  }

  /** Takes one history sample now (the timer does every history.intervalMs; tests call it to see a share at once). */
  sample(pools: PoolRegistry): void {
    // Not snapshot(): that decides every pool and copies every member's state (balanceSample in pool-registry.ts).
    this.history.sample(this.scheduler.now(), pools.balanceSample());
  }

  /** Samples now and then every interval, on the scheduler (unref'd timers; stopped by close()). */
  sampleEvery(pools: PoolRegistry): void {
    const tick = () => {
      if (this.closed) return;
      this.sample(pools);
      this.historyTimer = this.scheduler.setTimeout(tick, this.history.intervalMs);
    };
    tick();
  }

  /** The top resolvers by estimated demand (admin API /api/v1/resolvers and the status page); heaviness judged by the smallest heavyShare of the served zones' pools. */
  resolvers(zones: Iterable<Zone>, top = TOP_RESOLVERS): ResolversSnapshot {
    let heavyShare: number | null = null;
    for (const zone of zones) {
      for (const rrset of zone.pooled) {
        const share = rrset.pool?.balance.resolvers?.heavyShare;
        if (share !== undefined && (heavyShare === null || share < heavyShare)) heavyShare = share;
      }
    }
    const now = this.demandClock();
    const rows = this.demand.top(top, now, this.demandBits);
    return {
      grouping: { ...this.demandBits },
      heavyShare,
      totalDemand: this.demand.total(now),
      capacity: this.demand.capacity,
      occupied: this.demand.occupied(),
      resolvers: rows.map((r) => ({ ...r, heavy: heavyShare !== null && r.share > 0 && r.share >= heavyShare })),
    };
  }

  /** Stops both timers; idempotent. */
  close(): void {
    this.closed = true;
    this.feedbackTimer?.cancel();
    this.feedbackTimer = undefined;
    this.historyTimer?.cancel();
    this.historyTimer = undefined;
  }
}
