/**
 * The health state as observability shows it (admin API, metrics, status
 * page). Defined here, below the server, so observability does not depend on
 * the server; the server's pool registry produces it.
 */
import type { AdminOverride, PoolSpec } from '../zone/zone.ts';

export type MemberRole = 'primary' | 'standby';

export type Serving = 'healthy' | 'minHealthy' | 'allDown:serveAll' | 'allDown:backup' | 'allDown:nodata' | 'allDown:servfail';

export interface MemberSnapshot {
  address: string;
  role: MemberRole;
  /** Measured by the checks ('unknown' until the first result). */
  health: 'up' | 'down' | 'unknown';
  override: AdminOverride | null;
  /** Where the override comes from. */
  overrideSource: 'api' | 'zone' | null;
  /** In the answers right now. */
  served: boolean;
  since: string | null;
  lastCheckAt: string | null;
  lastResult: string | null;
  lastOk: boolean | null;
  latencyMs: number | null;
  consecutiveOk: number;
  consecutiveFail: number;
  check: string;
  /** This instance runs the check now (false: e.g. a cold standby while a primary serves, src/server/probe-plan.ts). */
  probing?: boolean;
  /** Weight the zone configures (capacity). */
  weight: number;
  /** Weight the rotation uses now: the configured one moved by load feedback. */
  effectiveWeight: number;
  /** Load the backend last reported through its check (check.load), or null. */
  load: number | null;
  /** Share of the pool's answers that put this member first, over the last sampling interval; null before one. */
  firstShare: number | null;
  /** Answers that put this member first since the process started (every thread); null when not counted. */
  firstServed: number | null;
  /** In a cluster (--cluster-etcd): each instance's verdict and the combined one (`health` is the combined one then). */
  cluster?: MemberClusterSnapshot;
}

/** One member's verdicts across the cluster (src/cluster/node.ts memberView). */
export interface MemberClusterSnapshot {
  quorum: 'majority' | 'any' | 'all' | number;
  checkers: number | null;
  combined: 'up' | 'down' | 'unknown';
  /** quorum: from the live instances' verdicts; degraded: this instance's own, or the last known where it has none yet. */
  basis: 'quorum' | 'own (degraded)' | 'last known (degraded)';
  down: number;
  up: number;
  voters: number;
  needed: number;
  probedHere: boolean;
  /** The instances expected to check it (the voters). */
  assigned: string[];
  verdicts: InstanceVerdict[];
}

/** One instance's verdict on a member, as it published it (src/cluster/keys.ts VerdictRecord is this, stored). */
export interface InstanceVerdict {
  instance: string;
  self: boolean;
  health: 'up' | 'down';
  checks: number;
  lastOk: boolean | null;
  lastResult: string | null;
  lastCheckAt: string | null;
  since: string;
  /** When that instance wrote it (its clock). */
  at: string;
}

export interface PoolSnapshot {
  zone: string;
  name: string;
  type: 'A' | 'AAAA';
  allDown: PoolSpec['allDown'];
  minHealthy: number | null;
  serving: Serving;
  ttl: number;
  members: MemberSnapshot[];
}

/** One resolver prefix in the resolver demand table (GET /api/v1/resolvers, the status page's "Top resolvers"). */
export interface ResolverSnapshot {
  /** The source prefix the resolver is grouped by: `192.0.2.0/24`, `2001:db8::/56`. */
  prefix: string;
  /** Queries counted for pools with balance.resolvers (may include up to `error` inherited in the bounded table). */
  queries: number;
  error: number;
  /** Estimated requests per second its clients make (1 / mean gap between expiry and re-ask); 0 before one is measured. */
  demand: number;
  /** demand / the sum over every resolver in the table. */
  share: number;
  /** Its share is at least the smallest heavyShare of the pools served (it gets their shorter TTL). */
  heavy: boolean;
  /** Re-asks after expiry measured so far. */
  samples: number;
}

export interface ResolversSnapshot {
  /** Prefix lengths sources are grouped by. */
  grouping: { ipv4: number; ipv6: number };
  /** The smallest balance.resolvers.heavyShare of the pools served; null when no pool enables it. */
  heavyShare: number | null;
  /** Sum of every entry's demand (requests/s). */
  totalDemand: number;
  /** Entries the table holds at most (fixed), and in use now. */
  capacity: number;
  occupied: number;
  /** The top resolvers by demand, highest first. */
  resolvers: ResolverSnapshot[];
}
