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
import { caseText, compare, compareAll, groupCases, startServers, zoneFacts, type DiffCase, type FuzzQuery, type Servers, type Summary } from '../support/diff-compare.ts';
import { missing } from '../support/tools.ts';
import { generateBatch } from '../support/zone-gen.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
/** Generated zones (each batch also serves the child zones they delegate to). */
const ZONES = 150;
const PER_ZONE = 40;
const BATCH = 60;
/** Cases printed in full; the rest are counted per class. */
const DETAIL = 12;
/** Labels with escaped dots (`a\.b`) and a `john\.doe` SOA rname: on (FUZZ_ESCAPED_DOTS=0 leaves them out). */
const ESCAPED_DOTS = process.env.FUZZ_ESCAPED_DOTS !== '0';

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

/**
 * The comparison rules themselves, on hand-written replies: each
 * normalisation accepts exactly the legitimate difference it names, and the
 * bugs it sits next to are still reported.
 */
describe('differential comparison rules', () => {
  const Q: FuzzQuery = { labels: ['www', 'z1', 'fuzz', 'test'], qtype: 'A', edns: 1232, transport: 'udp', rd: true };
  const reply = (over: Partial<Summary> = {}): Summary => ({
    rcode: 'NOERROR',
    flags: 'qr aa rd',
    opcode: 0,
    question: ['www.z1.fuzz.test. A 1'],
    answer: [],
    authority: [],
    additional: [],
    opt: 'version 0 nodo',
    size: 100,
    violations: [],
    ...over,
  });
  const A = (n: string, a: string) => `${n} 300 A ${a}`;
  const NS = (cut: string, ns: string) => `${cut} 3600 NS ${ns}`;
  const referral = { flags: 'qr rd', authority: [NS('child.z1.fuzz.test.', 'ns1.child.z1.fuzz.test.'), NS('child.z1.fuzz.test.', 'ns2.child.z1.fuzz.test.')] };
  const glue = [A('ns1.child.z1.fuzz.test.', '192.0.2.1'), A('ns2.child.z1.fuzz.test.', '192.0.2.2')];

  const cases: Array<{ name: string; q?: Partial<FuzzQuery>; ours: Summary; theirs: Summary; full?: [Summary, Summary]; owners?: string[]; want: string[] }> = [
    { name: 'same sets in another order agree', ours: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1'), A('www.z1.fuzz.test.', '192.0.2.2')] }), theirs: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1'), A('www.z1.fuzz.test.', '192.0.2.2')] }), want: [] },
    { name: 'a missing record is reported', ours: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }), theirs: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1'), A('www.z1.fuzz.test.', '192.0.2.2')] }), want: ['answer'] },
    { name: 'rcode and AA are compared', ours: reply({ rcode: 'NXDOMAIN', flags: 'qr rd' }), theirs: reply(), want: ['rcode', 'aa'] },
    { name: 'RD must be echoed', ours: reply({ flags: 'qr aa' }), theirs: reply(), want: ['rd'] },
    { name: 'question case must be echoed', ours: reply({ question: ['WWW.z1.fuzz.test. A 1'] }), theirs: reply(), want: ['question'] },
    { name: 'OPT presence is compared (its UDP size is not part of the summary)', ours: reply({ opt: null }), theirs: reply(), want: ['opt'] },
    { name: "Knot's repeated additional record is one record", ours: reply({ additional: [A('mail.z1.fuzz.test.', '192.0.2.9')] }), theirs: reply({ additional: [A('mail.z1.fuzz.test.', '192.0.2.9'), A('mail.z1.fuzz.test.', '192.0.2.9')] }), want: [] },
    { name: "rrdns' repeated record is reported", ours: reply({ answer: [`www.z1.fuzz.test. 300 CNAME www.z1.fuzz.test.`, `www.z1.fuzz.test. 300 CNAME www.z1.fuzz.test.`] }), theirs: reply({ answer: [`www.z1.fuzz.test. 300 CNAME www.z1.fuzz.test.`] }), want: ['answer'] },
    { name: 'both truncated: only the header is compared', ours: reply({ flags: 'qr aa tc rd' }), theirs: reply({ flags: 'qr aa tc rd', answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }), want: [] },
    { name: 'only one side truncated is reported', ours: reply({ flags: 'qr aa tc rd' }), theirs: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }), want: ['tc', 'answer'] },
    {
      name: 'both truncated but complete answers differ is reported',
      ours: reply({ flags: 'qr aa tc rd' }),
      theirs: reply({ flags: 'qr aa tc rd' }),
      full: [reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }), reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.2')] })],
      want: ['tcp:answer'],
    },
    {
      name: 'Knot cut a reply that rrdns compresses into the limit: no TC needed (RFC 1035 §4.1.4)',
      ours: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }),
      theirs: reply({ flags: 'qr aa tc rd' }),
      full: [reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }), reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] })],
      want: [],
    },
    {
      name: 'a reply without TC that lacks part of the complete answer is reported',
      ours: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }),
      theirs: reply({ flags: 'qr aa tc rd' }),
      full: [reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }), reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1'), A('www.z1.fuzz.test.', '192.0.2.2')] })],
      want: ['tc', 'answer', 'tcp:answer'],
    },
    { name: 'glue under the wrong owner is reported', ours: reply({ ...referral, additional: [A('www.child.z1.fuzz.test.', '192.0.2.1'), glue[1]!] }), theirs: reply({ ...referral, additional: glue }), want: ['additional'] },
    {
      name: 'Knot 3.2 partial glue without TC is judged as TC: rrdns with TC agrees',
      ours: reply({ ...referral, flags: 'qr tc rd' }),
      theirs: reply({ ...referral, additional: [glue[0]!] }),
      full: [reply({ ...referral, additional: glue }), reply({ ...referral, additional: glue })],
      want: [],
    },
    {
      name: 'in-domain glue dropped without TC is reported (RFC 9471)',
      ours: reply({ ...referral, additional: [glue[0]!] }),
      theirs: reply({ ...referral, additional: glue }),
      full: [reply({ ...referral, additional: glue }), reply({ ...referral, additional: glue })],
      want: ['additional'],
    },
    {
      name: "Knot's wildcard-synthesised additional address is optional",
      ours: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 x.wild.z1.fuzz.test.'] }),
      theirs: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 x.wild.z1.fuzz.test.'], additional: [A('x.wild.z1.fuzz.test.', '192.0.2.7')] }),
      owners: ['www.z1.fuzz.test.', '*.wild.z1.fuzz.test.'],
      want: [],
    },
    {
      name: "Knot's wildcard additional written under the wildcard's own owner is optional",
      ours: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 x.wild.z1.fuzz.test.'] }),
      theirs: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 x.wild.z1.fuzz.test.'], additional: [A('*.wild.z1.fuzz.test.', '192.0.2.7')] }),
      owners: ['www.z1.fuzz.test.', '*.wild.z1.fuzz.test.'],
      want: [],
    },
    {
      name: 'rrdns writing an address under a wildcard owner is reported',
      ours: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 x.wild.z1.fuzz.test.'], additional: [A('*.wild.z1.fuzz.test.', '192.0.2.7')] }),
      theirs: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 x.wild.z1.fuzz.test.'] }),
      owners: ['www.z1.fuzz.test.', '*.wild.z1.fuzz.test.'],
      want: ['additional'],
    },
    {
      name: 'an additional address of a name that exists is not optional here',
      ours: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 mail.z1.fuzz.test.'] }),
      theirs: reply({ answer: ['www.z1.fuzz.test. 300 MX 1 mail.z1.fuzz.test.'], additional: [A('mail.z1.fuzz.test.', '192.0.2.7')] }),
      owners: ['www.z1.fuzz.test.', 'mail.z1.fuzz.test.'],
      want: ['additional'],
    },
    { name: 'ANY: one whole RRset of Knot\'s answer is enough (RFC 8482)', q: { qtype: 'ANY' }, ours: reply({ answer: ['www.z1.fuzz.test. 300 TXT \\# 2 0161'] }), theirs: reply({ answer: ['www.z1.fuzz.test. 300 TXT \\# 2 0161', A('www.z1.fuzz.test.', '192.0.2.1')] }), want: [] },
    {
      name: 'ANY: part of an RRset is reported',
      q: { qtype: 'ANY' },
      ours: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1')] }),
      theirs: reply({ answer: [A('www.z1.fuzz.test.', '192.0.2.1'), A('www.z1.fuzz.test.', '192.0.2.2')] }),
      want: ['answer'],
    },
  ];

  it.each(cases)('$name', ({ q, ours, theirs, full, owners, want }) => {
    const facts = owners ? zoneFacts([{ text: owners.map((o) => `${o} 300 IN A 192.0.2.1`).join('\n') }]) : undefined;
    const diff = compare({ ...Q, ...q }, ours, theirs, full ? { ours: full[0], theirs: full[1] } : undefined, facts);
    expect(diff?.fields ?? []).toEqual(want);
  });
});
