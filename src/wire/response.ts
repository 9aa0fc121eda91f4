/**
 * Writes response messages: header and question copied from the query
 * (RFC 1035 §4.1.1: ID and RD echoed, the question in the client's letter
 * case), a precompiled body, and the OPT record (RFC 6891 §6.1.1).
 */
import type { AnswerPlan } from './answer.ts';
import { decodeQuery, HEADER_SIZE, QueryStatus, QueryView, Rcode } from './query.ts';

/** Our EDNS UDP payload size: the DNS Flag Day 2020 value, safe from fragmentation. */
export const EDNS_UDP_SIZE = 1232;
/** RFC 1035 §4.2.1: the UDP limit without EDNS. */
export const CLASSIC_UDP_SIZE = 512;
const OPT_SIZE = 11;

/** Largest response the client accepts over UDP (RFC 6891 §6.2.5: below 512 counts as 512). */
export function udpLimit(q: QueryView): number {
  if (!q.hasEdns) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(q.ednsUdpSize, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE);
}

function writeHeader(out: Buffer, q: QueryView, rcode: number, aa: boolean, tc: boolean, an: number, ns: number, ar: number, qd: number): void {
  out[0] = q.id >> 8;
  out[1] = q.id & 0xff;
  // QR=1, opcode echoed, AA, TC, RD copied; RA never (we do not recurse); AD never; CD copied.
  out[2] = 0x80 | (q.opcode << 3) | (aa ? 0x04 : 0) | (tc ? 0x02 : 0) | ((q.flags >> 8) & 0x01);
  out[3] = (q.flags & 0x10) | (rcode & 0x0f);
  out.writeUInt16BE(qd, 4);
  out.writeUInt16BE(an, 6);
  out.writeUInt16BE(ns, 8);
  out.writeUInt16BE(ar, 10);
}

function writeOpt(out: Buffer, at: number, q: QueryView, rcode: number): void {
  out[at] = 0; // owner: root
  out.writeUInt16BE(41, at + 1);
  out.writeUInt16BE(EDNS_UDP_SIZE, at + 3);
  out[at + 5] = rcode >> 4; // extended RCODE (upper 8 bits)
  out[at + 6] = 0; // version 0
  out[at + 7] = q.ednsDo ? 0x80 : 0; // RFC 3225 §3: DO copied
  out[at + 8] = 0;
  out.writeUInt16BE(0, at + 9); // no options
}

/**
 * Builds the answer for `q` (whose bytes are `msg`) from `plan`, using body
 * `variant`, within `limit` octets. When the body does not fit it is cut on an
 * RRset boundary; TC is set only if answer or authority records were dropped.
 */
export function writeAnswer(msg: Uint8Array, q: QueryView, plan: AnswerPlan, variant: number, limit: number): Buffer {
  const body = plan.bodies[variant]!;
  const qlen = q.questionEnd;
  const opt = q.hasEdns ? OPT_SIZE : 0;
  let bodyLen = body.length;
  let an = plan.an;
  let ns = plan.ns;
  let ar = plan.ar;
  let tc = false;
  if (qlen + bodyLen + opt > limit) {
    const room = limit - qlen - opt;
    bodyLen = 0;
    an = 0;
    ns = 0;
    ar = 0;
    for (const cut of plan.cuts) {
      if (cut.end > room) break;
      bodyLen = cut.end;
      an = cut.an;
      ns = cut.ns;
      ar = cut.ar;
    }
    tc = bodyLen < plan.mustFit;
  }
  const out = Buffer.allocUnsafe(qlen + bodyLen + opt);
  out.set(msg.subarray(HEADER_SIZE, qlen), HEADER_SIZE);
  writeHeader(out, q, plan.rcode, plan.authoritative, tc, an, ns, ar + (opt ? 1 : 0), 1);
  body.copy(out, qlen, 0, bodyLen);
  if (opt) writeOpt(out, qlen + bodyLen, q, plan.rcode);
  return out;
}

/**
 * A response with no records: errors (FORMERR, NOTIMP, REFUSED, BADVERS).
 * The question is echoed when it was parsed; the OPT record when the query had one.
 */
export function writeEmpty(msg: Uint8Array, q: QueryView, rcode: number, withQuestion: boolean, aa = false): Buffer {
  const qlen = withQuestion ? q.questionEnd : HEADER_SIZE;
  const opt = q.hasEdns || rcode === Rcode.BADVERS ? OPT_SIZE : 0;
  const out = Buffer.allocUnsafe(qlen + opt);
  if (qlen > HEADER_SIZE) out.set(msg.subarray(HEADER_SIZE, qlen), HEADER_SIZE);
  writeHeader(out, q, rcode, aa, false, 0, 0, opt ? 1 : 0, withQuestion ? 1 : 0);
  if (opt) writeOpt(out, qlen, q, rcode);
  return out;
}

/**
 * SERVFAIL for a message whose handling failed (RFC 1035 §4.1.1: "server
 * failure"), built from the query bytes alone with a fresh decode, so nothing
 * the failed handler left behind is trusted. ID, opcode, RD and CD are echoed;
 * the question and OPT too when they decode. Never throws: if even that fails,
 * a bare 12-octet header. Null for what must get no answer at all (shorter
 * than a header, or a response: QR=1).
 */
export function servfailFor(msg: Uint8Array, length = msg.length): Buffer | null {
  if (length < HEADER_SIZE || msg.length < HEADER_SIZE || (msg[2]! & 0x80) !== 0) return null;
  try {
    const q = new QueryView();
    if (decodeQuery(msg, length, q) === QueryStatus.DROP) return null;
    return writeEmpty(msg, q, Rcode.SERVFAIL, q.questionEnd > HEADER_SIZE);
  } catch {
    const out = Buffer.alloc(HEADER_SIZE);
    out[0] = msg[0]!;
    out[1] = msg[1]!;
    out[2] = 0x80 | (msg[2]! & 0x79); // QR, opcode and RD echoed; AA and TC clear
    out[3] = (msg[3]! & 0x10) | Rcode.SERVFAIL; // CD echoed
    return out;
  }
}
