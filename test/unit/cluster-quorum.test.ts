/**
 * Quorum tables: the combined verdict of one check from the verdicts live
 * instances publish, for each pool quorum (src/cluster/quorum.ts).
 */
import { describe, expect, it } from 'vitest';
import { combineVerdicts, neededDown, type Quorum, type Vote } from '../../src/cluster/quorum.ts';

/** `a- b+ c?`: instance a says down, b up, c has no verdict (c? is a voter without a verdict). */
function votes(spec: string): Vote[] {
  return spec
    .split(' ')
    .filter((v) => v && !v.endsWith('?'))
    .map((v) => ({ instance: v.slice(0, -1), health: v.endsWith('-') ? 'down' : 'up' }));
}

describe('neededDown', () => {
  const cases: { name: string; quorum: Quorum; n: number; needed: number }[] = [
    { name: 'majority of 1 is 1 (alone, or checkers: 1)', quorum: 'majority', n: 1, needed: 1 },
    { name: 'majority of 2 is both', quorum: 'majority', n: 2, needed: 2 },
    { name: 'majority of 3 is 2', quorum: 'majority', n: 3, needed: 2 },
    { name: 'majority of 4 is 3', quorum: 'majority', n: 4, needed: 3 },
    { name: 'majority of 5 is 3', quorum: 'majority', n: 5, needed: 3 },
    { name: 'any is 1 whatever n', quorum: 'any', n: 5, needed: 1 },
    { name: 'all is n', quorum: 'all', n: 4, needed: 4 },
    { name: 'N below n is N', quorum: 2, n: 5, needed: 2 },
    { name: 'N above the live voters is all of them', quorum: 3, n: 2, needed: 2 },
    { name: 'no voters: one verdict would be needed', quorum: 'majority', n: 0, needed: 1 },
  ];
  it.each(cases)('$name', ({ quorum, n, needed }) => expect(neededDown(quorum, n)).toBe(needed));
});

describe('combineVerdicts', () => {
  const cases: { name: string; quorum: Quorum; live: string; voters: string; votes: string; verdict: 'up' | 'down' | 'unknown'; down: number; needed: number }[] = [
    { name: 'majority: 2 of 3 down is down', quorum: 'majority', live: 'a b c', voters: 'a b c', votes: 'a- b- c+', verdict: 'down', down: 2, needed: 2 },
    { name: 'majority: 1 of 3 down (one broken path) stays up', quorum: 'majority', live: 'a b c', voters: 'a b c', votes: 'a- b+ c+', verdict: 'up', down: 1, needed: 2 },
    { name: 'majority: all down is down', quorum: 'majority', live: 'a b c', voters: 'a b c', votes: 'a- b- c-', verdict: 'down', down: 3, needed: 2 },
    { name: 'majority of 2: one down is not enough', quorum: 'majority', live: 'a b', voters: 'a b', votes: 'a- b+', verdict: 'up', down: 1, needed: 2 },
    { name: 'any: one down is down', quorum: 'any', live: 'a b c', voters: 'a b c', votes: 'a- b+ c+', verdict: 'down', down: 1, needed: 1 },
    { name: 'all: one up keeps it up', quorum: 'all', live: 'a b c', voters: 'a b c', votes: 'a- b- c+', verdict: 'up', down: 2, needed: 3 },
    { name: 'all: every voter down is down', quorum: 'all', live: 'a b c', voters: 'a b c', votes: 'a- b- c-', verdict: 'down', down: 3, needed: 3 },
    { name: 'N=2 of 3', quorum: 2, live: 'a b c', voters: 'a b c', votes: 'a- b- c+', verdict: 'down', down: 2, needed: 2 },
    { name: 'N=3 with 2 live instances: both down is down (capped)', quorum: 3, live: 'a b', voters: 'a b', votes: 'a- b-', verdict: 'down', down: 2, needed: 2 },
    { name: 'stale verdict of a dead instance does not count', quorum: 'majority', live: 'a b', voters: 'a b c', votes: 'a- b+ c-', verdict: 'up', down: 1, needed: 2 },
    { name: 'dead instances leave: the survivors decide', quorum: 'majority', live: 'a', voters: 'a b c', votes: 'a- b+ c+', verdict: 'down', down: 1, needed: 1 },
    { name: 'a voter without a verdict yet does not count as down', quorum: 'majority', live: 'a b c', voters: 'a b c', votes: 'a- b? c?', verdict: 'up', down: 1, needed: 2 },
    { name: 'a voter without a verdict yet: the others still decide', quorum: 'majority', live: 'a b c', voters: 'a b c', votes: 'a- b- c?', verdict: 'down', down: 2, needed: 2 },
    { name: 'no verdict at all is unknown (fail open)', quorum: 'majority', live: 'a b c', voters: 'a b c', votes: '', verdict: 'unknown', down: 0, needed: 2 },
    { name: 'only dead instances have verdicts: unknown', quorum: 'any', live: 'a', voters: 'a', votes: 'b- c-', verdict: 'unknown', down: 0, needed: 1 },
    { name: 'checkers 1: the one checker decides', quorum: 'majority', live: 'a b c', voters: 'b', votes: 'b-', verdict: 'down', down: 1, needed: 1 },
    { name: 'checkers 2 of 3: majority is both checkers', quorum: 'majority', live: 'a b c', voters: 'a c', votes: 'a- c+', verdict: 'up', down: 1, needed: 2 },
    { name: 'hand-over: the previous checker stands in until the new one has a verdict', quorum: 'majority', live: 'a b', voters: 'b', votes: 'a- b?', verdict: 'down', down: 1, needed: 1 },
    { name: 'hand-over done: the new checker decides, the previous one no longer counts', quorum: 'majority', live: 'a b', voters: 'b', votes: 'a- b+', verdict: 'up', down: 0, needed: 1 },
    { name: 'stand-ins never outnumber the missing voters', quorum: 'any', live: 'a b c d', voters: 'a b', votes: 'a+ c- d-', verdict: 'down', down: 1, needed: 1 },
    { name: 'a dead non-voter cannot stand in', quorum: 'majority', live: 'b', voters: 'b', votes: 'a- b?', verdict: 'unknown', down: 0, needed: 1 },
  ];
  it.each(cases)('$name', ({ quorum, live, voters, votes: v, verdict, down, needed }) => {
    const r = combineVerdicts({ quorum, live: new Set(live.split(' ')), voters: voters.split(' '), votes: votes(v) });
    expect(r.verdict).toBe(verdict);
    expect(r.down).toBe(down);
    expect(r.needed).toBe(needed);
  });
});
