/**
 * Labels holding '.' or '\' octets (issue 8): the valid SOA rname
 * `john\.doe.esc.test.` (a first label of 8 octets, "john.doe") loads and is
 * served exactly, and a name `a\.b.esc.test` is one label deep, not two.
 * Served by rrdns and by Knot from the same master file and queried with dig
 * (which sends `a\.b` as one label); answers must agree section by section.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asSet, dig, type DigResult } from '../support/dig.ts';
import { startKnot, type KnotServer } from '../support/knot.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { missing } from '../support/tools.ts';

const ZONE = `$ORIGIN esc.test.
$TTL 300
@ SOA ns1 john\\.doe 1 3600 900 604800 60
@ NS ns1
ns1 A 192.0.2.53
a\\.b A 192.0.2.7
c CNAME a\\.b
back\\\\slash TXT "x"
mx MX 10 a\\.b
dot\\046 AAAA 2001:db8::7
`;

const CASES: { name: string; query: [string, string]; answer?: string[]; status?: string }[] = [
  { name: 'SOA with an escaped dot in the rname', query: ['esc.test', 'SOA'], answer: ['esc.test. 300 SOA ns1.esc.test. john\\.doe.esc.test. 1 3600 900 604800 60'] },
  { name: 'a\\.b is one label', query: ['a\\.b.esc.test', 'A'], answer: ['a\\.b.esc.test. 300 A 192.0.2.7'] },
  { name: 'matched ignoring case', query: ['A\\.B.esc.test', 'A'], answer: ['a\\.b.esc.test. 300 A 192.0.2.7'] },
  { name: 'a.b (two labels) is another name', query: ['a.b.esc.test', 'A'], status: 'NXDOMAIN' },
  { name: 'a\\046b is the same name as a\\.b', query: ['a\\046b.esc.test', 'A'], answer: ['a\\.b.esc.test. 300 A 192.0.2.7'] },
  { name: 'CNAME to an escaped name is followed', query: ['c.esc.test', 'A'], answer: ['a\\.b.esc.test. 300 A 192.0.2.7', 'c.esc.test. 300 CNAME a\\.b.esc.test.'] },
  { name: 'backslash octet in a label', query: ['back\\\\slash.esc.test', 'TXT'], answer: ['back\\\\slash.esc.test. 300 TXT "x"'] },
  { name: 'MX exchange with an escaped dot', query: ['mx.esc.test', 'MX'] },
  { name: 'label ending in a dot octet', query: ['dot\\..esc.test', 'AAAA'], answer: ['dot\\..esc.test. 300 AAAA 2001:db8::7'] },
  { name: 'below the escaped name', query: ['x.a\\.b.esc.test', 'A'], status: 'NXDOMAIN' },
];

function summary(r: DigResult) {
  return { status: r.status, aa: r.flags.includes('aa'), answer: asSet(r.answer), authority: asSet(r.authority), additional: asSet(r.additional) };
}

describe.skipIf(missing('dig', 'bind9-dnsutils') || missing('knotd', 'knot'))('escaped dots and backslashes in labels, against Knot', () => {
  let knot: KnotServer;
  let rrdns: TestServer;
  beforeAll(async () => {
    knot = await startKnot('esc.test', ZONE);
    rrdns = await startTestServer({ 'esc.test.zone': ZONE });
  });
  afterAll(async () => {
    await knot?.close();
    await rrdns?.close();
  });

  it.each(CASES)('$name', async ({ query, answer, status }) => {
    for (const transport of [[], ['+tcp']]) {
      const [ours, theirs] = await Promise.all([dig(rrdns.port, [...query, ...transport]), dig(knot.port, [...query, ...transport])]);
      expect(summary(ours)).toEqual(summary(theirs));
      if (answer) expect(asSet(ours.answer)).toEqual([...answer].sort());
      expect(ours.status).toBe(status ?? 'NOERROR');
    }
  });
});
