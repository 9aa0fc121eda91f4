/**
 * printZone round trip (issue 8, acceptance 5): a loaded zone printed as a
 * master file and loaded again is the same zone: same nodes, RRsets, records
 * and TTLs. Zones are generated with fast-check, with names and strings made of
 * arbitrary octets (including '.', '\', '"', ';', blanks and bytes above 0x7F),
 * every modelled type and RFC 3597 unknown types.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/errors.ts';
import { normalizeIPv6 } from '../../src/wire/rdata.ts';
import { parseMasterFile } from '../../src/zone/masterfile.ts';
import { LABEL_DOT, nameToText, parseName } from '../../src/zone/name.ts';
import { printZone, quotedString } from '../../src/zone/print.ts';
import { RRType, type RData, type ZoneRecord } from '../../src/zone/records.ts';
import { buildZone, type Zone } from '../../src/zone/zone.ts';

const ORIGIN = 'rt.test';
const POLICY = { defaultTtl: 3600, minTtl: 0, maxTtl: 0x7fffffff };

/** Loads master-file text the way the loader does for `*.zone`; fails the test on any issue. */
function load(text: string, origin = ORIGIN): Zone {
  const parsed = parseMasterFile(text, { file: 'rt.zone', origin, defaultTtl: 3600 });
  expect(parsed.issues.map(formatIssue)).toEqual([]);
  const built = buildZone({ origin, source: 'rt.zone', records: parsed.records, ttlPolicy: POLICY });
  expect(built.issues.map(formatIssue)).toEqual([]);
  return built.zone!;
}

/** Everything a zone serves, in a form toEqual compares: nodes by key, RRsets by type. */
function summary(zone: Zone) {
  return [...zone.nodes.values()]
    .map((n) => ({
      key: n.key,
      emptyNonTerminal: n.emptyNonTerminal,
      rrsets: [...n.rrsets.values()]
        .map((r) => ({ owner: r.owner, type: r.type, ttl: r.ttl, records: r.records, rotates: r.rotates }))
        .sort((a, b) => a.type - b.type),
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/* ------------------------------------------------------------------------ */
/* Generators                                                                */
/* ------------------------------------------------------------------------ */

/** One label octet: mostly letters, digits and '-', sometimes anything (a '.' octet is LABEL_DOT). */
const octet = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*'.split('').map((c) => c.charCodeAt(0))) },
  { weight: 1, arbitrary: fc.constantFrom(0x2e, 0x5c, 0x22, 0x3b, 0x28, 0x29, 0x20, 0x09, 0x0a, 0x40, 0x24, 0x00, 0xff, 0x80) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const label = fc.array(octet, { minLength: 1, maxLength: 10 }).map((cs) => cs.map((c) => (c === 0x2e ? LABEL_DOT : String.fromCharCode(c))).join(''));
const inZone = fc.array(label, { minLength: 0, maxLength: 3 }).map((ls) => [...ls, ORIGIN].join('.'));
/** Targets of names in rdata: in the zone, elsewhere, or the root. */
const anyName = fc.oneof(inZone, fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => ls.join('.')), fc.constant(''));
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

const rdata: fc.Arbitrary<[number, RData]> = fc.oneof(
  fc.ipV4().map((a): [number, RData] => [RRType.A, { kind: 'A', address: a.split('.').map(Number).join('.') }]),
  fc.ipV6().map((a): [number, RData] => [RRType.AAAA, { kind: 'AAAA', address: normalizeIPv6(a)! }]),
  anyName.map((n): [number, RData] => [RRType.NS, { kind: 'NS', ns: n }]),
  anyName.map((n): [number, RData] => [RRType.PTR, { kind: 'PTR', domain: n }]),
  anyName.map((n): [number, RData] => [RRType.CNAME, { kind: 'CNAME', domain: n }]),
  fc.tuple(u16, anyName).map(([p, n]): [number, RData] => [RRType.MX, { kind: 'MX', priority: p, exchange: n }]),
  fc.tuple(u16, u16, u16, anyName).map(([p, w, port, n]): [number, RData] => [RRType.SRV, { kind: 'SRV', priority: p, weight: w, port, target: n }]),
  fc.array(bytes(40), { minLength: 1, maxLength: 3 }).map((d): [number, RData] => [RRType.TXT, { kind: 'TXT', data: d }]),
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.stringMatching(/^[A-Za-z0-9]{1,15}$/), bytes(30))
    .map(([flags, tag, v]): [number, RData] => [RRType.CAA, { kind: 'CAA', flags, tag, value: v.toString('latin1') }]),
  fc.tuple(fc.integer({ min: 65280, max: 65534 }), bytes(20)).map(([t, d]): [number, RData] => [t, { kind: 'UNKNOWN', data: d }]),
  // Known mnemonics rrdns keeps opaque (RFC 3597 form only).
  fc.tuple(fc.constantFrom(RRType.HINFO, RRType.DS), bytes(12)).map(([t, d]): [number, RData] => [t, { kind: 'UNKNOWN', data: d }]),
);

const ttl = fc.oneof(fc.integer({ min: 0, max: 86400 }), fc.constant(0x7fffffff));

/** A valid zone's records: SOA and NS at the apex, then random records; CNAMEs kept only where RFC 1034 allows them. */
const zoneRecords = fc
  .record({
    soa: fc.tuple(anyName, anyName, u32, u32, u32, u32, u32, ttl),
    ns: fc.array(anyName, { minLength: 1, maxLength: 3 }),
    rest: fc.array(fc.tuple(inZone, rdata, ttl), { maxLength: 30 }),
  })
  .map(({ soa, ns, rest }) => {
    const [primary, admin, serial, refresh, retry, expiration, minimum, soaTtl] = soa;
    const records: ZoneRecord[] = [
      { name: ORIGIN, type: RRType.SOA, ttl: soaTtl, data: { kind: 'SOA', primary, admin, serial, refresh, retry, expiration, minimum } },
      ...ns.map((n): ZoneRecord => ({ name: ORIGIN, type: RRType.NS, ttl: 300, data: { kind: 'NS', ns: n } })),
    ];
    const lower = (n: string) => n.replace(/[A-Z]/g, (c) => c.toLowerCase());
    const types = new Map<string, Set<number>>();
    for (const [name, [type], ] of rest) {
      const k = lower(name);
      if (!types.has(k)) types.set(k, new Set());
      types.get(k)!.add(type);
    }
    types.get(lower(ORIGIN))?.add(RRType.SOA);
    const cnameSeen = new Set<string>();
    for (const [name, [type, data], t] of rest) {
      const k = lower(name);
      if (type === RRType.CNAME) {
        if (k === lower(ORIGIN) || types.get(k)!.size > 1 || cnameSeen.has(k)) continue;
        cnameSeen.add(k);
      }
      if (type === RRType.SOA) continue;
      records.push({ name, type, ttl: t, data });
    }
    return records;
  });

/* ------------------------------------------------------------------------ */

describe('printZone round trip', () => {
  it('a generated zone, printed and loaded again, is the same zone', () => {
    fc.assert(
      fc.property(zoneRecords, (records) => {
        const built = buildZone({ origin: ORIGIN, source: 'gen', records, ttlPolicy: POLICY });
        expect(built.issues.map(formatIssue)).toEqual([]);
        const first = built.zone!;
        const text = printZone(first);
        // Plain ASCII, one record per line: no octet of the data can act as syntax.
        expect(text).toMatch(/^[\x20-\x7e\n]*$/);
        const again = load(text);
        expect(summary(again)).toEqual(summary(first));
        // And printing is stable.
        const body = (t: string) => t.slice(t.indexOf('\n') + 1);
        expect(body(printZone(again))).toBe(body(text));
      }),
      { numRuns: 300, seed: 20260801 },
    );
  });

  it('a zone written by hand (relative names, $ORIGIN, $TTL, parentheses) survives printing', () => {
    const text = `$TTL 600
@ IN SOA ns1 john\\.doe ( 2024010101 1h 15m
        1w 1d )
  NS ns1
  NS ns2.other.test.
ns1 A 192.0.2.1
a\\.b A 192.0.2.7
$ORIGIN sub.rt.test.
www 30 CNAME @
@ MX 10 mail.rt.test.
  TXT "semi;colon" "quote\\"d" back\\\\slash "\\255\\000"
srv SRV 1 2 3 .
caa CAA 128 issue "ca;\\"x"
x TYPE65280 \\# 3 00ff2e
h HINFO \\# 4 01410142
deep.below.empty A 192.0.2.9
`;
    const first = load(text);
    const printed = printZone(first);
    expect(summary(load(printed))).toEqual(summary(first));
    // The escaped dot stays inside one label, both ways.
    expect(printed).toContain('rt.test. 600 IN SOA ns1.rt.test. john\\.doe.rt.test. 2024010101 3600 900 604800 86400');
    expect(printed).toContain('a\\.b.rt.test. 600 IN A 192.0.2.7');
    expect(printed).toContain('sub.rt.test. 600 IN TXT "semi;colon" "quote\\"d" "back\\\\slash" "\\255\\000"');
    expect(first.nodes.get('below.empty.sub.rt.test')?.emptyNonTerminal).toBe(true);
  });
});

describe("escaped dots in labels (john\\.doe)", () => {
  it.each([
    { name: 'SOA rname', text: 'john\\.doe.example.test.', labels: ['john.doe', 'example', 'test'] },
    { name: '\\046 is the same octet', text: 'john\\046doe.example.test.', labels: ['john.doe', 'example', 'test'] },
    { name: 'a backslash octet', text: 'a\\\\b.test.', labels: ['a\\b', 'test'] },
    { name: 'dot at the end of a label', text: 'a\\..test.', labels: ['a.', 'test'] },
    { name: 'label that is only a dot', text: '\\..test.', labels: ['.', 'test'] },
  ])('$name: parsed as one label, printed back the same', ({ text, labels }) => {
    const name = parseName(text, '');
    // Internal form: labels split on '.', with LABEL_DOT for the octet.
    expect(name.split('.').map((l) => l.replaceAll(LABEL_DOT, '.'))).toEqual(labels);
    expect(parseName(nameToText(name), '')).toBe(name);
    expect(nameToText(name)).toBe(text.replace('\\046', '\\.'));
  });

  it('a name with a literal U+012E char is still refused (only \\. makes one)', () => {
    expect(() => parseName('a\u012eb.test.', '')).toThrow(/outside one octet/);
    expect(() => parseName('a\\\u012eb.test.', '')).toThrow(/outside one octet/);
  });

  it('quotedString escapes exactly the octets that are syntax or not printable', () => {
    expect(quotedString(Buffer.from('a "b" \\ ;()', 'latin1'))).toBe('"a \\"b\\" \\\\ ;()"');
    expect(quotedString(Buffer.from([0, 9, 10, 31, 127, 128, 255]))).toBe('"\\000\\009\\010\\031\\127\\128\\255"');
  });
});
