/**
 * Unbound as a recursive resolver on a free 127.0.0.1 port, whose only
 * upstreams are stub zones pointing at loopback authoritative servers
 * (rrdns, Knot):
 *
 *   const unbound = await startUnbound('resolve.test', rrdns.port);
 *   await dig(unbound.port, ['+recurse', 'www.resolve.test', 'A']);
 *   await unbound.close();
 *
 * It never sends a packet off loopback, whatever the zones contain:
 *  - `do-not-query-address` lists every IPv4 block except 127.0.0.0/8, so
 *    glue such as `ns.sub A 192.0.2.99` below a stub zone, the built-in root
 *    hints, or an out-of-zone CNAME target is never queried (Unbound treats
 *    such servers as unusable and answers SERVFAIL);
 *  - `do-ip6: no`: no IPv6 at all (it listens on 127.0.0.1 only);
 *  - `local-zone: "." refuse` with each stub zone `transparent`: client
 *    questions outside the stub zones are REFUSED without any iteration
 *    (this also overrides Unbound's default `test.`/`invalid.` local zones
 *    for the stub zones);
 *  - `target-fetch-policy: "0 0 0 0 0"`, `prefetch: no`: no speculative
 *    lookups of NS targets;
 *  - `module-config: "iterator"`: no validator, so no trust anchor and no
 *    RFC 5011 probing.
 * `rrset-roundrobin: no`: Unbound (1.17+) otherwise re-rotates every RRset
 * by query ID, so clients would not see the order rrdns chose.
 * `do-not-query-localhost: no` is what lets it query the 127.0.0.1 stubs.
 * chroot "" and username "" keep it in the temp dir with the current uid;
 * remote control is off.
 */
import fs from 'node:fs';
import path from 'node:path';
import { toolPath } from './tools.ts';
import { freePort, removeDir, retryOnPortClash, startDaemonIn, tempDir, waitForDns, type ManagedProcess } from './spawn.ts';

export interface UnboundStub {
  /** Zone name, with or without the trailing dot. */
  zone: string;
  /** Port of the authoritative server for it. */
  port: number;
  /** Its address: must be in 127.0.0.0/8 (default 127.0.0.1). */
  host?: string;
}

export interface UnboundOptions {
  stubs: UnboundStub[];
  /** Default: a freePort(). */
  port?: number;
  /** Upper bound on cached TTLs (Unbound's default 86400); 0 = answers are not reused from cache. */
  cacheMaxTtl?: number;
  /** Default 1 (errors and operational notes on stderr); 4 logs every upstream query. */
  verbosity?: number;
  /** Extra lines for the `server:` clause, indented by the caller or not. */
  extraServerLines?: string[];
}

export interface UnboundServer {
  port: number;
  pid: number;
  /** Temp dir with unbound.conf and the pid file; removed by close(). */
  dir: string;
  proc: ManagedProcess;
  /** SIGTERM by PID (SIGKILL after a bound), then removes the temp dir. */
  close(): Promise<void>;
}

/** All of IPv4 except 127.0.0.0/8. */
export const NON_LOOPBACK_V4 = ['0.0.0.0/2', '64.0.0.0/3', '96.0.0.0/4', '112.0.0.0/5', '120.0.0.0/6', '124.0.0.0/7', '126.0.0.0/8', '128.0.0.0/1'];

const bare = (name: string) => name.replace(/\.$/, '');

export function unboundConfig(dir: string, port: number, opts: UnboundOptions): string {
  const lines = [
    '# Written by test/support/unbound.ts',
    'server:',
    `    interface: 127.0.0.1@${port}`,
    `    port: ${port}`,
    '    do-ip4: yes',
    '    do-ip6: no',
    '    do-udp: yes',
    '    do-tcp: yes',
    '    do-daemonize: no',
    '    chroot: ""',
    '    username: ""',
    `    directory: "${dir}"`,
    `    pidfile: "${path.join(dir, 'unbound.pid')}"`,
    '    use-syslog: no',
    '    logfile: ""',
    `    verbosity: ${opts.verbosity ?? 1}`,
    '    num-threads: 1',
    '    so-reuseport: no',
    '    outgoing-range: 64',
    '    num-queries-per-thread: 32',
    '    access-control: 127.0.0.0/8 allow',
    '    module-config: "iterator"',
    '    qname-minimisation: yes',
    '    qname-minimisation-strict: no',
    '    do-not-query-localhost: no',
    ...NON_LOOPBACK_V4.map((block) => `    do-not-query-address: ${block}`),
    '    target-fetch-policy: "0 0 0 0 0"',
    '    prefetch: no',
    // Unbound 1.17 rotates RRsets by query ID on its own by default: that would hide (or fake) rrdns's rotation.
    '    rrset-roundrobin: no',
    '    harden-referral-path: no',
    '    cache-min-ttl: 0',
    ...(opts.cacheMaxTtl !== undefined ? [`    cache-max-ttl: ${opts.cacheMaxTtl}`, `    cache-max-negative-ttl: ${opts.cacheMaxTtl}`] : []),
    '    local-zone: "." refuse',
    ...opts.stubs.map((s) => `    local-zone: "${bare(s.zone)}." transparent`),
    ...(opts.extraServerLines ?? []).map((l) => (l.startsWith(' ') ? l : `    ${l}`)),
    '',
    ...opts.stubs.flatMap((s) => ['stub-zone:', `    name: "${bare(s.zone)}."`, `    stub-addr: ${s.host ?? '127.0.0.1'}@${s.port}`, '    stub-prime: no', '    stub-first: no', '']),
    'remote-control:',
    '    control-enable: no',
    '',
  ];
  return lines.join('\n');
}

export function startUnbound(zone: string, authPort: number, opts?: Omit<UnboundOptions, 'stubs'>): Promise<UnboundServer>;
export function startUnbound(opts: UnboundOptions): Promise<UnboundServer>;
export async function startUnbound(a: string | UnboundOptions, authPort?: number, rest: Omit<UnboundOptions, 'stubs'> = {}): Promise<UnboundServer> {
  const opts: UnboundOptions = typeof a === 'string' ? { ...rest, stubs: [{ zone: a, port: authPort! }] } : a;
  if (opts.stubs.length === 0) throw new Error('startUnbound: no stub zones');
  for (const s of opts.stubs) {
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(s.host ?? '127.0.0.1')) throw new Error(`startUnbound: stub ${s.zone} at ${s.host}: only 127.0.0.0/8 is allowed`);
    if (!Number.isInteger(s.port) || s.port <= 0 || s.port > 65535) throw new Error(`startUnbound: stub ${s.zone}: bad port ${s.port}`);
  }
  const unbound = toolPath('unbound');
  if (!unbound) throw new Error("startUnbound: 'unbound' not found (Debian package 'unbound'); guard the suite with ensureTool('unbound', 'unbound')");
  return retryOnPortClash(() => startOnce(unbound, opts), opts.port);
}


async function startOnce(unbound: string, opts: UnboundOptions): Promise<UnboundServer> {
  const dir = tempDir('unbound');
  try {
    const port = opts.port ?? (await freePort());
    const conf = path.join(dir, 'unbound.conf');
    fs.writeFileSync(conf, unboundConfig(dir, port, opts));
    const { proc, close } = await startDaemonIn(dir, 'unbound', unbound, ['-d', '-c', conf], async (proc) => {
      // `localhost.` is one of Unbound's built-in local zones: answering it proves the
      // listener is up without sending anything upstream or filling the cache.
      await waitForDns(port, ['localhost.', 'A', '+recurse'], { proc });
    });
    return { port, pid: proc.pid, dir, proc, close };
  } catch (e) {
    removeDir(dir);
    throw e;
  }
}
