/**
 * Server lifecycle: load zones, bind UDP+TCP on every listen address (one port
 * for both), serve, reload atomically, close gracefully. `start()` and
 * `close()` are explicit; `close()` is idempotent. Dependencies (logger) are
 * injected so tests can capture or silence them.
 */
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, RrdnsError, ZoneValidationError } from '../errors.ts';
import type { ServerConfig } from '../config/schema.ts';
import { createLogger, type Logger } from '../observability/log.ts';
import { ZoneDirReader, type LoadResult } from '../zone/load.ts';
import { nameToText } from '../zone/name.ts';
import { ZoneStore } from '../zone/store.ts';
import { nextTurn, Slicer } from '../zone/slices.ts';
import { TcpListener } from '../wire/transport.ts';
import { bindUdp, udpPath, type UdpListener } from '../wire/udp.ts';
import { QueryPipeline } from './pipeline.ts';
import { ServedZone } from './served-zone.ts';
import { AnswerCache } from './answer-cache.ts';
import type { Zone } from '../zone/zone.ts';
import type { CheckOutcome, Checker } from '../health/checkers.ts';
import { createWorkerChecker } from '../health/worker-checker.ts';
import { HealthMonitor, realScheduler, type MemberHealth, type MonitorApi, type Scheduler, type TargetState } from '../health/monitor.ts';
import { RemoteMonitor } from '../health/remote-monitor.ts';
import { PoolRegistry, type PoolEntry } from './pool-registry.ts';
import { ProbeSwitch } from './probe-switch.ts';
import type { PoolSnapshot } from '../observability/snapshot.ts';
import type { AdminOverride } from '../zone/zone.ts';
import { Metrics } from '../observability/metrics.ts';
import { AdminServer } from '../observability/admin.ts';
import { readTokenFile } from '../observability/admin-access.ts';
import { countingObserver, type CookieOptions } from './pipeline.ts';
import { CookieSecrets, randomMasterKey, readMasterKey } from '../cookies/secrets.ts';
import { ServerCookies } from '../cookies/server-cookies.ts';
import { ZoneWatcher } from './zone-watcher.ts';
import { RateLimiting } from './rate-limit.ts';
import { chooseUdpThreads, type UdpThreadChoice } from './udp-thread-count.ts';
import { settleHeap } from './settle-heap.ts';
import { mallocTrimAvailable, trimMallocNow, trimMallocPeriodically } from './malloc-trim.ts';
import { dropAllZones, sweepIdleZones, ZONE_SWEEP_MS } from '../zone/lazy-zone.ts';
import { liveKey, UdpThreads, type SupervisorOptions, type WorkerFault, type WorkerSetup } from './udp-threads.ts';
import { LIVE_PLAN_MS } from './served-zone.ts';
import { servedVersions, TransferService, type TransferLimits } from './transfer.ts';
import { Notifier, type NotifyOptions } from './notify.ts';
import { LogLimiter, type LimiterOptions } from '../observability/log-limiter.ts';
import { ReloadCoordinator, zoneSummary, type ReloadResult, type ReloadStatus } from './reload.ts';
import { StateStore, storedSerial, type StateIo, type StoredSerial } from '../state/store.ts';
import { servedVersion } from '../zone/serial.ts';
import { Balancing } from './balancing.ts';
import type { ResolversSnapshot } from '../observability/snapshot.ts';
// Types only: the cluster module (and etcd3 behind it) is imported at start, and only with --cluster-etcd.
import type { ClusterNode } from '../cluster/node.ts';
import { clusterChecks, startClusterNode } from './cluster-glue.ts';

export type { ReloadResult, ReloadStatus } from './reload.ts';

export interface ServerDeps {
  logger?: Logger;
  /** Health checker; default: the real HTTP(S)/TCP checker. */
  checker?: HealthChecker;
  scheduler?: Scheduler;
  /** Zone transfer limits and NOTIFY retry timing (defaults in transfer.ts / notify.ts). */
  transfer?: Partial<TransferLimits>;
  notify?: Partial<NotifyOptions>;
  /** UDP worker supervision timing (defaults in udp-threads.ts: heartbeat timeout 2 s, backoff 100 ms to 10 s). */
  udpSupervisor?: Partial<SupervisorOptions>;
  /** Rate limit of repetitive log lines (defaults in log-limiter.ts: burst 10, 1/s per key, report every 10 s). */
  logLimit?: Partial<LimiterOptions>;
  /** How often the response-rate-limiting summary line may be written (default 10 s; rate-limit.ts). */
  rrlSummaryMs?: number;
  /** How the state file is read and written (default: atomic files; tests inject failures). */
  stateIo?: StateIo;
  /**
   * Monotonic ms the resolver demand table runs on in this thread (default:
   * the process-wide clock, which UDP worker threads always use). Tests
   * advance their own to measure re-asks after a TTL without waiting for it.
   */
  demandClock?: () => number;
}


/** What the server probes with: the checks, an optional warm-up before the first round, and close. */
export interface HealthChecker {
  check: Checker;
  /** Resolves once probes can start at once (a worker thread that has started); bounded. */
  ready?(): Promise<void>;
  close(): Promise<void>;
}

export interface BoundAddress {
  host: string;
  port: number;
}

const VERSION = '0.1.0';

/** Tries to get the same port for UDP and TCP when the port is ephemeral. */
const EPHEMERAL_BIND_ATTEMPTS = 8;

export class RrdnsServer {
  readonly config: ServerConfig;
  readonly log: Logger;
  readonly store = new ZoneStore<ServedZone>();
  /** The main thread's compiled answers, shared by every zone and bounded in bytes. */
  readonly answers: AnswerCache;
  private readonly pipeline: QueryPipeline;
  private udpSockets: UdpListener[] = [];
  /** Which UDP path answers (decided at start, for every thread) and why. */
  private udpIo: { path: 'native' | 'dgram'; why: string } | undefined;
  private tcpListeners: TcpListener[] = [];
  private bound: BoundAddress[] = [];
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | undefined;
  /** The checker of a monitor on this thread (an injected checker or scheduler); none with the remote monitor. */
  private readonly checker: HealthChecker | undefined;
  readonly monitor: MonitorApi;
  /** The monitor's probing switch, shared by cold standby and (in a cluster) the shared check load. */
  readonly probeSwitch: ProbeSwitch;
  /** A start or reload's pools between its first checks and the swap: the probe plan counts them too. */
  private installingPools: readonly PoolEntry[] | undefined;
  /** An invalidateAnswers is queued for the end of this loop turn (invalidateAnswersSoon). */
  private invalidateQueued = false;
  readonly pools: PoolRegistry;
  private readonly scheduler: Scheduler;
  /** Zones loaded and their first round of health checks done. */
  private readyFlag = false;
  readonly metrics = new Metrics();
  private admin: AdminServer | undefined;
  private adminBound: BoundAddress | undefined;
  private readonly startedAt = new Date();
  private watcher: ZoneWatcher | undefined;
  /** UDP worker threads beside the main thread (udpThreadChoice.threads - 1 per listen address). */
  private readonly udpThreads: UdpThreads;
  /** How many threads answer UDP on each address, and why (config udpThreads, `auto` decided from the machine). */
  readonly udpThreadChoice: UdpThreadChoice;

  /** The UDP path in use (`native` batches or `dgram`) once started. */
  get udpIoPath(): 'native' | 'dgram' | undefined {
    return this.udpIo?.path;
  }
  private liveTimer: NodeJS.Timeout | undefined;
  /** sweepIdleZones every ZONE_SWEEP_MS (lazy-zone.ts). */
  private zoneSweep: NodeJS.Timeout | undefined;
  /** Stops the periodic malloc_trim (malloc-trim.ts). */
  private stopTrim: (() => void) | undefined;
  /** Master files outside the zones directory that the served zones read. */
  private masterFiles: readonly string[] = [];
  private readonly reloads: ReloadCoordinator;
  /** Keeps what it read per file, so a reload parses only the files that changed. */
  private readonly reader: ZoneDirReader;
  /** The loaded Zone each served zone was made from: the same object again from the reader means unchanged. */
  private readonly loadedOf = new WeakMap<ServedZone, Zone>();
  readonly transfers: TransferService;
  /** Repetitive lines (transport errors, refused transfers, per-source events) go through this. */
  readonly logLimiter: LogLimiter;
  readonly notifier: Notifier;
  /** Response rate limiting of UDP answers: the shared buckets, the main thread's limiter, totals and summary. */
  readonly rateLimiting: RateLimiting;
  /** Overrides and served serials kept across restarts (config.stateDir); opened by start(). */
  private stateStore: StateStore | undefined;
  private readonly stateIo: StateIo | undefined;
  /** The cookie secret schedule (src/cookies/secrets.ts); its master key comes from cookies.secretFile at start, else is random. */
  readonly cookieSecrets: CookieSecrets;
  /** Load feedback, first-position counters and their history, resolver demand (server/balancing.ts). */
  readonly balancing: Balancing;
  /** Shared verdicts and overrides through etcd (--cluster-etcd); undefined alone. Made by start(). */
  cluster: ClusterNode | undefined;

  constructor(config: ServerConfig, deps: ServerDeps = {}) {
    this.config = config;
    this.stateIo = deps.stateIo;
    this.answers = new AnswerCache(config.answerCacheBytes);
    this.log = deps.logger ?? createLogger(config.logLevel);
    const onChange = (state: TargetState, previous: MemberHealth, reason: string) => {
      this.log.warn({ check: state.key, address: state.address, owner: state.name, from: previous, to: state.health, reason }, 'health state changed');
      this.invalidateAnswersSoon();
    };
    const onResult = (state: TargetState, outcome: CheckOutcome) => {
      this.metrics.checkResult(state.key, state.address, outcome.ok, outcome.latencyMs);
      this.cluster?.observe(state);
      // A cold standby's first result changes what it may serve even when its health does not change.
      if (state.checks === 1 && this.pools.isColdStandby(state.key)) this.invalidateAnswersSoon();
    };
    const onCrash = (err: unknown, restartInMs: number) => this.log.error({ err, restartInMs }, 'health-check worker died; restarting it (health states are kept)');
    const onFallback = (err: unknown) => this.log.warn({ err }, 'no health-check worker thread; probes run on the main thread');
    const onLog = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => this.log[level](fields, msg);
    const source = config.checkSourceAddress ? { sourceAddress: config.checkSourceAddress } : {};
    if (deps.checker === undefined && deps.scheduler === undefined) {
      // The monitor (its schedule, timers and probes) runs on a thread of its own: 5,000 checks a second must
      // not share the answering event loop, nor fill its young generation (remote-monitor.ts).
      this.checker = undefined;
      this.monitor = new RemoteMonitor({ onChange, onResult, onCrash, onFallback, onLog, ...source });
    } else {
      // An injected checker or clock (tests): the monitor runs here, probes in a worker unless a checker is given.
      this.checker = deps.checker ?? createWorkerChecker({ onCrash, onFallback, onLog, ...source });
      this.monitor = new HealthMonitor({ check: this.checker.check, scheduler: deps.scheduler, onChange, onResult });
    }
    this.probeSwitch = new ProbeSwitch(this.monitor);
    this.scheduler = deps.scheduler ?? realScheduler;
    this.balancing = new Balancing({ scheduler: this.scheduler, state: (key) => this.monitor.state(key), demand: config.resolverDemand, demandClock: deps.demandClock });
    this.pools = new PoolRegistry(this.monitor, this.balancing.feedback);
    // The registry names each record's first-position slot and reads the shares back; /metrics reads the table's fill.
    this.pools.observeBalance(this.balancing.firstServed, (zone, name, type, address) => this.balancing.history.share(zone, name, type, address));
    this.metrics.setFirstServed(() => this.balancing.firstServed);
    this.rateLimiting = new RateLimiting(config.rrl, this.log, deps.rrlSummaryMs);
    this.udpThreadChoice = chooseUdpThreads(config.udpThreads, os.availableParallelism());
    this.udpThreads = new UdpThreads(
      this.log,
      {
        onCounts: (counts, faults, rrl) => {
          this.metrics.addQueryCounts(counts);
          if (faults) this.metrics.faults.add(faults);
          this.rateLimiting.add(rrl);
        },
        onCookieCounts: (counts) => this.metrics.cookies.add(counts),
        onRestart: (reason) => this.metrics.udpWorkerRestart(reason),
      },
      deps.udpSupervisor,
    );
    const metrics = this.metrics;
    metrics.setPools(() => this.pools.snapshot());
    metrics.setAnswerCache(() => this.answers);
    metrics.setRateLimit(() => this.rateLimiting.totalsNow());
    metrics.setStateWrites(() => ({ failures: this.stateStore?.writeFailures ?? 0 }));
    const observe = countingObserver((zone, qtype, rcode, transport) => metrics.countQuery(zone, qtype, rcode, transport), this.log);
    this.logLimiter = new LogLimiter(this.log, deps.logLimit);
    this.transfers = new TransferService(this.log, { maxConcurrent: config.transfer.maxConcurrent, ...deps.transfer }, this.logLimiter);
    this.notifier = new Notifier(this.log, deps.notify);
    this.cookieSecrets = new CookieSecrets(randomMasterKey(), config.cookies.secretLifetime);
    const cookies: CookieOptions | undefined = config.cookies.enabled ? { server: new ServerCookies(this.cookieSecrets), require: config.cookies.require, counts: metrics.cookies } : undefined;
    this.pipeline = new QueryPipeline(this.store, { chaosIdentity: config.identity, observe, transfer: this.transfers, rrl: this.rateLimiting.limiter, cookies, demand: this.balancing.demandOptions });
    this.reader = new ZoneDirReader(config.zonesDir, { limits: config.zoneLimits });
    this.reloads = new ReloadCoordinator({
      log: this.log,
      zonesDir: config.zonesDir,
      read: (changed) => this.readZoneDir(changed),
      counts: () => this.reader.counts,
      install: (zones) => this.install(zones),
      served: () => this.store.all(),
      servedCount: () => this.store.size,
      closing: () => this.state === 'closing' || this.state === 'closed',
      poolCount: () => this.pools.size,
    });
  }

  /** The admin listener's address, when it runs. */
  get adminAddress(): BoundAddress | undefined {
    return this.adminBound;
  }

  /** Starts the admin listener first, so /healthz and /readyz answer while zones and checks load. */
  private async startAdmin(): Promise<void> {
    const listen = this.config.admin.listen;
    if (listen === 'off') return;
    // Read once at start: an unreadable, empty or short file is an error naming it (the process exits).
    const tokenFile = this.config.admin.tokenFile;
    const token = tokenFile === undefined ? undefined : readTokenFile(tokenFile);
    this.admin = new AdminServer(
      {
        ready: () => this.readyFlag,
        pools: () => this.pools.snapshot(),
        setOverride: (name, address, override) => this.setOverride(name, address, override),
        metrics: async () => ({ contentType: this.metrics.contentType, body: await this.metrics.text() }),
        info: () => ({ version: VERSION, zones: [...this.store.all()].map((z) => z.label), startedAt: this.startedAt.toISOString() }),
        reload: () => this.reloads.status,
        history: () => this.balancing.history.view(),
        resolvers: () => this.resolvers(),
        cluster: () => this.cluster?.status(),
        clusterBrief: () => this.cluster?.brief(),
      },
      { host: listen.host, port: listen.port, logger: this.log, logLimiter: this.logLimiter, closeGraceMs: 1000, ...(token === undefined ? {} : { token }) },
    );
    try {
      this.adminBound = await this.admin.start();
    } catch (e) {
      throw new RrdnsError(ErrorCode.LISTEN_FAILED, `cannot start the admin listener on ${listen.host}:${listen.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
  }

  /** Addresses actually bound (ports resolved when 0 was asked for). */
  get addresses(): readonly BoundAddress[] {
    return this.bound;
  }

  /** UDP worker threads running, and the queries they have reported answering. */
  udpThreadStats(): { workers: number; answeredByWorkers: number; zonesPosted: number; threadIds: (number | undefined)[]; restarts: { exit: number; error: number; hung: number } } {
    const t = this.udpThreads;
    return { workers: t.size, answeredByWorkers: t.answeredByWorkers, zonesPosted: t.zonesPosted, threadIds: t.threadIds(), restarts: { ...t.restarts } };
  }

  /**
   * TEST / OPS DRILL ONLY, not reachable from the network or the admin API:
   * makes UDP worker `index` (0-based, over every listen address) exit, throw
   * from its event loop, or hang in a busy loop, to show that it is replaced.
   * False when that worker is not running now.
   */
  injectWorkerFault(index: number, fault: WorkerFault): boolean {
    return this.udpThreads.injectFault(index, fault);
  }

  /** Transport counters, for observability and tests. */
  transportStats(): { tcpConnections: number; tcpPeakQueuedBytes: number; tcpReceivedBytes: number; tcpReassemblyCopiedBytes: number } {
    return {
      tcpConnections: this.tcpListeners.reduce((n, t) => n + t.connectionCount, 0),
      tcpPeakQueuedBytes: Math.max(0, ...this.tcpListeners.map((t) => t.peakQueuedBytes)),
      tcpReceivedBytes: this.tcpListeners.reduce((n, t) => n + t.reassembly.receivedBytes, 0),
      tcpReassemblyCopiedBytes: this.tcpListeners.reduce((n, t) => n + t.reassembly.copiedBytes, 0),
    };
  }

  /** Loads the zones directory fully; throws ZoneValidationError with every issue. */
  private async loadZones(): Promise<Zone[]> {
    const result = this.keepMasterFiles(await this.reader.readAll());
    if (result.issues.length > 0) throw new ZoneValidationError(result.issues);
    return result.zones;
  }

  /** Reloads read in slices that yield to the event loop, so answering goes on meanwhile. */
  private async readZoneDir(changed?: ReadonlySet<string>): Promise<LoadResult> {
    return this.keepMasterFiles(await this.reader.read(changed));
  }

  private keepMasterFiles(result: LoadResult): LoadResult {
    const dir = path.resolve(this.config.zonesDir);
    this.masterFiles = result.masterFiles.filter((f) => path.dirname(f) !== dir);
    return result;
  }

  /**
   * Makes `zones` the served set: their health checks are watched and complete
   * one round (each bounded by its timeout) before the zones are swapped in, so
   * the first answers for a health-checked name are already right.
   */
  private async install(loaded: Zone[]): Promise<void> {
    // Serials grow with every content change; zones whose served serial changed get a NOTIFY once swapped in.
    // After a restart the state directory's serials count as the versions served before (never backwards).
    // A zone the reader handed back unchanged (the same object) keeps its ServedZone: its compiled
    // answers, rotation counters and serial stay; only the others go through serial assignment.
    // Indexed loops and no map of the kept ones: with 10,000 zones and one edit, a reload's garbage
    // must not grow with the zones it leaves alone (it outlives the young generation and costs full GCs).
    const fresh: Zone[] = [];
    const freshAt: number[] = [];
    const slice = new Slicer();
    for (let i = 0; i < loaded.length; i++) {
      if (slice.due()) await slice.pause();
      const z = loaded[i]!;
      const served = this.store.get(z.originKey);
      if (served === undefined || (this.loadedOf.get(served) !== z && served.zone !== z)) {
        fresh.push(z);
        freshAt.push(i);
      }
    }
    const assigned = servedVersions(fresh, (key) => this.store.get(key)?.zone, this.log, (origin) => this.stateStore?.serial(origin));
    const { changed } = assigned;
    const loadedOfFresh = new Map(assigned.zones.map((z, i) => [z, fresh[i]!]));
    // The same origins as now (only contents changed): per-zone metric series need no pruning.
    const sameOrigins = loaded.length === this.store.size && fresh.every((z) => this.store.get(z.originKey) !== undefined);
    // Only zones without pools changed, before and after (the common edit): the pools stay as planned,
    // and no list of every zone is made (it outlived the young generation on every reload).
    const poolsSame = sameOrigins && fresh.every((z) => z.pooled.length === 0 && (this.store.get(z.originKey)?.zone.pooled.length ?? 0) === 0);
    // Every zone to serve, in loaded order: the served zone of the kept ones, the new versions of the others.
    let all: Zone[] | undefined;
    const zones = (): Zone[] => {
      if (all !== undefined) return all;
      all = new Array<Zone>(loaded.length);
      for (let i = 0; i < loaded.length; i++) all[i] = this.store.get(loaded[i]!.originKey)?.zone ?? loaded[i]!;
      for (let i = 0; i < freshAt.length; i++) all[freshAt[i]!] = assigned.zones[i]!;
      return all;
    };
    // Each step below walks every zone; between them answering gets a turn.
    await nextTurn();
    let entries;
    try {
      entries = poolsSame ? this.pools.planned : PoolRegistry.plan(zones());
    } catch (e) {
      throw new ZoneValidationError([{ file: this.config.zonesDir, message: (e as Error).message }]);
    }
    // Recorded before any of them is served: a serial handed out is a serial remembered. A failed
    // write fails this install (start or reload), and the previous zones keep serving.
    // Only zones not kept unchanged: their stored serial is already what they serve.
    await this.stateStore?.saveSerialsAsync(this.servedSerials(assigned.zones));
    await nextTurn();
    const next = PoolRegistry.targets(entries);
    // The probing thread starts with the first checks; their timeouts must not run while it boots.
    if (next.length > 0) await this.checker?.ready?.();
    // Until the swap the old zones still serve: their checks keep running beside the new ones'.
    // In a cluster the checks of both the pools served and the new ones are known first, so that new
    // targets this instance does not run (checkers: K) are added unprobed (its wishes go through probeSwitch).
    this.cluster?.setChecks([...clusterChecks(this.pools.pools()), ...clusterChecks(entries.values())]);
    // Cold standbys new to the monitor start probed only if their pool needs them now (probe-plan.ts).
    this.installingPools = [...entries.values()];
    const plan = this.pools.probePlan(this.installingPools);
    for (const key of plan.managed) this.probeSwitch.set('cold', key, plan.probe.has(key));
    this.monitor.setTargets([...this.monitor.targets(), ...next], { probe: (t) => this.probeSwitch.wants(t.key) });
    await this.monitor.firstRound();
    const live = (rrset: Parameters<PoolRegistry['liveSet']>[0]) => this.pools.liveSet(rrset);
    // The same origins: only the changed zones' entries are swapped (store.patch); otherwise a whole new set.
    const nextServed = new Map<string, ServedZone>();
    const swapped = sameOrigins ? assigned.zones : zones();
    for (let i = 0; i < swapped.length; i++) {
      if (slice.due()) await slice.pause();
      const z = swapped[i]!;
      // Kept: the served zone itself came back (see the first loop).
      let served = this.store.get(z.originKey);
      if (served?.zone !== z) {
        served = new ServedZone(z, live, undefined, this.answers, undefined, this.balancing.firstServed);
        // Only a zone whose serial assignment made a copy needs its loaded version remembered: most
        // serve the reader's own object (served.zone above), and an entry each was ~50 octets a zone.
        const loadedZone = loadedOfFresh.get(z)!;
        if (loadedZone !== z) this.loadedOf.set(served, loadedZone);
      }
      nextServed.set(z.originKey, served);
    }
    await nextTurn();
    // No turn between these two: queries see the old pools with the old zones or the new with the new.
    this.pools.use(entries);
    this.installingPools = undefined;
    if (sameOrigins) this.store.patch(nextServed);
    else this.store.replace(nextServed);
    // Only where worker threads answer too: the list walks every zone, garbage on each reload for nobody.
    if (this.udpThreadChoice.threads > 1) this.udpThreads.publishZones(this.servedForWorkers(), this.liveTable());
    // Checks that no served pool uses any more stop; unchanged ones keep their state.
    this.monitor.setTargets(next);
    this.cluster?.setChecks(clusterChecks(entries.values()));
    if (this.applyProbePlan() > 0) this.invalidateAnswersSoon();
    this.balancing.scheduleFeedback(this.pools, () => this.invalidateAnswers());
    if (!sameOrigins) this.metrics.retainZones([...this.store.all()].map((z) => z.label));
    if (this.state === 'running') void this.notifier.notify(changed);
  }

  private servedSerials(zones: readonly Zone[]): Map<string, StoredSerial> {
    const savedAt = new Date().toISOString();
    return new Map(
      zones.map((z) => {
        return [nameToText(z.origin).toLowerCase(), storedSerial(servedVersion(z), savedAt)];
      }),
    );
  }

  /** Health changed: compiled answers that used the old view are dropped. */
  private invalidateAnswers(): void {
    this.invalidateQueued = false;
    // Health or overrides changed: cold standbys start or stop being probed before answers are rebuilt.
    this.applyProbePlan();
    for (const served of this.store.all()) served.invalidate();
    // The live table walks every pool: only worth building when UDP worker threads need it.
    if (this.udpThreads.size > 0) this.udpThreads.publishLive(this.liveTable(), true);
  }

  /**
   * Starts the checks of cold standbys whose pool has no usable primary, and
   * stops those whose pool has one again (probe-plan.ts). Returns how many
   * switched; a switch off resets that check to no result (answers must be rebuilt).
   */
  private applyProbePlan(): number {
    const plan = this.pools.probePlan(this.installingPools);
    this.probeSwitch.prune();
    const changes: { key: string; on: boolean }[] = [];
    const wish = (key: string, on: boolean) => {
      if (this.probeSwitch.set('cold', key, on)) changes.push({ key, on });
    };
    for (const key of plan.managed) wish(key, plan.probe.has(key));
    // No longer a cold standby anywhere (a reload): cold standby has no say on it any more.
    for (const key of this.probeSwitch.offBy('cold')) if (!plan.managed.has(key)) wish(key, true);
    for (const { key, on } of changes) {
      const t = this.monitor.target(key);
      this.log.info({ check: key, address: t?.address, owner: t?.name }, on ? 'cold standby: no usable primary, checks start' : 'cold standby: a primary is usable again, checks stop');
    }
    return changes.length;
  }

  /**
   * invalidateAnswers once at the end of this event-loop turn, however many
   * health changes came in it: the work walks every zone and pool, so doing it
   * per change made a burst of N changes (a first round, a backend down for
   * thousands of checks) cost N x pools on the answering thread. Answers until
   * then are at most one loop turn old.
   */
  private invalidateAnswersSoon(): void {
    if (this.invalidateQueued) return;
    this.invalidateQueued = true;
    setImmediate(() => {
      if (this.invalidateQueued) this.invalidateAnswers();
    });
  }

  private liveTable() {
    return this.pools.liveTable(liveKey);
  }

  private servedForWorkers() {
    return [...this.store.all()].map((s) => ({ zone: s.zone, counters: s.rotation.buffer }));
  }

  get ready(): boolean {
    return this.readyFlag;
  }

  /** The top resolvers by estimated demand (admin API /api/v1/resolvers and the status page). */
  resolvers(): ResolversSnapshot {
    return this.balancing.resolvers([...this.store.all()].map((s) => s.zone));
  }

  /** Takes one balance-history sample now (tests; the timer samples every 10 s). */
  sampleBalance(): void {
    this.balancing.sample(this.pools);
  }

  healthSnapshot(): PoolSnapshot[] {
    return this.pools.snapshot();
  }

  /**
   * Uses `master` as the cookie master key instead of the file's or the random
   * one (e.g. a key kept in the state directory). Call before start(): UDP
   * worker threads take the key when they start.
   */
  setCookieMasterKey(master: Uint8Array): void {
    this.cookieSecrets.setMasterKey(master);
  }

  /** What a UDP worker needs to run the same cookie schedule: the master key and the period length (it derives the rest). */
  private cookiesForWorkers(): WorkerSetup['cookies'] {
    const c = this.config.cookies;
    return c.enabled ? { masterKey: this.cookieSecrets.masterKey(), lifetime: this.cookieSecrets.lifetime, require: c.require } : undefined;
  }

  /**
   * Admin override for one pool member; false when the pool has no such member.
   * Written to the state directory before it applies: when that write fails it
   * throws RrdnsError STATE_WRITE_FAILED and nothing changed (the API answers
   * 503), so an acknowledged drain is one a restart keeps.
   */
  setOverride(name: string, address: string, override: AdminOverride | null): boolean {
    const target = this.pools.overrideTarget(name, address, override === null);
    if (!target) return false;
    try {
      this.stateStore?.setOverride(target.owner, target.address, override);
    } catch (e) {
      this.log.error({ owner: target.owner, address: target.address, override, err: e }, 'admin override refused: the state directory could not be written');
      throw e;
    }
    this.pools.setOverride(target.owner, target.address, override);
    this.log.warn({ owner: target.owner, address: target.address, override }, override ? 'admin override set' : 'admin override cleared');
    this.invalidateAnswers();
    // Kept here first (above); the other instances get it through etcd (later, if etcd is away now).
    this.cluster?.publishOverride(target.owner, target.address, override);
    return true;
  }

  /** Connects to etcd in the background (answering never waits for etcd; see cluster-glue.ts). */
  private async startCluster(): Promise<void> {
    const fmt = (b: BoundAddress) => (b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`);
    this.cluster = await startClusterNode({
      config: this.config,
      version: VERSION,
      monitor: this.monitor,
      probeSwitch: this.probeSwitch,
      pools: this.pools,
      stateStore: () => this.stateStore,
      metrics: this.metrics,
      log: this.log,
      logLimiter: this.logLimiter,
      invalidateSoon: () => this.invalidateAnswersSoon(),
      listen: () => (this.bound.length > 0 ? this.bound : this.config.listen).map(fmt),
      admin: () => (this.adminBound ? fmt(this.adminBound) : null),
    });
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new RrdnsError(ErrorCode.SERVER_STATE, `start() called on a ${this.state} server`);
    this.state = 'starting';
    try {
      // First, before any listener: a secret file that cannot be read or is malformed stops the start, naming the file.
      if (this.config.cookies.enabled && this.config.cookies.secretFile) this.cookieSecrets.setMasterKey(readMasterKey(this.config.cookies.secretFile));
      // Before anything answers: a corrupt or unusable state directory stops the start (the error names the path).
      this.stateStore = StateStore.open(this.config.stateDir, this.stateIo);
      this.pools.restoreOverrides(this.stateStore.overrides());
      // Without a secret file the cookie master key is kept in the state directory, so the server
      // cookies resolvers hold stay valid across a restart (a changed secret costs each of them a round trip to learn the new cookie).
      if (this.config.cookies.enabled && !this.config.cookies.secretFile && this.config.stateDir !== 'off') this.cookieSecrets.setMasterKey(this.stateStore.cookieMasterKey(randomMasterKey));
      await this.startAdmin();
      await this.startCluster();
      // Connecting overlaps the zone load and the first check round; its outcome is awaited before ready.
      const clusterFirst = this.cluster?.firstOutcome((this.config.cluster!.timeoutMs * 2) + (this.config.cluster!.leaseTtl + 2) * 1000);
      // An ID conflict found while the zones load must not reject unobserved before it is awaited below.
      clusterFirst?.catch(() => undefined);
      // Fingerprinted before the first read, so an edit racing the start-up is not missed.
      const watcher = this.config.watch.enabled
        ? new ZoneWatcher({
            dir: this.config.zonesDir,
            pollMs: this.config.watch.pollMs,
            debounceMs: this.config.watch.debounceMs,
            extraFiles: () => this.masterFiles,
            // The files it names are the only ones the reload re-reads ('all': every file is stat'ed).
            onChange: async (changed) => void (await this.reloads.reload('file change', { allowEmpty: false, changed: changed === 'all' ? undefined : changed })),
            onError: (err) => this.log.warn({ err }, 'zones directory watcher error; polling continues'),
          })
        : undefined;
      await this.install(await this.loadZones());
      // No query has read a zone yet: small ones go back to their text (lazy-zone.ts), and are built again
      // when first asked for. Then, before any socket is bound, the load's garbage is collected while no
      // query waits (settle-heap.ts).
      dropAllZones();
      settleHeap();
      // What the collection freed of the files' buffers, and the read's C-heap garbage, back to the kernel (malloc-trim.ts).
      trimMallocNow();
      this.stopTrim = trimMallocPeriodically();
      // Zones nobody asked about for a while drop their records again (each UDP thread sweeps its own).
      this.zoneSweep = setInterval(sweepIdleZones, ZONE_SWEEP_MS);
      this.zoneSweep.unref();
      this.watcher = watcher;
      try {
        this.udpIo = udpPath(this.config.udpIo);
      } catch (e) {
        throw new RrdnsError(ErrorCode.LISTEN_FAILED, (e as Error).message, { cause: e });
      }
      for (const { host, port } of this.config.listen) this.bound.push(await this.bindBoth(host, port));
      for (const { host, port } of this.bound) {
        for (let i = 1; i < this.udpThreadChoice.threads; i++) {
          await this.udpThreads.start({ host, port, identity: this.config.identity, logLevel: this.config.logLevel, logBufferBytes: this.config.logBufferBytes, answerCacheBytes: this.config.answerCacheBytes, udpIo: this.config.udpIo, rrl: this.rateLimiting.shared, cookies: this.cookiesForWorkers(), ...this.balancing.forWorkers }, this.servedForWorkers(), this.liveTable());
        }
      }
      if (this.udpThreads.size > 0) {
        // Health-aware TTLs count down: workers get the table afresh as often as the main thread recompiles.
        // Not a change: workers keep their compiled answers, whose live parts expire by themselves.
        this.liveTimer = setInterval(() => {
          if (this.pools.size > 0) this.udpThreads.publishLive(this.liveTable(), false);
        }, LIVE_PLAN_MS);
        this.liveTimer.unref();
      }
      // Another live process with this --cluster-instance fails the start (CLUSTER_INSTANCE_TAKEN).
      await clusterFirst;
      this.balancing.sampleEvery(this.pools);
      // Ready once every socket answers: zones loaded, first check round done, listeners bound.
      this.readyFlag = true;
    } catch (e) {
      await this.shutdownSockets();
      this.state = 'closed';
      throw e;
    }
    this.state = 'running';
    // Before the line that says we listen: an edit made as soon as someone reads it raises a file event.
    this.watcher?.start();
    // Secondaries learn at once that we are up (and with which serial); they pull if theirs is older.
    void this.notifier.notify([...this.store.all()].map((s) => s.zone));
    this.log.info(
      {
        listen: this.bound.map((b) => (b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`)),
        ...zoneSummary([...this.store.all()].map((s) => s.label)),
        pools: this.pools.size,
        checks: this.monitor.states().length,
        admin: this.adminBound ? `${this.adminBound.host}:${this.adminBound.port}` : 'off',
        watch: this.watcher ? { pollMs: this.config.watch.pollMs } : 'off',
        udpThreads: this.udpThreadChoice.threads,
        udpThreadsWhy: this.udpThreadChoice.why,
        udpIo: this.udpIo,
        // Whether free C-heap pages go back to the kernel (native/memory.c; not without the addon or glibc).
        mallocTrim: mallocTrimAvailable(),
      },
      'rrdns listening',
    );
  }

  private async bindBoth(host: string, port: number): Promise<BoundAddress> {
    const handler = this.pipeline.handle.bind(this.pipeline);
    const answerDatagram = this.pipeline.answerDatagram.bind(this.pipeline);
    const onError = (err: unknown, where: string, peer?: string) => this.transportError(err, where, peer);
    for (let attempt = 0; ; attempt++) {
      let udp: UdpListener | undefined;
      try {
        udp = await bindUdp(host, port, answerDatagram, onError, { reusePort: this.udpThreadChoice.threads > 1, hooks: this.metrics.faults, io: this.config.udpIo });
        const udpPort = udp.port;
        const tcp = new TcpListener(handler, this.config.tcp, onError, this.metrics.faults);
        await tcp.listen(host, udpPort);
        this.udpSockets.push(udp);
        this.tcpListeners.push(tcp);
        return { host, port: udpPort };
      } catch (e) {
        await udp?.close();
        const code = (e as NodeJS.ErrnoException).code;
        if (port === 0 && code === 'EADDRINUSE' && attempt < EPHEMERAL_BIND_ATTEMPTS) continue;
        throw new RrdnsError(ErrorCode.LISTEN_FAILED, `cannot listen on ${host}:${port}: ${code ?? (e as Error).message}`, { cause: e });
      }
    }
  }

  /**
   * The transport's error sink (send failures, socket errors, a handler that
   * threw): any client can cause these at packet rate, so they are
   * rate-limited per place and error code (and peer, when given).
   */
  transportError(err: unknown, where: string, peer?: string): void {
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? (err as Error | undefined)?.name ?? 'error';
    this.logLimiter.write('error', 'transport', `${where}|${code}|${peer ?? ''}`, { err, where, ...(peer ? { peer } : {}) }, 'transport error');
  }

  /**
   * Re-reads the zones directory (see reload.ts); reloads run one at a time
   * and never reject. `allowEmpty` (default true: whoever calls this asked)
   * applies a directory that holds no zone; the watcher passes false.
   */
  reload(trigger = 'api', opts: { allowEmpty?: boolean } = {}): Promise<ReloadResult> {
    return this.reloads.reload(trigger, { allowEmpty: opts.allowEmpty ?? true });
  }

  /** The outcome of the last reload. */
  get lastReload(): ReloadStatus {
    return this.reloads.status;
  }

  /**
   * Graceful and idempotent: stops accepting, answers every query already
   * received (TCP connections drain their answers, bounded by
   * shutdownGraceMs), stops the health checks, then the admin listener.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.state = 'closing';
      this.readyFlag = false;
      this.closing = this.shutdownSockets().then(() => {
        this.state = 'closed';
        this.log.info('rrdns stopped');
      });
    }
    return this.closing;
  }

  private async shutdownSockets(): Promise<void> {
    this.watcher?.close();
    clearInterval(this.liveTimer);
    clearInterval(this.zoneSweep);
    this.stopTrim?.();
    this.balancing.close();
    // First: revoking the lease tells the others at once that this instance's verdicts are gone.
    await this.cluster?.close();
    const udp = this.udpSockets.splice(0);
    const tcp = this.tcpListeners.splice(0);
    await Promise.all([
      ...udp.map((s) => s.close()),
      ...tcp.map((t) => t.close(this.config.shutdownGraceMs)),
      this.monitor.close().then(() => this.checker?.close()),
      this.notifier.close(),
      this.udpThreads.close(),
    ]);
    await this.admin?.close();
    this.logLimiter.close();
    this.rateLimiting.close();
  }
}

export async function startServer(config: ServerConfig, deps: ServerDeps = {}): Promise<RrdnsServer> {
  const server = new RrdnsServer(config, deps);
  await server.start();
  return server;
}
