/**
 * This instance as a cluster member: wires the parts, each doing one job —
 * session.ts (the etcd connection: lease, member key, snapshot, watch,
 * degraded and backoff), members.ts (live instances, rendezvous checkers),
 * remote-verdicts.ts (the others' verdicts), publisher.ts (ours into etcd),
 * assignment.ts (what is probed here: checkers: K), override-sync.ts (shared
 * overrides), view.ts (the combined verdicts answers use). Policy is in pure
 * functions beside them (quorum.ts, rendezvous.ts, reconcile.ts).
 *
 * Outside `connected` every check is probed here and answers come from this
 * instance's own verdicts (the last verdicts it knew from the others where
 * it has no own result yet) and the last overrides it knew; on return
 * everything is resynchronised (snapshot, overrides reconciled, own verdicts
 * republished, checks handed back).
 */
import type { TargetState } from '../health/monitor.ts';
import type { MemberClusterSnapshot } from '../observability/snapshot.ts';
import type { AdminOverride, PoolSpec } from '../zone/zone.ts';
import { KeyLayout, parseVerdict } from './keys.ts';
import type { KeyValue } from './store.ts';
import { Membership } from './members.ts';
import { MAX_REMOTE_VERDICTS, RemoteVerdicts } from './remote-verdicts.ts';
import { VerdictPublisher } from './publisher.ts';
import { ProbeAssignment } from './assignment.ts';
import { OverrideSync } from './override-sync.ts';
import { ClusterView } from './view.ts';
import { EtcdSession } from './session.ts';
import type { Verdict } from './quorum.ts';
import type { ClusterNodeOptions, ClusterState } from './types.ts';

export type { ClusterNodeOptions, ClusterState, MonitorPort, OverridePort, ClusterMetricsSink } from './types.ts';
export { MAX_REMOTE_VERDICTS };

type Spec = Pick<PoolSpec, 'quorum' | 'checkers'>;

export class ClusterNode {
  readonly instance: string;
  readonly #o: ClusterNodeOptions;
  readonly #keys: KeyLayout;
  readonly #now: () => number;
  readonly #members: Membership;
  readonly #remote = new RemoteVerdicts();
  readonly #publisher: VerdictPublisher;
  readonly #assignment: ProbeAssignment;
  readonly #overrides: OverrideSync;
  readonly #view: ClusterView;
  readonly #session: EtcdSession;
  #refreshTimer: NodeJS.Timeout | undefined;

  constructor(o: ClusterNodeOptions) {
    this.#o = o;
    this.instance = o.instance;
    this.#keys = new KeyLayout(o.config.name);
    this.#now = o.now ?? Date.now;
    this.#members = new Membership(o.instance);
    const connected = () => this.#session.connected;
    const generation = () => this.#session.generation;
    const trouble = (op: string, e: unknown, gen: number) => this.#session.trouble(op, e, gen);
    this.#publisher = new VerdictPublisher({
      instance: o.instance,
      keys: this.#keys,
      store: o.store,
      monitor: o.monitor,
      now: this.#now,
      metrics: o.metrics,
      connected,
      publishes: (key) => this.#assignment.has(key) && this.#assignment.probes(key),
      generation,
      trouble,
    });
    this.#assignment = new ProbeAssignment({
      instance: o.instance,
      monitor: o.monitor,
      members: this.#members,
      remote: this.#remote,
      leaseTtlMs: o.config.leaseTtl * 1000,
      connected,
      now: this.#now,
      log: o.log,
      onViewChange: o.onViewChange,
      withdraw: (key) => this.#publisher.withdraw(key),
    });
    this.#overrides = new OverrideSync({ instance: o.instance, keys: this.#keys, store: o.store, port: o.overrides, log: o.log, now: this.#now, connected, generation, trouble, onViewChange: o.onViewChange });
    this.#view = new ClusterView({ instance: o.instance, monitor: o.monitor, members: this.#members, remote: this.#remote, assignment: this.#assignment, degraded: () => this.#session.degraded, now: this.#now });
    this.#session = new EtcdSession({
      instance: o.instance,
      config: o.config,
      store: o.store,
      keys: this.#keys,
      log: o.log,
      logLimiter: o.logLimiter,
      metrics: o.metrics,
      now: this.#now,
      member: o.member,
      backoff: o.backoff,
      hooks: {
        snapshot: (kvs) => this.#loadSnapshot(kvs),
        put: (kv) => this.#onPut(kv, false),
        delete: (key) => this.#onDelete(key),
        connected: (degradedSince) => this.#onConnected(degradedSince),
        degraded: () => {
          // Every check is probed here now: answers come from own verdicts.
          this.#assignment.reassign();
          o.onViewChange();
        },
      },
    });
  }

  get state(): ClusterState {
    return this.#session.state;
  }

  get degraded(): boolean {
    return this.#session.degraded;
  }

  /** Starts connecting in the background: the server answers whether etcd is there or not. */
  start(): void {
    this.#session.start();
    if (this.#refreshTimer) return;
    this.#refreshTimer = setInterval(() => this.#publisher.refreshTimes(), this.#o.refreshMs ?? 30_000);
    this.#refreshTimer.unref();
  }

  /** See EtcdSession.firstOutcome: the server awaits it before it reports ready. */
  firstOutcome(capMs: number): Promise<void> {
    return this.#session.firstOutcome(capMs);
  }

  /** Idempotent: revokes the lease (our member and verdict keys go at once), stops the watch and the client. */
  async close(): Promise<void> {
    clearInterval(this.#refreshTimer);
    this.#assignment.close();
    await this.#publisher.idle();
    await this.#session.close();
  }

  // ---------------------------------------------------------------- from the server

  /** The checks the served pools use (after each zone install); decides what this instance probes. */
  setChecks(entries: Iterable<{ key: string; checkers: number | undefined }>): void {
    this.#assignment.setChecks(entries);
    // Checks that had results before they were known here (the first round of an install) go out now.
    this.#publisher.markUnpublished(this.#assignment.keys());
  }

  /** Every probe result (the monitor's onResult). */
  observe(state: TargetState): void {
    this.#publisher.observe(state);
  }

  /** Probed here? (the monitor's `probe` option for targets an install adds) */
  probes(key: string): boolean {
    return this.#assignment.probes(key);
  }

  /** An override set through this instance's API (kept and applied here already). */
  publishOverride(owner: string, address: string, value: AdminOverride | null): void {
    this.#overrides.publish(owner, address, value);
  }

  // ---------------------------------------------------------------- the view (pool-registry.ts HealthView)

  health(key: string, spec: Spec): Verdict | undefined {
    return this.#view.health(key, spec);
  }

  msToPossibleChange(key: string): number {
    return this.#view.msToPossibleChange(key);
  }

  memberView(key: string, spec: Spec): MemberClusterSnapshot {
    return this.#view.memberView(key, spec);
  }

  // ---------------------------------------------------------------- from etcd

  #loadSnapshot(kvs: readonly KeyValue[]): void {
    this.#members.clear();
    this.#remote.clear();
    const overrides: { owner: string; address: string; value: string }[] = [];
    for (const kv of kvs) {
      const k = this.#keys.parse(kv.key);
      if (k.kind === 'override') overrides.push({ owner: k.owner, address: k.address, value: kv.value });
      else this.#onPut(kv, true);
    }
    this.#overrides.load(overrides);
  }

  async #onConnected(degradedSince: number | undefined): Promise<void> {
    this.#assignment.connectedNow();
    await this.#overrides.sync();
    this.#publisher.republish(this.#assignment.keys());
    this.#assignment.reassign();
    this.#o.onViewChange();
    if (degradedSince !== undefined) {
      this.#o.log.info({ members: this.#members.size, overrides: this.#overrides.count, verdicts: this.#remote.count, degradedMs: this.#now() - degradedSince }, 'cluster: etcd back; resynchronised');
    }
  }

  #onPut(kv: KeyValue, initial: boolean): void {
    const k = this.#keys.parse(kv.key);
    if (k.kind === 'member') {
      if (this.#members.put(k.instance, kv.value) && !initial) {
        if (k.instance !== this.instance) this.#o.log.info({ instance: k.instance }, 'cluster: member joined');
        this.#assignment.reassign();
        this.#o.onViewChange();
      }
    } else if (k.kind === 'verdict') {
      if (k.instance === this.instance) return;
      const rec = parseVerdict(kv.value);
      if (!rec) return;
      const { previous, full } = this.#remote.put(k.instance, k.check, rec);
      if (full) {
        this.#o.logLimiter.write('warn', 'cluster', 'verdicts-full', { max: MAX_REMOTE_VERDICTS }, 'cluster: too many verdicts held from other instances; new ones are ignored');
        return;
      }
      if (initial) return;
      const sent = Date.parse(rec.at);
      if (Number.isFinite(sent)) this.#o.metrics?.propagation(Math.max(0, this.#now() - sent) / 1000);
      if (this.#assignment.releasing(k.check)) this.#assignment.reassign();
      if (!previous || previous.health !== rec.health) this.#o.onViewChange();
    } else if (k.kind === 'override' && !initial) {
      this.#overrides.event(k.owner, k.address, kv.value);
    }
  }

  #onDelete(key: string): void {
    const k = this.#keys.parse(key);
    if (k.kind === 'member') {
      if (k.instance === this.instance) {
        // Our own member key went (the lease expired while we were cut off, or it was deleted by hand): re-register.
        this.#session.trouble('lease', new Error("this instance's member key was deleted"), this.#session.generation);
        return;
      }
      if (this.#members.delete(k.instance)) {
        this.#remote.dropInstance(k.instance);
        this.#o.log.info({ instance: k.instance }, 'cluster: member left');
        this.#assignment.reassign();
        this.#o.onViewChange();
      }
    } else if (k.kind === 'verdict') {
      if (this.#remote.delete(k.instance, k.check)) this.#o.onViewChange();
    } else if (k.kind === 'override') {
      this.#overrides.event(k.owner, k.address, null);
    }
  }

  // ---------------------------------------------------------------- status

  /** GET /api/v1/cluster. */
  status(): Record<string, unknown> {
    const counts = this.#remote.countsByInstance();
    const startedAt = new Date(this.#session.startedAt).toISOString();
    const members = [...this.#members.liveIds()].sort().map((id) => {
      const m = this.#members.get(id);
      const self = id === this.instance;
      return {
        instance: id,
        self,
        startedAt: m?.startedAt ?? (self ? startedAt : null),
        admin: m?.admin ?? (self ? this.#o.member.admin() : null),
        listen: m?.listen ?? (self ? this.#o.member.listen() : []),
        verdicts: self ? this.#publisher.size : (counts.get(id) ?? 0),
      };
    });
    const s = this.#session.info();
    return {
      enabled: true,
      name: this.#o.config.name,
      instance: this.instance,
      etcd: this.#o.config.etcd,
      state: s.state,
      degraded: s.state === 'degraded',
      degradedSince: s.degradedSince,
      lastError: s.lastError,
      lastSyncAt: s.lastSyncAt,
      leaseTtl: this.#o.config.leaseTtl,
      reconnects: s.reconnects,
      members,
      checks: { total: this.#assignment.total, probedHere: this.#assignment.probedHere },
      overrides: this.#overrides.count,
    };
  }

  /** The short form /readyz and /api/v1/health carry. */
  brief(): { state: ClusterState; instance: string; degraded: boolean; degradedSince: string | null; error: string | null } {
    const s = this.#session.info();
    return { state: s.state, instance: this.instance, degraded: s.state === 'degraded', degradedSince: s.degradedSince, error: s.lastError };
  }

  /** For metrics. */
  gauges(): { degraded: number; members: number; checks: number; probed: number } {
    return { degraded: this.degraded ? 1 : 0, members: this.#members.liveIds().length, checks: this.#assignment.total, probed: this.#assignment.probedHere };
  }
}
