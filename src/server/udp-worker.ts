/**
 * A UDP answer thread (see udp-threads.ts): the same pipeline as the main
 * thread's UDP socket, over zones and health the main thread sends. It
 * decides nothing itself: no zone loading, no checks, no TCP.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, logStats, setStdoutBufferBytes, type LogFaults } from '../observability/log.ts';
import { CookieCounts, QueryCounts, TransportFaults } from '../observability/metrics.ts';
import { CookieSecrets } from '../cookies/secrets.ts';
import { ServerCookies } from '../cookies/server-cookies.ts';
import type { LiveSet } from '../resolver/resolve.ts';
import type { RData } from '../zone/records.ts';
import { ZoneStore } from '../zone/store.ts';
import type { Zone, ZoneNode } from '../zone/zone.ts';
import { NameNode } from '../zone/name-node.ts';
import { nodeIndex, reviveNodes } from '../zone/node-index.ts';
import { transferSettings } from '../zone/transfer.ts';
import { LazyZone, sweepIdleZones, ZONE_SWEEP_MS } from '../zone/lazy-zone.ts';
import { MASTER_BUILDER } from '../zone/load.ts';
import { bindUdp, type UdpListener } from '../wire/udp.ts';
import { countingObserver, QueryPipeline } from './pipeline.ts';
import { ServedZone } from './served-zone.ts';
import { AnswerCache } from './answer-cache.ts';
import { TransferService } from './transfer.ts';
import { LogLimiter } from '../observability/log-limiter.ts';
import { limiterFor } from './rate-limit.ts';
import { FirstServedCounters } from '../balancing/first-served.ts';
import { DemandTable } from '../balancing/demand.ts';
import { HEARTBEAT_EVERY_MS, liveKey, type MainMessage, type WorkerFault, type WorkerMessage, type WorkerSetup, type ZoneForWorker } from './udp-threads.ts';

/** How often query counts go to the main thread for /metrics. */
const COUNTS_EVERY_MS = 1000;

const port = parentPort!;
const setup = workerData as WorkerSetup;
if (setup.logBufferBytes) setStdoutBufferBytes(setup.logBufferBytes);
const log = createLogger(setup.logLevel as Parameters<typeof createLogger>[0]).child({ thread: 'udp' });
const send = (m: WorkerMessage) => port.postMessage(m);

const store = new ZoneStore<ServedZone>();
/** This thread's compiled answers, shared by its zones and bounded in bytes. */
const answers = new AnswerCache(setup.answerCacheBytes);
let live = new Map<string, LiveSet>();
// The main thread's cells: the live table names the slots, this thread only adds to them.
const firstServed = setup.firstServed ? new FirstServedCounters(0, setup.firstServed) : undefined;

const counts = new QueryCounts();
const faults = new TransportFaults();
const observe = countingObserver((zone, qtype, rcode, transport) => counts.count(zone, qtype, rcode, transport), log);
// UDP only here: AXFR is REFUSED and IXFR gets the SOA alone, as on the main thread's socket.
const limiter = new LogLimiter(log);
// The same buckets as every other UDP thread (shared memory); its counts go to the main thread with the query counts.
const rrl = limiterFor(setup.rrl);
const cookieCounts = new CookieCounts();
// The same schedule as every other thread: each derives the period secrets from the master key itself.
const cookies = setup.cookies ? { server: new ServerCookies(new CookieSecrets(setup.cookies.masterKey, setup.cookies.lifetime)), require: setup.cookies.require, counts: cookieCounts } : undefined;
// The same resolver demand entries as every other thread; the process-wide clock (the default) is the one they all read.
const demand = setup.demand ? { table: new DemandTable(setup.demand.table), bits: setup.demand.bits } : undefined;
const pipeline = new QueryPipeline(store, { chaosIdentity: setup.identity, observe, transfer: new TransferService(log, {}, limiter), rrl, cookies, demand });

/**
 * Structured clone turns Buffers into plain Uint8Arrays; the rdata encoder
 * wants Buffers (TXT strings, RFC 3597 data). Views over the same memory, in place.
 */
function reviveRData(r: RData): void {
  const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  if (r.kind === 'TXT') (r as { data: Buffer[] }).data = r.data.map(asBuffer);
  else if (r.kind === 'UNKNOWN') (r as { data: Buffer }).data = asBuffer(r.data);
}

function reviveZone(zone: Extract<ZoneForWorker['zone'], { lazy?: undefined }>): void {
  const nodes = new Map<string, ZoneNode>();
  for (const plain of reviveNodes(zone.nodes).values()) {
    const node = NameNode.reviveNode(plain);
    nodes.set(node.key, node);
    for (const rrset of node.rrsets.values()) rrset.records.forEach(reviveRData);
  }
  (zone as { nodes: Zone['nodes'] }).nodes = nodeIndex(nodes);
}

function reviveLive(table: [string, LiveSet][]): Map<string, LiveSet> {
  for (const [, set] of table) if (set.kind === 'records') set.records.forEach(reviveRData);
  return new Map(table);
}

/** The zones this thread serves, by origin key (a delta is applied to a copy of it). */
let served = new Map<string, ServedZone>();

function servedZone({ zone: plain, counters }: ZoneForWorker): ServedZone {
  let zone: Zone;
  if (plain.lazy) {
    // Its text, built here when first asked for (and dropped again by this thread's sweeps).
    zone = new LazyZone(plain, plain, plain.recipe, MASTER_BUILDER);
  } else {
    reviveZone(plain);
    zone = { ...plain, transfer: plain.transfer ? transferSettings(plain.transfer.allow, []) : undefined };
  }
  const view = (rrset: Parameters<typeof liveKey>[1]) => live.get(liveKey(zone, rrset));
  return new ServedZone(zone, view, counters, answers, undefined, firstServed);
}

function install(zones: ZoneForWorker[]): void {
  const next = new Map<string, ServedZone>();
  for (const z of zones) next.set(z.zone.originKey, servedZone(z));
  served = next;
  store.replace(next);
}

/** Zones the reload changed are replaced, removed ones go; the others keep their ServedZone (and compiled answers). */
function installDelta(put: ZoneForWorker[], remove: string[]): void {
  const next = new Map(served);
  for (const key of remove) next.delete(key);
  for (const z of put) next.set(z.zone.originKey, servedZone(z));
  served = next;
  store.replace(next);
}

let socket: UdpListener | undefined;
/** Log lines this thread dropped or suppressed, as already reported to the main thread (for /metrics there). */
let sentLog: LogFaults = { dropped: 0, suppressed: {} };
const flushCounts = () => {
  const taken = counts.take();
  const now = logStats();
  const log: LogFaults = { dropped: now.dropped - sentLog.dropped, suppressed: {} };
  for (const [kind, n] of Object.entries(now.suppressed)) if (n > (sentLog.suppressed[kind] ?? 0)) log.suppressed[kind] = n - (sentLog.suppressed[kind] ?? 0);
  const logChanged = log.dropped > 0 || Object.keys(log.suppressed).length > 0;
  if (logChanged) sentLog = { dropped: now.dropped, suppressed: { ...now.suppressed } };
  const failed = faults.take();
  const limited = rrl?.take();
  const cookiesTaken = cookieCounts.take();
  if (taken || logChanged || failed || limited || cookiesTaken) send({ kind: 'counts', counts: taken ?? new Map(), ...(logChanged ? { log } : {}), ...(failed ? { faults: failed } : {}), ...(limited ? { rrl: limited } : {}), ...(cookiesTaken ? { cookies: cookiesTaken } : {}) });
};
const timer = setInterval(flushCounts, COUNTS_EVERY_MS);
// Bumped from this thread's event loop: a loop that is stuck stops bumping it, and the main thread replaces us.
const beat = setup.heartbeat ? new Int32Array(setup.heartbeat) : undefined;
const heartbeat = setInterval(() => beat && Atomics.add(beat, 0, 1), HEARTBEAT_EVERY_MS);
// This thread's lazy zones drop their records when idle, as the main thread's do (lazy-zone.ts).
const zoneSweep = setInterval(sweepIdleZones, ZONE_SWEEP_MS);
zoneSweep.unref();

/** Test and drill faults (UdpThreads.injectFault): what a crash, a bug and a stuck loop look like from outside. */
function commit(fault: WorkerFault): void {
  switch (fault) {
    case 'exit':
      process.exit(3);
      break;
    case 'throw':
      setImmediate(() => {
        throw new Error('injected fault: an exception escaped the UDP worker');
      });
      break;
    case 'hang':
      setImmediate(() => {
        // A busy loop: the event loop never runs again, heartbeats stop.
        for (;;);
      });
      break;
  }
}

port.on('message', (m: MainMessage) => {
  switch (m.kind) {
    case 'zones':
      live = reviveLive(m.live);
      install(m.zones);
      send({ kind: 'installed' });
      if (!socket) {
        bindUdp(setup.host, setup.port, pipeline.answerDatagram.bind(pipeline), (err, where) => limiter.write('error', 'transport', `${where}|${(err as NodeJS.ErrnoException)?.code ?? ''}`, { err, where }, 'transport error'), { reusePort: true, hooks: faults, io: setup.udpIo }).then(
          (s) => {
            socket = s;
            send({ kind: 'listening' });
          },
          (err: NodeJS.ErrnoException) => send({ kind: 'error', message: err.code ?? err.message }),
        );
      }
      break;
    case 'zonesDelta':
      live = reviveLive(m.live);
      // As on the main thread, zones a reload kept keep their compiled answers (health changes invalidate them, by 'live').
      installDelta(m.put, m.remove);
      send({ kind: 'installed' });
      break;
    case 'live':
      live = reviveLive(m.live);
      if (m.changed) for (const served of store.all()) served.invalidate();
      break;
    case 'fault':
      commit(m.fault);
      break;
    case 'close':
      clearInterval(timer);
      clearInterval(heartbeat);
      clearInterval(zoneSweep);
      if (socket) void socket.close().then(finish);
      else finish();
      break;
  }
});

function finish(): void {
  flushCounts();
  send({ kind: 'closed' });
  port.close();
}
