/**
 * Differential test: the same master file served by rrdns and by Knot must
 * give the same answers (rcode, AA/TC, and each section compared as a set).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asSet, dig, type DigResult } from '../support/dig.ts';
import { startKnot, type KnotServer } from '../support/knot.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { missing } from '../support/tools.ts';

const ZONE_TEXT = fs.readFileSync(path.join(import.meta.dirname, '../fixtures/diff.test.zone'), 'utf8');

const CORPUS: [string, string][] = [
  ['diff.test', 'SOA'],
  ['diff.test', 'NS'],
  ['diff.test', 'MX'],
  ['diff.test', 'TXT'],
  ['diff.test', 'CAA'],
  ['diff.test', 'A'],
  ['DiFf.TeSt', 'SOA'],
  ['www.diff.test', 'A'],
  ['www.diff.test', 'AAAA'],
  ['WWW.diff.test', 'A'],
  ['www.diff.test', 'MX'],
  ['www.diff.test', 'CNAME'],
  ['ns1.diff.test', 'A'],
  ['mail.diff.test', 'AAAA'],
  ['nothing.diff.test', 'A'],
  ['deep.nothing.diff.test', 'TXT'],
  ['b.diff.test', 'A'],
  ['c.b.diff.test', 'TXT'],
  ['blog.diff.test', 'A'],
  ['blog.diff.test', 'AAAA'],
  ['blog.diff.test', 'CNAME'],
  ['blog.diff.test', 'TXT'],
  ['chain1.diff.test', 'A'],
  ['dangling.diff.test', 'A'],
  ['away.diff.test', 'A'],
  ['foo.w.diff.test', 'A'],
  ['foo.w.diff.test', 'TXT'],
  ['foo.w.diff.test', 'MX'],
  ['a.b.c.w.diff.test', 'A'],
  ['x.w.diff.test', 'A'],
  ['x.w.diff.test', 'TXT'],
  ['zz.b2.w.diff.test', 'A'],
  ['b2.w.diff.test', 'A'],
  ['*.w.diff.test', 'A'],
  ['any.cw.diff.test', 'A'],
  ['_sip._tcp.diff.test', 'SRV'],
  ['4.2.0.192.diff.test', 'PTR'],
  ['odd.diff.test', 'TYPE65280'],
  ['sub.diff.test', 'NS'],
  ['sub.diff.test', 'A'],
  ['host.sub.diff.test', 'A'],
  ['ns.sub.diff.test', 'A'],
  ['deeper.host.sub.diff.test', 'MX'],
  ['sub.diff.test', 'DS'],
  ['outside.example', 'A'],
];

function summary(r: DigResult) {
  return {
    status: r.status,
    aa: r.flags.includes('aa'),
    tc: r.flags.includes('tc'),
    ra: r.flags.includes('ra'),
    answer: asSet(r.answer),
    authority: asSet(r.authority),
    additional: asSet(r.additional),
  };
}

describe.skipIf(missing('dig', 'bind9-dnsutils') || missing('knotd', 'knot'))('rrdns answers like Knot', () => {
  let knot: KnotServer;
  let rrdns: TestServer;
  beforeAll(async () => {
    knot = await startKnot('diff.test', ZONE_TEXT);
    rrdns = await startTestServer({ 'diff.test.zone': ZONE_TEXT });
  });
  afterAll(async () => {
    await knot?.close();
    await rrdns?.close();
  });

  it.each(CORPUS)('%s %s', async (name, type) => {
    for (const transport of [[], ['+tcp'], ['+noedns']]) {
      const [ours, theirs] = await Promise.all([dig(rrdns.port, [name, type, ...transport]), dig(knot.port, [name, type, ...transport])]);
      const want = summary(theirs);
      // Knot answers names outside its zones with NOTAUTH/REFUSED variants; both must refuse.
      expect({ transport: transport.join(' '), ...summary(ours) }).toEqual({ transport: transport.join(' '), ...want });
    }
  });
});
