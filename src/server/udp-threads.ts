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
 */
import { Worker } from 'node:worker_threads';
import type { LiveSet } from '../resolver/resolve.ts';
import type { RRset, Zone } from '../zone/zone.ts';
import type { Logger } from '../observability/log.ts';
import type { TransportFaultCounts } from '../observability/metrics.ts';

/** The key of a health-checked RRset, the same in every thread. */
export function liveKey(zone: Zone, rrset: RRset): string {
  return `${zone.originKey}\u0000${rrset.ownerKey}\u0000${rrset.type}`;
}

/** A zone as it crosses to a worker: plain data (transfer settings without their matcher) and its rotation counters. */
export interface ZoneForWorker {
  zone: Omit<Zone, 'transfer'> & { transfer: { allow: readonly string[] } | undefined };
  counters: SharedArrayBuffer;
}

export type MainMessage =
  | { kind: 'zones'; zones: ZoneForWorker[]; live: [string, LiveSet][] }
  /** `changed`: health or an override moved, drop compiled answers; else only TTLs moved on (answers expire by themselves). */
  | { kind: 'live'; live: [string, LiveSet][]; changed: boolean }
  | { kind: 'close' };

export type WorkerMessage =
  | { kind: 'listening' }
  | { kind: 'error'; message: string }
  | { kind: 'counts'; counts: Map<string, Float64Array>; faults?: TransportFaultCounts }
  | { kind: 'closed' };

export interface WorkerSetup {
  host: string;
  port: number;
  identity: string | undefined;
  logLevel: string;
}

/** How long a worker may take to bind, and to close. */
const START_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 3_000;

function zoneForWorker(zone: Zone, counters: SharedArrayBuffer): ZoneForWorker {
  return { zone: { ...zone, transfer: zone.transfer ? { allow: zone.transfer.allow } : undefined }, counters };
}

interface Running {
  worker: Worker;
  exited: Promise<void>;
}

export class UdpThreads {
  private readonly running: Running[] = [];
  private readonly log: Logger;
  private readonly onCounts: (counts: Map<string, Float64Array>, faults?: TransportFaultCounts) => void;
  private closing: Promise<void> | undefined;

  constructor(log: Logger, onCounts: (counts: Map<string, Float64Array>, faults?: TransportFaultCounts) => void) {
    this.log = log;
    this.onCounts = onCounts;
  }

  get size(): number {
    return this.running.length;
  }

  /** Queries the workers have answered and reported so far (reports come once a second). */
  answeredByWorkers = 0;

  /**
   * Starts one worker bound to host:port with the zones given; resolves once
   * its socket listens (the main thread's socket must already be bound with
   * reusePort).
   */
  async start(setup: WorkerSetup, zones: readonly { zone: Zone; counters: SharedArrayBuffer }[], live: [string, LiveSet][]): Promise<void> {
    // Sources run as .ts (type stripping) or compiled to .js (the Docker image).
    const file = import.meta.url.endsWith('.ts') ? './udp-worker.ts' : './udp-worker.js';
    const worker = new Worker(new URL(file, import.meta.url), { workerData: setup, name: `rrdns-udp ${setup.host}:${setup.port}` });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const entry: Running = { worker, exited };
    this.running.push(entry);
    worker.on('error', (err) => this.log.error({ err, thread: worker.threadId }, 'UDP worker thread failed'));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`UDP worker on ${setup.host}:${setup.port} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      worker.on('message', (m: WorkerMessage) => {
        switch (m.kind) {
          case 'listening':
            clearTimeout(timer);
            resolve();
            break;
          case 'error':
            clearTimeout(timer);
            reject(new Error(`UDP worker on ${setup.host}:${setup.port}: ${m.message}`));
            break;
          case 'counts':
            for (const cells of m.counts.values()) for (const n of cells) this.answeredByWorkers += n;
            this.onCounts(m.counts, m.faults);
            break;
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`UDP worker on ${setup.host}:${setup.port} exited before listening`));
      });
      this.post(entry, { kind: 'zones', zones: zones.map((z) => zoneForWorker(z.zone, z.counters)), live });
    });
  }

  /** A new zone set was swapped in: every worker swaps to the same one. */
  publishZones(zones: readonly { zone: Zone; counters: SharedArrayBuffer }[], live: [string, LiveSet][]): void {
    if (this.running.length === 0) return;
    const message: MainMessage = { kind: 'zones', zones: zones.map((z) => zoneForWorker(z.zone, z.counters)), live };
    for (const r of this.running) this.post(r, message);
  }

  /** What health-checked RRsets serve changed (`changed`), or only their TTLs moved on. */
  publishLive(live: [string, LiveSet][], changed: boolean): void {
    for (const r of this.running) this.post(r, { kind: 'live', live, changed });
  }

  private post(r: Running, message: MainMessage): void {
    try {
      r.worker.postMessage(message);
    } catch (err) {
      this.log.error({ err, thread: r.worker.threadId }, 'cannot send to a UDP worker thread');
    }
  }

  /** Idempotent: asks every worker to close its socket and hand in its last counts, then ends it (bounded). */
  close(): Promise<void> {
    this.closing ??= Promise.all(
      this.running.map(async (r) => {
        this.post(r, { kind: 'close' });
        const timer = setTimeout(() => void r.worker.terminate(), CLOSE_TIMEOUT_MS);
        await r.exited;
        clearTimeout(timer);
      }),
    ).then(() => undefined);
    return this.closing;
  }
}
