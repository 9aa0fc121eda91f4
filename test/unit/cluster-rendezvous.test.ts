/**
 * Rendezvous hashing tables: which live instances run a check with
 * `checkers: K`, and how few checks move when membership changes.
 */
import { describe, expect, it } from 'vitest';
import { chooseCheckers, hrwScore } from '../../src/cluster/rendezvous.ts';

/** Scores from a table, so the cases say exactly who wins: `key` → instance → score. */
const table: Record<string, Record<string, bigint>> = {
  k1: { a: 30n, b: 20n, c: 10n },
  k2: { a: 5n, b: 50n, c: 40n },
  tie: { a: 7n, b: 7n, c: 1n },
};
const fixed = (instance: string, key: string) => table[key]![instance] ?? 0n;

describe('chooseCheckers (scores from a table)', () => {
  const cases: { name: string; key: string; live: string[]; k: number | undefined; checkers: string[] }[] = [
    { name: 'K=1: the highest score', key: 'k1', live: ['a', 'b', 'c'], k: 1, checkers: ['a'] },
    { name: 'K=2: the two highest, in score order', key: 'k2', live: ['a', 'b', 'c'], k: 2, checkers: ['b', 'c'] },
    { name: 'the top scorer died: the next one takes over', key: 'k1', live: ['b', 'c'], k: 1, checkers: ['b'] },
    { name: 'K above the live count: all of them', key: 'k1', live: ['a', 'b'], k: 3, checkers: ['a', 'b'] },
    { name: 'no K: every live instance, by ID', key: 'k2', live: ['c', 'a', 'b'], k: undefined, checkers: ['a', 'b', 'c'] },
    { name: 'equal scores: the lower ID first', key: 'tie', live: ['b', 'a', 'c'], k: 1, checkers: ['a'] },
    { name: 'a duplicate in the live list counts once', key: 'k1', live: ['a', 'a', 'b'], k: 2, checkers: ['a', 'b'] },
    { name: 'nobody live: nobody', key: 'k1', live: [], k: 1, checkers: [] },
  ];
  it.each(cases)('$name', ({ key, live, k, checkers }) => expect(chooseCheckers(key, live, k, fixed)).toEqual(checkers));
});

describe('chooseCheckers (real scores)', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => `http://www.example.test@127.0.0.${i % 250}:${8000 + i}/health#${i}`);
  const three = ['ns1', 'ns2', 'ns3'];

  it('the same inputs give the same checkers on every instance (no state, no order dependence)', () => {
    for (const key of keys.slice(0, 200)) expect(chooseCheckers(key, ['ns3', 'ns1', 'ns2'], 1)).toEqual(chooseCheckers(key, three, 1));
  });

  it('K=1 spreads the checks about evenly over three instances', () => {
    const counts = new Map<string, number>();
    for (const key of keys) {
      const [who] = chooseCheckers(key, three, 1);
      counts.set(who!, (counts.get(who!) ?? 0) + 1);
    }
    // 1,000 each on average; the binomial spread at 3,000 draws is about ±26 (1 sigma).
    for (const id of three) expect(counts.get(id)).toBeGreaterThan(850);
  });

  it('when an instance leaves, only the checks it ran move', () => {
    let moved = 0;
    for (const key of keys) {
      const before = chooseCheckers(key, three, 1)[0];
      const after = chooseCheckers(key, ['ns1', 'ns3'], 1)[0];
      if (before !== 'ns2') expect(after).toBe(before);
      else moved++;
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('K=2 keeps the K=1 checker (the top-K lists nest)', () => {
    for (const key of keys.slice(0, 300)) expect(chooseCheckers(key, three, 2)[0]).toBe(chooseCheckers(key, three, 1)[0]);
  });

  it('scores differ by instance and by key', () => {
    expect(hrwScore('ns1', 'k')).not.toBe(hrwScore('ns2', 'k'));
    expect(hrwScore('ns1', 'k')).not.toBe(hrwScore('ns1', 'k2'));
    // The separator keeps ("ab","c") and ("a","bc") apart.
    expect(hrwScore('ab', 'c')).not.toBe(hrwScore('a', 'bc'));
  });
});
