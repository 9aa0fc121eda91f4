/**
 * This instance as a cluster member: registers under a lease, publishes the
 * verdict of every check it runs, watches the other instances' verdicts and
 * the shared overrides, decides which checks it probes (`checkers: K`), and
 * survives etcd trouble. Policy lives in pure functions beside it (quorum.ts,
 * rendezvous.ts, reconcile.ts); etcd access in store.ts; this file is the
 * state machine and the caches.
 *
 * States: `connecting` (start, before the first sync), `connected`,
 * `degraded` (etcd unreachable, partitioned or slower than the deadline).
 * Outside `connected` every check is probed here and answers come from this
 * instance's own verdicts (the last verdicts it knew from the others where it
 * has no own result yet) and the last overrides it knew. A reconnect loop
 * with exponential backoff (jittered, capped) resynchronises: a new lease,
 * the member key, a snapshot of everything (members, verdicts, overrides,
 * reconciled by last writer), a watch from that revision, and every own
 * verdict republished.
 *
 * Memory is bounded: verdicts are kept per live member and check, at most
 * MAX_REMOTE_VERDICTS; pending writes are per check (a set, not a queue).
 */
import type { ClusterConfig } from '../config/schema.ts';
import { ErrorCode, RrdnsError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { LogLimiter } from '../observability/log-limiter.ts';
import type { TargetState } from '../health/monitor.ts';
import type { CheckTarget } from '../health/target.ts';
import type { AdminOverride, PoolSpec } from '../zone/zone.ts';
import { KeyLayout, parseMember, parseOverride, parseVerdict, type MemberRecord, type OverrideRecord, type VerdictRecord } from './keys.ts';
import type { ClusterStore } from './store.ts';
import { chooseCheckers } from './rendezvous.ts';
import { combineVerdicts, type Quorum, type QuorumResult, type Verdict, type Vote } from './quorum.ts';
import { reconcileOverrides, type TimedOverride } from './reconcile.ts';

export type ClusterState = 'connecting' | 'connected' | 'degraded' | 'closed';

/** What the node reads from the health monitor, and the probing switch (HealthMonitor.setProbing, fastcold). */
export interface MonitorPort {
  state(key: string): TargetState | undefined;
  target(key: string): CheckTarget | undefined;
  timeToPossibleChange(key: string): number;
  setProbing?(key: string, on: boolean): void;
  probing?(key: string): boolean;
}

/** The server side of shared overrides. */
export interface OverridePort {
  /** Applies an override that came from etcd (null clears), writing the state directory too. */
  apply(owner: string, address: string, value: AdminOverride | null): void;
  /** The API overrides in force here with the time each was set (epoch ms; 0 unknown). */
  local(): Iterable<{ owner: string; address: string; override: AdminOverride; at: number }>;
}

export interface ClusterNodeOptions {
  config: ClusterConfig;
  instance: string;
  /** The etcd client (store.ts openEtcdStore); opened by the caller, so a bad TLS file fails the start. */
  store: ClusterStore;
  monitor: MonitorPort;
  overrides: OverridePort;
  /** The combined view changed (a verdict, a member, the state): compiled answers must be redone. */
  onViewChange: () => void;
  log: Logger;
  logLimiter: LogLimiter;
  member: { version: string; listen: () => string[]; admin: () => string | null };
  metrics?: ClusterMetricsSink;
  /** Reconnect backoff (ms): first wait, cap. Defaults 250 ms and 5 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How often unchanged verdicts refresh their time in etcd (ms, default 30 s). */
  refreshMs?: number;
  now?: () => number;
}

export interface ClusterMetricsSink {
  verdictWrites(n: number): void;
  etcdError(op: string): void;
  reconnect(): void;
  propagation(seconds: number): void;
}

/** Verdicts held from other instances at most; past it new ones are dropped (and logged). */
export const MAX_REMOTE_VERDICTS = 500_000;

/** Per member in the health snapshot: each instance's verdict and the combined one. */
export interface MemberClusterView {
  quorum: Quorum;
  checkers: number | null;
  combined: Verdict | 'unknown';
  basis: 'quorum' | 'own (degraded)' | 'last known (degraded)';
  down: number;
  up: number;
  voters: number;
  needed: number;
  probedHere: boolean;
  assigned: string[];
  verdicts: ({ instance: string; self: boolean } & Omit<VerdictRecord, 'changeAt'>)[];
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

interface Published {
  health: Verdict;
  lastOk: boolean | null;
  lastResult: string | null;
  lastCheckAt: number | undefined;
}

export class ClusterNode {
  readonly instance: string;
  private readonly o: ClusterNodeOptions;
  private readonly keys: KeyLayout;
  private readonly now: () => number;
  private readonly store: ClusterStore;
  #state: ClusterState = 'connecting';
  private degradedSince: number | undefined;
  private lastError: string | null = null;
  private lastSyncAt: number | undefined;
  private reconnects = 0;
  private leaseId: string | undefined;
  /** Bumped on every (re)connection: callbacks of an older one are ignored. */
  private generation = 0;
  private watch: { cancel(): Promise<void> } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private handoverTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;

  /** Live members as etcd shows them (self included once connected). */
  private readonly members = new Map<string, MemberRecord>();
  /** Other instances' verdicts: check key → instance → verdict. */
  private readonly remote = new Map<string, Map<string, VerdictRecord>>();
  private remoteCount = 0;
  /** Overrides as etcd holds them (tombstones included). */
  private readonly etcdOverrides = new Map<string, OverrideRecord | { override: null; setBy: string; at: string }>();
  /** Clears made here that etcd has not been told (so a resync does not bring the old value back). */
  private readonly pendingClears = new Map<string, number>();
  /** Override writes waiting for etcd (key → value); retried on every sync. */
  private readonly overrideQueue = new Map<string, TimedOverride>();

  /** Checks the served pools use: key → K (undefined: every instance probes it). */
  private checks = new Map<string, number | undefined>();
  /** Checks this instance has switched off (not probed here). */
  private readonly off = new Set<string>();
  /** Checks no longer assigned here, still probed until their new checkers have verdicts (deadline ms). */
  private readonly releasing = new Map<string, number>();
  /** What etcd holds of our own verdicts. */
  private readonly published = new Map<string, Published>();
  private readonly dirty = new Set<string>();
  private flushQueued = false;
  private flushing: Promise<void> | undefined;
  private warnedNoSwitch = false;

  constructor(opts: ClusterNodeOptions) {
    this.o = opts;
    this.instance = opts.instance;
    this.keys = new KeyLayout(opts.config.name);
    this.now = opts.now ?? Date.now;
    this.backoffMs = opts.backoff?.initialMs ?? 250;
    this.store = opts.store;
  }

  get state(): ClusterState {
    return this.#state;
  }

  get degraded(): boolean {
    return this.#state === 'degraded';
  }

  /** Starts connecting in the background: the server starts (and answers) whether etcd is there or not. */
  start(): void {
    if (this.#state !== 'connecting' || this.refreshTimer) return;
    void this.connect();
    const refresh = this.o.refreshMs ?? 30_000;
    this.refreshTimer = setInterval(() => this.refreshTimes(), refresh);
    this.refreshTimer.unref();
    // A frozen or partitioned etcd breaks no stream: a read with the deadline, a few times per lease TTL, notices it.
    this.pingTimer = setInterval(() => this.ping(), Math.max(500, (this.o.config.leaseTtl * 1000) / 4));
    this.pingTimer.unref();
  }

  /** Idempotent: revokes the lease (our member and verdict keys go at once), stops the watch and the client. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.settleFirst();
    const wasConnected = this.#state === 'connected';
    this.#state = 'closed';
    this.generation++;
    clearTimeout(this.retryTimer);
    clearInterval(this.refreshTimer);
    clearTimeout(this.handoverTimer);
    clearInterval(this.pingTimer);
    await this.flushing?.catch(() => undefined);
    await this.watch?.cancel();
    this.watch = undefined;
    // Bounded: a dead etcd must not hold the shutdown up.
    if (wasConnected) await Promise.race([this.store.revokeLease(), new Promise((r) => setTimeout(r, this.o.config.timeoutMs).unref())]).catch(() => undefined);
    this.store.close();
  }

  // ---------------------------------------------------------------- checks and probing

  /**
   * The checks the served pools use now, each with its pool's `checkers`
   * (the largest when pools share a check; none means every instance).
   * Called after each zone install; decides what this instance probes.
   */
  setChecks(entries: Iterable<{ key: string; checkers: number | undefined }>): void {
    const next = new Map<string, number | undefined>();
    for (const { key, checkers } of entries) {
      if (!next.has(key)) next.set(key, checkers);
      else {
        const prev = next.get(key);
        next.set(key, prev === undefined || checkers === undefined ? undefined : Math.max(prev, checkers));
      }
    }
    for (const key of this.checks.keys()) {
      if (next.has(key)) continue;
      // Gone from every pool: our verdict goes from etcd too.
      this.off.delete(key);
      this.releasing.delete(key);
      this.withdraw(key);
    }
    this.checks = next;
    this.reassign();
    // Checks that had results before they were known here (the first round of an install) go out now.
    for (const key of next.keys()) if (!this.off.has(key) && !this.published.has(key) && (this.o.monitor.state(key)?.checks ?? 0) > 0) this.dirty.add(key);
    this.scheduleFlush();
  }

  /** The monitor has a result for `state.key` (every probe): publish what changed. */
  observe(state: TargetState): void {
    if (!this.checks.has(state.key) || this.off.has(state.key) || state.checks === 0) return;
    const p = this.published.get(state.key);
    const lastOk = state.lastOutcome?.ok ?? null;
    if (!p || p.health !== state.health || p.lastOk !== lastOk) {
      // A change of verdict or of the last result's sign goes out at once (batched per loop turn).
      this.dirty.add(state.key);
      this.scheduleFlush();
    }
  }

  /** Is `key` probed here (the monitor's `probe` option for targets added by an install)? */
  probes(key: string): boolean {
    return !this.off.has(key);
  }

  /** Should this instance probe `key` now? */
  private wantsProbe(key: string, live: readonly string[]): boolean {
    if (this.#state !== 'connected') return true;
    const k = this.checks.get(key);
    if (k === undefined) return true;
    return chooseCheckers(key, live, k).includes(this.instance);
  }

  /** Re-decides what is probed here (membership, checks or state changed). */
  private reassign(): void {
    const sw = this.o.monitor.setProbing;
    if (!sw) {
      if (!this.warnedNoSwitch && [...this.checks.values()].some((k) => k !== undefined)) {
        this.warnedNoSwitch = true;
        this.o.log.warn('cluster: checkers: K needs the health monitor\'s probing switch; every instance probes every check');
      }
      return;
    }
    const live = this.liveIds();
    const now = this.now();
    let started = 0;
    let stopped = 0;
    for (const key of this.checks.keys()) {
      const want = this.wantsProbe(key, live);
      if (want) {
        this.releasing.delete(key);
        if (this.off.delete(key)) {
          sw.call(this.o.monitor, key, true);
          started++;
        }
        continue;
      }
      if (this.off.has(key)) continue;
      if (this.o.monitor.state(key) === undefined) {
        // Not watched yet (an install about to add it): nothing to hand over, it starts unprobed
        // (the switch records the wish; setTargets' probe option reads it).
        this.off.add(key);
        sw.call(this.o.monitor, key, false);
        continue;
      }
      // Make before break: keep probing until the new checkers have verdicts, at most one lease TTL.
      if (!this.releasing.has(key)) this.releasing.set(key, now + this.o.config.leaseTtl * 1000);
      if (this.handedOver(key, live) || now >= this.releasing.get(key)!) {
        this.releasing.delete(key);
        this.off.add(key);
        sw.call(this.o.monitor, key, false);
        this.withdraw(key);
        stopped++;
      }
    }
    if (this.releasing.size > 0 && !this.handoverTimer) {
      this.handoverTimer = setTimeout(() => {
        this.handoverTimer = undefined;
        this.reassign();
      }, 1000);
      this.handoverTimer.unref();
    }
    if (started + stopped > 0) {
      this.o.log.info({ probedHere: this.checks.size - this.off.size, started, stopped, releasing: this.releasing.size }, 'cluster: checks reassigned');
      this.o.onViewChange();
    }
  }

  /** Every live checker of `key` other than us has a verdict for it. */
  private handedOver(key: string, live: readonly string[]): boolean {
    const held = this.remote.get(key);
    return chooseCheckers(key, live, this.checks.get(key)).every((i) => i === this.instance || held?.has(i) === true);
  }

  /** Our verdict for `key` leaves etcd (we stopped probing it, or it is gone). */
  private withdraw(key: string): void {
    this.dirty.delete(key);
    if (!this.published.has(key)) return;
    this.published.delete(key);
    if (this.#state !== 'connected') return;
    const gen = this.generation;
    void this.store.write([{ key: this.keys.verdict(this.instance, key), value: null, lease: false }]).then(
      () => this.o.metrics?.verdictWrites(1),
      (e: unknown) => this.trouble('delete', e, gen),
    );
  }

  // ---------------------------------------------------------------- publishing

  private scheduleFlush(): void {
    if (this.flushQueued || this.#state !== 'connected') return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      void this.flush();
    });
  }

  private verdictRecord(key: string, s: TargetState): VerdictRecord {
    return {
      health: s.health,
      checks: s.checks,
      lastOk: s.lastOutcome?.ok ?? null,
      lastResult: s.lastOutcome?.detail ?? null,
      lastCheckAt: iso(s.lastCheckAt),
      since: new Date(s.since).toISOString(),
      at: new Date(this.now()).toISOString(),
      changeAt: this.now() + this.o.monitor.timeToPossibleChange(key),
    };
  }

  /** Writes the dirty verdicts, one batch at a time (a flush in flight is followed by another if more came). */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    const gen = this.generation;
    const run = async () => {
      while (this.dirty.size > 0 && this.#state === 'connected' && gen === this.generation) {
        const keys = [...this.dirty];
        this.dirty.clear();
        const ops: { key: string; value: string; lease: boolean }[] = [];
        const wrote: [string, Published][] = [];
        for (const key of keys) {
          const s = this.o.monitor.state(key);
          if (!s || s.checks === 0 || this.off.has(key)) continue;
          const rec = this.verdictRecord(key, s);
          ops.push({ key: this.keys.verdict(this.instance, key), value: JSON.stringify(rec), lease: true });
          wrote.push([key, { health: s.health, lastOk: rec.lastOk, lastResult: rec.lastResult, lastCheckAt: s.lastCheckAt }]);
        }
        if (ops.length === 0) continue;
        try {
          await this.store.write(ops);
        } catch (e) {
          for (const k of keys) this.dirty.add(k);
          this.trouble('put', e, gen);
          return;
        }
        for (const [k, p] of wrote) this.published.set(k, p);
        this.o.metrics?.verdictWrites(ops.length);
      }
    };
    this.flushing = run().finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  private pinging = false;

  private ping(): void {
    if (this.#state !== 'connected' || this.pinging) return;
    const gen = this.generation;
    this.pinging = true;
    this.store
      .ping(this.keys.member(this.instance))
      .then(
        () => undefined,
        (e: unknown) => this.trouble('ping', e, gen),
      )
      .finally(() => (this.pinging = false));
  }

  /** Periodic: verdicts whose last check time moved (but not their state) get their time refreshed. */
  private refreshTimes(): void {
    if (this.#state !== 'connected') return;
    for (const [key, p] of this.published) {
      const s = this.o.monitor.state(key);
      if (s && s.lastCheckAt !== p.lastCheckAt) this.dirty.add(key);
    }
    this.scheduleFlush();
  }

  // ---------------------------------------------------------------- overrides

  /**
   * An override was set (null: cleared) through this instance's API, already
   * written to the state directory and applied here. It goes to etcd now;
   * while etcd is away it waits and is reconciled (last writer wins) on return.
   */
  publishOverride(owner: string, address: string, value: AdminOverride | null): void {
    const key = `${owner}|${address}`;
    const at = this.now();
    if (value === null) this.pendingClears.set(key, at);
    else this.pendingClears.delete(key);
    this.overrideQueue.set(key, { override: value, at });
    void this.writeOverrides();
  }

  private async writeOverrides(): Promise<void> {
    if (this.#state !== 'connected' || this.overrideQueue.size === 0) return;
    const gen = this.generation;
    const batch = [...this.overrideQueue];
    const ops = batch.map(([key, v]) => {
      const [owner, address] = splitOverrideKey(key);
      const record = { override: v.override, setBy: this.instance, at: new Date(v.at).toISOString() };
      return { key: this.keys.override(owner, address), value: JSON.stringify(record), lease: false };
    });
    try {
      await this.store.write(ops);
    } catch (e) {
      this.trouble('put', e, gen);
      return;
    }
    for (const [key, v] of batch) {
      // A newer change to the same member may have come in meanwhile: that one stays queued.
      if (this.overrideQueue.get(key) === v) this.overrideQueue.delete(key);
      if (v.override === null && this.pendingClears.get(key) === v.at) this.pendingClears.delete(key);
      this.etcdOverrides.set(key, { override: v.override, setBy: this.instance, at: new Date(v.at).toISOString() } as OverrideRecord);
    }
  }

  private applyOverrideEvent(owner: string, address: string, rec: { override: AdminOverride | null; setBy: string; at: string }): void {
    const key = `${owner}|${address}`;
    const before = this.etcdOverrides.get(key);
    this.etcdOverrides.set(key, rec as OverrideRecord);
    // Our own write coming back through the watch, or one we have already applied.
    if (before && before.override === rec.override && before.at === rec.at) return;
    if (this.overrideQueue.has(key)) return;
    this.pendingClears.delete(key);
    this.o.overrides.apply(owner, address, rec.override);
    this.o.log.info({ owner, address, override: rec.override, setBy: rec.setBy }, 'cluster: override applied from etcd');
    this.o.onViewChange();
  }

  // ---------------------------------------------------------------- connection

  private async connect(): Promise<void> {
    const gen = ++this.generation;
    try {
      const store = this.store;
      const ttl = this.o.config.leaseTtl;
      this.leaseId = await store.grantLease(ttl, (err) => this.trouble('lease', err, gen));
      const member: MemberRecord = {
        instance: this.instance,
        startedAt: new Date(this.startedAt).toISOString(),
        version: this.o.member.version,
        pid: process.pid,
        hostname: (await import('node:os')).hostname(),
        listen: this.o.member.listen(),
        admin: this.o.member.admin(),
        leaseTtl: ttl,
      };
      const value = JSON.stringify(member);
      const claim = await store.claim(this.keys.member(this.instance), value);
      if (!claim.ok) {
        const holder = parseMember(claim.holder, this.instance);
        if (holder.pid === member.pid && holder.startedAt === member.startedAt && holder.hostname === member.hostname) {
          // Our own key from before a separation (its old lease still lives): taken over by the new lease.
          await store.write([{ key: this.keys.member(this.instance), value, lease: true }]);
        } else {
          this.conflict(holder, gen);
          return;
        }
      }
      const snap = await store.snapshot(this.keys.prefix);
      if (gen !== this.generation) return;
      this.loadSnapshot(snap.kvs);
      this.watch = await store.watch(this.keys.prefix, snap.revision, {
        put: (kv) => gen === this.generation && this.onPut(kv.key, kv.value),
        delete: (key) => gen === this.generation && this.onDelete(key),
        broken: (err) => this.trouble('watch', err, gen),
      });
      if (gen !== this.generation) return;
      const wasDegraded = this.degradedSince;
      this.#state = 'connected';
      this.degradedSince = undefined;
      this.lastError = null;
      this.lastSyncAt = this.now();
      this.backoffMs = this.o.backoff?.initialMs ?? 250;
      await this.syncOverrides();
      // Everything we probe goes out again: the lease may be new, and the others need our view.
      this.published.clear();
      for (const key of this.checks.keys()) if (!this.off.has(key) && (this.o.monitor.state(key)?.checks ?? 0) > 0) this.dirty.add(key);
      this.reassign();
      this.scheduleFlush();
      this.o.onViewChange();
      this.settleFirst();
      if (wasDegraded !== undefined) {
        this.reconnects++;
        this.o.metrics?.reconnect();
        this.conflictSince = undefined;
      this.o.log.info({ members: this.members.size, overrides: this.etcdOverrides.size, verdicts: this.remoteCount, degradedMs: this.now() - wasDegraded }, 'cluster: etcd back; resynchronised');
      } else {
        this.o.log.info({ instance: this.instance, etcd: this.o.config.etcd, leaseId: this.leaseId, members: this.members.size }, 'cluster: connected to etcd');
      }
    } catch (e) {
      this.trouble('connect', e, gen);
    }
  }

  private readonly startedAt = Date.now();

  // ---------------------------------------------------------------- start-up outcome and ID conflicts

  private firstWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private firstSettled = false;
  private conflictSince: number | undefined;

  /**
   * Resolves once the first connection attempt has an outcome (connected, or
   * etcd unreachable: degraded); rejects with CLUSTER_INSTANCE_TAKEN when
   * another live process holds this instance ID (after waiting one lease TTL
   * for a crashed predecessor's key to expire). The server awaits it before
   * it reports ready, bounded by `capMs`.
   */
  firstOutcome(capMs: number): Promise<void> {
    if (this.firstSettled) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(), capMs);
      timer.unref();
      this.firstWaiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  private settleFirst(err?: Error): void {
    if (this.firstSettled) return;
    this.firstSettled = true;
    const waiters = this.firstWaiters.splice(0);
    for (const w of waiters) (err ? w.reject(err) : w.resolve());
  }

  /** Another process holds our member key: never overwrite it. Wait for it to go (a crashed predecessor's lease expires). */
  private conflict(holder: MemberRecord, gen: number): void {
    const now = this.now();
    this.conflictSince ??= now;
    const message = `instance ID "${this.instance}" is held by another live process (pid ${holder.pid} on ${holder.hostname || '?'}, started ${holder.startedAt || '?'}); give each instance its own --cluster-instance`;
    const waitedEnough = now - this.conflictSince > (this.o.config.leaseTtl + 1) * 1000;
    if (!this.firstSettled && waitedEnough) {
      this.o.log.error({ instance: this.instance, holder }, 'cluster: instance ID taken');
      this.settleFirst(new RrdnsError(ErrorCode.CLUSTER_INSTANCE_TAKEN, message));
      void this.close();
      return;
    }
    // Not connected: answers go on from own verdicts meanwhile, nothing is written under the ID.
    this.trouble('member', new Error(message), gen, 500);
  }

  /** etcd failed us (error, deadline, broken stream, lost lease): go degraded and retry with backoff. */
  private trouble(op: string, e: unknown, gen: number, retryMs?: number): void {
    if (gen !== this.generation || this.#state === 'closed') return;
    this.o.metrics?.etcdError(op);
    const message = e instanceof Error ? e.message : String(e);
    this.lastError = `${op}: ${message}`;
    const first = this.#state !== 'degraded';
    this.generation++;
    if (first) {
      this.#state = 'degraded';
      this.degradedSince ??= this.now();
      this.reassign();
      this.o.onViewChange();
    }
    this.o.logLimiter.write('warn', 'cluster', 'degraded', { op, err: message, since: iso(this.degradedSince) }, 'cluster: etcd unreachable; serving on own verdicts and last known overrides');
    const watch = this.watch;
    this.watch = undefined;
    void watch?.cancel();
    clearTimeout(this.retryTimer);
    const max = this.o.backoff?.maxMs ?? 5_000;
    const wait = retryMs ?? Math.round(this.backoffMs * (0.5 + Math.random() / 2));
    if (retryMs === undefined) this.backoffMs = Math.min(max, this.backoffMs * 2);
    // The start-up waits for the first outcome: etcd unreachable is one (degraded); an ID conflict is still being waited out.
    if (op !== 'member') this.settleFirst();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.#state === 'degraded') void this.connect();
    }, wait);
    this.retryTimer.unref();
  }

  private loadSnapshot(kvs: readonly { key: string; value: string }[]): void {
    this.members.clear();
    this.remote.clear();
    this.remoteCount = 0;
    this.etcdOverrides.clear();
    const overrides: [string, string, string][] = [];
    for (const kv of kvs) {
      const k = this.keys.parse(kv.key);
      if (k.kind === 'override') overrides.push([k.owner, k.address, kv.value]);
      else this.onPut(kv.key, kv.value, true);
    }
    for (const [owner, address, value] of overrides) {
      const rec = parseOverrideOrTombstone(value);
      if (rec) this.etcdOverrides.set(`${owner}|${address}`, rec as OverrideRecord);
    }
  }

  /** After a (re)connection: our overrides against etcd's, newest wins; then the queue goes out. */
  private async syncOverrides(): Promise<void> {
    const local = new Map<string, TimedOverride>();
    for (const o of this.o.overrides.local()) local.set(`${o.owner}|${o.address}`, { override: o.override, at: o.at });
    for (const [key, at] of this.pendingClears) if (!local.has(key)) local.set(key, { override: null, at });
    const etcd = new Map<string, TimedOverride>();
    for (const [key, rec] of this.etcdOverrides) etcd.set(key, { override: rec.override, at: Date.parse(rec.at) || 0 });
    const { toEtcd, toLocal } = reconcileOverrides(local, etcd);
    for (const [key, v] of toEtcd) if (!this.overrideQueue.has(key)) this.overrideQueue.set(key, v);
    for (const [key, value] of toLocal) {
      if (this.overrideQueue.has(key)) continue;
      const [owner, address] = splitOverrideKey(key);
      this.o.overrides.apply(owner, address, value);
      this.o.log.info({ owner, address, override: value }, 'cluster: override applied from etcd');
    }
    this.pendingClears.clear();
    await this.writeOverrides();
  }

  private onPut(key: string, value: string, initial = false): void {
    const k = this.keys.parse(key);
    switch (k.kind) {
      case 'member': {
        const known = this.members.has(k.instance);
        this.members.set(k.instance, parseMember(value, k.instance));
        if (!known && !initial) {
          if (k.instance !== this.instance) this.o.log.info({ instance: k.instance }, 'cluster: member joined');
          this.reassign();
          this.o.onViewChange();
        }
        return;
      }
      case 'verdict': {
        if (k.instance === this.instance) return;
        const rec = parseVerdict(value);
        if (!rec) return;
        let held = this.remote.get(k.check);
        if (!held) this.remote.set(k.check, (held = new Map()));
        const before = held.get(k.instance);
        if (!before) {
          if (this.remoteCount >= MAX_REMOTE_VERDICTS) {
            this.o.logLimiter.write('warn', 'cluster', 'verdicts-full', { max: MAX_REMOTE_VERDICTS }, 'cluster: too many verdicts held from other instances; new ones are ignored');
            if (held.size === 0) this.remote.delete(k.check);
            return;
          }
          this.remoteCount++;
        }
        held.set(k.instance, rec);
        if (!initial) {
          const sent = Date.parse(rec.at);
          if (Number.isFinite(sent)) this.o.metrics?.propagation(Math.max(0, this.now() - sent) / 1000);
          if (this.releasing.has(k.check)) this.reassign();
          if (!before || before.health !== rec.health) this.o.onViewChange();
        }
        return;
      }
      case 'override': {
        const rec = parseOverrideOrTombstone(value);
        if (rec && !initial) this.applyOverrideEvent(k.owner, k.address, rec);
        return;
      }
      default:
        return;
    }
  }

  private onDelete(key: string): void {
    const k = this.keys.parse(key);
    if (k.kind === 'member') {
      if (k.instance === this.instance) {
        // Our own member key went (the lease expired while we were cut off, or someone deleted it): re-register.
        this.trouble('lease', new Error('this instance\'s member key was deleted'), this.generation);
        return;
      }
      if (this.members.delete(k.instance)) {
        this.dropVerdictsOf(k.instance);
        this.o.log.info({ instance: k.instance }, 'cluster: member left');
        this.reassign();
        this.o.onViewChange();
      }
    } else if (k.kind === 'verdict') {
      const held = this.remote.get(k.check);
      if (held?.delete(k.instance)) {
        this.remoteCount--;
        if (held.size === 0) this.remote.delete(k.check);
        this.o.onViewChange();
      }
    } else if (k.kind === 'override') {
      // Clearing writes a tombstone; a deleted key (by hand) clears too.
      this.applyOverrideEvent(k.owner, k.address, { override: null, setBy: '', at: new Date(this.now()).toISOString() });
    }
  }

  private dropVerdictsOf(instance: string): void {
    for (const [check, held] of this.remote) {
      if (held.delete(instance)) {
        this.remoteCount--;
        if (held.size === 0) this.remote.delete(check);
      }
    }
  }

  // ---------------------------------------------------------------- the view

  /** Live instance IDs: etcd's members, and always this one. */
  private liveIds(): string[] {
    const ids = [...this.members.keys()];
    if (!this.members.has(this.instance)) ids.push(this.instance);
    return ids;
  }

  /** This instance's own verdict for `key`, when it probes it and has a result. */
  private own(key: string): TargetState | undefined {
    if (this.off.has(key)) return undefined;
    const s = this.o.monitor.state(key);
    return s && s.checks > 0 ? s : undefined;
  }

  private combined(key: string, spec: Pick<PoolSpec, 'quorum' | 'checkers'>): QuorumResult & { basis: MemberClusterView['basis']; assigned: string[] } {
    const quorum = spec.quorum ?? 'majority';
    const own = this.own(key);
    if (this.#state === 'degraded' && own) {
      const down = own.health === 'down' ? 1 : 0;
      return { verdict: own.health, down, up: 1 - down, voters: 1, needed: 1, basis: 'own (degraded)', assigned: [this.instance] };
    }
    const liveList = this.liveIds();
    const live = new Set(liveList);
    const voters = chooseCheckers(key, liveList, spec.checkers);
    const votes: Vote[] = [];
    const held = this.remote.get(key);
    if (held) for (const [instance, v] of held) votes.push({ instance, health: v.health });
    if (own) votes.push({ instance: this.instance, health: own.health });
    const r = combineVerdicts({ quorum, live, voters, votes });
    return { ...r, basis: this.#state === 'degraded' ? 'last known (degraded)' : 'quorum', assigned: voters };
  }

  /** The health answers use for `key` in a pool with `spec`; undefined: no verdict anywhere (fail open). */
  health(key: string, spec: Pick<PoolSpec, 'quorum' | 'checkers'>): Verdict | undefined {
    const v = this.combined(key, spec).verdict;
    return v === 'unknown' ? undefined : v;
  }

  /**
   * How long until the combined verdict could change (ms), for health-aware
   * TTLs: our own monitor's figure when we probe the check, else the earliest
   * flip any other checker announced, rolled forward by its interval when
   * that time has passed (its schedule goes on between refreshes).
   */
  msToPossibleChange(key: string): number {
    const now = this.now();
    let best = this.own(key) ? this.o.monitor.timeToPossibleChange(key) : Infinity;
    const interval = this.o.monitor.target(key)?.config.interval ?? 0;
    const held = this.remote.get(key);
    if (held) {
      for (const [instance, v] of held) {
        if (!this.members.has(instance) || v.changeAt === undefined) continue;
        let at = v.changeAt;
        if (at < now && interval > 0) at += Math.ceil((now - at) / interval) * interval;
        best = Math.min(best, Math.max(0, at - now));
      }
    }
    return Number.isFinite(best) ? best : 0;
  }

  /** Each instance's verdict and the combined one, for the health snapshot. */
  memberView(key: string, spec: Pick<PoolSpec, 'quorum' | 'checkers'>): MemberClusterView {
    const c = this.combined(key, spec);
    const verdicts: MemberClusterView['verdicts'] = [];
    const own = this.own(key);
    if (own) {
      verdicts.push({ instance: this.instance, self: true, ...withoutChangeAt(this.verdictRecord(key, own)) });
    }
    const held = this.remote.get(key);
    if (held) {
      for (const [instance, v] of [...held].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (this.members.has(instance)) verdicts.push({ instance, self: false, ...withoutChangeAt(v) });
      }
    }
    return {
      quorum: spec.quorum ?? 'majority',
      checkers: spec.checkers ?? null,
      combined: c.verdict,
      basis: c.basis,
      down: c.down,
      up: c.up,
      voters: c.voters,
      needed: c.needed,
      probedHere: !this.off.has(key),
      assigned: c.assigned,
      verdicts,
    };
  }

  /** GET /api/v1/cluster. */
  status(): Record<string, unknown> {
    const counts = new Map<string, number>();
    for (const held of this.remote.values()) for (const i of held.keys()) counts.set(i, (counts.get(i) ?? 0) + 1);
    const members = this.liveIds()
      .sort()
      .map((id) => {
        const m = this.members.get(id);
        const self = id === this.instance;
        return {
          instance: id,
          self,
          startedAt: m?.startedAt ?? (self ? new Date(this.startedAt).toISOString() : null),
          admin: m?.admin ?? (self ? this.o.member.admin() : null),
          listen: m?.listen ?? (self ? this.o.member.listen() : []),
          verdicts: self ? this.published.size : (counts.get(id) ?? 0),
        };
      });
    return {
      enabled: true,
      name: this.o.config.name,
      instance: this.instance,
      etcd: this.o.config.etcd,
      state: this.#state,
      degraded: this.#state === 'degraded',
      degradedSince: iso(this.degradedSince),
      lastError: this.lastError,
      lastSyncAt: iso(this.lastSyncAt),
      leaseTtl: this.o.config.leaseTtl,
      reconnects: this.reconnects,
      members,
      checks: { total: this.checks.size, probedHere: this.checks.size - this.off.size },
      overrides: [...this.etcdOverrides.values()].filter((o) => o.override !== null).length,
    };
  }

  /** The short form /readyz and /api/v1/health carry. */
  brief(): { state: ClusterState; instance: string; degraded: boolean; degradedSince: string | null; error: string | null } {
    return { state: this.#state, instance: this.instance, degraded: this.degraded, degradedSince: iso(this.degradedSince), error: this.lastError };
  }

  /** For metrics. */
  gauges(): { degraded: number; members: number; checks: number; probed: number } {
    return { degraded: this.degraded ? 1 : 0, members: this.liveIds().length, checks: this.checks.size, probed: this.checks.size - this.off.size };
  }
}

function withoutChangeAt(v: VerdictRecord): Omit<VerdictRecord, 'changeAt'> {
  const { changeAt: _drop, ...rest } = v;
  return rest;
}

function splitOverrideKey(key: string): [string, string] {
  const bar = key.lastIndexOf('|');
  return [key.slice(0, bar), key.slice(bar + 1)];
}

/** An override record, or a tombstone (`override: null`) a clear wrote. */
function parseOverrideOrTombstone(text: string): { override: AdminOverride | null; setBy: string; at: string } | undefined {
  const rec = parseOverride(text);
  if (rec) return rec;
  try {
    const v = JSON.parse(text) as { override?: unknown; setBy?: unknown; at?: unknown };
    if (v && v.override === null) return { override: null, setBy: typeof v.setBy === 'string' ? v.setBy : '', at: typeof v.at === 'string' ? v.at : '' };
  } catch {
    /* not ours */
  }
  return undefined;
}
