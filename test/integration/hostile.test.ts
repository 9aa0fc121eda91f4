/**
 * Hostile input over UDP. Every attack is followed by a normal query that must
 * still get a full, correct answer, and every reply the server does send must
 * be a well-formed response (dns2 parses it cleanly, QR=1, the query's ID and
 * opcode, the question echoed byte for byte). A server log at error level is
 * captured: the pipeline must never throw, whatever the packet.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { createLogger } from '../../src/observability/log.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import {
  ednsOption,
  encodeHeader,
  encodeName,
  encodeOpt,
  parseHeader,
  prng,
  rawQuery,
  typeClass,
  UdpPeer,
} from '../support/rawdns.ts';

const ZONE = `origin: example.test
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 60 }
records:
  "@": { NS: [ns1] }
  ns1: { A: 127.0.0.1 }
  www: { A: [127.0.0.10, 127.0.0.11, 127.0.0.12] }
`;
const WWW = ['127.0.0.10', '127.0.0.11', '127.0.0.12'];

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
const TYPE = { A: 1, NS: 2, SOA: 6, TXT: 16, OPT: 41, AXFR: 252, ANY: 255 } as const;
const CLASS = { IN: 1, CH: 3 } as const;

let t: TestServer;
let port: number;
let peer: UdpPeer;
/** Lines the server logged at error level (e.g. "transport error" when the handler threw). */
const serverErrors: string[] = [];

beforeAll(async () => {
  const logger = createLogger('error', { write: (line: string) => void serverErrors.push(line) });
  t = await startTestServer(
    { 'example.test.yaml': ZONE },
    { tcp: { maxConnections: 16, idleTimeoutMs: 1000, maxPendingAnswers: 8, maxQueuedBytes: 65536 } },
    logger,
  );
  port = t.port;
  peer = await UdpPeer.open();
});

afterAll(async () => {
  await peer?.close();
  await t?.close();
});

afterEach(() => {
  expect(serverErrors, 'the server logged errors (a handler threw?)').toEqual([]);
});

// ---------------------------------------------------------------------------
// Checks shared by every test

type Parsed = ReturnType<typeof Packet.parse>;

/** Octets of the (uncompressed) question starting at offset 12, or -1. */
function questionLength(raw: Buffer): number {
  let pos = 12;
  while (pos < raw.length) {
    const len = raw[pos]!;
    if (len === 0) return pos + 1 + 4 <= raw.length ? pos + 1 + 4 - 12 : -1;
    if (len > 63) return -1;
    pos += 1 + len;
  }
  return -1;
}

/**
 * What must hold for any reply to `query`: dns2 parses it without a single
 * decode error, it is a response with the same ID and opcode, no RA, at most
 * one question and that one is the query's, byte for byte, and it fits the
 * UDP size the query allowed.
 */
function checkReply(query: Buffer, raw: Buffer): Parsed {
  let parsed: Parsed;
  expect(() => (parsed = Packet.parse(raw)), 'dns2 parses the reply').not.toThrow();
  parsed = parsed!;
  expect(parsed.errors.map((e) => e.message), 'dns2 decode errors').toEqual([]);
  const h = parseHeader(raw);
  const q = parseHeader(query);
  expect(h.qr, 'QR').toBe(true);
  expect(h.id, 'ID').toBe(q.id);
  expect(h.opcode, 'opcode echoed').toBe(q.opcode);
  expect(h.ra, 'RA').toBe(false);
  expect(h.qdcount).toBeLessThanOrEqual(1);
  if (h.qdcount === 1) {
    const qlen = questionLength(raw);
    expect(qlen).toBeGreaterThan(0);
    expect(raw.subarray(12, 12 + qlen).equals(query.subarray(12, 12 + qlen)), 'question echoed byte for byte').toBe(true);
  }
  const hasOpt = parsed.additionals.some((r) => r.type === TYPE.OPT);
  expect(raw.length).toBeLessThanOrEqual(hasOpt ? 1232 : 512);
  // 9 (NOTAUTH) answers a NOTIFY: rrdns is a primary only.
  expect([0, 1, 3, 4, 5, 9, 16]).toContain(parsed.header.rcode);
  return parsed;
}

let nextSentinelId = 0xc000;

/**
 * Sends a normal query for www.example.test A and waits for its answer, which
 * must be NOERROR, AA, with the three addresses. Returns every datagram that
 * arrived before it (replies to whatever was sent earlier).
 */
async function expectHealthy(): Promise<Buffer[]> {
  for (let attempt = 0; ; attempt++) {
    const id = nextSentinelId++;
    const query = rawQuery('www.example.test', { id });
    await peer.send(query, port);
    let got: Buffer[];
    try {
      got = await peer.until((m) => m.readUInt16BE(0) === id, 3000, `the answer to the check query ${id}`);
    } catch (e) {
      // A lost datagram is possible in theory even on loopback; a dead server fails every retry.
      if (attempt < 2) continue;
      throw e;
    }
    const answer = got.pop()!;
    const parsed = checkReply(query, answer);
    expect(parsed.header.rcode).toBe(RCODE.NOERROR);
    expect(parsed.header.aa).toBe(1);
    expect(parsed.answers).toHaveLength(3);
    expect(parsed.answers.map((a) => (a as unknown as { address: string }).address).sort()).toEqual(WWW);
    // Replies to an earlier, abandoned check query are not the attack's.
    return got.filter((m) => m.length < 12 || m.readUInt16BE(0) < 0xc000 || m.readUInt16BE(0) >= nextSentinelId);
  }
}

// ---------------------------------------------------------------------------
// Table of single attacks

const ID = 0x4141;
const wwwQuestion = Buffer.concat([encodeName('www.example.test'), typeClass(TYPE.A, CLASS.IN)]);
const valid = rawQuery('www.example.test', { id: ID });

/** A record in wire form: name, type, class, TTL, RDLENGTH, RDATA. */
function rr(name: Buffer, type: number, rdata: Buffer, rdlength = rdata.length): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(CLASS.IN, 2);
  fixed.writeUInt32BE(60, 4);
  fixed.writeUInt16BE(rdlength, 8);
  return Buffer.concat([name, fixed, rdata]);
}

const label = (n: number, ch = 'a') => ch.repeat(n);

/** A compression pointer (RFC 1035 §4.1.4) to `offset`. */
const pointer = (offset: number) => Buffer.from([0xc0 | (offset >> 8), offset & 0xff]);

/** Offset just past header + the www question: where the first record starts. */
const RR_START = 12 + wwwQuestion.length;

interface Expect {
  /** No reply at all: checked by the next query's answer being the only datagram. */
  noReply?: true;
  /** Exact rcode (dns2's merged 12-bit value). */
  rcode?: number;
  /** Any of these rcodes is acceptable. */
  rcodeIn?: readonly number[];
  /** Expected QDCOUNT of the reply. */
  qdcount?: number;
}

interface Attack {
  name: string;
  packet: Buffer;
  expect: Expect;
}

const attacks: Attack[] = [
  { name: 'empty datagram', packet: Buffer.alloc(0), expect: { noReply: true } },
  ...Array.from({ length: 11 }, (_, i): Attack => ({
    name: `${i + 1}-byte packet (truncated header)`,
    packet: Buffer.from(valid.subarray(0, i + 1)),
    expect: { noReply: true },
  })),
  { name: 'header only, qdcount 1 and no question', packet: encodeHeader({ id: ID, qdcount: 1 }), expect: { rcode: RCODE.FORMERR, qdcount: 0 } },
  { name: 'qdcount 0', packet: encodeHeader({ id: ID, qdcount: 0 }), expect: { rcode: RCODE.FORMERR, qdcount: 0 } },
  {
    name: 'qdcount 2',
    packet: Buffer.concat([encodeHeader({ id: ID, qdcount: 2 }), wwwQuestion, wwwQuestion]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'qdcount 65535 with a one-question body',
    packet: Buffer.concat([encodeHeader({ id: ID, qdcount: 65535 }), wwwQuestion]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'label length 64',
    packet: Buffer.concat([encodeHeader({ id: ID }), Buffer.from([64]), Buffer.from(label(64)), Buffer.from([0]), typeClass(1, 1)]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'label running past the end of the packet',
    packet: Buffer.concat([encodeHeader({ id: ID }), Buffer.from([20]), Buffer.from('abc')]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'question without QTYPE/QCLASS',
    packet: Buffer.concat([encodeHeader({ id: ID }), encodeName('www.example.test')]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'compression pointer as the question name (to itself)',
    packet: Buffer.concat([encodeHeader({ id: ID }), pointer(12), typeClass(1, 1)]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'compression pointer after a label in the question',
    packet: Buffer.concat([encodeHeader({ id: ID }), Buffer.from([3]), Buffer.from('www'), pointer(12), typeClass(1, 1)]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'reserved label type 0x40 in the question',
    packet: Buffer.concat([encodeHeader({ id: ID }), Buffer.from([0x41, 0x00]), typeClass(1, 1)]),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'pointer loop in an additional record (name points at itself)',
    packet: Buffer.concat([encodeHeader({ id: ID, arcount: 1 }), wwwQuestion, rr(pointer(RR_START), TYPE.A, Buffer.from([127, 0, 0, 1]))]),
    // Records other than OPT need not be decoded; a server that does must not loop.
    expect: { rcodeIn: [RCODE.NOERROR, RCODE.FORMERR] },
  },
  {
    name: 'two-pointer loop in the answer section of a query',
    packet: Buffer.concat([
      encodeHeader({ id: ID, ancount: 2 }),
      wwwQuestion,
      rr(pointer(RR_START + 16), TYPE.A, Buffer.from([127, 0, 0, 1])),
      rr(pointer(RR_START), TYPE.A, Buffer.from([127, 0, 0, 1])),
    ]),
    expect: { rcodeIn: [RCODE.NOERROR, RCODE.FORMERR] },
  },
  {
    name: 'pointer past the end of the message in an additional record',
    packet: Buffer.concat([encodeHeader({ id: ID, arcount: 1 }), wwwQuestion, rr(pointer(0x3fff), TYPE.A, Buffer.from([127, 0, 0, 1]))]),
    expect: { rcodeIn: [RCODE.NOERROR, RCODE.FORMERR] },
  },
  {
    name: 'OPT owned by a compression pointer loop',
    packet: Buffer.concat([encodeHeader({ id: ID, arcount: 1 }), wwwQuestion, encodeOpt({ owner: pointer(RR_START) })]),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'name of exactly 255 octets outside the zone (accepted, refused)',
    packet: rawQuery([label(63), label(63), label(63), label(61)].join('.'), { id: ID }),
    expect: { rcode: RCODE.REFUSED, qdcount: 1 },
  },
  {
    name: 'name of 256 octets',
    packet: rawQuery([label(63), label(63), label(63), label(62)].join('.'), { id: ID }),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'name of 320 octets ending in the zone',
    packet: rawQuery([label(63), label(63), label(63), label(63), label(50), 'example', 'test'].join('.'), { id: ID }),
    expect: { rcode: RCODE.FORMERR, qdcount: 0 },
  },
  {
    name: 'ancount 65535 with a tiny body',
    packet: Buffer.concat([encodeHeader({ id: ID, ancount: 65535 }), wwwQuestion, Buffer.from([0, 0, 1])]),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'arcount 65535 with a tiny body',
    packet: Buffer.concat([encodeHeader({ id: ID, arcount: 65535 }), wwwQuestion]),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'all three counts 65535 with no body',
    packet: Buffer.concat([encodeHeader({ id: ID, ancount: 65535, nscount: 65535, arcount: 65535 }), wwwQuestion]),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'record whose RDLENGTH overruns the message',
    packet: Buffer.concat([encodeHeader({ id: ID, arcount: 1 }), wwwQuestion, rr(Buffer.from([0]), TYPE.A, Buffer.from([1, 2]), 400)]),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'OPT with a truncated option header',
    packet: rawQuery('www.example.test', { id: ID, opt: { rdata: Buffer.from([0, 10]) } }),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'OPT option longer than its RDATA',
    packet: rawQuery('www.example.test', { id: ID, opt: { rdata: Buffer.from([0, 10, 0, 100, 1, 2, 3, 4]) } }),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'OPT RDLENGTH past the end of the message',
    packet: rawQuery('www.example.test', { id: ID, opt: { rdlength: 50 } }),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'two OPT records',
    packet: Buffer.concat([encodeHeader({ id: ID, arcount: 2 }), wwwQuestion, encodeOpt(), encodeOpt()]),
    expect: { rcode: RCODE.FORMERR },
  },
  {
    name: 'OPT in the answer section and the additional section',
    packet: Buffer.concat([encodeHeader({ id: ID, ancount: 1, arcount: 1 }), wwwQuestion, encodeOpt(), encodeOpt()]),
    // RFC 6891 §6.1.1 only constrains the additional section; either reading is fine, never a crash.
    expect: { rcodeIn: [RCODE.NOERROR, RCODE.FORMERR] },
  },
  { name: 'QTYPE OPT in the question', packet: rawQuery('www.example.test', { id: ID, qtype: TYPE.OPT }), expect: { rcode: RCODE.FORMERR, qdcount: 1 } },
  {
    // A label holding a '.' octet ("a.www" as ONE label) must not be read as two labels.
    name: "label containing a '.' octet under the zone",
    packet: Buffer.concat([encodeHeader({ id: ID, qdcount: 1 }), Buffer.from([5, 0x61, 0x2e, 0x77, 0x77, 0x77]), encodeName('example.test'), Buffer.from([0, 1, 0, 1])]),
    expect: { rcode: RCODE.NXDOMAIN, qdcount: 1 },
  },
  // RFC 5936 §4.2: AXFR is TCP only; REFUSED over UDP (test/integration/xfr.test.ts covers transfers).
  { name: 'AXFR over UDP', packet: rawQuery('example.test', { id: ID, qtype: TYPE.AXFR }), expect: { rcode: RCODE.REFUSED, qdcount: 1 } },
  { name: 'response (QR=1) to our query', packet: rawQuery('www.example.test', { id: ID, qr: true }), expect: { noReply: true } },
  {
    name: 'response (QR=1) with records and an error rcode',
    packet: Buffer.concat([encodeHeader({ id: ID, qr: true, rcode: 2, ancount: 1 }), wwwQuestion, rr(pointer(12), TYPE.A, Buffer.from([1, 2, 3, 4]))]),
    expect: { noReply: true },
  },
  { name: 'response (QR=1) header only', packet: encodeHeader({ id: ID, qr: true, qdcount: 0 }), expect: { noReply: true } },
  { name: 'opcode 5 (UPDATE)', packet: rawQuery('example.test', { id: ID, opcode: 5, qtype: TYPE.SOA }), expect: { rcode: RCODE.NOTIMP, qdcount: 1 } },
  { name: 'opcode 2 (STATUS)', packet: rawQuery('www.example.test', { id: ID, opcode: 2 }), expect: { rcode: RCODE.NOTIMP } },
  { name: 'opcode 15 with qdcount 0', packet: encodeHeader({ id: ID, opcode: 15, qdcount: 0 }), expect: { rcode: RCODE.NOTIMP, qdcount: 0 } },
];

describe('single hostile UDP packets', () => {
  it.each(attacks)('$name', async ({ packet, expect: want }) => {
    await peer.send(packet, port);
    const replies = await expectHealthy();
    if (want.noReply) {
      expect(replies.map((r) => r.toString('hex')), 'replies to a packet that deserves none').toEqual([]);
      return;
    }
    expect(replies, 'exactly one reply to the attack').toHaveLength(1);
    const parsed = checkReply(packet, replies[0]!);
    if (want.rcode !== undefined) expect(parsed.header.rcode).toBe(want.rcode);
    if (want.rcodeIn) expect(want.rcodeIn).toContain(parsed.header.rcode);
    if (want.qdcount !== undefined) expect(parsed.header.qdcount).toBe(want.qdcount);
  });
});

describe('exact answers to refused and unsupported queries', () => {
  async function ask(query: Buffer) {
    await peer.send(query, port);
    const replies = await expectHealthy();
    expect(replies).toHaveLength(1);
    return { raw: replies[0]!, parsed: checkReply(query, replies[0]!) };
  }

  it('FORMERR for qdcount 2', async () => {
    const { raw } = await ask(Buffer.concat([encodeHeader({ id: 0x0202, qdcount: 2 }), wwwQuestion, wwwQuestion]));
    expect(parseHeader(raw)).toMatchObject({ id: 0x0202, qr: true, rcode: RCODE.FORMERR, qdcount: 0, ancount: 0, nscount: 0, arcount: 0 });
  });

  it('NOTIMP for opcode 5 (UPDATE), opcode echoed', async () => {
    const { raw } = await ask(rawQuery('example.test', { id: 0x0505, opcode: 5, qtype: TYPE.SOA }));
    expect(parseHeader(raw)).toMatchObject({ id: 0x0505, qr: true, opcode: 5, rcode: RCODE.NOTIMP, ancount: 0 });
  });

  it('REFUSED for a name outside every zone', async () => {
    const { raw, parsed } = await ask(rawQuery('www.example.org', { id: 0x0303 }));
    expect(parseHeader(raw)).toMatchObject({ qr: true, aa: false, rcode: RCODE.REFUSED, qdcount: 1, ancount: 0, nscount: 0 });
    expect(parsed.questions[0]).toMatchObject({ name: 'www.example.org', type: TYPE.A, class: CLASS.IN });
  });

  it('REFUSED for CHAOS class (no identity configured)', async () => {
    const { raw } = await ask(rawQuery('version.bind', { id: 0x0404, qtype: TYPE.TXT, qclass: CLASS.CH }));
    expect(parseHeader(raw)).toMatchObject({ qr: true, rcode: RCODE.REFUSED, ancount: 0 });
    const inZone = await ask(rawQuery('www.example.test', { id: 0x0406, qclass: CLASS.CH }));
    expect(inZone.parsed.header.rcode).toBe(RCODE.REFUSED);
  });

  it('BADVERS for EDNS version 1: header rcode 0, OPT extended rcode 1, version 0 offered', async () => {
    const query = rawQuery('www.example.test', { id: 0x0606, opt: { version: 1, udpSize: 4096 } });
    const { raw, parsed } = await ask(query);
    const h = parseHeader(raw);
    expect(h).toMatchObject({ qr: true, rcode: 0, ancount: 0, arcount: 1 });
    // The OPT record is last: owner(1) type(2) class(2) ext-rcode(1) version(1) flags(2) rdlength(2).
    const opt = raw.subarray(raw.length - 11);
    expect(opt[0]).toBe(0);
    expect(opt.readUInt16BE(1)).toBe(TYPE.OPT);
    expect(opt[5], 'extended rcode').toBe(1);
    expect(opt[6], 'version').toBe(0);
    expect(parsed.header.rcode, 'dns2 merges header and extended rcode').toBe(RCODE.BADVERS);
  });

  it('EDNS version 0 with an unknown option is answered normally', async () => {
    const query = rawQuery('www.example.test', { id: 0x0707, opt: { rdata: ednsOption(65001, Buffer.from('hello')) } });
    const { parsed } = await ask(query);
    expect(parsed.header.rcode).toBe(RCODE.NOERROR);
    expect(parsed.answers).toHaveLength(3);
  });
});

// ---------------------------------------------------------------------------
// Fuzzing: seeded, bounded in count, each batch followed by a health check

interface FuzzStats {
  sent: number;
  eligible: number;
  replies: number;
  rcodes: Record<number, number>;
}

/**
 * Sends `packets` in batches, each batch followed by the normal query. Every
 * reply must belong to a packet that deserved one (at least a header, QR=0),
 * at most one per packet, and pass checkReply. IDs are unique per packet.
 */
async function fuzz(packets: Buffer[], batch = 50): Promise<FuzzStats> {
  const byId = new Map<number, Buffer>();
  for (const p of packets) if (p.length >= 2) byId.set(p.readUInt16BE(0), p);
  const answered = new Set<number>();
  const stats: FuzzStats = { sent: packets.length, eligible: 0, replies: 0, rcodes: {} };
  for (const p of packets) if (p.length >= 12 && (p[2]! & 0x80) === 0) stats.eligible++;
  const deadline = Date.now() + 120_000;
  for (let i = 0; i < packets.length; i += batch) {
    if (Date.now() > deadline) throw new Error(`fuzz did not finish in time (${i} of ${packets.length} sent)`);
    await Promise.all(packets.slice(i, i + batch).map((p) => peer.send(p, port)));
    const replies = await expectHealthy();
    for (const raw of replies) {
      expect(raw.length).toBeGreaterThanOrEqual(12);
      const id = raw.readUInt16BE(0);
      const query = byId.get(id);
      expect(query, `reply with ID ${id} matches no packet sent`).toBeDefined();
      expect(query!.length >= 12 && (query![2]! & 0x80) === 0, `packet ${query!.toString('hex')} deserved no reply`).toBe(true);
      expect(answered.has(id), `two replies to ID ${id}`).toBe(false);
      answered.add(id);
      const parsed = checkReply(query!, raw);
      stats.replies++;
      stats.rcodes[parsed.header.rcode] = (stats.rcodes[parsed.header.rcode] ?? 0) + 1;
    }
  }
  return stats;
}

const SEED = 0x5eed_d115;

describe('fuzz', () => {
  it('10 000 random packets from a seeded PRNG', { timeout: 180_000 }, async () => {
    const rand = prng(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
    const names = ['www.example.test', 'example.test', 'ns1.example.test', 'nope.example.test', 'WwW.ExAmPlE.TeSt', 'a.b.c.example.test', 'example.org', ''];
    const types = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 252, 255, 0, 65535, int(65536)];
    const packets: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = int(3);
      let p: Buffer;
      if (kind === 0) {
        // Anything at all, including too short for a header.
        p = bytes(rand() < 0.2 ? int(14) : int(513));
      } else {
        // A plausible header (QR=0, one question, few records) so decoding goes deeper.
        const header = encodeHeader({ opcode: rand() < 0.9 ? 0 : int(16), qdcount: rand() < 0.9 ? 1 : int(4), ancount: int(3), nscount: int(2), arcount: int(4) });
        if (rand() < 0.3) header[3] = int(256);
        if (kind === 1) {
          p = Buffer.concat([header, bytes(int(300))]);
        } else {
          const question = Buffer.concat([encodeName(names[int(names.length)]!), typeClass(types[int(types.length)]!, rand() < 0.8 ? 1 : int(256))]);
          // Random records, some of them OPT-shaped with random fields and options.
          const tail: Buffer[] = [];
          for (let r = int(4); r > 0; r--) {
            if (rand() < 0.5) tail.push(encodeOpt({ udpSize: int(65536), version: rand() < 0.8 ? 0 : int(256), do: rand() < 0.5, rdata: bytes(int(20)), ...(rand() < 0.2 ? { rdlength: int(64) } : {}) }));
            else tail.push(bytes(int(40)));
          }
          p = Buffer.concat([header, question, ...tail]);
        }
      }
      if (p.length >= 2) p.writeUInt16BE(i, 0);
      packets.push(p);
    }
    const stats = await fuzz(packets);
    // Most plausible packets are answered (FORMERR or better); a lost datagram here and there is tolerated.
    expect(stats.replies).toBeGreaterThan(stats.eligible * 0.95);
    await expectHealthy();
  });

  it('2000 random bit-flip mutations of a valid EDNS query', { timeout: 120_000 }, async () => {
    const rand = prng(SEED ^ 0xa5a5a5a5);
    const int = (n: number) => Math.floor(rand() * n);
    const base = rawQuery('www.example.test', { rd: true, opt: { udpSize: 1232, do: true, rdata: ednsOption(10, Buffer.from('0123456789abcdef', 'hex')) } });
    const packets: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      let p = Buffer.from(base);
      for (let flips = 1 + int(4); flips > 0; flips--) {
        const bit = 16 + int((p.length - 2) * 8); // the ID is assigned below
        p[bit >> 3]! ^= 0x80 >> (bit & 7);
      }
      if (rand() < 0.1) p = p.subarray(0, 2 + int(p.length - 2));
      p.writeUInt16BE(20_000 + i, 0);
      packets.push(p);
    }
    const stats = await fuzz(packets);
    expect(stats.replies).toBeGreaterThan(stats.eligible * 0.95);
    // Single bit flips leave many queries intact: some must still be answered with data.
    expect(stats.rcodes[RCODE.NOERROR] ?? 0).toBeGreaterThan(0);
    await expectHealthy();
  });
});
