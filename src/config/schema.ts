/**
 * Server configuration: validated once at the edge (main.ts builds the raw
 * object from flags and environment), then frozen. Types come from the schema.
 */
import net from 'node:net';
import os from 'node:os';
import { z } from 'zod';
import { ErrorCode, RrdnsError } from '../errors.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** `HOST:PORT`, with IPv6 hosts in brackets: `127.0.0.1:5353`, `[::1]:5353`. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) throw new Error(`"${text}" is not HOST:PORT (write IPv6 as [::1]:5353)`);
  const host = m[1]!;
  const port = Number(m[2]);
  if (!net.isIP(host)) throw new Error(`"${host}" in "${text}" is not an IP address`);
  if (port > 65535) throw new Error(`port ${port} in "${text}" is out of range`);
  return { host, port };
}

const Listen = z.string().transform((s, ctx) => {
  try {
    return parseListen(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** Loopback hosts: the admin API is reachable from elsewhere only when asked for. True for 127.0.0.0/8, ::1, IPv4-mapped loopback and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost' || h === 'localhost.') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    const canonical = new URL(`http://[${h}]/`).hostname.slice(1, -1);
    if (canonical === '::1') return true;
    // IPv4-mapped: the URL parser writes ::ffff:127.0.0.1 as ::ffff:7f00:1.
    const mapped = /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.exec(canonical);
    return mapped !== null;
  }
  return false;
}


/**
 * Bounds on what one zone may hold, checked at load (src/zone/zone.ts) so that
 * neither memory nor the work per query can be driven up by a zone file.
 *
 * - maxRecords: records in one zone (after parsing, before duplicates are
 *   dropped). 1,000,000 loads in about a second and a few hundred MB.
 * - maxRRsetRecords: records in one RRset. Independently of it, an RRset that
 *   cannot fit one 65,535-octet message is always refused, which already caps
 *   a set at about 4,700 records (14 octets per distinct record at best); the
 *   default 4,096 is still above the most A records that fit (about 4,090), so
 *   by default it never refuses an A RRset that can be answered, and it is
 *   checked while records are grouped, so a file holding a million records at
 *   one name is refused without building that set. Lower it to bound the
 *   bytes each answer copies (every answer carries the whole RRset).
 */
export const ZONE_LIMIT_DEFAULTS = Object.freeze({ maxRecords: 1_000_000, maxRRsetRecords: 4096 });
export type ZoneLimits = { readonly maxRecords: number; readonly maxRRsetRecords: number };

const ZoneLimitsSchema = z
  .object({
    maxRecords: z.number().int().min(1).max(100_000_000).default(ZONE_LIMIT_DEFAULTS.maxRecords),
    maxRRsetRecords: z.number().int().min(1).max(65_535).default(ZONE_LIMIT_DEFAULTS.maxRRsetRecords),
  })
  .strict();

const Admin = z
  .object({
    /** `HOST:PORT`, or 'off'. */
    listen: z.union([z.literal('off'), Listen]).default({ host: '127.0.0.1', port: 8053 }),
    allowRemote: z.boolean().default(false),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.listen !== 'off' && !isLoopbackHost(a.listen.host) && !a.allowRemote) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: `admin API on ${a.listen.host} would be reachable off this host; pass --admin-allow-remote (RRDNS_ADMIN_ALLOW_REMOTE=1) if that is intended`,
      });
    }
  });

export const ServerConfigSchema = z
  .object({
    zonesDir: z.string().min(1),
    listen: z.array(Listen).min(1, 'at least one listen address is needed'),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /** Log bytes that may wait for a slow stdout; past that, lines are dropped and counted (never blocking queries). */
    logBufferBytes: z.number().int().min(4096).max(1024 * 1024 * 1024).default(1024 * 1024),
    /** Bytes of compiled answers each thread keeps (one LRU shared by its zones); past it the least recently used go. */
    answerCacheBytes: z.number().int().min(64 * 1024).max(16 * 1024 * 1024 * 1024).default(32 * 1024 * 1024),
    /** The admin HTTP listener (health state, overrides, metrics, status page). */
    admin: Admin.default({ listen: { host: '127.0.0.1', port: 8053 }, allowRemote: false }),
    /** Answers CHAOS TXT id.server / hostname.bind when set; otherwise CHAOS is REFUSED. */
    identity: z.string().min(1).max(255).optional(),
    /**
     * Zone reload without a signal: the directory is watched (inotify via
     * fs.watch) and also polled, because bind mounts, NFS and Kubernetes
     * ConfigMaps do not always deliver file events.
     */
    watch: z
      .object({
        enabled: z.boolean().default(true),
        /** How often the directory's fingerprint (names, sizes, mtimes) is compared, ms. */
        pollMs: z.number().int().min(100).max(3_600_000).default(2000),
        /** Quiet time after a change before reloading, so a save in several writes is read once. */
        debounceMs: z.number().int().min(0).max(60_000).default(300),
      })
      .strict()
      .default({ enabled: true, pollMs: 2000, debounceMs: 300 }),
    /** Per-zone and per-RRset record limits (see ZONE_LIMIT_DEFAULTS). */
    zoneLimits: ZoneLimitsSchema.default({ ...ZONE_LIMIT_DEFAULTS }),
    /** Outgoing zone transfers (who may pull is per zone, in the zone file). */
    transfer: z
      .object({
        /** Transfers streaming at once; more get SERVFAIL, which secondaries retry. */
        maxConcurrent: z.number().int().min(1).max(1000).default(8),
      })
      .strict()
      .default({ maxConcurrent: 8 }),
    /**
     * Threads answering UDP on each listen address (SO_REUSEPORT): the main
     * thread plus udpThreads-1 workers. One Node thread is bound by its
     * per-datagram system calls; more use more cores.
     */
    udpThreads: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(1)
      // 0: one per core, as Knot's `workers: auto`.
      .transform((n) => (n === 0 ? Math.min(64, os.availableParallelism()) : n)),
    /** Bound on a graceful stop: TCP connections still draining after it are cut. */
    shutdownGraceMs: z.number().int().min(0).max(60_000).default(3000),
    tcp: z
      .object({
        maxConnections: z.number().int().min(1).max(100_000).default(512),
        idleTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        maxPendingAnswers: z.number().int().min(1).max(10_000).default(64),
        maxQueuedBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(256 * 1024),
      })
      .strict()
      .default({ maxConnections: 512, idleTimeoutMs: 10_000, maxPendingAnswers: 64, maxQueuedBytes: 256 * 1024 }),
  })
  .strict();

export type ServerConfig = Readonly<z.infer<typeof ServerConfigSchema>>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Validates zone limits alone (for `rrdns check`, which has no server configuration). */
export function parseZoneLimits(input: unknown): ZoneLimits {
  const result = ZoneLimitsSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  zoneLimits.${i.path.join('.')}: ${i.message}`);
    throw new RrdnsError(ErrorCode.CONFIG_INVALID, `invalid configuration:\n${lines.join('\n')}`);
  }
  return Object.freeze(result.data);
}

/** Validates raw configuration; throws RrdnsError(CONFIG_INVALID) listing every problem. */
export function parseConfig(input: unknown): ServerConfig {
  const result = ServerConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new RrdnsError(ErrorCode.CONFIG_INVALID, `invalid configuration:\n${lines.join('\n')}`);
  }
  return deepFreeze(result.data);
}
