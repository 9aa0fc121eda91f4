/**
 * Bounds-checked decoding of incoming queries. This is the only code that reads
 * untrusted packets; it reads just what an answer needs (header, the single
 * question, the OPT record) and never allocates per record. dns2's parser is
 * not used here: it decodes whole messages into objects and, on hostile input,
 * does far more work than a query deserves.
 */

import { COOKIE_OPTION, HEADER_SIZE, skipName } from './message.ts';

export { HEADER_SIZE };

export const Opcode = { QUERY: 0 } as const;
/** BADVERS (RFC 6891) and BADCOOKIE (RFC 7873 §8) are extended: their upper bits go in OPT. */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16, BADCOOKIE: 23 } as const;

/** What the decoder concluded about a packet. */
export const QueryStatus = {
  /** A well-formed query with one question. */
  OK: 0,
  /** Not worth an answer: too short to hold a header, or a response (QR=1), which must never be answered (loops). */
  DROP: 1,
  /** Header readable but the message is malformed: answer FORMERR (RFC 1035 §4.1.1). */
  FORMERR: 2,
  /** Opcode other than QUERY: answer NOTIMP. */
  NOTIMP: 3,
} as const;
export type QueryStatus = (typeof QueryStatus)[keyof typeof QueryStatus];

/** Reused across queries by each transport, so decoding allocates only the qname strings. */
export class QueryView {
  id = 0;
  /** Raw second 16-bit word of the header. */
  flags = 0;
  opcode = 0;
  qdcount = 0;
  /** Name as the client wrote it: octets as latin1, labels joined by '.'. */
  qname = '';
  /** ASCII-lower-cased qname, the lookup key. */
  qnameKey = '';
  /** Octets the qname takes on the wire. */
  qnameWireLength = 0;
  qtype = 0;
  qclass = 0;
  /** Offset just past the question section; 12 when there is none to echo. */
  questionEnd = HEADER_SIZE;
  hasEdns = false;
  ednsVersion = 0;
  ednsUdpSize = 0;
  ednsDo = false;
  /** Set when the header claims more than we parsed correctly; for logs. */
  problem = '';
  /** Offset of the COOKIE option's data (RFC 7873 §4) in the query; meaningful when cookieLength > 0. */
  cookieAt = 0;
  /** Octets of COOKIE option data in the query; 0 when it has none. */
  cookieLength = 0;
  /**
   * The COOKIE option is malformed: a length RFC 7873 §5.2.2 answers with
   * FORMERR, or a second COOKIE option. Left to the cookie step to act on: a
   * server with cookies off ignores the option altogether (RFC 7873 §5.2).
   */
  cookieMalformed = false;
  /** The COOKIE option data for the response (client cookie + server cookie), written into its OPT when responseCookieLength > 0. */
  readonly responseCookie = new Uint8Array(RESPONSE_COOKIE_CAPACITY);
  responseCookieLength = 0;
  /** The query carries a valid server cookie: its source address is not spoofed (RFC 7873 §5.2.5); exempt from RRL. */
  sourceProven = false;
}

/** Client cookie (8) + server cookie (at most 32): the largest COOKIE option data RFC 7873 §4 allows. */
const RESPONSE_COOKIE_CAPACITY = 40;

/** RFC 7873 §5.2.2: a client cookie alone (8 octets) or with a server cookie of 8 to 32; any other length is FORMERR. */
function cookieLengthValid(length: number): boolean {
  return length === 8 || (length >= 16 && length <= 40);
}

/**
 * RFC 1035 §3.1 / §4.1.2. Reads an uncompressed name at `offset`. A question
 * name has nothing before it to point at, so a compression pointer here is
 * malformed. Returns the offset past the name, or -1.
 */
function readQname(msg: Uint8Array, length: number, offset: number, view: QueryView): number {
  let pos = offset;
  let name = '';
  let key = '';
  let total = 1;
  for (;;) {
    if (pos >= length) return -1;
    const len = msg[pos]!;
    pos++;
    if (len === 0) break;
    if (len > 63) return -1; // pointers (0xC0) and the reserved 0x40/0x80 forms
    total += len + 1;
    if (total > 255 || pos + len > length) return -1;
    if (name.length > 0) {
      name += '.';
      key += '.';
    }
    for (let i = 0; i < len; i++) {
      const c = msg[pos + i]!;
      // A '.' octet inside a label is LABEL_DOT (U+012E) internally, as in zone names (src/zone/name.ts).
      const ch = String.fromCharCode(c === 0x2e ? 0x12e : c);
      name += ch;
      key += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : ch;
    }
    pos += len;
  }
  view.qname = name;
  view.qnameKey = key;
  view.qnameWireLength = total;
  return pos;
}

/**
 * Decodes `msg[0..length)` into `view`. Never throws; anything odd becomes a
 * status. Records in the answer and authority sections of a query are skipped;
 * the additional section is scanned for OPT (RFC 6891 §6.1.1: at most one,
 * owner must be the root).
 */
export function decodeQuery(msg: Uint8Array, length: number, view: QueryView): QueryStatus {
  view.problem = '';
  view.sourceProven = false;
  view.cookieAt = 0;
  view.cookieLength = 0;
  view.cookieMalformed = false;
  view.responseCookieLength = 0;
  view.hasEdns = false;
  view.ednsVersion = 0;
  view.ednsUdpSize = 0;
  view.ednsDo = false;
  view.questionEnd = HEADER_SIZE;
  view.qname = '';
  view.qnameKey = '';
  if (length < HEADER_SIZE) return QueryStatus.DROP;
  view.id = (msg[0]! << 8) | msg[1]!;
  view.flags = (msg[2]! << 8) | msg[3]!;
  if (view.flags & 0x8000) return QueryStatus.DROP;
  view.opcode = (view.flags >> 11) & 0xf;
  view.qdcount = (msg[4]! << 8) | msg[5]!;
  const ancount = (msg[6]! << 8) | msg[7]!;
  const nscount = (msg[8]! << 8) | msg[9]!;
  const arcount = (msg[10]! << 8) | msg[11]!;

  if (view.qdcount !== 1) {
    view.problem = `qdcount ${view.qdcount}`;
    return view.opcode === Opcode.QUERY ? QueryStatus.FORMERR : QueryStatus.NOTIMP;
  }
  let pos = readQname(msg, length, HEADER_SIZE, view);
  if (pos < 0 || pos + 4 > length) {
    view.problem = 'malformed question';
    return QueryStatus.FORMERR;
  }
  view.qtype = (msg[pos]! << 8) | msg[pos + 1]!;
  view.qclass = (msg[pos + 2]! << 8) | msg[pos + 3]!;
  pos += 4;
  view.questionEnd = pos;
  if (view.opcode !== Opcode.QUERY) return QueryStatus.NOTIMP;

  // Each RR takes at least 11 octets; a count that cannot fit is malformed, and bounds the loop.
  const records = ancount + nscount + arcount;
  if (records * 11 > length - pos) {
    view.problem = 'record counts exceed message';
    return QueryStatus.FORMERR;
  }
  for (let i = 0; i < records; i++) {
    const nameStart = pos;
    pos = skipName(msg, length, pos);
    if (pos < 0 || pos + 10 > length) {
      view.problem = 'malformed record';
      return QueryStatus.FORMERR;
    }
    const type = (msg[pos]! << 8) | msg[pos + 1]!;
    const rdlength = (msg[pos + 8]! << 8) | msg[pos + 9]!;
    if (pos + 10 + rdlength > length) {
      view.problem = 'rdata overruns message';
      return QueryStatus.FORMERR;
    }
    if (type === 41 && i >= ancount + nscount) {
      // RFC 6891 §6.1.1: more than one OPT, or an OPT not owned by the root, is FORMERR.
      if (view.hasEdns || msg[nameStart] !== 0) {
        view.problem = view.hasEdns ? 'second OPT record' : 'OPT owner is not the root';
        return QueryStatus.FORMERR;
      }
      view.hasEdns = true;
      view.ednsUdpSize = (msg[pos + 2]! << 8) | msg[pos + 3]!;
      view.ednsVersion = msg[pos + 5]!;
      view.ednsDo = (msg[pos + 6]! & 0x80) !== 0;
      // Options other than COOKIE are not interpreted (unknown ones are ignored, RFC 6891 §6.1.2), but they must be well-formed.
      let opt = pos + 10;
      const end = opt + rdlength;
      while (opt < end) {
        if (opt + 4 > end) {
          view.problem = 'truncated EDNS option';
          return QueryStatus.FORMERR;
        }
        const optCode = (msg[opt]! << 8) | msg[opt + 1]!;
        const optLen = (msg[opt + 2]! << 8) | msg[opt + 3]!;
        if (opt + 4 + optLen > end) {
          view.problem = 'EDNS option overruns OPT';
          return QueryStatus.FORMERR;
        }
        if (optCode === COOKIE_OPTION && !view.cookieMalformed) {
          // RFC 7873 does not say what two COOKIE options mean, and servers disagree: BIND reads the
          // first and skips the rest (lib/ns/client.c process_cookie), Knot 3 answers with the last
          // (tried: knotd + mod-cookies echoes the second client cookie). A client never sends two,
          // so rather than pick one, the query is refused as malformed.
          if (view.cookieLength > 0) {
            view.cookieMalformed = true;
            view.problem = 'second COOKIE option';
          } else if (!cookieLengthValid(optLen)) {
            view.cookieMalformed = true;
            view.problem = `COOKIE option of ${optLen} octets (RFC 7873 §5.2.2: 8, or 16 to 40)`;
          } else {
            view.cookieAt = opt + 4;
            view.cookieLength = optLen;
          }
        }
        opt += 4 + optLen;
      }
    }
    pos += 10 + rdlength;
  }
  return QueryStatus.OK;
}
