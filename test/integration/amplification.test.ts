/**
 * Response rate limiting against a flood from one prefix (issue 9, acceptance
 * 3): the bytes rrdns sends back over UDP are bounded by the rate limit plus
 * at most 2x the bytes received, slipped (TC=1, empty) answers arrive, and a
 * client in another prefix querying at the same time gets every answer.
 * Real server, real sockets (the flooder bound to 127.0.0.2, the legitimate
 * client to 127.0.1.2: different /24s), real dig.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RrdnsServer } from '../../src/server/server.ts';
import { parseConfig, type ServerConfigInput } from '../../src/config/schema.ts';
import { captureLogger, startTestServer, writeZones, type TestServer } from '../support/server.ts';
import { parseHeader, rawQuery, sleep, TcpPeer, UdpPeer, waitUntil } from '../support/rawdns.ts';
import { addresses } from '../support/dnsclient.ts';
import { metricSum } from '../support/metrics-text.ts';
import { dig } from '../support/dig.ts';
import { FLOOD_POOL, FLOOD_ZONE, LEGIT_NAMES } from '../support/flood.ts';

const POOL = FLOOD_POOL;
const FILES = { 'amp.test.yaml': FLOOD_ZONE };

const TYPE = { A: 1, TXT: 16, ANY: 255 } as const;
const RATE = 20;

const servers: TestServer[] = [];
const others: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const o of others.splice(0)) await o.close();
});

async function serve(rrl: Record<string, unknown>, extra: Partial<ServerConfigInput> = {}): Promise<TestServer> {
  const t = await startTestServer(FILES, { rrl: { mode: 'on', responsesPerSecond: RATE, nodataPerSecond: RATE, nxdomainsPerSecond: RATE, referralsPerSecond: RATE, errorsPerSecond: RATE, ...rrl } as never, ...extra });
  servers.push(t);
  return t;
}

/** The flood mix: each query and the bucket it is accounted in (one per distinct answer; NXDOMAIN one per zone). */
function floodQuery(i: number): { msg: Buffer; bucket: string } {
  const opt = { udpSize: 1232 };
  const id = i & 0xffff;
  switch (i % 4) {
    case 0:
      return { msg: rawQuery('amp.test', { id, qtype: TYPE.ANY, opt }), bucket: 'ANY amp.test' };
    case 1:
      return { msg: rawQuery('txt.amp.test', { id, qtype: TYPE.TXT, opt }), bucket: 'TXT txt.amp.test' };
    case 2:
      return { msg: rawQuery('pool.amp.test', { id, qtype: TYPE.A, opt }), bucket: 'A pool.amp.test' };
    default:
      return { msg: rawQuery(`nx${i}-${Math.random().toString(36).slice(2, 8)}.amp.test`, { id, qtype: TYPE.A, opt }), bucket: 'NXDOMAIN amp.test' };
  }
}

/**
 * Sends `count` flood queries from `host` over `ports` sockets, as fast as the
 * sockets take them (bounded in count; a send window keeps the loop from
 * queueing without bound). Returns the sockets (they keep what they received).
 */
async function flood(port: number, host: string, count: number, ports = 1): Promise<{ peers: UdpPeer[]; sentBytes: number; buckets: Set<string>; startedAt: number }> {
  const peers = await Promise.all(Array.from({ length: ports }, () => UdpPeer.open(host)));
  let sentBytes = 0;
  const buckets = new Set<string>();
  const startedAt = performance.now();
  for (let i = 0; i < count; i += 50) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + 50); j++) {
      const { msg, bucket } = floodQuery(j);
      sentBytes += msg.length;
      buckets.add(bucket);
      batch.push(peers[j % ports]!.send(msg, port));
    }
    await Promise.all(batch);
  }
  return { peers, sentBytes, buckets, startedAt };
}

/** Waits (bounded) until the peers have received nothing new for `quietMs`. */
async function drained(peers: UdpPeer[], quietMs = 500, maxMs = 10_000): Promise<number> {
  const deadline = performance.now() + maxMs;
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const n = peers.reduce((s, p) => s + p.received.length, 0);
    if (n !== last) {
      last = n;
      lastChange = performance.now();
    }
    if (performance.now() - lastChange >= quietMs || performance.now() > deadline) return lastChange;
    await sleep(25);
  }
}

/** Polls an async condition, bounded in time. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

describe('response rate limiting under a flood from one prefix', () => {
  it.each([1, 2])('bytes back are bounded by the rate limit plus 2x the bytes in; slips arrive; another prefix gets every answer (udpThreads %i)', async (udpThreads) => {
    const t = await serve({ slip: 2 }, { udpThreads });

    // The largest answer of each flood bucket, measured from a third prefix (never limited here).
    const probe = await UdpPeer.open('127.0.3.2');
    others.push(probe);
    const maxSize = new Map<string, number>();
    for (let i = 0; i < 4; i++) {
      const { msg, bucket } = floodQuery(i);
      await probe.send(msg, t.port);
      const [reply] = await probe.until(() => true, 3000, `probe answer for ${bucket}`);
      maxSize.set(bucket, reply!.length);
      // TXT and the pool answer big: this is an amplification flood (ANY gets one RRset, RFC 8482).
      if (bucket.startsWith('TXT') || bucket.startsWith('A ')) expect(reply!.length).toBeGreaterThan(800);
    }

    // The legitimate client (another /24) queries while the flood runs, each query after the last answer.
    const legit = (async () => {
      const got: string[][] = [];
      for (let i = 0; i < 50; i++) {
        const name = LEGIT_NAMES[i % LEGIT_NAMES.length]!;
        const { packet } = await legitQueryFrom(t.port, `${name}.amp.test`);
        got.push(addresses(packet));
      }
      return got;
    })();

    const COUNT = 3000;
    const f = await flood(t.port, '127.0.0.2', COUNT, udpThreads === 1 ? 1 : 16);
    for (const p of f.peers) others.push(p);
    const lastAt = await drained(f.peers);
    const got = await legit;

    // Every legitimate answer arrived, with the right record.
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => [`198.51.100.${(i % LEGIT_NAMES.length) + 1}`]));

    const replies = f.peers.flatMap((p) => p.received);
    const receivedBytes = replies.reduce((s, r) => s + r.length, 0);
    const slipped = replies.filter((r) => {
      const h = parseHeader(r);
      return h.tc && h.ancount === 0 && h.nscount === 0;
    });
    // What the rate limit legitimately lets through: per bucket, one second of burst (RATE) plus RATE per second
    // elapsed (from the first query sent to the last reply seen), each answer at most the largest answer of its bucket.
    const elapsedS = (lastAt - f.startedAt) / 1000;
    let allowance = 0;
    for (const bucket of f.buckets) allowance += Math.ceil(RATE * (elapsedS + 1)) * maxSize.get(bucket)!;
    expect(receivedBytes).toBeLessThanOrEqual(2 * f.sentBytes + allowance);
    // Without the limit the flood would get back far more than that (every query answered in full).
    const unlimited = [...Array(COUNT).keys()].reduce((s, i) => s + maxSize.get(floodQuery(i).bucket)!, 0);
    expect(unlimited).toBeGreaterThan(2 * f.sentBytes + allowance);

    // Slipped answers arrived: TC=1, no records, the question echoed.
    expect(slipped.length).toBeGreaterThan(0);
    for (const s of slipped.slice(0, 20)) expect(parseHeader(s).qdcount).toBe(1);

    // And they are counted in /metrics, the workers' included (they report once a second).
    const text = async () => t.server.metrics.text();
    await eventually(async () => metricSum(await text(), 'rrdns_rrl_slipped_total') >= slipped.length, 5000, 'slipped responses counted');
    const m = await text();
    expect(metricSum(m, 'rrdns_rrl_slipped_total')).toBeGreaterThanOrEqual(slipped.length);
    expect(metricSum(m, 'rrdns_rrl_dropped_total', { class: 'answer' })).toBeGreaterThan(0);
    expect(metricSum(m, 'rrdns_rrl_dropped_total', { class: 'nxdomain' })).toBeGreaterThan(0);
    // Every flood query was answered, slipped or dropped: nothing is double counted.
    const answered = replies.length - slipped.length;
    const limited = metricSum(m, 'rrdns_rrl_dropped_total') + metricSum(m, 'rrdns_rrl_slipped_total');
    expect(limited).toBeLessThanOrEqual(COUNT);
    expect(limited + answered).toBeLessThanOrEqual(COUNT);
    if (udpThreads > 1) {
      // A worker thread answered too (16 flood source ports and a fresh port per legitimate query), so the bound
      // above held with two threads limiting in one shared bucket table.
      await eventually(async () => t.server.udpThreadStats().answeredByWorkers > 0, 5000, 'worker answers reported');
    }
  }, 60_000);
});

/** The legitimate client: a fresh socket bound in 127.0.1.0/24 per query, retried on timeout. */
async function legitQueryFrom(port: number, name: string) {
  let lastError: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    const peer = await UdpPeer.open('127.0.1.2');
    try {
      const q = rawQuery(name, { id: 4242, qtype: TYPE.A, opt: { udpSize: 1232 } });
      await peer.send(q, port);
      const [reply] = await peer.until((m) => m.readUInt16BE(0) === 4242, 1000, `answer to ${name}`);
      const { Packet } = await import('dns2');
      return { raw: reply!, packet: Packet.parse(reply!) };
    } catch (err) {
      lastError = err;
    } finally {
      await peer.close();
    }
  }
  throw lastError;
}

describe('what is not limited', () => {
  /** Sends `n` queries for one name from `host` one after the other; returns how many were answered in full. */
  async function answeredOf(port: number, host: string, n: number): Promise<number> {
    const peer = await UdpPeer.open(host);
    others.push(peer);
    for (let i = 0; i < n; i++) await peer.send(rawQuery('pool.amp.test', { id: i, qtype: TYPE.A, opt: { udpSize: 1232 } }), port);
    await drained([peer]);
    return peer.received.filter((r) => parseHeader(r).ancount > 0).length;
  }

  it('an exempt CIDR gets every answer', async () => {
    const t = await serve({ exempt: ['127.0.0.0/24'] });
    expect(await answeredOf(t.port, '127.0.0.2', 300)).toBe(300);
    // A client outside the exempt CIDR is limited as usual.
    expect(await answeredOf(t.port, '127.0.4.2', 300)).toBeLessThan(300);
  }, 30_000);

  it('log-only sends everything but counts what it would have limited', async () => {
    const t = await serve({ mode: 'log-only' });
    expect(await answeredOf(t.port, '127.0.0.2', 300)).toBe(300);
    const m = await t.server.metrics.text();
    expect(metricSum(m, 'rrdns_rrl_log_only_total', { class: 'answer', action: 'drop' })).toBeGreaterThan(0);
    expect(metricSum(m, 'rrdns_rrl_log_only_total', { class: 'answer', action: 'slip' })).toBeGreaterThan(0);
    expect(metricSum(m, 'rrdns_rrl_log_only_total')).toBeGreaterThanOrEqual(300 - RATE - 5);
    expect(metricSum(m, 'rrdns_rrl_dropped_total')).toBe(0);
    expect(metricSum(m, 'rrdns_rrl_slipped_total')).toBe(0);
  }, 30_000);

  it('TCP is never limited, even from a prefix that UDP limits', async () => {
    const t = await serve({ responsesPerSecond: 5 });
    expect(await answeredOf(t.port, '127.0.0.2', 100)).toBeLessThan(100);
    const tcp = await TcpPeer.connect(t.port, { host: '127.0.0.1' });
    others.push({ close: async () => tcp.destroy() });
    for (let i = 0; i < 200; i++) tcp.send(rawQuery('pool.amp.test', { id: i, qtype: TYPE.A }));
    const answers = await tcp.waitForMessages(200, 10_000);
    expect(answers.filter((a) => parseHeader(a).ancount === POOL.length)).toHaveLength(200);
  }, 30_000);

  it('IPv6: a client on ::1 is limited like any other (slips counted), and an exempt ::1/128 is not', async () => {
    const v6 = await serve({ slip: 1, responsesPerSecond: 5 }, { listen: ['[::1]:0'] });
    const peer = await UdpPeer.open('::1');
    others.push(peer);
    for (let i = 0; i < 100; i++) await peer.send(rawQuery('pool.amp.test', { id: i, qtype: TYPE.A, opt: { udpSize: 1232 } }), v6.port, '::1');
    await drained([peer]);
    const full = peer.received.filter((r) => parseHeader(r).ancount > 0).length;
    const slipped = peer.received.filter((r) => parseHeader(r).tc && parseHeader(r).ancount === 0).length;
    expect(full).toBeLessThan(100);
    expect(full + slipped).toBe(100);
    expect(metricSum(await v6.server.metrics.text(), 'rrdns_rrl_slipped_total', { class: 'answer' })).toBe(slipped);
    const exempt = await serve({ slip: 1, responsesPerSecond: 5, exempt: ['::1/128'] }, { listen: ['[::1]:0'] });
    const free = await UdpPeer.open('::1');
    others.push(free);
    for (let i = 0; i < 100; i++) await free.send(rawQuery('pool.amp.test', { id: i, qtype: TYPE.A, opt: { udpSize: 1232 } }), exempt.port, '::1');
    await drained([free]);
    expect(free.received.filter((r) => parseHeader(r).ancount > 0)).toHaveLength(100);
  }, 30_000);

  it('mode off: nothing is limited', async () => {
    const t = await serve({ mode: 'off' });
    expect(await answeredOf(t.port, '127.0.0.2', 300)).toBe(300);
  }, 30_000);
});

describe('slip and resolvers', () => {
  it('over the limit, dig still gets the right answer: the slipped TC answer sends it to TCP', async () => {
    const t = await serve({ slip: 1, responsesPerSecond: 2 });
    // Put 127.0.0.0/24's bucket for pool.amp.test A deep into debt.
    const peer = await UdpPeer.open('127.0.0.2');
    others.push(peer);
    for (let i = 0; i < 200; i++) await peer.send(rawQuery('pool.amp.test', { id: i, qtype: TYPE.A, opt: { udpSize: 1232 } }), t.port);
    await drained([peer]);
    expect(peer.received.filter((r) => parseHeader(r).tc && parseHeader(r).ancount === 0).length).toBeGreaterThan(100);
    // dig from the same prefix: its UDP query is limited (slip 1: truncated), it retries over TCP.
    const r = await dig(t.port, ['-b', '127.0.0.3', '+bufsize=1232', 'pool.amp.test', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.answer.map((a) => a.data).sort()).toEqual([...POOL].sort());
    expect(r.raw).toMatch(/Truncated, retrying in TCP mode/);
  }, 30_000);
});

describe('errors and the summary line', () => {
  it('REFUSED floods are limited per prefix (class error), and the summary names the top prefixes', async () => {
    const { logger, lines } = captureLogger('info');
    const dir = writeZones(FILES);
    const config = parseConfig({ zonesDir: dir, listen: ['127.0.0.1:0'], logLevel: 'info', admin: { listen: 'off' }, watch: { enabled: false }, stateDir: 'off', rrl: { errorsPerSecond: 5, slip: 0 } });
    const server = new RrdnsServer(config, { logger, rrlSummaryMs: 300 });
    await server.start();
    others.push({ close: () => server.close() });
    const port = server.addresses[0]!.port;
    const peer = await UdpPeer.open('127.0.0.2');
    others.push(peer);
    // Names outside every zone: REFUSED, each a different name, all one error bucket.
    for (let i = 0; i < 200; i++) await peer.send(rawQuery(`x${i}.elsewhere.example`, { id: i, qtype: TYPE.A }), port);
    await drained([peer]);
    expect(peer.received.length).toBeLessThanOrEqual(5 + 2);
    expect(peer.received.every((r) => parseHeader(r).rcode === 5)).toBe(true);
    expect(metricSum(await server.metrics.text(), 'rrdns_rrl_dropped_total', { class: 'error' })).toBeGreaterThanOrEqual(190);
    await waitUntil(() => lines.some((l) => String(l.msg).startsWith('response rate limiting: responses dropped')), 5000, 'summary line');
    const summary = lines.find((l) => String(l.msg).startsWith('response rate limiting: responses dropped'))!;
    expect(summary.top).toEqual([{ prefix: '127.0.0.0/24', responses: expect.any(Number) }]);
    expect((summary.byClass as Record<string, number>).error).toBeGreaterThanOrEqual(190);
    // Then, with the flood over, one line says limiting stopped, and no more summaries come.
    await waitUntil(() => lines.some((l) => String(l.msg).startsWith('response rate limiting stopped')), 5000, 'stopped line');
    const summaries = lines.filter((l) => String(l.msg).startsWith('response rate limiting: responses dropped')).length;
    await sleep(700);
    expect(lines.filter((l) => String(l.msg).startsWith('response rate limiting: responses dropped')).length).toBe(summaries);
  }, 30_000);
});
