/**
 * The etcd side of the cluster, and nothing else: one client (the npm
 * package `etcd3`, imported here dynamically so that an instance without
 * --cluster-etcd never loads it or the gRPC stack it brings), one lease kept
 * alive, batched writes, a prefix snapshot and a prefix watch. Every call has
 * the configured deadline, so a slow etcd surfaces as an error the cluster
 * node turns into the degraded state; this file keeps no state of the view.
 */
import fs from 'node:fs';
import { ErrorCode, RrdnsError } from '../errors.ts';
import type { ClusterConfig } from '../config/schema.ts';

export interface KeyValue {
  key: string;
  value: string;
}

export interface WatchHandlers {
  put(kv: KeyValue): void;
  delete(key: string): void;
  /** The stream broke (etcd gone, compacted past our revision, cancelled by the server). */
  broken(err: Error): void;
}

/** What the cluster node needs from etcd; tests of the node's logic could give another one. */
export interface ClusterStore {
  /** Grants a lease of `ttlSeconds` and keeps it alive; `lost` is called once if it expires or cannot be renewed. */
  grantLease(ttlSeconds: number, lost: (err: Error) => void): Promise<string>;
  /** Drops the current lease's keepalive (and revokes it when etcd answers: our keys go at once). */
  revokeLease(): Promise<void>;
  /** Puts (value) and deletes (value null) in transactions of at most `TXN_OPS` operations; lease-bound puts use the current lease. */
  write(ops: readonly { key: string; value: string | null; lease: boolean }[]): Promise<void>;
  /**
   * Puts `key` under the current lease only if it does not exist; else
   * returns the value that holds it (another process's member key, or our
   * own from before a reconnection).
   */
  claim(key: string, value: string): Promise<{ ok: true } | { ok: false; holder: string }>;
  /** A cheap read of one key (with the deadline): does etcd answer us now? */
  ping(key: string): Promise<void>;
  /** Every key under `prefix` and the revision of that read. */
  snapshot(prefix: string): Promise<{ revision: string; kvs: KeyValue[] }>;
  /** Watches `prefix` from `fromRevision` (exclusive: events after the snapshot). */
  watch(prefix: string, fromRevision: string, handlers: WatchHandlers): Promise<{ cancel(): Promise<void> }>;
  close(): void;
}

/** etcd's default --max-txn-ops is 128; a little under it. */
export const TXN_OPS = 100;

/** Reads a file a cluster option names, or throws an error naming the option and the file. */
function readOption(file: string, option: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new RrdnsError(ErrorCode.CLUSTER_CONFIG, `cannot read ${option} "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

/** Connects the etcd3 client (no request is made yet: the first call dials). */
export async function openEtcdStore(config: ClusterConfig): Promise<ClusterStore> {
  // Read at start, before any dial: a missing file is a configuration error, not etcd trouble.
  const credentials = config.tls
    ? {
        rootCertificate: config.tls.ca ? readOption(config.tls.ca, '--cluster-etcd-ca') : (undefined as unknown as Buffer),
        ...(config.tls.cert ? { certChain: readOption(config.tls.cert, '--cluster-etcd-cert'), privateKey: readOption(config.tls.key!, '--cluster-etcd-key') } : {}),
      }
    : undefined;
  const password = config.passwordFile ? readOption(config.passwordFile, '--cluster-etcd-password-file').toString('utf8').replace(/\r?\n$/, '') : undefined;
  let mod: typeof import('etcd3');
  let policies: typeof import('cockatiel');
  try {
    mod = await import('etcd3');
    policies = await import('cockatiel');
  } catch (e) {
    throw new RrdnsError(ErrorCode.CLUSTER_CONFIG, `--cluster-etcd needs the etcd3 package (npm ci installs it): ${(e as Error).message}`, { cause: e });
  }
  const timeout = config.timeoutMs;
  const client = new mod.Etcd3({
    hosts: config.etcd,
    ...(credentials ? { credentials } : {}),
    ...(config.user && password !== undefined ? { auth: { username: config.user, password } } : {}),
    dialTimeout: timeout,
    // No per-endpoint circuit breaker: etcd3's default opens a member's breaker for 5 s after three failures,
    // and while the cluster elects a new leader (one member stopped) the healthy members answer "no leader"
    // too, so every endpoint was blocked at once and the instance went degraded. Our own deadline, retry and
    // degraded handling decide instead (a member that is down fails its calls within the deadline).
    faultHandling: { host: () => policies.noop },
    // Unary calls get the deadline; streams (watch, keepalive) live until they break.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
  });
  return new EtcdStore(client, mod, timeout);
}

type Etcd3Module = typeof import('etcd3');
type Etcd3 = InstanceType<Etcd3Module['Etcd3']>;
type Lease = ReturnType<Etcd3['lease']>;

/** The range end that makes a range of every key starting with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

class EtcdStore implements ClusterStore {
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  private readonly client: Etcd3;
  private readonly mod: Etcd3Module;
  private readonly timeoutMs: number;

  constructor(client: Etcd3, mod: Etcd3Module, timeoutMs: number) {
    this.client = client;
    this.mod = mod;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Runs a unary call again while it fails with a recoverable error (an
   * endpoint unavailable) and the deadline has time left: one etcd member
   * down is then answered by another, and only etcd as a whole failing to
   * answer within --cluster-timeout is an error.
   */
  private async retrying<T>(call: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (e) {
        const recoverable = e instanceof Error && this.mod.isRecoverableError(e);
        const wait = Math.min(200, 25 * 2 ** attempt);
        if (!recoverable || Date.now() + wait >= deadline) throw e;
        await pause(wait);
      }
    }
  }

  async grantLease(ttlSeconds: number, lost: (err: Error) => void): Promise<string> {
    await this.revokeLease();
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive: true });
    this.lease = lease;
    let once = false;
    lease.on('lost', (err) => {
      if (once || this.lease !== lease) return;
      once = true;
      lost(err);
    });
    // A failed keepalive is not loss: the library retries on the other endpoints (one etcd member
    // down changes nothing). Whether etcd as a whole answers is the node's ping; loss is `lost`.
    try {
      this.leaseId = await lease.grant();
    } catch (e) {
      this.lease = undefined;
      lease.release();
      throw e;
    }
    return this.leaseId;
  }

  async revokeLease(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    this.leaseId = undefined;
    if (!lease) return;
    // Revoking deletes our keys at once (members see us leave without waiting for the TTL); if etcd is
    // unreachable the lease simply expires.
    await lease.revoke().catch(() => lease.release());
  }

  async write(ops: readonly { key: string; value: string | null; lease: boolean }[]): Promise<void> {
    for (let i = 0; i < ops.length; i += TXN_OPS) {
      const chunk = ops.slice(i, i + TXN_OPS);
      const success = chunk.map((op) => {
        if (op.value === null) return { request_delete_range: { key: Buffer.from(op.key) } };
        if (op.lease && this.leaseId === undefined) throw new RrdnsError(ErrorCode.CLUSTER_UNAVAILABLE, 'no etcd lease');
        return { request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), ...(op.lease ? { lease: this.leaseId } : {}) } };
      });
      await this.retrying(() => this.client.kv.txn({ success }));
    }
  }

  async claim(key: string, value: string): Promise<{ ok: true } | { ok: false; holder: string }> {
    if (this.leaseId === undefined) throw new RrdnsError(ErrorCode.CLUSTER_UNAVAILABLE, 'no etcd lease');
    const k = Buffer.from(key);
    const lease = this.leaseId;
    const res = await this.retrying(() =>
      this.client.kv.txn({
        compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: k, value: Buffer.from(value), lease } }],
        failure: [{ request_range: { key: k } }],
      }),
    );
    if (res.succeeded) return { ok: true };
    const kv = res.responses[0]?.response_range?.kvs[0];
    return { ok: false, holder: kv ? kv.value.toString() : '' };
  }

  async ping(key: string): Promise<void> {
    await this.retrying(() => this.client.kv.range({ key: Buffer.from(key), count_only: true }));
  }

  async snapshot(prefix: string): Promise<{ revision: string; kvs: KeyValue[] }> {
    const key = Buffer.from(prefix);
    const res = await this.retrying(() => this.client.kv.range({ key, range_end: prefixEnd(key) }));
    return { revision: res.header.revision, kvs: res.kvs.map((kv) => ({ key: kv.key.toString(), value: kv.value.toString() })) };
  }

  async watch(prefix: string, fromRevision: string, handlers: WatchHandlers): Promise<{ cancel(): Promise<void> }> {
    const watcher = await this.client
      .watch()
      .prefix(prefix)
      .startRevision(String(BigInt(fromRevision) + 1n))
      .create();
    let broken = false;
    const breakOnce = (err: Error) => {
      if (broken) return;
      broken = true;
      handlers.broken(err);
    };
    watcher.on('put', (kv) => handlers.put({ key: kv.key.toString(), value: kv.value.toString() }));
    watcher.on('delete', (kv) => handlers.delete(kv.key.toString()));
    // A disconnect (the etcd member we watched through went away) is repaired by the library: it
    // reconnects through another endpoint and resumes from the last revision it delivered, so one
    // member down changes nothing. Whether etcd as a whole answers is the node's ping. An error
    // (compacted past our revision, cancelled by the server) ends the watch: the node resynchronises.
    watcher.on('error', (err) => breakOnce(err));
    watcher.on('end', () => breakOnce(new Error('watch ended')));
    return { cancel: () => watcher.cancel().catch(() => undefined) };
  }

  close(): void {
    this.lease?.release();
    this.lease = undefined;
    this.client.close();
  }
}
