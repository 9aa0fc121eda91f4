/**
 * The connection to etcd as a state machine: `connecting` → `connected` ⇄
 * `degraded` → `closed`. Connecting is: a lease (kept alive by the client),
 * the member key claimed put-if-absent (another live process with the same
 * ID is never overwritten; the start fails after one lease TTL), a snapshot
 * of the cluster's keys, a watch from that revision; then the node's
 * `connected` hook resynchronises. Any failure (an error, a deadline, a lost
 * lease, a watch error, the ping that notices a frozen or partitioned etcd)
 * makes it degraded and retries with jittered exponential backoff. One etcd
 * member going away is none of these: the client reconnects its streams
 * through the other endpoints.
 */
import os from 'node:os';
import type { ClusterConfig } from '../config/schema.ts';
import { ErrorCode, RrdnsError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import type { LogLimiter } from '../observability/log-limiter.ts';
import { parseMember, type KeyLayout, type MemberRecord } from './keys.ts';
import type { ClusterStore, KeyValue } from './store.ts';
import { iso, type ClusterMetricsSink, type ClusterState } from './types.ts';

export interface SessionHooks {
  /** A fresh snapshot of every key of the cluster (replaces all caches). */
  snapshot(kvs: readonly KeyValue[]): void;
  put(kv: KeyValue): void;
  delete(key: string): void;
  /** Connected (again): resynchronise. `degradedSince` set when returning from degraded. */
  connected(degradedSince: number | undefined): Promise<void>;
  /** Just went degraded. */
  degraded(): void;
}

export interface SessionDeps {
  instance: string;
  config: ClusterConfig;
  store: ClusterStore;
  keys: KeyLayout;
  log: Logger;
  logLimiter: LogLimiter;
  metrics: ClusterMetricsSink | undefined;
  now: () => number;
  member: { version: string; listen: () => string[]; admin: () => string | null };
  backoff?: { initialMs?: number; maxMs?: number };
  hooks: SessionHooks;
}

export class EtcdSession {
  readonly #d: SessionDeps;
  #state: ClusterState = 'connecting';
  #generation = 0;
  #degradedSince: number | undefined;
  #lastError: string | null = null;
  #lastSyncAt: number | undefined;
  #reconnects = 0;
  #leaseId: string | undefined;
  #watch: { cancel(): Promise<void> } | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pinging = false;
  /** Consecutive pings past the deadline: two in a row degrade (one can be a pause of this process). */
  #pingFailures = 0;
  #backoffMs: number;
  readonly #startedAt = Date.now();
  #firstWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #firstSettled = false;
  #conflictSince: number | undefined;

  constructor(deps: SessionDeps) {
    this.#d = deps;
    this.#backoffMs = deps.backoff?.initialMs ?? 250;
  }

  get state(): ClusterState {
    return this.#state;
  }
  get connected(): boolean {
    return this.#state === 'connected';
  }
  get degraded(): boolean {
    return this.#state === 'degraded';
  }
  /** Bumped on every (re)connection and failure: callbacks of an older connection are ignored. */
  get generation(): number {
    return this.#generation;
  }
  get startedAt(): number {
    return this.#startedAt;
  }

  info(): { state: ClusterState; degradedSince: string | null; lastError: string | null; lastSyncAt: string | null; reconnects: number } {
    return { state: this.#state, degradedSince: iso(this.#degradedSince), lastError: this.#lastError, lastSyncAt: iso(this.#lastSyncAt), reconnects: this.#reconnects };
  }

  start(): void {
    if (this.#state !== 'connecting' || this.#pingTimer) return;
    void this.#connect();
    // A frozen or partitioned etcd breaks no stream: a read with the deadline, four times per lease TTL, notices it (two misses in a row).
    this.#pingTimer = setInterval(() => this.#ping(), Math.max(500, (this.#d.config.leaseTtl * 1000) / 4));
    this.#pingTimer.unref();
  }

  /** Idempotent: revokes the lease (our keys go at once; bounded, a dead etcd does not hold the stop up). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#settleFirst();
    const wasConnected = this.#state === 'connected';
    this.#state = 'closed';
    this.#generation++;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#pingTimer);
    await this.#watch?.cancel();
    this.#watch = undefined;
    if (wasConnected) await Promise.race([this.#d.store.revokeLease(), new Promise((r) => setTimeout(r, this.#d.config.timeoutMs).unref())]).catch(() => undefined);
    this.#d.store.close();
  }

  /**
   * Resolves once the first connection attempt has an outcome (connected, or
   * etcd unreachable: degraded), at the latest after `capMs`; rejects with
   * CLUSTER_INSTANCE_TAKEN when another live process holds this instance ID
   * (after waiting one lease TTL for a crashed predecessor's key to expire).
   */
  firstOutcome(capMs: number): Promise<void> {
    if (this.#firstSettled) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, capMs);
      timer.unref();
      this.#firstWaiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  #settleFirst(err?: Error): void {
    if (this.#firstSettled) return;
    this.#firstSettled = true;
    for (const w of this.#firstWaiters.splice(0)) (err ? w.reject(err) : w.resolve());
  }

  async #connect(): Promise<void> {
    const gen = ++this.#generation;
    const { store, keys, config } = this.#d;
    try {
      this.#leaseId = await store.grantLease(config.leaseTtl, (err) => this.trouble('lease', err, gen));
      const member: MemberRecord = {
        instance: this.#d.instance,
        startedAt: new Date(this.#startedAt).toISOString(),
        version: this.#d.member.version,
        pid: process.pid,
        hostname: os.hostname(),
        listen: this.#d.member.listen(),
        admin: this.#d.member.admin(),
        leaseTtl: config.leaseTtl,
      };
      const value = JSON.stringify(member);
      const claim = await store.claim(keys.member(this.#d.instance), value);
      if (!claim.ok) {
        const holder = parseMember(claim.holder, this.#d.instance);
        if (holder.pid !== member.pid || holder.startedAt !== member.startedAt || holder.hostname !== member.hostname) return this.#conflict(holder, gen);
        // Our own key from before a separation (its old lease still lives): the new lease takes it over.
        await store.write([{ key: keys.member(this.#d.instance), value, lease: true }]);
      }
      const snap = await store.snapshot(keys.prefix);
      if (gen !== this.#generation) return;
      this.#d.hooks.snapshot(snap.kvs);
      this.#watch = await store.watch(keys.prefix, snap.revision, {
        put: (kv) => gen === this.#generation && this.#d.hooks.put(kv),
        delete: (key) => gen === this.#generation && this.#d.hooks.delete(key),
        broken: (err) => this.trouble('watch', err, gen),
      });
      if (gen !== this.#generation) return;
      const degradedSince = this.#degradedSince;
      this.#state = 'connected';
      this.#degradedSince = undefined;
      this.#lastError = null;
      this.#lastSyncAt = this.#d.now();
      this.#backoffMs = this.#d.backoff?.initialMs ?? 250;
      this.#conflictSince = undefined;
      this.#pingFailures = 0;
      await this.#d.hooks.connected(degradedSince);
      this.#settleFirst();
      if (degradedSince !== undefined) {
        this.#reconnects++;
        this.#d.metrics?.reconnect();
      } else {
        this.#d.log.info({ instance: this.#d.instance, etcd: config.etcd, leaseId: this.#leaseId }, 'cluster: connected to etcd');
      }
    } catch (e) {
      this.trouble('connect', e, gen);
    }
  }

  /** Another process holds our member key: never overwritten; waited out for one lease TTL (a crashed predecessor's expires). */
  #conflict(holder: MemberRecord, gen: number): void {
    const now = this.#d.now();
    this.#conflictSince ??= now;
    const message = `instance ID "${this.#d.instance}" is held by another live process (pid ${holder.pid} on ${holder.hostname || '?'}, started ${holder.startedAt || '?'}); give each instance its own --cluster-instance`;
    if (!this.#firstSettled && now - this.#conflictSince > (this.#d.config.leaseTtl + 1) * 1000) {
      this.#d.log.error({ instance: this.#d.instance, holder }, 'cluster: instance ID taken');
      this.#settleFirst(new RrdnsError(ErrorCode.CLUSTER_INSTANCE_TAKEN, message));
      void this.close();
      return;
    }
    // Meanwhile answers go on from own verdicts, and nothing is written under the ID.
    this.trouble('member', new Error(message), gen, 500);
  }

  #ping(): void {
    if (this.#state !== 'connected' || this.#pinging) return;
    const gen = this.#generation;
    this.#pinging = true;
    this.#d.store
      .ping(this.#d.keys.member(this.#d.instance))
      .then(
        () => {
          this.#pingFailures = 0;
        },
        (e: unknown) => {
          if (++this.#pingFailures >= 2) this.trouble('ping', e, gen);
        },
      )
      .finally(() => (this.#pinging = false));
  }

  /** etcd failed us (error, deadline, lost lease, watch error): degraded, and a retry after a backoff. */
  trouble(op: string, e: unknown, gen: number, retryMs?: number): void {
    if (gen !== this.#generation || this.#state === 'closed') return;
    // Credentials etcd refuses at start are a configuration error: the start fails naming the option.
    if (!this.#firstSettled && e instanceof Error && /AuthenticationFailed|PermissionDenied|authentication failed|permission denied/i.test(`${e.name} ${e.constructor.name} ${e.message}`)) {
      this.#d.log.error({ err: e.message }, 'cluster: etcd refused the credentials');
      this.#settleFirst(new RrdnsError(ErrorCode.CLUSTER_CONFIG, `etcd refused the credentials (--cluster-etcd-user / --cluster-etcd-password-file, or the client certificate): ${e.message}`));
      void this.close();
      return;
    }
    this.#d.metrics?.etcdError(op);
    const message = e instanceof Error ? e.message : String(e);
    this.#lastError = `${op}: ${message}`;
    this.#generation++;
    if (this.#state !== 'degraded') {
      this.#state = 'degraded';
      this.#degradedSince ??= this.#d.now();
      this.#d.hooks.degraded();
    }
    if (op === 'member') this.#d.logLimiter.write('error', 'cluster', 'member', { op, err: message }, 'cluster: instance ID held by another live process; not registering, serving on own verdicts');
    else this.#d.logLimiter.write('warn', 'cluster', 'degraded', { op, err: message, since: iso(this.#degradedSince) }, 'cluster: etcd unreachable; serving on own verdicts and last known overrides');
    const watch = this.#watch;
    this.#watch = undefined;
    void watch?.cancel();
    clearTimeout(this.#retryTimer);
    const wait = retryMs ?? Math.round(this.#backoffMs * (0.5 + Math.random() / 2));
    if (retryMs === undefined) this.#backoffMs = Math.min(this.#d.backoff?.maxMs ?? 5_000, this.#backoffMs * 2);
    // etcd unreachable is the start's outcome (degraded); an ID conflict is still being waited out.
    if (op !== 'member') this.#settleFirst();
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state === 'degraded') void this.#connect();
    }, wait);
    this.#retryTimer.unref();
  }
}
