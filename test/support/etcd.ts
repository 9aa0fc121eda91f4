/**
 * A real etcd cluster for tests and benches: N members (default 3) of
 * /usr/bin/etcd (Debian etcd-server, 3.4) on 127.0.0.1, each with a client and
 * a peer port of its own (ephemeral, picked free; the whole start is retried
 * when another process took one first) and a temp data directory. Members are
 * stopped and started by PID; a restarted member rejoins with its data dir.
 *
 *   const etcd = await startEtcdCluster();            // 3 members, healthy
 *   etcd.endpoints                                    // 'http://127.0.0.1:p1,http://127.0.0.1:p2,…'
 *   await etcd.stop(1); await etcd.start(1);          // one member down and back
 *   await etcd.stopAll(); await etcd.startAll();      // the whole store down and back
 *   afterAll(() => etcd.close());                     // also done by test/support/cleanup.ts
 *
 * Every wait is a bounded poll of the members' /health endpoint (no fixed
 * sleeps). Each member's output is kept (the tail of every run) for failure
 * messages: describe() gives them all.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, removeDir, startProcess, tempDir, waitUntil, type ManagedProcess } from './spawn.ts';
import { toolPath } from './tools.ts';

export const ETCD_BINARY = toolPath('etcd');
export const ETCDCTL_BINARY = toolPath('etcdctl');
/** True when etcd and etcdctl are installed (suites use describe.skipIf(!HAVE_ETCD)). */
export const HAVE_ETCD = ETCD_BINARY !== undefined && ETCDCTL_BINARY !== undefined;

export interface EtcdMember {
  readonly index: number;
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** The running process, or undefined while the member is stopped. */
  readonly proc: ManagedProcess | undefined;
  readonly pid: number | undefined;
  readonly running: boolean;
}

export interface EtcdCluster {
  readonly size: number;
  readonly members: readonly EtcdMember[];
  /** Every member's client URL. */
  readonly clientUrls: string[];
  /** The client URLs comma-separated (the form --cluster-etcd takes). */
  readonly endpoints: string;
  /** Stops member i by PID (SIGTERM, or SIGKILL at once with `kill`); resolves once it exited. Idempotent. */
  stop(i: number, opts?: { kill?: boolean }): Promise<void>;
  /**
   * Starts member i again with its data dir and ports. By default waits until it
   * reports healthy, which needs a quorum: when most members are down, start
   * them with `{ wait: false }` and then waitHealthy() (startAll does).
   */
  start(i: number, opts?: { wait?: boolean }): Promise<void>;
  stopAll(opts?: { kill?: boolean }): Promise<void>;
  /** Starts every stopped member, then waits until all are healthy. */
  startAll(): Promise<void>;
  /** Waits until member i (default: every running member) answers /health with true. */
  waitHealthy(i?: number): Promise<void>;
  /** Runs `etcdctl ARGS` (API v3) against the running members; resolves with stdout. */
  etcdctl(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** The key/value pairs under `prefix` (etcdctl get --prefix), read from the running members. */
  getPrefix(prefix: string): Promise<Map<string, string>>;
  /** The output of every member (every run so far, the latest last), for failure messages. */
  describe(): string;
  /** Stops every member and removes the data dirs. Idempotent. */
  close(): Promise<void>;
}

export interface EtcdOptions {
  /** Members, default 3. */
  size?: number;
  /** Raft heartbeat, default 50 ms (etcd's 100 ms default makes elections slower than tests need). */
  heartbeatMs?: number;
  /** Raft election timeout, default 500 ms (10 heartbeats; etcd's default is 1000 ms). */
  electionMs?: number;
  /** Bound on each wait for health, default 30000 ms. */
  healthTimeoutMs?: number;
  /** etcd's --log-level, default 'warn' (info logs every raft step: the tail would hold nothing else). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** Output kept per member across its runs. */
const LOG_LIMIT = 32 * 1024;
const ADDRESS_IN_USE = /address already in use/i;

const open = new Set<EtcdCluster>();

/** Closes every cluster started in this process that is still open (test/support/cleanup.ts calls it after each file). */
export async function closeEtcdClusters(): Promise<void> {
  await Promise.allSettled([...open].map((c) => c.close()));
}

/** /health of one member: true when it has a leader and can serve a read (etcd 3.4's own check). */
async function healthy(clientUrl: string): Promise<boolean> {
  const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
  const body = (await res.json()) as { health?: unknown };
  return res.ok && (body.health === true || body.health === 'true');
}

/** Starts an etcd cluster on loopback and resolves once every member is healthy. */
export async function startEtcdCluster(opts: EtcdOptions = {}): Promise<EtcdCluster> {
  if (!HAVE_ETCD) throw new Error("etcd/etcdctl not found (Debian packages 'etcd-server' and 'etcd-client')");
  for (let attempt = 1; ; attempt++) {
    const cluster = await tryStart(opts);
    try {
      await cluster.waitHealthy();
      return cluster;
    } catch (e) {
      const clash = ADDRESS_IN_USE.test(cluster.describe());
      await cluster.close();
      if (!clash || attempt >= 3) throw new Error(`${(e as Error).message}\n${cluster.describe()}`);
      // A port picked free was taken by another process before etcd bound it: new ports, new start.
    }
  }
}

async function tryStart(opts: EtcdOptions): Promise<EtcdCluster> {
  const size = opts.size ?? 3;
  const heartbeat = opts.heartbeatMs ?? 50;
  const election = opts.electionMs ?? 500;
  const healthTimeoutMs = opts.healthTimeoutMs ?? 30_000;
  const root = tempDir('etcd');
  const token = `rrdns-test-${randomBytes(6).toString('hex')}`;
  // Client and peer ports: distinct, each free when picked.
  const ports = new Set<number>();
  while (ports.size < size * 2) ports.add(await freePort('127.0.0.1'));
  const [clientPorts, peerPorts] = [[...ports].slice(0, size), [...ports].slice(size)];
  const base = Array.from({ length: size }, (_, i) => ({
    index: i,
    name: `m${i}`,
    clientUrl: `http://127.0.0.1:${clientPorts[i]}`,
    peerUrl: `http://127.0.0.1:${peerPorts[i]}`,
    dataDir: path.join(root, `m${i}`),
  }));
  const initialCluster = base.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const procs: (ManagedProcess | undefined)[] = new Array(size).fill(undefined);
  const logs: string[] = new Array(size).fill('');
  const runs: number[] = new Array(size).fill(0);
  // Inherited ETCD_* / ETCDCTL_* variables would change what the members and etcdctl do.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD')));

  const spawnMember = (i: number) => {
    const m = base[i]!;
    fs.mkdirSync(m.dataDir, { recursive: true, mode: 0o700 });
    runs[i]!++;
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster,
      // Ignored once the data dir holds a member: a restart rejoins with what it had.
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--heartbeat-interval', String(heartbeat),
      '--election-timeout', String(election),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', opts.logLevel ?? 'warn',
    ];
    const p = startProcess(`etcd ${m.name}`, ETCD_BINARY!, args, { cwd: root, env });
    procs[i] = p;
    const run = runs[i];
    void p.exited.then(({ code, signal }) => {
      logs[i] = `${logs[i]}\n--- run ${run} (pid ${p.pid}) exited: code ${code} signal ${signal} ---\n${p.stderr()}${p.stdout()}`.slice(-LOG_LIMIT);
    });
  };

  const member = (i: number): EtcdMember => {
    const m = base[i];
    if (!m) throw new Error(`no etcd member ${i} (cluster of ${size})`);
    const p = procs[i];
    return { ...m, proc: p, pid: p?.running() ? p.pid : undefined, running: p?.running() ?? false };
  };

  const waitOne = (i: number) =>
    waitUntil(() => healthy(base[i]!.clientUrl), {
      what: `etcd ${base[i]!.name} healthy at ${base[i]!.clientUrl}`,
      attempts: Math.ceil(healthTimeoutMs / 100),
      intervalMs: 100,
      ...(procs[i] ? { proc: procs[i] } : {}),
    });

  const running = () => base.filter((_, i) => procs[i]?.running());
  let closing: Promise<void> | undefined;

  const cluster: EtcdCluster = {
    size,
    get members() {
      return base.map((_, i) => member(i));
    },
    clientUrls: base.map((m) => m.clientUrl),
    endpoints: base.map((m) => m.clientUrl).join(','),
    async stop(i, o = {}) {
      const p = member(i).proc;
      if (!p?.running()) return;
      if (o.kill) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await p.exited;
      } else await p.stop(10_000);
    },
    async start(i, o = {}) {
      if (closing) throw new Error('etcd cluster closed');
      if (!member(i).running) spawnMember(i);
      if (o.wait ?? true) await waitOne(i);
    },
    async stopAll(o = {}) {
      // One after another: members told to stop at once wait for each other (seconds, on SIGTERM).
      for (let i = 0; i < size; i++) await cluster.stop(i, o);
    },
    async startAll() {
      for (let i = 0; i < size; i++) await cluster.start(i, { wait: false });
      await cluster.waitHealthy();
    },
    async waitHealthy(i) {
      if (i !== undefined) return waitOne(i);
      for (let j = 0; j < size; j++) if (procs[j]?.running()) await waitOne(j);
    },
    etcdctl(args, o = {}) {
      const endpoints = running().map((m) => m.clientUrl).join(',') || cluster.endpoints;
      return new Promise((resolve, reject) => {
        execFile(
          ETCDCTL_BINARY!,
          [`--endpoints=${endpoints}`, '--dial-timeout=2s', '--command-timeout=5s', ...args],
          { env: { ...env, ETCDCTL_API: '3' }, timeout: o.timeoutMs ?? 10_000, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout, stderr) => (err ? reject(new Error(`etcdctl ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)),
        );
      });
    },
    async getPrefix(prefix) {
      const out = await cluster.etcdctl(['get', '--prefix', prefix, '-w', 'json']);
      const doc = JSON.parse(out) as { kvs?: { key: string; value: string }[] };
      const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
      return new Map((doc.kvs ?? []).map((kv) => [b64(kv.key), b64(kv.value)]));
    },
    describe() {
      return base
        .map((m, i) => {
          const p = procs[i];
          const live = p?.running() ? `\n--- run ${runs[i]} (pid ${p.pid}) running ---\n${p.stderr()}${p.stdout()}` : '';
          return `=== etcd ${m.name} client ${m.clientUrl} peer ${m.peerUrl} ===${logs[i]}${live}`.slice(-LOG_LIMIT);
        })
        .join('\n');
    },
    close() {
      closing ??= (async () => {
        open.delete(cluster);
        // SIGKILL: the data is thrown away, and a member told to stop while its peers go too waits for them.
        await cluster.stopAll({ kill: true });
        removeDir(root);
      })();
      return closing;
    },
  };
  open.add(cluster);
  for (let i = 0; i < size; i++) spawnMember(i);
  return cluster;
}
