/**
 * Health-checked pools at run time: which targets to watch for the zones being
 * served, the admin overrides, and what each pooled RRset serves right now
 * (`liveSet`). It gathers each member's health and override; pool-policy.ts
 * decides from them. Also the state snapshot the admin API shows.
 */
import type { RData } from '../zone/records.ts';
import { RRType } from '../zone/records.ts';
import { nameToText } from '../zone/name.ts';
import { configuredWeight, type AdminOverride, type PoolSpec, type RRset, type Zone } from '../zone/zone.ts';
import type { LiveSet } from '../resolver/resolve.ts';
import { requireFping } from '../health/icmp/fping-locate.ts';
import { canonicalAddress, makeTarget, type CheckTarget } from '../health/target.ts';
import type { MonitorApi, TargetState } from '../health/monitor.ts';
import type { MemberClusterSnapshot, MemberRole, PoolSnapshot } from '../observability/snapshot.ts';
import { memberKey, type SampledPool } from '../observability/balance-history.ts';
import { decidePool, usable, type PolicyMember } from './pool-policy.ts';
import { probePlan, type ProbePlan } from './probe-plan.ts';
import { OVERFLOW_SLOT, type FirstServedCounters } from '../balancing/first-served.ts';

interface Member {
  address: string;
  role: MemberRole;
  target: CheckTarget;
  data: RData;
}

/** One pooled RRset: the primaries of one family, and the standbys of that family. */
export interface PoolEntry {
  /** Names the pool across reloads and threads: `owner|A` (owner as the snapshot writes it). */
  key: string;
  zone: Zone;
  rrset: RRset;
  spec: PoolSpec;
  members: Member[];
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** An owner as the snapshot names it: lower case, trailing dot. */
const ownerText = (name: string) => {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : nameToText(lower);
};

/**
 * Overrides set through the API, keyed by owner and address as the snapshot
 * names a member. They win over the zone file's and survive reloads; one for
 * a member no zone has now is kept and applies when the member comes back
 * (the state directory keeps them across restarts too, src/state/).
 */
export class ApiOverrides {
  private readonly byKey = new Map<string, AdminOverride>();
  private static key(owner: string, address: string): string {
    return `${ownerText(owner)}|${address}`;
  }
  get(owner: string, address: string): AdminOverride | undefined {
    return this.byKey.get(ApiOverrides.key(owner, address));
  }
  has(owner: string, address: string): boolean {
    return this.byKey.has(ApiOverrides.key(owner, address));
  }
  set(owner: string, address: string, value: AdminOverride | null): void {
    if (value === null) this.byKey.delete(ApiOverrides.key(owner, address));
    else this.byKey.set(ApiOverrides.key(owner, address), value);
  }
  list(): { owner: string; address: string; override: AdminOverride }[] {
    return [...this.byKey].map(([k, override]) => {
      const bar = k.lastIndexOf('|');
      return { owner: k.slice(0, bar), address: k.slice(bar + 1), override };
    });
  }
}

/**
 * The balancing state the policy reads: each member's effective weight.
 * Load feedback (src/balancing/) provides one; without it a member weighs
 * what the zone says.
 */
export interface WeightSource {
  /** Effective weight of `address` in pool `poolKey`, whose configured weight is `configured`. */
  weight(poolKey: string, address: string, configured: number): number;
  /** The load `address` last reported, where the source reads loads (load feedback). */
  load?(poolKey: string, address: string): number | undefined;
}


/**
 * Where each member's health comes from when it is not this instance's own
 * monitor alone: the cluster (src/cluster/node.ts) combines the live
 * instances' verdicts by the pool's quorum.
 */
export interface HealthView {
  /** The health answers use; undefined: no verdict anywhere yet (fail open). */
  health(key: string, spec: Pick<PoolSpec, 'quorum' | 'checkers'>): 'up' | 'down' | undefined;
  msToPossibleChange(key: string): number;
  memberView(key: string, spec: Pick<PoolSpec, 'quorum' | 'checkers'>): MemberClusterSnapshot;
}

export const configuredWeights: WeightSource = { weight: (_pool, _address, configured) => configured };


export class PoolRegistry {
  private entries = new Map<RRset, PoolEntry>();
  private readonly apiOverrides = new ApiOverrides();
  private readonly monitor: MonitorApi;
  private readonly weights: WeightSource;
  private view: HealthView | undefined;

  /** Members' health from `view` (the cluster's combined verdicts) instead of the monitor alone. */
  setHealthView(view: HealthView | undefined): void {
    this.view = view;
  }

  /** Sets (null clears) an API override as the cluster delivered it: no member check (it may be for a zone not served here yet). */
  applyOverride(owner: string, address: string, override: AdminOverride | null): void {
    this.apiOverrides.set(owner, address, override);
  }

  /** The API overrides in force (cluster reconciliation when there is no state directory). */
  apiOverrideList(): { owner: string; address: string; override: AdminOverride }[] {
    return this.apiOverrides.list();
  }

  constructor(monitor: MonitorApi, weights: WeightSource = configuredWeights) {
    this.monitor = monitor;
    this.weights = weights;
  }

  /** First-position counting (src/balancing/first-served.ts) and the share history reads; see observeBalance. */
  private firstServed: FirstServedCounters | undefined;
  private firstShare: ((zone: string, name: string, type: 'A' | 'AAAA', address: string) => number | null) | undefined;

  /**
   * Live sets name each record's first-position counter slot from
   * `firstServed`; snapshots carry each member's count and, from `firstShare`
   * (the balance history), its share over the last sampling interval.
   */
  observeBalance(firstServed: FirstServedCounters, firstShare?: (zone: string, name: string, type: 'A' | 'AAAA', address: string) => number | null): void {
    this.firstServed = firstServed;
    this.firstShare = firstShare;
  }

  /** Answers that put `m` first so far; null when not counted (no counters, or the table was full). */
  private firstCount(entry: PoolEntry, m: Member): number | null {
    const slot = this.firstServed?.slot(entry.key, m.address);
    return slot === undefined || slot === OVERFLOW_SLOT ? null : this.firstServed!.totalOf(slot);
  }

  /** The pools served now (for the balancer, which steps each one's effective weights). */
  pools(): Iterable<PoolEntry> {
    return this.entries.values();
  }

  /** Every pool the given zones have, with their check targets (not yet watched). Throws on an unreadable CA file, or icmp checks without fping. */
  static plan(zones: readonly Zone[]): Map<RRset, PoolEntry> {
    const entries = new Map<RRset, PoolEntry>();
    // Indexed: with 10,000 zones a for-of made an iterator result per zone on every reload.
    for (let z = 0; z < zones.length; z++) {
      const zone = zones[z]!;
      if (zone.pooled.length === 0) continue;
      for (const rrset of zone.pooled) {
        const spec = rrset.pool!;
        const family = rrset.type === RRType.A ? 4 : 6;
        const members: Member[] = [];
        const add = (data: RData, role: MemberRole) => {
          const address = (data as { address: string }).address;
          const t = makeTarget(address, rrset.owner, spec.memberChecks.get(address) ?? spec.check);
          if (t.family === family) members.push({ address: t.address, role, target: t, data });
        };
        for (const data of rrset.records) add(data, 'primary');
        for (const address of spec.standby) add({ kind: family === 4 ? 'A' : 'AAAA', address } as RData, 'standby');
        entries.set(rrset, { key: `${ownerText(rrset.owner)}|${family === 4 ? 'A' : 'AAAA'}`, zone, rrset, spec, members });
      }
    }
    // ICMP checks need fping: refused here, with its name, rather than every icmp member going down later.
    if ([...entries.values()].some((e) => e.members.some((m) => m.target.config.type === 'icmp'))) requireFping();
    return entries;
  }

  static targets(entries: Map<RRset, PoolEntry>): CheckTarget[] {
    return [...entries.values()].flatMap((e) => e.members.map((m) => m.target));
  }

  /** The pools served now, as plan() made them (an install whose changed zones have no pools keeps them). */
  get planned(): Map<RRset, PoolEntry> {
    return this.entries;
  }

  /** Makes `entries` the pools served (after the monitor watches their targets). */
  use(entries: Map<RRset, PoolEntry>): void {
    this.entries = entries;
    this.coldKeys = new Set([...entries.values()].flatMap((e) => (e.spec.standbyMode === 'cold' ? e.members.filter((m) => m.role === 'standby').map((m) => m.target.key) : [])));
  }

  /** Check keys that are a cold standby in a served pool. */
  private coldKeys = new Set<string>();

  /** Whether `key` is a cold standby's check in a served pool (its first result can change answers without a change of health). */
  isColdStandby(key: string): boolean {
    return this.coldKeys.has(key);
  }

  /**
   * Which cold standby checks to probe now (probe-plan.ts), over the pools
   * served and `extra` ones (a reload's, before they serve).
   */
  probePlan(extra: Iterable<PoolEntry> = []): ProbePlan {
    const all = [...this.entries.values(), ...extra];
    // Called on every answer rebuild: without a cold pool there is nothing to decide.
    if (!all.some((e) => e.spec.standbyMode === 'cold')) return { managed: new Set(), probe: new Set() };
    const pools = all.map((entry) => {
      const policy = this.policyMembers(entry);
      return {
        standbyMode: entry.spec.standbyMode,
        allDown: entry.spec.allDown,
        members: entry.members.map((m, i) => ({ key: m.target.key, role: m.role, usable: usable(policy[i]!) })),
      };
    });
    return probePlan(pools);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The member an override request names, as the snapshot and the state file
   * name it (owner lower case with a trailing dot, canonical address); undefined
   * when no pool has that member. Clearing also finds an override kept for a
   * member that no zone has now.
   */
  overrideTarget(name: string, address: string, clearing = false): { owner: string; address: string } | undefined {
    const owner = ownerText(name);
    let addr: string;
    try {
      addr = canonicalAddress(address).address;
    } catch {
      return undefined;
    }
    const exists = [...this.entries.values()].some((e) => ownerText(e.rrset.owner) === owner && e.members.some((m) => m.address === addr));
    if (exists || (clearing && this.apiOverrides.has(owner, addr))) return { owner, address: addr };
    return undefined;
  }

  /** Sets (or with null clears) the API override of `address` in the pool of `name`; false when no such member. */
  setOverride(name: string, address: string, override: AdminOverride | null): boolean {
    const target = this.overrideTarget(name, address, override === null);
    if (!target) return false;
    this.apiOverrides.set(target.owner, target.address, override);
    return true;
  }

  /** Overrides kept from before a restart (members not served now included). */
  restoreOverrides(kept: Iterable<{ owner: string; address: string; override: AdminOverride }>): void {
    for (const k of kept) this.apiOverrides.set(k.owner, k.address, k.override);
  }

  private override(entry: PoolEntry, m: Member): { value: AdminOverride | null; source: 'api' | 'zone' | null } {
    const api = this.apiOverrides.get(entry.rrset.owner, m.address);
    if (api) return { value: api, source: 'api' };
    const zone = entry.spec.overrides.get(m.address);
    return zone ? { value: zone, source: 'zone' } : { value: null, source: null };
  }

  /** The policy's inputs for each member, now. */
  private policyMembers(entry: PoolEntry): PolicyMember[] {
    const cold = entry.spec.standbyMode === 'cold';
    return entry.members.map((m) => ({
      role: m.role,
      override: this.override(entry, m).value,
      health: this.health(m, cold, entry.spec),
      msToPossibleChange: this.view ? this.view.msToPossibleChange(m.target.key) : this.monitor.timeToPossibleChange(m.target.key),
      weight: this.weights.weight(entry.key, m.address, configuredWeight(entry.spec, m.address)),
      load: this.weights.load?.(entry.key, m.address),
    }));
  }

  /**
   * Measured health as the policy reads it. Before a target's first result (e.g.
   * just added by a reload) it counts as up: fail open; except a cold standby,
   * which serves only once a check has passed (it was not probed while the
   * primaries served, so "no result" says nothing about it).
   */
  private health(m: Member, cold: boolean, spec: PoolSpec): 'up' | 'down' {
    // In a cluster: the live instances' combined verdict, where any has one.
    const combined = this.view?.health(m.target.key, spec);
    if (combined) return combined;
    const s = this.view ? undefined : this.monitor.state(m.target.key);
    if (cold && m.role === 'standby' && (!s || s.checks === 0)) return 'down';
    return s?.health ?? 'up';
  }

  /** The TTL the pool's answers carry now (ms): how long caches keep a weight's effect (load feedback). */
  servedTtlMs(entry: PoolEntry): number {
    return this.decide(entry).ttl * 1000;
  }

  /**
   * Per member of `entry`, whether it serves now and is healthy (or forced
   * up): the members load feedback balances. One policy decision per pool.
   */
  usableMembers(entry: PoolEntry): boolean[] {
    const { members: served, policyMembers } = this.decide(entry);
    return policyMembers.map((m, i) => usable(m) && served.includes(i));
  }

  private decide(entry: PoolEntry) {
    const members = this.policyMembers(entry);
    const decision = decidePool(members, entry.spec, entry.rrset.ttl, entry.zone.ttlPolicy);
    return { ...decision, served: decision.members.map((i) => entry.members[i]!), policyMembers: members };
  }

  /** What `rrset` serves now; undefined for RRsets without a pool. */
  liveSet(rrset: RRset): LiveSet | undefined {
    const entry = this.entries.get(rrset);
    if (!entry) return undefined;
    const { serving, served, ttl, weights, steer } = this.decide(entry);
    if (serving === 'allDown:nodata') return { kind: 'nodata' };
    if (serving === 'allDown:servfail') return { kind: 'servfail' };
    const counters = this.firstServed;
    const firstSlots = counters ? served.map((m) => counters.slot(entry.key, m.address)) : undefined;
    return { kind: 'records', records: served.map((m) => m.data), ttl, weights, firstSlots, steer };
  }

  /** What every health-checked RRset serves now, keyed the same in every thread (for UDP worker threads). */
  liveTable(key: (zone: Zone, rrset: RRset) => string): [string, LiveSet][] {
    const out: [string, LiveSet][] = [];
    for (const entry of this.entries.values()) {
      const set = this.liveSet(entry.rrset);
      if (set) out.push([key(entry.zone, entry.rrset), set]);
    }
    return out;
  }

  /**
   * What the balance history samples every 10 s, per member: its
   * first-position count, effective weight and load. Not snapshot(), which
   * decides every pool and copies every member's health state: with 5,000
   * checked members that was a ~50 ms task on the answering thread and ~25 MB
   * of garbage (a young-generation collection) each time.
   */
  balanceSample(): SampledPool[] {
    const out: SampledPool[] = [];
    for (const entry of this.entries.values()) {
      // One object per pool and member, kept and updated in place: its names and member keys are made once.
      let sampled = this.sampled.get(entry);
      if (!sampled) {
        const zone = nameToText(entry.zone.origin);
        const name = ownerText(entry.rrset.owner);
        const type = entry.rrset.type === RRType.A ? 'A' : 'AAAA';
        const members = entry.members.map((m) => ({ address: m.address, key: memberKey(zone, name, type, m.address), firstServed: null as number | null, effectiveWeight: 0, load: null as number | null }));
        this.sampled.set(entry, (sampled = { zone, name, type, members }));
      }
      entry.members.forEach((m, i) => {
        const s = sampled.members[i]!;
        s.firstServed = this.firstCount(entry, m);
        s.effectiveWeight = this.weights.weight(entry.key, m.address, configuredWeight(entry.spec, m.address));
        s.load = this.weights.load?.(entry.key, m.address) ?? null;
      });
      out.push(sampled);
    }
    return out;
  }

  /** Each pool's balance sample, made once and updated in place (balanceSample runs every 10 s over every pool). */
  private readonly sampled = new WeakMap<PoolEntry, SampledPool & { members: { address: string; key: string; firstServed: number | null; effectiveWeight: number; load: number | null }[] }>();

  snapshot(): PoolSnapshot[] {
    const out: PoolSnapshot[] = [];
    for (const entry of this.entries.values()) {
      const { serving, served, ttl, policyMembers } = this.decide(entry);
      const zone = nameToText(entry.zone.origin);
      const name = ownerText(entry.rrset.owner);
      const type = entry.rrset.type === RRType.A ? 'A' : 'AAAA';
      out.push({
        zone,
        name,
        type,
        allDown: entry.spec.allDown,
        minHealthy: entry.spec.minHealthy ?? null,
        serving,
        ttl,
        members: entry.members.map((m, i) => {
          const s: TargetState | undefined = this.monitor.state(m.target.key);
          const o = this.override(entry, m);
          const cluster = this.view?.memberView(m.target.key, entry.spec);
          return {
            address: m.address,
            role: m.role,
            health: cluster ? cluster.combined : s && s.checks > 0 ? s.health : 'unknown',
            override: o.value,
            overrideSource: o.source,
            served: served.includes(m),
            since: iso(s?.since),
            lastCheckAt: iso(s?.lastCheckAt),
            lastResult: s?.lastOutcome?.detail ?? null,
            lastOk: s?.lastOutcome?.ok ?? null,
            latencyMs: s?.lastOutcome?.latencyMs ?? null,
            consecutiveOk: s?.consecutiveOk ?? 0,
            consecutiveFail: s?.consecutiveFail ?? 0,
            check: m.target.key,
            probing: this.monitor.probing(m.target.key),
            weight: configuredWeight(entry.spec, m.address),
            effectiveWeight: policyMembers[i]!.weight,
            load: this.weights.load?.(entry.key, m.address) ?? null,
            firstShare: this.firstShare?.(zone, name, type, m.address) ?? null,
            firstServed: this.firstCount(entry, m),
            ...(cluster ? { cluster } : {}),
          };
        }),
      });
    }
    return out;
  }
}
