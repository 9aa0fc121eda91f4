/**
 * Prometheus metrics (prom-client), in a registry of their own.
 *
 * The DNS hot path calls `countQuery` for every query, so it only bumps a cell
 * of a plain Float64Array: no prom-client call, no label object, no
 * allocation after a zone's first query. The counters are published into
 * prom-client at scrape time, in the metrics' `collect()` callbacks, as are
 * the health-check counters and the pool gauges (read from a snapshot source).
 *
 * Cardinality is bounded whatever clients send: qtype is a mnemonic from a
 * fixed list or `OTHER`, rcode one of the named rcodes or `OTHER`, zone is
 * one of the zones served (or `none` for queries outside every zone).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from './prom-client.ts';
import { CountedHistogram } from './counted-histogram.ts';
import { lazyZoneStats } from '../zone/lazy-zone.ts';
import type { PoolSnapshot, Serving } from './snapshot.ts';
import { logStats } from './log.ts';

export type Transport = 'udp' | 'tcp';
/** Why a TCP connection was closed at once (the transport's TcpRefusal). */
export type TcpRefusal = 'per-client' | 'per-prefix' | 'total';

/** Zone label for queries that matched no zone (REFUSED, or refused before a zone was looked up). */
export const NO_ZONE = 'none';

/** Query types with a label of their own; every other qtype counts as `OTHER`. */
const QTYPE_NAMES: ReadonlyArray<readonly [number, string]> = [
  [1, 'A'], [2, 'NS'], [5, 'CNAME'], [6, 'SOA'], [12, 'PTR'], [13, 'HINFO'], [15, 'MX'], [16, 'TXT'],
  [28, 'AAAA'], [29, 'LOC'], [33, 'SRV'], [35, 'NAPTR'], [39, 'DNAME'], [41, 'OPT'], [43, 'DS'],
  [44, 'SSHFP'], [46, 'RRSIG'], [47, 'NSEC'], [48, 'DNSKEY'], [50, 'NSEC3'], [51, 'NSEC3PARAM'],
  [52, 'TLSA'], [59, 'CDS'], [60, 'CDNSKEY'], [64, 'SVCB'], [65, 'HTTPS'], [99, 'SPF'],
  [251, 'IXFR'], [252, 'AXFR'], [253, 'MAILB'], [254, 'MAILA'], [255, 'ANY'], [256, 'URI'], [257, 'CAA'],
];
/** Rcodes with a label of their own (RFC 6895 registry, the ones a server sends); others are `OTHER`. */
const RCODE_NAMES: ReadonlyArray<readonly [number, string]> = [
  [0, 'NOERROR'], [1, 'FORMERR'], [2, 'SERVFAIL'], [3, 'NXDOMAIN'], [4, 'NOTIMP'], [5, 'REFUSED'],
  [6, 'YXDOMAIN'], [7, 'YXRRSET'], [8, 'NXRRSET'], [9, 'NOTAUTH'], [10, 'NOTZONE'], [16, 'BADVERS'], [23, 'BADCOOKIE'],
];

const QTYPE_LABELS = ['OTHER', ...QTYPE_NAMES.map(([, n]) => n)];
const RCODE_LABELS = ['OTHER', ...RCODE_NAMES.map(([, n]) => n)];
const TRANSPORTS: readonly Transport[] = ['udp', 'tcp'];

/** qtype (0..65535) → slot in QTYPE_LABELS; 0 is OTHER. */
const QTYPE_SLOT = new Uint8Array(65536);
QTYPE_NAMES.forEach(([code], i) => (QTYPE_SLOT[code] = i + 1));
/** rcode (0..4095, extended) → slot in RCODE_LABELS; 0 is OTHER. */
const RCODE_SLOT = new Uint8Array(4096);
RCODE_NAMES.forEach(([code], i) => (RCODE_SLOT[code] = i + 1));

const N_QTYPE = QTYPE_LABELS.length;
const N_RCODE = RCODE_LABELS.length;
/** Cells per zone: qtype × rcode × transport. */
const ZONE_CELLS = N_QTYPE * N_RCODE * 2;

export const SERVING_MODES: readonly Serving[] = [
  'healthy',
  'minHealthy',
  'allDown:serveAll',
  'allDown:backup',
  'allDown:nodata',
  'allDown:servfail',
];

/** Upper bounds (seconds) of the check duration histogram: 1 ms … 10 s. */
export const CHECK_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsOptions {
  /** Read at every scrape for the pool gauges (e.g. `() => registry.snapshot()`). */
  pools?: () => PoolSnapshot[];
  /** Process and Node.js default metrics (`process_*`, `nodejs_*`); on unless false. */
  defaultMetrics?: boolean;
}

interface CheckCounts {
  ok: number;
  fail: number;
}

/**
 * One zone's query counts, sparse: the (cell, count) pairs it has met, in the
 * order first met. A zone meets few of the ZONE_CELLS cells (a few qtypes, one
 * or two rcodes, mostly UDP): the dense row per zone this replaces was 7.8 kB,
 * so 10,000 zones that each got a query held 78 MB of counters (issue 11's
 * budget for everything is 100 MB). Lookup is a scan of the pairs met, the
 * commonest first in practice (a zone's first queries are its usual ones).
 */
export class ZoneCounts {
  /**
   * cell, count, cell, count, …: the first `size` pairs are in use. A plain
   * array of small integers, not a Float64Array: a typed array with its
   * ArrayBuffer is ~200 octets of objects before its first element, per zone.
   */
  private pairs: number[];
  private size = 0;

  constructor(capacity = 4) {
    this.pairs = new Array<number>(capacity * 2).fill(0);
  }

  /** Adds `n` to `cell` (0 <= cell < ZONE_CELLS). Allocates only when a new cell outgrows the pairs (doubling). */
  inc(cell: number, n: number): void {
    const p = this.pairs;
    const end = this.size << 1;
    for (let i = 0; i < end; i += 2) {
      if (p[i] === cell) {
        p[i + 1]! += n;
        return;
      }
    }
    if (end === p.length) for (let i = p.length * 2; p.length < i; ) p.push(0);
    p[end] = cell;
    p[end + 1] = n;
    this.size++;
  }

  /** Calls `each` for every cell with a count, in the order first met. */
  forEach(each: (cell: number, n: number) => void): void {
    const p = this.pairs;
    for (let i = 0, end = this.size << 1; i < end; i += 2) if (p[i + 1] !== 0) each(p[i]!, p[i + 1]!);
  }

  /** The pairs in use, copied: what crosses from a UDP worker thread (see QueryCounts.take). */
  toPairs(): Float64Array {
    const out = new Float64Array(this.size << 1);
    for (let i = 0; i < out.length; i++) out[i] = this.pairs[i]!;
    return out;
  }

  /** Octets the counts' pairs take (8 a slot). */
  get byteLength(): number {
    return this.pairs.length * 8;
  }
}

/**
 * The query counters alone: what the hot path touches. Metrics owns one; a
 * UDP worker thread owns one too and hands its counts over with take().
 */
export class QueryCounts {
  /** Per zone label: its counts, by cell (qtype slot, rcode slot, transport). */
  readonly cells = new Map<string, ZoneCounts>();
  /**
   * A small cache for the hot path: the zone labels counted last and their
   * cells, compared by identity first (a zone's label is one string). Four,
   * so that traffic alternating between a few zones and `none` (REFUSED,
   * errors) still finds its cells without a Map lookup per query.
   */
  private readonly recentZones: (string | undefined)[] = [undefined, undefined, undefined, undefined];
  private readonly recentCells: (ZoneCounts | undefined)[] = [undefined, undefined, undefined, undefined];
  private nextRecent = 0;

  /**
   * Counts one answered query. Hot path: a cached zone lookup and a scan of
   * the zone's few cells. `zone` is the zone's name as it should appear in the
   * label (e.g. `example.test.`); undefined when no zone matched.
   */
  count(zone: string | undefined, qtype: number, rcode: number, transport: Transport): void {
    const key = zone ?? NO_ZONE;
    const zones = this.recentZones;
    let cells: ZoneCounts | undefined;
    if (zones[0] === key) cells = this.recentCells[0];
    else if (zones[1] === key) cells = this.recentCells[1];
    else if (zones[2] === key) cells = this.recentCells[2];
    else if (zones[3] === key) cells = this.recentCells[3];
    if (cells === undefined) {
      cells = this.zoneCounts(key);
      const slot = this.nextRecent;
      this.nextRecent = (slot + 1) & 3;
      zones[slot] = key;
      this.recentCells[slot] = cells;
    }
    const q = QTYPE_SLOT[qtype & 0xffff]!;
    const r = RCODE_SLOT[rcode & 0xfff]!;
    cells.inc(((q * N_RCODE + r) << 1) | (transport === 'tcp' ? 1 : 0), 1);
  }

  private zoneCounts(zone: string): ZoneCounts {
    let cells = this.cells.get(zone);
    if (cells === undefined) {
      cells = new ZoneCounts();
      this.cells.set(zone, cells);
    }
    return cells;
  }

  /** Adds counts taken elsewhere (another thread's take(): per zone, cell and count pairs). */
  add(counts: ReadonlyMap<string, Float64Array>): void {
    for (const [zone, pairs] of counts) {
      const cells = this.zoneCounts(zone);
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        const cell = pairs[i]!;
        // Only cells this version counts (another thread runs the same code; this is the message's edge).
        if (Number.isInteger(cell) && cell >= 0 && cell < ZONE_CELLS && pairs[i + 1]! > 0) cells.inc(cell, pairs[i + 1]!);
      }
    }
  }

  /** Returns the counts so far, per zone as cell and count pairs, and starts again from zero; undefined when nothing was counted. */
  take(): Map<string, Float64Array> | undefined {
    if (this.cells.size === 0) return undefined;
    const out = new Map<string, Float64Array>();
    for (const [zone, cells] of this.cells) out.set(zone, cells.toPairs());
    this.forget(() => false);
    return out;
  }

  /** Drops the zones `keep` says no to. */
  forget(keep: (zone: string) => boolean): void {
    for (const z of [...this.cells.keys()]) if (!keep(z)) this.cells.delete(z);
    this.recentZones.fill(undefined);
    this.recentCells.fill(undefined);
  }

  /** Octets the counts' pairs take, all zones together (8 a slot). */
  get byteLength(): number {
    let n = 0;
    for (const cells of this.cells.values()) n += cells.byteLength;
    return n;
  }
}

/** The queries a zone's taken pairs count (cell, count, cell, count, …: the counts are every second entry). */
export function pairsTotal(pairs: Float64Array): number {
  let n = 0;
  for (let i = 1; i < pairs.length; i += 2) n += pairs[i]!;
  return n;
}

/** A cell's labels: the inverse of QueryCounts.count's cell index. */
export function cellLabels(cell: number): { qtype: string; rcode: string; transport: Transport } {
  const r = (cell >> 1) % N_RCODE;
  const q = Math.floor((cell >> 1) / N_RCODE);
  return { qtype: QTYPE_LABELS[q]!, rcode: RCODE_LABELS[r]!, transport: TRANSPORTS[cell & 1]! };
}

/**
 * Send-error codes with a label of their own (the ones a DNS server meets:
 * spoofed port 0, firewall EPERM, oversized or unroutable datagrams, a peer
 * gone mid-write); every other code counts as `other`, so the label set stays
 * fixed whatever the kernel or a peer does.
 */
export const SEND_ERROR_CODES: readonly string[] = [
  'ERR_SOCKET_BAD_PORT', 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'EPERM', 'EACCES', 'EMSGSIZE', 'ENOBUFS', 'EAGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EINVAL',
];
const SEND_ERROR_LABEL = new Set(SEND_ERROR_CODES);

/** TransportFaults' counts as they cross from a UDP worker thread (plain data). */
export interface TransportFaultCounts {
  sendErrors: [string, number][];
  handlerErrors: [Transport, number][];
}

/**
 * Transport faults: failed sends by transport and error code, and messages
 * whose handling threw, by transport. Its method names match the transport's
 * TransportHooks, so the server hands this object to its listeners as is; a
 * UDP worker thread keeps its own and hands the counts over with take().
 */
export class TransportFaults {
  /** Key `transport code`, code already one of SEND_ERROR_CODES or `other`. */
  readonly sendErrors = new Map<string, number>();
  readonly handlerErrors = new Map<Transport, number>();

  sendError(transport: Transport, code: string, n = 1): void {
    const key = `${transport} ${SEND_ERROR_LABEL.has(code) ? code : 'other'}`;
    this.sendErrors.set(key, (this.sendErrors.get(key) ?? 0) + n);
  }

  handlerError(transport: Transport, n = 1): void {
    this.handlerErrors.set(transport, (this.handlerErrors.get(transport) ?? 0) + n);
  }

  /** TCP connections closed at once, by cap (TCP runs on the main thread only: not part of take()). */
  readonly tcpRefusals = new Map<TcpRefusal, number>();

  tcpRefused(reason: TcpRefusal): void {
    this.tcpRefusals.set(reason, (this.tcpRefusals.get(reason) ?? 0) + 1);
  }

  /** The counts so far, restarting from zero; undefined when nothing was counted. */
  take(): TransportFaultCounts | undefined {
    if (this.sendErrors.size === 0 && this.handlerErrors.size === 0) return undefined;
    const out = { sendErrors: [...this.sendErrors], handlerErrors: [...this.handlerErrors] };
    this.sendErrors.clear();
    this.handlerErrors.clear();
    return out;
  }

  /** Adds counts another thread took. */
  add(taken: TransportFaultCounts): void {
    for (const [key, n] of taken.sendErrors) this.sendErrors.set(key, (this.sendErrors.get(key) ?? 0) + n);
    for (const [t, n] of taken.handlerErrors) this.handlerErrors.set(t, (this.handlerErrors.get(t) ?? 0) + n);
  }
}

/** The transport-fault counters, published from `faults` at scrape time. */
function registerTransportFaults(registers: Registry[], faults: TransportFaults): void {
  new Counter({
    name: 'rrdns_send_errors_total',
    help: 'Answers that could not be sent (dropped), by transport and error code (a fixed set, else other).',
    labelNames: ['transport', 'code'] as const,
    registers,
    collect() {
      this.reset();
      for (const [key, n] of faults.sendErrors) {
        const [transport, code] = key.split(' ') as [string, string];
        this.inc({ transport, code }, n);
      }
    },
  });
  new Counter({
    name: 'rrdns_handler_errors_total',
    help: 'Messages whose handling threw (UDP: dropped; TCP: answered SERVFAIL), by transport.',
    labelNames: ['transport'] as const,
    registers,
    collect() {
      this.reset();
      for (const [transport, n] of faults.handlerErrors) this.inc({ transport }, n);
    },
  });
  new Counter({
    name: 'rrdns_tcp_refused_total',
    help: 'TCP connections closed at once, by the cap they were over: per-client (one address), per-prefix (one IPv6 /64), total (--tcp-max-connections).',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      this.reset();
      // Like the other fault counters, a series appears once it is non-zero.
      for (const [reason, n] of faults.tcpRefusals) if (n > 0) this.inc({ reason }, n);
    },
  });
}

/** What the cookie step concluded about a query's COOKIE option (RFC 7873 §5.2), in label order. */
export const COOKIE_RESULTS = ['client-only', 'valid', 'invalid', 'malformed', 'badcookie', 'truncated'] as const;
export type CookieResult = (typeof COOKIE_RESULTS)[number];
/** Index of each result in CookieCounts.cells. */
export const CookieCell = { CLIENT_ONLY: 0, VALID: 1, INVALID: 2, MALFORMED: 3, BADCOOKIE: 4, TRUNCATED: 5 } as const;

/**
 * Queries by what their COOKIE option was (client cookie only, a valid or an
 * invalid server cookie, malformed) and, with require-cookies on, BADCOOKIE
 * answers and the empty TC answers sent to UDP queries with no cookie at all. Plain numbers bumped on the hot path; a UDP worker thread keeps its own
 * and hands them over with take(), like QueryCounts.
 */
export class CookieCounts {
  readonly cells = new Float64Array(COOKIE_RESULTS.length);

  count(cell: number): void {
    this.cells[cell]!++;
  }

  /** The counts so far, restarting from zero; undefined when nothing was counted. */
  take(): number[] | undefined {
    if (this.cells.every((n) => n === 0)) return undefined;
    const out = Array.from(this.cells);
    this.cells.fill(0);
    return out;
  }

  /** Adds counts another thread took. */
  add(taken: readonly number[]): void {
    for (let i = 0; i < this.cells.length; i++) this.cells[i]! += taken[i] ?? 0;
  }
}

export class Metrics {
  readonly registry: Registry;
  /** COOKIE options seen by this thread's pipeline, plus what workers reported. */
  readonly cookies = new CookieCounts();

  private readonly queries = new QueryCounts();
  /** Failed sends and throwing handlers, counted by the transports (see TransportFaults). */
  readonly faults = new TransportFaults();

  /** Check results per address. */
  private readonly checks = new Map<string, CheckCounts>();
  /** Durations by result: label index 0 is ok, 1 is fail (CHECK_RESULTS). */
  private readonly checkDuration: CountedHistogram<'ok' | 'fail'>;

  private poolSource: () => PoolSnapshot[];

  constructor(opts: MetricsOptions = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.poolSource = opts.pools ?? (() => []);
    const self = this;

    new Counter({
      name: 'rrdns_queries_total',
      help: 'DNS queries answered, by zone, query type, response code and transport.',
      labelNames: ['zone', 'qtype', 'rcode', 'transport'] as const,
      registers,
      collect() {
        this.reset();
        for (const [zone, cells] of self.queries.cells) {
          cells.forEach((cell, n) => this.inc({ zone, ...cellLabels(cell) }, n));
        }
      },
    });

    new Counter({
      name: 'rrdns_health_checks_total',
      help: 'Health check results, by checked address and result (ok or fail).',
      labelNames: ['address', 'result'] as const,
      registers,
      collect() {
        this.reset();
        for (const [address, c] of self.checks) {
          this.inc({ address, result: 'ok' }, c.ok);
          this.inc({ address, result: 'fail' }, c.fail);
        }
      },
    });

    // Counted in place (counted-histogram.ts): prom-client's observe() made a label object and a hash
    // string per result, ~0.5 MB/s of garbage on the answering thread with 5,000 checks.
    this.checkDuration = new CountedHistogram({
      name: 'rrdns_health_check_duration_seconds',
      help: 'Health check duration, by result (ok or fail).',
      labelName: 'result',
      labelValues: ['ok', 'fail'],
      buckets: CHECK_DURATION_BUCKETS,
      registers,
    });

    // The pool gauges share one snapshot per scrape: prom-client runs every
    // collect() synchronously at the start of a scrape, so the first gauge
    // collected takes the snapshot and a microtask forgets it afterwards.
    let snapshot: PoolSnapshot[] | undefined;
    const pools = (): PoolSnapshot[] => {
      if (snapshot === undefined) {
        snapshot = self.readPools();
        queueMicrotask(() => {
          snapshot = undefined;
        });
      }
      return snapshot;
    };

    new Gauge({
      name: 'rrdns_pool_members',
      help: 'Addresses of each health-checked pool by measured state (up, down, unknown before the first result).',
      labelNames: ['zone', 'name', 'type', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of pools()) {
          const counts = { up: 0, down: 0, unknown: 0 };
          for (const m of p.members) counts[m.health]++;
          for (const state of ['up', 'down', 'unknown'] as const) {
            this.set({ zone: p.zone, name: p.name, type: p.type, state }, counts[state]);
          }
        }
      },
    });

    new Gauge({
      name: 'rrdns_pool_member_up',
      help: 'Measured health of each pool address: 1 up, 0 down or not yet checked.',
      labelNames: ['name', 'type', 'address', 'role'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of pools()) {
          for (const m of p.members) this.set({ name: p.name, type: p.type, address: m.address, role: m.role }, m.health === 'up' ? 1 : 0);
        }
      },
    });

    new Gauge({
      name: 'rrdns_pool_member_served',
      help: 'Whether each pool address is in the answers right now (health, overrides and the pool policy decided): 1 or 0.',
      labelNames: ['name', 'type', 'address', 'role'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of pools()) {
          for (const m of p.members) this.set({ name: p.name, type: p.type, address: m.address, role: m.role }, m.served ? 1 : 0);
        }
      },
    });

    new Gauge({
      name: 'rrdns_pool_ttl_seconds',
      help: 'Health-aware TTL each pool serves right now.',
      labelNames: ['name', 'type'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of pools()) this.set({ name: p.name, type: p.type }, p.ttl);
      },
    });

    new Gauge({
      name: 'rrdns_pool_serving',
      help: 'How each pool answers now: 1 for the current mode, 0 for the others (healthy, minHealthy, allDown:*).',
      labelNames: ['name', 'type', 'mode'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of pools()) {
          for (const mode of SERVING_MODES) this.set({ name: p.name, type: p.type, mode }, p.serving === mode ? 1 : 0);
        }
      },
    });

    registerBalance(registers, pools, () => this.firstServedSource());

    registerTransportFaults(registers, this.faults);
    new Counter({
      name: 'rrdns_cookies_total',
      help: 'Queries with a DNS COOKIE option by what it held (client-only, valid or invalid server cookie, malformed: FORMERR), and with require-cookies: BADCOOKIE answers and TC answers to UDP queries without a cookie (truncated).',
      labelNames: ['result'] as const,
      registers,
      collect() {
        this.reset();
        COOKIE_RESULTS.forEach((result, i) => {
          if (self.cookies.cells[i]! > 0) this.inc({ result }, self.cookies.cells[i]!);
        });
      },
    });
    const cache = () => this.answerCacheSource();
    new Gauge({
      name: 'rrdns_answer_cache_bytes',
      help: 'Bytes of compiled answers the main thread keeps (bounded by --answer-cache-bytes; each UDP worker thread has its own).',
      registers,
      collect() {
        this.set(cache().bytes);
      },
    });
    new Gauge({
      name: 'rrdns_answer_cache_entries',
      help: 'Compiled answers the main thread keeps.',
      registers,
      collect() {
        this.set(cache().entries);
      },
    });
    // Lazy zones (zone/lazy-zone.ts): how many have their records built now, and how often one was built.
    new Gauge({
      name: 'rrdns_zones_built',
      help: 'Zones kept as text whose records the main thread has built now (the others are built when a query needs them; each UDP worker thread has its own).',
      registers,
      collect() {
        this.set(lazyZoneStats().resident);
      },
    });
    new Counter({
      name: 'rrdns_zone_builds_total',
      help: 'Times the main thread built a zone kept as text (a query needed it while it was not built).',
      registers,
      collect() {
        this.reset();
        const n = lazyZoneStats().builds;
        if (n > 0) this.inc(n);
      },
    });
    this.survived = faultMetrics(registers);
    registerRateLimit(registers, () => this.rateLimitSource());

    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Faults survived (worker restarts, log lines dropped or suppressed); see faultMetrics below. */
  private readonly survived: FaultMetrics;

  /** A UDP worker thread was replaced: it exited, threw, or stopped answering (hung). */
  udpWorkerRestart(reason: 'exit' | 'error' | 'hung'): void {
    this.survived.workerRestarts[reason]++;
  }

  /** Counts one answered query (hot path; see QueryCounts.count). */
  countQuery(zone: string | undefined, qtype: number, rcode: number, transport: Transport): void {
    this.queries.count(zone, qtype, rcode, transport);
  }

  /** Adds the query counts a UDP worker thread took. */
  addQueryCounts(counts: ReadonlyMap<string, Float64Array>): void {
    this.queries.add(counts);
  }

  /**
   * Counts one finished health check. `key` names the check (shared checks are
   * counted once); the counter is labelled by address, summing the checks of an
   * address (several ports or settings).
   */
  checkResult(key: string, address: string, ok: boolean, latencyMs: number): void {
    void key;
    let c = this.checks.get(address);
    if (c === undefined) {
      c = { ok: 0, fail: 0 };
      this.checks.set(address, c);
    }
    if (ok) c.ok++;
    else c.fail++;
    const seconds = Number.isFinite(latencyMs) && latencyMs > 0 ? latencyMs / 1000 : 0;
    this.checkDuration.observe(ok ? 0 : 1, seconds);
  }

  /** Where the first-position table's fill reads from (the server's FirstServedCounters). */
  setFirstServed(source: () => { untracked: number; uncounted: number }): void {
    this.firstServedSource = source;
  }
  private firstServedSource: () => { untracked: number; uncounted: number } | undefined = () => undefined;

  /** Where the rate-limit counters read from (the server's RateLimiting: every thread's counts so far). */
  setRateLimit(source: () => RateLimitCounts): void {
    this.rateLimitSource = source;
  }
  private rateLimitSource: () => RateLimitCounts | undefined = () => undefined;

  /** Where the pool gauges come from: a fixed snapshot, or a function read at every scrape. */
  /** Where the answer-cache gauges read from (the server's AnswerCache). */
  setAnswerCache(source: () => { bytes: number; entries: number }): void {
    this.answerCacheSource = source;
  }
  private answerCacheSource: () => { bytes: number; entries: number } = () => ({ bytes: 0, entries: 0 });

  /** The state directory's write outcomes (src/state/store.ts); registers its counter on first call. */
  setStateWrites(source: () => { failures: number }): void {
    if (this.stateWritesSource === undefined) {
      const self = this;
      new Counter({
        name: 'rrdns_state_write_failures_total',
        help: 'Writes to the state directory that failed: the override asked for was refused, or the reload (or start) that raised a served serial failed.',
        registers: [this.registry],
        collect() {
          this.reset();
          const n = self.stateWritesSource!().failures;
          if (n > 0) this.inc(n);
        },
      });
    }
    this.stateWritesSource = source;
  }
  private stateWritesSource: (() => { failures: number }) | undefined;

  setPools(source: PoolSnapshot[] | (() => PoolSnapshot[])): void {
    this.poolSource = typeof source === 'function' ? source : () => source;
  }

  /** Forgets the query counts of zones no longer served (keeps `none`). Call after a reload if zones went away. */
  retainZones(zones: Iterable<string>): void {
    const keep = new Set(zones);
    keep.add(NO_ZONE);
    this.queries.forget((z) => keep.has(z));
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  private readPools(): PoolSnapshot[] {
    try {
      return this.poolSource();
    } catch {
      // A failing source must not fail the whole scrape: the pool gauges are empty this time.
      return [];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The balance per pool member (src/balancing/first-served.ts counts, the pool registry's snapshot).

function registerBalance(registers: Registry[], pools: () => PoolSnapshot[], table: () => { untracked: number; uncounted: number } | undefined): void {
  const labelNames = ['zone', 'name', 'type', 'address'] as const;
  new Counter({
    name: 'rrdns_pool_member_first_total',
    help: 'Answers that put this pool member first (every thread), since the process started: the share of connections DNS sends it.',
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const p of pools()) {
        for (const m of p.members) if (m.firstServed !== null) this.inc({ zone: p.zone, name: p.name, type: p.type, address: m.address }, m.firstServed);
      }
    },
  });
  new Gauge({
    name: 'rrdns_pool_member_weight',
    help: 'Effective weight of each pool member: what the rotation uses now (the configured weight, moved by load feedback).',
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const p of pools()) for (const m of p.members) this.set({ zone: p.zone, name: p.name, type: p.type, address: m.address }, m.effectiveWeight);
    },
  });
  new Gauge({
    name: 'rrdns_pool_member_configured_weight',
    help: 'Weight of each pool member as the zone configures it (capacity; 1 when not stated).',
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const p of pools()) for (const m of p.members) this.set({ zone: p.zone, name: p.name, type: p.type, address: m.address }, m.weight);
    },
  });
  new Gauge({
    name: 'rrdns_pool_member_load',
    help: 'Load each pool member last reported through its health check (check.load); no series while none is known.',
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const p of pools()) {
        for (const m of p.members) if (m.load !== null) this.set({ zone: p.zone, name: p.name, type: p.type, address: m.address }, m.load);
      }
    },
  });
  new Gauge({
    name: 'rrdns_pool_first_untracked_members',
    help: 'Pool members whose first positions are not counted: the counter table (65,536 members over the process life) was full when they appeared.',
    registers,
    collect() {
      this.set(table()?.untracked ?? 0);
    },
  });
  new Counter({
    name: 'rrdns_pool_first_uncounted_total',
    help: 'Answers whose first member was one of the untracked ones (see rrdns_pool_first_untracked_members).',
    registers,
    collect() {
      this.reset();
      const n = table()?.uncounted ?? 0;
      if (n > 0) this.inc(n);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Faults survived: counted here, decided elsewhere (udp-threads.ts, log.ts, log-limiter.ts).

interface FaultMetrics {
  workerRestarts: Record<'exit' | 'error' | 'hung', number>;
}

function faultMetrics(registers: Registry[]): FaultMetrics {
  const workerRestarts = { exit: 0, error: 0, hung: 0 };
  new Counter({
    name: 'rrdns_udp_worker_restarts_total',
    help: 'UDP worker threads replaced, by reason: exit (it ended), error (it threw), hung (no heartbeat within the timeout).',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(workerRestarts)) if (n > 0) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: 'rrdns_log_lines_dropped_total',
    help: 'Log lines dropped because stdout did not keep up (its bounded buffer was full).',
    registers,
    collect() {
      this.reset();
      const n = logStats().dropped;
      if (n > 0) this.inc(n);
    },
  });
  new Counter({
    name: 'rrdns_log_lines_suppressed_total',
    help: 'Repetitive log lines suppressed by the rate limiter (reported as "suppressed N similar" lines), by kind.',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      this.reset();
      for (const [kind, n] of Object.entries(logStats().suppressed)) if (n > 0) this.inc({ kind }, n);
    },
  });
  return { workerRestarts };
}

// ---------------------------------------------------------------------------------------------
// Response rate limiting: counted per thread by src/rrl/limiter.ts, summed on the main thread.

/** Responses limited so far, by response class (answer, nodata, nxdomain, referral, error). */
export interface RateLimitCounts {
  readonly dropped: Readonly<Record<string, number>>;
  readonly slipped: Readonly<Record<string, number>>;
  readonly wouldDrop: Readonly<Record<string, number>>;
  readonly wouldSlip: Readonly<Record<string, number>>;
}

function registerRateLimit(registers: Registry[], source: () => RateLimitCounts | undefined): void {
  const counter = (name: string, help: string, pick: (c: RateLimitCounts) => Readonly<Record<string, number>>, extra?: 'action') =>
    new Counter({
      name,
      help,
      labelNames: extra ? (['class', 'action'] as const) : (['class'] as const),
      registers,
      collect() {
        const last = source();
        this.reset();
        if (!last) return;
        if (extra) {
          for (const [cls, n] of Object.entries(last.wouldDrop)) if (n > 0) this.inc({ class: cls, action: 'drop' }, n);
          for (const [cls, n] of Object.entries(last.wouldSlip)) if (n > 0) this.inc({ class: cls, action: 'slip' }, n);
          return;
        }
        for (const [cls, n] of Object.entries(pick(last))) if (n > 0) this.inc({ class: cls }, n);
      },
    });
  counter('rrdns_rrl_dropped_total', 'UDP responses dropped by response rate limiting, by response class.', (c) => c.dropped);
  counter('rrdns_rrl_slipped_total', 'UDP responses rate limiting sent truncated instead (TC=1, no records: slip), by response class.', (c) => c.slipped);
  counter('rrdns_rrl_log_only_total', 'Responses over the rate limit in log-only mode (sent anyway), by response class and what would have been done (drop, slip).', (c) => c.wouldDrop, 'action');
}
