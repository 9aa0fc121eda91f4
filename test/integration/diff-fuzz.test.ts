/**
 * Generative differential test against Knot (issue 8, acceptance 2): random
 * zones (test/support/zone-gen.ts) are served by ONE Knot and ONE rrdns per
 * batch, and every generated query must get the same reply from both:
 * rcode, flags and each section as a set, after the normalisations
 * documented in test/support/diff-compare.ts (and nothing else).
 *
 * The seed is fixed (FUZZ_SEED overrides it) and printed; every difference
 * is printed as a replayable case (zone text, query, both replies; the first
 * DETAIL in full, then one line per class), and the test fails if there is
 * any. `npm run fuzz:diff -- --runs N --seed S` runs the same thing at any size.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { caseText, compareAll, groupCases, startServers, type DiffCase, type Servers } from '../support/diff-compare.ts';
import { missing } from '../support/tools.ts';
import { generateBatch } from '../support/zone-gen.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
/** Generated zones (each batch also serves the child zones they delegate to). */
const ZONES = 150;
const PER_ZONE = 40;
const BATCH = 60;
/** Cases printed in full; the rest are counted per class. */
const DETAIL = 12;
/** Labels with escaped dots (`a\.b`): on once rrdns accepts them (FUZZ_ESCAPED_DOTS=1 to try). */
const ESCAPED_DOTS = process.env.FUZZ_ESCAPED_DOTS === '1';

describe.skipIf(missing('knotd', 'knot'))('rrdns answers generated zones like Knot', () => {
  let servers: Servers | undefined;
  afterAll(async () => {
    await servers?.close();
  });

  it(`${ZONES} generated zones x ${PER_ZONE} queries, seed ${SEED}`, { timeout: 120_000 }, async () => {
    console.log(`diff-fuzz seed=${SEED} (replay: FUZZ_SEED=${SEED} npx vitest run test/integration/diff-fuzz.test.ts, or npm run fuzz:diff -- --runs ${ZONES * PER_ZONE} --seed ${SEED} --batch ${BATCH})`);
    const cases: DiffCase[] = [];
    let asked = 0;
    let zones = 0;
    for (let first = 0; first < ZONES; first += BATCH) {
      const batch = generateBatch(SEED, first, Math.min(BATCH, ZONES - first), PER_ZONE, { escapedDots: ESCAPED_DOTS });
      servers = await startServers(batch.zones);
      cases.push(...(await compareAll(servers, batch.zones, batch.queries)));
      await servers.close();
      servers = undefined;
      asked += batch.queries.length;
      zones += batch.zones.length;
    }
    const groups = groupCases(cases);
    const report = [`seed=${SEED}: ${asked} queries over ${zones} zones, ${cases.length} differences in ${groups.length} classes`];
    for (const [cls, list] of groups) report.push(`  ${list.length} x ${cls}`);
    // One case of each class first (most useful to whoever fixes them), then more up to DETAIL.
    const shown = new Set<DiffCase>(groups.map(([, list]) => list[0]!).slice(0, DETAIL));
    for (const c of cases) if (shown.size < DETAIL) shown.add(c);
    for (const c of shown) report.push("", caseText(c));
    console.log(report.join('\n'));

    expect(asked).toBeGreaterThanOrEqual(2000);
    expect(zones).toBeGreaterThanOrEqual(50);
    expect(groups.map(([cls, list]) => `${list.length} x ${cls}`)).toEqual([]);
  });
});
