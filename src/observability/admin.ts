/**
 * The admin HTTP listener (plain node:http): liveness and readiness, the
 * health state as JSON, admin overrides, Prometheus metrics and a status page.
 *
 *   GET    /healthz                                          200 {"status":"ok"}
 *   GET    /readyz                                           200 {"status":"ready"[, "zoneErrors":[…]]} | 503 {"status":"not_ready",…}
 *   GET    /api/v1/health                                    200 {"pools":[…], …}
 *   GET    /api/v1/pools/history                             200 {"intervalMs", "windowMs", "at":[…], "pools":[…]} (balance-history.ts)
 *   GET    /api/v1/resolvers                                 200 {"resolvers":[…], …} top resolvers by estimated demand
 *   GET    /api/v1/cluster                                   200 {"enabled":false} alone; in a cluster its members, state and counts (src/cluster/node.ts)
 *   PUT    /api/v1/pools/{name}/members/{address}/override   body {"override":"drain"|"force-up"|"force-down"|null}
 *   DELETE /api/v1/pools/{name}/members/{address}/override   clears the API override
 *   GET    /metrics                                          Prometheus text
 *   GET    /                                                 HTML status page
 *
 * HEAD works wherever GET does. Anything else is 404 (unknown path) or 405
 * (known path, other method, with Allow). Errors are JSON with a stable
 * `code`. Limits: request bodies ≤ 4 KiB (413 beyond), header and request
 * timeouts, a connection cap.
 *
 * Access (see admin-access.ts): with a token configured, PUT and DELETE need
 * `Authorization: Bearer <token>` (401 otherwise, RFC 6750 §3.1), and a
 * non-loopback listen address needs a token. Every request, GET included,
 * must name the listener in its Host header unless it carries the valid
 * token (403 bad_host otherwise), so a page that rebinds its own name to our
 * address (DNS rebinding) can neither read nor change anything. Refusals are
 * logged through a rate limiter: a client retrying in a loop gets a few lines.
 */
import { isLoopbackHost } from '../config/schema.ts';
import { ErrorCode, RrdnsError } from '../errors.ts';
import type http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { hostAllowed, TokenCheck, type Credential } from './admin-access.ts';
import { LogLimiter } from './log-limiter.ts';
import type { PoolSnapshot, ResolversSnapshot } from './snapshot.ts';
import type { Logger } from './log.ts';
import { renderStatusPage } from './status-page.ts';
import type { BalanceHistoryView } from './balance-history.ts';

/**
 * node:http as CommonJS hands it out. An ESM import of it builds the module's
 * namespace, which reads every export, the lazy ones included (WebSocket,
 * MessageEvent, CloseEvent): that loads Node's bundled undici, http2, tls,
 * zlib and web streams, code rrdns never runs (~3 MB of heap and ~14 MB of RSS
 * in a bare Node; ~1.5 MB of heap in rrdns, which loads some of it anyway).
 */
const { createServer } = process.getBuiltinModule('node:http');

export type OverrideValue = 'drain' | 'force-up' | 'force-down';

export interface AdminSource {
  /** Zones loaded and the first check round done. */
  ready(): boolean;
  pools(): PoolSnapshot[];
  /**
   * Sets (null: clears) the API override of a member; false when there is no such member.
   * Throws RrdnsError STATE_WRITE_FAILED when it could not be kept (then it is not applied).
   */
  setOverride(name: string, address: string, override: OverrideValue | null): boolean;
  metrics(): Promise<{ contentType: string; body: string }>;
  info(): { version: string; zones: string[]; startedAt: string };
  /** The last zone reload: its errors stay visible until a clean one. */
  reload?(): { at?: string; trigger?: string; ok: boolean; errors: string[]; keptPrevious: string[] };
  /** Each pool member's first-position share, effective weight and load over the last minutes. */
  history?(): BalanceHistoryView;
  /** The resolver demand table's top resolvers (balance.resolvers); absent: 404 and no section on the page. */
  resolvers?(): ResolversSnapshot;
  /** GET /api/v1/cluster; absent or undefined: `{"enabled": false}` (alone). */
  cluster?(): Record<string, unknown> | undefined;
  /** The cluster's state in short, for /readyz and /api/v1/health (undefined alone: no field). */
  clusterBrief?(): Record<string, unknown> | undefined;
}

export interface AdminOptions {
  host: string;
  port: number;
  logger?: Logger;
  /**
   * The bearer token PUT and DELETE require (read from --admin-token-file).
   * Also what allows a non-loopback listen address: the API can change what DNS answers.
   */
  token?: string;
  /** Where refused requests are logged, rate-limited (default: a limiter over `logger`). */
  logLimiter?: LogLimiter;
  /** How often the status page refreshes itself, ms (default 5000). */
  refreshMs?: number;
  /** How long close() lets requests in flight finish before cutting them, ms (default 5000). */
  closeGraceMs?: number;
}

/** Largest request body accepted (the override body is a few dozen bytes). */
export const MAX_BODY_BYTES = 4096;
const MAX_PATH_CHARS = 2048;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const MAX_HEADER_BYTES = 8192;
const MAX_CONNECTIONS = 128;

const OVERRIDES: ReadonlySet<string> = new Set(['drain', 'force-up', 'force-down']);
const OVERRIDE_PATH = /^\/api\/v1\/pools\/([^/]+)\/members\/([^/]+)\/override$/;

export { isLoopbackHost };

/** An owner name as the snapshot writes it: lower case with the trailing dot. */
function ownerKey(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}

/** An IP address in the snapshot's form: IPv6 compressed and lower case; undefined if not an address. */
function addressKey(address: string): string | undefined {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = net.isIP(bare);
  if (family === 4) return bare;
  if (family === 6) return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  return undefined;
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

type Route = { methods: readonly string[] };
const STATIC_ROUTES: Record<string, Route> = {
  '/': { methods: ['GET', 'HEAD'] },
  '/healthz': { methods: ['GET', 'HEAD'] },
  '/readyz': { methods: ['GET', 'HEAD'] },
  '/api/v1/health': { methods: ['GET', 'HEAD'] },
  '/api/v1/pools/history': { methods: ['GET', 'HEAD'] },
  '/api/v1/resolvers': { methods: ['GET', 'HEAD'] },
  '/api/v1/cluster': { methods: ['GET', 'HEAD'] },
  '/metrics': { methods: ['GET', 'HEAD'] },
};
const OVERRIDE_METHODS = ['PUT', 'DELETE'] as const;

export class AdminServer {
  private readonly source: AdminSource;
  private readonly host: string;
  private readonly port: number;
  private readonly logger: Logger | undefined;
  private readonly token: TokenCheck | undefined;
  private readonly refusals: LogLimiter | undefined;
  /** The address bound (set by start()); Host headers are checked against it. */
  private boundHost = '';
  private readonly refreshMs: number;
  private readonly closeGraceMs: number;
  private server: http.Server | undefined;
  private closing: Promise<void> | undefined;

  constructor(source: AdminSource, opts: AdminOptions) {
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new Error(`admin listener: port must be an integer 0-65535, got ${String(opts.port)}`);
    }
    if (opts.token !== undefined && opts.token.length === 0) throw new Error('admin listener: empty token');
    if (opts.token === undefined && !isLoopbackHost(opts.host)) {
      throw new Error(
        `admin listener: refusing to listen on non-loopback address "${opts.host}" without a token: the admin API can change what rrdns answers; ` +
          'use 127.0.0.1 or ::1, or configure a token (--admin-token-file)',
      );
    }
    this.source = source;
    this.host = opts.host;
    this.port = opts.port;
    this.logger = opts.logger;
    this.token = opts.token === undefined ? undefined : new TokenCheck(opts.token);
    this.refusals = opts.logLimiter ?? (opts.logger ? new LogLimiter(opts.logger) : undefined);
    this.refreshMs = opts.refreshMs ?? 5000;
    this.closeGraceMs = opts.closeGraceMs ?? 5000;
  }

  /** Listens; resolves with the address bound (the real port when 0 was asked). */
  async start(): Promise<{ host: string; port: number }> {
    if (this.closing) throw new Error('admin listener: closed');
    if (this.server) throw new Error('admin listener: already started');
    const server = createServer({
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    });
    server.maxConnections = MAX_CONNECTIONS;
    server.maxHeadersCount = 64;
    server.on('request', (req, res) => void this.handle(req, res));
    // Malformed requests, oversized headers and timeouts: node:http answers 400/431/408 and closes.
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        server.off('listening', onListening);
        this.server = undefined;
        reject(err);
      };
      const onListening = () => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: this.host, port: this.port, exclusive: true });
    });
    server.on('error', (err) => this.logger?.error({ err }, 'admin listener error'));
    const addr = server.address() as net.AddressInfo;
    this.boundHost = addr.address;
    this.logger?.info({ host: addr.address, port: addr.port, token: this.token !== undefined }, 'admin listener started');
    return { host: addr.address, port: addr.port };
  }

  /**
   * Stops listening, lets requests in flight finish (cut after the grace
   * period) and closes idle keep-alive connections. Idempotent: every call
   * returns the same promise.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const server = this.server;
    if (!server) {
      this.closing = Promise.resolve();
      return this.closing;
    }
    this.closing = new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.closeAllConnections(), this.closeGraceMs);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        this.logger?.info('admin listener closed');
        resolve();
      });
      server.closeIdleConnections();
    });
    return this.closing;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (err) {
      if (err instanceof HttpError) {
        this.sendError(req, res, err);
      } else {
        this.logger?.error({ err, method: req.method, url: req.url }, 'admin request failed');
        this.sendError(req, res, new HttpError(500, 'internal_error', 'internal error'));
      }
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.closing) res.setHeader('connection', 'close');
    const method = req.method ?? '';
    const raw = req.url ?? '';
    if (!raw.startsWith('/')) throw new HttpError(400, 'bad_request', 'request target must be a path');
    const q = raw.indexOf('?');
    const path = q === -1 ? raw : raw.slice(0, q);
    if (path.length > MAX_PATH_CHARS) throw new HttpError(414, 'uri_too_long', `path longer than ${MAX_PATH_CHARS} characters`);

    // Before anything else, so a rebinding page learns nothing, not even which routes exist.
    const credential: Credential = this.token ? this.token.check(req.headers.authorization) : 'none';
    if (credential !== 'valid' && !hostAllowed(req.headers.host, this.boundHost)) {
      this.refused(req, 'bad_host');
      throw new HttpError(403, 'bad_host', `Host "${(req.headers.host ?? '').slice(0, 200)}" does not name this listener (${this.boundHost}); send Host: <listen address>, or the bearer token`);
    }

    const fixed = STATIC_ROUTES[path];
    const override = fixed ? null : OVERRIDE_PATH.exec(path);
    if (!fixed && !override) throw new HttpError(404, 'not_found', `no such route: ${path}`);
    const allowed: readonly string[] = fixed ? fixed.methods : OVERRIDE_METHODS;
    if (!allowed.includes(method)) {
      throw new HttpError(405, 'method_not_allowed', `${method} not allowed on ${path}; allowed: ${allowed.join(', ')}`, {
        allow: allowed.join(', '),
      });
    }
    // Routes without a body do not read one: a connection that sent one is not reused.
    if (!override && hasBody(req)) res.setHeader('connection', 'close');

    switch (path) {
      case '/healthz':
        return this.sendJson(res, 200, { status: 'ok' });
      case '/readyz': {
        // A failed reload leaves the previous zones serving, so the process stays ready;
        // the errors are reported here for whoever made the edit.
        const reload = this.source.reload?.();
        const brief = this.source.clusterBrief?.();
        const zoneErrors = {
          ...(reload && !reload.ok ? { zoneErrors: reload.errors, keptPrevious: reload.keptPrevious, reloadAt: reload.at } : {}),
          // etcd trouble does not make the instance unready: it answers from its own verdicts (shown here).
          ...(brief ? { cluster: brief } : {}),
        };
        return this.source.ready()
          ? this.sendJson(res, 200, { status: 'ready', ...zoneErrors })
          : this.sendJson(res, 503, { status: 'not_ready', code: 'not_ready', error: 'zones not loaded or first check round not done', ...zoneErrors });
      }
      case '/api/v1/health': {
        const info = this.source.info();
        return this.sendJson(res, 200, {
          ready: this.source.ready(),
          version: info.version,
          startedAt: info.startedAt,
          now: new Date().toISOString(),
          zones: info.zones,
          reload: this.source.reload?.() ?? null,
          ...(this.source.clusterBrief?.() ? { cluster: this.source.clusterBrief!() } : {}),
          pools: this.source.pools(),
        });
      }
      case '/api/v1/cluster':
        return this.sendJson(res, 200, this.source.cluster?.() ?? { enabled: false });
      case '/api/v1/pools/history':
        return this.sendJson(res, 200, this.source.history?.() ?? { intervalMs: 0, windowMs: 0, at: [], pools: [] });
      case '/api/v1/resolvers': {
        const resolvers = this.source.resolvers?.();
        if (!resolvers) throw new HttpError(404, 'not_found', `no such route: ${path}`);
        return this.sendJson(res, 200, resolvers);
      }
      case '/metrics': {
        const m = await this.source.metrics();
        return this.send(res, 200, m.contentType, m.body);
      }
      case '/':
        return this.sendPage(res);
    }
    if (this.token && credential !== 'valid') {
      this.refused(req, credential === 'none' ? 'unauthorized' : 'invalid_token');
      // RFC 6750 §3: no credentials gets the bare challenge; wrong ones say invalid_token. Both 401.
      throw credential === 'none'
        ? new HttpError(401, 'unauthorized', `${method} needs Authorization: Bearer <token> (the contents of --admin-token-file)`, { 'www-authenticate': 'Bearer realm="rrdns"' })
        : new HttpError(401, 'invalid_token', 'the bearer token is not valid', { 'www-authenticate': 'Bearer realm="rrdns", error="invalid_token"' });
    }
    return this.override(req, res, method, override![1]!, override![2]!);
  }

  /** Logs a refused request, rate-limited per reason and client address. */
  private refused(req: http.IncomingMessage, reason: 'bad_host' | 'unauthorized' | 'invalid_token'): void {
    const remote = req.socket.remoteAddress ?? '';
    this.refusals?.write('warn', 'admin-refused', `${reason}|${remote}`, { reason, remote, method: req.method, url: req.url?.slice(0, 200), host: req.headers.host?.slice(0, 200) }, 'admin request refused');
  }

  private async override(req: http.IncomingMessage, res: http.ServerResponse, method: string, rawName: string, rawAddress: string): Promise<void> {
    const name = decodeSegment(rawName, 'bad_name', 'pool name');
    const address = decodeSegment(rawAddress, 'bad_address', 'address');
    if (name.length === 0 || name.length > 255 || /[\s\u0000-\u001f\u007f/]/.test(name) || name.startsWith('.')) {
      throw new HttpError(400, 'bad_name', `"${name}" is not a domain name`);
    }
    const addr = addressKey(address);
    if (addr === undefined) throw new HttpError(400, 'bad_address', `"${address}" is not an IP address`);

    let value: OverrideValue | null = null;
    if (method === 'PUT') {
      value = parseOverrideBody(await readBody(req, res));
    } else if (hasBody(req)) {
      res.setHeader('connection', 'close');
    }

    let found: boolean;
    try {
      found = this.source.setOverride(name, addr, value);
    } catch (e) {
      // Not kept across a restart, so not applied: the operator is told, and can retry.
      if (e instanceof RrdnsError && e.code === ErrorCode.STATE_WRITE_FAILED) throw new HttpError(503, 'state_write_failed', `override not applied: ${e.message}`);
      throw e;
    }
    if (!found) {
      throw new HttpError(404, 'no_such_member', `no pool ${ownerKey(name)} has address ${addr}`);
    }
    this.logger?.info({ name: ownerKey(name), address: addr, override: value, remote: req.socket.remoteAddress }, value === null ? 'admin override cleared' : 'admin override set');

    const owner = ownerKey(name);
    for (const p of this.source.pools()) {
      if (ownerKey(p.name) !== owner) continue;
      const member = p.members.find((m) => addressKey(m.address) === addr);
      if (member) return this.sendJson(res, 200, { zone: p.zone, name: p.name, type: p.type, member });
    }
    // Set, but the snapshot does not show it (a reload in between): say what was done.
    return this.sendJson(res, 200, { name: owner, address: addr, override: value, member: null });
  }

  private sendPage(res: http.ServerResponse): void {
    const info = this.source.info();
    const nonce = randomBytes(16).toString('base64');
    const html = renderStatusPage({
      version: info.version,
      zones: info.zones,
      startedAt: info.startedAt,
      ready: this.source.ready(),
      pools: this.source.pools(),
      resolvers: this.source.resolvers?.(),
      now: new Date(),
      refreshMs: this.refreshMs,
      nonce,
      history: this.source.history?.(),
      cluster: this.source.clusterBrief?.(),
    });
    res.setHeader(
      'content-security-policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    res.setHeader('x-frame-options', 'DENY');
    this.send(res, 200, 'text/html; charset=utf-8', html);
  }

  private sendJson(res: http.ServerResponse, status: number, body: unknown): void {
    this.send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
  }

  private send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, { ...COMMON_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private sendError(req: http.IncomingMessage, res: http.ServerResponse, err: HttpError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    // An unread body (413, or an error before reading it) must not be parsed as the next request.
    if (!req.complete) res.setHeader('connection', 'close');
    this.sendJson(res, err.status, { code: err.code, error: err.message });
  }
}

function hasBody(req: http.IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

function decodeSegment(raw: string, code: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, code, `${what} is not valid URL encoding`);
  }
}

/** Reads at most MAX_BODY_BYTES; 413 beyond (checked against Content-Length first). */
function readBody(req: http.IncomingMessage, res: http.ServerResponse): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) {
    return Promise.reject(new HttpError(413, 'payload_too_large', `request body over ${MAX_BODY_BYTES} bytes`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) reject(err);
      else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.setHeader('connection', 'close');
        finish(new HttpError(413, 'payload_too_large', `request body over ${MAX_BODY_BYTES} bytes`));
        // Drain what is already on its way (the socket closes after the answer).
        req.resume();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined, Buffer.concat(chunks, size));
    const onError = (err: Error) => finish(err);
    const onClose = () => finish(new HttpError(400, 'bad_request', 'request body incomplete'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function parseOverrideBody(body: Buffer): OverrideValue | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_json', 'body is not JSON; expected {"override":"drain"|"force-up"|"force-down"|null}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.hasOwn(parsed, 'override')) {
    throw new HttpError(400, 'bad_override', 'expected {"override":"drain"|"force-up"|"force-down"|null}');
  }
  const extra = Object.keys(parsed).filter((k) => k !== 'override');
  if (extra.length > 0) throw new HttpError(400, 'bad_override', `unknown field(s): ${extra.join(', ')}`);
  const value = (parsed as { override: unknown }).override;
  if (value === null) return null;
  if (typeof value === 'string' && OVERRIDES.has(value)) return value as OverrideValue;
  throw new HttpError(400, 'bad_override', `override must be "drain", "force-up", "force-down" or null, got ${JSON.stringify(value)}`);
}
