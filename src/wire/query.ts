/**
 * Bounds-checked decoding of incoming queries. This is the only code that reads
 * untrusted packets; it reads just what an answer needs (header, the single
 * question, the OPT record) and never allocates per record. dns2's parser is
 * not used here: it decodes whole messages into objects and, on hostile input,
 * does far more work than a query deserves.
 */

import { COOKIE_OPTION, ECS_OPTION, HEADER_SIZE, skipName } from './message.ts';

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

/**
 * Reused across queries by each transport, so decoding allocates nothing:
 * the qname strings are made only when something reads them (a lookup that
 * missed the pipeline's answer table, logs), from the message's bytes, which
 * must still be there then: read them while the message is being answered.
 */
export class QueryView {
  id = 0;
  /** Raw second 16-bit word of the header. */
  flags = 0;
  opcode = 0;
  qdcount = 0;
  /** Octets the qname takes on the wire (it starts at HEADER_SIZE); 0 before a question was read. */
  qnameWireLength = 0;
  /**
   * A seeded hash of the qname's wire octets with ASCII letters lower-cased
   * (label lengths included): what the pipeline's answer table is keyed by,
   * so a repeated question is found without making its name string.
   */
  qnameHash = 0;
  /** The message decoded last (its qname is read from it lazily). */
  private msg: Uint8Array | undefined = undefined;
  private nameText: string | undefined = undefined;
  private keyText: string | undefined = undefined;

  /** Name as the client wrote it: octets as latin1, labels joined by '.'. */
  get qname(): string {
    if (this.nameText === undefined) this.readNames();
    return this.nameText!;
  }
  set qname(v: string) {
    this.nameText = v;
  }

  /** ASCII-lower-cased qname, the lookup key. */
  get qnameKey(): string {
    if (this.keyText === undefined) this.readNames();
    return this.keyText!;
  }
  set qnameKey(v: string) {
    this.keyText = v;
  }

  /** Forgets the names of the previous message; `msg` is the one being decoded. */
  startMessage(msg: Uint8Array): void {
    this.msg = msg;
    this.qnameWireLength = 0;
    this.nameText = undefined;
    this.keyText = undefined;
  }

  private readNames(): void {
    const msg = this.msg;
    let name = '';
    let key = '';
    if (msg !== undefined && this.qnameWireLength > 0) {
      let pos = HEADER_SIZE;
      for (;;) {
        const len = msg[pos]!;
        pos++;
        if (len === 0) break;
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
    }
    this.nameText = name;
    this.keyText = key;
  }
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
  /**
   * Offset of the EDNS Client Subnet option's data (RFC 7871 §6: FAMILY,
   * SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS) in the query;
   * meaningful when ecsLength > 0. The response echoes it from the query's
   * bytes (RFC 7871 §7.2.1), so nothing of it is copied here.
   */
  ecsAt = 0;
  /** Octets of ECS option data in the query (4 + the address octets); 0 when it has none or it is malformed. */
  ecsLength = 0;
  /** FAMILY of the ECS option: 1 IPv4, 2 IPv6, 0 only with SOURCE PREFIX-LENGTH 0 (no address at all). */
  ecsFamily = 0;
  /** SOURCE PREFIX-LENGTH of the ECS option. */
  ecsSource = 0;
  /** The ECS option is malformed (see ecsProblem) or repeated: the query is answered FORMERR (RFC 7871 §7.2.1). */
  ecsMalformed = false;
}

/** Client cookie (8) + server cookie (at most 32): the largest COOKIE option data RFC 7873 §4 allows. */
const RESPONSE_COOKIE_CAPACITY = 40;

/** RFC 7873 §5.2.2: a client cookie alone (8 octets) or with a server cookie of 8 to 32; any other length is FORMERR. */
function cookieLengthValid(length: number): boolean {
  return length === 8 || (length >= 16 && length <= 40);
}

/**
 * Checks the ECS option data `msg[at..at+length)` (RFC 7871 §6); returns
 * what is wrong with it, or '' when it is well-formed. Every rule here is one
 * RFC 7871 §7.2.1 answers with FORMERR ("A query with a wrongly formatted
 * option (e.g., an unknown FAMILY) MUST be rejected and a FORMERR response
 * MUST be returned"); §6 itself names the address ones ("SHOULD return FORMERR").
 * Only called for a query that has the option, so the strings cost nothing on
 * the common path.
 */
function ecsProblem(msg: Uint8Array, at: number, length: number): string {
  if (length < 4) return `ECS option of ${length} octets (RFC 7871 §6: at least 4)`;
  const family = (msg[at]! << 8) | msg[at + 1]!;
  const source = msg[at + 2]!;
  const scope = msg[at + 3]!;
  // FAMILY 0 is no address family, but with SOURCE PREFIX-LENGTH 0 there is no address to be of one: it means what a
  // /0 of either family means (no client information; dig +subnet=0 sends FAMILY 1 /0). BIND's OPT parser accepts
  // it, so it is answered rather than refused; FAMILY 0 with a prefix is malformed.
  const maxSource = family === 1 ? 32 : family === 2 ? 128 : family === 0 ? 0 : -1;
  if (maxSource < 0) return `ECS FAMILY ${family} (RFC 7871 §6: 1 IPv4 or 2 IPv6)`;
  if (source > maxSource) return `ECS SOURCE PREFIX-LENGTH ${source} for FAMILY ${family}`;
  // §6: "In queries, it MUST be set to 0." A query with a scope is a client confusing query and response.
  if (scope !== 0) return `ECS SCOPE PREFIX-LENGTH ${scope} in a query (RFC 7871 §6: MUST be 0)`;
  // §6: ADDRESS is truncated to SOURCE PREFIX-LENGTH bits, padded with zero bits to the end of its last octet.
  const octets = (source + 7) >> 3;
  if (length - 4 !== octets) return `ECS ADDRESS of ${length - 4} octets for SOURCE PREFIX-LENGTH ${source} (RFC 7871 §6: ${octets})`;
  const spare = octets * 8 - source;
  if (spare > 0 && (msg[at + 4 + octets - 1]! & ((1 << spare) - 1)) !== 0) return `ECS ADDRESS has bits set beyond SOURCE PREFIX-LENGTH ${source} (RFC 7871 §6: MUST be zero)`;
  return '';
}

/** Per-process seed of qname hashes, so no one can aim names at one slot of the answer table. */
const QNAME_SEED = crypto.getRandomValues(new Uint32Array(1))[0]! | 0;

/**
 * RFC 1035 §3.1 / §4.1.2. Checks the uncompressed name at `offset` and
 * hashes it (view.qnameHash); the strings are made later, if asked for. A
 * question name has nothing before it to point at, so a compression pointer
 * here is malformed. Returns the offset past the name, or -1.
 */
function readQname(msg: Uint8Array, length: number, offset: number, view: QueryView): number {
  let pos = offset;
  let total = 1;
  let h = QNAME_SEED;
  for (;;) {
    if (pos >= length) return -1;
    const len = msg[pos]!;
    pos++;
    if (len === 0) break;
    if (len > 63) return -1; // pointers (0xC0) and the reserved 0x40/0x80 forms
    total += len + 1;
    if (total > 255 || pos + len > length) return -1;
    h = Math.imul(h ^ len, 0x01000193);
    for (let i = 0; i < len; i++) {
      const c = msg[pos + i]!;
      h = Math.imul(h ^ (c >= 65 && c <= 90 ? c + 32 : c), 0x01000193);
    }
    pos += len;
  }
  view.qnameWireLength = total;
  // 30 bits: a small integer to V8, never boxed.
  view.qnameHash = h & 0x3fffffff;
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
  view.ecsAt = 0;
  view.ecsLength = 0;
  view.ecsFamily = 0;
  view.ecsSource = 0;
  view.ecsMalformed = false;
  view.hasEdns = false;
  view.ednsVersion = 0;
  view.ednsUdpSize = 0;
  view.ednsDo = false;
  view.questionEnd = HEADER_SIZE;
  view.startMessage(msg);
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
      // Options other than COOKIE and ECS are not interpreted (unknown ones are ignored, RFC 6891 §6.1.2), but they must be well-formed.
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
        } else if (optCode === ECS_OPTION && !view.ecsMalformed) {
          // RFC 7871 does not say what two ECS options mean either (which subnet would a cache key the
          // answer by?), so, as with COOKIE, a second one makes the query malformed.
          const problem = view.ecsLength > 0 ? 'second ECS option' : ecsProblem(msg, opt + 4, optLen);
          if (problem !== '') {
            view.ecsMalformed = true;
            view.ecsLength = 0;
            view.ecsFamily = 0;
            view.ecsSource = 0;
            view.problem = problem;
          } else {
            view.ecsAt = opt + 4;
            view.ecsLength = optLen;
            view.ecsFamily = (msg[opt + 4]! << 8) | msg[opt + 5]!;
            view.ecsSource = msg[opt + 6]!;
          }
        }
        opt += 4 + optLen;
      }
    }
    pos += 10 + rdlength;
  }
  return QueryStatus.OK;
}
