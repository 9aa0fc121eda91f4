/**
 * Pipelined TCP queries on one connection while the transport answers each
 * read's batch with the socket corked (src/wire/transport.ts drainCorked):
 * every query is answered, once, in the order sent, and the answer carries
 * its query's ID and question, also when the batch is longer than the
 * pending-answer cap (the connection pauses and resumes mid-batch, corked)
 * and when the batch arrives cut at arbitrary octets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { startTestServer, type TestServer } from '../support/server.ts';
import { frame, prng, rawQuery, TcpPeer } from '../support/rawdns.ts';

const ZONE = `origin: pipe.test
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 60 }
records:
  "@": { NS: [ns1], MX: "10 mail" }
  ns1: { A: 127.0.0.1 }
  mail: { A: 127.0.0.25 }
  www: { A: [127.0.0.10, 127.0.0.11], AAAA: ["2001:db8::10"] }
`;

/** Names and the rcode each must get: answers, NXDOMAIN, and REFUSED (not our zone). */
const NAMES: [string, number][] = [
  ['www.pipe.test', 0],
  ['mail.pipe.test', 0],
  ['nope.pipe.test', 3],
  ['pipe.test', 0],
  ['www.elsewhere.example', 5],
];

const queries = (n: number, firstId: number) => Array.from({ length: n }, (_, i) => ({ id: firstId + i, name: NAMES[i % NAMES.length]![0], rcode: NAMES[i % NAMES.length]![1] }));

function expectInOrder(answers: Buffer[], sent: ReturnType<typeof queries>): void {
  expect(answers).toHaveLength(sent.length);
  // The transport answers one message at a time, in arrival order: the i-th answer is the i-th query's.
  expect(answers.map((a) => a.readUInt16BE(0))).toEqual(sent.map((q) => q.id));
  answers.forEach((raw, i) => {
    const p = Packet.parse(raw);
    expect(p.errors).toEqual([]);
    expect(p.header.qr).toBe(1);
    expect(p.header.rcode, sent[i]!.name).toBe(sent[i]!.rcode);
    expect(p.questions[0]!.name).toBe(sent[i]!.name);
  });
}

describe('pipelined TCP queries on one connection', () => {
  let s: TestServer;
  beforeAll(async () => {
    // A pending-answer cap far below the batch: the corked drain must stop, pause, and go on after the flush.
    s = await startTestServer({ 'pipe.test.yaml': ZONE }, { tcp: { maxConnections: 8, idleTimeoutMs: 5000, maxPendingAnswers: 8, maxQueuedBytes: 65536, maxPerClient: 8 } });
  });
  afterAll(() => s.close());

  it('answers 300 queries written in one go, all of them, in order, each with its ID', async () => {
    const peer = await TcpPeer.connect(s.port);
    try {
      const sent = queries(300, 1);
      peer.write(Buffer.concat(sent.map((q) => frame(rawQuery(q.name, { id: q.id })))));
      expectInOrder(await peer.waitForMessages(sent.length, 10_000), sent);
    } finally {
      peer.destroy();
    }
  });

  it('answers the same when the stream is cut at arbitrary octets, and the connection stays usable', async () => {
    const peer = await TcpPeer.connect(s.port);
    try {
      const sent = queries(200, 5000);
      const bytes = Buffer.concat(sent.map((q) => frame(rawQuery(q.name, { id: q.id }))));
      const rand = prng(0x7c9);
      // Writes of 1 to 97 octets: reads end mid-length, mid-message and between messages.
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 97);
        peer.write(bytes.subarray(at, at + n));
        at += n;
      }
      expectInOrder(await peer.waitForMessages(sent.length, 10_000), sent);
      const next = { id: 9999, name: 'www.pipe.test', rcode: 0 };
      const answer = await peer.exchange(rawQuery(next.name, { id: next.id }));
      expectInOrder([answer], [next]);
    } finally {
      peer.destroy();
    }
  });
});
