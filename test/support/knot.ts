/**
 * Knot DNS (knotd 3.x), the reference authoritative server, as a
 * non-daemon child on a free loopback port, with everything in a temp dir:
 *
 *   const knot = await startKnot('diff.test', masterFileText);
 *   const knot = await startKnot({ zones: [{ name: 'diff.test', file: 'test/fixtures/diff.test.zone' }] });
 *   await dig(knot.port, ['www.diff.test', 'A']);
 *   await knot.close();
 *
 * Config: listen 127.0.0.1@PORT (and ::1@PORT with ipv6), rundir and
 * storage in the temp dir, zone files copied in and loaded whole, never
 * written back (zonefile-sync: -1), no journal, no DNSSEC, log to stderr.
 * No `user:` setting, so knotd keeps the uid it was started with (works as
 * root and as a normal user). knotd validates its config at start-up and
 * exits non-zero with the reason on stderr, so no `knotc conf-check` is
 * needed; startKnot reports that stderr.
 */
import fs from 'node:fs';
import path from 'node:path';
import { toolPath } from './tools.ts';
import { freePort, removeDir, retryOnPortClash, startDaemonIn, tempDir, waitForDns, type ManagedProcess } from './spawn.ts';

export interface KnotZone {
  /** Zone name, with or without the trailing dot. */
  name: string;
  /** Master file to copy in... */
  file?: string;
  /** ...or its text. */
  text?: string;
}

export interface KnotOptions {
  zones: KnotZone[];
  /** Default: a freePort(). */
  port?: number;
  /** Also listen on [::1] on the same port (default false). */
  ipv6?: boolean;
  /** udp/tcp/background workers: a number (default 1, light for tests) or 'auto' (Knot's default: one per core; the bench uses this). */
  workers?: number | 'auto';
  /** NSID (EDNS option) Knot returns when asked (dig +nsid). */
  nsid?: string;
  /** knotd log level on stderr (default 'warning'). */
  logLevel?: 'critical' | 'error' | 'warning' | 'notice' | 'info' | 'debug';
}

export interface KnotServer {
  port: number;
  pid: number;
  /** The temp dir with knot.conf, the zone files and Knot's databases; removed by close(). */
  dir: string;
  proc: ManagedProcess;
  /** SIGTERM by PID (SIGKILL after a bound), then removes the temp dir. */
  close(): Promise<void>;
}

const bare = (name: string) => name.replace(/\.$/, '') || '.';

export function knotConfig(dir: string, port: number, opts: KnotOptions): string {
  const listen = [`127.0.0.1@${port}`, ...(opts.ipv6 ? [`::1@${port}`] : [])];
  const workers = opts.workers ?? 1;
  const workerLines = workers === 'auto' ? '' : `    udp-workers: ${workers}\n    tcp-workers: ${workers}\n    background-workers: ${workers}\n`;
  return `# Written by test/support/knot.ts
server:
    listen: [ ${listen.join(', ')} ]
    rundir: "${dir}"
${workerLines}${opts.nsid ? `    nsid: "${opts.nsid}"\n` : ''}
database:
    storage: "${dir}"

log:
  - target: stderr
    any: ${opts.logLevel ?? 'warning'}

template:
  - id: default
    storage: "${dir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    dnssec-signing: off
    semantic-checks: off

zone:
${opts.zones.map((z) => `  - domain: "${bare(z.name)}."\n    file: "${path.join(dir, `${bare(z.name)}.zone`)}"\n`).join('')}`;
}

export function startKnot(zone: string, masterFileText: string, opts?: Omit<KnotOptions, 'zones'>): Promise<KnotServer>;
export function startKnot(opts: KnotOptions): Promise<KnotServer>;
export async function startKnot(a: string | KnotOptions, text?: string, rest: Omit<KnotOptions, 'zones'> = {}): Promise<KnotServer> {
  const opts: KnotOptions = typeof a === 'string' ? { ...rest, zones: [{ name: a, text: text ?? '' }] } : a;
  if (opts.zones.length === 0) throw new Error('startKnot: no zones');
  const knotd = toolPath('knotd');
  if (!knotd) throw new Error("startKnot: 'knotd' not found (Debian package 'knot'); guard the suite with ensureTool('knotd', 'knot')");
  return retryOnPortClash(() => startOnce(knotd, opts), opts.port);
}


async function startOnce(knotd: string, opts: KnotOptions): Promise<KnotServer> {
  const dir = tempDir('knot');
  try {
    for (const z of opts.zones) {
      const target = path.join(dir, `${bare(z.name)}.zone`);
      if (z.file !== undefined) fs.copyFileSync(z.file, target);
      else if (z.text !== undefined) fs.writeFileSync(target, z.text);
      else throw new Error(`startKnot: zone ${z.name} needs file or text`);
    }
    const port = opts.port ?? (await freePort());
    const conf = path.join(dir, 'knot.conf');
    fs.writeFileSync(conf, knotConfig(dir, port, opts));
    const { proc, close } = await startDaemonIn(dir, 'knotd', knotd, ['-c', conf], async (proc) => {
      // Knot answers before its zones are loaded (SERVFAIL/REFUSED): wait for an authoritative SOA of every zone.
      for (const host of ['127.0.0.1', ...(opts.ipv6 ? ['::1'] : [])]) {
        for (const z of opts.zones) {
          await waitForDns(port, [`${bare(z.name)}.`, 'SOA'], { host, proc, accept: (r) => r.rcode === 'NOERROR' && r.flags.includes('aa') && r.answer.length > 0 });
        }
      }
    });
    return { port, pid: proc.pid, dir, proc, close };
  } catch (e) {
    removeDir(dir);
    throw e;
  }
}

export interface KnotSecondaryOptions {
  /** The zone to pull, with or without the trailing dot. */
  zone: string;
  /** Where the primary (rrdns) answers AXFR/IXFR: TCP on 127.0.0.1 unless `primaryHost` says otherwise. */
  primaryPort: number;
  primaryHost?: string;
  /** Called with Knot's port before knotd starts (and again with a new one after a port clash), e.g. to list it in the zone's `notify:`. */
  onPort?: (port: number) => Promise<void> | void;
  logLevel?: 'critical' | 'error' | 'warning' | 'notice' | 'info' | 'debug';
}

/**
 * Knot as a secondary: `remote` is the primary, the zone has `master:` and
 * accepts NOTIFY from the primary's address (`acl`), storage and journal in
 * the temp dir. Knot pulls (AXFR) as soon as it starts ("bootstrap"), then only
 * on NOTIFY or at the SOA refresh interval. Resolves once Knot answers the
 * zone's SOA with AA, i.e. after its first successful transfer.
 */
export function knotSecondaryConfig(dir: string, port: number, opts: KnotSecondaryOptions): string {
  const host = opts.primaryHost ?? '127.0.0.1';
  return `# Written by test/support/knot.ts (secondary)
server:
    listen: [ 127.0.0.1@${port} ]
    rundir: "${dir}"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "${dir}"

log:
  - target: stderr
    any: ${opts.logLevel ?? 'info'}

remote:
  - id: primary
    address: ${host}@${opts.primaryPort}

acl:
  - id: notify_from_primary
    address: ${host}
    action: notify

template:
  - id: default
    storage: "${dir}"
    zonefile-sync: -1
    journal-content: changes
    dnssec-signing: off
    semantic-checks: off

zone:
  - domain: "${bare(opts.zone)}."
    file: "${path.join(dir, `${bare(opts.zone)}.zone`)}"
    master: primary
    acl: notify_from_primary
`;
}

export async function startKnotSecondary(opts: KnotSecondaryOptions): Promise<KnotServer> {
  const knotd = toolPath('knotd');
  if (!knotd) throw new Error("startKnotSecondary: 'knotd' not found (Debian package 'knot'); guard the suite with ensureTool('knotd', 'knot')");
  return retryOnPortClash(async () => {
    const dir = tempDir('knot-secondary');
    try {
      const port = await freePort();
      await opts.onPort?.(port);
      const conf = path.join(dir, 'knot.conf');
      fs.writeFileSync(conf, knotSecondaryConfig(dir, port, opts));
      const { proc, close } = await startDaemonIn(dir, 'knotd (secondary)', knotd, ['-c', conf], async (proc) => {
        await waitForDns(port, [`${bare(opts.zone)}.`, 'SOA'], { proc, accept: (r) => r.rcode === 'NOERROR' && r.flags.includes('aa') && r.answer.length > 0 });
      });
      return { port, pid: proc.pid, dir, proc, close };
    } catch (e) {
      removeDir(dir);
      throw e;
    }
  }, undefined);
}
