/**
 * Quorum verdicts, pure: from the verdicts the live instances publish for one
 * check, whether the member is down for a pool's `quorum`. No state, no clock;
 * the cluster view (view.ts) gathers the inputs.
 *
 * - Voters: the live instances expected to run the check (every live instance,
 *   or the K chosen by rendezvous hashing with `checkers: K`); n = their count.
 * - Only live instances' verdicts count: a dead instance's verdicts are stale
 *   even before its lease takes them out of etcd.
 * - A voter without a verdict yet counts as "not down" (it is in n).
 * - Hand-over: when checks have just moved, a live instance that is no longer
 *   a voter may still publish its verdict; it stands in for a voter that has
 *   none yet (lowest IDs first), so moving a check never reverts a down member
 *   to up for the time the new checker needs for its first result.
 * - needed: any = 1, all = n, majority = floor(n/2) + 1, N = min(N, n): a
 *   number above the live voters means all of them, so a backend down for
 *   every instance still leaves the answers after instances died.
 */
export type Quorum = 'majority' | 'any' | 'all' | number;
export type Verdict = 'up' | 'down';

export interface Vote {
  instance: string;
  health: Verdict;
}

export interface QuorumResult {
  /** unknown: no live instance has a verdict (answers fail open, as one instance before its first result). */
  verdict: Verdict | 'unknown';
  /** Verdicts counted. */
  down: number;
  up: number;
  /** n: the voters (expected checkers). */
  voters: number;
  /** Down verdicts needed to call it down. */
  needed: number;
}

/** Down verdicts needed out of `n` voters. */
export function neededDown(quorum: Quorum, n: number): number {
  if (n <= 0) return 1;
  switch (quorum) {
    case 'any':
      return 1;
    case 'all':
      return n;
    case 'majority':
      return Math.floor(n / 2) + 1;
    default:
      return Math.max(1, Math.min(Math.floor(quorum), n));
  }
}

/**
 * The combined verdict of one check for one pool. `voters` are the expected
 * checkers (already restricted to live instances by the caller or not: the
 * dead ones are dropped here), `votes` every verdict held for the check.
 */
export function combineVerdicts(input: { quorum: Quorum; live: ReadonlySet<string>; voters: readonly string[]; votes: readonly Vote[] }): QuorumResult {
  const voters = input.voters.filter((v) => input.live.has(v));
  const voterSet = new Set(voters);
  const liveVotes = new Map<string, Verdict>();
  for (const v of input.votes) if (input.live.has(v.instance)) liveVotes.set(v.instance, v.health);
  const counted: Verdict[] = [];
  for (const v of voters) {
    const h = liveVotes.get(v);
    if (h !== undefined) counted.push(h);
  }
  // Stand-ins: verdicts of live non-voters fill the places of voters that have none yet.
  const missing = voters.length - counted.length;
  if (missing > 0) {
    const standIns = [...liveVotes.keys()].filter((i) => !voterSet.has(i)).sort();
    for (const i of standIns.slice(0, missing)) counted.push(liveVotes.get(i)!);
  }
  const down = counted.filter((h) => h === 'down').length;
  const up = counted.length - down;
  const needed = neededDown(input.quorum, voters.length);
  const verdict = counted.length === 0 ? 'unknown' : down >= needed ? 'down' : 'up';
  return { verdict, down, up, voters: voters.length, needed };
}
