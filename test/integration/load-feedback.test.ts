/**
 * Load feedback with real parts: the checker reads loads from real HTTP
 * backends on 127.0.0.x (a header, a JSON path), and the real server moves
 * a pool's effective weights from them, which the status API shows and the
 * first positions of real DNS answers follow; when the backends stop
 * reporting, the weights go back to the configured ones. Every wait is a
 * bounded poll for a state, never an assertion on how long it took.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import { createChecker, LOAD_BODY_BYTES, type CheckOutcome } from '../../src/health/checkers.ts';
import { makeTarget } from '../../src/health/target.ts';
import type { MemberSnapshot } from '../../src/observability/snapshot.ts';
import { nextLoopback, waitFor } from '../support/backends.ts';
import { digAll } from '../support/dig.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** A backend whose reply (status, headers such as X-Load, body) the test changes at run time. */
interface LoadBackend {
  readonly address: string;
  readonly port: number;
  readonly hits: number;
  reply: Reply;
  close(): Promise<void>;
}

async function loadBackend(reply: Reply = {}): Promise<LoadBackend> {
  const address = nextLoopback();
  const sockets = new Set<net.Socket>();
  let hits = 0;
  const backend = {
    address,
    port: 0,
    get hits() {
      return hits;
    },
    reply,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
  const server = http.createServer((req, res) => {
    hits++;
    res.on('error', () => {}); // a checker that stops reading a big body resets the connection
    const r = backend.reply;
    const body = r.body ?? 'OK';
    res.writeHead(r.status ?? 200, { 'content-type': 'text/plain', ...r.headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen({ host: address, port: 0 }, resolve));
  backend.port = (server.address() as net.AddressInfo).port;
  return backend;
}

const backends: LoadBackend[] = [];
const started = async (reply?: Reply) => {
  const b = await loadBackend(reply);
  backends.push(b);
  return b;
};
afterAll(async () => {
  for (const b of backends.splice(0)) await b.close();
});

describe('the checker reads the load a backend reports', () => {
  const checker = createChecker();
  let b: LoadBackend;
  beforeAll(async () => {
    b = await started();
  });
  afterAll(() => checker.close());
  const check = (input: CheckConfigInput): Promise<CheckOutcome> =>
    checker.check(makeTarget(b.address, 'www.lb.test', CheckSchema.parse({ port: b.port, interval: '2s', timeout: '1s', ...input })), new AbortController().signal);

  const json = (value: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
  const HEADER = { load: { header: 'X-Load' } };
  const PATH = { load: { json: 'metrics.load' } };
  const cases: { name: string; reply: Reply; check: CheckConfigInput; ok?: boolean; load: number | undefined; detail: RegExp }[] = [
    { name: 'header present', reply: { headers: { 'X-Load': '0.73' } }, check: HEADER, load: 0.73, detail: /^HTTP 200, load 0\.73$/ },
    { name: 'header with spaces and an exponent', reply: { headers: { 'X-Load': ' 5e-1 ' } }, check: HEADER, load: 0.5, detail: /load 0\.5$/ },
    { name: 'header name matched case-insensitively', reply: { headers: { 'x-load': '2' } }, check: { load: { header: 'X-LOAD' } }, load: 2, detail: /load 2$/ },
    { name: 'header absent: passes, no load', reply: {}, check: HEADER, load: undefined, detail: /^HTTP 200, no load: header X-Load missing$/ },
    { name: 'header garbage: passes, no load', reply: { headers: { 'X-Load': 'high' } }, check: HEADER, load: undefined, detail: /no load: header X-Load is not a non-negative number/ },
    { name: 'header negative: passes, no load', reply: { headers: { 'X-Load': '-0.5' } }, check: HEADER, load: undefined, detail: /no load: header X-Load is not a non-negative number/ },
    { name: 'header read from a HEAD check', reply: { headers: { 'X-Load': '0.25' } }, check: { ...HEADER, method: 'HEAD' }, load: 0.25, detail: /load 0\.25$/ },
    { name: 'failing status: fails, no load read', reply: { status: 503, headers: { 'X-Load': '0.9' } }, check: HEADER, ok: false, load: undefined, detail: /^HTTP 503 not in 200-399$/ },
    { name: 'JSON path nested', reply: json({ metrics: { load: 0.42, other: 1 } }), check: PATH, load: 0.42, detail: /^HTTP 200, load 0\.42$/ },
    { name: 'JSON path at the top level', reply: json({ load: 3 }), check: { load: { json: 'load' } }, load: 3, detail: /load 3$/ },
    { name: 'JSON path missing: passes, no load', reply: json({ metrics: { cpu: 0.4 } }), check: PATH, load: undefined, detail: /no load: no metrics\.load in the body/ },
    { name: 'JSON value a string: passes, no load', reply: json({ metrics: { load: '0.4' } }), check: PATH, load: undefined, detail: /no load: metrics\.load is not a number/ },
    { name: 'JSON value negative: passes, no load', reply: json({ metrics: { load: -1 } }), check: PATH, load: undefined, detail: /not a finite non-negative number/ },
    { name: 'JSON through a prototype key: no load', reply: json({ metrics: {} }), check: { load: { json: 'metrics.constructor' } }, load: undefined, detail: /no metrics\.constructor in the body/ },
    { name: 'body not JSON: passes, no load', reply: { body: 'OK' }, check: PATH, load: undefined, detail: /no load: body is not JSON$/ },
    {
      name: 'huge body: read only up to 64 KiB, passes, no load',
      reply: { body: `{"pad":"${'x'.repeat(1024 * 1024)}","metrics":{"load":0.5}}` },
      check: PATH,
      load: undefined,
      detail: new RegExp(`no load: body is not JSON within its first ${LOAD_BODY_BYTES} bytes`),
    },
    {
      name: 'JSON load and a body match from one read, bounded by body.maxBytes',
      reply: json({ status: 'OK', metrics: { load: 0.1 } }),
      check: { ...PATH, body: { match: '"status":"OK"', maxBytes: 1000 } },
      load: 0.1,
      detail: /^HTTP 200, load 0\.1$/,
    },
    { name: 'body match fails: fails, no load', reply: json({ status: 'DOWN', metrics: { load: 0.1 } }), check: { ...PATH, body: { match: '"status":"OK"' } }, ok: false, load: undefined, detail: /body does not match/ },
    { name: 'no check.load: no load even when the backend sends one', reply: { headers: { 'X-Load': '0.9' } }, check: {}, load: undefined, detail: /^HTTP 200$/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      b.reply = c.reply;
      const out = await check(c.check);
      expect(out.ok).toBe(c.ok ?? true);
      expect(out.load).toBe(c.load);
      expect(out.detail).toMatch(c.detail);
    });
  }
});

describe('a pool balanced on the loads its backends report', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  // Generous timeout for a loaded machine: a failed check only means one missing reading.
  const CHECK = { interval: '400ms', timeout: '300ms', fall: 3, rise: 2, load: { header: 'X-Load' } };

  async function serve(members: { b: LoadBackend; check?: Record<string, unknown> }[]): Promise<TestServer> {
    const zone = {
      origin: 'lb.test',
      ttl: { default: 300, min: 0 },
      soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
      records: {
        '@': { NS: 'ns1' },
        ns1: { A: '192.0.2.53' },
        www: {
          A: members.map((m) => m.b.address),
          pool: {
            check: CHECK,
            members: Object.fromEntries(members.map((m) => [m.b.address, { check: { port: m.b.port, ...m.check } }])),
            balance: { feedback: { signal: 'load', interval: '400ms', gain: 0.5, maxStep: 0.25, floor: 0.1 } },
          },
        },
      },
    };
    const t = await startTestServer({ 'lb.test.yaml': JSON.stringify(zone, null, 2) }, { admin: { listen: '127.0.0.1:0' } });
    servers.push(t);
    return t;
  }

  /** The pool's members as the status API shows them. */
  async function status(t: TestServer): Promise<MemberSnapshot[]> {
    const res = await fetch(`http://127.0.0.1:${t.server.adminAddress!.port}/api/v1/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { pools: { name: string; members: MemberSnapshot[] }[] };
    return body.pools.find((p) => p.name === 'www.lb.test.')!.members;
  }

  /** Polls the status API (bounded) until `want` holds. */
  async function until(t: TestServer, want: (m: MemberSnapshot[]) => boolean, what: string): Promise<MemberSnapshot[]> {
    let last: MemberSnapshot[] = [];
    for (let i = 0; i < 300; i++) {
      last = await status(t);
      if (want(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`gave up waiting for ${what}; last: ${JSON.stringify(last.map((m) => [m.address, m.effectiveWeight, m.load, m.lastResult]))}`);
  }

  /** How often each address came first over `n` real dig queries (one dig run). */
  async function firsts(t: TestServer, n: number): Promise<Map<string, number>> {
    const args = Array.from({ length: n }, () => ['www.lb.test', 'A']).flat();
    const counts = new Map<string, number>();
    for (const r of await digAll(t.port, args)) {
      const first = r.answer.find((a) => a.type === 'A')!.data;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    return counts;
  }

  it('loads 0.9 / 0.3 / 0.3 (two headers, one JSON body): the overloaded member loses weight and first positions, the others gain; without reports the weights go back', async () => {
    const hot = await started({ headers: { 'X-Load': '0.9' } });
    const cool = await started({ headers: { 'X-Load': '0.3' } });
    const jsonCool = await started({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metrics: { load: 0.3 } }) });
    const t = await serve([{ b: hot }, { b: cool }, { b: jsonCool, check: { load: { json: 'metrics.load' } } }]);
    const byAddress = (ms: MemberSnapshot[], b: LoadBackend) => ms.find((m) => m.address === b.address)!;

    // The weights move towards relieving the hot member, down to its floor (0.1 × 1).
    const moved = await until(t, (ms) => byAddress(ms, hot).effectiveWeight <= 0.1 + 1e-9, 'the hot member to reach its floor');
    expect(byAddress(moved, hot)).toMatchObject({ weight: 1, load: 0.9 });
    for (const b of [cool, jsonCool]) {
      expect(byAddress(moved, b).load).toBe(0.3);
      expect(byAddress(moved, b).effectiveWeight).toBeGreaterThan(1);
    }
    expect(moved.reduce((s, m) => s + m.effectiveWeight, 0)).toBeCloseTo(3, 6);

    // Answers follow: weights 0.1 : 1.45 : 1.45 give the hot member about 3% of first positions (plain rotation: 33%).
    const counts = await firsts(t, 120);
    expect(counts.get(hot.address) ?? 0).toBeLessThan(20);
    for (const b of [cool, jsonCool]) expect(counts.get(b.address) ?? 0).toBeGreaterThan(40);

    // The backends stop reporting: every weight decays back to exactly the configured one.
    hot.reply = {};
    cool.reply = {};
    jsonCool.reply = { body: JSON.stringify({ metrics: {} }) };
    const back = await until(t, (ms) => ms.every((m) => m.effectiveWeight === m.weight), 'the weights to return to the configured ones');
    expect(back.map((m) => m.lastResult)).toEqual(expect.arrayContaining([expect.stringMatching(/no load/)]));
    // Equal weights again: plain rotation, each member first exactly a third of the time.
    const even = await firsts(t, 99);
    expect([...even.values()]).toEqual([33, 33, 33]);
  });
});
