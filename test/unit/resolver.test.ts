import { describe, expect, it } from 'vitest';
import { resolve, type SectionEntry } from '../../src/resolver/resolve.ts';
import { nameKey, nameToText } from '../../src/zone/name.ts';
import { typeFromText, typeToText } from '../../src/zone/records.ts';
import { zoneFromText } from '../support/zone-text.ts';

const ZONE = `
$ORIGIN example.test.
$TTL 300
@         3600 IN SOA ns1 hostmaster 1 3600 900 1209600 60
@              IN NS  ns1
@              IN NS  ns2.elsewhere.test.
@              IN MX  10 mail
ns1            IN A   192.0.2.53
mail           IN A   192.0.2.25
mail           IN AAAA 2001:db8::25
www        30  IN A   192.0.2.10
www        30  IN A   192.0.2.11
www        30  IN A   192.0.2.12
blog           IN CNAME www
dangling       IN CNAME nothere
outside        IN CNAME www.other.test.
loop1          IN CNAME loop2
loop2          IN CNAME loop1
c.b            IN TXT "deep"
*.w            IN A   192.0.2.40
x.w            IN TXT "exists"
c.b2.w         IN TXT "makes b2.w an empty non-terminal"
*.cw           IN CNAME www
below.*.ent    IN TXT "makes *.ent a wildcard that is only an empty non-terminal"
sub            IN NS  ns.sub
sub            IN NS  ns.elsewhere.test.
ns.sub         IN A   192.0.2.99
_sip._tcp      IN SRV 10 60 5060 mail
mxw            IN MX  10 host.w
mxw            IN MX  20 nohost.sub
`;
const zone = zoneFromText('example.test', ZONE);

/** Renders a section as sorted "owner ttl TYPE" lines; owners for qname-owned entries show as written. */
const render = (entries: readonly SectionEntry[]) =>
  entries.map((e) => `${nameToText(e.owner).toLowerCase()} ${e.ttl} ${typeToText(e.rrset.type)} x${e.rrset.records.length}`);

interface Case {
  name: string;
  q: string;
  type: string;
  outcome: string;
  rcode: number;
  aa: boolean;
  answer: string[];
  authority: string[];
  additional?: string[];
}

const cases: Case[] = [
  { name: 'exact A hit', q: 'www', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['www.example.test. 30 A x3'], authority: [] },
  { name: 'case-insensitive match', q: 'WwW', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['www.example.test. 30 A x3'], authority: [] },
  { name: 'NODATA at existing name carries SOA with min(SOA TTL, MINIMUM)', q: 'www', type: 'MX', outcome: 'NODATA', rcode: 0, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'NXDOMAIN', q: 'nope', type: 'A', outcome: 'NXDOMAIN', rcode: 3, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'empty non-terminal is NODATA, not NXDOMAIN', q: 'b', type: 'A', outcome: 'NODATA', rcode: 0, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'apex MX adds the exchange addresses', q: '@', type: 'MX', outcome: 'HIT', rcode: 0, aa: true, answer: ['example.test. 300 MX x1'], authority: [], additional: ['mail.example.test. 300 A x1', 'mail.example.test. 300 AAAA x1'] },
  { name: 'apex NS adds in-zone addresses only', q: '@', type: 'NS', outcome: 'HIT', rcode: 0, aa: true, answer: ['example.test. 300 NS x2'], authority: [], additional: ['ns1.example.test. 300 A x1'] },
  { name: 'SRV adds the target address', q: '_sip._tcp', type: 'SRV', outcome: 'HIT', rcode: 0, aa: true, answer: ['_sip._tcp.example.test. 300 SRV x1'], authority: [], additional: ['mail.example.test. 300 A x1', 'mail.example.test. 300 AAAA x1'] },
  { name: 'additional addresses come only from names that exist: none synthesised from a wildcard or below a cut', q: 'mxw', type: 'MX', outcome: 'HIT', rcode: 0, aa: true, answer: ['mxw.example.test. 300 MX x2'], authority: [], additional: [] },
  { name: 'CNAME followed in zone', q: 'blog', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['blog.example.test. 300 CNAME x1', 'www.example.test. 30 A x3'], authority: [] },
  { name: 'CNAME queried for itself is not followed', q: 'blog', type: 'CNAME', outcome: 'HIT', rcode: 0, aa: true, answer: ['blog.example.test. 300 CNAME x1'], authority: [] },
  { name: 'CNAME to a missing in-zone name is NXDOMAIN (RFC 6604)', q: 'dangling', type: 'A', outcome: 'NXDOMAIN', rcode: 3, aa: true, answer: ['dangling.example.test. 300 CNAME x1'], authority: ['example.test. 60 SOA x1'] },
  { name: 'CNAME to another zone stops at the CNAME', q: 'outside', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['outside.example.test. 300 CNAME x1'], authority: [] },
  { name: 'CNAME loop terminates', q: 'loop1', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['loop1.example.test. 300 CNAME x1', 'loop2.example.test. 300 CNAME x1'], authority: [] },
  { name: 'wildcard synthesises with the qname as owner', q: 'foo.w', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['foo.w.example.test. 300 A x1'], authority: [] },
  { name: 'wildcard matches several labels down', q: 'a.b.c.w', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['a.b.c.w.example.test. 300 A x1'], authority: [] },
  { name: 'wildcard NODATA for a missing type', q: 'foo.w', type: 'MX', outcome: 'NODATA', rcode: 0, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'existing name blocks the wildcard', q: 'x.w', type: 'A', outcome: 'NODATA', rcode: 0, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'closest encloser is an empty non-terminal without wildcard: NXDOMAIN', q: 'zz.b2.w', type: 'A', outcome: 'NXDOMAIN', rcode: 3, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'the wildcard owner queried literally', q: '*.w', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['*.w.example.test. 300 A x1'], authority: [] },
  { name: 'a wildcard that is only an empty non-terminal matches: NODATA (RFC 4592 §2.2.2)', q: 'foo.ent', type: 'A', outcome: 'NODATA', rcode: 0, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'wildcard CNAME is followed', q: 'any.cw', type: 'A', outcome: 'HIT', rcode: 0, aa: true, answer: ['any.cw.example.test. 300 CNAME x1', 'www.example.test. 30 A x3'], authority: [] },
  { name: 'referral below a cut: no AA, NS in authority, glue', q: 'host.sub', type: 'A', outcome: 'DELEGATION', rcode: 0, aa: false, answer: [], authority: ['sub.example.test. 300 NS x2'], additional: ['ns.sub.example.test. 300 A x1'] },
  { name: 'referral at the cut itself', q: 'sub', type: 'A', outcome: 'DELEGATION', rcode: 0, aa: false, answer: [], authority: ['sub.example.test. 300 NS x2'], additional: ['ns.sub.example.test. 300 A x1'] },
  { name: 'NS at the cut is a referral too', q: 'sub', type: 'NS', outcome: 'DELEGATION', rcode: 0, aa: false, answer: [], authority: ['sub.example.test. 300 NS x2'], additional: ['ns.sub.example.test. 300 A x1'] },
  { name: 'glue is not authoritative data', q: 'ns.sub', type: 'A', outcome: 'DELEGATION', rcode: 0, aa: false, answer: [], authority: ['sub.example.test. 300 NS x2'], additional: ['ns.sub.example.test. 300 A x1'] },
  { name: 'DS at the cut is answered by the parent side', q: 'sub', type: 'DS', outcome: 'NODATA', rcode: 0, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
  { name: 'ANY gets one RRset (RFC 8482)', q: 'mail', type: 'ANY', outcome: 'HIT', rcode: 0, aa: true, answer: ['mail.example.test. 300 A x1'], authority: [] },
  { name: 'ANY at an empty non-terminal is NODATA', q: 'b', type: 'ANY', outcome: 'NODATA', rcode: 0, aa: true, answer: [], authority: ['example.test. 60 SOA x1'] },
];

describe('resolve', () => {
  it.each(cases)('$name', (c) => {
    const qname = c.q === '@' ? 'example.test' : `${c.q}.example.test`;
    const res = resolve(zone, qname, nameKey(qname), typeFromText(c.type)!);
    expect(res.outcome).toBe(c.outcome);
    expect(res.rcode).toBe(c.rcode);
    expect(res.authoritative).toBe(c.aa);
    expect(render(res.answer)).toEqual(c.answer);
    expect(render(res.authority)).toEqual(c.authority);
    if (c.additional) expect(render(res.additional).sort()).toEqual(c.additional.sort());
  });

  it('shares answers that do not depend on the qname, and only those', () => {
    const key = (q: string, t = 'A') => resolve(zone, q, nameKey(q), typeFromText(t)!).sharedKey;
    expect(key('www.example.test')).toBeUndefined();
    expect(key('nope.example.test')).toBe(key('other.example.test'));
    expect(key('foo.w.example.test')).toBe(key('bar.w.example.test'));
    expect(key('foo.w.example.test', 'MX')).not.toBe(key('foo.w.example.test'));
    expect(key('host.sub.example.test')).toBe(key('other.sub.example.test'));
  });

  it('never changes the zone data', () => {
    const before = JSON.stringify([...zone.nodes.values()].map((n) => [n.key, [...n.rrsets.values()].map((s) => s.records)]));
    for (const c of cases) {
      const qname = c.q === '@' ? 'example.test' : `${c.q}.example.test`;
      resolve(zone, qname, nameKey(qname), typeFromText(c.type)!);
    }
    expect(JSON.stringify([...zone.nodes.values()].map((n) => [n.key, [...n.rrsets.values()].map((s) => s.records)]))).toBe(before);
  });
});

describe('zone validation', () => {
  const bad = (text: string) => () => zoneFromText('example.test', `$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n${text}`);
  it.each([
    { name: 'CNAME and other data', text: 'a IN CNAME b\na IN A 192.0.2.1', message: /CNAME and other data/ },
    { name: 'two CNAMEs', text: 'a IN CNAME b\na IN CNAME c', message: /more than one CNAME/ },
    { name: 'record outside the zone', text: 'a.other.test. IN A 192.0.2.1', message: /outside the zone/ },
    { name: 'SOA below the apex', text: 'a IN SOA ns1 h 1 2 3 4 5', message: /not at the zone apex/ },
  ])('rejects $name', ({ text, message }) => {
    expect(bad(text)).toThrow(message);
  });
  it('requires SOA and NS at the apex', () => {
    expect(() => zoneFromText('example.test', '$TTL 300\nwww IN A 192.0.2.1')).toThrow(/no SOA[\s\S]*no NS/);
  });
  it('clamps every TTL to the zone policy, negative TTL included', () => {
    const z = zoneFromText('example.test', '$TTL 300\n@ 3600 IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nwww 1 IN A 192.0.2.1', { minTtl: 10, maxTtl: 100 });
    expect(z.nodes.get('www.example.test')!.rrsets.get(1)!.ttl).toBe(10);
    expect(z.nodes.get('example.test')!.rrsets.get(2)!.ttl).toBe(100);
    expect(z.negativeTtl).toBe(10); // min(3600, 5) = 5, clamped up to 10
  });
});
