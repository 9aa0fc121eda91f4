/**
 * Which check targets are probed now, for cold standby (pure; the registry
 * gathers the inputs, the server applies the result through probe-switch.ts).
 *
 * A cold standby address is probed only while its pool could serve it: the
 * pool falls back to standbys (allDown: backup) and no primary is usable
 * (measured up or forced up, not drained or forced down: the same test the
 * pool policy uses to leave the healthy branch). A primary that has no result
 * yet counts as usable (fail open), so a reload or a start never wakes the
 * standbys. One check target can be shared by several pools (same address,
 * same check): it is probed when any pool that has it wants it, and a target
 * that is a primary or a hot standby anywhere is always wanted.
 *
 * Only targets that are a cold standby somewhere are "managed": the plan says
 * nothing about the others, so whoever else switches probing (the cluster's
 * shared check load) keeps them.
 */

export interface PlanMember {
  /** The check target's key (shared by identical checks of several pools). */
  key: string;
  role: 'primary' | 'standby';
  /** Primaries: usable now (pool-policy usable()). Unused for standbys. */
  usable: boolean;
}

export interface PlanPool {
  standbyMode: 'hot' | 'cold';
  /** Standbys serve only under 'backup'. */
  allDown: string;
  members: readonly PlanMember[];
}

export interface ProbePlan {
  /** Keys that are a cold standby in some pool: the ones this plan decides. */
  managed: Set<string>;
  /** Of those, the ones to probe now. */
  probe: Set<string>;
}

/** Whether the pool's cold standbys are needed now: it falls back to them and no primary is usable. */
export function coldStandbyNeeded(pool: PlanPool): boolean {
  return pool.standbyMode === 'cold' && pool.allDown === 'backup' && !pool.members.some((m) => m.role === 'primary' && m.usable);
}

export function probePlan(pools: Iterable<PlanPool>): ProbePlan {
  const managed = new Set<string>();
  const probe = new Set<string>();
  const always = new Set<string>();
  for (const pool of pools) {
    const needed = coldStandbyNeeded(pool);
    for (const m of pool.members) {
      if (m.role === 'primary' || pool.standbyMode === 'hot') {
        always.add(m.key);
        continue;
      }
      managed.add(m.key);
      if (needed) probe.add(m.key);
    }
  }
  for (const key of managed) if (always.has(key)) probe.add(key);
  return { managed, probe };
}
