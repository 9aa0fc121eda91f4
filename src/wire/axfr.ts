/**
 * AXFR response messages (RFC 5936 §2.2): the zone's SOA, every other static
 * record, the SOA again, split over as many messages as it takes. Built lazily,
 * one message per `next()`, so a transfer never holds more than one message in
 * memory here and the transport can stop pulling when the client reads slowly.
 *
 * What is sent is the zone as its file declares it: a health-checked name's
 * primary addresses as written, never the live subset — a secondary cannot
 * check health, and a transfer that dropped a member which is down would leave
 * it dropped on the secondary until the next change.
 */
import { nameKey, wireLength } from '../zone/name.ts';
import { RRType } from '../zone/records.ts';
import type { RRset, Zone } from '../zone/zone.ts';
import { cookieOptionSize, HEADER_SIZE, MAX_MESSAGE, MessageWriter, OPT_SIZE, RR_FIXED, rdataOf, skipName, writeHeader, writeOpt } from './message.ts';

/** Messages are kept around this size: small enough to interleave with other work, big enough to be few. */
export const DEFAULT_AXFR_MESSAGE_BYTES = 16 * 1024;

/** The parts of the query an AXFR response copies. */
export interface XfrQuery {
  id: number;
  /** Raw second header word of the query (RD and CD are copied). */
  flags: number;
  /** The question section exactly as the client sent it. */
  question: Uint8Array;
  /** Lower-cased qname (the zone origin), for compression against the question. */
  qnameKey: string;
  /** The query had an OPT record: each message carries ours (RFC 6891 §7). */
  edns: boolean;
  ednsDo: boolean;
  /** The COOKIE option data every message's OPT carries (RFC 7873 §5.2), when the query had a client cookie. */
  cookie?: Uint8Array | undefined;
}

/** Octets of the OPT record each message of the answer to `q` carries. */
function optSize(q: XfrQuery): number {
  return q.edns ? OPT_SIZE + cookieOptionSize(q.cookie?.length ?? 0) : 0;
}

const writer = new MessageWriter();

/** QR, opcode QUERY, AA (RFC 5936 §2.2.1), RD and CD copied; TC never; RCODE NOERROR. */
function header(out: Buffer, q: XfrQuery, qd: number, an: number, ar: number): void {
  writeHeader(out, { id: q.id, opcode: 0, queryFlags: q.flags, rcode: 0, aa: true, tc: false }, qd, an, 0, ar);
}

/** Largest a record can take on the wire (owner uncompressed). */
function maxRecordSize(set: RRset, i: number): number {
  return wireLength(set.owner) + RR_FIXED + rdataOf(set.type, set.records[i]!).length;
}

function writeRecord(set: RRset, i: number): void {
  writer.record(set.owner, set.ownerKey, set.type, 1, set.ttl, set.records[i]!);
}

/** Every record of the transfer in order, as [rrset, index]: SOA, the rest, SOA. */
function* records(zone: Zone): Generator<[RRset, number]> {
  yield [zone.soa, 0];
  for (const node of zone.nodes.values()) {
    for (const set of node.rrsets.values()) {
      if (set.type === RRType.SOA && node.key === zone.originKey) continue;
      for (let i = 0; i < set.records.length; i++) yield [set, i];
    }
  }
  yield [zone.soa, 0];
}

export interface XfrProgress {
  messages: number;
  records: number;
  bytes: number;
}

/**
 * The messages of a full transfer of `zone` in answer to `q`. Each message
 * stays within `maxMessageBytes` unless a single record is larger (then it
 * goes alone, up to the 65535-octet TCP limit). The question is in the first
 * message only (RFC 5936 §2.2.1 allows omitting it afterwards); names are
 * compressed within each message. `progress` is updated as messages are made.
 */
export function* axfrMessages(zone: Zone, q: XfrQuery, progress?: XfrProgress, maxMessageBytes = DEFAULT_AXFR_MESSAGE_BYTES): Generator<Buffer, void, void> {
  const opt = optSize(q);
  const it = records(zone);
  let next = it.next();
  let first = true;
  while (!next.done) {
    const prefix = HEADER_SIZE + (first ? q.question.length : 0);
    writer.reset(prefix);
    // The question's qname (the origin) is the first name every owner can point at.
    if (first && nameKey(zone.origin) === q.qnameKey) writer.point(q.qnameKey, HEADER_SIZE);
    let an = 0;
    while (!next.done) {
      const [set, i] = next.value;
      const room = Math.min(maxMessageBytes, MAX_MESSAGE) - prefix - opt - writer.len;
      if (an > 0 && maxRecordSize(set, i) > room) break;
      writeRecord(set, i);
      an++;
      next = it.next();
    }
    const out = Buffer.allocUnsafe(prefix + writer.len + opt);
    header(out, q, first ? 1 : 0, an, opt ? 1 : 0);
    if (first) out.set(q.question, HEADER_SIZE);
    writer.buf.copy(out, prefix, 0, writer.len);
    if (opt) writeOpt(out, prefix + writer.len, 0, q.ednsDo, q.cookie, q.cookie?.length ?? 0);
    if (progress) {
      progress.messages++;
      progress.records += an;
      progress.bytes += out.length;
    }
    first = false;
    yield out;
  }
}

/**
 * One message with the zone's SOA as the only answer: the IXFR reply when
 * the client is up to date, or over UDP (RFC 1995 §2, §4).
 */
export function soaOnlyMessage(zone: Zone, q: XfrQuery): Buffer {
  const opt = optSize(q);
  const prefix = HEADER_SIZE + q.question.length;
  writer.reset(prefix);
  writer.point(q.qnameKey, HEADER_SIZE);
  writeRecord(zone.soa, 0);
  const out = Buffer.allocUnsafe(prefix + writer.len + opt);
  header(out, q, 1, 1, opt ? 1 : 0);
  out.set(q.question, HEADER_SIZE);
  writer.buf.copy(out, prefix, 0, writer.len);
  if (opt) writeOpt(out, prefix + writer.len, 0, q.ednsDo, q.cookie, q.cookie?.length ?? 0);
  return out;
}

/**
 * The serial in the SOA an IXFR query carries in its authority section
 * (RFC 1995 §3), or undefined when there is none or it is malformed.
 * `start` is the offset just past the question. Bounds-checked; never throws.
 */
export function ixfrClientSerial(msg: Uint8Array, length: number, start: number): number | undefined {
  if (length < HEADER_SIZE) return undefined;
  const ancount = (msg[6]! << 8) | msg[7]!;
  const nscount = (msg[8]! << 8) | msg[9]!;
  let pos = start;
  for (let i = 0; i < ancount + nscount && i < 16; i++) {
    pos = skipName(msg, length, pos);
    if (pos < 0 || pos + 10 > length) return undefined;
    const type = (msg[pos]! << 8) | msg[pos + 1]!;
    const rdlength = (msg[pos + 8]! << 8) | msg[pos + 9]!;
    const rdata = pos + 10;
    if (rdata + rdlength > length) return undefined;
    if (i >= ancount && type === RRType.SOA) {
      // mname, rname, then the serial.
      let p = skipName(msg, rdata + rdlength, rdata);
      if (p < 0) return undefined;
      p = skipName(msg, rdata + rdlength, p);
      if (p < 0 || p + 4 > rdata + rdlength) return undefined;
      return ((msg[p]! << 24) | (msg[p + 1]! << 16) | (msg[p + 2]! << 8) | msg[p + 3]!) >>> 0;
    }
    pos = rdata + rdlength;
  }
  return undefined;
}
