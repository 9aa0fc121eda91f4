/**
 * Overrides after a separation from etcd, pure: the instance's own copy (the
 * state directory, where every override is written first) against etcd's,
 * last writer wins by the time each was set. etcd keeps a cleared override as
 * a tombstone (`override: null` with its time), so "cleared elsewhere while we
 * were away" is told apart from "etcd never heard of it" (set while etcd was
 * unreachable, or before the instance joined a cluster).
 */
import type { AdminOverride } from '../zone/zone.ts';

export interface TimedOverride {
  /** null: cleared (a tombstone in etcd, a clear not yet written from here). */
  override: AdminOverride | null;
  /** Epoch ms it was set or cleared; 0 when unknown (then the other side wins a conflict). */
  at: number;
}

export interface Reconciled {
  /** Writes to etcd (the local value is newer or etcd lacks it). */
  toEtcd: Map<string, TimedOverride>;
  /** Changes to apply here (etcd's value is newer): override or null to clear. */
  toLocal: Map<string, AdminOverride | null>;
}

/**
 * `local`: the overrides in force here (keyed `owner|address`), plus the
 * clears made here that etcd has not been told about (override null);
 * `etcd`: every override key in etcd. Ties keep etcd's value (it is what the
 * other instances already apply).
 */
export function reconcileOverrides(local: ReadonlyMap<string, TimedOverride>, etcd: ReadonlyMap<string, TimedOverride>): Reconciled {
  const toEtcd = new Map<string, TimedOverride>();
  const toLocal = new Map<string, AdminOverride | null>();
  for (const [key, mine] of local) {
    const theirs = etcd.get(key);
    if (theirs === undefined) {
      // etcd never heard of it: a set is pushed; a clear of something etcd does not have needs nothing.
      if (mine.override !== null) toEtcd.set(key, mine);
      continue;
    }
    if (theirs.override === mine.override) continue;
    if (mine.at > theirs.at) toEtcd.set(key, mine);
    else toLocal.set(key, theirs.override);
  }
  for (const [key, theirs] of etcd) {
    if (local.has(key) || theirs.override === null) continue;
    toLocal.set(key, theirs.override);
  }
  return { toEtcd, toLocal };
}
