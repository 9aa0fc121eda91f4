/**
 * The probes. HTTP(S) through undici, TCP through `net`. Every probe connects to
 * the target's IP address itself (no DNS lookup, ever), is bounded by the check's
 * timeout from connect to the last body byte read, and by default opens a fresh
 * connection (a pooled one could hide a listener that no longer accepts) and
 * releases it before its promise settles; with `keepAlive` an HTTP(S) check
 * reuses the idle connections of a pool per origin, closed by `close()`. A checker never rejects: failures are
 * outcomes with a human-readable `detail`.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Client, Pool, type Dispatcher } from 'undici';
import { formatExpect } from '../config/health-check.ts';
import { describeError } from './describe-error.ts';

export { describeError };
import { createIcmpChecker, type IcmpChecker, type IcmpCheckerOptions } from './icmp/icmp-checker.ts';
import { localAddressFor } from './source-address.ts';
import { inRanges, originOf, prepareHttp, type Hop } from './http-prepared.ts';
import { serverName, type CheckTarget } from './target.ts';

export interface CheckOutcome {
  ok: boolean;
  /** 'HTTP 200', 'HTTP 500 not in 200-399', 'timeout after 2000ms', 'ECONNREFUSED', 'body does not match'… */
  detail: string;
  /** HTTP status of the (last) response, when one arrived. */
  status?: number;
  latencyMs: number;
  /**
   * The load the backend reported (check.load: a header or a number at a JSON
   * path), on passing http/https checks that could read one; a missing or
   * unreadable value leaves it out and says why in `detail`, it never fails the check.
   */
  load?: number;
}

/** Runs one probe. Never rejects; honours `signal` (abort → failed outcome 'aborted'). */
export type Checker = (target: CheckTarget, signal: AbortSignal) => Promise<CheckOutcome>;

export interface CheckerOptions {
  /** Monotonic clock in ms for `latencyMs` (default `performance.now`). */
  now?: () => number;
  /** Local address probes of its family connect from (--check-source-address); others use the default. */
  sourceAddress?: string;
  /** For `type: icmp` checks (fping, started at the first icmp probe: see icmp/icmp-checker.ts). */
  icmp?: IcmpCheckerOptions;
}

const TIMEOUT = Symbol('health-check-timeout');
const BACKSTOP_MS = 1000;
/** The one undici timeout still set (connect, a backstop: dispatcherOptions); it reads as the check's timeout. */
const UNDICI_CONNECT_TIMEOUT = 'UND_ERR_CONNECT_TIMEOUT';
const CLOSED = Symbol('health-checker-closed');
/** Bytes of body read for `load.json` when the check sets no `body.maxBytes`. */
export const LOAD_BODY_BYTES = 64 * 1024;

type ProbeResult = Omit<CheckOutcome, 'latencyMs'>;

/** What a probe in flight is told to stop through: the exchange or connection it waits on. */
interface Stoppable {
  stop(): void;
}

/**
 * One probe's abort: its own timeout, the caller's signal (through its
 * SignalWatch) and close() all end here, and stop
 * what the probe waits on. One small object instead of an AbortController, a
 * timer closure and listener closures per probe: 5,000 probes a second made
 * those a good part of the probing thread's work.
 */
class ProbeAbort {
  aborted = false;
  reason: unknown = undefined;
  /** What the probe waits on now (set by exchange and tcpProbe while they run). */
  current: Stoppable | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const c = this.current;
    this.current = undefined;
    c?.stop();
  }
}

const onProbeTimeout = (p: ProbeAbort) => p.abort(TIMEOUT);

/**
 * The probes in flight under one caller's signal, and that signal's one
 * listener (EventTarget calls handleEvent). The monitor gives every check of a
 * target the same signal until it aborts one: listening once per signal, not
 * adding and removing a listener per probe, spares EventTarget's bookkeeping
 * 5,000 times a second.
 */
class SignalWatch {
  readonly probes = new Set<ProbeAbort>();
  readonly signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.signal = signal;
  }

  handleEvent(): void {
    const reason: unknown = this.signal.reason;
    for (const p of this.probes) p.abort(reason);
    this.probes.clear();
  }
}

/** Keyed weakly: a signal nobody holds any more takes its watch with it. */
const watches = new WeakMap<AbortSignal, SignalWatch>();

function watchOf(signal: AbortSignal): SignalWatch {
  let w = watches.get(signal);
  if (w === undefined) {
    w = new SignalWatch(signal);
    watches.set(signal, w);
    signal.addEventListener('abort', w, ONCE);
  }
  return w;
}

/** Creates a checker; `close()` aborts in-flight probes and resolves once their sockets are closed. */
export function createChecker(opts: CheckerOptions = {}): { check: Checker; close(): Promise<void> } {
  const now = opts.now ?? (() => performance.now());
  const source = opts.sourceAddress;
  const pools = new KeepAlivePools(source);
  const inFlight = new Set<ProbeAbort>();
  let closed = false;
  let closing: Promise<void> | undefined;
  /** Set by close(): called when the last probe in flight has settled. */
  let drained: (() => void) | undefined;
  let icmp: IcmpChecker | undefined;

  const check: Checker = async (target, signal) => {
    // Echoes are not a request per probe: the icmp checker matches probes to fping's stream and keeps its own time.
    if (target.config.type === 'icmp' && !closed) return (icmp ??= createIcmpChecker({ now, ...opts.icmp })).check(target, signal);
    const started = now();
    if (closed) return outcome({ ok: false, detail: 'checker closed' }, started, now());
    if (signal.aborted) return outcome({ ok: false, detail: 'aborted' }, started, now());

    const timeoutMs = target.config.timeout;
    const p = new ProbeAbort();
    p.timer = setTimeout(onProbeTimeout, timeoutMs, p);
    const watch = watchOf(signal);
    watch.probes.add(p);
    inFlight.add(p);
    let r: ProbeResult;
    try {
      r = target.config.type === 'tcp' ? await tcpProbe(target, p, source) : await httpProbe(target, p, pools, source);
    } catch (e) {
      r = failure(e, p, timeoutMs);
    } finally {
      clearTimeout(p.timer);
      watch.probes.delete(p);
      inFlight.delete(p);
      if (drained !== undefined && inFlight.size === 0) drained();
    }
    return outcome(r, started, now());
  };

  return {
    check,
    close() {
      closed = true;
      closing ??= (async () => {
        if (inFlight.size > 0) {
          const settled = new Promise<void>((resolve) => (drained = resolve));
          for (const p of inFlight) p.abort(CLOSED);
          await settled;
        }
        await Promise.all([pools.close(), icmp?.close()]);
      })();
      return closing;
    },
  };
}

/** A probe's result with its latency (0.1 ms steps, never negative). */
const outcome = (r: ProbeResult, started: number, ended: number): CheckOutcome => {
  const o: CheckOutcome = { ok: r.ok, detail: r.detail, latencyMs: Math.max(0, Math.round((ended - started) * 10) / 10) };
  if (r.status !== undefined) o.status = r.status;
  if (r.load !== undefined) o.load = r.load;
  return o;
};

/** Why a probe that threw failed: its own timeout, close(), the caller's abort, or the error itself. */
function failure(e: unknown, p: ProbeAbort, timeoutMs: number): ProbeResult {
  const reason = p.aborted ? p.reason : undefined;
  if (reason === TIMEOUT) return { ok: false, detail: `timeout after ${timeoutMs}ms` };
  if (reason === CLOSED) return { ok: false, detail: 'checker closed' };
  if (p.aborted) return { ok: false, detail: 'aborted' };
  if ((e as { code?: string } | null)?.code === UNDICI_CONNECT_TIMEOUT) return { ok: false, detail: `timeout after ${timeoutMs}ms` };
  return { ok: false, detail: describeError(e) };
}

// ---------------------------------------------------------------------------------------------
// Details of passing probes: the same few strings every time, made once. A new string per probe
// is kept as the target's last outcome for an interval: young garbage that lives just long enough
// to be copied and promoted.

const HTTP_DETAILS = new Array<string | undefined>(1000).fill(undefined);
const TCP_DETAILS = new Map<number, string>();

/** 'HTTP 200'. */
export function httpDetail(status: number): string {
  if (!(status >= 100 && status <= 999)) return `HTTP ${status}`;
  return (HTTP_DETAILS[status] ??= `HTTP ${status}`);
}

/** 'TCP connect to port 80'. */
function tcpDetail(port: number): string {
  let d = TCP_DETAILS.get(port);
  if (d === undefined) TCP_DETAILS.set(port, (d = `TCP connect to port ${port}`));
  return d;
}

// ---------------------------------------------------------------------------------------------
// TCP

/** Connects to address:port; success on 'connect'. Resolves or rejects only after the socket closed. */
function tcpProbe(target: CheckTarget, p: ProbeAbort, source: string | undefined): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const localAddress = localAddressFor(source, target.family);
    const socket = net.connect({ host: target.address, port: target.config.port, family: target.family, ...(localAddress ? { localAddress } : {}) });
    let result: { ok: true } | { ok: false; error: unknown } | undefined;
    const settle = (r: NonNullable<typeof result>) => {
      if (result) return;
      result = r;
      if (p.current === stoppable) p.current = undefined;
      socket.destroy();
    };
    const stoppable: Stoppable = { stop: () => settle({ ok: false, error: p.reason }) };
    socket.once('connect', () => settle({ ok: true }));
    socket.on('error', (error) => settle({ ok: false, error }));
    socket.once('close', () => {
      settle({ ok: false, error: new Error('connection closed') });
      if (result!.ok) resolve({ ok: true, detail: tcpDetail(target.config.port) });
      else reject(result!.error);
    });
    if (p.aborted) stoppable.stop();
    else p.current = stoppable;
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP(S)


/** What one request brought back: the status, the headers and at most the asked-for bytes of the body. */
interface Exchange {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body was longer than the bytes kept. */
  truncated: boolean;
}

/**
 * One request through undici's dispatch API with a minimal handler: no Response
 * object, body stream or promise chain per probe, only callbacks. `keep` bytes
 * of the body are kept and at most `max` read (past it: truncated, the request
 * aborted). With `drain` the body is read to its end so the connection can be
 * reused; otherwise the request is aborted as soon as nothing more is wanted
 * (the connection is being thrown away anyway).
 * Rejects with undici's or the socket's error, or with the probe's abort reason.
 */
function exchange(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, keep: number, max: number, drain: boolean, p: ProbeAbort): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const h = new ExchangeHandler(keep, max, drain, p, resolve, reject);
    if (p.aborted) return h.stop();
    p.current = h;
    try {
      dispatcher.dispatch(opts, h);
    } catch (e) {
      h.done(e);
    }
  });
}

const ONCE = { once: true } as const;
const NO_BODY = Buffer.alloc(0);

/**
 * One request's state, its undici handler and what the probe's abort stops,
 * in one object with prototype methods: 5,000 probes a second made a closure
 * per callback a good part of the probing thread's garbage.
 */
class ExchangeHandler implements Dispatcher.DispatchHandler, Stoppable {
  controller: Dispatcher.DispatchController | undefined = undefined;
  settled = false;
  status = 0;
  headers: Exchange['headers'] = {};
  chunks: Buffer[] | undefined = undefined;
  kept = 0;
  read = 0;
  truncated = false;
  readonly keep: number;
  readonly max: number;
  readonly drain: boolean;
  readonly probe: ProbeAbort;
  readonly resolve: (e: Exchange) => void;
  readonly reject: (e: unknown) => void;

  constructor(keep: number, max: number, drain: boolean, probe: ProbeAbort, resolve: (e: Exchange) => void, reject: (e: unknown) => void) {
    this.keep = keep;
    this.max = Math.max(keep, max);
    this.drain = drain;
    this.probe = probe;
    this.resolve = resolve;
    this.reject = reject;
  }

  /** The probe aborted. In flight: the connection goes (a backend that hangs must not keep it). Not started yet
   * (queued in a keep-alive pool): onRequestStart drops it, leaving the connection it gets for the next probe. */
  stop(): void {
    this.controller?.abort(ABORTED);
    this.done(this.probe.reason);
  }

  done(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (this.probe.current === this) this.probe.current = undefined;
    if (err !== undefined) this.reject(err);
    else this.resolve(this.result());
  }

  result(): Exchange {
    const c = this.chunks;
    return { status: this.status, headers: this.headers, body: c === undefined ? NO_BODY : c.length === 1 ? c[0]! : Buffer.concat(c, this.kept), truncated: this.truncated };
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    // Over before it could start: throwing here makes undici drop the request without writing it and
    // without closing the socket (controller.abort would destroy the socket).
    if (this.settled) throw ABORTED;
    this.controller = c;
  }

  onResponseStart(c: Dispatcher.DispatchController, statusCode: number, h: Record<string, string | string[]>): void {
    if (this.settled) return;
    this.status = statusCode;
    this.headers = h as Exchange['headers'];
    if (this.keep === 0 && !this.drain) {
      this.done(undefined);
      c.abort(NOT_NEEDED);
    }
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    const take = Math.min(chunk.length, this.keep - this.kept);
    if (take > 0) {
      (this.chunks ??= []).push(take === chunk.length ? chunk : chunk.subarray(0, take));
      this.kept += take;
    }
    this.read += chunk.length;
    if (this.read > this.max) {
      this.truncated = true;
      this.done(undefined);
      c.abort(NOT_NEEDED);
    } else if (this.kept >= this.keep && !this.drain) {
      this.done(undefined);
      c.abort(NOT_NEEDED);
    }
  }

  onResponseEnd(): void {
    this.done(undefined);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.done(err);
  }
}

/** Reasons for aborting our own requests: shared, so a probe does not pay for building an Error and its stack. */
const ABORTED = new Error('health check over');
const NOT_NEEDED = new Error('the rest of the response is not needed');

/** Errors of a reused connection the server had already closed: worth exactly one retry on a new connection. */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const isStaleSocket = (e: unknown) => STALE_SOCKET.has((e as { code?: string } | null)?.code ?? '');

/** undici options shared by the fresh-connection clients and the keep-alive pools. */
function dispatcherOptions(target: CheckTarget, scheme: Hop['scheme'], source: string | undefined) {
  const c = target.config;
  const sni = serverName(target);
  const localAddress = localAddressFor(source, target.family);
  return {
    allowH2: false,
    // A client option, not a connect one: undici passes it to every connection it opens, pooled ones included.
    ...(localAddress ? { localAddress } : {}),
    // Our own timer (c.timeout, started first) is the limit; undici's timeouts are only a backstop.
    connect: {
      timeout: c.timeout + BACKSTOP_MS,
      ...(scheme === 'https'
        ? { rejectUnauthorized: c.tls.verify, ...(target.ca ? { ca: target.ca } : {}), ...(sni ? { servername: sni } : {}) }
        : {}),
    },
    // None of undici's own per-request timers: the probe's timer (c.timeout, from start to the last body
    // byte, ProbeAbort) is stricter than both and aborts the request, which destroys its socket. As
    // backstops they cost a timer set or refreshed per request: ~6 µs of a keep-alive probe's ~50.
    headersTimeout: 0,
    bodyTimeout: 0,
  };
}

/** Connections a keep-alive pool opens to one origin at most (probes are spread, so few are busy at once). */
export const KEEPALIVE_CONNECTIONS = 16;

/**
 * The keep-alive pools, one per origin and connection settings (the checks of
 * many names on one backend share its idle connections). Idle connections close
 * after about two intervals, or earlier when the server announces a shorter
 * keep-alive (undici subtracts `keepAliveTimeoutThreshold` from the hint, so we
 * stop using a connection before the server closes it).
 */
class KeepAlivePools {
  readonly #pools = new Map<string, Pool>();
  readonly #source: string | undefined;

  constructor(source: string | undefined) {
    this.#source = source;
  }

  /** The pool of a target's first hop, remembered for the target (no key to build per probe). */
  first(target: CheckTarget, hop: Hop, origin: string): Pool {
    let pool = this.#first.get(target);
    if (!pool || pool.destroyed) this.#first.set(target, (pool = this.get(target, hop, origin)));
    return pool;
  }

  readonly #first = new WeakMap<CheckTarget, Pool>();

  get(target: CheckTarget, hop: Hop, origin: string): Pool {
    const c = target.config;
    const key = `${origin}|${c.timeout}|${c.interval}|${hop.scheme === 'https' ? `${c.tls.verify}|${serverName(target) ?? ''}|${target.key}` : ''}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(origin, {
        ...dispatcherOptions(target, hop.scheme, this.#source),
        pipelining: 1,
        // Bounded: a burst (a first round, a slow backend) queues probes instead of opening a connection for each.
        connections: KEEPALIVE_CONNECTIONS,
        keepAliveTimeout: Math.min(60_000, Math.max(4000, 2 * c.interval)),
        // Stop using a connection this long before the server's announced keep-alive ends (a 1 s hint leaves 700 ms).
        keepAliveTimeoutThreshold: 300,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}

async function httpProbe(target: CheckTarget, p: ProbeAbort, pools: KeepAlivePools, source: string | undefined): Promise<ProbeResult> {
  const c = target.config;
  // Headers, first hop, status ranges: made once per target (http-prepared.ts), not per probe.
  const prep = prepareHttp(target, LOAD_BODY_BYTES);
  const host = prep.host;
  const headers = prep.headers;
  // The clients made for this probe (connection per probe), closed at its end.
  let fresh: Client[] | undefined;
  const wantBody = prep.wantBody;
  const limit = prep.limit;
  // Bytes of the body kept; bytes read at most (a keep-alive connection drains a body it does not need,
  // bounded, so it can carry the next probe; past the bound the connection is dropped instead).
  const keep = wantBody ? limit : 0;
  const max = wantBody ? limit : c.keepAlive ? LOAD_BODY_BYTES : 0;

  try {
    let hop: Hop = prep.firstHop;
    // Bounded: at most followRedirects + 1 requests (+ one retry each on a stale keep-alive connection).
    for (let redirects = 0; ; redirects++) {
      const opts: Dispatcher.DispatchOptions = { path: hop.path, method: c.method, headers, reset: !c.keepAlive };
      let dispatcher: Dispatcher;
      if (c.keepAlive) dispatcher = hop === prep.firstHop ? pools.first(target, hop, prep.firstOrigin) : pools.get(target, hop, originOf(target, hop));
      else {
        // A new connection per request, closed after it: nothing idles between checks, and a dead listener shows.
        const origin = hop === prep.firstHop ? prep.firstOrigin : originOf(target, hop);
        const client = new Client(origin, { ...dispatcherOptions(target, hop.scheme, source), pipelining: 0 });
        (fresh ??= []).push(client);
        dispatcher = client;
      }
      let res: Exchange;
      try {
        res = await exchange(dispatcher, opts, keep, max, c.keepAlive, p);
      } catch (e) {
        // The server closed an idle connection as we reused it: not the backend failing, so one retry (a new connection).
        if (!c.keepAlive || p.aborted || !isStaleSocket(e)) throw e;
        res = await exchange(dispatcher, opts, keep, max, c.keepAlive, p);
      }
      const status = res.status;
      const after = redirects > 0 ? ` (after ${redirects} redirect${redirects === 1 ? '' : 's'})` : '';

      if (status >= 300 && status < 400 && redirects < c.followRedirects) {
        const location = res.headers['location'];
        const loc = Array.isArray(location) ? location[0] : location;
        if (loc !== undefined) {
          const next = nextHop(hop, host, loc);
          if (!next) return { ok: false, status, detail: `HTTP ${status} redirect to ${loc} not followed (other host)` };
          hop = next;
          continue;
        }
      }

      if (!inRanges(status, prep.accepted)) {
        return { ok: false, status, detail: `HTTP ${status} not in ${formatExpect(c.expectStatus)}${after}` };
      }
      if (!wantBody) return withLoad({ ok: true, status, detail: after === '' ? httpDetail(status) : `HTTP ${status}${after}` }, c.load, res.headers, '', 0);
      const text = res.body.toString('utf8');
      const matched = !c.body || (c.body.regex ? new RegExp(c.body.match).test(text) : text.includes(c.body.match));
      return matched
        ? withLoad({ ok: true, status, detail: after === '' ? httpDetail(status) : `HTTP ${status}${after}` }, c.load, res.headers, text, res.truncated || res.body.length >= limit ? limit : 0)
        : { ok: false, status, detail: `HTTP ${status}${after}, body does not match (first ${c.body!.maxBytes} bytes)` };
    }
  } finally {
    // Resolves once each fresh client's socket is closed.
    if (fresh !== undefined) await Promise.allSettled(fresh.map((cl) => cl.destroy()));
  }
}

// ---------------------------------------------------------------------------------------------
// Load signal (check.load)

/** A plain non-negative decimal number as a backend writes it ('0.73', '12', '1e-3'); no hex, no empty string. */
const LOAD_NUMBER = /^\+?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * `passed` with the load read from the response, or with the reason there is
 * none appended to its detail: a load that cannot be read must not take a
 * healthy backend out, it only gives the balancer nothing to act on.
 * `truncatedAt` > 0: the body was cut at that many bytes.
 */
function withLoad(
  passed: ProbeResult,
  spec: CheckTarget['config']['load'],
  headers: Record<string, string | string[] | undefined>,
  body: string,
  truncatedAt: number,
): ProbeResult {
  if (!spec) return passed;
  const r = 'header' in spec ? headerLoad(headers, spec.header) : jsonLoad(body, spec.json, truncatedAt);
  return typeof r === 'number' ? { ...passed, load: r, detail: `${passed.detail}, load ${r}` } : { ...passed, detail: `${passed.detail}, no load: ${r}` };
}

/** The load in header `name`, or why there is none. */
export function headerLoad(headers: Record<string, string | string[] | undefined>, name: string): number | string {
  const value = headers[name.toLowerCase()];
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return `header ${name} missing`;
  const trimmed = text.trim();
  if (!LOAD_NUMBER.test(trimmed)) return `header ${name} is not a non-negative number`;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : `header ${name} is not a finite number`;
}

/** The load at dotted `path` of JSON `body`, or why there is none. */
export function jsonLoad(body: string, path: string, truncatedAt = 0): number | string {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return truncatedAt > 0 ? `body is not JSON within its first ${truncatedAt} bytes` : 'body is not JSON';
  }
  let at: unknown = doc;
  for (const key of path.split('.')) {
    // Own keys only: a path never reaches into a prototype.
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return `no ${path} in the body`;
    at = (at as Record<string, unknown>)[key];
  }
  if (typeof at !== 'number') return `${path} is not a number`;
  if (!Number.isFinite(at) || at < 0) return `${path} is not a finite non-negative number`;
  return at;
}

/** The next request for a redirect, or undefined when it leaves the checked host (we never resolve names). */
function nextHop(current: Hop, host: string, location: string): Hop | undefined {
  const want = hostnameOf(host);
  if (want === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(location, `${current.scheme}://${want}:${current.port}${current.path}`);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.hostname.toLowerCase().replace(/\.$/, '') !== want) return undefined;
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  return { scheme, port, path: `${url.pathname}${url.search}` };
}

/** Host name of a Host header value (no port; IPv6 keeps its brackets), lower case, no trailing dot. */
function hostnameOf(host: string): string | undefined {
  try {
    return new URL(`http://${host}/`).hostname.toLowerCase().replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors → details

