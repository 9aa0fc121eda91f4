#!/usr/bin/env node
/**
 * The command line: the only module that reads argv and the environment,
 * installs signal handlers or calls process.exit.
 *
 *   rrdns serve [options]   (every option also as an RRDNS_* environment variable; see SERVE_OPTIONS)
 *   rrdns check [DIR]
 *   rrdns help
 *
 * Flags win over the environment.
 */
import { parseArgs } from 'node:util';
import { formatIssue, RrdnsError, ZoneValidationError } from './errors.ts';
import { COOKIE_DEFAULTS, parseConfig, parseZoneLimits, RESOLVER_DEMAND_DEFAULTS, RRL_DEFAULTS, ZONE_LIMIT_DEFAULTS, type ZoneLimits } from './config/schema.ts';
import { loadNativeParser, loadZoneDir } from './zone/load.ts';
import { nameToText } from './zone/name.ts';
import { RrdnsServer } from './server/server.ts';
import { failoverEstimates } from './server/pool-policy.ts';
import { assertLocalAddress } from './health/source-address.ts';
import { PoolRegistry } from './server/pool-registry.ts';
import { flushLogs, setStdoutBufferBytes } from './observability/log.ts';

/**
 * Every `serve` setting: its flag, its environment variable and its help line.
 * The usage text is generated from this table, so --help names them all.
 */
interface ServeOption {
  flag: string;
  env: string;
  kind: 'string' | 'list' | 'boolean' | 'int' | 'int-or-auto';
  arg?: string;
  help: string;
  default: string;
  /** Where it lands in the server configuration, so a schema error can name the flag. */
  path: string;
}
const SERVE_OPTIONS: readonly ServeOption[] = [
  { flag: 'zones', env: 'RRDNS_ZONES', kind: 'string', arg: 'DIR', help: 'directory of zone files to serve', default: './zones' , path: 'zonesDir' },
  { flag: 'listen', env: 'RRDNS_LISTEN', kind: 'list', arg: 'HOST:PORT', help: 'UDP+TCP address, repeatable (env: comma-separated); IPv6 as [::1]:5353', default: '127.0.0.1:5353' , path: 'listen' },
  { flag: 'log-level', env: 'RRDNS_LOG_LEVEL', kind: 'string', arg: 'LEVEL', help: 'fatal|error|warn|info|debug|trace|silent (debug logs every query)', default: 'info' , path: 'logLevel' },
  { flag: 'log-buffer-bytes', env: 'RRDNS_LOG_BUFFER_BYTES', kind: 'int', arg: 'BYTES', help: 'log output waiting for a slow stdout; past it lines are dropped and counted, queries never wait', default: '1048576', path: 'logBufferBytes' },
  { flag: 'check-source-address', env: 'RRDNS_CHECK_SOURCE_ADDRESS', kind: 'string', arg: 'IP', help: 'local address HTTP(S)/TCP health checks connect from, for targets of its family (the other family: the default source)', default: 'the system\'s choice by route', path: 'checkSourceAddress' },
  { flag: 'identity', env: 'RRDNS_IDENTITY', kind: 'string', arg: 'TEXT', help: 'answer CHAOS TXT id.server/hostname.bind with TEXT', default: 'none: CHAOS is REFUSED' , path: 'identity' },
  { flag: 'admin', env: 'RRDNS_ADMIN', kind: 'string', arg: 'HOST:PORT|off', help: 'admin HTTP listener: /healthz /readyz /api/v1/health /metrics and the status page', default: '127.0.0.1:8053' , path: 'admin.listen' },
  { flag: 'admin-token-file', env: 'RRDNS_ADMIN_TOKEN_FILE', kind: 'string', arg: 'FILE', help: 'bearer token (file contents) that PUT/DELETE on the admin API require; needed to listen off loopback', default: 'none: mutating endpoints open on loopback only', path: 'admin.tokenFile' },
  { flag: 'admin-allow-remote', env: 'RRDNS_ADMIN_ALLOW_REMOTE', kind: 'boolean', help: 'accepted for compatibility, decides nothing: a non-loopback --admin address needs --admin-token-file', default: 'off' , path: 'admin.allowRemote' },
  { flag: 'state-dir', env: 'RRDNS_STATE_DIR', kind: 'string', arg: 'DIR|off', help: 'keeps API overrides and served SOA serials across restarts (off: memory only)', default: './state', path: 'stateDir' },
  { flag: 'cluster-etcd', env: 'RRDNS_CLUSTER_ETCD', kind: 'list', arg: 'URL[,URL...]', help: 'share health verdicts and overrides with other instances through these etcd endpoints (comma-separated or repeated; quorum per pool)', default: 'off: this instance decides alone', path: 'cluster.etcd' },
  { flag: 'cluster-name', env: 'RRDNS_CLUSTER_NAME', kind: 'string', arg: 'NAME', help: 'instances with the same name share one view (etcd keys under /rrdns/NAME/)', default: 'rrdns', path: 'cluster.name' },
  { flag: 'cluster-instance', env: 'RRDNS_CLUSTER_INSTANCE', kind: 'string', arg: 'ID', help: 'this instance\'s name in the cluster, unique among the live ones', default: 'HOSTNAME-HOST-PORT of the first --listen', path: 'cluster.instance' },
  { flag: 'cluster-lease-ttl', env: 'RRDNS_CLUSTER_LEASE_TTL', kind: 'int', arg: 'SECONDS', help: 'an instance that stops is gone for the others (and its checks move) after this', default: '10', path: 'cluster.leaseTtl' },
  { flag: 'cluster-timeout', env: 'RRDNS_CLUSTER_TIMEOUT', kind: 'int', arg: 'MS', help: 'deadline of each etcd request; slower counts as etcd trouble (answers go on from own verdicts)', default: '2000', path: 'cluster.timeoutMs' },
  { flag: 'cluster-etcd-ca', env: 'RRDNS_CLUSTER_ETCD_CA', kind: 'string', arg: 'FILE', help: 'CA certificate (PEM) the etcd servers\' certificates are checked against (https:// URLs)', default: 'system CAs', path: 'cluster.tls.ca' },
  { flag: 'cluster-etcd-cert', env: 'RRDNS_CLUSTER_ETCD_CERT', kind: 'string', arg: 'FILE', help: 'client certificate (PEM) for etcd, with --cluster-etcd-key', default: 'none', path: 'cluster.tls.cert' },
  { flag: 'cluster-etcd-key', env: 'RRDNS_CLUSTER_ETCD_KEY', kind: 'string', arg: 'FILE', help: 'client key (PEM) for etcd, with --cluster-etcd-cert', default: 'none', path: 'cluster.tls.key' },
  { flag: 'cluster-etcd-user', env: 'RRDNS_CLUSTER_ETCD_USER', kind: 'string', arg: 'USER', help: 'etcd user, with --cluster-etcd-password-file', default: 'none', path: 'cluster.user' },
  { flag: 'cluster-etcd-password-file', env: 'RRDNS_CLUSTER_ETCD_PASSWORD_FILE', kind: 'string', arg: 'FILE', help: 'file holding the etcd user\'s password (one line)', default: 'none', path: 'cluster.passwordFile' },
  { flag: 'watch', env: 'RRDNS_WATCH', kind: 'boolean', help: 'reload zones when files in the zones directory change (--no-watch: only on SIGHUP)', default: 'on' , path: 'watch.enabled' },
  { flag: 'watch-poll-ms', env: 'RRDNS_WATCH_POLL_MS', kind: 'int', arg: 'MS', help: 'how often the zones directory is polled for changes besides file events (with thousands of files the poll spaces itself: at most 2% of the time, and at least 1 ms a file between polls, 10 s for 10,000)', default: '2000' , path: 'watch.pollMs' },
  { flag: 'shutdown-grace-ms', env: 'RRDNS_SHUTDOWN_GRACE_MS', kind: 'int', arg: 'MS', help: 'on SIGTERM/SIGINT, how long TCP clients get to read their answers', default: '3000' , path: 'shutdownGraceMs' },
  { flag: 'udp-threads', env: 'RRDNS_UDP_THREADS', kind: 'int-or-auto', arg: 'auto|N', help: 'threads answering UDP on each address (SO_REUSEPORT); 0 = one per core; auto = 1 on up to 2 cores, else one per core', default: 'auto', path: 'udpThreads' },
  { flag: 'udp-io', env: 'RRDNS_UDP_IO', kind: 'string', arg: 'auto|native|dgram', help: 'how UDP is read and sent: native = batches of datagrams per system call (recvmmsg/sendmmsg, the addon npm ci builds), dgram = Node\'s per-datagram path; auto = native when the addon loads', default: 'auto', path: 'udpIo' },
  { flag: 'xfr-max-concurrent', env: 'RRDNS_XFR_MAX_CONCURRENT', kind: 'int', arg: 'N', help: 'zone transfers streaming at once (who may transfer is set per zone)', default: '8', path: 'transfer.maxConcurrent' },
  { flag: 'zone-max-records', env: 'RRDNS_ZONE_MAX_RECORDS', kind: 'int', arg: 'N', help: 'records one zone may hold; a zone with more is refused at load', default: String(ZONE_LIMIT_DEFAULTS.maxRecords), path: 'zoneLimits.maxRecords' },
  { flag: 'rrset-max-records', env: 'RRDNS_RRSET_MAX_RECORDS', kind: 'int', arg: 'N', help: 'records one RRset may hold (an RRset over 65,535 octets is refused anyway)', default: String(ZONE_LIMIT_DEFAULTS.maxRRsetRecords), path: 'zoneLimits.maxRRsetRecords' },
  { flag: 'answer-cache-bytes', env: 'RRDNS_ANSWER_CACHE_BYTES', kind: 'int', arg: 'BYTES', help: 'compiled answers kept per thread (least recently used go first); bounds memory whatever is asked', default: '33554432', path: 'answerCacheBytes' },
  { flag: 'tcp-max-connections', env: 'RRDNS_TCP_MAX_CONNECTIONS', kind: 'int', arg: 'N', help: 'concurrent TCP connections; more are closed at once', default: '512' , path: 'tcp.maxConnections' },
  { flag: 'tcp-idle-timeout-ms', env: 'RRDNS_TCP_IDLE_TIMEOUT_MS', kind: 'int', arg: 'MS', help: 'close a TCP connection idle (or dribbling one message) this long', default: '10000' , path: 'tcp.idleTimeoutMs' },
  { flag: 'tcp-max-pending', env: 'RRDNS_TCP_MAX_PENDING', kind: 'int', arg: 'N', help: 'answers queued to one TCP client before its reading is paused', default: '64' , path: 'tcp.maxPendingAnswers' },
  { flag: 'tcp-max-queued-bytes', env: 'RRDNS_TCP_MAX_QUEUED_BYTES', kind: 'int', arg: 'BYTES', help: 'bytes queued to one TCP client before its reading is paused', default: '262144' , path: 'tcp.maxQueuedBytes' },
  { flag: 'tcp-max-per-client', env: 'RRDNS_TCP_MAX_PER_CLIENT', kind: 'int', arg: 'N', help: 'concurrent TCP connections from one client address', default: '16', path: 'tcp.maxPerClient' },
  { flag: 'tcp-max-per-prefix', env: 'RRDNS_TCP_MAX_PER_PREFIX', kind: 'int', arg: 'N', help: 'concurrent TCP connections from one IPv6 /64', default: '64', path: 'tcp.maxPerPrefix' },
  { flag: 'rrl', env: 'RRDNS_RRL', kind: 'string', arg: 'on|off|log-only', help: 'response rate limiting of UDP answers per client prefix and response class', default: 'on', path: 'rrl.mode' },
  { flag: 'rrl-responses-per-second', env: 'RRDNS_RRL_RESPONSES_PER_SECOND', kind: 'int', arg: 'N', help: 'answers per second to one prefix for one name and type', default: String(RRL_DEFAULTS.responsesPerSecond), path: 'rrl.responsesPerSecond' },
  { flag: 'rrl-nodata-per-second', env: 'RRDNS_RRL_NODATA_PER_SECOND', kind: 'int', arg: 'N', help: 'NODATA answers per second to one prefix, per zone', default: String(RRL_DEFAULTS.nodataPerSecond), path: 'rrl.nodataPerSecond' },
  { flag: 'rrl-nxdomains-per-second', env: 'RRDNS_RRL_NXDOMAINS_PER_SECOND', kind: 'int', arg: 'N', help: 'NXDOMAIN answers per second to one prefix, per zone', default: String(RRL_DEFAULTS.nxdomainsPerSecond), path: 'rrl.nxdomainsPerSecond' },
  { flag: 'rrl-referrals-per-second', env: 'RRDNS_RRL_REFERRALS_PER_SECOND', kind: 'int', arg: 'N', help: 'referrals per second to one prefix, per delegation', default: String(RRL_DEFAULTS.referralsPerSecond), path: 'rrl.referralsPerSecond' },
  { flag: 'rrl-errors-per-second', env: 'RRDNS_RRL_ERRORS_PER_SECOND', kind: 'int', arg: 'N', help: 'error answers (REFUSED, FORMERR, NOTIMP, SERVFAIL, BADVERS) per second to one prefix', default: String(RRL_DEFAULTS.errorsPerSecond), path: 'rrl.errorsPerSecond' },
  { flag: 'rrl-window', env: 'RRDNS_RRL_WINDOW', kind: 'int', arg: 'SECONDS', help: 'seconds of debt a limited bucket can build up', default: String(RRL_DEFAULTS.window), path: 'rrl.window' },
  { flag: 'rrl-slip', env: 'RRDNS_RRL_SLIP', kind: 'int', arg: 'N', help: 'every N-th limited answer goes out truncated (TC=1) so real resolvers retry over TCP; 0 = drop all', default: String(RRL_DEFAULTS.slip), path: 'rrl.slip' },
  { flag: 'rrl-ipv4-prefix', env: 'RRDNS_RRL_IPV4_PREFIX', kind: 'int', arg: 'LEN', help: 'IPv4 clients are accounted per /LEN', default: String(RRL_DEFAULTS.ipv4Prefix), path: 'rrl.ipv4Prefix' },
  { flag: 'rrl-ipv6-prefix', env: 'RRDNS_RRL_IPV6_PREFIX', kind: 'int', arg: 'LEN', help: 'IPv6 clients are accounted per /LEN', default: String(RRL_DEFAULTS.ipv6Prefix), path: 'rrl.ipv6Prefix' },
  { flag: 'rrl-exempt', env: 'RRDNS_RRL_EXEMPT', kind: 'list', arg: 'CIDR', help: 'clients never rate-limited, repeatable (env: comma-separated)', default: 'none', path: 'rrl.exempt' },
  { flag: 'rrl-table-size', env: 'RRDNS_RRL_TABLE_SIZE', kind: 'int', arg: 'N', help: 'rate-limit buckets kept (fixed memory, shared by all UDP threads)', default: String(RRL_DEFAULTS.tableSize), path: 'rrl.tableSize' },
  { flag: 'resolver-table-size', env: 'RRDNS_RESOLVER_TABLE_SIZE', kind: 'int', arg: 'N', help: 'resolver prefixes whose demand is estimated, for balance.resolvers (fixed memory, shared by all UDP threads)', default: String(RESOLVER_DEMAND_DEFAULTS.tableSize), path: 'resolverDemand.tableSize' },
  { flag: 'resolver-ipv4-prefix', env: 'RRDNS_RESOLVER_IPV4_PREFIX', kind: 'int', arg: 'LEN', help: 'IPv4 sources are one resolver per /LEN (balance.resolvers)', default: String(RESOLVER_DEMAND_DEFAULTS.ipv4Prefix), path: 'resolverDemand.ipv4Prefix' },
  { flag: 'resolver-ipv6-prefix', env: 'RRDNS_RESOLVER_IPV6_PREFIX', kind: 'int', arg: 'LEN', help: 'IPv6 sources are one resolver per /LEN (balance.resolvers)', default: String(RESOLVER_DEMAND_DEFAULTS.ipv6Prefix), path: 'resolverDemand.ipv6Prefix' },
  { flag: 'cookies', env: 'RRDNS_COOKIES', kind: 'boolean', help: 'DNS cookies (RFC 7873/9018): answer client cookies with a server cookie; a valid one exempts from rate limiting', default: 'on', path: 'cookies.enabled' },
  { flag: 'cookie-secret-file', env: 'RRDNS_COOKIE_SECRET_FILE', kind: 'string', arg: 'FILE', help: 'shared cookie secret (hex, >= 16 bytes): instances with the same file accept each other\'s cookies', default: 'random per start', path: 'cookies.secretFile' },
  { flag: 'cookie-secret-lifetime', env: 'RRDNS_COOKIE_SECRET_LIFETIME', kind: 'int', arg: 'SECONDS', help: 'how long each derived cookie secret is used (the previous one stays valid)', default: String(COOKIE_DEFAULTS.secretLifetime), path: 'cookies.secretLifetime' },
  { flag: 'require-cookies', env: 'RRDNS_REQUIRE_COOKIES', kind: 'boolean', help: 'UDP queries without a valid server cookie get BADCOOKIE (or TC without any cookie)', default: 'off', path: 'cookies.require' },
];

/**
 * A schema error names the flag and variable it is about, not only its place
 * in the configuration; an entry of a list flag is named with its position
 * (`rrl.exempt.1:` → `--rrl-exempt / RRDNS_RRL_EXEMPT (entry 2):`).
 */
function nameFlags(message: string): string {
  return message.replace(/^  ([\w.]+?)(?:\.(\d+))?:/gm, (whole, where: string, index: string | undefined) => {
    const o = SERVE_OPTIONS.find((x) => x.path === where);
    if (!o) return whole;
    return `  --${o.flag} / ${o.env}${index === undefined ? '' : ` (entry ${Number(index) + 1})`}:`;
  });
}

function usage(): string {
  const rows = SERVE_OPTIONS.map((o) => {
    const left = `  --${o.flag}${o.arg ? ' ' + o.arg : ''}`;
    return `${left.padEnd(36)}${o.help}\n${' '.repeat(36)}env ${o.env}${o.kind === 'boolean' ? '=1|0' : ''}; default ${o.default}`;
  });
  return `usage:
  rrdns serve [options]     serve the zones (the default command)
  rrdns check [DIR]         validate the zones of DIR (default $RRDNS_ZONES or ./zones) and print
                            each pool's worst-case failover time; exit 0 if valid, 1 if not
                            (takes --zone-max-records and --rrset-max-records as serve does)
  rrdns help                this text

serve options (a flag wins over its environment variable):
${rows.join('\n')}

environment only: RRDNS_UDP_ADDON=FILE loads the UDP addon from FILE instead of
         native/build/Release/udp_batch.node (with --udp-io auto a file that does not load
         means node:dgram, and the start-up log says why); RRDNS_MEMORY_ADDON=FILE does the
         same for native/build/Release/memory.node (malloc_trim; without it freed C heap stays
         resident, and the start-up log says mallocTrim: false); RRDNS_NATIVE=off makes
         \`npm ci\` skip building both addons.

signals: SIGHUP reloads the zones (it also applies a zones directory emptied on purpose, which
         the watcher refuses: a directory suddenly empty looks like a failed mount); SIGTERM and
         SIGINT stop gracefully (exit 0).
`;
}

function fail(message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
}

/** How long exit paths wait for buffered log lines to reach a slow stdout. */
const LOG_FLUSH_MS = 2000;

/** Writes the log lines still buffered (bounded: a stalled stdout does not hold the exit), then fails. */
async function failAfterFlush(message: string, code = 1): Promise<never> {
  await flushLogs(LOG_FLUSH_MS);
  fail(message, code);
}

function check(dir: string, limits: ZoneLimits): never {
  let result;
  try {
    result = loadZoneDir(dir, { limits });
  } catch (e) {
    fail(`rrdns check: ${(e as Error).message}`);
  }
  if (result.issues.length > 0) {
    fail(`rrdns check: ${result.issues.length} error${result.issues.length === 1 ? '' : 's'} in ${dir}\n` + result.issues.map((i) => '  ' + formatIssue(i)).join('\n'));
  }
  try {
    // What start-up would refuse beyond the zone syntax: an unreadable tls.ca, icmp checks without fping.
    PoolRegistry.plan(result.zones);
  } catch (e) {
    fail(`rrdns check: ${(e as Error).message}`);
  }
  for (const z of result.zones) {
    process.stdout.write(`ok ${nameToText(z.origin)} (${z.source}): ${z.nodes.size} names, negative TTL ${z.negativeTtl}s\n`);
    for (const f of failoverEstimates(z)) {
      process.stdout.write(
        `  pool ${f.name} ${f.type}: ${f.primaries} primar${f.primaries === 1 ? 'y' : 'ies'}, ${f.standby}${f.standby > 0 && f.standbyMode === 'cold' ? ' cold' : ''} standby; ${f.check}\n` +
          `    worst case before clients stop getting a dead address: ${f.worstCaseMs / 1000}s = detection ${f.detectionMs / 1000}s (${f.fast ? 'interval + (fall - 1) x fastInterval' : 'interval x fall'} + timeout) + TTL ${f.ttl}s\n`,
      );
    }
  }
  process.stdout.write(`rrdns check: ${result.zones.length} zone${result.zones.length === 1 ? '' : 's'} valid\n`);
  process.exit(0);
}

type ServeValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** A setting from its flag, else its environment variable, else undefined (the schema's default). */
function setting(values: ServeValues, o: ServeOption): unknown {
  const flag = values[o.flag];
  const env = process.env[o.env];
  switch (o.kind) {
    case 'list':
      return flag ?? (env ? env.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
    case 'boolean':
      if (flag !== undefined) return flag;
      if (env === undefined || env === '') return undefined;
      if (/^(1|true|yes|on)$/i.test(env)) return true;
      if (/^(0|false|no|off)$/i.test(env)) return false;
      throw new Error(`${o.env}="${env}" is not one of 1, 0, true, false, yes, no, on, off`);
    case 'int':
    case 'int-or-auto': {
      const text = flag !== undefined ? String(flag) : env;
      if (text === undefined || text === '') return undefined;
      if (o.kind === 'int-or-auto' && text === 'auto') return 'auto';
      if (!/^\d{1,9}$/.test(text)) throw new Error(`${flag !== undefined ? '--' + o.flag : o.env}="${text}" is not ${o.kind === 'int-or-auto' ? 'auto or ' : ''}a whole number`);
      return Number(text);
    }
    default:
      return flag ?? (env === '' ? undefined : env);
  }
}

/** The cluster settings, or undefined when none is given (alone); any cluster flag without --cluster-etcd is an error the schema names. */
function clusterSettings(get: (flag: string) => unknown): object | undefined {
  const drop = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  const tls = drop({ ca: get('cluster-etcd-ca'), cert: get('cluster-etcd-cert'), key: get('cluster-etcd-key') });
  // One flag may list several endpoints (URL,URL) as the variable does; the flag may also repeat.
  const etcd = get('cluster-etcd') as string[] | undefined;
  const c = drop({
    etcd: etcd?.flatMap((u) => u.split(',')).map((u) => u.trim()).filter(Boolean),
    name: get('cluster-name'),
    instance: get('cluster-instance'),
    leaseTtl: get('cluster-lease-ttl'),
    timeoutMs: get('cluster-timeout'),
    tls: Object.keys(tls).length > 0 ? tls : undefined,
    user: get('cluster-etcd-user'),
    passwordFile: get('cluster-etcd-password-file'),
  });
  return Object.keys(c).length > 0 ? c : undefined;
}

async function serve(values: ServeValues): Promise<void> {
  const get = (flag: string) => setting(values, SERVE_OPTIONS.find((o) => o.flag === flag)!);
  const drop = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  let config;
  try {
    config = parseConfig(
      drop({
        zonesDir: get('zones') ?? 'zones',
        listen: get('listen') ?? ['127.0.0.1:5353'],
        logLevel: get('log-level'),
        logBufferBytes: get('log-buffer-bytes'),
        identity: get('identity'),
        checkSourceAddress: get('check-source-address'),
        admin: drop({ listen: get('admin'), allowRemote: get('admin-allow-remote'), tokenFile: get('admin-token-file') }),
        stateDir: get('state-dir'),
        cluster: clusterSettings(get),
        rrl: drop({
          mode: get('rrl'),
          responsesPerSecond: get('rrl-responses-per-second'),
          nodataPerSecond: get('rrl-nodata-per-second'),
          nxdomainsPerSecond: get('rrl-nxdomains-per-second'),
          referralsPerSecond: get('rrl-referrals-per-second'),
          errorsPerSecond: get('rrl-errors-per-second'),
          window: get('rrl-window'),
          slip: get('rrl-slip'),
          ipv4Prefix: get('rrl-ipv4-prefix'),
          ipv6Prefix: get('rrl-ipv6-prefix'),
          exempt: get('rrl-exempt'),
          tableSize: get('rrl-table-size'),
        }),
        resolverDemand: drop({ tableSize: get('resolver-table-size'), ipv4Prefix: get('resolver-ipv4-prefix'), ipv6Prefix: get('resolver-ipv6-prefix') }),
        cookies: drop({ enabled: get('cookies'), secretFile: get('cookie-secret-file'), secretLifetime: get('cookie-secret-lifetime'), require: get('require-cookies') }),
        watch: drop({ enabled: get('watch'), pollMs: get('watch-poll-ms') }),
        shutdownGraceMs: get('shutdown-grace-ms'),
        udpThreads: get('udp-threads'),
        udpIo: get('udp-io'),
        transfer: drop({ maxConcurrent: get('xfr-max-concurrent') }),
        answerCacheBytes: get('answer-cache-bytes'),
        zoneLimits: drop({ maxRecords: get('zone-max-records'), maxRRsetRecords: get('rrset-max-records') }),
        tcp: drop({
          maxConnections: get('tcp-max-connections'),
          idleTimeoutMs: get('tcp-idle-timeout-ms'),
          maxPendingAnswers: get('tcp-max-pending'),
          maxQueuedBytes: get('tcp-max-queued-bytes'),
          maxPerClient: get('tcp-max-per-client'),
          maxPerPrefix: get('tcp-max-per-prefix'),
        }),
      }),
    );
  } catch (e) {
    // Name the flag and variable a schema error is about, not only its place in the config.
    let message = (e as Error).message;
    message = nameFlags(message);
    fail(`rrdns: ${message}`, 2);
  }
  if (config.checkSourceAddress) {
    // An address this host does not have would fail every probe: every backend down, not a clear error.
    try {
      await assertLocalAddress(config.checkSourceAddress, '--check-source-address / RRDNS_CHECK_SOURCE_ADDRESS');
    } catch (e) {
      fail(`rrdns: ${(e as Error).message}`, 2);
    }
  }
  setStdoutBufferBytes(config.logBufferBytes);
  const server = new RrdnsServer(config);
  // Handlers go in before start(): a signal that arrives while zones load must not
  // take the default action (SIGHUP and SIGTERM would kill the process outright).
  let started = false;
  let stopping: string | undefined;
  let reloadAfterStart = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = signal;
    if (!started) return; // start() is still running; it stops right after
    // Bounded: a shutdown that hangs must not keep the port. TCP drains within shutdownGraceMs.
    setTimeout(() => process.exit(1), config.shutdownGraceMs + LOG_FLUSH_MS + 2000).unref();
    try {
      server.log.info({ signal }, 'shutting down');
    } catch {
      // Logging is best effort once stdout may be gone.
    }
    server.close().then(
      () => flushLogs(LOG_FLUSH_MS).then(() => process.exit(0)),
      () => flushLogs(LOG_FLUSH_MS).then(() => process.exit(1)),
    );
  };
  // A bug that escapes every guard still ends the process (its state is unknown), but the line saying why gets out first.
  const fatal = (err: unknown, what: string) => {
    try {
      server.log.fatal({ err }, what);
    } catch {
      // nothing more to do
    }
    void failAfterFlush(`rrdns: ${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  };
  process.on('uncaughtException', (err) => fatal(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => fatal(err, 'unhandled promise rejection'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (started) void server.reload('SIGHUP');
    else reloadAfterStart = true;
  });
  try {
    await server.start();
  } catch (e) {
    if (e instanceof ZoneValidationError) {
      server.log.fatal({ issues: e.issues.map(formatIssue) }, 'zones invalid; not serving');
      await failAfterFlush(`rrdns: ${e.message}`);
    }
    server.log.fatal({ err: e }, 'start failed');
    await failAfterFlush(`rrdns: ${e instanceof RrdnsError ? e.message : String(e)}`);
  }
  started = true;
  if (stopping) {
    const signal = stopping;
    stopping = undefined;
    stop(signal);
  } else if (reloadAfterStart) {
    void server.reload('SIGHUP');
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'check') {
    let limits: ZoneLimits;
    let dir: string;
    try {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { zones: { type: 'string' }, 'zone-max-records': { type: 'string' }, 'rrset-max-records': { type: 'string' } },
      });
      const get = (flag: string) => setting(values, SERVE_OPTIONS.find((o) => o.flag === flag)!);
      dir = positionals[0] ?? values.zones ?? process.env.RRDNS_ZONES ?? 'zones';
      limits = parseZoneLimits(
        Object.fromEntries(
          Object.entries({ maxRecords: get('zone-max-records'), maxRRsetRecords: get('rrset-max-records') }).filter(([, v]) => v !== undefined),
        ),
      );
    } catch (e) {
      let message = (e as Error).message;
      message = nameFlags(message);
      fail(`rrdns check: ${message}`, 2);
    }
    await loadNativeParser();
    check(dir, limits);
  }
  if (command === 'help' || command === '-h' || command === '--help' || (command === 'serve' && (rest.includes('--help') || rest.includes('-h')))) {
    process.stdout.write(usage());
    process.exit(0);
  }
  if (command === 'serve' || command === undefined || command.startsWith('--')) {
    let parsed;
    try {
      parsed = parseArgs({
        args: command === 'serve' ? rest : argv,
        allowNegative: true,
        options: Object.fromEntries(
          SERVE_OPTIONS.map((o) => [o.flag, o.kind === 'list' ? { type: 'string', multiple: true } : { type: o.kind === 'boolean' ? 'boolean' : 'string' }] as const),
        ),
      });
    } catch (e) {
      fail(`rrdns: ${(e as Error).message}\n${usage()}`, 2);
    }
    await serve(parsed.values);
    return;
  }
  fail(`rrdns: unknown command "${command}"\n${usage()}`, 2);
}

await main(process.argv.slice(2));
