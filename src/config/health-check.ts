/**
 * The health-check definition as written in zone files. Validated once, at zone
 * load, into a fully defaulted `CheckConfig` (durations in milliseconds), so the
 * checkers and the monitor never look at raw input.
 */
import net from 'node:net';
import { z } from 'zod';

export const DEFAULT_USER_AGENT = 'rrdns-health-check/0.1';
/** Hard cap on `body.maxBytes`: a check never buffers more than this. */
export const MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_INTERVAL_MS = 5000;
export const DEFAULT_TIMEOUT_MS = 2000;
export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 3_600_000;
export const MIN_TIMEOUT_MS = 10;
/** Bounded so one zone cannot start an unbounded redirect chase. */
export const MAX_REDIRECTS = 5;

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration: a number of seconds, or `500ms`, `5s`, `1m`, `1h`. Returns ms, or undefined when malformed. */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined;
    return Math.round(value * 1000);
  }
  const m = DURATION_RE.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

/**
 * A duration as written (validated, not converted: the object schema stays
 * re-parsable, so raw checks can be merged and validated again); `CheckSchema`
 * turns it into ms.
 */
const Duration = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  if (parseDuration(v) === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (seconds as a number, or e.g. 500ms, 5s, 1m)` });
  }
});

const ms = (v: number | string | undefined): number | undefined => (v === undefined ? undefined : parseDuration(v));

export interface StatusRange {
  lo: number;
  hi: number;
}

/** One `expectStatus` entry: 200, '200', '2xx', '200-399'. Undefined when malformed. */
export function parseStatusSpec(spec: number | string): StatusRange | undefined {
  const inRange = (n: number) => Number.isInteger(n) && n >= 100 && n <= 599;
  if (typeof spec === 'number') return inRange(spec) ? { lo: spec, hi: spec } : undefined;
  const s = spec.trim().toLowerCase();
  let m = /^([1-5])xx$/.exec(s);
  if (m) return { lo: Number(m[1]) * 100, hi: Number(m[1]) * 100 + 99 };
  m = /^(\d{3})$/.exec(s);
  if (m) return inRange(Number(m[1])) ? { lo: Number(m[1]), hi: Number(m[1]) } : undefined;
  m = /^(\d{3})-(\d{3})$/.exec(s);
  if (m) {
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    return inRange(lo) && inRange(hi) && lo <= hi ? { lo, hi } : undefined;
  }
  return undefined;
}

/** True when `status` is accepted by the (validated) `expectStatus` list. */
export function statusAccepted(status: number, expect: readonly (number | string)[]): boolean {
  for (const spec of expect) {
    const r = parseStatusSpec(spec);
    if (r && status >= r.lo && status <= r.hi) return true;
  }
  return false;
}

/** `expectStatus` as shown in outcome details: `200-399`, `200,204`. */
export function formatExpect(expect: readonly (number | string)[]): string {
  return expect.map(String).join(',');
}

const StatusSpec = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  if (!parseStatusSpec(v)) {
    ctx.addIssue({
      code: 'custom',
      message: `"${v}" is not a status: use a code (200), a class (2xx) or a range (200-399) within 100-599`,
    });
  }
});

// RFC 9110 token; values without CR, LF or NUL (undici would reject them at check time otherwise).
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RESERVED_HEADERS = new Map([
  ['host', 'set the Host header with `host`'],
  ['user-agent', 'set the User-Agent with `userAgent`'],
  ['connection', 'connection reuse is set with `keepAlive`'],
  ['keep-alive', 'connection reuse is set with `keepAlive`'],
  ['content-length', 'health checks send no body'],
  ['transfer-encoding', 'health checks send no body'],
  ['upgrade', 'health checks do not upgrade'],
  ['expect', 'health checks send no body'],
]);

const Headers = z.record(z.string(), z.string()).superRefine((h, ctx) => {
  for (const [name, value] of Object.entries(h)) {
    if (!HEADER_NAME.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is not a valid header name` });
      continue;
    }
    const reserved = RESERVED_HEADERS.get(name.toLowerCase());
    if (reserved) ctx.addIssue({ code: 'custom', path: [name], message: `header "${name}" is not allowed here: ${reserved}` });
    if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: 'custom', path: [name], message: 'header values cannot contain CR, LF or NUL' });
  }
});

const HOST_RE = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$|^[0-9A-Fa-f:.]+$/;

const TlsSchema = z
  .object({
    verify: z.boolean().optional(),
    /** Path to a PEM file with the CA certificate(s) to trust; read when the target is created. */
    ca: z.string().min(1).optional(),
  })
  .strict();

const BodySchema = z
  .object({
    match: z.string().min(1),
    regex: z.boolean().optional(),
    maxBytes: z.number().int().min(1).max(MAX_BODY_BYTES, `at most ${MAX_BODY_BYTES} (1 MiB)`).optional(),
  })
  .strict();

/**
 * The raw object schema: every field optional, no defaults, no conversions — its
 * output is valid input again, so raw checks can be validated per field, merged
 * (a pool's check under a member's) and then given to `CheckSchema`. Cross-field
 * rules (timeout < interval, fields per type) are only in `CheckSchema`.
 */
export const CheckObjectSchema = z
  .object({
    type: z.enum(['http', 'https', 'tcp', 'icmp']).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    path: z
      .string()
      .regex(/^\/[\x21-\x7e]*$/, 'path must start with "/" and contain only visible ASCII (percent-encode the rest)')
      .refine((p) => !p.includes('#'), 'path cannot contain a fragment (#)')
      .optional(),
    method: z.enum(['GET', 'HEAD']).optional(),
    host: z.string().min(1).max(260).regex(HOST_RE, 'host must be a host name or IP, optionally with :port').optional(),
    tls: TlsSchema.optional(),
    expectStatus: z.array(StatusSpec).min(1, 'expectStatus needs at least one entry').optional(),
    body: BodySchema.optional(),
    headers: Headers.optional(),
    userAgent: z
      .string()
      .min(1)
      .max(256)
      .refine((v) => !/[\r\n\0]/.test(v), 'userAgent cannot contain CR, LF or NUL')
      .optional(),
    followRedirects: z.number().int().min(0).max(MAX_REDIRECTS).optional(),
    /**
     * Reuse one HTTP connection between probes (default false: every probe opens
     * a new connection, so a check also proves the backend still accepts them).
     */
    keepAlive: z.boolean().optional(),
    interval: Duration.optional(),
    /**
     * HAProxy's fastinter: once a streak towards a change has begun (a failure
     * while up, a success while down), re-check at this interval until health
     * flips or the streak breaks. Absent: every check at `interval`.
     */
    fastInterval: Duration.optional(),
    timeout: Duration.optional(),
    fall: z.number().int().min(1).max(100).optional(),
    rise: z.number().int().min(1).max(100).optional(),
    /**
     * Where a passing check reads the backend's load (for balance.feedback):
     * a response header holding a number (`X-Load: 0.73`) or a dotted path to
     * a number in a JSON body (`load.cpu`).
     */
    load: z
      .union([
        z.object({ header: z.string().regex(HEADER_NAME, 'not a valid header name') }).strict(),
        z.object({ json: z.string().regex(/^[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*$/, 'a dotted path of keys, e.g. load or metrics.cpu') }).strict(),
      ])
      .optional(),
  })
  .strict();

type RawCheck = z.infer<typeof CheckObjectSchema>;

/** A validated check with every default applied; durations in ms. */
export interface CheckConfigShape {
  type: 'http' | 'https' | 'tcp' | 'icmp';
  /** 0 for icmp (an echo has no port). */
  port: number;
  path: string;
  method: 'GET' | 'HEAD';
  /** Host header (and TLS SNI) override; when absent the DNS record's name is used. */
  host?: string;
  tls: { verify: boolean; ca?: string };
  expectStatus: (number | string)[];
  body?: { match: string; regex: boolean; maxBytes: number };
  headers: Record<string, string>;
  userAgent: string;
  followRedirects: number;
  /** Probes reuse idle connections to the backend (http/https only). */
  keepAlive: boolean;
  interval: number;
  /** Re-check interval while health is settling (ms); absent: `interval` throughout. */
  fastInterval?: number;
  timeout: number;
  fall: number;
  rise: number;
  /** Where the load is read from a passing check's response (http/https only). */
  load?: { header: string } | { json: string };
}

const HTTP_ONLY = ['path', 'method', 'host', 'tls', 'expectStatus', 'body', 'headers', 'userAgent', 'followRedirects', 'keepAlive', 'load'] as const;

/**
 * The shortest icmp timeout: fping sends an echo every timeout/2 (health/icmp/fping-plan.ts) and
 * no faster than every 10 ms, so a probe always has an echo sent within its window.
 */
export const MIN_ICMP_TIMEOUT_MS = 20;

function refineCheck(c: RawCheck, ctx: z.RefinementCtx): void {
  const type = c.type ?? 'http';
  if (type === 'icmp') {
    // An echo request has no port, path or HTTP settings: a field set here would silently do nothing.
    for (const field of ['port', ...HTTP_ONLY] as const) {
      if (c[field] !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message:
            field === 'port'
              ? 'port does not apply to icmp checks (an echo request has no port; use type: tcp to check a port)'
              : `${field} applies to ${field === 'tls' ? 'https' : 'http/https'} checks only`,
        });
      }
    }
    const t = ms(c.timeout);
    if (t !== undefined && t >= MIN_TIMEOUT_MS && t < MIN_ICMP_TIMEOUT_MS) {
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: `an icmp timeout must be at least ${MIN_ICMP_TIMEOUT_MS}ms (an echo is sent every timeout/2, at least 10ms apart), got ${t}ms` });
    }
  }
  if (type === 'tcp') {
    if (c.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'port is required for tcp checks' });
    for (const field of HTTP_ONLY) {
      if (c[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: `${field} applies to http/https checks only` });
    }
  }
  if (type === 'http' && c.tls !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls applies to https checks only' });
  }
  if (c.body && c.method === 'HEAD') {
    ctx.addIssue({ code: 'custom', path: ['body'], message: 'a HEAD request has no body to match; use method GET' });
  }
  if (c.load && 'json' in c.load && c.method === 'HEAD') {
    ctx.addIssue({ code: 'custom', path: ['load', 'json'], message: 'a HEAD request has no body to read the load from; use method GET or load.header' });
  }
  if (c.body?.regex) {
    try {
      new RegExp(c.body.match);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['body', 'match'], message: `invalid regular expression: ${(e as Error).message}` });
    }
  } else if (c.body && Buffer.byteLength(c.body.match) > (c.body.maxBytes ?? 4096)) {
    ctx.addIssue({ code: 'custom', path: ['body', 'match'], message: 'match is longer than maxBytes and could never be found' });
  }
  const interval = ms(c.interval) ?? DEFAULT_INTERVAL_MS;
  if (c.interval !== undefined && (interval < MIN_INTERVAL_MS || interval > MAX_INTERVAL_MS)) {
    ctx.addIssue({ code: 'custom', path: ['interval'], message: `interval must be between ${MIN_INTERVAL_MS}ms and 1h, got ${interval}ms` });
  }
  const fast = ms(c.fastInterval);
  if (fast !== undefined && (fast < MIN_INTERVAL_MS || fast > interval)) {
    ctx.addIssue({
      code: 'custom',
      path: ['fastInterval'],
      message: `fastInterval must be between ${MIN_INTERVAL_MS}ms and interval (${interval}ms), got ${fast}ms`,
    });
  }
  const timeout = ms(c.timeout);
  if (timeout !== undefined) {
    if (timeout < MIN_TIMEOUT_MS) {
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: `timeout must be at least ${MIN_TIMEOUT_MS}ms, got ${timeout}ms` });
    } else if (timeout >= interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeout'],
        message: `timeout (${timeout}ms) must be shorter than interval (${interval}ms)`,
      });
    }
  }
}

function applyDefaults(c: RawCheck): CheckConfigShape {
  const type = c.type ?? 'http';
  const interval = ms(c.interval) ?? DEFAULT_INTERVAL_MS;
  const out: CheckConfigShape = {
    type,
    port: type === 'icmp' ? 0 : (c.port ?? (type === 'https' ? 443 : 80)),
    path: c.path ?? '/',
    method: c.method ?? 'GET',
    tls: { verify: c.tls?.verify ?? true },
    expectStatus: c.expectStatus ?? ['200-399'],
    headers: c.headers ?? {},
    userAgent: c.userAgent ?? DEFAULT_USER_AGENT,
    followRedirects: c.followRedirects ?? 0,
    keepAlive: c.keepAlive ?? false,
    interval,
    // Default 2s, but always shorter than the interval (half of it for intervals up to 4s).
    timeout: ms(c.timeout) ?? Math.min(DEFAULT_TIMEOUT_MS, Math.floor(interval / 2)),
    fall: c.fall ?? 3,
    rise: c.rise ?? 2,
  };
  if (c.fastInterval !== undefined) out.fastInterval = ms(c.fastInterval)!;
  if (c.host !== undefined) out.host = c.host;
  if (c.tls?.ca !== undefined) out.tls.ca = c.tls.ca;
  if (c.body) out.body = { match: c.body.match, regex: c.body.regex ?? false, maxBytes: c.body.maxBytes ?? 4096 };
  if (c.load) out.load = c.load;
  return out;
}

/**
 * A check definition: every field optional. Validates (strict: unknown keys are
 * errors; fields that do not apply to the check type are errors) and applies
 * the defaults. Output: `CheckConfig`.
 */
export const CheckSchema = CheckObjectSchema.superRefine(refineCheck).transform(applyDefaults);

export type CheckConfig = z.infer<typeof CheckSchema>;
export type CheckConfigInput = z.input<typeof CheckSchema>;

/** Canonical text of an IP literal; throws when `address` is not one. */
export function canonicalAddress(address: string): { address: string; family: 4 | 6 } {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = net.isIP(bare);
  if (family === 4) return { address: bare, family: 4 };
  if (family === 6) {
    // The URL parser compresses and lower-cases IPv6 (2001:DB8:0::1 → 2001:db8::1).
    return { address: new URL(`http://[${bare}]/`).hostname.slice(1, -1), family: 6 };
  }
  throw new Error(`"${address}" is not an IP address`);
}
