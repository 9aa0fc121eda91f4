/**
 * The one module that writes DNS messages (RFC 1035 §4.1): the header, the
 * echoed question, the OPT pseudo-record (RFC 6891 §6.1.2), names with
 * compression (RFC 1035 §4.1.4), records and their rdata, within the limits
 * of a message. Everything that puts bytes on the wire (compiled answers,
 * error replies, zone transfers, NOTIFY, CHAOS) goes through here, so the
 * rules about where a compression pointer may point live in one place.
 *
 * Compression rules kept here:
 * - a pointer has 14 bits, so only names starting below offset 0x4000 are
 *   remembered as targets;
 * - names inside rdata are compressed only for the types of RFC 1035 itself
 *   (NS, CNAME, SOA, PTR, MX): RFC 3597 §4 forbids it for every later type
 *   (SRV, RFC 2782, says so itself), and unknown types are opaque;
 * - a writer never writes past MAX_MESSAGE: `record()` refuses a record
 *   that might not fit instead of throwing halfway through it.
 */
import { nameKey } from '../zone/name.ts';
import { RRType, type RData } from '../zone/records.ts';
import { encodeRdata } from './rdata.ts';

/** RFC 1035 §4.1.1. */
export const HEADER_SIZE = 12;
/** EDNS option code of COOKIE (RFC 7873 §4). */
export const COOKIE_OPTION = 10;
/** EDNS option code of EDNS Client Subnet (RFC 7871 §6). */
export const ECS_OPTION = 8;
/** Largest message there is: the TCP length prefix has 16 bits (RFC 1035 §4.2.2). */
export const MAX_MESSAGE = 65535;
/** Our OPT record: root owner (1), TYPE, CLASS, TTL, RDLENGTH (10), no options. */
export const OPT_SIZE = 11;
/** Our EDNS UDP payload size: the DNS Flag Day 2020 value, safe from fragmentation. */
export const EDNS_UDP_SIZE = 1232;
/** RFC 1035 §4.2.1: the UDP limit without EDNS. */
export const CLASSIC_UDP_SIZE = 512;
/** Fixed part of a resource record after its owner: TYPE, CLASS, TTL, RDLENGTH. */
export const RR_FIXED = 10;
/** Compression pointers carry a 14-bit offset. */
const POINTER_LIMIT = 0x4000;

/** What a response header says beyond the counts; `queryFlags` is the query's second header word (RD and CD are copied from it). */
export interface ResponseHeader {
  id: number;
  opcode: number;
  queryFlags: number;
  rcode: number;
  aa: boolean;
  tc: boolean;
}

/**
 * Writes a response header: QR=1, the opcode echoed, AA and TC as given, RD
 * and CD copied from the query, RA and AD never (we do not recurse or
 * validate), the low four bits of the RCODE (the rest goes in OPT).
 */
export function writeHeader(out: Uint8Array, h: ResponseHeader, qd: number, an: number, ns: number, ar: number): void {
  writeHeaderAt(out, 0, h.id, h.opcode, h.queryFlags, h.rcode, h.aa, h.tc, qd, an, ns, ar);
}

/** writeHeader at `out[at..]` from the fields themselves: the UDP answer path writes into a send slot and makes no header object. */
export function writeHeaderAt(out: Uint8Array, at: number, id: number, opcode: number, queryFlags: number, rcode: number, aa: boolean, tc: boolean, qd: number, an: number, ns: number, ar: number): void {
  out[at] = (id >> 8) & 0xff;
  out[at + 1] = id & 0xff;
  out[at + 2] = 0x80 | ((opcode & 0x0f) << 3) | (aa ? 0x04 : 0) | (tc ? 0x02 : 0) | ((queryFlags >> 8) & 0x01);
  out[at + 3] = (queryFlags & 0x10) | (rcode & 0x0f);
  out[at + 4] = qd >> 8;
  out[at + 5] = qd & 0xff;
  out[at + 6] = an >> 8;
  out[at + 7] = an & 0xff;
  out[at + 8] = ns >> 8;
  out[at + 9] = ns & 0xff;
  out[at + 10] = ar >> 8;
  out[at + 11] = ar & 0xff;
}

/** Writes the header of a message we send as a request (QR=0): NOTIFY (RFC 1996 §3.7 sets AA). */
export function writeRequestHeader(out: Uint8Array, id: number, opcode: number, aa: boolean, qd: number, an: number): void {
  writeHeader(out, { id, opcode, queryFlags: 0, rcode: 0, aa, tc: false }, qd, an, 0, 0);
  out[2] = out[2]! & 0x7f;
}

/** Octets a COOKIE option of `length` data octets adds to our OPT record (0: none). */
export function cookieOptionSize(length: number): number {
  return length > 0 ? 4 + length : 0;
}

/** Octets an ECS option of `length` data octets (RFC 7871 §6: 4 + address octets) adds to our OPT record (0: none). */
export function ecsOptionSize(length: number): number {
  return length > 0 ? 4 + length : 0;
}

/**
 * Writes our OPT record at `at` (RFC 6891 §6.1.2): owner root, our UDP
 * size, the upper eight bits of the RCODE, version 0, DO copied from the
 * query (RFC 3225 §3), a COOKIE option (RFC 7873 §4, code 10) with
 * `cookie[0..cookieLength)` when cookieLength > 0, and an ECS option (RFC
 * 7871 §6, code 8) when ecsLength > 0: the query's option data at
 * `ecsFrom[ecsAt..ecsAt+ecsLength)` echoed with its SCOPE PREFIX-LENGTH set
 * to `ecsScope` (§7.2.1: FAMILY, SOURCE PREFIX-LENGTH and ADDRESS "MUST
 * match those in the query"). The record takes OPT_SIZE +
 * cookieOptionSize(cookieLength) + ecsOptionSize(ecsLength) octets. Returns
 * the offset after it.
 */
export function writeOpt(
  out: Uint8Array,
  at: number,
  rcode: number,
  dnssecOk: boolean,
  cookie?: Uint8Array,
  cookieLength = 0,
  ecsFrom?: Uint8Array,
  ecsAt = 0,
  ecsLength = 0,
  ecsScope = 0,
): number {
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = RRType.OPT;
  out[at + 3] = EDNS_UDP_SIZE >> 8;
  out[at + 4] = EDNS_UDP_SIZE & 0xff;
  out[at + 5] = (rcode >> 4) & 0xff;
  out[at + 6] = 0;
  out[at + 7] = dnssecOk ? 0x80 : 0;
  out[at + 8] = 0;
  const cookieSize = cookie ? cookieOptionSize(cookieLength) : 0;
  const ecsSize = ecsFrom ? ecsOptionSize(ecsLength) : 0;
  const options = cookieSize + ecsSize;
  out[at + 9] = options >> 8;
  out[at + 10] = options & 0xff;
  let o = at + OPT_SIZE;
  if (cookieSize > 0) {
    out[o] = COOKIE_OPTION >> 8;
    out[o + 1] = COOKIE_OPTION & 0xff;
    out[o + 2] = cookieLength >> 8;
    out[o + 3] = cookieLength & 0xff;
    for (let i = 0; i < cookieLength; i++) out[o + 4 + i] = cookie![i]!;
    o += cookieSize;
  }
  if (ecsSize > 0) {
    out[o] = ECS_OPTION >> 8;
    out[o + 1] = ECS_OPTION & 0xff;
    out[o + 2] = ecsLength >> 8;
    out[o + 3] = ecsLength & 0xff;
    out[o + 4] = ecsFrom![ecsAt]!;
    out[o + 5] = ecsFrom![ecsAt + 1]!;
    out[o + 6] = ecsFrom![ecsAt + 2]!;
    out[o + 7] = ecsScope;
    for (let i = 4; i < ecsLength; i++) out[o + 4 + i] = ecsFrom![ecsAt + i]!;
    o += ecsSize;
  }
  return o;
}

/**
 * Skips a possibly compressed name in `msg[..end)` (RFC 1035 §4.1.4): returns
 * the offset past it, or -1 when it runs past `end`, uses a reserved label
 * type (0x40, 0x80) or has more labels than a 255-octet name can.
 */
export function skipName(msg: Uint8Array, end: number, offset: number): number {
  let pos = offset;
  for (let labels = 0; labels < 128; labels++) {
    if (pos >= end) return -1;
    const len = msg[pos]!;
    if (len === 0) return pos + 1;
    if ((len & 0xc0) === 0xc0) return pos + 2 <= end ? pos + 2 : -1;
    if (len > 63) return -1;
    pos += 1 + len;
  }
  return -1;
}

const rdataCache = new WeakMap<RData, Buffer>();
/** Uncompressed wire rdata of one record, encoded once per record object. */
export function rdataOf(type: number, data: RData): Buffer {
  let wire = rdataCache.get(data);
  if (!wire) {
    wire = encodeRdata(type, data);
    rdataCache.set(data, wire);
  }
  return wire;
}

/**
 * Writes the body of a message (everything after a prefix of `base` octets)
 * into one reused buffer, compressing names against the names it was told
 * about (`point`, `remember`) and the ones it wrote itself. Offsets in
 * `names` are absolute message offsets.
 */
export class MessageWriter {
  readonly buf = Buffer.allocUnsafe(MAX_MESSAGE);
  /** Absolute message offset of buf[0]. */
  base = 0;
  len = 0;
  /** Octets kept free at the end of the message (the OPT record). */
  reserve = 0;
  /** Name key (lower case) → absolute offset where it is written. */
  readonly names = new Map<string, number>();

  reset(base: number, reserve = OPT_SIZE): void {
    this.base = base;
    this.len = 0;
    this.reserve = reserve;
    this.names.clear();
  }
  get offset(): number {
    return this.base + this.len;
  }
  /** Octets still free in the message. */
  get room(): number {
    return MAX_MESSAGE - this.reserve - this.base - this.len;
  }
  u8(v: number): void {
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** Makes `key` (a whole name) a pointer target at absolute `offset`, unless one is known already. */
  point(key: string, offset: number): void {
    if (key !== '' && offset < POINTER_LIMIT && !this.names.has(key)) this.names.set(key, offset);
  }
  /**
   * Records where each suffix of a name written at absolute `offset` starts,
   * for later pointers; only the suffixes starting before `upto` octets into
   * it (the part written literally).
   */
  remember(key: string, offset: number, upto = Infinity): void {
    let start = 0;
    while (start < upto && start < key.length) {
      const at = offset + start;
      if (at >= POINTER_LIMIT) return;
      const suffix = start === 0 ? key : key.slice(start);
      if (!this.names.has(suffix)) this.names.set(suffix, at);
      const dot = key.indexOf('.', start);
      if (dot < 0) return;
      start = dot + 1;
    }
  }
  /** Writes a name, compressed against everything remembered so far, and remembers its new suffixes. */
  name(name: string, key: string): void {
    if (key === '') {
      this.u8(0);
      return;
    }
    const startOffset = this.offset;
    let start = 0;
    while (start < key.length) {
      const ptr = this.names.get(start === 0 ? key : key.slice(start));
      if (ptr !== undefined) {
        this.u16(0xc000 | ptr);
        this.remember(key, startOffset, start);
        return;
      }
      let dot = key.indexOf('.', start);
      if (dot < 0) dot = key.length;
      this.u8(dot - start);
      for (let i = start; i < dot; i++) this.u8(name.charCodeAt(i));
      start = dot + 1;
    }
    this.u8(0);
    this.remember(key, startOffset);
  }
  /** Writes a pointer to an absolute offset (a name known to be there, e.g. the qname at 12). */
  pointer(offset: number): void {
    this.u16(0xc000 | offset);
  }

  /**
   * Writes RDLENGTH and the rdata of one record. Names in the rdata of the
   * RFC 1035 types are compressed (RFC 3597 §4); every other type is copied
   * as encoded. Returns the absolute offset where the rdata starts.
   */
  rdata(type: number, data: RData): number {
    const lengthAt = this.len;
    this.len += 2;
    const start = this.offset;
    switch (data.kind) {
      case 'NS':
        this.name(data.ns, nameKey(data.ns));
        break;
      case 'CNAME':
      case 'PTR':
        this.name(data.domain, nameKey(data.domain));
        break;
      case 'MX':
        this.u16(data.priority);
        this.name(data.exchange, nameKey(data.exchange));
        break;
      case 'SOA':
        this.name(data.primary, nameKey(data.primary));
        this.name(data.admin, nameKey(data.admin));
        this.u32(data.serial);
        this.u32(data.refresh);
        this.u32(data.retry);
        this.u32(data.expiration);
        this.u32(data.minimum);
        break;
      default:
        this.bytes(rdataOf(type, data));
    }
    const n = this.offset - start;
    this.buf[lengthAt] = n >> 8;
    this.buf[lengthAt + 1] = n & 0xff;
    return start;
  }

  /**
   * Writes one record if it surely fits (counting its owner and rdata
   * uncompressed); false, with nothing written, when it might not. `owner`
   * is written as a pointer to `ownerAt` when given (the qname in the
   * question), else compressed. Returns the absolute offset of its rdata, or -1.
   */
  record(owner: string, ownerKey: string, type: number, cls: number, ttl: number, data: RData, ownerAt = -1): number {
    const worst = (ownerAt >= 0 ? 2 : ownerKey === '' ? 1 : ownerKey.length + 2) + RR_FIXED + rdataOf(type, data).length;
    if (worst > this.room) return -1;
    if (ownerAt >= 0) this.pointer(ownerAt);
    else this.name(owner, ownerKey);
    this.u16(type);
    this.u16(cls);
    this.u32(ttl);
    return this.rdata(type, data);
  }

  /** A copy of what was written. */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}
