/**
 * A loopback "internet" in which round-robin DNS meets caching resolvers,
 * shared by test/integration/resolver-farm.test.ts and `npm run bench:resolvers`:
 *
 *  - three HTTP backends on 127.0.0.21/.22/.23 (ephemeral ports) that count
 *    client requests (`/`) and answer health checks (`/health`) with
 *    `X-Load: <client requests in the last second ÷ capacity>`;
 *  - the real rrdns server (in-process, admin API on an ephemeral port),
 *    serving `www.farm.test` as a pool of the three, short TTL, optionally
 *    with `balance.feedback` reading that header;
 *  - one Unbound per client population, stub-zoned to rrdns, each querying
 *    it from its own source address (127.0.0.31, .32, …) and keeping its
 *    cache (that is the phenomenon: everyone behind it gets one answer for
 *    the TTL);
 *  - per resolver, one Node child process (farm-clients.ts) running that
 *    many client loops: resolve through the resolver, request the FIRST
 *    address, pause, repeat; bounded, and stopped by PID.
 *
 *   const farm = await startFarm({ feedback: true, populations: [12, 3, 1] });
 *   const run = farm.runClients({ durationMs: 30_000 });
 *   await run.finished;   // or run.stop()
 *   farm.backends.map((b) => b.requests); await farm.members();
 *   await farm.close();
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { MemberSnapshot, PoolSnapshot } from '../../src/observability/snapshot.ts';
import type { ClientsConfig, ClientsReport } from './farm-clients.ts';
import { startTestServer, type TestServer } from './server.ts';
import { startProcess, type ManagedProcess } from './spawn.ts';
import { startUnbound, type UnboundServer } from './unbound.ts';

export const FARM_ORIGIN = 'farm.test';
export const FARM_NAME = `www.${FARM_ORIGIN}`;
const CLIENTS_SCRIPT = path.join(import.meta.dirname, 'farm-clients.ts');

export interface FarmBackendSpec {
  address: string;
  /** Client requests per second at which it reports X-Load 1. */
  capacity: number;
  /** The member's configured weight (default: the zone's default, 1). */
  weight?: number;
}

/**
 * Equal backends with room for the whole population if it were spread evenly
 * (16 client loops at ~10 requests/s each ≈ 160/s against 3 × 75), but not for
 * the 12 loops behind the biggest resolver on one of them (≈ 120/s: load 1.6).
 */
export const DEFAULT_BACKENDS: readonly FarmBackendSpec[] = [
  { address: '127.0.0.21', capacity: 75 },
  { address: '127.0.0.22', capacity: 75 },
  { address: '127.0.0.23', capacity: 75 },
];
/** Client loops behind each resolver: very unequal, like a big ISP resolver, a small one and a single user. */
export const DEFAULT_POPULATIONS: readonly number[] = [12, 3, 1];

export interface FeedbackOptions {
  /** Zone duration text, e.g. '1s'. */
  interval?: string;
  gain?: number;
  maxStep?: number;
  floor?: number;
}

export interface FarmOptions {
  backends?: readonly FarmBackendSpec[];
  populations?: readonly number[];
  /** Load feedback on the pool (balance.feedback, signal load); off = plain round robin. */
  feedback?: boolean | FeedbackOptions;
  /** TTL of the pooled name (seconds; the health-aware cap may serve less). Default 3. */
  ttl?: number;
  /** Seed for the clients' pauses. */
  seed?: number;
}

export interface FarmBackend {
  readonly address: string;
  readonly port: number;
  readonly capacity: number;
  /** Client requests (`/`) since start or the last resetCounts(). */
  readonly requests: number;
  /** Health checks answered. */
  readonly checks: number;
  /** What the next check will report: client requests in the last second ÷ capacity. */
  load(): number;
  resetCounts(): void;
  close(): Promise<void>;
}

export interface ClientsRun {
  /** One report per resolver's client process, in resolver order; resolves once they have all exited. */
  finished: Promise<ClientsReport[]>;
  /** SIGTERM to each client process by PID (they print their report and exit), then waits for them. */
  stop(): Promise<ClientsReport[]>;
}

export interface RunOptions {
  durationMs: number;
  /** Mean pause of a client loop between requests. Default 100 ms. */
  pauseMs?: number;
  /** Per client process. Default 50,000. */
  maxRequests?: number;
}

export interface Farm {
  backends: FarmBackend[];
  resolvers: { address: string; port: number; pid: number; clients: number }[];
  server: TestServer;
  adminPort: number;
  /** The pool's members as the admin API's status reports them (GET /api/v1/health). */
  members(): Promise<MemberSnapshot[]>;
  /** Resolves once every member's check has passed (bounded). */
  ready(timeoutMs?: number): Promise<void>;
  runClients(opts: RunOptions): ClientsRun;
  /** Stops the clients, the resolvers, rrdns and the backends, each by its own handle. */
  close(): Promise<void>;
}

/** A backend that counts client requests in 100 ms buckets, so its load covers the last second. */
async function startFarmBackend(spec: FarmBackendSpec): Promise<FarmBackend> {
  const BUCKET_MS = 100;
  const BUCKETS = 10;
  const buckets = new Uint32Array(BUCKETS);
  let bucketAt = Math.floor(performance.now() / BUCKET_MS);
  let requests = 0;
  let checks = 0;
  // Clears the buckets that ended since the last call, so the sum is the last second's count.
  const roll = () => {
    const now = Math.floor(performance.now() / BUCKET_MS);
    for (let b = bucketAt + 1; b <= now && b <= bucketAt + BUCKETS; b++) buckets[b % BUCKETS] = 0;
    bucketAt = now;
  };
  const load = () => {
    roll();
    let sum = 0;
    for (const n of buckets) sum += n;
    return sum / spec.capacity;
  };
  const sockets = new Set<net.Socket>();
  const server = http.createServer({ keepAliveTimeout: 2000 }, (req, res) => {
    res.on('error', () => {});
    if (req.url === '/health') {
      checks++;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-load': load().toFixed(3) }).end('OK');
      return;
    }
    roll();
    buckets[bucketAt % BUCKETS]!++;
    requests++;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: spec.address, port: 0, exclusive: true }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: spec.address,
    port,
    capacity: spec.capacity,
    get requests() {
      return requests;
    },
    get checks() {
      return checks;
    },
    load,
    resetCounts() {
      requests = 0;
      checks = 0;
    },
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** The zone: `www` pools the backends, each checked on its own port; feedback reads their X-Load. */
export function farmZone(backends: readonly FarmBackend[], specs: readonly FarmBackendSpec[], opts: FarmOptions): string {
  const members: Record<string, Record<string, unknown>> = {};
  backends.forEach((b, i) => {
    members[b.address] = { check: { port: b.port }, ...(specs[i]!.weight !== undefined ? { weight: specs[i]!.weight } : {}) };
  });
  const fb = opts.feedback === true ? {} : opts.feedback || undefined;
  const pool: Record<string, unknown> = {
    // Generous timeout: on a loaded 2-core machine a healthy loopback backend must not time out.
    // interval × fall caps the TTL (health-aware TTL), so fall 3 at 1 s keeps a 3 s TTL.
    check: { type: 'http', path: '/health', interval: '1s', timeout: '900ms', fall: 3, rise: 1, load: { header: 'X-Load' } },
    members,
    ...(fb ? { balance: { feedback: { signal: 'load', interval: fb.interval ?? '1s', ...(fb.gain !== undefined ? { gain: fb.gain } : {}), ...(fb.maxStep !== undefined ? { maxStep: fb.maxStep } : {}), ...(fb.floor !== undefined ? { floor: fb.floor } : {}) } } } : {}),
  };
  const zone = {
    origin: FARM_ORIGIN,
    // A low zone minimum: the pool's short TTL is served as written.
    ttl: { default: 300, min: 1 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 5 },
    records: {
      '@': { NS: 'ns1' },
      ns1: { A: '127.0.0.1' },
      www: { ttl: opts.ttl ?? 3, A: backends.map((b) => b.address), pool },
    },
  };
  // JSON is YAML: the native zone format reads it as it is.
  return JSON.stringify(zone, null, 2);
}

async function getJson(port: number, pathname: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`GET ${pathname}: HTTP ${res.status}`);
  return res.json();
}

export async function startFarm(opts: FarmOptions = {}): Promise<Farm> {
  const specs = opts.backends ?? DEFAULT_BACKENDS;
  const populations = opts.populations ?? DEFAULT_POPULATIONS;
  const backends: FarmBackend[] = [];
  const unbounds: UnboundServer[] = [];
  let server: TestServer | undefined;
  const clientProcs = new Set<ManagedProcess>();
  const close = async () => {
    await Promise.all([...clientProcs].map((p) => p.stop(2000)));
    await Promise.all(unbounds.map((u) => u.close()));
    await server?.close();
    await Promise.all(backends.map((b) => b.close()));
  };
  try {
    for (const spec of specs) backends.push(await startFarmBackend(spec));
    server = await startTestServer({ [`${FARM_ORIGIN}.yaml`]: farmZone(backends, specs, opts) }, { admin: { listen: '127.0.0.1:0' } });
    const authPort = server.port;
    for (let i = 0; i < populations.length; i++) {
      // Its own source address, as separate resolvers have: rrdns sees three clients, not one.
      unbounds.push(await startUnbound({ stubs: [{ zone: FARM_ORIGIN, port: authPort }], extraServerLines: [`outgoing-interface: 127.0.0.${31 + i}`] }));
    }
  } catch (e) {
    await close();
    throw e;
  }
  const adminPort = server.server.adminAddress!.port;
  const members = async (): Promise<MemberSnapshot[]> => {
    const body = (await getJson(adminPort, '/api/v1/health')) as { pools: PoolSnapshot[] };
    const pool = body.pools.find((p) => p.name === `${FARM_NAME}.` && p.type === 'A');
    if (!pool) throw new Error(`no pool ${FARM_NAME}. in the status API`);
    return pool.members;
  };
  const portOf = Object.fromEntries(backends.map((b) => [b.address, b.port]));
  return {
    backends,
    resolvers: unbounds.map((u, i) => ({ address: `127.0.0.${31 + i}`, port: u.port, pid: u.pid, clients: populations[i]! })),
    server,
    adminPort,
    members,
    async ready(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      let last: MemberSnapshot[] = [];
      while (Date.now() < deadline) {
        last = await members();
        if (last.length === backends.length && last.every((m) => m.health === 'up')) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`members not all up after ${timeoutMs} ms: ${last.map((m) => `${m.address} ${m.health}`).join(', ')}`);
    },
    runClients(run) {
      const procs = unbounds.map((u, i) => {
        const config: ClientsConfig = {
          resolver: { host: '127.0.0.1', port: u.port },
          name: FARM_NAME,
          backends: portOf,
          loops: populations[i]!,
          pauseMs: run.pauseMs ?? 100,
          durationMs: run.durationMs,
          maxRequests: run.maxRequests ?? 50_000,
          seed: (opts.seed ?? 1) * 100 + i,
        };
        const proc = startProcess(`farm-clients-${i}`, process.execPath, [CLIENTS_SCRIPT, JSON.stringify(config)]);
        clientProcs.add(proc);
        return proc;
      });
      const reports = async (): Promise<ClientsReport[]> => {
        // Bounded: the clients stop themselves at the deadline; past it (plus a margin) they are stopped by PID.
        const guard = setTimeout(() => procs.forEach((p) => void p.stop(2000)), run.durationMs + 10_000);
        await Promise.all(procs.map((p) => p.exited));
        clearTimeout(guard);
        return procs.map((p) => {
          clientProcs.delete(p);
          const line = p.stdout().trim().split('\n').pop() ?? '';
          try {
            return JSON.parse(line) as ClientsReport;
          } catch {
            throw new Error(`${p.name} (pid ${p.pid}) printed no report\n--- stderr ---\n${p.stderr().slice(-2000)}`);
          }
        });
      };
      const finished = reports();
      return {
        finished,
        async stop() {
          await Promise.all(procs.map((p) => p.stop(2000)));
          return finished;
        },
      };
    },
    close,
  };
}

/** max/mean of the counts: 1 is perfectly even, 3 is everything on one of three. */
export function spread(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (counts.length === 0 || total === 0) return NaN;
  return Math.max(...counts) / (total / counts.length);
}
