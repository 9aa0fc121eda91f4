/**
 * The one place that turns typed RData into wire rdata and back.
 *
 * Encoding goes through dns2's per-type encoders (a resource with the root as
 * owner, minus its fixed 11-octet prefix), after validating every field: dns2
 * checks little and silently corrupts out-of-range input (see the notes at each
 * workaround below). Names in rdata are never compressed — the writer gets no
 * names table — so the bytes can be copied into any message at any offset.
 *
 * Decoding is our own bounds-checked reader rather than dns2's: dns2 decodes
 * TXT and CAA strings as UTF-8 (losing arbitrary octets) and would follow a
 * compression pointer into the synthesized prefix of a standalone rdata.
 */
import { isIPv6 } from 'node:net';
import type { Resource } from 'dns2';
import { Packet } from './dns2-packet.ts';
import { LABEL_DOT, MAX_LABEL_OCTETS, MAX_NAME_OCTETS, wireLength } from '../zone/name.ts';
import { RRType, typeToText, type RData } from '../zone/records.ts';

/** Rdata that cannot be encoded or decoded; the message names the field at fault. */
export class RdataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RdataError';
  }
}

/** RDLENGTH is 16 bits (RFC 1035 §4.1.3). */
export const MAX_RDATA_OCTETS = 0xffff;
/** A <character-string> has a one-octet length (RFC 1035 §3.3). */
export const MAX_CHARACTER_STRING_OCTETS = 255;
/** CAA tags are 1-15 ASCII letters and digits (RFC 8659 §4.1). */
export const CAA_TAG = /^[A-Za-z0-9]{1,15}$/;

type TypedKind = Exclude<RData['kind'], 'UNKNOWN'>;

/** The RR type each typed rdata shape belongs to. */
export const KIND_TYPE: Readonly<Record<TypedKind, number>> = {
  A: RRType.A,
  AAAA: RRType.AAAA,
  NS: RRType.NS,
  CNAME: RRType.CNAME,
  PTR: RRType.PTR,
  MX: RRType.MX,
  TXT: RRType.TXT,
  SOA: RRType.SOA,
  SRV: RRType.SRV,
  CAA: RRType.CAA,
};

/* ------------------------------------------------------------------------ */
/* Addresses                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * Strict dotted quad: four decimal octets, no leading zeros. `010.1.1.1` is
 * refused rather than guessed at, since inet_aton would read it as octal.
 */
const DOTTED_QUAD = /^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$/;

export function parseIPv4(text: string): Buffer | undefined {
  if (!DOTTED_QUAD.test(text)) return undefined;
  const octets = text.split('.').map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return Buffer.from(octets);
}

/**
 * 16 octets of an IPv6 address, or undefined. Zone identifiers (`%eth0`) are
 * refused: they are local to a host and have no wire form (RFC 4007 §11).
 */
export function parseIPv6(text: string): Buffer | undefined {
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let groups = text.split(':');
  // An embedded dotted quad (RFC 4291 §2.2 form 3) stands for the last two groups.
  const last = groups[groups.length - 1]!;
  if (last.includes('.')) {
    const v4 = parseIPv4(last);
    if (!v4) return undefined;
    groups = [...groups.slice(0, -1), v4.readUInt16BE(0).toString(16), v4.readUInt16BE(2).toString(16)];
  }
  const gap = groups.indexOf('');
  let hex: string[];
  if (gap < 0) {
    hex = groups;
  } else {
    // '::' yields one or two empty fields (three for '::' alone); drop them all.
    const head = groups.slice(0, gap);
    const tail = groups.slice(groups.lastIndexOf('') + 1);
    const zeros = 8 - head.length - tail.length;
    if (zeros < 1) return undefined;
    hex = [...head, ...Array<string>(zeros).fill('0'), ...tail];
  }
  if (hex.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  hex.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** RFC 5952 §4 text form of 16 octets: lower case, longest zero run as '::'. */
export function formatIPv6(octets: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(octets.readUInt16BE(i));
  return Packet.toIPv6(groups);
}

/** Canonical text of an IPv6 address (what decodeRdata returns), or undefined. */
export function normalizeIPv6(text: string): string | undefined {
  const octets = parseIPv6(text);
  return octets && formatIPv6(octets);
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/** Octets of the root owner (1), TYPE (2), CLASS (2), TTL (4) and RDLENGTH (2). */
const RESOURCE_PREFIX = 11;

function assertUint(value: number, bits: 8 | 16 | 32, field: string): void {
  const max = 2 ** bits - 1;
  // dns2's writer keeps the low bits of whatever it is given, so 70000 would
  // go out as 4464 without this check.
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RdataError(`${field} ${String(value)} is not an integer from 0 to ${max}`);
  }
}

/**
 * Checks a name is something dns2's Name.encode writes faithfully: it writes
 * each label octet by charCodeAt (good), but silently drops empty labels and
 * keeps only the low 8 bits of a char above 0xFF.
 */
function assertName(name: string, field: string): void {
  if (name === '') return;
  for (const label of name.split('.')) {
    if (label.length === 0) throw new RdataError(`${field} "${name}" has an empty label`);
    if (label.length > MAX_LABEL_OCTETS) throw new RdataError(`${field} "${name}" has a label longer than ${MAX_LABEL_OCTETS} octets`);
  }
  // LABEL_DOT (U+012E) is a '.' octet inside a label; dns2 keeps its low 8 bits, 0x2E.
  assertOctets(name.replaceAll(LABEL_DOT, '.'), `${field} "${name}"`);
  if (wireLength(name) > MAX_NAME_OCTETS) throw new RdataError(`${field} "${name}" is longer than ${MAX_NAME_OCTETS} octets`);
}

/** Strings that stand for octets (names, CAA values) must hold one octet per char. */
function assertOctets(text: string, what: string): void {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) throw new RdataError(`${what} has a character that is not an octet`);
  }
}

/** dns2's view of a resource; TXT `data` may be Buffer[] at runtime though its types say string[]. */
type Dns2Fields = Omit<Partial<Resource>, 'data' | 'toBuffer'> & { data?: Buffer[] };

/** Encodes through dns2 and cuts the rdata out of the resource it wrote. */
function viaDns2(type: number, fields: Dns2Fields): Buffer {
  const resource = new Packet.Resource({ ...fields, name: '', type, class: 1, ttl: 0 } as Partial<Resource>);
  const wire = Packet.Resource.encode(resource);
  const rdata = wire.subarray(RESOURCE_PREFIX);
  // dns2 back-fills RDLENGTH with a 16-bit patch that silently wraps; a
  // mismatch means the rdata was too long to be sent at all.
  if (rdata.length > MAX_RDATA_OCTETS || wire.readUInt16BE(RESOURCE_PREFIX - 2) !== rdata.length) {
    throw new RdataError(`${typeToText(type)} rdata is ${rdata.length} octets, over the ${MAX_RDATA_OCTETS}-octet limit`);
  }
  return rdata;
}

function encodeTxt(strings: readonly Buffer[]): Buffer {
  // RFC 1035 §3.3.14: one or more <character-string>s.
  if (strings.length === 0) throw new RdataError('TXT rdata needs at least one string');
  for (const s of strings) {
    // dns2 writes the length with 8 bits: 300 octets would claim 44 and
    // misalign everything after it.
    if (!Buffer.isBuffer(s)) throw new RdataError('TXT strings must be Buffers');
    if (s.length > MAX_CHARACTER_STRING_OCTETS) {
      throw new RdataError(`TXT string of ${s.length} octets is over the ${MAX_CHARACTER_STRING_OCTETS}-octet limit`);
    }
  }
  const total = strings.reduce((n, s) => n + 1 + s.length, 0);
  if (total > MAX_RDATA_OCTETS) throw new RdataError(`TXT rdata is ${total} octets, over the ${MAX_RDATA_OCTETS}-octet limit`);
  // Buffers, not strings: dns2 would UTF-8 encode a string, changing octets above 0x7F.
  return viaDns2(RRType.TXT, { data: [...strings] });
}

/**
 * Our own CAA encoder (RFC 8659 §4.1). dns2's writes the tag length as the
 * tag's char count but the tag and value as UTF-8, so any octet above 0x7F in
 * the value is rewritten; our value is an octet string like our names.
 */
function encodeCaa(flags: number, tag: string, value: string): Buffer {
  assertUint(flags, 8, 'CAA flags');
  if (!CAA_TAG.test(tag)) throw new RdataError(`CAA tag "${tag}" must be 1 to 15 ASCII letters and digits`);
  assertOctets(value, 'CAA value');
  const out = Buffer.concat([Buffer.from([flags, tag.length]), Buffer.from(tag, 'latin1'), Buffer.from(value, 'latin1')]);
  if (out.length > MAX_RDATA_OCTETS) throw new RdataError(`CAA rdata is ${out.length} octets, over the ${MAX_RDATA_OCTETS}-octet limit`);
  return out;
}

function encodeSoa(d: Extract<RData, { kind: 'SOA' }>): Buffer {
  assertName(d.primary, 'SOA mname');
  assertName(d.admin, 'SOA rname');
  assertUint(d.serial, 32, 'SOA serial');
  assertUint(d.refresh, 32, 'SOA refresh');
  assertUint(d.retry, 32, 'SOA retry');
  assertUint(d.expiration, 32, 'SOA expire');
  assertUint(d.minimum, 32, 'SOA minimum');
  const { kind: _kind, ...fields } = d;
  const rdata = viaDns2(RRType.SOA, fields);
  // dns2 clamps MINIMUM to 2^31-1. The zone's value is data and must go out as
  // written (the negative-caching TTL is derived and clamped elsewhere).
  rdata.writeUInt32BE(d.minimum, rdata.length - 4);
  return rdata;
}

/**
 * Wire rdata of one record: names uncompressed, so the bytes can be placed
 * anywhere. Throws RdataError when a field is out of range or the shape does
 * not belong to `type`.
 */
export function encodeRdata(type: number, data: RData): Buffer {
  assertUint(type, 16, 'type');
  if (data.kind === 'UNKNOWN') {
    // RFC 3597 §4: opaque octets, copied so later changes to data.data cannot
    // leak in. Octets claiming a type we model must still be well-formed.
    decodeRdata(type, data.data);
    return Buffer.from(data.data);
  }
  if (KIND_TYPE[data.kind] !== type) throw new RdataError(`${data.kind} rdata cannot be sent as type ${typeToText(type)}`);
  switch (data.kind) {
    case 'A': {
      // Stricter than dns2's net.isIPv4 check, and worded like the zone parser.
      if (!parseIPv4(data.address)) throw new RdataError(`"${data.address}" is not an IPv4 address`);
      return viaDns2(type, { address: data.address });
    }
    case 'AAAA': {
      const octets = parseIPv6(data.address);
      if (!octets) throw new RdataError(`"${data.address}" is not an IPv6 address`);
      // dns2's fromIPv6 mis-reads an embedded dotted quad (::ffff:1.2.3.4 goes
      // out as ::ffff:0:1), so it only ever sees eight plain hex groups.
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(octets.readUInt16BE(i).toString(16));
      return viaDns2(type, { address: groups.join(':') });
    }
    case 'NS':
      assertName(data.ns, 'NS target');
      return viaDns2(type, { ns: data.ns });
    case 'CNAME':
    case 'PTR':
      assertName(data.domain, `${data.kind} target`);
      return viaDns2(type, { domain: data.domain });
    case 'MX':
      assertUint(data.priority, 16, 'MX preference');
      assertName(data.exchange, 'MX exchange');
      return viaDns2(type, { priority: data.priority, exchange: data.exchange });
    case 'SRV':
      assertUint(data.priority, 16, 'SRV priority');
      assertUint(data.weight, 16, 'SRV weight');
      assertUint(data.port, 16, 'SRV port');
      assertName(data.target, 'SRV target');
      return viaDns2(type, { priority: data.priority, weight: data.weight, port: data.port, target: data.target });
    case 'TXT':
      return encodeTxt(data.data);
    case 'SOA':
      return encodeSoa(data);
    case 'CAA':
      return encodeCaa(data.flags, data.tag, data.value);
  }
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */
/* ------------------------------------------------------------------------ */

/** A bounds-checked cursor over one record's rdata. */
class RdataReader {
  readonly buf: Buffer;
  readonly what: string;
  pos = 0;
  constructor(buf: Buffer, type: number) {
    this.buf = buf;
    this.what = `${typeToText(type)} rdata`;
  }

  fail(message: string): never {
    throw new RdataError(`${this.what} ${message}`);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) this.fail(`is truncated: ${this.buf.length} octets, needs at least ${this.pos + n}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  rest(): Buffer {
    return this.bytes(this.buf.length - this.pos);
  }

  atEnd(): boolean {
    return this.pos === this.buf.length;
  }

  /**
   * An uncompressed name (RFC 1035 §3.1). Standalone rdata has no message for
   * a pointer to point into, and RFC 3597 §5 rdata is uncompressed by
   * definition, so a pointer is malformed here.
   */
  name(): string {
    const parts: string[] = [];
    let octets = 1;
    for (;;) {
      const len = this.u8();
      if (len === 0) break;
      if ((len & 0xc0) === 0xc0) this.fail('has a compressed name, which standalone rdata cannot have');
      if (len & 0xc0) this.fail(`has a label with reserved type bits (0x${len.toString(16)})`);
      octets += len + 1;
      if (octets > MAX_NAME_OCTETS) this.fail(`has a name longer than ${MAX_NAME_OCTETS} octets`);
      // Internal names split on '.': a '.' octet inside a label is LABEL_DOT (src/zone/name.ts).
      parts.push(this.bytes(len).toString('latin1').replaceAll('.', LABEL_DOT));
    }
    return parts.join('.');
  }

  end(): void {
    if (!this.atEnd()) this.fail(`has ${this.buf.length - this.pos} octet(s) left over`);
  }
}

function decodeTyped(type: number, r: RdataReader): RData | undefined {
  switch (type) {
    case RRType.A:
      return { kind: 'A', address: [...r.bytes(4)].join('.') };
    case RRType.AAAA:
      return { kind: 'AAAA', address: formatIPv6(r.bytes(16)) };
    case RRType.NS:
      return { kind: 'NS', ns: r.name() };
    case RRType.CNAME:
      return { kind: 'CNAME', domain: r.name() };
    case RRType.PTR:
      return { kind: 'PTR', domain: r.name() };
    case RRType.MX:
      return { kind: 'MX', priority: r.u16(), exchange: r.name() };
    case RRType.SRV:
      return { kind: 'SRV', priority: r.u16(), weight: r.u16(), port: r.u16(), target: r.name() };
    case RRType.SOA:
      return {
        kind: 'SOA',
        primary: r.name(),
        admin: r.name(),
        serial: r.u32(),
        refresh: r.u32(),
        retry: r.u32(),
        expiration: r.u32(),
        minimum: r.u32(),
      };
    case RRType.TXT: {
      // RFC 1035 §3.3.14: one or more length-prefixed strings filling the rdata.
      if (r.atEnd()) r.fail('is empty; TXT needs at least one string');
      const data: Buffer[] = [];
      while (!r.atEnd()) data.push(r.bytes(r.u8()));
      return { kind: 'TXT', data };
    }
    case RRType.CAA: {
      const flags = r.u8();
      const tag = r.bytes(r.u8()).toString('latin1');
      if (!CAA_TAG.test(tag)) r.fail(`has tag "${tag}", which is not 1 to 15 ASCII letters and digits (RFC 8659 §4.1)`);
      return { kind: 'CAA', flags, tag, value: r.rest().toString('latin1') };
    }
    default:
      return undefined;
  }
}

/**
 * Typed RData from wire rdata (uncompressed names); UNKNOWN for types rrdns
 * does not model. Throws RdataError when the octets do not fit the type.
 */
export function decodeRdata(type: number, rdata: Buffer): RData {
  if (rdata.length > MAX_RDATA_OCTETS) throw new RdataError(`${typeToText(type)} rdata is ${rdata.length} octets, over the ${MAX_RDATA_OCTETS}-octet limit`);
  const reader = new RdataReader(rdata, type);
  const typed = decodeTyped(type, reader);
  if (typed === undefined) return { kind: 'UNKNOWN', data: Buffer.from(rdata) };
  reader.end();
  return typed;
}
