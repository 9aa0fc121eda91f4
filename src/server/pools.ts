/**
 * Health-checked pools at run time: which targets to watch for the zones being
 * served, and what each pooled RRset serves right now (`liveSet`), decided from
 * measured health, admin overrides and the pool's policy. Also the health-aware
 * TTL and the state snapshot the admin API shows.
 */
import type { RData } from '../zone/records.ts';
import { RRType } from '../zone/records.ts';
import { nameToText } from '../zone/name.ts';
import { clampTtl, type AdminOverride, type PoolSpec, type RRset, type Zone } from '../zone/zone.ts';
import type { LiveSet } from '../resolver/resolve.ts';
import { canonicalAddress, makeTarget, type CheckTarget } from '../health/target.ts';
import type { HealthMonitor, TargetState } from '../health/monitor.ts';
import type { MemberRole, MemberSnapshot, PoolSnapshot, Serving } from '../observability/snapshot.ts';

export type { MemberRole, MemberSnapshot, PoolSnapshot, Serving };


interface Member {
  address: string;
  role: MemberRole;
  target: CheckTarget;
  data: RData;
}

/** One pooled RRset: the primaries of one family, and the standbys of that family. */
interface PoolEntry {
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
/** Override key, as the snapshot names a member: owner and address. */
const overrideKey = (owner: string, address: string) => `${owner}|${address}`;

export class PoolRegistry {
  private entries = new Map<RRset, PoolEntry>();
  /** Overrides set through the API; they win over the zone file's and survive reloads. */
  private readonly apiOverrides = new Map<string, AdminOverride>();
  private readonly monitor: HealthMonitor;

  constructor(monitor: HealthMonitor) {
    this.monitor = monitor;
  }

  /** Every check target the given zones need (not yet watched). Throws on an unreadable CA file. */
  static plan(zones: readonly Zone[]): Map<RRset, PoolEntry> {
    const entries = new Map<RRset, PoolEntry>();
    for (const zone of zones) {
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
        entries.set(rrset, { zone, rrset, spec, members });
      }
    }
    return entries;
  }

  static targets(entries: Map<RRset, PoolEntry>): CheckTarget[] {
    return [...entries.values()].flatMap((e) => e.members.map((m) => m.target));
  }

  /** Makes `entries` the pools served (after the monitor watches their targets). */
  use(entries: Map<RRset, PoolEntry>): void {
    this.entries = entries;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Sets (or with null clears) the API override of `address` in the pool of `name`; false when no such member. */
  setOverride(name: string, address: string, override: AdminOverride | null): boolean {
    const owner = ownerText(name);
    let addr: string;
    try {
      addr = canonicalAddress(address).address;
    } catch {
      return false;
    }
    const exists = [...this.entries.values()].some((e) => ownerText(e.rrset.owner) === owner && e.members.some((m) => m.address === addr));
    if (!exists) return false;
    if (override === null) this.apiOverrides.delete(overrideKey(owner, addr));
    else this.apiOverrides.set(overrideKey(owner, addr), override);
    return true;
  }

  private override(entry: PoolEntry, m: Member): { value: AdminOverride | null; source: 'api' | 'zone' | null } {
    const api = this.apiOverrides.get(overrideKey(ownerText(entry.rrset.owner), m.address));
    if (api) return { value: api, source: 'api' };
    const zone = entry.spec.overrides.get(m.address);
    return zone ? { value: zone, source: 'zone' } : { value: null, source: null };
  }

  /** Usable for answers: measured up (or forced up), not forced down, not drained. */
  private usable(entry: PoolEntry, m: Member): boolean {
    const o = this.override(entry, m).value;
    if (o === 'drain' || o === 'force-down') return false;
    if (o === 'force-up') return true;
    // Before a target's first result (e.g. just added by a reload) it counts as up: fail open.
    return (this.monitor.state(m.target.key)?.health ?? 'up') === 'up';
  }

  private decide(entry: PoolEntry): { serving: Serving; members: Member[] } {
    const primaries = entry.members.filter((m) => m.role === 'primary');
    const healthy = primaries.filter((m) => this.usable(entry, m));
    // Failing open never brings back what an operator took out (drain, force-down).
    const notDrained = primaries.filter((m) => {
      const o = this.override(entry, m).value;
      return o !== 'drain' && o !== 'force-down';
    });
    const spec = entry.spec;
    if (healthy.length > 0) {
      if (spec.minHealthy !== undefined && healthy.length / primaries.length < spec.minHealthy) {
        return { serving: 'minHealthy', members: notDrained.length > 0 ? notDrained : primaries };
      }
      return { serving: 'healthy', members: healthy };
    }
    switch (spec.allDown) {
      case 'backup': {
        const standby = entry.members.filter((m) => m.role === 'standby' && this.usable(entry, m));
        // No healthy standby either: fail open rather than answer with nothing.
        return standby.length > 0 ? { serving: 'allDown:backup', members: standby } : { serving: 'allDown:serveAll', members: notDrained.length > 0 ? notDrained : primaries };
      }
      case 'nodata':
        return { serving: 'allDown:nodata', members: [] };
      case 'servfail':
        return { serving: 'allDown:servfail', members: [] };
      default:
        return { serving: 'allDown:serveAll', members: notDrained.length > 0 ? notDrained : primaries };
    }
  }

  /**
   * Health-aware TTL: never longer than the time until this answer could next
   * change — the soonest any measured member could flip — then the zone's clamps.
   */
  private ttl(entry: PoolEntry): number {
    let soonestMs = Infinity;
    for (const m of entry.members) {
      const o = this.override(entry, m).value;
      if (o === 'force-up' || o === 'force-down' || o === 'drain') continue;
      soonestMs = Math.min(soonestMs, this.monitor.timeToPossibleChange(m.target.key));
    }
    const horizon = soonestMs === Infinity ? entry.rrset.ttl : Math.floor(soonestMs / 1000);
    return clampTtl(Math.min(entry.rrset.ttl, horizon), entry.zone.ttlPolicy);
  }

  /** What `rrset` serves now; undefined for RRsets without a pool. */
  liveSet(rrset: RRset): LiveSet | undefined {
    const entry = this.entries.get(rrset);
    if (!entry) return undefined;
    const { serving, members } = this.decide(entry);
    if (serving === 'allDown:nodata') return { kind: 'nodata' };
    if (serving === 'allDown:servfail') return { kind: 'servfail' };
    return { kind: 'records', records: members.map((m) => m.data), ttl: this.ttl(entry) };
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

  snapshot(): PoolSnapshot[] {
    const out: PoolSnapshot[] = [];
    for (const entry of this.entries.values()) {
      const { serving, members: served } = this.decide(entry);
      out.push({
        zone: nameToText(entry.zone.origin),
        name: ownerText(entry.rrset.owner),
        type: entry.rrset.type === RRType.A ? 'A' : 'AAAA',
        allDown: entry.spec.allDown,
        minHealthy: entry.spec.minHealthy ?? null,
        serving,
        ttl: this.ttl(entry),
        members: entry.members.map((m) => {
          const s: TargetState | undefined = this.monitor.state(m.target.key);
          const o = this.override(entry, m);
          return {
            address: m.address,
            role: m.role,
            health: s && s.checks > 0 ? s.health : 'unknown',
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
          };
        }),
      });
    }
    return out;
  }
}

export interface FailoverEstimate {
  name: string;
  type: 'A' | 'AAAA';
  primaries: number;
  standby: number;
  /** Worst time to detect a dead member: interval × fall + timeout, over the pool's checks (ms). */
  detectionMs: number;
  /** Longest TTL served while the member still looked up (s). */
  ttl: number;
  /** detection + TTL: the longest a client may keep getting a dead address (ms). */
  worstCaseMs: number;
  check: string;
}

/**
 * For `rrdns check`: the worst case before a client stops getting a dead
 * address. A member dies just after a passing check: `fall` more checks must
 * fail (the last one only after its timeout), then caches may keep the last
 * answer for its TTL, which the health-aware TTL caps at interval × fall.
 */
export function failoverEstimates(zone: Zone): FailoverEstimate[] {
  return zone.pooled.map((rrset) => {
    const spec = rrset.pool!;
    const checks = [spec.check, ...spec.memberChecks.values()];
    const detectionMs = Math.max(...checks.map((c) => c.interval * c.fall + c.timeout));
    const ttlCapS = Math.max(...checks.map((c) => Math.floor((c.interval * c.fall) / 1000)));
    const ttl = clampTtl(Math.min(rrset.ttl, ttlCapS), zone.ttlPolicy);
    const c = spec.check;
    return {
      name: nameToText(rrset.owner),
      type: rrset.type === RRType.A ? 'A' : 'AAAA',
      primaries: rrset.records.length,
      standby: spec.standby.length,
      detectionMs,
      ttl,
      worstCaseMs: detectionMs + ttl * 1000,
      check: `${c.type}${c.type === 'tcp' ? '' : ` ${c.method} ${c.path}`} port ${c.port}, every ${c.interval / 1000}s, timeout ${c.timeout / 1000}s, fall ${c.fall}, rise ${c.rise}`,
    };
  });
}
