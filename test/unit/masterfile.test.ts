import { describe, expect, it } from 'vitest';
import { parseMasterFile } from '../../src/zone/masterfile.ts';
import { KIND_TYPE } from '../../src/wire/rdata.ts';
import type { RData } from '../../src/zone/records.ts';

const parse = (text: string, opts: { origin?: string; defaultTtl?: number } = {}) =>
  parseMasterFile(text, { file: 'test.zone', origin: opts.origin ?? 'example.test', defaultTtl: 'defaultTtl' in opts ? opts.defaultTtl : 3600 });

/** Records as compact tuples: [owner, type, ttl, data]. */
const records = (text: string, opts?: { origin?: string; defaultTtl?: number }) => {
  const result = parse(text, opts);
  expect(result.issues).toEqual([]);
  return result.records.map((r) => [r.name, r.type, r.ttl, r.data]);
};

const txt = (...strings: (string | Buffer)[]): RData => ({ kind: 'TXT', data: strings.map((s) => (Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1'))) });
const a = (address: string): RData => ({ kind: 'A', address });

describe('parseMasterFile: records', () => {
  it.each([
    { name: 'absolute owner', zone: 'www.example.test. 300 IN A 192.0.2.1', want: [['www.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'relative owner gets the origin', zone: 'www 300 IN A 192.0.2.1', want: [['www.example.test', 1, 300, a('192.0.2.1')]] },
    { name: '@ is the origin', zone: '@ 300 IN A 192.0.2.1', want: [['example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'owner case is kept', zone: 'WwW 300 IN A 192.0.2.1', want: [['WwW.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'escaped owner (\\DDD and \\X)', zone: 'a\\032b\\(c 300 IN A 192.0.2.1', want: [['a b(c.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'wildcard owner', zone: '*.w 300 IN A 192.0.2.1', want: [['*.w.example.test', 1, 300, a('192.0.2.1')]] },
    {
      name: 'a line starting with a blank inherits the owner',
      zone: 'www 300 IN A 192.0.2.1\n 300 IN A 192.0.2.2\n\t300 IN A 192.0.2.3',
      want: [
        ['www.example.test', 1, 300, a('192.0.2.1')],
        ['www.example.test', 1, 300, a('192.0.2.2')],
        ['www.example.test', 1, 300, a('192.0.2.3')],
      ],
    },
    {
      name: 'blank and comment lines do not break owner inheritance',
      zone: 'www 300 IN A 192.0.2.1\n\n; a comment\n   ; indented comment\n 300 IN A 192.0.2.2',
      want: [
        ['www.example.test', 1, 300, a('192.0.2.1')],
        ['www.example.test', 1, 300, a('192.0.2.2')],
      ],
    },
    { name: 'TTL then class', zone: 'x 300 IN A 192.0.2.1', want: [['x.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'class then TTL', zone: 'x IN 300 A 192.0.2.1', want: [['x.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'TTL without class', zone: 'x 300 A 192.0.2.1', want: [['x.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'class without TTL', zone: 'x IN A 192.0.2.1', want: [['x.example.test', 1, 3600, a('192.0.2.1')]] },
    { name: 'neither TTL nor class', zone: 'x A 192.0.2.1', want: [['x.example.test', 1, 3600, a('192.0.2.1')]] },
    { name: 'CLASS1 is IN (RFC 3597 §5)', zone: 'x CLASS1 A 192.0.2.1', want: [['x.example.test', 1, 3600, a('192.0.2.1')]] },
    { name: 'mnemonics are case-insensitive', zone: 'x in a 192.0.2.1', want: [['x.example.test', 1, 3600, a('192.0.2.1')]] },
    { name: 'TTL in BIND units', zone: 'x 1h30m IN A 192.0.2.1', want: [['x.example.test', 1, 5400, a('192.0.2.1')]] },
    { name: 'TTL units are case-insensitive', zone: 'x 1W2D IN A 192.0.2.1', want: [['x.example.test', 1, 777600, a('192.0.2.1')]] },
    { name: 'CRLF line endings', zone: 'x 300 IN A 192.0.2.1\r\n 300 IN A 192.0.2.2\r\n', want: [['x.example.test', 1, 300, a('192.0.2.1')], ['x.example.test', 1, 300, a('192.0.2.2')]] },
    { name: 'a byte-order mark is ignored', zone: '\uFEFFx 300 IN A 192.0.2.1', want: [['x.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'origin given with a trailing dot', zone: 'x 300 IN A 192.0.2.1', origin: 'example.test.', want: [['x.example.test', 1, 300, a('192.0.2.1')]] },
    { name: 'root origin', zone: 'x 300 IN A 192.0.2.1', origin: '', want: [['x', 1, 300, a('192.0.2.1')]] },
  ])('$name', ({ zone, origin, want }) => {
    expect(records(zone, { origin })).toEqual(want);
  });
});

describe('parseMasterFile: directives and TTL defaults', () => {
  it.each([
    {
      name: '$ORIGIN (absolute) applies to owners, @ and rdata names',
      zone: '$ORIGIN other.test.\n@ 300 IN CNAME www\nwww 300 IN A 192.0.2.1',
      want: [
        ['other.test', 5, 300, { kind: 'CNAME', domain: 'www.other.test' }],
        ['www.other.test', 1, 300, a('192.0.2.1')],
      ],
    },
    {
      name: 'a relative $ORIGIN is relative to the current origin',
      zone: '$ORIGIN sub\nwww 300 IN A 192.0.2.1',
      want: [['www.sub.example.test', 1, 300, a('192.0.2.1')]],
    },
    {
      name: '$ORIGIN can change several times',
      zone: '$ORIGIN a.test.\nx 1 A 192.0.2.1\n$ORIGIN b.test.\nx 1 A 192.0.2.2',
      want: [
        ['x.a.test', 1, 1, a('192.0.2.1')],
        ['x.b.test', 1, 1, a('192.0.2.2')],
      ],
    },
    {
      name: 'directive keywords are case-insensitive',
      zone: '$ttl 60\n$origin c.test.\nx A 192.0.2.1',
      want: [['x.c.test', 1, 60, a('192.0.2.1')]],
    },
    {
      name: '$TTL applies to records without a TTL; an explicit TTL wins',
      zone: '$TTL 1d\nx A 192.0.2.1\ny 30 A 192.0.2.2\nz A 192.0.2.3',
      want: [
        ['x.example.test', 1, 86400, a('192.0.2.1')],
        ['y.example.test', 1, 30, a('192.0.2.2')],
        ['z.example.test', 1, 86400, a('192.0.2.3')],
      ],
    },
    {
      name: '$TTL with units 1h30m',
      zone: '$TTL 1h30m\nx A 192.0.2.1',
      want: [['x.example.test', 1, 5400, a('192.0.2.1')]],
    },
    {
      name: 'without $TTL a record takes the previous record TTL (RFC 1035 §5.1)',
      zone: 'x A 192.0.2.1\ny 42 A 192.0.2.2\nz A 192.0.2.3\n A 192.0.2.4',
      want: [
        ['x.example.test', 1, 3600, a('192.0.2.1')],
        ['y.example.test', 1, 42, a('192.0.2.2')],
        ['z.example.test', 1, 42, a('192.0.2.3')],
        ['z.example.test', 1, 42, a('192.0.2.4')],
      ],
    },
    {
      name: 'a later $TTL replaces the earlier one',
      zone: '$TTL 10\nx A 192.0.2.1\n$TTL 20\ny A 192.0.2.2',
      want: [
        ['x.example.test', 1, 10, a('192.0.2.1')],
        ['y.example.test', 1, 20, a('192.0.2.2')],
      ],
    },
  ])('$name', ({ zone, want }) => {
    expect(records(zone)).toEqual(want);
  });

  it('uses opts.defaultTtl only when nothing in the file gives a TTL', () => {
    expect(records('x A 192.0.2.1', { defaultTtl: 77 })).toEqual([['x.example.test', 1, 77, a('192.0.2.1')]]);
  });

  it('returns the normalized zone origin, not the last $ORIGIN', () => {
    expect(parse('$ORIGIN other.test.\nx 1 A 192.0.2.1', { origin: 'Example.Test.' }).origin).toBe('Example.Test');
  });
});

describe('parseMasterFile: lexing', () => {
  it.each([
    {
      name: 'parentheses join lines, with comments inside',
      zone: `@ 3600 IN SOA ns1 hostmaster (
        2024010101 ; serial
        1h         ; refresh
        15m        ; retry
        1w         ; expire
        1d )       ; minimum
www 300 IN A 192.0.2.1`,
      want: [
        ['example.test', 6, 3600, { kind: 'SOA', primary: 'ns1.example.test', admin: 'hostmaster.example.test', serial: 2024010101, refresh: 3600, retry: 900, expiration: 604800, minimum: 86400 }],
        ['www.example.test', 1, 300, a('192.0.2.1')],
      ],
    },
    {
      name: 'parentheses may open before the type and close at the end of a line',
      zone: 'x ( 300 IN\n A 192.0.2.1 )\ny 300 IN A 192.0.2.2',
      want: [
        ['x.example.test', 1, 300, a('192.0.2.1')],
        ['y.example.test', 1, 300, a('192.0.2.2')],
      ],
    },
    { name: 'a comment after the rdata', zone: 'x 300 IN A 192.0.2.1 ; web server', want: [['x.example.test', 1, 300, a('192.0.2.1')]] },
    { name: '; inside quotes is text, not a comment', zone: 'x 300 IN TXT "a;b" ; comment', want: [['x.example.test', 16, 300, txt('a;b')]] },
    { name: 'parentheses inside quotes are text', zone: 'x 300 IN TXT "(a)"', want: [['x.example.test', 16, 300, txt('(a)')]] },
    { name: 'multi-string TXT keeps each string', zone: 'x 300 IN TXT "v=spf1 a" "-all"', want: [['x.example.test', 16, 300, txt('v=spf1 a', '-all')]] },
    { name: 'unquoted words are strings too', zone: 'x 300 IN TXT hello "big world" again', want: [['x.example.test', 16, 300, txt('hello', 'big world', 'again')]] },
    { name: 'TXT spanning lines in parentheses', zone: 'x 300 IN TXT ( "one"\n "two" )', want: [['x.example.test', 16, 300, txt('one', 'two')]] },
    { name: 'escaped quote inside a quoted string', zone: 'x 300 IN TXT "say \\"hi\\""', want: [['x.example.test', 16, 300, txt('say "hi"')]] },
    { name: 'escaped backslash', zone: 'x 300 IN TXT "a\\\\b"', want: [['x.example.test', 16, 300, txt('a\\b')]] },
    { name: '\\DDD decimal escapes give any octet', zone: 'x 300 IN TXT "\\065\\000\\255"', want: [['x.example.test', 16, 300, txt(Buffer.from([65, 0, 255]))]] },
    { name: 'escapes in unquoted words: \\; \\( and an escaped blank', zone: 'x 300 IN TXT a\\;b c\\(d e\\ f', want: [['x.example.test', 16, 300, txt('a;b', 'c(d', 'e f')]] },
    { name: 'an empty quoted string', zone: 'x 300 IN TXT ""', want: [['x.example.test', 16, 300, txt('')]] },
    { name: 'a 255-octet string is allowed', zone: `x 300 IN TXT "${'a'.repeat(255)}"`, want: [['x.example.test', 16, 300, txt('a'.repeat(255))]] },
    { name: 'unescaped non-ASCII text is kept as its UTF-8 octets', zone: 'x 300 IN TXT "café"', want: [['x.example.test', 16, 300, txt(Buffer.from('café', 'utf8'))]] },
  ])('$name', ({ zone, want }) => {
    expect(records(zone)).toEqual(want);
  });
});

describe('parseMasterFile: typed rdata', () => {
  it.each<{ name: string; rr: string; want: RData }>([
    { name: 'A', rr: 'A 192.0.2.1', want: a('192.0.2.1') },
    { name: 'A 0.0.0.0', rr: 'A 0.0.0.0', want: a('0.0.0.0') },
    { name: 'AAAA is normalized to lower-case compressed form', rr: 'AAAA 2001:DB8:0:0:0:0:0:0001', want: { kind: 'AAAA', address: '2001:db8::1' } },
    { name: 'AAAA ::', rr: 'AAAA ::', want: { kind: 'AAAA', address: '::' } },
    { name: 'AAAA with an embedded IPv4 address', rr: 'AAAA ::ffff:192.0.2.1', want: { kind: 'AAAA', address: '::ffff:c000:201' } },
    { name: 'NS relative', rr: 'NS ns1', want: { kind: 'NS', ns: 'ns1.example.test' } },
    { name: 'NS absolute', rr: 'NS ns.other.test.', want: { kind: 'NS', ns: 'ns.other.test' } },
    { name: 'CNAME @', rr: 'CNAME @', want: { kind: 'CNAME', domain: 'example.test' } },
    { name: 'PTR', rr: 'PTR host.example.test.', want: { kind: 'PTR', domain: 'host.example.test' } },
    { name: 'MX', rr: 'MX 10 mail', want: { kind: 'MX', priority: 10, exchange: 'mail.example.test' } },
    { name: 'MX null (RFC 7505)', rr: 'MX 0 .', want: { kind: 'MX', priority: 0, exchange: '' } },
    { name: 'SRV', rr: 'SRV 10 60 5060 sip', want: { kind: 'SRV', priority: 10, weight: 60, port: 5060, target: 'sip.example.test' } },
    { name: 'SRV with the root as target', rr: 'SRV 0 0 0 .', want: { kind: 'SRV', priority: 0, weight: 0, port: 0, target: '' } },
    { name: 'CAA', rr: 'CAA 0 issue "ca.example.net; account=1"', want: { kind: 'CAA', flags: 0, tag: 'issue', value: 'ca.example.net; account=1' } },
    { name: 'CAA critical flag and unquoted value', rr: 'CAA 128 tbs Unknown', want: { kind: 'CAA', flags: 128, tag: 'tbs', value: 'Unknown' } },
    { name: 'CAA value octets stay one char each', rr: 'CAA 0 iodef "\\128x"', want: { kind: 'CAA', flags: 0, tag: 'iodef', value: '\u0080x' } },
    {
      name: 'SOA on one line',
      rr: 'SOA ns1 hostmaster.example.test. 4294967295 3600 900 1209600 4294967295',
      want: { kind: 'SOA', primary: 'ns1.example.test', admin: 'hostmaster.example.test', serial: 4294967295, refresh: 3600, retry: 900, expiration: 1209600, minimum: 4294967295 },
    },
    { name: 'TYPE1 in typed form is A (RFC 3597 §5)', rr: 'TYPE1 192.0.2.1', want: a('192.0.2.1') },
  ])('$name', ({ rr, want }) => {
    expect(records(`x 300 IN ${rr}`)).toEqual([['x.example.test', KIND_TYPE[want.kind as keyof typeof KIND_TYPE], 300, want]]);
  });
});

describe('parseMasterFile: RFC 3597 generic rdata', () => {
  it.each<{ name: string; rr: string; type: number; want: RData }>([
    { name: 'unknown type keeps the octets', rr: 'TYPE65 \\# 3 010203', type: 65, want: { kind: 'UNKNOWN', data: Buffer.from([1, 2, 3]) } },
    { name: 'hex may be split by blanks', rr: 'TYPE65 \\# 4 01 02 0304', type: 65, want: { kind: 'UNKNOWN', data: Buffer.from([1, 2, 3, 4]) } },
    { name: 'zero-length rdata', rr: 'TYPE65534 \\# 0', type: 65534, want: { kind: 'UNKNOWN', data: Buffer.alloc(0) } },
    { name: 'hex in parentheses over lines', rr: 'TYPE65 \\# 4 (\n 0102\n 0304 )', type: 65, want: { kind: 'UNKNOWN', data: Buffer.from([1, 2, 3, 4]) } },
    { name: 'a modelled-elsewhere type (HINFO) stays opaque', rr: 'HINFO \\# 4 01410142', type: 13, want: { kind: 'UNKNOWN', data: Buffer.from([1, 0x41, 1, 0x42]) } },
    { name: 'A in \\# form is decoded', rr: 'A \\# 4 C0000201', type: 1, want: a('192.0.2.1') },
    { name: 'TYPE1 in \\# form is decoded', rr: 'TYPE1 \\# 4 c0000201', type: 1, want: a('192.0.2.1') },
    { name: 'CNAME in \\# form gives a readable target', rr: 'CNAME \\# 13 03777777076578616d706c6500', type: 5, want: { kind: 'CNAME', domain: 'www.example' } },
    { name: 'MX in \\# form', rr: 'MX \\# 8 000a046d61696c00', type: 15, want: { kind: 'MX', priority: 10, exchange: 'mail' } },
    { name: 'TXT in \\# form', rr: 'TXT \\# 6 026162 0163 00', type: 16, want: txt('ab', 'c', '') },
    { name: 'AAAA in \\# form', rr: 'AAAA \\# 16 20010db8000000000000000000000001', type: 28, want: { kind: 'AAAA', address: '2001:db8::1' } },
    { name: 'CAA in \\# form', rr: 'CAA \\# 8 0005697373756561', type: 257, want: { kind: 'CAA', flags: 0, tag: 'issue', value: 'a' } },
  ])('$name', ({ rr, type, want }) => {
    expect(records(`x 300 IN ${rr}`)).toEqual([['x.example.test', type, 300, want]]);
  });
});

interface Problem {
  line: number;
  message: string;
}

describe('parseMasterFile: errors', () => {
  it.each<{ name: string; zone: string; want: Problem[]; withoutDefaultTtl?: boolean }>([
    { name: 'IPv4 octet over 255', zone: 'x A 300.1.1.1', want: [{ line: 1, message: '"300.1.1.1" is not an IPv4 address' }] },
    { name: 'IPv4 with three parts', zone: 'x A 1.2.3', want: [{ line: 1, message: '"1.2.3" is not an IPv4 address' }] },
    { name: 'IPv4 with a leading zero (octal ambiguity)', zone: 'x A 01.2.3.4', want: [{ line: 1, message: '"01.2.3.4" is not an IPv4 address' }] },
    { name: 'IPv4 quoted', zone: 'x A "1.2.3.4"', want: [{ line: 1, message: '"1.2.3.4" is not an IPv4 address' }] },
    { name: 'IPv6 garbage', zone: 'x AAAA 2001:db8::g', want: [{ line: 1, message: '"2001:db8::g" is not an IPv6 address' }] },
    { name: 'IPv6 with a zone index', zone: 'x AAAA fe80::1%eth0', want: [{ line: 1, message: '"fe80::1%eth0" is not an IPv6 address' }] },
    { name: 'IPv4 in AAAA', zone: 'x AAAA 192.0.2.1', want: [{ line: 1, message: '"192.0.2.1" is not an IPv6 address' }] },
    { name: 'too many A fields', zone: 'x A 1.2.3.4 5.6.7.8', want: [{ line: 1, message: 'A takes 1 field (address), got 2' }] },
    { name: 'missing MX exchange', zone: 'x MX 10', want: [{ line: 1, message: 'MX takes 2 fields (preference exchange), got 1' }] },
    { name: 'MX preference over 16 bits', zone: 'x MX 65536 mail', want: [{ line: 1, message: 'MX preference "65536" is not an integer from 0 to 65535' }] },
    { name: 'SRV port not a number', zone: 'x SRV 1 2 http host', want: [{ line: 1, message: 'SRV port "http" is not an integer from 0 to 65535' }] },
    { name: 'CAA flags over 255', zone: 'x CAA 256 issue "ca"', want: [{ line: 1, message: 'CAA flags "256" is not an integer from 0 to 255' }] },
    { name: 'CAA tag with a hyphen', zone: 'x CAA 0 is-sue "ca"', want: [{ line: 1, message: 'CAA tag "is-sue" must be 1 to 15 ASCII letters and digits (RFC 8659 §4.1)' }] },
    { name: 'CAA tag over 15 chars', zone: 'x CAA 0 abcdefghijklmnop "ca"', want: [{ line: 1, message: 'CAA tag "abcdefghijklmnop" must be 1 to 15 ASCII letters and digits (RFC 8659 §4.1)' }] },
    { name: 'SOA with five fields', zone: '@ SOA ns1 host 1 2 3', want: [{ line: 1, message: 'SOA takes 7 fields (mname rname serial refresh retry expire minimum), got 5' }] },
    { name: 'SOA time with a bad unit', zone: '@ SOA ns1 host 1 2x 3 4 5', want: [{ line: 1, message: 'SOA refresh "2x" is not a time (seconds, or units like 1h30m, 1d, 1w)' }] },
    { name: 'SOA serial over 32 bits', zone: '@ SOA ns1 host 4294967296 2 3 4 5', want: [{ line: 1, message: 'SOA serial "4294967296" is not an integer from 0 to 4294967295' }] },
    { name: 'SOA serial with units', zone: '@ SOA ns1 host 1d 2 3 4 5', want: [{ line: 1, message: 'SOA serial "1d" is not an integer from 0 to 4294967295' }] },
    {
      name: 'an error in a continued line is reported on that line',
      zone: '@ SOA ns1 host (\n 1\n 2\n 3x\n 4\n 5 )',
      want: [{ line: 4, message: 'SOA retry "3x" is not a time (seconds, or units like 1h30m, 1d, 1w)' }],
    },
    {
      name: 'TXT string over 255 octets',
      zone: `x TXT "${'a'.repeat(256)}"`,
      want: [{ line: 1, message: 'TXT string of 256 octets is over the 255-octet limit; split it into several quoted strings' }],
    },
    { name: 'TXT with no strings', zone: 'x TXT', want: [{ line: 1, message: 'TXT needs at least one string' }] },
    { name: 'TXT \\DDD over 255', zone: 'x TXT "\\256"', want: [{ line: 1, message: '"\\256": \\256 is not an octet (000-255)' }] },
    { name: 'TXT \\DDD with two digits', zone: 'x TXT "\\12"', want: [{ line: 1, message: '"\\12": a \\DDD escape needs three digits' }] },
    { name: 'name with an empty label', zone: 'a..b A 192.0.2.1', want: [{ line: 1, message: 'owner: name "a..b" has an empty label' }] },
    { name: 'name label over 63 octets', zone: `x CNAME ${'a'.repeat(64)}`, want: [{ line: 1, message: `CNAME target: name "${'a'.repeat(64)}" has a label longer than 63 octets` }] },
    { name: 'quoted name', zone: 'x CNAME "www"', want: [{ line: 1, message: 'CNAME target "www" must not be quoted' }] },
    { name: 'unknown type', zone: 'x FOO bar', want: [{ line: 1, message: '"FOO" is not a record type' }] },
    { name: 'type without a text form', zone: 'x HINFO "PC" "Linux"', want: [{ line: 1, message: 'type HINFO can only be written in RFC 3597 form: \\# <length> <hex>' }] },
    { name: 'unknown TYPEnnn in text form', zone: 'x TYPE65 1 . alpn=h2', want: [{ line: 1, message: 'type TYPE65 can only be written in RFC 3597 form: \\# <length> <hex>' }] },
    { name: 'query type ANY', zone: 'x ANY \\# 0', want: [{ line: 1, message: 'type ANY cannot appear in a zone' }] },
    { name: 'meta type AXFR', zone: 'x IN AXFR \\# 0', want: [{ line: 1, message: 'type AXFR cannot appear in a zone' }] },
    { name: 'pseudo type OPT', zone: 'x OPT \\# 0', want: [{ line: 1, message: 'type OPT cannot appear in a zone' }] },
    { name: 'class CH', zone: 'x CH TXT "a"', want: [{ line: 1, message: 'class CH is not supported: rrdns serves class IN only' }] },
    { name: 'class CLASS3', zone: 'x 30 CLASS3 TXT "a"', want: [{ line: 1, message: 'class CLASS3 is not supported: rrdns serves class IN only' }] },
    { name: 'missing type', zone: 'x 300 IN', want: [{ line: 1, message: 'missing record type' }] },
    { name: 'TTL with a bad unit', zone: 'x 1x A 192.0.2.1', want: [{ line: 1, message: 'TTL "1x" is not a time (seconds, or units like 1h30m, 1d, 1w)' }] },
    { name: 'TTL over 2^31-1', zone: 'x 2147483648 A 192.0.2.1', want: [{ line: 1, message: 'TTL "2147483648" is 2147483648 seconds, over the limit of 2147483647 (RFC 2181 §8)' }] },
    { name: 'no TTL anywhere', zone: 'x A 192.0.2.1', withoutDefaultTtl: true, want: [{ line: 1, message: 'no TTL: give one on the record or set $TTL' }] },
    { name: 'first record without an owner', zone: ' 300 A 192.0.2.1', want: [{ line: 1, message: 'no owner name: the line starts with a blank but no record comes before it' }] },
    { name: '$INCLUDE is refused', zone: '$INCLUDE other.zone', want: [{ line: 1, message: '$INCLUDE is not supported: a zone file must be self-contained, so paste the included records here' }] },
    { name: '$INCLUDE with an origin is refused', zone: '$INCLUDE other.zone sub', want: [{ line: 1, message: '$INCLUDE is not supported: a zone file must be self-contained, so paste the included records here' }] },
    { name: 'unknown directive', zone: '$GENERATE 1-10 host$ A 192.0.2.$', want: [{ line: 1, message: 'unknown directive $GENERATE (rrdns knows $ORIGIN and $TTL)' }] },
    { name: '$TTL without a value', zone: '$TTL', want: [{ line: 1, message: '$TTL takes one argument (a TTL), got 0' }] },
    { name: '$TTL with a bad value', zone: '$TTL forever', want: [{ line: 1, message: '$TTL "forever" is not a time (seconds, or units like 1h30m, 1d, 1w)' }] },
    { name: '$ORIGIN with two arguments', zone: '$ORIGIN a. b.', want: [{ line: 1, message: '$ORIGIN takes one argument (a domain name), got 2' }] },
    { name: '$ORIGIN with a bad name', zone: '$ORIGIN a..b.', want: [{ line: 1, message: '$ORIGIN: name "a..b." has an empty label' }] },
    { name: '\\# length does not match the hex', zone: 'x TYPE65 \\# 3 0102', want: [{ line: 1, message: '\\# says 3 octets but 2 follow' }] },
    { name: '\\# odd number of hex digits', zone: 'x TYPE65 \\# 2 010', want: [{ line: 1, message: '\\# says 2 octets but 3 hex digits follow' }] },
    { name: '\\# not hex', zone: 'x TYPE65 \\# 2 zz00', want: [{ line: 1, message: '\\# rdata "zz00" is not hexadecimal' }] },
    { name: '\\# without a length', zone: 'x TYPE65 \\#', want: [{ line: 1, message: '\\# needs the rdata length and then its hex octets' }] },
    { name: '\\# A with 3 octets', zone: 'x A \\# 3 010203', want: [{ line: 1, message: 'malformed \\# rdata: A rdata is truncated: 3 octets, needs at least 4' }] },
    { name: '\\# A with 5 octets', zone: 'x A \\# 5 0102030405', want: [{ line: 1, message: 'malformed \\# rdata: A rdata has 1 octet(s) left over' }] },
    { name: '\\# CNAME with a compression pointer', zone: 'x CNAME \\# 2 c00c', want: [{ line: 1, message: 'malformed \\# rdata: CNAME rdata has a compressed name, which standalone rdata cannot have' }] },
    { name: 'unterminated quote', zone: 'x TXT "abc', want: [{ line: 1, message: 'unterminated quoted string (a string cannot span lines)' }] },
    { name: 'unbalanced )', zone: 'x A 192.0.2.1 )', want: [{ line: 1, message: 'unbalanced ")"' }] },
    { name: 'unclosed ( is reported where it opens', zone: 'y A 192.0.2.1\nx SOA ns1 host ( 1 2\n3 4 5\n', want: [{ line: 2, message: '"(" is never closed' }] },
  ])('$name', ({ zone, want, withoutDefaultTtl }) => {
    const result = parse(zone, withoutDefaultTtl ? { defaultTtl: undefined } : {});
    expect(result.issues).toEqual(want.map((w) => ({ file: 'test.zone', ...w })));
    expect(result.records.filter((r) => r.name === 'x.example.test')).toEqual([]);
  });

  it('reports every problem of the file at once and keeps the good lines', () => {
    const zone = `$ORIGIN example.test.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 900 1209600 60
www     IN A   192.0.2.1
bad1    IN A   300.1.1.1
        IN A   192.0.2.2
bad2    IN MX  99999 mail
$INCLUDE more.zone
bad3    CH     TXT "x"
txt     IN TXT "${'b'.repeat(300)}"
ok      IN AAAA 2001:db8::1
`;
    const result = parse(zone);
    expect(result.issues).toEqual([
      { file: 'test.zone', line: 5, message: '"300.1.1.1" is not an IPv4 address' },
      { file: 'test.zone', line: 7, message: 'MX preference "99999" is not an integer from 0 to 65535' },
      { file: 'test.zone', line: 8, message: '$INCLUDE is not supported: a zone file must be self-contained, so paste the included records here' },
      { file: 'test.zone', line: 9, message: 'class CH is not supported: rrdns serves class IN only' },
      { file: 'test.zone', line: 10, message: 'TXT string of 300 octets is over the 255-octet limit; split it into several quoted strings' },
    ]);
    expect(result.records.map((r) => [r.name, r.type, r.line])).toEqual([
      ['example.test', 6, 3],
      ['www.example.test', 1, 4],
      // The owner of a skipped line is still inherited by the next one.
      ['bad1.example.test', 1, 6],
      ['ok.example.test', 28, 11],
    ]);
  });

  it('lists lexical and record problems in file order', () => {
    const result = parse('a A 1.2.3\nb TXT "open\nc A 192.0.2.1 )\nd MX 1');
    expect(result.issues.map((i) => [i.line, i.message])).toEqual([
      [1, '"1.2.3" is not an IPv4 address'],
      [2, 'unterminated quoted string (a string cannot span lines)'],
      [3, 'unbalanced ")"'],
      [4, 'MX takes 2 fields (preference exchange), got 1'],
    ]);
  });

  it('reports several problems of one line together', () => {
    const result = parse('a..b 1x CH A 1.2.3');
    expect(result.issues.map((i) => i.message)).toEqual([
      'owner: name "a..b" has an empty label',
      'class CH is not supported: rrdns serves class IN only',
      'TTL "1x" is not a time (seconds, or units like 1h30m, 1d, 1w)',
      '"1.2.3" is not an IPv4 address',
    ]);
  });

  it('reports a bad owner once, not again for each line that inherits it', () => {
    const result = parse('a..b A 192.0.2.1\n A 192.0.2.2\n A 192.0.2.3\nc A 192.0.2.4');
    expect(result.issues).toEqual([{ file: 'test.zone', line: 1, message: 'owner: name "a..b" has an empty label' }]);
    expect(result.records.map((r) => r.name)).toEqual(['c.example.test']);
  });

  it('keeps going after an unbalanced ")"', () => {
    const result = parse('x A 192.0.2.1 )\ny A 192.0.2.2');
    expect(result.issues).toHaveLength(1);
    expect(result.records.map((r) => r.name)).toEqual(['y.example.test']);
  });

  it('reports a bad origin option', () => {
    const result = parseMasterFile('x A 192.0.2.1', { file: 'z', origin: 'a..b' });
    expect(result.issues).toEqual([{ file: 'z', line: undefined, message: 'origin: name "a..b." has an empty label' }]);
    expect(result.records).toEqual([]);
  });
});
