/**
 * Hostile UDP input: malformed, random and mutated packets. After each attack
 * the server is still alive and answers a normal query correctly; every reply
 * it does send is a well-formed response to the packet that caused it.
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { addresses, buildQuery, udpExchange, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const ZONE = `
origin: example.test
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 60 }
records:
  "@": { NS: [ns1] }
  ns1: { A: 127.0.0.1 }
  www: { A: [127.0.0.10, 127.0.0.11, 127.0.0.12] }
`;

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ 'example.test.yaml': ZONE });
});
afterAll(() => t.close());

async function stillServes(): Promise<void> {
  const { packet } = await udpQuery(t.port, 'www.example.test');
  expect(packet.header.rcode).toBe(0);
  expect(packet.header.aa).toBe(1);
  expect(addresses(packet)).toHaveLength(3);
}

/** Sends raw bytes; resolves with the reply or null when none comes within the bound. */
function maybeReply(msg: Buffer, waitMs = 300): Promise<Buffer | null> {
  return udpExchange(t.port, msg, waitMs).catch(() => null);
}

/** A deterministic PRNG (mulberry32) so failures replay. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const hdr = (id: number, flags: number, qd: number, an: number, ns: number, ar: number) => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
};
const question = Buffer.from([3, 0x77, 0x77, 0x77, 7, ...Buffer.from('example'), 4, ...Buffer.from('test'), 0, 0, 1, 0, 1]);
const opt = (version = 0, rdata = Buffer.alloc(0)) => {
  const b = Buffer.alloc(11);
  b.writeUInt16BE(41, 1);
  b.writeUInt16BE(1232, 3);
  b[6] = version;
  b.writeUInt16BE(rdata.length, 9);
  return Buffer.concat([b, rdata]);
};

interface Attack {
  name: string;
  msg: Buffer;
  /** Expected rcode of the reply; null = no reply at all. undefined = anything well-formed. */
  rcode?: number | null;
}

const attacks: Attack[] = [
  { name: 'empty datagram', msg: Buffer.alloc(0), rcode: null },
  ...[1, 5, 11].map((n) => ({ name: `${n}-octet datagram`, msg: Buffer.alloc(n, 0xff), rcode: null })),
  { name: 'header only, qdcount 0', msg: hdr(1, 0x0100, 0, 0, 0, 0), rcode: 1 },
  { name: 'qdcount 2', msg: Buffer.concat([hdr(2, 0x0100, 2, 0, 0, 0), question, question]), rcode: 1 },
  { name: 'qdcount 65535 with a short body', msg: Buffer.concat([hdr(3, 0x0100, 65535, 0, 0, 0), question]), rcode: 1 },
  { name: 'label length 64', msg: Buffer.concat([hdr(4, 0x0100, 1, 0, 0, 0), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]), rcode: 1 },
  { name: 'label runs past the end', msg: Buffer.concat([hdr(5, 0x0100, 1, 0, 0, 0), Buffer.from([40, 0x61, 0x62])]), rcode: 1 },
  { name: 'compression pointer in the question', msg: Buffer.concat([hdr(6, 0x0100, 1, 0, 0, 0), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), rcode: 1 },
  {
    name: 'name longer than 255 octets',
    msg: Buffer.concat([hdr(7, 0x0100, 1, 0, 0, 0), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0, 0, 1, 0, 1])]),
    rcode: 1,
  },
  { name: 'pointer loop in an additional record', msg: Buffer.concat([hdr(8, 0x0100, 1, 0, 0, 1), question, Buffer.from([0xc0, 29, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]) },
  { name: 'huge record counts with a tiny body', msg: Buffer.concat([hdr(9, 0x0100, 1, 65535, 65535, 65535), question]), rcode: 1 },
  { name: 'OPT with a truncated option', msg: Buffer.concat([hdr(10, 0x0100, 1, 0, 0, 1), question, opt(0, Buffer.from([0, 10, 0]))]), rcode: 1 },
  { name: 'OPT option overrunning the OPT', msg: Buffer.concat([hdr(11, 0x0100, 1, 0, 0, 1), question, opt(0, Buffer.from([0, 10, 0, 9, 1]))]), rcode: 1 },
  { name: 'two OPT records', msg: Buffer.concat([hdr(12, 0x0100, 1, 0, 0, 2), question, opt(), opt()]), rcode: 1 },
  { name: 'OPT version 1', msg: Buffer.concat([hdr(13, 0x0100, 1, 0, 0, 1), question, opt(1)]), rcode: 0 /* low nibble of BADVERS (16) */ },
  { name: 'a response (QR=1) gets no reply', msg: Buffer.concat([hdr(14, 0x8100, 1, 0, 0, 0), question]), rcode: null },
  { name: 'opcode UPDATE', msg: Buffer.concat([hdr(15, 0x2800, 1, 0, 0, 0), question]), rcode: 4 },
  { name: 'rdlength past the end in an answer record', msg: Buffer.concat([hdr(16, 0x0100, 1, 1, 0, 0), question, Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xff])]), rcode: 1 },
  { name: 'qtype OPT', msg: Buffer.concat([hdr(17, 0x0100, 1, 0, 0, 0), question.subarray(0, question.length - 4), Buffer.from([0, 41, 0, 1])]), rcode: 1 },
  { name: 'AXFR over UDP', msg: Buffer.concat([hdr(18, 0x0000, 1, 0, 0, 0), question.subarray(0, question.length - 4), Buffer.from([0, 252, 0, 1])]), rcode: 5 },
  { name: 'label with a dot octet inside', msg: Buffer.concat([hdr(19, 0x0100, 1, 0, 0, 0), Buffer.from([5, 0x61, 0x2e, 0x77, 0x77, 0x77, 7, ...Buffer.from('example'), 4, ...Buffer.from('test'), 0, 0, 1, 0, 1])]), rcode: 3 },
];

describe('malformed packets', () => {
  it.each(attacks)('$name', async ({ msg, rcode }) => {
    const reply = await maybeReply(msg);
    if (rcode === null) expect(reply).toBeNull();
    else {
      expect(reply).not.toBeNull();
      expect(reply!.readUInt16BE(0)).toBe(msg.readUInt16BE(0));
      expect(reply![2]! & 0x80).toBe(0x80);
      if (rcode !== undefined) expect(reply![3]! & 0x0f).toBe(rcode);
    }
    await stillServes();
  });

  it('BADVERS carries extended rcode 1 in the OPT (rcode 16)', async () => {
    const reply = await maybeReply(Buffer.concat([hdr(20, 0x0100, 1, 0, 0, 1), question, opt(1)]));
    expect(Packet.parse(reply!).header.rcode).toBe(16);
  });
});

/** Fires `packets` from one socket without waiting, collecting replies for a bounded time. */
async function blast(packets: Buffer[], settleMs = 1500): Promise<Buffer[]> {
  const socket = dgram.createSocket('udp4');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  for (let i = 0; i < packets.length; i++) {
    socket.send(packets[i]!, t.port, '127.0.0.1');
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 5)); // stay under socket buffers
  }
  await new Promise((r) => setTimeout(r, settleMs));
  socket.close();
  return replies;
}

function checkReplies(replies: Buffer[], sentIds: Set<number>): void {
  // Random junk still draws some answers (FORMERR, NOTIMP, ...): the check below is not vacuous.
  expect(replies.length).toBeGreaterThan(0);
  for (const reply of replies) {
    expect(reply.length).toBeGreaterThanOrEqual(12);
    expect(reply[2]! & 0x80).toBe(0x80);
    expect(sentIds.has(reply.readUInt16BE(0))).toBe(true);
    const parsed = Packet.parse(reply);
    expect(parsed.errors).toEqual([]);
  }
}

describe('fuzzing', () => {
  it('10 000 random packets: no crash, every reply well-formed', async () => {
    const rand = prng(0xd15ea5e);
    const ids = new Set<number>();
    const packets = Array.from({ length: 10_000 }, () => {
      const b = Buffer.alloc(Math.floor(rand() * 600));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
      if (b.length >= 2) ids.add(b.readUInt16BE(0));
      return b;
    });
    checkReplies(await blast(packets), ids);
    await stillServes();
  });

  it('2000 bit-flip mutations of a valid EDNS query: no crash, every reply well-formed', async () => {
    const rand = prng(42);
    const base = buildQuery('www.example.test', { edns: 1232, id: 0x4242 });
    const ids = new Set<number>();
    const packets = Array.from({ length: 2000 }, () => {
      const b = Buffer.from(base);
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) b[Math.floor(rand() * b.length)]! ^= 1 << Math.floor(rand() * 8);
      ids.add(b.readUInt16BE(0));
      return b;
    });
    checkReplies(await blast(packets), ids);
    await stillServes();
  });
});
