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
    /**
     * Kept so existing deployments still start; it no longer decides anything.
     * The token is what permits a non-loopback listen address (with one,
     * this is not needed; without one, it does not help).
     */
    allowRemote: z.boolean().default(false),
    /** File holding the bearer token the mutating endpoints require; needed to listen off loopback. */
    tokenFile: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    // Off loopback, anyone who can reach the port could change what DNS answers: a token is required.
    if (a.listen !== 'off' && !isLoopbackHost(a.listen.host) && a.tokenFile === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message:
          `admin API on ${a.listen.host} would be reachable off this host, and it can change what rrdns answers: ` +
          'a token is required there; put one in a file and pass --admin-token-file FILE (RRDNS_ADMIN_TOKEN_FILE=FILE)' +
          (a.allowRemote ? ' (--admin-allow-remote alone no longer suffices)' : ''),
      });
    }
  });

/** `ADDRESS/LEN` (or a bare address: a host). Returns the canonical form, e.g. `192.0.2.0/24`. */
export function parseCidr(text: string): { family: 4 | 6; address: string; prefix: number } {
  const slash = text.indexOf('/');
  const address = (slash === -1 ? text : text.slice(0, slash)).trim();
  const family = net.isIP(address);
  if (family === 0) throw new Error(`"${text}" is not an address or ADDRESS/PREFIX (CIDR)`);
  const max = family === 4 ? 32 : 128;
  const lenText = slash === -1 ? String(max) : text.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) throw new Error(`prefix length in "${text}" must be 0-${max}`);
  return { family: family as 4 | 6, address, prefix: Number(lenText) };
}

const Cidr = z.string().transform((s, ctx) => {
  try {
    return parseCidr(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/**
 * Response rate limiting (BIND `rate-limit`, Knot `mod-rrl`): UDP responses
 * per client prefix and response class, over a token bucket. See src/rrl/.
 */
export const RRL_DEFAULTS = Object.freeze({
  mode: 'on' as 'on' | 'off' | 'log-only',
  responsesPerSecond: 100,
  nodataPerSecond: 100,
  nxdomainsPerSecond: 100,
  referralsPerSecond: 100,
  errorsPerSecond: 50,
  window: 15,
  slip: 2,
  ipv4Prefix: 24,
  ipv6Prefix: 56,
  tableSize: 131_072,
});
const PerSecond = z.number().int().min(1).max(1_000_000);
const Rrl = z
  .object({
    /** on: drop/slip over the limit; log-only: count and log what would be dropped, send everything; off. */
    mode: z.enum(['on', 'off', 'log-only']).default(RRL_DEFAULTS.mode),
    responsesPerSecond: PerSecond.default(RRL_DEFAULTS.responsesPerSecond),
    nodataPerSecond: PerSecond.default(RRL_DEFAULTS.nodataPerSecond),
    nxdomainsPerSecond: PerSecond.default(RRL_DEFAULTS.nxdomainsPerSecond),
    referralsPerSecond: PerSecond.default(RRL_DEFAULTS.referralsPerSecond),
    errorsPerSecond: PerSecond.default(RRL_DEFAULTS.errorsPerSecond),
    /** Seconds of debt a bucket can build up (BIND `window`): a flood must stop this long before answers resume in full. */
    window: z.number().int().min(1).max(3600).default(RRL_DEFAULTS.window),
    /** Every slip-th limited response goes out truncated (TC=1, no records); 0: never, 1: all. */
    slip: z.number().int().min(0).max(10).default(RRL_DEFAULTS.slip),
    ipv4Prefix: z.number().int().min(8).max(32).default(RRL_DEFAULTS.ipv4Prefix),
    ipv6Prefix: z.number().int().min(16).max(128).default(RRL_DEFAULTS.ipv6Prefix),
    /** Clients never limited. */
    exempt: z.array(Cidr).max(1000).default([]),
    /** Buckets in the fixed-size table (shared by every UDP thread); rounded up to a power of two. */
    tableSize: z.number().int().min(1024).max(16 * 1024 * 1024).default(RRL_DEFAULTS.tableSize),
  })
  .strict();

/**
 * Resolver demand estimation, for pools with balance.resolvers (src/balancing/demand.ts):
 * a bounded table of source prefixes shared by every UDP thread.
 */
export const RESOLVER_DEMAND_DEFAULTS = Object.freeze({ tableSize: 4096, ipv4Prefix: 24, ipv6Prefix: 56 });
const ResolverDemand = z
  .object({
    /** Resolver prefixes tracked at most (rounded up to a power of two); the heaviest stay, the rest replace each other. */
    tableSize: z.number().int().min(64).max(1024 * 1024).default(RESOLVER_DEMAND_DEFAULTS.tableSize),
    /** Sources are grouped into resolvers by these prefix lengths (a resolver farm usually sits in one /24). */
    ipv4Prefix: z.number().int().min(8).max(32).default(RESOLVER_DEMAND_DEFAULTS.ipv4Prefix),
    ipv6Prefix: z.number().int().min(16).max(128).default(RESOLVER_DEMAND_DEFAULTS.ipv6Prefix),
  })
  .strict();

/** DNS cookies (RFC 7873, server cookie of RFC 9018). See src/cookies/. */
export const COOKIE_DEFAULTS = Object.freeze({ enabled: true, secretLifetime: 26 * 3600, require: false });
const Cookies = z
  .object({
    enabled: z.boolean().default(COOKIE_DEFAULTS.enabled),
    /** File holding the shared secret (hex); instances with the same file accept each other's cookies. */
    secretFile: z.string().min(1).optional(),
    /** Seconds each derived secret is used before the next takes over (the previous stays valid). */
    secretLifetime: z.number().int().min(3600).max(365 * 86400).default(COOKIE_DEFAULTS.secretLifetime),
    /** Answer UDP queries without a valid server cookie with BADCOOKIE (with a client cookie) or TC (without). */
    require: z.boolean().default(COOKIE_DEFAULTS.require),
  })
  .strict();

/** An etcd client URL: http:// or https://, a host and a port. */
const EtcdUrl = z.string().refine((u) => {
  try {
    const url = new URL(u);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.pathname === '/' && !url.search && !url.username;
  } catch {
    return false;
  }
}, 'must be an etcd client URL such as http://127.0.0.1:2379 (http or https, host and port, no path)');

/**
 * Several instances sharing health verdicts and overrides through etcd
 * (src/cluster/). Absent: the instance works alone and loads nothing of it.
 */
const Cluster = z
  .object({
    etcd: z.array(EtcdUrl, { error: 'the --cluster-* options need --cluster-etcd URL[,URL...]' }).min(1, 'at least one etcd URL is needed'),
    /** Key prefix /rrdns/<name>/: instances with the same name share one view. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -').default('rrdns'),
    /** Unique among the live instances; default from the hostname and the first listen address (src/cluster/identity.ts). */
    instance: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ -').optional(),
    /** Seconds the instance's lease lives without a keepalive: how fast the others see it gone. */
    leaseTtl: z.number().int().min(2).max(300).default(10),
    /** Deadline of each etcd request (ms); past it etcd counts as slow and the instance goes degraded. */
    timeoutMs: z.number().int().min(100).max(60_000).default(2000),
    tls: z
      .object({ ca: z.string().min(1).optional(), cert: z.string().min(1).optional(), key: z.string().min(1).optional() })
      .strict()
      .refine((t) => (t.cert === undefined) === (t.key === undefined), 'a client certificate needs both --cluster-etcd-cert and --cluster-etcd-key')
      .optional(),
    user: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((c) => (c.user === undefined) === (c.passwordFile === undefined), 'etcd authentication needs both --cluster-etcd-user and --cluster-etcd-password-file');

export type ClusterConfig = z.infer<typeof Cluster>;

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
    /** Where overrides and served serials are kept across restarts; 'off' keeps them in memory only. */
    stateDir: z.union([z.literal('off'), z.string().min(1)]).default('state'),
    rrl: Rrl.default({ ...RRL_DEFAULTS, exempt: [] }),
    cookies: Cookies.default({ ...COOKIE_DEFAULTS }),
    resolverDemand: ResolverDemand.default({ ...RESOLVER_DEMAND_DEFAULTS }),
    /** Shared verdicts and overrides through etcd; absent: alone (src/cluster/). */
    cluster: Cluster.optional(),
    /** Answers CHAOS TXT id.server / hostname.bind when set; otherwise CHAOS is REFUSED. */
    identity: z.string().min(1).max(255).optional(),
    /**
     * The local address HTTP(S)/TCP health checks connect from, for targets of
     * its family (the other family keeps the default source). Whether the host
     * has it is checked at start (src/health/source-address.ts).
     */
    checkSourceAddress: z
      .string()
      .refine((s) => net.isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address (no port, no name)' })
      .optional(),
    /**
     * Zone reload without a signal: the directory is watched (inotify via
     * fs.watch) and also polled, because bind mounts, NFS and Kubernetes
     * ConfigMaps do not always deliver file events.
     */
    watch: z
      .object({
        enabled: z.boolean().default(true),
        /** How often every entry's stamp (size, mtime, inode) is compared, ms (spaced further for large directories: POLL_BUDGET). */
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
     * thread plus udpThreads-1 workers. `auto` (the default) decides from the
     * machine, 0 is one per core, a number is that many: see
     * src/server/udp-thread-count.ts for the rule and the measurements behind it.
     */
    udpThreads: z.union([z.literal('auto'), z.number().int().min(0).max(64)]).default('auto'),
    /**
     * How UDP is read and sent (src/wire/udp.ts): `native`, batches through
     * the addon `npm ci` builds (recvmmsg/sendmmsg); `dgram`, node:dgram's
     * per-datagram path; `auto`, native when the addon loads (RRDNS_UDP_IO
     * in the environment decides for `auto`, so a test run can switch every
     * server it starts).
     */
    udpIo: z.enum(['auto', 'native', 'dgram']).default('auto'),
    /** Bound on a graceful stop: TCP connections still draining after it are cut. */
    shutdownGraceMs: z.number().int().min(0).max(60_000).default(3000),
    tcp: z
      .object({
        maxConnections: z.number().int().min(1).max(100_000).default(512),
        idleTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        maxPendingAnswers: z.number().int().min(1).max(10_000).default(64),
        maxQueuedBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(256 * 1024),
        /** Concurrent connections from one client address. */
        maxPerClient: z.number().int().min(1).max(100_000).default(16),
        /** Concurrent connections from one IPv6 /64 (one host often holds a whole /64). */
        maxPerPrefix: z.number().int().min(1).max(100_000).default(64),
      })
      .strict()
      .default({ maxConnections: 512, idleTimeoutMs: 10_000, maxPendingAnswers: 64, maxQueuedBytes: 256 * 1024, maxPerClient: 16, maxPerPrefix: 64 }),
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
