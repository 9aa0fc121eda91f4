/**
 * The record model shared by every zone source (YAML, JSON, RFC 1035 master files)
 * and by the wire encoder. Field names of typed rdata follow dns2's resource
 * objects so `src/wire/rdata.ts` can hand them to dns2's encoders unchanged.
 *
 * Names are absolute, without the trailing dot, in the case the zone wrote them;
 * the root is ''. Each label is a string of octets (one char per octet, latin1),
 * except that a '.' octet inside a label is the char LABEL_DOT (see name.ts),
 * so that a name splits unambiguously on '.'.
 */

export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
  CAA: 257,
} as const;

/** Types a zone may contain in typed (non-RFC 3597) form. */
export const SUPPORTED_TYPES = ['SOA', 'NS', 'A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'CAA', 'PTR'] as const;
export type SupportedType = (typeof SUPPORTED_TYPES)[number];

export const RRClass = { IN: 1, CH: 3, ANY: 255 } as const;

export type RData =
  | { kind: 'A'; address: string }
  | { kind: 'AAAA'; address: string }
  | { kind: 'NS'; ns: string }
  | { kind: 'CNAME'; domain: string }
  | { kind: 'PTR'; domain: string }
  | { kind: 'MX'; priority: number; exchange: string }
  /** Each element is one <character-string> (RFC 1035 §3.3.14), at most 255 octets. */
  | { kind: 'TXT'; data: Buffer[] }
  | {
      kind: 'SOA';
      primary: string;
      admin: string;
      serial: number;
      refresh: number;
      retry: number;
      expiration: number;
      minimum: number;
    }
  | { kind: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { kind: 'CAA'; flags: number; tag: string; value: string }
  /** RFC 3597 opaque rdata, for any type code we do not model. */
  | { kind: 'UNKNOWN'; data: Buffer };

/** One resource record as a zone source declares it. */
export interface ZoneRecord {
  /** Absolute owner name, no trailing dot, original case. */
  name: string;
  /** Numeric RR type. */
  type: number;
  /** TTL in seconds (already defaulted by the source; clamps are applied later). */
  ttl: number;
  data: RData;
  /** 1-based source line, for error messages. */
  line?: number | undefined;
  /** File the line is in, when not the zone's own source (a native zone's `masterFile:`). */
  file?: string | undefined;
}

const NAME_TO_TYPE: Record<string, number> = { ...RRType };
const TYPE_TO_NAME: Record<number, string> = Object.fromEntries(Object.entries(RRType).map(([k, v]) => [v, k]));

/** Mnemonic or RFC 3597 `TYPEnnn` → code; undefined when neither. */
export function typeFromText(text: string): number | undefined {
  const upper = text.toUpperCase();
  const known = NAME_TO_TYPE[upper];
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  if (m) {
    const n = Number(m[1]);
    if (n <= 0xffff) return n;
  }
  return undefined;
}

/** Code → mnemonic, or RFC 3597 `TYPEnnn`. */
export function typeToText(type: number): string {
  return TYPE_TO_NAME[type] ?? `TYPE${type}`;
}

/** Octets of a name on the wire, uncompressed (kept here so records.ts needs no other module). */
function nameOctets(name: string): number {
  return name === '' ? 1 : name.length + 2;
}

/** ASCII lower-casing (RFC 4343): the case-insensitive identity of a name in rdata. */
function lowerName(name: string): string {
  return name.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * Octets `data` takes as wire rdata with its names uncompressed: an upper
 * bound on what any answer writes for it (rdata names may be compressed only
 * in the RFC 1035 types, and only ever shrink). Computed here rather than by
 * encoding, because the zone layer sits below the wire codec.
 */
export function rdataLength(data: RData): number {
  switch (data.kind) {
    case 'A':
      return 4;
    case 'AAAA':
      return 16;
    case 'NS':
      return nameOctets(data.ns);
    case 'CNAME':
    case 'PTR':
      return nameOctets(data.domain);
    case 'MX':
      return 2 + nameOctets(data.exchange);
    case 'TXT': {
      let n = 0;
      for (const s of data.data) n += 1 + s.length;
      return n;
    }
    case 'SOA':
      return nameOctets(data.primary) + nameOctets(data.admin) + 20;
    case 'SRV':
      return 6 + nameOctets(data.target);
    case 'CAA':
      return 2 + data.tag.length + data.value.length;
    case 'UNKNOWN':
      return data.data.length;
  }
}

/**
 * The identity of a record's data within its RRset, as one string, so that
 * duplicates are found with a Set in O(1) rather than by comparing with every
 * record already kept. Two rdata are the same record when their canonical wire
 * forms are equal (RFC 4034 §6.2): octets as written, except that names inside
 * the rdata of NS, CNAME, PTR, MX, SOA and SRV compare ignoring ASCII case
 * (RFC 4343; those are the types §6.2 lower-cases that rrdns models). The first
 * record written is the one kept, with its case. Each variable-length field is
 * length-prefixed, so no two different rdata share a key.
 */
export function rdataKey(data: RData): string {
  switch (data.kind) {
    case 'A':
    case 'AAAA':
      return `${data.kind} ${data.address}`;
    case 'NS':
      return `NS ${lowerName(data.ns)}`;
    case 'CNAME':
    case 'PTR':
      return `${data.kind} ${lowerName(data.domain)}`;
    case 'MX':
      return `MX ${data.priority} ${lowerName(data.exchange)}`;
    case 'TXT': {
      let key = 'TXT';
      for (const s of data.data) key += ` ${s.length}:${s.toString('latin1')}`;
      return key;
    }
    case 'SOA':
      return `SOA ${data.primary.length}:${lowerName(data.primary)} ${lowerName(data.admin)} ${data.serial} ${data.refresh} ${data.retry} ${data.expiration} ${data.minimum}`;
    case 'SRV':
      return `SRV ${data.priority} ${data.weight} ${data.port} ${lowerName(data.target)}`;
    case 'CAA':
      return `CAA ${data.flags} ${data.tag} ${data.value}`;
    case 'UNKNOWN':
      return `# ${data.data.toString('latin1')}`;
  }
}
