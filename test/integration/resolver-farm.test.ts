/**
 * Load feedback through real caching resolvers (issue 10, acceptance 6): the
 * resolver farm (test/support/resolver-farm.ts) puts three Unbound in front of
 * rrdns with very unequal client populations (12, 3 and 1 client loops), each
 * client requesting the first address of its resolver's cached answer, so
 * whichever backend the biggest resolver holds is overloaded for the TTL.
 * Asserted: the mechanism only — the overloaded member's effective weight
 * (admin status API) falls below its configured weight while another
 * member's rises. No timings; the figures are `npm run bench:resolvers`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFarm, type Farm } from '../support/resolver-farm.ts';
import { missing } from '../support/tools.ts';
import type { MemberSnapshot } from '../../src/observability/snapshot.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe.skipIf(missing('unbound', 'unbound'))('load feedback behind caching resolvers (Unbound)', () => {
  let farm: Farm;
  beforeAll(async () => {
    farm = await startFarm({ feedback: true, populations: [12, 3, 1] });
    await farm.ready();
  });
  afterAll(async () => {
    await farm?.close();
  });

  it('moves weight away from the member the biggest resolver overloads, towards another member', async () => {
    // No client traffic yet: nothing to correct, the weights are the configured ones.
    for (const m of await farm.members()) expect(m.effectiveWeight, m.address).toBe(m.weight);

    const clients = farm.runClients({ durationMs: 30_000 });
    let seen: { hot: MemberSnapshot; load: number; others: MemberSnapshot[] } | undefined;
    let last = '';
    try {
      // Bounded poll: at some moment the backend over its capacity (the one the 12 clients' resolver
      // cached first) must have lost weight, and another member gained some.
      for (let i = 0; i < 120 && !seen; i++) {
        await sleep(200);
        const members = await farm.members();
        const loads = farm.backends.map((b) => b.load());
        const hotIndex = loads.indexOf(Math.max(...loads));
        const hot = members.find((m) => m.address === farm.backends[hotIndex]!.address)!;
        const others = members.filter((m) => m !== hot);
        last = farm.backends
          .map((b, k) => {
            const m = members.find((x) => x.address === b.address)!;
            return `${b.address} load ${loads[k]!.toFixed(2)} weight ${m.effectiveWeight}/${m.weight}`;
          })
          .join('; ');
        if (loads[hotIndex]! > 1 && hot.effectiveWeight < hot.weight && others.some((m) => m.effectiveWeight > m.weight)) {
          seen = { hot, load: loads[hotIndex]!, others };
        }
      }
    } finally {
      await clients.stop();
    }
    expect(seen, `weights never moved away from the overloaded member; last: ${last}`).toBeDefined();
    expect(seen!.load).toBeGreaterThan(1);
    expect(seen!.hot.effectiveWeight).toBeLessThan(seen!.hot.weight);
    expect(Math.max(...seen!.others.map((m) => m.effectiveWeight - m.weight))).toBeGreaterThan(0);
  }, 45_000);
});
