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
