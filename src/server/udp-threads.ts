/**
 * Extra UDP answer threads. One Node thread tops out on the per-datagram
 * send and receive system calls, not on rrdns's own work, so with
 * `udpThreads: N` the server runs N-1 worker threads besides the main one,
 * each with its own UDP socket on the same address and port (SO_REUSEPORT;
 * the kernel spreads clients over them).
 *
 * The main thread stays the one place that decides: it loads and swaps zones,
 * runs the health checks, the admin API, TCP and transfers. A worker is a
 * replica of the UDP data path only: it gets every zone version the main
 * thread swaps in (with the same rotation counters, in shared memory, so the
 * rotation stays one cycle across threads) and a table of what each
 * health-checked RRset serves now, sent on every change and once a second as
 * health-aware TTLs count down. Workers send their query counts back for
 * /metrics once a second.
 *
 * Messages between the threads are the only coupling; see WorkerMessage and
 * MainMessage below.
 *
 * Supervision. A worker that exits or throws is restarted after a backoff
 * (100 ms doubling to 10 s; back to 100 ms once a worker has run 30 s). A
 * worker that stops answering (its event loop stuck, e.g. in a busy loop) is
 * noticed by its heartbeat: it bumps a counter in shared memory every
 * 500 ms from its event loop; when the main thread sees no bump for
 * `heartbeatTimeoutMs` (2 s) it terminates the thread and replaces it.
 * Shared memory rather than a message, so a main thread that was itself busy
 * for a while does not mistake the queued heartbeats for silence. The
 * replacement gets the zones and live table published last (with the same
 * rotation counters). Every restart is logged and counted by reason.
 */
import { Worker } from 'node:worker_threads';
import type { LiveSet } from '../resolver/resolve.ts';
import type { RRset, Zone } from '../zone/zone.ts';
import { LazyZone } from '../zone/lazy-zone.ts';
import type { MasterRecipe } from '../zone/load.ts';
import { addLogFaults, type LogFaults, type Logger } from '../observability/log.ts';
import { pairsTotal, type TransportFaultCounts } from '../observability/metrics.ts';
import { monotonicMs } from '../zone/clock.ts';
import type { RrlReport } from '../rrl/limiter.ts';
import type { RrlShared } from './rate-limit.ts';
import type { PrefixBits } from '../balancing/demand.ts';
import type { UdpIo } from '../wire/udp.ts';

/** The key of a health-checked RRset, the same in every thread. */
export function liveKey(zone: Zone, rrset: RRset): string {
  return `${zone.originKey}\u0000${rrset.ownerKey}\u0000${rrset.type}`;
}

/** A zone as it crosses to a worker: plain data (transfer settings without their matcher) and its rotation counters. */
export interface ZoneForWorker {
  /**
   * A built zone with its records, or a lazy one's own fields (its recipe
   * among them) without them (`lazy`: the worker builds them when asked for,
   * lazy-zone.ts).
   */
  zone:
    | (Omit<Zone, 'transfer'> & { transfer: { allow: readonly string[] } | undefined; lazy?: undefined })
    | (Omit<Zone, 'transfer' | 'nodes' | 'soa'> & { transfer: undefined; lazy: true; recipe: MasterRecipe; serial: number; declaredSerial: number; digest: string });
  counters: SharedArrayBuffer;
}

/** Faults a worker can be told to commit, for tests and drills only (see UdpThreads.injectFault). */
export type WorkerFault = 'exit' | 'throw' | 'hang';

export type MainMessage =
  | { kind: 'zones'; zones: ZoneForWorker[]; live: [string, LiveSet][] }
  /**
   * A reload's change to the set the worker holds: zones new or changed (by
   * origin key) and origins gone. With 10,000 zones and one edit, one zone
   * crosses instead of 10,000 (a structured clone of them all held the main
   * thread for tens of ms), and the worker keeps its compiled answers for the rest.
   */
  | { kind: 'zonesDelta'; put: ZoneForWorker[]; remove: string[]; live: [string, LiveSet][] }
  /** `changed`: health or an override moved, drop compiled answers; else only TTLs moved on (answers expire by themselves). */
  | { kind: 'live'; live: [string, LiveSet][]; changed: boolean }
  | { kind: 'fault'; fault: WorkerFault }
  | { kind: 'close' };

export type WorkerMessage =
  | { kind: 'listening' }
  /** A zones message was taken in (its zones serve now). */
  | { kind: 'installed' }
  | { kind: 'error'; message: string }
  /** Query counts since the last report; `faults`: failed sends and throwing handlers; `log`: log lines dropped and suppressed in the worker since then. */
  | { kind: 'counts'; /** Per zone, cell and count pairs (QueryCounts.take). */ counts: Map<string, Float64Array>; log?: LogFaults; faults?: TransportFaultCounts; rrl?: RrlReport; cookies?: number[] }
  | { kind: 'closed' };

export interface WorkerSetup {
  host: string;
  port: number;
  identity: string | undefined;
  logLevel: string;
  /** The stdout log bound (config logBufferBytes). */
  logBufferBytes?: number;
  /** The answer cache bound (config answerCacheBytes). */
  answerCacheBytes?: number;
  /** The UDP path (config udpIo): every thread reads and sends the same way. */
  udpIo?: UdpIo;
  /** One Int32 the worker bumps from its event loop every HEARTBEAT_EVERY_MS. */
  heartbeat?: SharedArrayBuffer;
  /** Rate limiting over the main thread's bucket table (shared memory); absent when RRL is off. */
  rrl?: RrlShared | undefined;
  /** DNS cookies, when on: the master key and period length, from which the worker derives the same secrets as every thread (src/cookies/secrets.ts). */
  cookies?: { masterKey: Uint8Array; lifetime: number; require: boolean } | undefined;
  /** The first-position counters (src/balancing/first-served.ts) every thread counts into; absent: not counted. */
  firstServed?: SharedArrayBuffer | undefined;
  /** Resolver demand (balance.resolvers): the main thread's table (shared memory) and how sources group into resolvers. */
  demand?: { table: SharedArrayBuffer; bits: PrefixBits } | undefined;
}

/** How often a worker bumps its heartbeat. */
export const HEARTBEAT_EVERY_MS = 500;

export type RestartReason = 'exit' | 'error' | 'hung';

export interface SupervisorOptions {
  /** No heartbeat for this long: the worker is hung, terminated and replaced. */
  heartbeatTimeoutMs: number;
  /** First restart delay; doubles per failure in a row up to maxBackoffMs. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** A worker that ran this long before failing starts the backoff over. */
  stableMs: number;
}

export const DEFAULT_SUPERVISOR: SupervisorOptions = { heartbeatTimeoutMs: 2000, minBackoffMs: 100, maxBackoffMs: 10_000, stableMs: 30_000 };

/** How long a worker may take to bind, and to close. */
const START_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 3_000;
/** How long a worker may be silent while it takes in a new zone set. */
const INSTALL_GRACE_MS = 60_000;

/** One copy per zone version: a reload that keeps a zone unchanged does not copy it again. */
const forWorker = new WeakMap<Zone, ZoneForWorker>();

function zoneForWorker(zone: Zone, counters: SharedArrayBuffer): ZoneForWorker {
  let z = forWorker.get(zone);
  if (z === undefined || z.counters !== counters) {
    // A lazy zone goes as its own fields, plain data with its text: a spread copies neither its
    // records (read through getters) nor its builder (private), and builds nothing here.
    z =
      zone instanceof LazyZone
        ? { zone: { ...zone, recipe: zone.recipe as MasterRecipe, transfer: undefined, lazy: true }, counters }
        : { zone: { ...zone, transfer: zone.transfer ? { allow: zone.transfer.allow } : undefined }, counters };
    forWorker.set(zone, z);
  }
  return z;
}

/** The delay before restart number `failuresInARow` (0-based). */
export function backoffMs(failuresInARow: number, opts: Pick<SupervisorOptions, 'minBackoffMs' | 'maxBackoffMs'>): number {
  return Math.min(opts.maxBackoffMs, opts.minBackoffMs * 2 ** Math.min(failuresInARow, 30));
}

interface Running {
  worker: Worker;
  /** worker.threadId, kept: it reads -1 once the thread has exited. */
  threadId: number;
  exited: Promise<void>;
  /** Listening and answering (its start-up is over). */
  up: boolean;
  startedAt: number;
  /** Why it ended, once the supervisor knows (an 'error' event comes before 'exit'). */
  reason?: RestartReason;
  beat: Int32Array;
  lastBeat: number;
  lastBeatAt: number;
  /** Zones messages sent and not yet acknowledged: taking in a large zone set may keep its loop busy for a while. */
  pendingInstalls: number;
  /** The zone set as sent to this worker (by origin key), which the next reload's delta is made against. */
  sent: Map<string, ZoneForWorker> | undefined;
}

/** One worker's place: it keeps its setup across replacements. */
interface Slot {
  setup: WorkerSetup;
  current: Running | undefined;
  failuresInARow: number;
  restartTimer: NodeJS.Timeout | undefined;
}

export interface UdpThreadsEvents {
  onCounts: (counts: Map<string, Float64Array>, faults?: TransportFaultCounts, rrl?: RrlReport) => void;
  /** COOKIE option counts a worker took (CookieCounts cells). */
  onCookieCounts?: (counts: number[]) => void;
  onRestart?: (reason: RestartReason) => void;
}

export class UdpThreads {
  private readonly slots: Slot[] = [];
  private readonly log: Logger;
  private readonly events: UdpThreadsEvents;
  private readonly opts: SupervisorOptions;
  private closing: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** What a (re)started worker is given: the zones and live table published last. */
  private zones: ZoneForWorker[] = [];
  private live: [string, LiveSet][] = [];

  constructor(log: Logger, events: UdpThreadsEvents | ((counts: Map<string, Float64Array>) => void), opts: Partial<SupervisorOptions> = {}) {
    this.log = log;
    this.events = typeof events === 'function' ? { onCounts: events } : events;
    this.opts = { ...DEFAULT_SUPERVISOR, ...opts };
  }

  /** Workers listening now. */
  get size(): number {
    return this.slots.filter((s) => s.current?.up).length;
  }

  /** Thread ids of the workers listening now, by slot (undefined while a slot restarts). */
  threadIds(): (number | undefined)[] {
    return this.slots.map((s) => (s.current?.up ? s.current.threadId : undefined));
  }

  /** Queries the workers have answered and reported so far (reports come once a second). */
  answeredByWorkers = 0;
  /** Zones sent to workers so far (a whole set to a new worker, then only what each reload changed). */
  zonesPosted = 0;

  /** Restarts so far, by reason. */
  readonly restarts: Record<RestartReason, number> = { exit: 0, error: 0, hung: 0 };

  /**
   * Starts one worker bound to host:port with the zones given; resolves once
   * its socket listens (the main thread's socket must already be bound with
   * reusePort). From then on it is supervised.
   */
  async start(setup: WorkerSetup, zones: readonly { zone: Zone; counters: SharedArrayBuffer }[], live: [string, LiveSet][]): Promise<void> {
    this.zones = zones.map((z) => zoneForWorker(z.zone, z.counters));
    this.live = live;
    const slot: Slot = { setup, current: undefined, failuresInARow: 0, restartTimer: undefined };
    this.slots.push(slot);
    this.startWatchdog();
    await this.spawn(slot);
  }

  /** Starts the slot's worker; resolves when it listens, rejects when it cannot. */
  private spawn(slot: Slot): Promise<void> {
    const { setup } = slot;
    const heartbeat = new SharedArrayBuffer(4);
    // Sources run as .ts (type stripping) or compiled to .js (the Docker image).
    const file = import.meta.url.endsWith('.ts') ? './udp-worker.ts' : './udp-worker.js';
    const worker = new Worker(new URL(file, import.meta.url), { workerData: { ...setup, heartbeat }, name: `rrdns-udp ${setup.host}:${setup.port}` });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const now = monotonicMs();
    const r: Running = { worker, threadId: worker.threadId, exited, up: false, startedAt: now, beat: new Int32Array(heartbeat), lastBeat: 0, lastBeatAt: now, pendingInstalls: 0, sent: undefined };
    slot.current = r;
    worker.on('error', (err) => {
      r.reason ??= 'error';
      this.log.error({ err, thread: worker.threadId }, 'UDP worker thread failed');
    });
    void exited.then(() => this.exited(slot, r));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`UDP worker on ${setup.host}:${setup.port} did not start within ${START_TIMEOUT_MS} ms`));
        void worker.terminate();
      }, START_TIMEOUT_MS);
      worker.on('message', (m: WorkerMessage) => {
        switch (m.kind) {
          case 'listening':
            clearTimeout(timer);
            r.up = true;
            r.lastBeatAt = monotonicMs();
            resolve();
            break;
          case 'error':
            clearTimeout(timer);
            r.reason ??= 'error';
            reject(new Error(`UDP worker on ${setup.host}:${setup.port}: ${m.message}`));
            void worker.terminate();
            break;
          case 'installed':
            r.pendingInstalls = Math.max(0, r.pendingInstalls - 1);
            // Busy taking the zones in is not silence: the heartbeat clock starts again.
            r.lastBeatAt = monotonicMs();
            break;
          case 'counts':
            for (const pairs of m.counts.values()) this.answeredByWorkers += pairsTotal(pairs);
            this.events.onCounts(m.counts, m.faults, m.rrl);
            if (m.cookies) this.events.onCookieCounts?.(m.cookies);
            if (m.log) addLogFaults(m.log);
            break;
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`UDP worker on ${setup.host}:${setup.port} exited before listening`));
      });
      this.postZones(r);
    });
  }

  /** The whole set to a worker that holds none yet, else what changed since what it was sent. */
  private postZones(r: Running): void {
    const sent = r.sent;
    const now = new Map<string, ZoneForWorker>();
    for (const z of this.zones) now.set(z.zone.originKey, z);
    r.sent = now;
    if (sent === undefined) {
      this.zonesPosted += this.zones.length;
      this.post(r, { kind: 'zones', zones: this.zones, live: this.live });
      return;
    }
    const put: ZoneForWorker[] = [];
    for (const [key, z] of now) if (sent.get(key) !== z) put.push(z);
    const remove: string[] = [];
    for (const key of sent.keys()) if (!now.has(key)) remove.push(key);
    this.zonesPosted += put.length;
    this.post(r, { kind: 'zonesDelta', put, remove, live: this.live });
  }

  /** A worker ended: unless we are closing, count it and schedule its replacement. */
  private exited(slot: Slot, r: Running): void {
    if (slot.current !== r) return;
    slot.current = undefined;
    if (this.closing) return;
    const reason: RestartReason = r.reason ?? 'exit';
    const ranMs = monotonicMs() - r.startedAt;
    if (r.up && ranMs >= this.opts.stableMs) slot.failuresInARow = 0;
    const delay = backoffMs(slot.failuresInARow, this.opts);
    slot.failuresInARow++;
    this.restarts[reason]++;
    try {
      this.events.onRestart?.(reason);
    } catch {
      // counting must not stop the restart
    }
    this.log.error(
      { thread: r.threadId, reason, ranMs: Math.round(ranMs), restartInMs: delay, failuresInARow: slot.failuresInARow, address: `${slot.setup.host}:${slot.setup.port}` },
      'UDP worker thread ended; restarting it',
    );
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.closing) return;
      this.spawn(slot).then(
        () => this.log.warn({ thread: slot.current?.threadId, previous: r.threadId, reason }, 'UDP worker thread replaced'),
        (err: unknown) => this.log.error({ err, address: `${slot.setup.host}:${slot.setup.port}` }, 'UDP worker thread could not be restarted; trying again'),
      );
    }, delay);
    slot.restartTimer.unref();
  }

  /** Checks every worker's heartbeat; one that missed them for heartbeatTimeoutMs is terminated (and so replaced). */
  private startWatchdog(): void {
    if (this.watchdog) return;
    const every = Math.max(10, Math.min(HEARTBEAT_EVERY_MS, Math.floor(this.opts.heartbeatTimeoutMs / 4)));
    this.watchdog = setInterval(() => this.checkHeartbeats(), every);
    this.watchdog.unref();
  }

  private checkHeartbeats(): void {
    const now = monotonicMs();
    for (const slot of this.slots) {
      const r = slot.current;
      if (!r || !r.up || r.reason) continue;
      const beat = Atomics.load(r.beat, 0);
      if (beat !== r.lastBeat) {
        r.lastBeat = beat;
        r.lastBeatAt = now;
        continue;
      }
      // While a zone set is being taken in (structured clone and indexing of maybe millions of records) the loop may be busy longer.
      const limit = r.pendingInstalls > 0 ? Math.max(this.opts.heartbeatTimeoutMs, INSTALL_GRACE_MS) : this.opts.heartbeatTimeoutMs;
      if (now - r.lastBeatAt < limit) continue;
      r.reason = 'hung';
      this.log.error({ thread: r.threadId, silentMs: Math.round(now - r.lastBeatAt) }, 'UDP worker thread stopped answering (no heartbeat); terminating it');
      // terminate() stops even a busy loop; 'exit' then schedules the replacement.
      void r.worker.terminate();
    }
  }

  /**
   * Test and drill hook, never reachable from the network: tells worker
   * `index` to exit, throw from its event loop, or hang in a busy loop.
   * Returns false when that slot has no running worker.
   */
  injectFault(index: number, fault: WorkerFault): boolean {
    const r = this.slots[index]?.current;
    if (!r?.up) return false;
    this.post(r, { kind: 'fault', fault });
    return true;
  }

  /** A new zone set was swapped in: every worker swaps to the same one. */
  publishZones(zones: readonly { zone: Zone; counters: SharedArrayBuffer }[], live: [string, LiveSet][]): void {
    this.zones = zones.map((z) => zoneForWorker(z.zone, z.counters));
    this.live = live;
    if (this.slots.length === 0) return;
    for (const s of this.slots) if (s.current) this.postZones(s.current);
  }

  /** What health-checked RRsets serve changed (`changed`), or only their TTLs moved on. */
  publishLive(live: [string, LiveSet][], changed: boolean): void {
    this.live = live;
    for (const s of this.slots) if (s.current) this.post(s.current, { kind: 'live', live, changed });
  }

  private post(r: Running, message: MainMessage): void {
    const install = message.kind === 'zones' || message.kind === 'zonesDelta';
    if (install) r.pendingInstalls++;
    try {
      r.worker.postMessage(message);
    } catch (err) {
      if (install) r.pendingInstalls--;
      // Not received: the next reload sends the whole set again.
      r.sent = undefined;
      this.log.error({ err, thread: r.threadId }, 'cannot send to a UDP worker thread');
    }
  }

  /** Idempotent: asks every worker to close its socket and hand in its last counts, then ends it (bounded). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.watchdog);
      await Promise.all(
        this.slots.map(async (slot) => {
          clearTimeout(slot.restartTimer);
          const r = slot.current;
          if (!r) return;
          this.post(r, { kind: 'close' });
          const timer = setTimeout(() => void r.worker.terminate(), CLOSE_TIMEOUT_MS);
          await r.exited;
          clearTimeout(timer);
        }),
      );
    })();
    return this.closing;
  }
}
