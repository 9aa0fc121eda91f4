/**
 * Compiles a Resolution into encoded answer bodies once, so a query only copies
 * bytes: header and question from the query itself (keeping the client's
 * letter case), then a precomputed body. Compression pointers in a body point
 * at the question (offset 12) or the zone apex inside it, so one body serves
 * every query with the same layout (RFC 1035 §4.1.4).
 *
 * A rotating RRset gets one body per rotation offset: rotation picks a body,
 * it never rewrites zone data or a shared buffer.
 */
import { nameKey } from '../zone/name.ts';
import type { RData } from '../zone/records.ts';
import type { SectionEntry } from '../zone/zone.ts';

export type { SectionEntry };
import { encodeRdata } from './rdata.ts';
import { HEADER_SIZE } from './query.ts';

/**
 * What a body is made of: sections of RRsets (zone's SectionEntry). The
 * resolver's Resolution fits this as it is, so wire does not import the resolver.
 */
export interface AnswerSections {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answer: readonly SectionEntry[];
  readonly authority: readonly SectionEntry[];
  readonly additional: readonly SectionEntry[];
}
/** The order a rotating RRset is written in for rotation offset k: `count` records (rotation's rotatedWindow). */
export type RotationOrder = (records: readonly RData[], k: number, count: number) => readonly RData[];

/** A point at which a body may be cut on an RRset boundary when it does not fit (RFC 2181 §9). */
export interface Cut {
  readonly end: number;
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
}

export interface AnswerPlan {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
  /** One body per rotation offset; a single body when nothing rotates. */
  readonly bodies: readonly Buffer[];
  /** Counter slot that picks the body; -1 when there is a single body. */
  readonly rotationSlot: number;
  /**
   * Cut points in body order. Cutting before `mustFit` (the end of answer and
   * authority) sets TC; dropping additional records does not (RFC 2181 §9).
   */
  readonly cuts: readonly Cut[];
  readonly mustFit: number;
  /** Epoch ms after which the plan must be recompiled (health-aware TTLs age); Infinity = never. */
  readonly expiresAt: number;
}

const rdataCache = new WeakMap<RData, Buffer>();
export function rdataOf(type: number, data: RData): Buffer {
  let wire = rdataCache.get(data);
  if (!wire) {
    wire = encodeRdata(type, data);
    rdataCache.set(data, wire);
  }
  return wire;
}

/** Largest message we ever build (TCP, RFC 1035 §4.2.2). */
export const MAX_MESSAGE = 65535;

export class BodyWriter {
  readonly buf = Buffer.allocUnsafe(MAX_MESSAGE);
  /** Absolute message offset of buf[0]. */
  base = 0;
  len = 0;
  readonly names = new Map<string, number>();

  reset(base: number): void {
    this.base = base;
    this.len = 0;
    this.names.clear();
  }
  get offset(): number {
    return this.base + this.len;
  }
  u8(v: number): void {
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.len);
    this.len += 2;
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
  }
  bytes(b: Buffer): void {
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  /**
   * Records where each suffix of a name written at `offset` starts, for later
   * pointers; only suffixes starting before `upto` (the part written literally).
   */
  remember(key: string, offset: number, upto = Infinity): void {
    let start = 0;
    while (start < upto && start < key.length) {
      const at = offset + start;
      if (at >= 0x4000) return; // pointers have 14 bits
      const suffix = start === 0 ? key : key.slice(start);
      if (!this.names.has(suffix)) this.names.set(suffix, at);
      const dot = key.indexOf('.', start);
      if (dot < 0) return;
      start = dot + 1;
    }
  }
  /** Writes a name, compressed against everything remembered so far. */
  name(name: string, key: string): void {
    if (key === '') {
      this.u8(0);
      return;
    }
    const startOffset = this.offset;
    let start = 0;
    while (start < key.length) {
      const suffix = start === 0 ? key : key.slice(start);
      const ptr = this.names.get(suffix);
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
}

const writer = new BodyWriter();

export interface CompileContext {
  qnameKey: string;
  /** Octets of the qname on the wire: the body starts at 12 + this + 4. */
  qnameWireLength: number;
  originKey: string;
  /**
   * True when the body may point at any suffix of the qname; false for a body
   * shared by many qnames, which may point only at the qname itself and the apex.
   */
  perName: boolean;
}

function seed(ctx: CompileContext): void {
  writer.reset(HEADER_SIZE + ctx.qnameWireLength + 4);
  if (ctx.perName) {
    writer.remember(ctx.qnameKey, HEADER_SIZE);
    return;
  }
  if (ctx.qnameKey !== '') writer.names.set(ctx.qnameKey, HEADER_SIZE);
  if (ctx.originKey !== '' && ctx.originKey !== ctx.qnameKey) {
    writer.names.set(ctx.originKey, HEADER_SIZE + ctx.qnameKey.length - ctx.originKey.length);
  }
}

function writeEntry(e: SectionEntry, records: readonly RData[]): number {
  for (const data of records) {
    writer.name(e.owner, e.ownerKey);
    writer.u16(e.rrset.type);
    writer.u16(1); // class IN
    writer.u32(e.ttl);
    const rdata = rdataOf(e.rrset.type, data);
    writer.u16(rdata.length);
    const at = writer.offset;
    writer.bytes(rdata);
    // A CNAME's target is written uncompressed; the records that follow it can point into it.
    if (data.kind === 'CNAME') writer.remember(nameKey(data.domain), at);
  }
  return records.length;
}

function encodeBody(res: AnswerSections, ctx: CompileContext, order: RotationOrder, rotateEntry: SectionEntry | undefined, k: number) {
  seed(ctx);
  const cuts: Cut[] = [];
  let an = 0;
  let ns = 0;
  let ar = 0;
  const recordsOf = (e: SectionEntry) => (e === rotateEntry ? order(e.records, k, Math.min(e.rrset.maxAnswers ?? Infinity, e.records.length)) : e.records);
  for (const e of res.answer) {
    an += writeEntry(e, recordsOf(e));
    cuts.push({ end: writer.len, an, ns, ar });
  }
  for (const e of res.authority) {
    ns += writeEntry(e, e.records);
    cuts.push({ end: writer.len, an, ns, ar });
  }
  const mustFit = writer.len;
  for (const e of res.additional) {
    ar += writeEntry(e, e.records);
    cuts.push({ end: writer.len, an, ns, ar });
  }
  return { body: Buffer.from(writer.buf.subarray(0, writer.len)), cuts, mustFit, an, ns, ar };
}

/** Compiles a resolution into an AnswerPlan. Only the first rotating RRset of the answer rotates. */
export function compileAnswer(res: AnswerSections, ctx: CompileContext, order: RotationOrder, expiresAt = Infinity): AnswerPlan {
  const rotateEntry = res.answer.find((e) => e.rrset.rotates && e.records.length > 1);
  const n = rotateEntry ? rotateEntry.records.length : 1;
  const first = encodeBody(res, ctx, order, rotateEntry, 0);
  const bodies = [first.body];
  // Rotated bodies have the same length and cut points: rotation reorders same-sized A/AAAA records.
  for (let k = 1; k < n; k++) bodies.push(encodeBody(res, ctx, order, rotateEntry, k).body);
  return {
    rcode: res.rcode,
    authoritative: res.authoritative,
    an: first.an,
    ns: first.ns,
    ar: first.ar,
    bodies,
    rotationSlot: rotateEntry ? rotateEntry.rrset.rotationSlot : -1,
    cuts: first.cuts,
    mustFit: first.mustFit,
    expiresAt,
  };
}
