/**
 * N real rrdns processes (the CLI, spawned through spawn.ts) joined to one
 * cluster through etcd: each with its own DNS port, admin port, state dir and
 * instance ID, kept across restarts (a restarted instance comes back as
 * itself, with its state dir). Optionally each with its own
 * --check-source-address, so a test can give one instance a network path of
 * its own to the backends.
 *
 *   const rr = await startInstances({ n: 3, zonesDir, etcd: etcd.endpoints, sourceAddresses: ['127.0.0.101', …] });
 *   await rr.dig(0, 'www.pool.test')                      // sorted A addresses instance 0 serves
 *   await rr.waitApi(1, '/api/v1/cluster', (c) => …)      // bounded poll of instance 1's admin API
 *   await rr.kill(2); await rr.start(2);                  // SIGKILL by PID, start again as itself
 *   afterAll(() => rr.close());
 *
 * Every wait is a bounded poll; failure messages carry the instance's output.
 */
import { dig } from './dig.ts';
import { freePort, retryOnPortClash, startRrdns, tempDir, waitUntil, type RrdnsProcess } from './spawn.ts';

export interface InstanceOptions {
  n: number;
  zonesDir: string;
  /** etcd client URLs, comma-separated (EtcdCluster.endpoints); undefined: instances run alone. */
  etcd?: string;
  /** Per instance: other etcd URLs than `etcd` (e.g. through a TcpProxy the test can cut). */
  perInstanceEtcd?: (string | undefined)[];
  /** Default: a fresh name per call, so clusters in one etcd never meet. */
  clusterName?: string;
  /** --cluster-lease-ttl, default 2 s (the smallest allowed: dead instances are seen fast). */
  leaseTtl?: number;
  /** Per instance: its --check-source-address (undefined: the default source). */
  sourceAddresses?: (string | undefined)[];
  /** Extra CLI args for every instance, and per instance. */
  args?: string[];
  perInstanceArgs?: (string[] | undefined)[];
  /** Default 'info' (the helper reads the "rrdns listening" line). */
  logLevel?: 'debug' | 'info';
}

export interface Instance {
  readonly index: number;
  /** --cluster-instance */
  readonly id: string;
  readonly port: number;
  readonly adminPort: number;
  readonly stateDir: string;
  readonly sourceAddress: string | undefined;
  /** The running process, undefined while stopped. */
  readonly proc: RrdnsProcess | undefined;
  readonly running: boolean;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

export interface Instances {
  readonly size: number;
  readonly clusterName: string;
  instance(i: number): Instance;
  readonly ids: string[];
  /** GET (or another method) on instance i's admin API; the JSON body parsed. */
  request<T = unknown>(i: number, method: string, path: string, body?: unknown): Promise<ApiResponse<T>>;
  /** GET path, 200 expected; the JSON body. */
  api<T = unknown>(i: number, path: string): Promise<T>;
  /** Polls GET path on instance i until `accept(body, status)` holds (bounded); resolves with that body. */
  waitApi<T = unknown>(i: number, path: string, accept: (body: T, status: number) => boolean, what: string, attempts?: number): Promise<T>;
  /** PUT/DELETE of a member override through instance i. */
  setOverride(i: number, pool: string, address: string, override: 'drain' | 'force-up' | 'force-down' | null): Promise<ApiResponse>;
  /** The A (or `type`) addresses instance i answers for `name`, sorted. */
  dig(i: number, name: string, type?: string): Promise<string[]>;
  /** Polls every running instance (or those in `which`) until each serves exactly `expected` for `name`. */
  waitServed(name: string, expected: string[], opts?: { which?: number[]; type?: string; attempts?: number; what?: string }): Promise<void>;
  /** Starts instance i (again) with its ports, state dir and ID; resolves once it listens. */
  start(i: number): Promise<void>;
  /** SIGTERM by PID (graceful: deregisters). */
  stop(i: number): Promise<void>;
  /** SIGKILL by PID (its lease has to expire). */
  kill(i: number): Promise<void>;
  /** Output of every instance, for failure messages. */
  describe(): string;
  close(): Promise<void>;
}

/** A fresh cluster name: [A-Za-z0-9._-]. */
export function uniqueClusterName(prefix = 't'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

export async function startInstances(opts: InstanceOptions): Promise<Instances> {
  const clusterName = opts.clusterName ?? uniqueClusterName();
  const slots = await Promise.all(
    Array.from({ length: opts.n }, async (_, i) => ({
      index: i,
      id: `rr${i}`,
      port: await freePort(),
      adminPort: await freePort(),
      stateDir: tempDir(`cluster-state${i}`),
      sourceAddress: opts.sourceAddresses?.[i],
      proc: undefined as RrdnsProcess | undefined,
      outputs: [] as string[],
    })),
  );
  const slot = (i: number) => {
    const s = slots[i];
    if (!s) throw new Error(`no rrdns instance ${i} (of ${opts.n})`);
    return s;
  };

  const etcdFor = (i: number) => opts.perInstanceEtcd?.[i] ?? opts.etcd;
  const argsFor = (i: number): string[] => {
    const s = slot(i);
    return [
      '--admin', `127.0.0.1:${s.adminPort}`,
      '--state-dir', s.stateDir,
      '--no-watch',
      ...(etcdFor(i) !== undefined
        ? [...etcdFor(i)!.split(',').flatMap((url) => ['--cluster-etcd', url]), '--cluster-name', clusterName, '--cluster-instance', s.id, '--cluster-lease-ttl', String(opts.leaseTtl ?? 2)]
        : []),
      ...(s.sourceAddress ? ['--check-source-address', s.sourceAddress] : []),
      ...(opts.args ?? []),
      ...(opts.perInstanceArgs?.[i] ?? []),
    ];
  };

  const start = async (i: number) => {
    const s = slot(i);
    if (s.proc?.running()) return;
    // The ports were free when picked; a clash is retried with new ones (the instance ID stays).
    s.proc = await retryOnPortClash(async () => {
      try {
        return await startRrdns({ zonesDir: opts.zonesDir, listen: [`127.0.0.1:${s.port}`], logLevel: opts.logLevel ?? 'info', args: argsFor(i) });
      } catch (e) {
        s.port = await freePort();
        s.adminPort = await freePort();
        throw e;
      }
    }, undefined);
    // Admin listener up (it starts with the server, but is not what "rrdns listening" reports).
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${s.adminPort}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, {
      what: `admin API of rrdns ${s.id} on 127.0.0.1:${s.adminPort}`,
      attempts: 100,
      intervalMs: 100,
      proc: s.proc,
    });
  };

  const keepOutput = (s: (typeof slots)[number]) => {
    const p = s.proc;
    if (p) s.outputs.push(`--- ${s.id} pid ${p.pid} ---\n${p.stderr().slice(-3000)}\n${p.stdout().slice(-6000)}`);
    if (s.outputs.length > 4) s.outputs.shift();
  };

  const request = async <T>(i: number, method: string, path: string, body?: unknown): Promise<ApiResponse<T>> => {
    const s = slot(i);
    const res = await fetch(`http://127.0.0.1:${s.adminPort}${path}`, {
      method,
      signal: AbortSignal.timeout(3000),
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (metrics, the status page): the text
    }
    return { status: res.status, body: parsed as T };
  };

  const inst: Instances = {
    size: opts.n,
    clusterName,
    ids: slots.map((s) => s.id),
    instance(i) {
      const s = slot(i);
      return { index: s.index, id: s.id, port: s.port, adminPort: s.adminPort, stateDir: s.stateDir, sourceAddress: s.sourceAddress, proc: s.proc, running: s.proc?.running() ?? false };
    },
    request,
    async api<T>(i: number, path: string) {
      const r = await request<T>(i, 'GET', path);
      if (r.status !== 200) throw new Error(`GET ${path} on ${slot(i).id}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      return r.body;
    },
    async waitApi<T>(i: number, path: string, accept: (body: T, status: number) => boolean, what: string, attempts = 150) {
      let last: ApiResponse<T> | undefined;
      try {
        await waitUntil(
          async () => {
            last = await request<T>(i, 'GET', path);
            return accept(last.body, last.status);
          },
          { what: `${what} (GET ${path} on ${slot(i).id})`, attempts, intervalMs: 100, ...(slot(i).proc ? { proc: slot(i).proc } : {}) },
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}\nlast response: ${JSON.stringify(last).slice(0, 2000)}`);
      }
      return last!.body;
    },
    setOverride(i, pool, address, override) {
      const path = `/api/v1/pools/${encodeURIComponent(pool)}/members/${encodeURIComponent(address)}/override`;
      return override === null ? request(i, 'DELETE', path) : request(i, 'PUT', path, { override });
    },
    async dig(i, name, type = 'A') {
      const r = await dig(slot(i).port, [name, type, '+time=1', '+tries=2']);
      return r.answer.filter((a) => a.type === type).map((a) => a.data).sort();
    },
    async waitServed(name, expected, o = {}) {
      const want = [...expected].sort().join(' ');
      const which = o.which ?? slots.filter((s) => s.proc?.running()).map((s) => s.index);
      const last = new Map<number, string>();
      try {
        await waitUntil(
          async () => {
            const got = await Promise.all(which.map(async (i) => [i, (await inst.dig(i, name, o.type)).join(' ')] as const));
            for (const [i, g] of got) last.set(i, g);
            return got.every(([, g]) => g === want);
          },
          { what: o.what ?? `every instance (${which.map((i) => slot(i).id).join(', ')}) serving [${want}] for ${name}`, attempts: o.attempts ?? 150, intervalMs: 100 },
        );
      } catch (e) {
        const seen = [...last].map(([i, g]) => `${slot(i).id}: [${g}]`).join('; ');
        throw new Error(`${(e as Error).message}\nlast answers: ${seen}\n${inst.describe().slice(-8000)}`);
      }
    },
    start,
    async stop(i) {
      const s = slot(i);
      await s.proc?.stop();
      keepOutput(s);
    },
    async kill(i) {
      const s = slot(i);
      const p = s.proc;
      if (!p?.running()) return;
      process.kill(p.pid, 'SIGKILL');
      await p.exited;
      keepOutput(s);
    },
    describe() {
      return slots
        .map((s) => {
          const live = s.proc?.running() ? [`--- ${s.id} pid ${s.proc.pid} (running) ---\n${s.proc.stderr().slice(-3000)}\n${s.proc.stdout().slice(-6000)}`] : [];
          return [...s.outputs, ...live].join('\n');
        })
        .join('\n');
    },
    async close() {
      await Promise.allSettled(slots.map((s) => s.proc?.stop(3000)));
    },
  };

  try {
    // One after another: three starts at once on two shared cores only make each slower.
    for (let i = 0; i < opts.n; i++) await start(i);
  } catch (e) {
    const detail = inst.describe();
    await inst.close();
    throw new Error(`${(e as Error).message}\n${detail.slice(-8000)}`);
  }
  return inst;
}
