/**
 * Faults inside the transports cost one message, never a listener or the
 * process: a handler that throws (TCP: SERVFAIL for that message, the
 * pipelined ones behind it answered in order; UDP: that datagram dropped),
 * a client that resets the connection while its answers are being written
 * (the failed write counted), and a process out of file descriptors (accept
 * fails with EMFILE: libuv accepts and closes the connections it has no room
 * for, the TCP listener survives and accepts again once descriptors free up).
 *
 * Real sockets throughout; a fault is injected only where no real input can
 * cause one (a handler or a zone lookup that throws on a marker name).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { Metrics, TransportFaults } from '../../src/observability/metrics.ts';
import { decodeQuery, QueryStatus, QueryView } from '../../src/wire/query.ts';
import { writeEmpty } from '../../src/wire/response.ts';
import { DEFAULT_TCP_LIMITS, TcpListener, type MessageHandler } from '../../src/wire/transport.ts';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { metricSum } from '../support/metrics-text.ts';
import { encodeHeader, frame, parseHeader, rawQuery, TcpPeer, UdpPeer, waitUntil, withTimeout } from '../support/rawdns.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { removeDir, startRrdns, tempDir, type RrdnsProcess } from '../support/spawn.ts';
import { toolPath } from '../support/tools.ts';

const ZONE = `$ORIGIN ft.test.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 900 1209600 60
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.1
www  IN A   192.0.2.2
`;
const WWW = ['192.0.2.1', '192.0.2.2'];
/** Looking this name up throws (injected): stands for any bug in answering one query. */
const BOOM = 'boom.ft.test';
const RCODE_SERVFAIL = 2;

/** The question section echoed in `reply`, for a query built by rawQuery without OPT (everything after its header). */
const questionOf = (query: Buffer, reply: Buffer) => reply.subarray(12, query.length);

function expectServfail(reply: Buffer, query: Buffer, opts: { edns?: boolean } = {}): void {
  const h = parseHeader(reply);
  expect(h).toMatchObject({ id: query.readUInt16BE(0), qr: true, rd: true, tc: false, rcode: RCODE_SERVFAIL, qdcount: 1, ancount: 0, nscount: 0, arcount: opts.edns ? 1 : 0 });
  const parsed = Packet.parse(reply);
  expect(parsed.questions[0]).toMatchObject({ name: BOOM, type: 1, class: 1 });
  if (!opts.edns) expect(Buffer.compare(questionOf(query, reply), query.subarray(12))).toBe(0);
}

function expectWww(reply: Buffer, id: number): void {
  expect(parseHeader(reply)).toMatchObject({ id, qr: true, rcode: 0 });
  expect(addresses(Packet.parse(reply)).sort()).toEqual(WWW);
}

describe('a throwing handler inside the real server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ 'ft.test.zone': ZONE });
    // The fault: the zone lookup for one name throws, inside the real pipeline, on both transports.
    const find = t.server.store.find.bind(t.server.store);
    t.server.store.find = (key: string) => {
      if (key === BOOM) throw new Error('injected fault');
      return find(key);
    };
  });
  afterAll(async () => {
    await t.close();
  });
  const handlerErrors = async (transport: string) => metricSum(await t.server.metrics.text(), 'rrdns_handler_errors_total', { transport });

  it('TCP: the failing query gets SERVFAIL (ID, RD and question echoed, OPT when asked), the pipelined ones around it their answers, in order', async () => {
    const before = await handlerErrors('tcp');
    const peer = await TcpPeer.connect(t.port);
    try {
      const queries = [
        rawQuery('www.ft.test', { id: 101 }),
        rawQuery(BOOM, { id: 102 }),
        rawQuery(BOOM, { id: 103, opt: { udpSize: 1232 } }),
        rawQuery('www.ft.test', { id: 104 }),
      ];
      // One write: the four arrive together and are answered from one read.
      peer.write(Buffer.concat(queries.map(frame)));
      const replies = await peer.waitForMessages(4, 5000);
      expect(replies.map((r) => r.readUInt16BE(0))).toEqual([101, 102, 103, 104]);
      expectWww(replies[0]!, 101);
      expectServfail(replies[1]!, queries[1]!);
      expectServfail(replies[2]!, queries[2]!, { edns: true });
      expect(Packet.parse(replies[2]!).additionals.some((r) => r.type === 41)).toBe(true);
      expectWww(replies[3]!, 104);
      // The connection is still good for more.
      expectWww(await peer.exchange(rawQuery('www.ft.test', { id: 105 })), 105);
      expect(peer.closed).toBe(false);
    } finally {
      peer.destroy();
    }
    expect((await handlerErrors('tcp')) - before).toBe(2);
  });

  it('UDP: the failing datagram is dropped, the next one from the same socket answered', async () => {
    const before = await handlerErrors('udp');
    const peer = await UdpPeer.open();
    try {
      await peer.send(rawQuery(BOOM, { id: 201 }), t.port);
      await peer.send(rawQuery('www.ft.test', { id: 202 }), t.port);
      const got = await peer.until((m) => m.readUInt16BE(0) === 202, 3000, 'the answer to the query after the failing one');
      expectWww(got.at(-1)!, 202);
      // Replies come in order from one socket: nothing came for the failing one before it.
      expect(got.map((m) => m.readUInt16BE(0))).toEqual([202]);
    } finally {
      await peer.close();
    }
    expect((await handlerErrors('udp')) - before).toBe(1);
    expect(addresses((await udpQuery(t.port, 'www.ft.test')).packet).sort()).toEqual(WWW);
  });
});

/** A minimal correct handler: NOERROR with no records and the question echoed. */
function echoHandler(): MessageHandler {
  return (msg, length, _t, view) => (decodeQuery(msg, length, view) === QueryStatus.OK ? writeEmpty(msg, view, 0, true) : null);
}

describe('TcpListener with an injected handler', () => {
  const listeners: TcpListener[] = [];
  const peers: TcpPeer[] = [];
  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    for (const l of listeners.splice(0)) await l.close(100);
  });
  async function listen(handler: MessageHandler, faults = new TransportFaults()): Promise<{ port: number; faults: TransportFaults; errors: string[] }> {
    const errors: string[] = [];
    const l = new TcpListener(handler, { ...DEFAULT_TCP_LIMITS, idleTimeoutMs: 20_000 }, (_err, where) => errors.push(where), faults);
    listeners.push(l);
    return { port: await l.listen('127.0.0.1', 0), faults, errors };
  }

  it('answers what it can for every kind of message when the handler always throws, and nothing for what must get no answer', async () => {
    const { port, faults } = await listen(() => {
      throw new TypeError('always');
    });
    const cases: { name: string; msg: Buffer; reply: ((r: Buffer) => void) | null }[] = [
      { name: 'well-formed query', msg: rawQuery('x.test', { id: 1 }), reply: (r) => expect(parseHeader(r)).toMatchObject({ id: 1, qr: true, rcode: 2, qdcount: 1 }) },
      { name: 'query with EDNS and DO', msg: rawQuery('x.test', { id: 2, opt: { do: true } }), reply: (r) => expect(parseHeader(r)).toMatchObject({ id: 2, rcode: 2, arcount: 1 }) },
      { name: 'no question (qdcount 0)', msg: encodeHeader({ id: 3, qdcount: 0 }), reply: (r) => expect(parseHeader(r)).toMatchObject({ id: 3, qr: true, rcode: 2, qdcount: 0 }) },
      { name: 'broken question', msg: Buffer.concat([encodeHeader({ id: 4 }), Buffer.from([0x3f, 1, 2])]), reply: (r) => expect(parseHeader(r)).toMatchObject({ id: 4, rcode: 2, qdcount: 0 }) },
      { name: 'RD clear is echoed clear', msg: rawQuery('x.test', { id: 5, rd: false }), reply: (r) => expect(parseHeader(r)).toMatchObject({ id: 5, rd: false, rcode: 2 }) },
      { name: 'a response (QR=1): never answered', msg: rawQuery('x.test', { id: 6, qr: true }), reply: null },
      { name: 'shorter than a header: no answer', msg: Buffer.from([0, 7, 1, 0, 0]), reply: null },
      { name: 'zero-length frame: no answer', msg: Buffer.alloc(0), reply: null },
    ];
    const peer = await TcpPeer.connect(port);
    peers.push(peer);
    peer.write(Buffer.concat(cases.map((c) => frame(c.msg))));
    const expected = cases.filter((c) => c.reply !== null);
    const replies = await peer.waitForMessages(expected.length, 5000);
    expected.forEach((c, i) => {
      expect(replies[i]!.length, c.name).toBeGreaterThanOrEqual(12);
      c.reply!(replies[i]!);
    });
    // The handler ran (and threw) for every message, even those that got no answer.
    expect(faults.handlerErrors.get('tcp')).toBe(cases.length);
    expect(peer.closed).toBe(false);
  });

  it('an answer too large for a 2-octet length prefix gets SERVFAIL, never a mis-framed message; the next query is answered', async () => {
    const inner = echoHandler();
    const { port, faults } = await listen((msg, length, tr, view, remote) => {
      const out = inner(msg, length, tr, view, remote);
      return view.qnameKey === 'huge.test' ? Buffer.alloc(70_000, 0x41) : out;
    });
    const peer = await TcpPeer.connect(port);
    peers.push(peer);
    const huge = rawQuery('huge.test', { id: 11 });
    peer.write(Buffer.concat([frame(huge), frame(rawQuery('fine.test', { id: 12 }))]));
    const [first, second] = await peer.waitForMessages(2, 5000);
    expect(parseHeader(first!)).toMatchObject({ id: 11, qr: true, rcode: RCODE_SERVFAIL, qdcount: 1 });
    expect(parseHeader(second!)).toMatchObject({ id: 12, qr: true, rcode: 0 });
    expect(faults.handlerErrors.get('tcp')).toBe(1);
  });

  it('a response stream yielding a message too large to frame ends the connection (a cut transfer must not look complete)', async () => {
    let pulled = 0;
    const { port } = await listen(() => ({
      next: () => (pulled++ === 0 ? Buffer.alloc(100, 0x42) : pulled === 2 ? Buffer.alloc(70_000, 0x43) : undefined),
      cancel: () => {},
    }));
    const peer = await TcpPeer.connect(port);
    peers.push(peer);
    peer.send(rawQuery('xfr.test', { id: 13, qtype: 252 }));
    await peer.waitClosed(5000);
    expect(peer.endedByPeer).toBe(true);
    // The first message arrived whole; nothing after it (no truncated 70,000-octet frame read as something else).
    expect(peer.messages.map((m) => m.length)).toEqual([100]);
  });

  it('a client that resets while its answer is written: the failed write is counted, the listener serves the next client', async () => {
    let victim: net.Socket | undefined;
    const inner = echoHandler();
    const { port, faults } = await listen((msg, length, tr, view, remote) => {
      const out = inner(msg, length, tr, view, remote);
      // The client resets (RST) in the middle of our handling: the write of this answer meets a dead socket.
      if (view.qnameKey === 'reset.test') victim?.resetAndDestroy();
      return out;
    });
    const peer = await TcpPeer.connect(port);
    peers.push(peer);
    victim = peer.socket;
    peer.send(rawQuery('reset.test', { id: 9 }));
    await peer.waitClosed(5000);
    await waitUntil(() => faults.sendErrors.size > 0, 5000, 'the failed write to be counted');
    const counted = [...faults.sendErrors.keys()];
    expect(counted.every((k) => /^tcp (EPIPE|ECONNRESET)$/.test(k)), counted.join()).toBe(true);
    const next = await TcpPeer.connect(port);
    peers.push(next);
    expect(parseHeader(await next.exchange(rawQuery('after.test', { id: 10 })))).toMatchObject({ id: 10, qr: true, rcode: 0 });
  });
});

describe('a zone transfer whose message cannot be framed (real server)', () => {
  // One TXT record of 65,535 rdata octets under a 188-octet origin: with the question, its AXFR
  // message is 65,759 octets, more than a TCP length prefix can say. (Once crashed the server.)
  const origin = ['a'.repeat(60), 'a'.repeat(60), 'a'.repeat(60), 'test'].join('.');
  const txt = [...Array.from({ length: 255 }, () => `"${'x'.repeat(255)}"`), `"${'y'.repeat(254)}"`].join(' ');
  const zone = `$ORIGIN ${origin}.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nt IN TXT ${txt}\n`;

  it('ends that connection and keeps serving (or the zone is refused at load)', async () => {
    let t: TestServer;
    try {
      t = await startTestServer({ 'big.zone': zone, [`${origin}.yaml`]: 'masterFile: big.zone\ntransfer: { allow: 127.0.0.0/8 }\n' });
    } catch (e) {
      // Refusing such an RRset at load is the other acceptable outcome.
      expect(String((e as Error).message)).toMatch(/big\.zone|65,?535|too large|cannot fit/i);
      return;
    }
    try {
      const peer = await TcpPeer.connect(t.port);
      peer.send(rawQuery(origin, { id: 21, qtype: 252 }));
      await peer.waitClosed(5000);
      peer.destroy();
      // No message longer than a frame can say was sent; whatever came was whole and a response.
      for (const m of peer.messages) expect(parseHeader(m).qr).toBe(true);
      const next = await TcpPeer.connect(t.port);
      try {
        const reply = await next.exchange(rawQuery(`ns1.${origin}`, { id: 22 }));
        expect(parseHeader(reply)).toMatchObject({ id: 22, rcode: 0, ancount: 1 });
      } finally {
        next.destroy();
      }
    } finally {
      await t.close();
    }
  });
});

describe('send-error counts in /metrics', () => {
  it('every code the transports count has its own label; anything else is "other", so the label set is bounded', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const cases = [
      { code: 'ERR_SOCKET_BAD_PORT', label: 'ERR_SOCKET_BAD_PORT' },
      { code: 'EPERM', label: 'EPERM' },
      { code: 'EMSGSIZE', label: 'EMSGSIZE' },
      { code: 'ENOBUFS', label: 'ENOBUFS' },
      { code: 'EHOSTUNREACH', label: 'EHOSTUNREACH' },
      { code: 'EPIPE', label: 'EPIPE' },
      { code: 'ECONNRESET', label: 'ECONNRESET' },
      { code: 'E_MADE_UP_BY_A_PEER', label: 'other' },
      { code: 'unknown', label: 'other' },
    ];
    for (const c of cases) m.faults.sendError('udp', c.code);
    for (let i = 0; i < 1000; i++) m.faults.sendError('tcp', `E${i}`);
    const text = await m.text();
    for (const c of cases) expect(metricSum(text, 'rrdns_send_errors_total', { transport: 'udp', code: c.label }), c.code).toBe(c.label === 'other' ? 2 : 1);
    expect(metricSum(text, 'rrdns_send_errors_total', { transport: 'tcp', code: 'other' })).toBe(1000);
    expect(text.split('\n').filter((l) => l.startsWith('rrdns_send_errors_total{')).length).toBe(cases.length - 1 + 1);
  });
});

/** Descriptors the process has open now. */
const openFds = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;

const emfileSkip = process.platform !== 'linux' ? 'not Linux' : !toolPath('prlimit') ? 'no prlimit (util-linux)' : process.getuid?.() !== 0 ? 'not root' : undefined;
if (emfileSkip) console.warn(`[rrdns tests] skipping the EMFILE test: ${emfileSkip}`);

describe.skipIf(emfileSkip !== undefined)('out of file descriptors', () => {
  let dir: string;
  let rrdns: RrdnsProcess | undefined;
  const clients: net.Socket[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await rrdns?.close();
    if (dir) removeDir(dir);
  });

  it('accept failing with EMFILE does not end the TCP listener: it accepts and answers again once descriptors free up', async () => {
    dir = tempDir('emfile');
    fs.writeFileSync(path.join(dir, 'ft.test.zone'), ZONE);
    rrdns = await startRrdns({ zonesDir: dir, args: ['--admin', 'off', '--no-watch', '--tcp-max-connections', '1000'] });
    const pid = rrdns.pid;
    // Room for a handful of connections only, set on the running process.
    const limit = openFds(pid) + 4;
    execFileSync(toolPath('prlimit')!, [`--pid=${pid}`, `--nofile=${limit}:${limit}`]);
    // Far more connections than descriptors: accepts beyond the limit fail with EMFILE, and
    // libuv sheds those connections (accepts on a reserved descriptor and closes at once).
    const N = 40;
    let shed = 0;
    for (let i = 0; i < N; i++) {
      const c = net.connect({ port: rrdns.port, host: '127.0.0.1' });
      c.on('error', () => {});
      c.on('close', () => shed++);
      clients.push(c);
    }
    // (A few more than the 4 free descriptors may be held: libuv frees its reserve descriptor to shed.)
    await waitUntil(() => shed >= N - 8, 10_000, 'the connections beyond the descriptor limit to be closed by the server');
    expect(rrdns.running()).toBe(true);
    for (const c of clients.splice(0)) c.destroy();
    await waitUntil(() => openFds(pid) < limit - 2, 10_000, 'the server to close its side');
    // Descriptors are free again: the same listener accepts and answers, over TCP and UDP.
    const peer = await TcpPeer.connect(rrdns.port);
    try {
      expectWww(await withTimeout(peer.exchange(rawQuery('www.ft.test', { id: 301 })), 5000, 'TCP answer after EMFILE'), 301);
    } finally {
      peer.destroy();
    }
    expect(addresses((await udpQuery(rrdns.port, 'www.ft.test')).packet).sort()).toEqual(WWW);
    expect(rrdns.running()).toBe(true);
  });
});
