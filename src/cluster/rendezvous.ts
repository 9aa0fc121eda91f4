/**
 * Rendezvous (highest random weight) hashing, pure: which live instances run
 * a check when its pool says `checkers: K`. Every instance computes the same
 * answer from the same membership, without talking to the others, and when an
 * instance leaves only the checks it ran move (to the next-highest scorer);
 * when one joins it takes about 1/n of them. No state, no clock.
 */
import { createHash } from 'node:crypto';

/** The score of `instance` for `key`: the first 64 bits of SHA-256(instance NUL key). */
export function hrwScore(instance: string, key: string): bigint {
  return createHash('sha256').update(instance).update('\0').update(key).digest().readBigUInt64BE(0);
}

/**
 * The instances that run `key`: the `k` of `live` with the highest score
 * (ties, which SHA-256 makes practically impossible, go to the lower ID), in
 * score order. `k` undefined means every live instance (sorted by ID); fewer
 * live than `k` means all of them.
 */
export function chooseCheckers(key: string, live: readonly string[], k: number | undefined, score: (instance: string, key: string) => bigint = hrwScore): string[] {
  const unique = [...new Set(live)];
  if (k === undefined) return unique.sort();
  const scored = unique.map((instance) => ({ instance, s: score(instance, key) }));
  scored.sort((a, b) => (a.s === b.s ? (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0) : a.s > b.s ? -1 : 1));
  return scored.slice(0, Math.max(0, k)).map((x) => x.instance);
}
