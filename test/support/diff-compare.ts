/**
 * Wire-level differential comparison of two DNS servers (rrdns against Knot),
 * for the generative test (test/integration/diff-fuzz.test.ts) and
 * bench/fuzz-diff.ts. The fixed-corpus test (knot-diff.test.ts) compares dig
 * output; this module applies the same rules to raw replies, so thousands of
 * queries need no process per query:
 *
 *   - rcode and header flags (QR, AA, TC, RD echo, RA, AD, CD), opcode, ID echo;
 *   - the question echoed octet for octet (letter case kept: resolvers that use
 *     0x20 randomisation depend on it);
 *   - answer, authority and additional each as a sorted set of
 *     "owner ttl TYPE rdata" lines, owner and rdata names lower-cased
 *     (RFC 4343), so rotation order never matters;
 *   - OPT present or not, its version, DO bit and extended rcode.
 *
 * Normalisations (each one is a legitimate difference, not a bug; each
 * is applied to Knot's side only, so nothing rrdns sends is excused):
 *   - OPT's UDP payload size is the responder's own choice (RFC 6891 §6.2.3);
 *   - when both replies have TC=1, only header, question and OPT are compared:
 *     RFC 2181 §9 lets a truncated reply carry any prefix of RRsets (or none),
 *     and Knot and rrdns may cut at different places. The complete (TCP)
 *     answers are then compared instead (fields `tcp:*`);
 *   - Knot 3.2.6 writes some records twice (an MX/SRV target's addresses once
 *     per record naming it; a CNAME looping to itself once per hop): Knot's
 *     sections are compared without repeats (RFC 2181 §5), rrdns' are not;
 *   - Knot 3.2.6 predates RFC 9471: it may send a referral's in-domain glue
 *     only in part without TC. Its reply is then judged as TC=1, which is what
 *     RFC 9471 §3 requires (unless rrdns fitted all the glue itself);
 *   - optional additional data (RFC 1034 §4.3.2 step 6, RFC 2181 §9): when
 *     Knot's own UDP reply left additional records out, the ones kept are the
 *     responder's choice; rrdns' must then be a subset of its complete answer,
 *     and the complete answers must agree. Addresses Knot synthesises from a
 *     wildcard for an MX/SRV/NS target are optional too and left out when
 *     rrdns lacks them (`withoutSynthesisedExtras`);
 *   - ANY (RFC 8482 §4.1): a responder may answer with all RRsets or with a
 *     subset; rrdns sends one. When both reply NOERROR and rrdns' answer is a
 *     non-empty union of whole RRsets of Knot's answer, Knot's answer is
 *     narrowed to it (see `normaliseAny`). Knot 3.2.6 also sends a single
 *     RRset, and so far always the same one; if its pick ever differs from
 *     rrdns' (lowest type code) that is reported, and is legitimate.
 *
 * Anything else that differs is reported, with the complete (TCP) replies
 * when a UDP reply was cut, so a compression bug (rrdns' complete answer much
 * larger than Knot's) shows apart from a cut placed a few octets away.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { encodeLabels } from './rawdns.ts';

// ---------------------------------------------------------------------------
// Names in wire form

/** Presentation form of one label: '.', '\\', '"', '(', ')', ';', '$', '@', space and non-printables escaped (RFC 4343 §2.1). */
export function labelText(label: Buffer | string): string {
  const b = typeof label === 'string' ? Buffer.from(label, 'latin1') : label;
  let out = '';
  for (const c of b) {
    if (c === 0x2e || c === 0x5c || c === 0x22 || c === 0x28 || c === 0x29 || c === 0x3b || c === 0x24 || c === 0x40) out += `\\${String.fromCharCode(c)}`;
    else if (c <= 0x20 || c >= 0x7f) out += `\\${String(c).padStart(3, '0')}`;
    else out += String.fromCharCode(c);
  }
  return out;
}

/** Absolute presentation form of a list of raw labels ('.' for the root). */
export function namesText(labels: readonly string[]): string {
  return labels.length === 0 ? '.' : `${labels.map(labelText).join('.')}.`;
}

export class WireError extends Error {}

interface NameRead {
  labels: Buffer[];
  /** Offset just past the name at its original position. */
  end: number;
  compressed: boolean;
}

function readName(msg: Buffer, offset: number): NameRead {
  const labels: Buffer[] = [];
  let pos = offset;
  let end = -1;
  let jumps = 0;
  let total = 1;
  for (;;) {
    if (pos >= msg.length) throw new WireError(`name runs past the message at ${offset}`);
    const len = msg[pos]!;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.length) throw new WireError('truncated pointer');
      if (end < 0) end = pos + 2;
      const target = ((len & 0x3f) << 8) | msg[pos + 1]!;
      if (++jumps > 64 || target >= pos) throw new WireError(`bad compression pointer at ${pos}`);
      pos = target;
      continue;
    }
    if (len & 0xc0) throw new WireError(`bad label type 0x${len.toString(16)}`);
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    total += len + 1;
    if (total > 255) throw new WireError('name longer than 255 octets');
    labels.push(msg.subarray(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { labels, end, compressed: jumps > 0 };
}

const lowerText = (labels: Buffer[]) => (labels.length ? `${labels.map((l) => labelText(l)).join('.')}.` : '.').replace(/[A-Z]/g, (c) => c.toLowerCase());
const exactText = (labels: Buffer[]) => (labels.length ? `${labels.map((l) => labelText(l)).join('.')}.` : '.');

// ---------------------------------------------------------------------------
// Messages

export const TYPE_CODES: Record<string, number> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, DS: 43, ANY: 255, CAA: 257,
};
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE_CODES).map(([k, v]) => [v, k]));
export const typeName = (t: number) => TYPE_NAMES[t] ?? `TYPE${t}`;
export const typeCode = (t: string) => TYPE_CODES[t.toUpperCase()] ?? Number(/^TYPE(\d+)$/i.exec(t)?.[1] ?? NaN);

/** Types whose rdata names RFC 3597 §4 allows to be compressed (RFC 1035's own types). */
const COMPRESSIBLE = new Set([2, 5, 6, 12, 15]);
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

export interface Summary {
  rcode: string;
  flags: string;
  opcode: number;
  /** The question as written, case kept: "name TYPE CLASS". */
  question: string[];
  answer: string[];
  authority: string[];
  additional: string[];
  /** null without OPT; else "version N do|nodo" (UDP size left out on purpose, see header). */
  opt: string | null;
  /** Octets on the wire. */
  size: number;
  /** Protocol violations seen while parsing (e.g. a compressed SRV target, RFC 2782/3597 §4). */
  violations: string[];
}

/** rdata in a canonical text form: names decompressed and lower-cased, the rest as numbers or hex. */
function rdataText(msg: Buffer, type: number, start: number, len: number, violations: string[]): string {
  const end = start + len;
  const rd = msg.subarray(start, end);
  const name = (at: number) => {
    const n = readName(msg, at);
    if (n.compressed && !COMPRESSIBLE.has(type)) violations.push(`compressed name in ${typeName(type)} rdata (RFC 3597 §4)`);
    return n;
  };
  switch (type) {
    case 1:
      if (len !== 4) throw new WireError('A rdata not 4 octets');
      return [...rd].join('.');
    case 28:
      if (len !== 16) throw new WireError('AAAA rdata not 16 octets');
      return rd.toString('hex');
    case 2:
    case 5:
    case 12: {
      const n = name(start);
      if (n.end !== end) throw new WireError(`${typeName(type)} rdata length mismatch`);
      return lowerText(n.labels);
    }
    case 15: {
      const n = name(start + 2);
      if (n.end !== end) throw new WireError('MX rdata length mismatch');
      return `${rd.readUInt16BE(0)} ${lowerText(n.labels)}`;
    }
    case 33: {
      const n = name(start + 6);
      if (n.end !== end) throw new WireError('SRV rdata length mismatch');
      return `${rd.readUInt16BE(0)} ${rd.readUInt16BE(2)} ${rd.readUInt16BE(4)} ${lowerText(n.labels)}`;
    }
    case 6: {
      const m = name(start);
      const r = name(m.end);
      if (r.end + 20 !== end) throw new WireError('SOA rdata length mismatch');
      const nums = [0, 4, 8, 12, 16].map((o) => msg.readUInt32BE(r.end + o));
      return `${lowerText(m.labels)} ${lowerText(r.labels)} ${nums.join(' ')}`;
    }
    default:
      return `\\# ${len} ${rd.toString('hex')}`;
  }
}

/** Parses a reply into its comparable summary; throws WireError on a malformed message. */
export function summarise(msg: Buffer): Summary {
  if (msg.length < 12) throw new WireError(`reply of ${msg.length} octets`);
  const flagsWord = msg.readUInt16BE(2);
  const flags = [
    ['qr', 0x8000],
    ['aa', 0x0400],
    ['tc', 0x0200],
    ['rd', 0x0100],
    ['ra', 0x0080],
    ['ad', 0x0020],
    ['cd', 0x0010],
  ]
    .filter(([, bit]) => flagsWord & (bit as number))
    .map(([f]) => f)
    .join(' ');
  const counts = [4, 6, 8, 10].map((o) => msg.readUInt16BE(o));
  const violations: string[] = [];
  let pos = 12;
  const question: string[] = [];
  for (let i = 0; i < counts[0]!; i++) {
    const n = readName(msg, pos);
    if (n.end + 4 > msg.length) throw new WireError('question runs past the message');
    question.push(`${exactText(n.labels)} ${typeName(msg.readUInt16BE(n.end))} ${msg.readUInt16BE(n.end + 2)}`);
    pos = n.end + 4;
  }
  const sections: string[][] = [[], [], []];
  let opt: string | null = null;
  let extRcode = 0;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const n = readName(msg, pos);
      if (n.end + 10 > msg.length) throw new WireError('record header runs past the message');
      const type = msg.readUInt16BE(n.end);
      const cls = msg.readUInt16BE(n.end + 2);
      const ttl = msg.readUInt32BE(n.end + 4);
      const rdlen = msg.readUInt16BE(n.end + 8);
      const start = n.end + 10;
      if (start + rdlen > msg.length) throw new WireError('rdata runs past the message');
      if (type === 41) {
        if (s !== 2 || opt !== null) violations.push('OPT outside the additional section or twice');
        extRcode = ttl >>> 24;
        opt = `version ${(ttl >>> 16) & 0xff} ${ttl & 0x8000 ? 'do' : 'nodo'}`;
      } else {
        sections[s]!.push(`${lowerText(n.labels)} ${ttl} ${cls === 1 ? '' : `CLASS${cls} `}${typeName(type)} ${rdataText(msg, type, start, rdlen, violations)}`);
      }
      pos = start + rdlen;
    }
  }
  if (pos !== msg.length) violations.push(`${msg.length - pos} octets after the last record`);
  const rc = (extRcode << 4) | (msg[3]! & 0x0f);
  return {
    rcode: RCODES[rc] ?? `RCODE${rc}`,
    flags,
    opcode: (msg[2]! >> 3) & 0xf,
    question,
    answer: sections[0]!.sort(),
    authority: sections[1]!.sort(),
    additional: sections[2]!.sort(),
    opt,
    size: msg.length,
    violations,
  };
}

// ---------------------------------------------------------------------------
// Queries

export type Transport = 'udp' | 'tcp';

export interface FuzzQuery {
  /** Raw labels of the qname, with the letter case to send. */
  labels: string[];
  qtype: string;
  /** EDNS UDP payload size; null = no OPT. */
  edns: number | null;
  transport: Transport;
  /** RD bit to send (echoed back, RFC 1035 §4.1.1). */
  rd: boolean;
}

export function queryText(q: FuzzQuery): string {
  return `${namesText(q.labels)} ${q.qtype} ${q.transport.toUpperCase()} ${q.edns === null ? 'noedns' : `edns bufsize=${q.edns}`}${q.rd ? ' rd' : ' nord'}`;
}

/** `dig` command line that asks the same question (for replay by hand). */
export function digCommand(q: FuzzQuery, port: number | string): string {
  const opts = [q.transport === 'tcp' ? '+tcp' : '+notcp +ignore', q.edns === null ? '+noedns' : `+edns=0 +bufsize=${q.edns} +nocookie`, q.rd ? '+rec' : '+norec'];
  return `dig @127.0.0.1 -p ${port} '${namesText(q.labels)}' ${q.qtype} ${opts.join(' ')}`;
}

export function encodeQuery(q: FuzzQuery, id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header[2] = q.rd ? 1 : 0;
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(q.edns === null ? 0 : 1, 10);
  const tc = Buffer.alloc(4);
  tc.writeUInt16BE(typeCode(q.qtype), 0);
  tc.writeUInt16BE(1, 2);
  const parts = [header, encodeLabels(q.labels), tc];
  if (q.edns !== null) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(q.edns, 3);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

interface Pending {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One server's client: one UDP socket and one pipelined TCP connection,
 * replies matched by message ID, every wait bounded. IDs are unique among
 * queries in flight (a counter), so a late reply can never be taken for another's.
 */
export class DiffClient {
  private readonly udp: dgram.Socket;
  private tcp: net.Socket | undefined;
  private tcpBuf: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  readonly port: number;
  readonly host: string;

  constructor(port: number, host = '127.0.0.1') {
    this.port = port;
    this.host = host;
    this.udp = dgram.createSocket('udp4');
    this.udp.on('message', (m) => this.deliver(m));
    this.udp.on('error', () => {});
  }

  async open(): Promise<void> {
    await new Promise<void>((resolve) => this.udp.bind(0, '127.0.0.1', resolve));
    try {
      this.udp.setRecvBufferSize(4 * 1024 * 1024);
    } catch {
      // Capped by the kernel: fine, UDP queries are retried.
    }
  }

  private deliver(m: Buffer): void {
    if (m.length < 2) return;
    const p = this.pending.get(m.readUInt16BE(0));
    if (!p) return;
    this.pending.delete(m.readUInt16BE(0));
    clearTimeout(p.timer);
    p.resolve(m);
  }

  private tcpConn(): net.Socket {
    if (this.tcp && !this.tcp.destroyed) return this.tcp;
    const sock = net.connect({ port: this.port, host: this.host, noDelay: true });
    this.tcpBuf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      this.tcpBuf = this.tcpBuf.length ? Buffer.concat([this.tcpBuf, chunk]) : chunk;
      while (this.tcpBuf.length >= 2) {
        const n = this.tcpBuf.readUInt16BE(0);
        if (this.tcpBuf.length < 2 + n) break;
        this.deliver(Buffer.from(this.tcpBuf.subarray(2, 2 + n)));
        this.tcpBuf = this.tcpBuf.subarray(2 + n);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      if (this.tcp === sock) this.tcp = undefined;
    });
    this.tcp = sock;
    return sock;
  }

  private allocId(): number {
    for (let i = 0; i < 0x10000; i++) {
      const id = this.nextId;
      this.nextId = (this.nextId % 0xffff) + 1;
      if (!this.pending.has(id)) return id;
    }
    throw new Error('no free message ID');
  }

  private once(q: FuzzQuery, timeoutMs: number): Promise<Buffer> {
    const id = this.allocId();
    const wire = encodeQuery(q, id);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no ${q.transport} reply from port ${this.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (q.transport === 'udp') this.udp.send(wire, this.port, this.host);
      else {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(wire.length);
        this.tcpConn().write(Buffer.concat([len, wire]));
      }
    }).then((reply) => {
      if (reply.length < 12 || reply.readUInt16BE(0) !== id) throw new WireError('reply ID does not echo the query');
      return reply;
    });
  }

  /** Sends `q`, retrying a lost reply a bounded number of times. */
  async query(q: FuzzQuery, timeoutMs = 1500, tries = 3): Promise<Buffer> {
    let last: Error | undefined;
    for (let i = 0; i < tries; i++) {
      try {
        return await this.once(q, timeoutMs);
      } catch (e) {
        last = e as Error;
        if (e instanceof WireError) throw e;
        // A dropped TCP connection: start a fresh one for the retry.
        if (q.transport === 'tcp') this.tcp?.destroy();
      }
    }
    throw last!;
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('client closed'));
    }
    this.pending.clear();
    this.tcp?.destroy();
    this.udp.close();
  }
}

// ---------------------------------------------------------------------------
// Comparison

export type Side = Summary | { error: string };

const isError = (s: Side): s is { error: string } => 'error' in s;

export function trySummarise(msg: Buffer | Error): Side {
  if (msg instanceof Error) return { error: msg.message };
  try {
    return summarise(msg);
  } catch (e) {
    return { error: `malformed reply: ${(e as Error).message}` };
  }
}

/** "owner ttl TYPE" of a set line: what makes records one RRset. */
const rrsetKey = (line: string) => line.split(' ').slice(0, 3).join(' ').replace(/ \d+ /, ' ');

/**
 * RFC 8482 §4.1/§4.2: a responder may answer ANY with only some of the
 * RRsets. If rrdns' answer is a non-empty union of whole RRsets of Knot's
 * answer, Knot's answer (and the additional records it adds for the extra
 * RRsets, RFC 1034 §3.6) is narrowed to what rrdns sent before comparing.
 */
function normaliseAny(q: FuzzQuery, ours: Summary, theirs: Summary): Summary {
  if (q.qtype !== 'ANY' || ours.rcode !== 'NOERROR' || theirs.rcode !== 'NOERROR' || ours.answer.length === 0) return theirs;
  if (!ours.answer.every((l) => theirs.answer.includes(l))) return theirs;
  const keys = new Set(ours.answer.map(rrsetKey));
  const whole = theirs.answer.filter((l) => keys.has(rrsetKey(l)));
  if (whole.length !== ours.answer.length) return theirs; // a partial RRset is a real difference
  // Additional data belongs to the RRsets that were sent; what Knot adds for the others is not comparable.
  const additional = theirs.additional.filter((l) => ours.additional.includes(l));
  return { ...theirs, answer: whole, additional };
}

export interface Difference {
  /** Short stable name of what differs, for grouping ("answer", "tc", "rcode+authority", ...). */
  fields: string[];
  /** rrdns violates the protocol regardless of Knot (e.g. compressed SRV target). */
  violations: string[];
  /** A normalisation that was applied, for the report. */
  note?: string;
}

/**
 * Compares rrdns' reply (`ours`) with Knot's (`theirs`) for query `q`;
 * undefined when they agree after the documented normalisations.
 */
const hasFlag = (s: Summary, f: string) => s.flags.split(' ').includes(f);
const withFlag = (s: Summary, f: string): Summary => (hasFlag(s, f) ? s : { ...s, flags: `${s.flags} ${f}`.trim() });
const isSubset = (a: readonly string[], b: readonly string[]) => a.every((l) => b.includes(l));
const ownerOf = (line: string) => line.slice(0, line.indexOf(' '));
const atOrBelow = (name: string, parent: string) => name === parent || name.endsWith(`.${parent}`) || parent === '.';

/**
 * The cut of a referral: the NS RRset in authority, with nothing in answer
 * but the CNAMEs that led there (RFC 1034 §4.3.2 step 3.b; AA is set only
 * when a CNAME came first).
 */
function referralCut(s: Summary): string | undefined {
  if (s.rcode !== 'NOERROR' || s.answer.some((l) => l.split(' ')[2] !== 'CNAME')) return undefined;
  if (s.authority.some((l) => l.split(' ')[2] === 'SOA')) return undefined;
  const ns = s.authority.find((l) => l.split(' ')[2] === 'NS');
  return ns ? ownerOf(ns) : undefined;
}

/** In-domain glue (RFC 9471 §2.1): addresses in additional whose owner is at or below the cut. */
function inDomainGlue(s: Summary, cut: string): string[] {
  return s.additional.filter((l) => atOrBelow(ownerOf(l), cut) && ['A', 'AAAA'].includes(l.split(' ')[2]!));
}

/**
 * Knot 3.2 writes some records twice: the addresses of an MX/SRV/NS target
 * once per record naming it, and a CNAME that loops to itself once per hop.
 * A record appears once in an RRset (RFC 2181 §5), so Knot's sections are
 * compared without repeats; rrdns' are not de-duplicated (a repeat from
 * rrdns is reported).
 */
function dedupe(s: Summary): Summary {
  const uniq = (a: string[]) => [...new Set(a)];
  return { ...s, answer: uniq(s.answer), authority: uniq(s.authority), additional: uniq(s.additional) };
}

/** The untruncated (TCP) forms of both replies, fetched when a UDP reply was cut or differs. */
export interface FullForms {
  ours: Side;
  theirs: Side;
}

/** What the comparison knows about the served zones. */
export interface ZoneFacts {
  /** Every owner name written in a served zone, lower case with the trailing dot. */
  owners: ReadonlySet<string>;
}

export function zoneFacts(zones: readonly { text: string }[]): ZoneFacts {
  const owners = new Set<string>();
  for (const z of zones) for (const line of z.text.split('\n')) if (line.trim()) owners.add(line.slice(0, line.search(/\s|$/)).toLowerCase());
  return { owners };
}

/**
 * Knot adds the addresses a wildcard synthesises for an MX/SRV/NS target
 * (e.g. SRV target c.missing.z with `*.z A`) to the additional section;
 * rrdns adds only addresses of names that exist. Additional data is optional
 * ("attempt to add other RRs which may be useful", RFC 1034 §4.3.2 step 6;
 * RFC 2181 §9), so Knot's synthesised additional records that rrdns lacks are
 * left out. In long answers Knot 3.2.6 writes some of them under the
 * wildcard's own owner (`*.z A`, for MX targets covered by `*.z`): an owner
 * no additional lookup can produce unless a target is literally `*.z`, in
 * which case rrdns has the record too and it is kept. Records rrdns adds
 * under a name that does not exist are still compared (that is how glue
 * written under the wrong owner shows).
 */
function withoutSynthesisedExtras(theirs: Summary, ours: Summary, facts: ZoneFacts | undefined): Summary {
  if (!facts) return theirs;
  const additional = theirs.additional.filter((l) => ours.additional.includes(l) || (facts.owners.has(ownerOf(l)) && !ownerOf(l).startsWith('*.')));
  return additional.length === theirs.additional.length ? theirs : { ...theirs, additional };
}

/**
 * Compares rrdns' reply (`ours`) with Knot's (`theirs`) for query `q`;
 * undefined when they agree after the documented normalisations. `full`
 * (both replies over TCP) lets truncation be judged: what a cut UDP reply
 * dropped, and whether the complete answers agree.
 */
export function compare(q: FuzzQuery, oursSide: Side, theirsSide: Side, full?: FullForms, facts?: ZoneFacts): Difference | undefined {
  if (isError(oursSide) || isError(theirsSide)) {
    if (isError(oursSide) && isError(theirsSide)) return undefined; // neither answered: nothing to compare
    return { fields: [isError(oursSide) ? 'rrdns-no-reply' : 'knot-no-reply'], violations: [] };
  }
  const ours = oursSide;
  let theirs = withoutSynthesisedExtras(normaliseAny(q, ours, dedupe(theirsSide)), ours, facts);
  const oursFull = full && !isError(full.ours) ? full.ours : undefined;
  const theirsFull =
    full && !isError(full.theirs) ? withoutSynthesisedExtras(normaliseAny(q, oursFull ?? ours, dedupe(full.theirs)), oursFull ?? ours, facts) : undefined;
  const fields: string[] = [];
  const check = (name: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) fields.push(name);
  };

  // Knot 3.2.6 predates RFC 9471: when the in-domain glue of a referral does not
  // all fit, it sends what fits without TC. RFC 9471 §3 requires TC=1 then, so
  // Knot's reply is judged as if it had set TC (rrdns must set it).
  const cut = referralCut(theirs);
  let knotLacksTc = false;
  // (If rrdns' UDP reply did carry every in-domain glue record, it needed no TC: nothing is forced then.)
  if (
    cut &&
    theirsFull &&
    !hasFlag(theirs, 'tc') &&
    !isSubset(inDomainGlue(theirsFull, cut), theirs.additional) &&
    !(!hasFlag(ours, 'tc') && isSubset(inDomainGlue(theirsFull, cut), ours.additional))
  ) {
    theirs = withFlag(theirs, 'tc');
    knotLacksTc = true;
  }

  // Compression is optional (RFC 1035 §4.1.4), so the same records can take fewer octets in
  // rrdns' reply than in Knot's. When Knot had to cut its UDP reply but rrdns' carries the
  // complete answer without TC, equal to Knot's own complete (TCP) answer, rrdns needed no
  // TC: Knot's complete answer is what its reply is compared as.
  if (
    theirsFull &&
    hasFlag(theirs, 'tc') &&
    !hasFlag(ours, 'tc') &&
    sameRecords(ours, theirsFull)
  ) {
    theirs = { ...theirs, flags: theirs.flags.split(' ').filter((f) => f !== 'tc').join(' '), answer: theirsFull.answer, authority: theirsFull.authority, additional: theirsFull.additional };
  }

  check('rcode', ours.rcode, theirs.rcode);
  for (const f of ['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd']) check(f, hasFlag(ours, f), hasFlag(theirs, f));
  check('opcode', ours.opcode, theirs.opcode);
  check('question', ours.question, theirs.question);
  check('opt', ours.opt, theirs.opt);
  const bothTruncated = hasFlag(ours, 'tc') && hasFlag(theirs, 'tc');
  if (!bothTruncated) {
    check('answer', ours.answer, theirs.answer);
    check('authority', ours.authority, theirs.authority);
    // Additional records other than in-domain glue may be left out without TC
    // (RFC 2181 §9, RFC 9471 §3): when Knot's own UDP reply left some out, which
    // ones a responder keeps is its choice. rrdns' kept records must then be a
    // subset of its complete answer (checked below against Knot's complete one).
    const knotTrimmed = theirsFull !== undefined && !isSubset(theirsFull.additional, theirs.additional);
    if (knotTrimmed && oursFull) {
      if (!isSubset(ours.additional, oursFull.additional)) fields.push('additional-not-in-full-answer');
    } else check('additional', ours.additional, theirs.additional);
  }
  // The complete answers must agree however each side cut its UDP reply.
  if (oursFull && theirsFull) {
    check('tcp:rcode', oursFull.rcode, theirsFull.rcode);
    check('tcp:answer', oursFull.answer, theirsFull.answer);
    check('tcp:authority', oursFull.authority, theirsFull.authority);
    check('tcp:additional', oursFull.additional, theirsFull.additional);
  }
  const violations = [...ours.violations, ...(oursFull?.violations ?? [])];
  if (fields.length === 0 && violations.length === 0) return undefined;
  if (violations.length) fields.push('violation');
  return { fields, violations, ...(knotLacksTc ? { note: 'Knot 3.2 sent partial in-domain glue without TC; judged as TC=1 (RFC 9471)' } : {}) };
}

/** The same records in every section (sets, as the summaries hold them sorted). */
function sameRecords(a: Summary, b: Summary): boolean {
  const eq = (x: readonly string[], y: readonly string[]) => JSON.stringify(x) === JSON.stringify(y);
  return eq(a.answer, b.answer) && eq(a.authority, b.authority) && eq(a.additional, b.additional);
}

/** Lines that show one side's reply, for reports. */
export function sideText(s: Side): string {
  if (isError(s)) return `  (${s.error})`;
  const lines = [`  ${s.rcode} flags: ${s.flags} size: ${s.size} opt: ${s.opt ?? 'none'}`];
  for (const [title, sec] of [
    ['answer', s.answer],
    ['authority', s.authority],
    ['additional', s.additional],
  ] as const) {
    if (sec.length) lines.push(`  ;; ${title}`, ...sec.map((l) => `    ${l}`));
  }
  if (s.violations.length) lines.push(`  ;; violations: ${s.violations.join('; ')}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Running a batch: many zones in ONE Knot and ONE rrdns

export interface ServedZone {
  /** Apex as labels. */
  origin: string[];
  text: string;
}

/** One difference, with everything needed to replay it. */
export interface DiffCase {
  /** The zones involved (the query's zone, its parent and its children), as served. */
  zones: { origin: string; text: string }[];
  query: FuzzQuery;
  /**
   * Queries asked just before it with the same qtype in the same zones: an
   * answer cached for one of them may be what came back (shared bodies), so
   * a replay asks them first, in order.
   */
  earlier: FuzzQuery[];
  /** Query in presentation form. */
  text: string;
  diff: Difference;
  rrdns: Side;
  knot: Side;
  /** Both replies over TCP (complete), when the UDP ones were cut or differed: tells compression apart from cut placement. */
  full?: FullForms;
}

const originKey = (labels: readonly string[]) => namesText(labels.map((l) => l.toLowerCase()));

/** The zones a query for `labels` involves: the closest enclosing zone, and zones above/below it in the batch. */
export function zonesFor(labels: readonly string[], zones: readonly ServedZone[]): ServedZone[] {
  const key = originKey(labels);
  const owning = zones
    .filter((z) => key === originKey(z.origin) || key.endsWith(`.${originKey(z.origin)}`))
    .sort((a, b) => b.origin.length - a.origin.length)[0];
  if (!owning) return [];
  const ok = originKey(owning.origin);
  return zones.filter((z) => {
    const zk = originKey(z.origin);
    return zk === ok || zk.endsWith(`.${ok}`) || ok.endsWith(`.${zk}`);
  });
}

export const zoneFileName = (origin: readonly string[]) => `${namesText(origin).replace(/\.$/, '')}.zone`;

export interface Servers {
  rrdns: DiffClient;
  knot: DiffClient;
  rrdnsPort: number;
  knotPort: number;
  close(): Promise<void>;
}

/** Starts one Knot and one rrdns serving every zone of the batch. */
export async function startServers(zones: readonly ServedZone[]): Promise<Servers> {
  const { startKnot } = await import('./knot.ts');
  const { startTestServer } = await import('./server.ts');
  const files = Object.fromEntries(zones.map((z) => [zoneFileName(z.origin), z.text]));
  const [knot, rrdns] = await Promise.all([
    startKnot({ zones: zones.map((z) => ({ name: namesText(z.origin), text: z.text })) }),
    startTestServer(files),
  ]);
  const a = new DiffClient(rrdns.port);
  const b = new DiffClient(knot.port);
  await Promise.all([a.open(), b.open()]);
  return {
    rrdns: a,
    knot: b,
    rrdnsPort: rrdns.port,
    knotPort: knot.port,
    async close() {
      a.close();
      b.close();
      await Promise.allSettled([knot.close(), rrdns.close()]);
    },
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** How many earlier same-qtype queries a case keeps for its replay. */
const EARLIER = 8;

const ask = (c: DiffClient, q: FuzzQuery) => c.query(q).then(trySummarise, (e: Error) => trySummarise(e));

/** Asks both servers every query; returns the differences (in query order). */
export async function compareAll(servers: Servers, zones: readonly ServedZone[], queries: readonly FuzzQuery[], concurrency = 16): Promise<DiffCase[]> {
  const found: Array<DiffCase | undefined> = new Array(queries.length);
  const facts = zoneFacts(zones);
  await pool(queries, concurrency, async (q, i) => {
    const [ours, theirs] = await Promise.all([ask(servers.rrdns, q), ask(servers.knot, q)]);
    let diff = compare(q, ours, theirs, undefined, facts);
    const truncated = [ours, theirs].some((s) => !isError(s) && hasFlag(s, 'tc'));
    let full: FullForms | undefined;
    if (q.transport === 'udp' && (diff || truncated)) {
      // Judge truncation against the complete answers (and compare those too).
      const tcp = { ...q, transport: 'tcp' as const };
      const [a, b] = await Promise.all([ask(servers.rrdns, tcp), ask(servers.knot, tcp)]);
      full = { ours: a, theirs: b };
      diff = compare(q, ours, theirs, full, facts);
    }
    if (!diff) return;
    const family = zonesFor(q.labels, zones);
    const earlier = queries
      .slice(0, i)
      .filter((e) => e.qtype === q.qtype && zonesFor(e.labels, family).length > 0)
      .slice(-EARLIER);
    const c: DiffCase = {
      zones: family.map((z) => ({ origin: namesText(z.origin), text: z.text })),
      query: q,
      earlier,
      text: queryText(q),
      diff,
      rrdns: ours,
      knot: theirs,
    };
    if (full) c.full = full;
    found[i] = c;
  });
  return found.filter((c): c is DiffCase => c !== undefined);
}

/**
 * A class name for grouping differences: what differs, and the kind of
 * query (qtype, transport/bufsize when TC is involved).
 */
export function classify(c: DiffCase): string {
  // A field that differs over UDP and again in the complete (TCP) answer is one difference.
  const f = c.diff.fields.filter((x) => !(x.startsWith('tcp:') && c.diff.fields.includes(x.slice(4))));
  const ours = 'rcode' in c.rrdns ? c.rrdns : undefined;
  const theirs = 'rcode' in c.knot ? c.knot : undefined;
  const rc = ours && theirs && ours.rcode !== theirs.rcode ? ` rrdns ${ours.rcode} knot ${theirs.rcode}` : '';
  const tc = f.includes('tc') && ours ? ` (TC by ${ours.flags.includes('tc') ? 'rrdns' : 'knot'})` : '';
  const viol = c.diff.violations.length ? ` [${[...new Set(c.diff.violations)].join('; ')}]` : '';
  // For a section: '-' rrdns lacks records Knot has, '+' rrdns has records Knot lacks.
  const mark = (name: string) => {
    if (!ours || !theirs || !['answer', 'authority', 'additional'].includes(name)) return name;
    const a = ours[name as 'answer'];
    const b = theirs[name as 'answer'];
    return `${name}${b.some((l) => !a.includes(l)) ? '-' : ''}${a.some((l) => !b.includes(l)) ? '+' : ''}`;
  };
  const theirsFull = c.full && 'rcode' in c.full.theirs ? c.full.theirs : undefined;
  const kind = theirsFull ? shape(theirsFull) : theirs ? shape(theirs) : 'no reply';
  const special = ['ANY', 'DS', 'CNAME'].includes(c.query.qtype) && kind !== 'referral' ? ` qtype=${c.query.qtype}` : '';
  return `${f.map(mark).join(' ')} in ${kind}${special}${rc}${tc}${viol}`;
}

/** What kind of answer Knot gave: referral, NXDOMAIN, NODATA, CNAME answer, plain answer. */
function shape(s: Summary): string {
  if (s.rcode !== 'NOERROR') return s.rcode;
  const aa = s.flags.split(' ').includes('aa');
  if (!aa && s.authority.some((l) => l.split(' ')[2] === 'NS')) return s.answer.length ? 'cname-to-referral' : 'referral';
  if (s.answer.length === 0) return 'nodata';
  return s.answer.some((l) => l.split(' ')[2] === 'CNAME') ? 'cname-answer' : 'answer';
}

/** A replayable report of one case: zone texts, query, dig line, both replies. */
export function caseText(c: DiffCase, ports?: { rrdns: number; knot: number }): string {
  const lines = [`--- ${classify(c)}`, `query: ${c.text}`];
  if (c.earlier.length) lines.push(`asked after (same qtype, same zone; a cached answer may be reused): ${c.earlier.map((e) => namesText(e.labels)).join(' ')}`);
  if (ports) lines.push(`  rrdns: ${digCommand(c.query, ports.rrdns)}`, `  knot:  ${digCommand(c.query, ports.knot)}`);
  for (const z of c.zones) lines.push(`zone ${z.origin}:`, ...z.text.trimEnd().split('\n').map((l) => `  ${l}`));
  lines.push('rrdns:', sideText(c.rrdns), 'knot:', sideText(c.knot));
  if (c.diff.note) lines.push(`note: ${c.diff.note}`);
  if (c.full) {
    const size = (s: Side) => (isError(s) ? s.error : `${s.size} octets`);
    lines.push(`complete (TCP) replies: rrdns ${size(c.full.ours)}, knot ${size(c.full.theirs)}`);
    if (c.diff.fields.some((f) => f.startsWith('tcp:'))) lines.push('rrdns over TCP:', sideText(c.full.ours), 'knot over TCP:', sideText(c.full.theirs));
  }
  return lines.join('\n');
}

/** Differences grouped by class, largest class first. */
export function groupCases(cases: readonly DiffCase[]): Array<[string, DiffCase[]]> {
  const groups = new Map<string, DiffCase[]>();
  for (const c of cases) {
    const k = classify(c);
    const g = groups.get(k) ?? [];
    g.push(c);
    groups.set(k, g);
  }
  return [...groups.entries()].sort((a, b) => b[1].length - a[1].length);
}

// ---------------------------------------------------------------------------
// Replay and shrinking

export interface ReplayCase {
  zones: { origin: string; text: string }[];
  query: FuzzQuery;
  earlier?: FuzzQuery[];
}

const zonesOf = (c: ReplayCase): ServedZone[] => c.zones.map((z) => ({ origin: z.origin === '.' ? [] : z.origin.replace(/\.$/, '').split('.'), text: z.text }));

/**
 * Serves the case's zones from fresh servers, asks its earlier queries one by
 * one and then its query; the difference found for the query (if any).
 */
export async function replayCase(c: ReplayCase): Promise<{ found: DiffCase | undefined; ports: { rrdns: number; knot: number } }> {
  const zones = zonesOf(c);
  const servers = await startServers(zones);
  try {
    const queries = [...(c.earlier ?? []), c.query];
    const cases = await compareAll(servers, zones, queries, 1);
    const found = cases.find((x) => x.query === c.query);
    return { found, ports: { rrdns: servers.rrdnsPort, knot: servers.knotPort } };
  } finally {
    await servers.close();
  }
}

/** The apex SOA and NS lines: both servers refuse a zone without them. */
const mandatory = (origin: string, line: string) => {
  const [owner, , , type] = line.split(/\s+/);
  return owner?.toLowerCase() === origin.toLowerCase() && (type === 'SOA' || type === 'NS');
};

/**
 * Greedy delta debugging: drops chunks of zone lines (and earlier queries)
 * while the same class of difference still shows, halving the chunk size
 * down to one line. Bounded by `maxAttempts` server starts and `maxMs`.
 */
export async function shrinkCase(c: DiffCase, opts: { maxAttempts?: number; maxMs?: number; log?: (s: string) => void } = {}): Promise<DiffCase> {
  const want = classify(c);
  const deadline = Date.now() + (opts.maxMs ?? 120_000);
  let attempts = opts.maxAttempts ?? 300;
  let best: DiffCase = c;
  const tryCase = async (cand: ReplayCase): Promise<DiffCase | undefined> => {
    if (attempts-- <= 0 || Date.now() > deadline) return undefined;
    try {
      const { found } = await replayCase(cand);
      return found && classify(found) === want ? found : undefined;
    } catch {
      return undefined; // a zone either server refuses: not a smaller case
    }
  };
  // Items that may go: every non-mandatory zone line, then each earlier query.
  type Item = { zone: number; line: string } | { earlier: FuzzQuery };
  const itemsOf = (x: ReplayCase): Item[] => [
    ...x.zones.flatMap((z, zi) => z.text.split('\n').filter((l) => l.trim() && !mandatory(z.origin, l)).map((line) => ({ zone: zi, line }))),
    ...(x.earlier ?? []).map((e) => ({ earlier: e })),
  ];
  const build = (x: ReplayCase, keep: Item[]): ReplayCase => ({
    zones: x.zones.map((z, zi) => ({
      origin: z.origin,
      text: `${z.text
        .split('\n')
        .filter((l) => l.trim() && (mandatory(z.origin, l) || keep.some((k) => 'line' in k && k.zone === zi && k.line === l)))
        .join('\n')}\n`,
    })),
    query: x.query,
    earlier: keep.filter((k): k is { earlier: FuzzQuery } => 'earlier' in k).map((k) => k.earlier),
  });
  // The replay must reproduce at all (a case that depends on a query not kept in `earlier` may not).
  const first = await tryCase(c);
  if (!first) return c;
  best = first;
  let items = itemsOf(c);
  let base: ReplayCase = c;
  for (let chunk = Math.max(1, Math.floor(items.length / 2)); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let start = 0; start < items.length; ) {
      const keep = [...items.slice(0, start), ...items.slice(start + chunk)];
      const cand = build(base, keep);
      const found = await tryCase(cand);
      if (found) {
        best = found;
        base = cand;
        items = keep;
        opts.log?.(`  shrunk to ${items.length} removable items`);
      } else start += chunk;
      if (attempts <= 0 || Date.now() > deadline) return best;
    }
  }
  return best;
}
