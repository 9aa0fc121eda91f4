/**
 * Pool policy, pure: given a pool's members, what each one's override and
 * measured health say, decide which members serve, in what mode, and with
 * what health-aware TTL. No state, no clock: the registry (pool-registry.ts)
 * gathers the inputs and these functions decide, so the rules are unit-tested
 * as tables.
 */
import { RRType } from '../zone/records.ts';
import { nameToText } from '../zone/name.ts';
import { clampTtl, type AdminOverride, type PoolSpec, type TtlPolicy, type Zone } from '../zone/zone.ts';
import type { Serving } from '../observability/snapshot.ts';
import { echoPeriodMs } from '../health/icmp/fping-plan.ts';
import { steadyHorizonMs, worstDetectionMs } from '../health/recheck.ts';

/** One member as the policy sees it. */
export interface PolicyMember {
  role: 'primary' | 'standby';
  /** The override in force (API first, then the zone file's), null for none. */
  override: AdminOverride | null;
  /** Measured health; 'up' before a first result (fail open). */
  health: 'up' | 'down';
  /** Time in ms until this member's measured health could next change (monitor.timeToPossibleChange). */
  msToPossibleChange: number;
  /**
   * Effective weight: the configured one, or what load feedback made of it
   * (src/balancing). 0 serves only when the pool would otherwise fall back.
   */
  weight: number;
  /** The load the backend last reported (load feedback), if known. */
  load?: number | undefined;
}

const takenOut = (o: AdminOverride | null) => o === 'drain' || o === 'force-down';

/** Usable for answers: measured up (or forced up), not forced down, not drained. */
export function usable(m: PolicyMember): boolean {
  if (takenOut(m.override)) return false;
  if (m.override === 'force-up') return true;
  return m.health === 'up';
}

/**
 * Which members serve (indices into `members`, in member order) and why.
 * Failing open never brings back what an operator took out (drain, force-down).
 */
export function decideServing(members: readonly PolicyMember[], spec: Pick<PoolSpec, 'minHealthy' | 'allDown'>): { serving: Serving; members: number[] } {
  const primaries: number[] = [];
  const healthy: number[] = [];
  const notDrained: number[] = [];
  members.forEach((m, i) => {
    if (m.role !== 'primary') return;
    primaries.push(i);
    if (usable(m)) healthy.push(i);
    if (!takenOut(m.override)) notDrained.push(i);
  });
  const serveAll = notDrained.length > 0 ? notDrained : primaries;
  if (healthy.length > 0) {
    if (spec.minHealthy !== undefined && healthy.length / primaries.length < spec.minHealthy) return { serving: 'minHealthy', members: serveAll };
    // Weight 0 is a reserve: it serves only when no healthy member has weight (the alternative would be falling back).
    return { serving: 'healthy', members: withWeight(members, healthy) };
  }
  switch (spec.allDown) {
    case 'backup': {
      const standby = withWeight(
        members,
        members.flatMap((m, i) => (m.role === 'standby' && usable(m) ? [i] : [])),
      );
      // No healthy standby either: fail open rather than answer with nothing.
      return standby.length > 0 ? { serving: 'allDown:backup', members: standby } : { serving: 'allDown:serveAll', members: serveAll };
    }
    case 'nodata':
      return { serving: 'allDown:nodata', members: [] };
    case 'servfail':
      return { serving: 'allDown:servfail', members: [] };
    default:
      return { serving: 'allDown:serveAll', members: serveAll };
  }
}

/** The members of `chosen` with a positive weight, or all of them when none has one. */
function withWeight(members: readonly PolicyMember[], chosen: number[]): number[] {
  const weighted = chosen.filter((i) => members[i]!.weight > 0);
  return weighted.length > 0 ? weighted : chosen;
}

/**
 * The weights to rotate `served` by (indices into `members`): undefined when
 * they are all equal (plain rotation), all ones when none has weight (a
 * reserve or fallback set serves evenly).
 */
export function servedWeights(members: readonly PolicyMember[], served: readonly number[]): number[] | undefined {
  const w = served.map((i) => members[i]!.weight);
  if (w.length < 2 || w.every((x) => x === w[0])) return undefined;
  if (w.every((x) => x <= 0)) return undefined;
  return w;
}

/** Everything a pooled RRset serves now: which members, by what weights, with what TTL. */
export interface PoolDecision {
  serving: Serving;
  /** Indices into the members, in member order. */
  members: number[];
  /** Weights of `members` (same order) for weighted rotation; undefined: plain rotation. */
  weights: number[] | undefined;
  ttl: number;
  /** Weights by headroom of `members` (same order) that heavy resolvers are steered by (balance.resolvers.steer); undefined: no steering. */
  steer: number[] | undefined;
}

/**
 * The pool policy: a pure function of the pool's definition (spec, the
 * RRset's TTL, the zone's TTL policy), each member's health, override and
 * effective weight (the balancing state). Table-tested in test/unit/pool-policy.test.ts.
 */
export function decidePool(members: readonly PolicyMember[], spec: Pick<PoolSpec, 'minHealthy' | 'allDown'> & { balance?: PoolSpec['balance'] }, rrsetTtl: number, policy: TtlPolicy): PoolDecision {
  const { serving, members: served } = decideServing(members, spec);
  const weights = serving === 'minHealthy' || serving === 'allDown:serveAll' ? undefined : servedWeights(members, served);
  const steer = spec.balance?.resolvers?.steer
    ? steeringWeights(
        served.map((i) => members[i]!.weight),
        served.map((i) => members[i]!.load),
      )
    : undefined;
  return { serving, members: served, weights, ttl: healthAwareTtl(members, rrsetTtl, policy), steer };
}

/**
 * How heavy resolvers are steered (balance.resolvers.steer): weights over the
 * served members (same order) by headroom, weight × (mean load / load)², so
 * the member with the most headroom gets most heavy resolvers and a loaded one
 * few. A distribution, not one member: loads are seconds old, and sending
 * every heavy resolver of those seconds to the same member would pile them up
 * there (the simulator shows such herding making balance worse). Undefined
 * when not every served member reports a load, or all are equally loaded:
 * then the rotation's own weights already say everything.
 */
export function steeringWeights(weights: readonly number[], loads: readonly (number | undefined)[]): number[] | undefined {
  if (weights.length < 2 || loads.length !== weights.length) return undefined;
  let total = 0;
  let weighted = 0;
  for (let i = 0; i < weights.length; i++) {
    const l = loads[i];
    if (l === undefined || !Number.isFinite(l) || l < 0) return undefined;
    total += weights[i]!;
    weighted += weights[i]! * l;
  }
  const mean = weighted / total;
  if (!(mean > 0) || loads.every((l) => l === loads[0])) return undefined;
  return weights.map((w, i) => w * (mean / Math.max(loads[i]!, mean * 1e-3)) ** 2);
}


/**
 * Health-aware TTL: never longer than the time until this answer could next
 * change — the soonest any measured (not overridden) member could flip — then
 * the zone's clamps.
 */
export function healthAwareTtl(members: readonly PolicyMember[], rrsetTtl: number, policy: TtlPolicy): number {
  let soonestMs = Infinity;
  for (const m of members) {
    if (m.override !== null) continue;
    soonestMs = Math.min(soonestMs, m.msToPossibleChange);
  }
  const horizon = soonestMs === Infinity ? rrsetTtl : Math.floor(soonestMs / 1000);
  return clampTtl(Math.min(rrsetTtl, horizon), policy);
}

export interface FailoverEstimate {
  name: string;
  type: 'A' | 'AAAA';
  primaries: number;
  standby: number;
  /** hot: probed all the time; cold: only once every primary is down (one check round more in the hand-over). */
  standbyMode: 'hot' | 'cold';
  /** Worst time to detect a dead member: interval + (fall − 1) × fastInterval (else interval) + timeout, over the pool's checks (ms). */
  detectionMs: number;
  /** Longest TTL served while the member still looked up (s). */
  ttl: number;
  /** detection + TTL: the longest a client may keep getting a dead address (ms). */
  worstCaseMs: number;
  check: string;
  /** Some check of the pool has a fastInterval (the figures count its fast re-checks). */
  fast: boolean;
}

/**
 * For `rrdns check`: the worst case before a client stops getting a dead
 * address. A member dies just after a passing check started: the next check
 * comes up to one interval later, `fall − 1` more must fail after it (at the
 * fastInterval when the check has one), the last one only after its timeout;
 * then caches may keep the last answer for its TTL, which the health-aware TTL
 * caps at the same interval + (fall − 1) × fastInterval (recheck.ts).
 */
export function failoverEstimates(zone: Zone): FailoverEstimate[] {
  return zone.pooled.map((rrset) => {
    const spec = rrset.pool!;
    const checks = [spec.check, ...spec.memberChecks.values()];
    const detectionMs = Math.max(...checks.map((c) => worstDetectionMs(c)));
    const ttlCapS = Math.max(...checks.map((c) => Math.floor(steadyHorizonMs(c) / 1000)));
    const ttl = clampTtl(Math.min(rrset.ttl, ttlCapS), zone.ttlPolicy);
    const c = spec.check;
    return {
      name: nameToText(rrset.owner),
      type: rrset.type === RRType.A ? 'A' : 'AAAA',
      primaries: rrset.records.length,
      standby: spec.standby.length,
      standbyMode: spec.standbyMode,
      detectionMs,
      ttl,
      worstCaseMs: detectionMs + ttl * 1000,
      fast: checks.some((x) => x.fastInterval !== undefined),
      check: `${c.type === 'icmp' ? `icmp echo (layer 3: host up, service not checked; an echo every ${echoPeriodMs(c.timeout) / 1000}s)` : `${c.type}${c.type === 'tcp' ? '' : ` ${c.method} ${c.path}`} port ${c.port}`}, every ${c.interval / 1000}s${c.fastInterval === undefined ? '' : ` (${c.fastInterval / 1000}s while settling)`}, timeout ${c.timeout / 1000}s, fall ${c.fall}, rise ${c.rise}`,
    };
  });
}
