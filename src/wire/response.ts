/**
 * Writes response messages for queries: header and question copied from the
 * query (RFC 1035 §4.1.1: ID and RD echoed, the question in the client's
 * letter case), a precompiled body cut to fit, the rotated order of its
 * rotating RRset, and the OPT record (RFC 6891 §6.1.1). The byte-level
 * writers live in message.ts.
 */
import { firstRecordAt, type AnswerPlan, type Rotation } from './answer.ts';
import { CLASSIC_UDP_SIZE, cookieOptionSize, ecsOptionSize, EDNS_UDP_SIZE, HEADER_SIZE, MAX_MESSAGE, OPT_SIZE, writeHeader, writeHeaderAt, writeOpt } from './message.ts';
import { decodeQuery, QueryStatus, QueryView, Rcode } from './query.ts';

/** Largest response the client accepts over UDP (RFC 6891 §6.2.5: below 512 counts as 512). */
export function udpLimit(q: QueryView): number {
  if (!q.hasEdns) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(q.ednsUdpSize, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE);
}

/** Largest response over `transport` for this query. */
export function responseLimit(q: QueryView, transport: 'udp' | 'tcp'): number {
  return transport === 'udp' ? udpLimit(q) : MAX_MESSAGE;
}

/**
 * Octets our OPT record takes in the response to `q`: none without EDNS,
 * else the record plus the COOKIE option the cookie step prepared (RFC 7873
 * §5.2: every response to a query with a client cookie carries one) and the
 * echoed ECS option (RFC 7871 §7.2.1: every response to a query with one
 * carries one; its size is the query's). Writers subtract it from the room
 * they have, so truncation leaves space for it.
 */
export function optSize(q: QueryView): number {
  return q.hasEdns ? OPT_SIZE + cookieOptionSize(q.responseCookieLength) + ecsOptionSize(q.ecsLength) : 0;
}

/**
 * SCOPE PREFIX-LENGTH answered to `q`'s client subnet with `plan`: the
 * plan's scope for the option's family. A query with SOURCE PREFIX-LENGTH 0
 * gets 0 whatever the plan says: the client asked that no address be used
 * (RFC 7871 §7.1.2), and a resolver caches such an answer at /0 anyway
 * (§7.3.1). A scope longer than the source is allowed (§7.2.1) and kept.
 */
export function ecsScope(q: QueryView, plan: AnswerPlan): number {
  if (q.ecsSource === 0) return 0;
  return q.ecsFamily === 1 ? plan.ecsScope4 : plan.ecsScope6;
}

/** Writes the OPT record for `q` (whose bytes are `msg`) at `at`: the query's DO bit, its response cookie, its ECS option with `scope`. */
function writeOptFor(out: Uint8Array, at: number, msg: Uint8Array, q: QueryView, rcode: number, scope: number): void {
  writeOpt(out, at, rcode, q.ednsDo, q.responseCookie, q.responseCookieLength, msg, q.ecsAt, q.ecsLength, scope);
}

/**
 * Copies into `out` the rdata of the records served at rotation step `k`.
 * Plain rotation: the written slot i gets record (k + i) mod count, the same
 * cyclic window as rotation.ts's rotatedWindow. Weighted: the step's order
 * from the plan's table (rotation/weighted.ts). Only slots inside the first
 * `bodyLen` octets (the part of the body that fits) are written.
 */
function rotate(out: Uint8Array, at: number, bodyLen: number, r: Rotation, k: number): void {
  const { rdlength, count, rdata, order, stride } = r;
  const first = firstRecordAt(order, stride, count, k);
  for (let i = 0; i < r.at.length; i++) {
    const slot = r.at[i]!;
    if (slot + rdlength > bodyLen) return;
    const record = order !== undefined && i < stride ? order[k * stride + i]! : (first + i) % count;
    const from = record * rdlength;
    // A few octets (A: 4, AAAA: 16): a loop beats Buffer#copy's call overhead.
    for (let j = 0; j < rdlength; j++) out[at + slot + j] = rdata[from + j]!;
  }
}

/** Octets of the header and question copied from the query, byte by byte: a question is a few dozen octets, and a subarray would be an object per answer. */
function copyQuestion(out: Uint8Array, at: number, msg: Uint8Array, qlen: number): void {
  for (let i = HEADER_SIZE; i < qlen; i++) out[at + i] = msg[i]!;
}

/** What fits of a plan's body (answerLayout's result; module scratch, the answer path is synchronous). */
const fit = { bodyLen: 0, an: 0, ns: 0, ar: 0, tc: false, opt: 0 };

/**
 * Decides how much of `plan`'s body fits within `limit` octets for `q`:
 * when the body does not fit it is cut on an RRset boundary; TC is set when
 * anything before `plan.mustFit` (answer, authority, required glue) was
 * dropped. Returns the response's length; the cut is left in `fit`.
 */
function answerLayout(q: QueryView, plan: AnswerPlan, limit: number): number {
  const qlen = q.questionEnd;
  const opt = optSize(q);
  fit.opt = opt;
  fit.bodyLen = plan.body.length;
  fit.an = plan.an;
  fit.ns = plan.ns;
  fit.ar = plan.ar;
  fit.tc = fit.bodyLen < plan.mustFit;
  if (qlen + fit.bodyLen + opt > limit) {
    const room = limit - qlen - opt;
    fit.bodyLen = 0;
    fit.an = 0;
    fit.ns = 0;
    fit.ar = 0;
    const cuts = plan.cuts;
    for (let i = 0; i < cuts.length; i++) {
      const cut = cuts[i]!;
      if (cut.end > room) break;
      fit.bodyLen = cut.end;
      fit.an = cut.an;
      fit.ns = cut.ns;
      fit.ar = cut.ar;
    }
    fit.tc = fit.bodyLen < plan.mustFit;
  }
  return qlen + fit.bodyLen + opt;
}

/** Writes the answer answerLayout just laid out into `out[at..]`. */
function writeLaidOut(out: Uint8Array, at: number, msg: Uint8Array, q: QueryView, plan: AnswerPlan, k: number): void {
  const qlen = q.questionEnd;
  const bodyLen = fit.bodyLen;
  copyQuestion(out, at, msg, qlen);
  writeHeaderAt(out, at, q.id, q.opcode, q.flags, plan.rcode, plan.authoritative, fit.tc, 1, fit.an, fit.ns, fit.ar + (fit.opt ? 1 : 0));
  // The whole body (nearly always): TypedArray#set, a plain memcpy; a cut one through Buffer#copy (no subarray object).
  if (bodyLen === plan.body.length) out.set(plan.body, at + qlen);
  else plan.body.copy(out, at + qlen, 0, bodyLen);
  if (plan.rotation && (k !== 0 || plan.rotation.order !== undefined)) rotate(out, at + qlen, bodyLen, plan.rotation, k);
  if (fit.opt) writeOptFor(out, at + qlen + bodyLen, msg, q, plan.rcode, q.ecsLength > 0 ? ecsScope(q, plan) : 0);
}

/**
 * Builds the answer for `q` (whose bytes are `msg`) from `plan` at rotation
 * offset `k`, within `limit` octets, into `out` at `at` (room for `limit`
 * octets); returns its length. When the body does not fit it is cut on an
 * RRset boundary; TC is set when anything before `plan.mustFit` (answer,
 * authority, required glue) was dropped. The UDP path writes straight into
 * its send slot with this; nothing is allocated.
 */
export function writeAnswerInto(out: Uint8Array, at: number, msg: Uint8Array, q: QueryView, plan: AnswerPlan, k: number, limit: number): number {
  const length = answerLayout(q, plan, limit);
  writeLaidOut(out, at, msg, q, plan, k);
  return length;
}

/** writeAnswerInto into a Buffer of its own (TCP, tests). */
export function writeAnswer(msg: Uint8Array, q: QueryView, plan: AnswerPlan, k: number, limit: number): Buffer {
  const out = Buffer.allocUnsafe(answerLayout(q, plan, limit));
  writeLaidOut(out, 0, msg, q, plan, k);
  return out;
}

/**
 * Sets the TTL of the rotating RRset's records in a response of `length`
 * octets at `out[at..]` that writeAnswer made for `q` from `plan`
 * (resolver-aware TTLs give heavy resolvers a shorter one). A record's TTL
 * field sits 6 octets before its rdata (TTL, then RDLENGTH, RFC 1035
 * §4.1.3); records cut off by truncation are skipped.
 */
export function setRotationTtl(out: Uint8Array, q: QueryView, plan: AnswerPlan, ttl: number, at = 0, length = out.length - at): void {
  const r = plan.rotation;
  if (r === undefined) return;
  const qlen = q.questionEnd;
  const bodyLen = length - qlen - optSize(q);
  for (let i = 0; i < r.at.length; i++) {
    const slot = r.at[i]!;
    if (slot + r.rdlength > bodyLen) return;
    const o = at + qlen + slot - 6;
    out[o] = ttl >>> 24;
    out[o + 1] = (ttl >>> 16) & 0xff;
    out[o + 2] = (ttl >>> 8) & 0xff;
    out[o + 3] = ttl & 0xff;
  }
}

/** Octets of the question echoed and of the OPT record in an empty response (emptyLayout's result). */
const empty = { qlen: 0, opt: 0 };

function emptyLayout(q: QueryView, rcode: number, withQuestion: boolean): number {
  empty.qlen = withQuestion ? q.questionEnd : HEADER_SIZE;
  empty.opt = q.hasEdns ? optSize(q) : rcode === Rcode.BADVERS ? OPT_SIZE : 0;
  return empty.qlen + empty.opt;
}

function writeEmptyLaidOut(out: Uint8Array, at: number, msg: Uint8Array, q: QueryView, rcode: number, withQuestion: boolean, aa: boolean, tc: boolean): void {
  const qlen = empty.qlen;
  const opt = empty.opt;
  copyQuestion(out, at, msg, qlen);
  writeHeaderAt(out, at, q.id, q.opcode, q.flags, rcode, aa, tc, withQuestion ? 1 : 0, 0, 0, opt ? 1 : 0);
  // No records, so nothing the scope could be about: 0, valid for every client (RFC 7871 §7.2.1).
  if (opt) writeOptFor(out, at + qlen, msg, q, rcode, 0);
}

/**
 * A response with no records: errors (FORMERR, NOTIMP, REFUSED, SERVFAIL,
 * BADVERS, BADCOOKIE), or with `tc` an empty truncated answer: the one
 * rate limiting slips (BIND `slip`: TC=1, no records, the rcode kept, so the
 * client retries over TCP) and require-cookies sends a query without a cookie.
 * The question is echoed when it was parsed; the OPT record when the query
 * had one (and always for BADVERS, which only OPT can carry), with the
 * response cookie when one was prepared and the query's ECS option (scope 0)
 * when it had a well-formed one. Written into `out` at `at`; returns the length.
 */
export function writeEmptyInto(out: Uint8Array, at: number, msg: Uint8Array, q: QueryView, rcode: number, withQuestion: boolean, aa = false, tc = false): number {
  const length = emptyLayout(q, rcode, withQuestion);
  writeEmptyLaidOut(out, at, msg, q, rcode, withQuestion, aa, tc);
  return length;
}

/** writeEmptyInto into a Buffer of its own. */
export function writeEmpty(msg: Uint8Array, q: QueryView, rcode: number, withQuestion: boolean, aa = false, tc = false): Buffer {
  const out = Buffer.allocUnsafe(emptyLayout(q, rcode, withQuestion));
  writeEmptyLaidOut(out, 0, msg, q, rcode, withQuestion, aa, tc);
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
    // AA and TC clear; ID, opcode, RD and CD echoed from the raw header.
    writeHeader(out, { id: (msg[0]! << 8) | msg[1]!, opcode: (msg[2]! >> 3) & 0x0f, queryFlags: (msg[2]! << 8) | msg[3]!, rcode: Rcode.SERVFAIL, aa: false, tc: false }, 0, 0, 0, 0);
    return out;
  }
}
