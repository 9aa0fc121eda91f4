/**
 * Generative TCP fuzz (RFC 1035 §4.2.2, RFC 7766 §6.2): over several
 * connections at once, valid queries interleaved with junk frames (random
 * bytes, zero-length frames, bare headers, responses, broken questions,
 * impossible counts), the stream cut at random byte boundaries or coalesced,
 * and optionally ended by a frame whose length prefix is larger than what
 * follows or by random bytes; some clients start reading late (answers wait
 * in the socket buffers; tcp.test.ts drives the server's own backpressure
 * with answers larger than those buffers). What must hold for every case:
 *
 * - every valid query gets its answer, on its connection, in the order sent
 *   (RFC 7766 lets a server reorder, rrdns does not), with its ID and question
 *   echoed byte for byte and the same rcode and answer count as the same
 *   query asked alone;
 * - every reply to junk is a well-formed response to a junk frame sent;
 * - the connection is closed by the server after our half-close, nothing
 *   is left open, nothing was logged at error level (no handler threw), and
 *   the server keeps answering everyone else.
 *
 * The seed is fixed and printed (TCP_FUZZ_SEED and TCP_FUZZ_RUNS override):
 * a failure replays with the same seed, and fast-check prints the shrunk case.
 */
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { Packet } from 'dns2';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { captureLogger, startTestServer, type TestServer } from '../support/server.ts';
import { encodeHeader, frame, parseHeader, rawQuery, sleep, TcpPeer, waitUntil } from '../support/rawdns.ts';

const SEED = Number(process.env.TCP_FUZZ_SEED ?? 0x7c9f00d) | 0;
const RUNS = Math.min(Math.max(Number(process.env.TCP_FUZZ_RUNS ?? 150) || 150, 1), 10_000);

const BIG_TXT = Array.from({ length: 12 }, (_, i) => `"t${String(i).padStart(2, '0')}${'x'.repeat(197)}"`);
const ZONE = `$ORIGIN fz.test.
$TTL 300
@       IN SOA   ns1 hostmaster 1 3600 900 1209600 60
@       IN NS    ns1
@       IN MX    10 mail
ns1     IN A     192.0.2.53
mail    IN A     192.0.2.25
www     IN A     192.0.2.10
www     IN A     192.0.2.11
www     IN A     192.0.2.12
blog    IN CNAME www
*.apps  IN A     192.0.2.30
${BIG_TXT.map((t) => `big     IN TXT   ${t}`).join('\n')}
`;
const WWW = ['192.0.2.10', '192.0.2.11', '192.0.2.12'];

/** Valid queries: a name (wildcard ones take a random label) and a qtype. */
const TEMPLATES: { key: string; name: (label: string) => string; qtype: number }[] = [
  { key: 'www A', name: () => 'www.fz.test', qtype: 1 },
  { key: 'www AAAA (NODATA)', name: () => 'www.fz.test', qtype: 28 },
  { key: 'blog A (CNAME)', name: () => 'blog.fz.test', qtype: 1 },
  { key: 'apex MX', name: () => 'fz.test', qtype: 15 },
  { key: 'apex SOA', name: () => 'fz.test', qtype: 6 },
  { key: 'big TXT (2.5 KB)', name: () => 'big.fz.test', qtype: 16 },
  { key: 'wildcard A', name: (l) => `${l}.apps.fz.test`, qtype: 1 },
  { key: 'NXDOMAIN', name: (l) => `${l}.nothing.fz.test`, qtype: 1 },
  { key: 'outside every zone (REFUSED)', name: (l) => `${l}.other.test`, qtype: 1 },
];

/** What each template gets when asked alone, measured once: rcode and answer count. */
const reference = new Map<string, { rcode: number; ancount: number }>();

type Item =
  | { kind: 'query'; template: number; label: string; caseMask: number; edns: number | undefined }
  | { kind: 'junk'; junk: string; bytes: Uint8Array };

const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
const queryItem = fc.record({
  kind: fc.constant('query' as const),
  template: fc.nat(TEMPLATES.length - 1),
  label,
  caseMask: fc.nat(),
  edns: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
});
const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
const junkItem = fc.oneof(
  fc.record({ kind: fc.constant('junk' as const), junk: fc.constant('random bytes'), bytes: bytes(80) }),
  fc.record({ kind: fc.constant('junk' as const), junk: fc.constant('zero-length frame'), bytes: fc.constant(new Uint8Array(0)) }),
  fc.record({ kind: fc.constant('junk' as const), junk: fc.constant('bare header'), bytes: fc.uint8Array({ minLength: 12, maxLength: 12 }) }),
  fc.record({ kind: fc.constant('junk' as const), junk: fc.constant('a response (QR=1)'), bytes: fc.constant(new Uint8Array(rawQuery('www.fz.test', { qr: true }))) }),
  fc.record({
    kind: fc.constant('junk' as const),
    junk: fc.constant('broken question'),
    bytes: bytes(30).map((b) => new Uint8Array(Buffer.concat([encodeHeader(), Buffer.from([0x3f]), b]))),
  }),
  fc.record({
    kind: fc.constant('junk' as const),
    junk: fc.constant('compression pointer in the question'),
    bytes: fc.constant(new Uint8Array(Buffer.concat([encodeHeader(), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]))),
  }),
  fc.record({
    kind: fc.constant('junk' as const),
    junk: fc.constant('impossible record counts'),
    bytes: fc.constant(new Uint8Array(rawQuery('www.fz.test', { ancount: 0xffff, nscount: 0xffff, arcount: 0xffff }))),
  }),
);
const item: fc.Arbitrary<Item> = fc.oneof({ weight: 3, arbitrary: queryItem }, { weight: 2, arbitrary: junkItem });
/** How the stream ends: cleanly, in the middle of a frame (prefix larger than the rest), or in random bytes. */
const tail = fc.oneof(
  fc.constant({ kind: 'none' as const, bytes: new Uint8Array(0) }),
  fc.integer({ min: 1, max: 0xffff }).chain((size) =>
    bytes(Math.min(size - 1, 200)).map((b) => ({ kind: 'length prefix larger than the rest' as const, bytes: new Uint8Array(Buffer.concat([Buffer.from([size >> 8, size & 0xff]), b])) })),
  ),
  // Bytes below 0x80: whatever frames they parse into carry IDs below 0x8000, never a valid query's.
  fc.uint8Array({ minLength: 1, maxLength: 100, max: 0x7f }).map((b) => ({ kind: 'random bytes' as const, bytes: b })),
);
const connection = fc.record({
  items: fc.array(item, { minLength: 1, maxLength: 25 }),
  tail,
  /** Cut points in millionths of the stream (spread evenly, unlike doubles); each piece is one write. */
  cuts: fc.array(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 30 }),
  /** Pause between writes (ms), so pieces travel as separate segments. */
  pauseMs: fc.integer({ min: 0, max: 3 }),
  /** The client starts reading only after this long (ms): its answers wait in the socket buffers meanwhile. */
  readDelayMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
});

function applyCase(name: string, mask: number): string {
  let i = 0;
  return name.replace(/[a-z]/g, (c) => ((mask >> i++ % 31) & 1 ? c.toUpperCase() : c));
}

interface Built {
  stream: Buffer;
  /** Valid queries in the order sent. */
  queries: { id: number; msg: Buffer; template: number }[];
  junkIds: Set<number>;
  junkFrames: number;
}

type Connection = typeof connection extends fc.Arbitrary<infer T> ? T : never;

function build(conn: Connection): Built {
  const parts: Buffer[] = [];
  const queries: Built['queries'] = [];
  const junkIds = new Set<number>();
  let junkFrames = 0;
  let nextId = 0x8000;
  for (const it of conn.items) {
    if (it.kind === 'query') {
      const t = TEMPLATES[it.template]!;
      const id = nextId++;
      const msg = rawQuery(applyCase(t.name(it.label), it.caseMask), { id, qtype: t.qtype, opt: it.edns === undefined ? undefined : { udpSize: it.edns } });
      queries.push({ id, msg, template: it.template });
      parts.push(frame(msg));
    } else {
      const b = Buffer.from(it.bytes);
      // Junk never carries a valid query's ID (those are 0x8000 and up).
      if (b.length >= 1) b[0]! &= 0x7f;
      if (b.length >= 2) junkIds.add(b.readUInt16BE(0));
      junkFrames++;
      parts.push(frame(b));
    }
  }
  parts.push(Buffer.from(conn.tail.bytes));
  return { stream: Buffer.concat(parts), queries, junkIds, junkFrames };
}

/** Sends `stream` in pieces cut at `cuts`, half-closes, and collects replies until the server closes. */
async function run(port: number, stream: Buffer, cuts: number[], pauseMs: number, readDelayMs: number): Promise<{ replies: Buffer[]; endedByPeer: boolean }> {
  const peer = await TcpPeer.connect(port, { read: readDelayMs === 0 });
  const reading = readDelayMs > 0 ? setTimeout(() => peer.startReading(), readDelayMs) : undefined;
  try {
    const points = [...new Set(cuts.map((c) => Math.floor((c / 1_000_000) * stream.length)))].filter((p) => p > 0 && p < stream.length).sort((a, b) => a - b);
    let from = 0;
    for (const p of [...points, stream.length]) {
      peer.write(stream.subarray(from, p));
      from = p;
      if (pauseMs > 0) await sleep(pauseMs);
    }
    peer.socket.end();
    await peer.waitClosed(15_000);
    return { replies: peer.messages, endedByPeer: peer.endedByPeer };
  } finally {
    clearTimeout(reading);
    peer.destroy();
  }
}

/** The question section as sent: after the header, up to the end of QTYPE/QCLASS. */
function questionBytes(msg: Buffer): Buffer {
  let pos = 12;
  while (msg[pos]! !== 0) pos += 1 + msg[pos]!;
  return msg.subarray(12, pos + 5);
}

describe('TCP fuzz: random framing, segmentation and junk over concurrent connections', () => {
  let t: TestServer;
  /** What the server logged at error level and above (a handler that threw logs "transport error"). */
  let logged: Record<string, unknown>[] = [];
  beforeAll(async () => {
    console.log(`[tcp-fuzz] seed ${SEED}, ${RUNS} runs (TCP_FUZZ_SEED / TCP_FUZZ_RUNS to replay or extend)`);
    const { logger, lines } = captureLogger('error');
    t = await startTestServer({ 'fz.test.zone': ZONE }, { tcp: { maxConnections: 64, idleTimeoutMs: 5000, maxPendingAnswers: 16, maxQueuedBytes: 65536 } }, logger);
    logged = lines;
    // The reference: each template asked alone on a clean connection.
    const peer = await TcpPeer.connect(t.port);
    try {
      for (const [i, tpl] of TEMPLATES.entries()) {
        const h = parseHeader(await peer.exchange(rawQuery(tpl.name('ref'), { id: i + 1, qtype: tpl.qtype })));
        reference.set(tpl.key, { rcode: h.rcode, ancount: h.ancount });
      }
    } finally {
      peer.destroy();
    }
    // The reference itself is what the zone says (else the comparison below would prove little).
    expect(reference.get('www A')).toEqual({ rcode: 0, ancount: 3 });
    expect(reference.get('big TXT (2.5 KB)')).toEqual({ rcode: 0, ancount: 12 });
    expect(reference.get('NXDOMAIN')?.rcode).toBe(3);
    expect(reference.get('outside every zone (REFUSED)')?.rcode).toBe(5);
    expect(reference.get('wildcard A')).toEqual({ rcode: 0, ancount: 1 });
  });
  afterAll(async () => {
    await t?.close();
  });
  const serverErrors = () => logged.filter((l) => Number(l.level) >= 50);

  test.prop([fc.array(connection, { minLength: 1, maxLength: 4 })], { seed: SEED, numRuns: RUNS, endOnFailure: true })(
    'every valid query is answered in order on its connection; junk costs nothing else; the server stays up',
    async (conns) => {
      const built = conns.map(build);
      const results = await Promise.all(conns.map((c, i) => run(t.port, built[i]!.stream, c.cuts, c.pauseMs, c.readDelayMs)));
      results.forEach((r, ci) => {
        const b = built[ci]!;
        expect(r.endedByPeer, `connection ${ci}: closed by the server after our half-close`).toBe(true);
        const valid = r.replies.filter((m) => m.length >= 2 && m.readUInt16BE(0) >= 0x8000);
        expect(valid.map((m) => m.readUInt16BE(0)), `connection ${ci}: answers, in order`).toEqual(b.queries.map((q) => q.id));
        valid.forEach((reply, qi) => {
          const q = b.queries[qi]!;
          const tpl = TEMPLATES[q.template]!;
          const h = parseHeader(reply);
          const want = reference.get(tpl.key)!;
          expect({ qr: h.qr, tc: h.tc, rcode: h.rcode, ancount: h.ancount, qdcount: h.qdcount }, `${tpl.key}`).toEqual({ qr: true, tc: false, rcode: want.rcode, ancount: want.ancount, qdcount: 1 });
          expect(Buffer.compare(reply.subarray(12, 12 + questionBytes(q.msg).length), questionBytes(q.msg)), `${tpl.key}: question echoed as sent`).toBe(0);
        });
        const junkReplies = r.replies.filter((m) => m.length < 2 || m.readUInt16BE(0) < 0x8000);
        // Every reply to junk answers a junk frame: a response with one of their IDs (the tail's frames included).
        for (const m of junkReplies) {
          expect(m.length).toBeGreaterThanOrEqual(12);
          expect(parseHeader(m).qr).toBe(true);
        }
        if (conns[ci]!.tail.kind === 'none') {
          expect(junkReplies.length).toBeLessThanOrEqual(b.junkFrames);
          for (const m of junkReplies) expect(b.junkIds.has(m.readUInt16BE(0))).toBe(true);
        }
      });
      expect(serverErrors()).toEqual([]);
      // Everyone else is still served.
      expect(addresses((await udpQuery(t.port, 'www.fz.test')).packet).sort()).toEqual(WWW);
    },
    240_000,
  );

  test('afterwards: no connection left open, and TCP still answers', async () => {
    await waitUntil(() => t.server.transportStats().tcpConnections === 0, 10_000, 'every fuzz connection to be closed');
    const peer = await TcpPeer.connect(t.port);
    try {
      const reply = await peer.exchange(rawQuery('www.fz.test', { id: 7 }));
      expect(addresses(Packet.parse(reply)).sort()).toEqual(WWW);
    } finally {
      peer.destroy();
    }
  });
});
