import { Packet } from 'dns2';
import { describe, expect, it } from 'vitest';
import { decodeRdata, encodeRdata, normalizeIPv6, parseIPv4, RdataError } from '../../src/wire/rdata.ts';
import { parseMasterFile } from '../../src/zone/masterfile.ts';
import type { RData } from '../../src/zone/records.ts';

/* Independent, obviously-correct builders for the expected wire bytes. */
const name = (n: string) => Buffer.concat([...(n === '' ? [] : n.split('.')).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const cs = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from([b.length]), b]);
};
const hex = (...parts: (Buffer | string)[]) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'hex')))).toString('hex');

/** One record line of zone-file text → [type, RData], failing the test on any issue. */
function fromText(rr: string): [number, RData] {
  const parsed = parseMasterFile(`x 300 IN ${rr}`, { file: 'rdata.zone', origin: 'example.test' });
  expect(parsed.issues).toEqual([]);
  const rec = parsed.records[0]!;
  return [rec.type, rec.data];
}

const ROUND_TRIP: { name: string; rr: string; wire: string }[] = [
  { name: 'A', rr: 'A 192.0.2.1', wire: 'c0000201' },
  { name: 'A all ones', rr: 'A 255.255.255.255', wire: 'ffffffff' },
  { name: 'AAAA', rr: 'AAAA 2001:db8::1', wire: '20010db8000000000000000000000001' },
  { name: 'AAAA unspecified', rr: 'AAAA ::', wire: '00'.repeat(16) },
  { name: 'AAAA full form', rr: 'AAAA 1:2:3:4:5:6:7:8', wire: '00010002000300040005000600070008' },
  { name: 'AAAA IPv4-mapped', rr: 'AAAA ::ffff:192.0.2.1', wire: '00000000000000000000ffffc0000201' },
  { name: 'NS', rr: 'NS ns1.example.test.', wire: hex(name('ns1.example.test')) },
  { name: 'NS keeps the case', rr: 'NS NS1.Example.TEST.', wire: hex(name('NS1.Example.TEST')) },
  { name: 'CNAME', rr: 'CNAME www', wire: hex(name('www.example.test')) },
  { name: 'CNAME to the root', rr: 'CNAME .', wire: '00' },
  { name: 'CNAME with a non-ASCII octet', rr: 'CNAME caf\\233.test.', wire: hex(name('caf\u00e9.test')) },
  { name: 'PTR', rr: 'PTR host.example.test.', wire: hex(name('host.example.test')) },
  { name: 'MX', rr: 'MX 10 mail', wire: hex(u16(10), name('mail.example.test')) },
  { name: 'MX null', rr: 'MX 0 .', wire: '000000' },
  { name: 'MX max preference', rr: 'MX 65535 mx.test.', wire: hex(u16(65535), name('mx.test')) },
  { name: 'SRV', rr: 'SRV 10 60 5060 sip', wire: hex(u16(10), u16(60), u16(5060), name('sip.example.test')) },
  { name: 'SRV root target', rr: 'SRV 0 0 0 .', wire: '00000000000000' },
  {
    name: 'SOA',
    rr: 'SOA ns1 hostmaster 2024010101 1h 15m 1w 1d',
    wire: hex(name('ns1.example.test'), name('hostmaster.example.test'), u32(2024010101), u32(3600), u32(900), u32(604800), u32(86400)),
  },
  {
    name: 'SOA with 32-bit extremes',
    rr: 'SOA . . 4294967295 4294967295 0 4294967295 4294967295',
    wire: hex('0000', u32(0xffffffff), u32(0xffffffff), u32(0), u32(0xffffffff), u32(0xffffffff)),
  },
  { name: 'TXT one string', rr: 'TXT "hello world"', wire: hex(cs('hello world')) },
  { name: 'TXT several strings', rr: 'TXT "v=spf1" "-all" word', wire: hex(cs('v=spf1'), cs('-all'), cs('word')) },
  { name: 'TXT empty string', rr: 'TXT ""', wire: '00' },
  { name: 'TXT arbitrary octets', rr: 'TXT "\\000\\128\\255"', wire: hex(cs(Buffer.from([0, 128, 255]))) },
  { name: 'TXT UTF-8 text', rr: 'TXT "café"', wire: hex(cs(Buffer.from('café', 'utf8'))) },
  { name: 'TXT 255 octets', rr: `TXT "${'z'.repeat(255)}"`, wire: hex(cs('z'.repeat(255))) },
  { name: 'CAA issue', rr: 'CAA 0 issue "ca.example.net"', wire: hex('0005', Buffer.from('issue'), Buffer.from('ca.example.net')) },
  { name: 'CAA critical iodef', rr: 'CAA 128 iodef "mailto:a@b.test"', wire: hex('8005', Buffer.from('iodef'), Buffer.from('mailto:a@b.test')) },
  { name: 'CAA empty value', rr: 'CAA 0 issue ";"', wire: hex('0005', Buffer.from('issue'), Buffer.from(';')) },
  { name: 'CAA value with a high octet', rr: 'CAA 0 tbs "\\233"', wire: hex('0003', Buffer.from('tbs'), 'e9') },
  { name: 'unknown type', rr: 'TYPE65 \\# 3 010203', wire: '010203' },
  { name: 'unknown type, empty rdata', rr: 'TYPE65534 \\# 0', wire: '' },
  { name: 'HINFO stays opaque', rr: 'HINFO \\# 4 01410142', wire: '01410142' },
  // RFC 1035 §5.1 `\.`: one 8-octet label "john.doe", not two labels.
  {
    name: 'SOA rname with an escaped dot',
    rr: 'SOA ns1 john\\.doe 1 2 3 4 5',
    wire: hex(name('ns1.example.test'), '086a6f686e2e646f65', name('example.test'), u32(1), u32(2), u32(3), u32(4), u32(5)),
  },
  { name: 'CNAME with \\046 (a dot) and \\\\ in labels', rr: 'CNAME a\\046b.c\\\\d.test.', wire: '03612e6203635c640474657374' + '00' },
];

describe('encodeRdata / decodeRdata round trip', () => {
  it.each(ROUND_TRIP)('$name', ({ rr, wire }) => {
    const [type, data] = fromText(rr);
    const encoded = encodeRdata(type, data);
    expect(encoded.toString('hex')).toBe(wire);
    expect(decodeRdata(type, encoded)).toEqual(data);
  });
});

/** What dns2's decoder should show for our rdata (it reads TXT and CAA strings as UTF-8). */
function dns2View(data: RData): Record<string, unknown> {
  switch (data.kind) {
    case 'TXT':
      return { data: data.data.map((b) => b.toString('utf8')) };
    case 'CAA':
      return { flags: data.flags, tag: data.tag, value: Buffer.from(data.value, 'latin1').toString('utf8') };
    case 'UNKNOWN':
      return { data: data.data };
    default: {
      const { kind: _kind, ...fields } = data;
      // dns2 joins labels with '.', so a '.' octet inside a label (LABEL_DOT) reads as a separator there.
      return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === 'string' ? v.replaceAll('\u012e', '.') : v]));
    }
  }
}

/** A full response message, by hand: header, question x.example.test, one answer pointing at it. */
function message(type: number, rdata: Buffer): Buffer {
  const header = Buffer.concat([u16(0x1234), u16(0x8400), u16(1), u16(1), u16(0), u16(0)]);
  const question = Buffer.concat([name('x.example.test'), u16(type), u16(1)]);
  const answer = Buffer.concat([u16(0xc00c), u16(type), u16(1), u32(300), u16(rdata.length), rdata]);
  return Buffer.concat([header, question, answer]);
}

describe('encoded rdata decodes with dns2 Packet.parse', () => {
  it.each(ROUND_TRIP)('$name', ({ rr }) => {
    const [type, data] = fromText(rr);
    const packet = Packet.parse(message(type, encodeRdata(type, data)));
    expect(packet.errors).toEqual([]);
    expect(packet.answers).toHaveLength(1);
    const answer = packet.answers[0]!;
    expect(answer).toMatchObject({ name: 'x.example.test', type, class: 1, ttl: 300, ...dns2View(data) });
  });
});

describe('encodeRdata works around dns2 encoder bugs', () => {
  it.each<{ name: string; type: number; data: RData; wire: string }>([
    // dns2's fromIPv6 reads the dotted quad as one hex group.
    { name: 'AAAA with an embedded IPv4 address', type: 28, data: { kind: 'AAAA', address: '::ffff:1.2.3.4' }, wire: '00000000000000000000ffff01020304' },
    // dns2 clamps SOA MINIMUM to 2^31-1.
    {
      name: 'SOA minimum above 2^31-1 is sent as written',
      type: 6,
      data: { kind: 'SOA', primary: '', admin: '', serial: 1, refresh: 2, retry: 3, expiration: 4, minimum: 0xffffffff },
      wire: '0000' + '00000001000000020000000300000004ffffffff',
    },
    // dns2 writes the CAA value as UTF-8: é would become two octets.
    { name: 'CAA value octets are not UTF-8 encoded', type: 257, data: { kind: 'CAA', flags: 0, tag: 'tbs', value: '\u00e9' }, wire: '0003746273e9' },
    // dns2 would UTF-8 encode a string; Buffers keep arbitrary octets.
    { name: 'TXT keeps non-UTF-8 octets', type: 16, data: { kind: 'TXT', data: [Buffer.from([0xff, 0xfe])] }, wire: '02fffe' },
    { name: 'UNKNOWN is raw bytes', type: 99, data: { kind: 'UNKNOWN', data: Buffer.from('abc') }, wire: '616263' },
    { name: 'well-formed UNKNOWN for a modelled type is sent verbatim', type: 1, data: { kind: 'UNKNOWN', data: Buffer.from([1, 2, 3, 4]) }, wire: '01020304' },
  ])('$name', ({ type, data, wire }) => {
    expect(encodeRdata(type, data).toString('hex')).toBe(wire);
  });

  it.each<{ name: string; type: number; data: RData; message: string }>([
    { name: 'A with three parts', type: 1, data: { kind: 'A', address: '1.2.3' }, message: '"1.2.3" is not an IPv4 address' },
    { name: 'A with a leading zero', type: 1, data: { kind: 'A', address: '01.2.3.4' }, message: '"01.2.3.4" is not an IPv4 address' },
    { name: 'AAAA with a zone index', type: 28, data: { kind: 'AAAA', address: 'fe80::1%eth0' }, message: '"fe80::1%eth0" is not an IPv6 address' },
    { name: 'kind and type disagree', type: 28, data: { kind: 'A', address: '1.2.3.4' }, message: 'A rdata cannot be sent as type AAAA' },
    // dns2 keeps the low bits: 70000 would go out as 4464.
    { name: 'MX preference over 16 bits', type: 15, data: { kind: 'MX', priority: 70000, exchange: 'a' }, message: 'MX preference 70000 is not an integer from 0 to 65535' },
    { name: 'SRV port negative', type: 33, data: { kind: 'SRV', priority: 0, weight: 0, port: -1, target: '' }, message: 'SRV port -1 is not an integer from 0 to 65535' },
    { name: 'SRV weight fractional', type: 33, data: { kind: 'SRV', priority: 0, weight: 1.5, port: 1, target: '' }, message: 'SRV weight 1.5 is not an integer from 0 to 65535' },
    {
      name: 'SOA serial over 32 bits',
      type: 6,
      data: { kind: 'SOA', primary: '', admin: '', serial: 2 ** 32, refresh: 0, retry: 0, expiration: 0, minimum: 0 },
      message: 'SOA serial 4294967296 is not an integer from 0 to 4294967295',
    },
    // dns2's Name.encode silently drops empty labels and truncates chars above 0xFF.
    { name: 'name with an empty label', type: 2, data: { kind: 'NS', ns: 'a..b' }, message: 'NS target "a..b" has an empty label' },
    { name: 'name with a trailing dot', type: 5, data: { kind: 'CNAME', domain: 'a.b.' }, message: 'CNAME target "a.b." has an empty label' },
    { name: 'name with a char above 0xFF', type: 12, data: { kind: 'PTR', domain: 'caf\u0100' }, message: 'PTR target "caf\u0100" has a character that is not an octet' },
    { name: 'label over 63 octets', type: 15, data: { kind: 'MX', priority: 1, exchange: 'a'.repeat(64) }, message: `MX exchange "${'a'.repeat(64)}" has a label longer than 63 octets` },
    { name: 'name over 255 octets', type: 2, data: { kind: 'NS', ns: Array(5).fill('a'.repeat(63)).join('.') }, message: 'is longer than 255 octets' },
    { name: 'TXT without strings', type: 16, data: { kind: 'TXT', data: [] }, message: 'TXT rdata needs at least one string' },
    // dns2 would write 300 as the length octet 44.
    { name: 'TXT string over 255 octets', type: 16, data: { kind: 'TXT', data: [Buffer.alloc(300)] }, message: 'TXT string of 300 octets is over the 255-octet limit' },
    // dns2 back-fills RDLENGTH with 16 bits and would wrap.
    { name: 'TXT rdata over 65535 octets', type: 16, data: { kind: 'TXT', data: Array(300).fill(Buffer.alloc(255)) }, message: 'TXT rdata is 76800 octets, over the 65535-octet limit' },
    { name: 'CAA flags over 255', type: 257, data: { kind: 'CAA', flags: 256, tag: 'issue', value: '' }, message: 'CAA flags 256 is not an integer from 0 to 255' },
    { name: 'CAA empty tag', type: 257, data: { kind: 'CAA', flags: 0, tag: '', value: 'x' }, message: 'CAA tag "" must be 1 to 15 ASCII letters and digits' },
    { name: 'CAA non-ASCII tag', type: 257, data: { kind: 'CAA', flags: 0, tag: 'iss\u00fce', value: 'x' }, message: 'CAA tag "iss\u00fce" must be 1 to 15 ASCII letters and digits' },
    { name: 'CAA value with a char above 0xFF', type: 257, data: { kind: 'CAA', flags: 0, tag: 'issue', value: '\u20ac' }, message: 'CAA value has a character that is not an octet' },
    { name: 'UNKNOWN over 65535 octets', type: 99, data: { kind: 'UNKNOWN', data: Buffer.alloc(65536) }, message: 'TYPE99 rdata is 65536 octets, over the 65535-octet limit' },
    { name: 'malformed UNKNOWN for a modelled type', type: 1, data: { kind: 'UNKNOWN', data: Buffer.from([1, 2, 3]) }, message: 'A rdata is truncated: 3 octets, needs at least 4' },
    { name: 'type over 16 bits', type: 65536, data: { kind: 'UNKNOWN', data: Buffer.alloc(0) }, message: 'type 65536 is not an integer from 0 to 65535' },
  ])('refuses $name', ({ type, data, message }) => {
    expect(() => encodeRdata(type, data)).toThrow(RdataError);
    expect(() => encodeRdata(type, data)).toThrow(message);
  });

  it('never compresses names in rdata', () => {
    const data: RData = { kind: 'SOA', primary: 'ns.example.test', admin: 'hostmaster.example.test', serial: 1, refresh: 1, retry: 1, expiration: 1, minimum: 1 };
    expect(encodeRdata(6, data).toString('hex')).toBe(hex(name('ns.example.test'), name('hostmaster.example.test'), u32(1), u32(1), u32(1), u32(1), u32(1)));
  });

  it('copies UNKNOWN octets instead of sharing them', () => {
    const raw = Buffer.from([1, 2, 3]);
    const wire = encodeRdata(99, { kind: 'UNKNOWN', data: raw });
    raw[0] = 9;
    expect(wire[0]).toBe(1);
  });
});

describe('decodeRdata', () => {
  it.each<{ name: string; type: number; wire: string; want: RData }>([
    { name: 'A', type: 1, wire: '7f000001', want: { kind: 'A', address: '127.0.0.1' } },
    { name: 'AAAA is given in RFC 5952 form', type: 28, wire: '20010db8000000010000000000000000', want: { kind: 'AAAA', address: '2001:db8:0:1::' } },
    { name: 'AAAA: the first of two equal zero runs is compressed', type: 28, wire: '00010000000000020000000000030004', want: { kind: 'AAAA', address: '1::2:0:0:3:4' } },
    { name: 'TXT with several strings', type: 16, wire: '0161000162', want: { kind: 'TXT', data: [Buffer.from('a'), Buffer.alloc(0), Buffer.from('b')] } },
    { name: 'a type rrdns does not model', type: 48, wire: '0101030d', want: { kind: 'UNKNOWN', data: Buffer.from([1, 1, 3, 13]) } },
    { name: 'name octets are latin1 chars', type: 5, wire: '02c3a900', want: { kind: 'CNAME', domain: '\u00c3\u00a9' } },
    // A '.' octet inside a label is LABEL_DOT (U+012E) internally; '\\' is itself.
    { name: "a '.' octet inside a label", type: 5, wire: '03612e620474657374' + '00', want: { kind: 'CNAME', domain: 'a\u012eb.test' } },
    { name: "a '\\' octet inside a label", type: 5, wire: '03615c6200', want: { kind: 'CNAME', domain: 'a\\b' } },
  ])('$name', ({ type, wire, want }) => {
    expect(decodeRdata(type, Buffer.from(wire, 'hex'))).toEqual(want);
  });

  it.each<{ name: string; type: number; wire: string; message: string }>([
    { name: 'A too short', type: 1, wire: '010203', message: 'A rdata is truncated: 3 octets, needs at least 4' },
    { name: 'A too long', type: 1, wire: '0102030405', message: 'A rdata has 1 octet(s) left over' },
    { name: 'AAAA too short', type: 28, wire: '00'.repeat(15), message: 'AAAA rdata is truncated: 15 octets, needs at least 16' },
    { name: 'empty NS', type: 2, wire: '', message: 'NS rdata is truncated: 0 octets, needs at least 1' },
    { name: 'name without its root label', type: 2, wire: '0161', message: 'NS rdata is truncated: 2 octets, needs at least 3' },
    { name: 'label running past the end', type: 5, wire: '0561', message: 'CNAME rdata is truncated: 2 octets, needs at least 6' },
    { name: 'compression pointer', type: 5, wire: 'c00c', message: 'CNAME rdata has a compressed name, which standalone rdata cannot have' },
    { name: 'reserved label type', type: 5, wire: '4100', message: 'CNAME rdata has a label with reserved type bits (0x41)' },
    { name: 'name over 255 octets', type: 2, wire: ('3f' + '61'.repeat(63)).repeat(4) + '00', message: 'NS rdata has a name longer than 255 octets' },
    { name: 'MX with trailing octets', type: 15, wire: '000a0000', message: 'MX rdata has 1 octet(s) left over' },
    { name: 'SOA without its counters', type: 6, wire: '0000' + '00000001', message: 'SOA rdata is truncated: 6 octets, needs at least 10' },
    { name: 'empty TXT', type: 16, wire: '', message: 'TXT rdata is empty; TXT needs at least one string' },
    { name: 'TXT string running past the end', type: 16, wire: '0361', message: 'TXT rdata is truncated: 2 octets, needs at least 4' },
    { name: 'CAA without a tag length', type: 257, wire: '00', message: 'CAA rdata is truncated: 1 octets, needs at least 2' },
    { name: 'CAA with an empty tag', type: 257, wire: '000061', message: 'CAA rdata has tag "", which is not 1 to 15 ASCII letters and digits (RFC 8659 §4.1)' },
    { name: 'CAA tag running past the end', type: 257, wire: '000569', message: 'CAA rdata is truncated: 3 octets, needs at least 7' },
    { name: 'rdata over 65535 octets', type: 99, wire: '00'.repeat(65536), message: 'TYPE99 rdata is 65536 octets, over the 65535-octet limit' },
  ])('refuses $name', ({ type, wire, message }) => {
    const rdata = Buffer.from(wire, 'hex');
    expect(() => decodeRdata(type, rdata)).toThrow(RdataError);
    expect(() => decodeRdata(type, rdata)).toThrow(message);
  });

  it('copies its input', () => {
    const raw = Buffer.from('0161', 'hex');
    const data = decodeRdata(16, raw);
    raw[1] = 0x62;
    expect(data).toEqual({ kind: 'TXT', data: [Buffer.from('a')] });
  });
});

describe('address helpers', () => {
  it.each([
    { text: '192.0.2.1', ok: true },
    { text: '0.0.0.0', ok: true },
    { text: '300.1.1.1', ok: false },
    { text: '1.2.3', ok: false },
    { text: '1.2.3.4.5', ok: false },
    { text: '01.2.3.4', ok: false },
    { text: '1.2.3.4 ', ok: false },
    { text: '0x1.2.3.4', ok: false },
    { text: '', ok: false },
  ])('parseIPv4($text) ok=$ok', ({ text, ok }) => {
    expect(parseIPv4(text) !== undefined).toBe(ok);
  });

  it.each([
    { text: '2001:DB8::1', want: '2001:db8::1' },
    { text: '2001:0db8:0000:0000:0000:0000:0000:0001', want: '2001:db8::1' },
    { text: '::1', want: '::1' },
    { text: '1::', want: '1::' },
    { text: '1:0:0:0:0:0:0:0', want: '1::' },
    { text: '1:0:2:3:4:5:6:7', want: '1:0:2:3:4:5:6:7' },
    { text: '::ffff:10.0.0.1', want: '::ffff:a00:1' },
    { text: '1:2:3:4:5:6:7::', want: '1:2:3:4:5:6:7:0' },
    { text: 'fe80::1%eth0', want: undefined },
    { text: '1:2:3:4:5:6:7:8:9', want: undefined },
    { text: '1::2::3', want: undefined },
    { text: '::ffff:01.2.3.4', want: undefined },
  ])('normalizeIPv6($text) = $want', ({ text, want }) => {
    expect(normalizeIPv6(text)).toBe(want);
  });
});
