/**
 * Zone bounds checked at load (issue 8, acceptance 3): an RRset that cannot fit
 * one 65,535-octet message, names over 255 octets on every path that makes a
 * name, and the per-zone / per-RRset record limits. Each refusal names file,
 * line and the name at fault; each case at the edge also shows what still loads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIssue, type ZoneIssue } from '../../src/errors.ts';
import { ZONE_LIMIT_DEFAULTS, type ZoneLimits } from '../../src/config/schema.ts';
import { loadNativeParser, loadZoneDir } from '../../src/zone/load.ts';
import { parseMasterFile } from '../../src/zone/masterfile.ts';
import { buildZone, minimalMessageOctets, type Zone } from '../../src/zone/zone.ts';
import { encodeRdata } from '../../src/wire/rdata.ts';
import { writeZones } from '../support/server.ts';

// The readers here parse native zones synchronously (readSync, loadZoneDir): the parser is loaded on demand.
await loadNativeParser();

const HEAD = `$TTL 300
@ SOA ns1 hostmaster 1 3600 900 604800 60
@ NS ns1
ns1 A 192.0.2.53
`;

/** Loads one master file `limits.test.zone` through the real loader. */
function load(body: string, limits?: ZoneLimits): { zones: Zone[]; issues: ZoneIssue[]; text: string } {
  const dir = writeZones({ 'limits.test.zone': HEAD + body });
  const result = loadZoneDir(dir, limits ? { limits } : {});
  const text = result.issues.map(formatIssue).join('\n');
  fs.rmSync(dir, { recursive: true, force: true });
  return { zones: result.zones, issues: result.issues, text };
}

const lines = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i) + '\n').join('');
const aRecords = (owner: string, n: number) => lines(n, (i) => `${owner} A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
/** First line of the body (after HEAD's 4 lines). */
const BODY = 5;

describe('RRsets that cannot fit one DNS message are refused at load', () => {
  it.each([
    {
      name: '400 TXT records of 200 octets (issue 8)',
      body: lines(400, (i) => `big TXT "${String(i).padStart(4, '0')}${'x'.repeat(196)}"`),
      want: /limits\.test\.zone:5: big\.limits\.test\. TXT: its 400 records need at least \d+ octets .* over the 65535-octet limit/,
    },
    {
      name: '10,000 A records with the per-RRset limit raised',
      body: aRecords('many', 10_000),
      limits: { maxRecords: 1_000_000, maxRRsetRecords: 65_535 },
      want: /limits\.test\.zone:5: many\.limits\.test\. A: its 10000 records need at least 160\d{3} octets/,
    },
    {
      name: 'RFC 3597 records of an unknown type',
      body: lines(300, (i) => `blob TYPE65280 \\# 250 ${i.toString(16).padStart(4, '0')}${'ab'.repeat(248)}`),
      want: /limits\.test\.zone:5: blob\.limits\.test\. TYPE65280: its 300 records need/,
    },
  ])('$name', ({ body, limits, want }) => {
    const r = load(body, limits);
    expect(r.zones).toEqual([]);
    expect(r.issues).toHaveLength(1);
    expect(r.text).toMatch(want);
  });

  it('loads 4,000 A records at one name (they fit: 16 octets each)', () => {
    const r = load(aRecords('www', 4000));
    expect(r.text).toBe('');
    expect(r.zones[0]!.nodes.get('www.limits.test')!.rrsets.get(1)!.records).toHaveLength(4000);
  });

  it('the bound is exact: the largest A RRset that fits loads, one more is refused', () => {
    // 12 header + (wire length of "e.limits.test." = 15) + 4 + 11 OPT + 16 per record <= 65535.
    const fits = Math.floor((65_535 - 12 - 15 - 4 - 11) / 16);
    const limits = { maxRecords: 1_000_000, maxRRsetRecords: 65_535 };
    expect(load(aRecords('e', fits), limits).text).toBe('');
    expect(load(aRecords('e', fits + 1), limits).text).toMatch(`e.limits.test. A: its ${fits + 1} records need at least ${42 + (fits + 1) * 16} octets`);
    expect(42 + fits * 16).toBeLessThanOrEqual(65_535);
    expect(42 + (fits + 1) * 16).toBeGreaterThan(65_535);
  });

  it('counts each rdata as its encoder writes it (names uncompressed)', () => {
    const parsed = parseMasterFile(
      `@ SOA ns1 john\\.doe 1 2 3 4 5\n@ MX 10 mail\n@ TXT "a" "bc"\n@ SRV 1 2 3 sip\n@ CAA 0 issue "ca.test"\n@ TYPE65280 \\# 3 010203\n@ AAAA ::1\n@ NS ns1\n@ CNAME x\n@ PTR y\n`,
      { file: 'x.zone', origin: 'limits.test', defaultTtl: 3600 },
    );
    expect(parsed.issues).toEqual([]);
    for (const rec of parsed.records) {
      const octets = minimalMessageOctets('limits.test', [rec.data]);
      expect(octets - (12 + 13 + 4 + 11 + 12), rec.data.kind).toBe(encodeRdata(rec.type, rec.data).length);
    }
  });
});

describe('names longer than 255 octets are refused on every path', () => {
  const label = 'a'.repeat(63);
  // 4 labels of 63 = 256 wire octets with the root: one over.
  const long = `${label}.${label}.${label}.${label}`;
  it.each([
    { name: 'absolute owner', body: `${long}. A 192.0.2.1\n`, line: BODY },
    { name: 'relative owner joined to the origin', body: `${label}.${label}.${label}.${label.slice(0, 60)} A 192.0.2.1\n`, line: BODY },
    { name: '$ORIGIN joined to the current origin', body: `$ORIGIN ${label}.${label}.${label}.${label}\nx A 192.0.2.1\n`, line: BODY },
    { name: 'owner below a long $ORIGIN', body: `$ORIGIN ${label}.${label}.${label}.limits.test.\n${label} A 192.0.2.1\n`, line: BODY + 1 },
    { name: 'CNAME target', body: `c CNAME ${long}.\n`, line: BODY },
    { name: 'relative MX exchange', body: `x MX 10 ${label}.${label}.${label}.${label.slice(0, 62)}\n`, line: BODY },
    { name: 'name in RFC 3597 rdata', body: `n NS \\# 257 ${('3f' + '61'.repeat(63)).repeat(4)}00\n`, line: BODY },
  ])('$name', ({ body, line }) => {
    const r = load(body);
    expect(r.zones).toEqual([]);
    expect(r.issues.length).toBeGreaterThan(0);
    expect(r.issues[0]).toMatchObject({ file: expect.stringMatching(/limits\.test\.zone$/), line });
    expect(r.issues[0]!.message).toMatch(/longer than 255 octets/);
  });

  it('a name of exactly 255 octets loads', () => {
    // 3 labels of 63 (64 octets each with the length) + one of 49 (50) + "limits" (7) + "test" (5) + root (1) = 255.
    const owner = `${label}.${label}.${label}.${'b'.repeat(49)}`;
    const r = load(`${owner} A 192.0.2.1\n`);
    expect(r.text).toBe('');
    const key = `${owner}.limits.test`;
    expect(key.length + 2).toBe(255);
    expect(r.zones[0]!.nodes.has(key)).toBe(true);
  });

  it.each([
    { name: 'owner key', yaml: `records:\n  "${long}.": { A: 192.0.2.1 }\n`, line: 5 },
    { name: 'NS value', yaml: `records:\n  x: { NS: "${long}." }\n`, line: 5 },
    { name: 'SOA rname', yaml: `records: {}\n`, soa: `soa: { mname: ns1, rname: "${long}.", serial: 1 }\n`, line: 1 },
  ])('native zone: $name', ({ yaml, soa, line }) => {
    const dir = writeZones({
      'limits.test.yaml': (soa ?? 'soa: { mname: ns1, rname: hostmaster, serial: 1 }\n') + yaml.replace('records:\n', 'records:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n'),
    });
    const r = loadZoneDir(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.zones).toEqual([]);
    expect(r.issues[0]).toMatchObject({ file: expect.stringMatching(/limits\.test\.yaml$/), line });
    expect(r.issues[0]!.message).toMatch(/longer than 255 octets/);
  });
});

describe('record limits per zone and per RRset', () => {
  it.each([
    {
      name: 'per-zone limit',
      body: aRecords('a', 3) + aRecords('b', 3),
      limits: { maxRecords: 8, maxRRsetRecords: 100 },
      // HEAD has 3 records; the 9th record is on body line 6.
      want: /limits\.test\.zone:10: zone limits\.test\. has more than 8 records, the limit per zone \(--zone-max-records\)/,
    },
    {
      name: 'per-RRset limit',
      body: aRecords('a', 3) + aRecords('b', 6),
      limits: { maxRecords: 100, maxRRsetRecords: 5 },
      want: /limits\.test\.zone:13: b\.limits\.test\. A has more than 5 records, the limit per RRset \(--rrset-max-records\)/,
    },
    {
      name: 'per-RRset default refuses 10,000 A records',
      body: aRecords('many', 10_000),
      limits: undefined,
      want: new RegExp(`limits\\.test\\.zone:${BODY + ZONE_LIMIT_DEFAULTS.maxRRsetRecords}: many\\.limits\\.test\\. A has more than ${ZONE_LIMIT_DEFAULTS.maxRRsetRecords} records`),
    },
  ])('$name', ({ body, limits, want }) => {
    const r = load(body, limits);
    expect(r.zones).toEqual([]);
    expect(r.issues).toHaveLength(1);
    expect(r.text).toMatch(want);
  });

  it('duplicates do not count against the RRset limit, and names in rdata compare case-insensitively', () => {
    const body = 'd A 192.0.2.1\nd A 192.0.2.1\nd A 192.0.2.2\nm MX 10 Mail.Example.\nm MX 10 mail.example.\nm MX 20 mail.example.\n';
    const r = load(body, { maxRecords: 100, maxRRsetRecords: 2 });
    expect(r.text).toBe('');
    const zone = r.zones[0]!;
    expect(zone.nodes.get('d.limits.test')!.rrsets.get(1)!.records).toHaveLength(2);
    // The first spelling is kept.
    expect(zone.nodes.get('m.limits.test')!.rrsets.get(15)!.records).toEqual([
      { kind: 'MX', priority: 10, exchange: 'Mail.Example' },
      { kind: 'MX', priority: 20, exchange: 'mail.example' },
    ]);
  });

  it('empty non-terminals count against the zone limit (deep, distinct names)', () => {
    const deep = (i: number) => `${'x.'.repeat(20)}n${i}`;
    const limits = { maxRecords: 100, maxRRsetRecords: 100 };
    // 10 records whose names bring 20 empty non-terminals each: 200 > 100.
    const r = load(lines(10, (i) => `${deep(i)} A 192.0.2.1`), limits);
    expect(r.zones).toEqual([]);
    expect(r.text).toMatch(/zone limits\.test\. has more than 100 empty non-terminals .*--zone-max-records/);
    // 4 of them (80 empty non-terminals) load.
    const ok = load(lines(4, (i) => `${deep(i)} A 192.0.2.1`), limits);
    expect(ok.text).toBe('');
    expect([...ok.zones[0]!.nodes.values()].filter((n) => n.emptyNonTerminal)).toHaveLength(80);
  });

  it('the master-file parser stops one record past the zone limit', () => {
    const parsed = parseMasterFile(HEAD + aRecords('a', 50), { file: 'x.zone', origin: 'limits.test', maxRecords: 10 });
    expect(parsed.records).toHaveLength(11);
  });

  it('a master file named by a native zone gets the same limit', () => {
    const dir = writeZones({
      'limits.test.yaml': 'masterFile: limits.db\n',
      'limits.db': HEAD + aRecords('a', 20),
    });
    const r = loadZoneDir(dir, { limits: { maxRecords: 10, maxRRsetRecords: 100 } });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.issues.map(formatIssue).join('\n')).toMatch(/^limits\.db:12: zone limits\.test\. has more than 10 records/);
  });

  it('buildZone takes the defaults when given no limits', () => {
    const parsed = parseMasterFile(HEAD + aRecords('many', ZONE_LIMIT_DEFAULTS.maxRRsetRecords + 1), { file: 'x.zone', origin: 'limits.test' });
    const built = buildZone({ origin: 'limits.test', source: 'x.zone', records: parsed.records, ttlPolicy: { defaultTtl: 300, minTtl: 0, maxTtl: 86400 } });
    expect(built.zone).toBeUndefined();
    expect(built.issues.map((i) => i.message)).toEqual([`many.limits.test. A has more than ${ZONE_LIMIT_DEFAULTS.maxRRsetRecords} records, the limit per RRset (--rrset-max-records)`]);
  });

  it('an issue quoting a megabyte-long token is cut short', () => {
    const parsed = parseMasterFile(`x A ${'9'.repeat(1_000_000)}`, { file: 'long.zone', origin: 'limits.test', defaultTtl: 3600 });
    expect(parsed.issues).toHaveLength(1);
    expect(parsed.issues[0]!.message.length).toBeLessThan(500);
    expect(parsed.issues[0]!.message).toMatch(/^"9+… \(\d+ more chars\)$/);
  });

  it('a file of 200,000 bad lines yields a bounded list of issues', () => {
    const parsed = parseMasterFile(lines(200_000, () => 'x BOGUS 1'), { file: 'bad.zone', origin: 'limits.test', defaultTtl: 3600 });
    expect(parsed.issues).toHaveLength(1001);
    expect(parsed.issues[1000]).toEqual({ file: 'bad.zone', message: '199000 more problems not listed' });
    expect(path.basename(parsed.issues[0]!.file)).toBe('bad.zone');
  });
});
