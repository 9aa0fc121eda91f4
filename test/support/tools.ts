/**
 * External tools the tests drive (dig, unbound, knotd, dnsperf). When one is
 * missing and we are root with apt-get, its Debian package is installed (one
 * `apt-get update` per process); otherwise its suites are skipped with a
 * notice naming the package.
 *
 *   describe.skipIf(!ensureTool('knotd', 'knot'))('…', () => { … })
 *
 * The vitest globalSetup (global-setup.ts) calls ensureTool for every tool
 * up front and sets RRDNS_TOOLS_CHECKED, so test workers (forked after it)
 * never run apt themselves, and never inside a test or hook timeout.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Set by the globalSetup once apt has had its chance; workers inherit it. */
export const CHECKED_ENV = 'RRDNS_TOOLS_CHECKED';

export const TOOLS = [
  { binary: 'dig', pkg: 'bind9-dnsutils' },
  { binary: 'unbound', pkg: 'unbound' },
  { binary: 'knotd', pkg: 'knot' },
  { binary: 'dnsperf', pkg: 'dnsperf' },
] as const;

/** Daemons live in /usr/sbin, which a non-root PATH often lacks. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Absolute path of an executable `binary` on PATH or in the usual system dirs; undefined if none. */
export function toolPath(binary: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).concat(EXTRA_DIRS);
  for (const dir of dirs) {
    if (!dir) continue;
    const p = path.join(dir, binary);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Like toolPath, but throws a readable error (for code that already checked with ensureTool). */
export function requireTool(binary: string): string {
  const p = toolPath(binary);
  if (!p) throw new Error(`'${binary}' not found on PATH or in /usr/sbin, /usr/bin`);
  return p;
}

let aptUpdated = false;
const verdicts = new Map<string, boolean>();

function canApt(): boolean {
  return process.getuid?.() === 0 && toolPath('apt-get') !== undefined && !process.env[CHECKED_ENV];
}

function apt(args: string[]): boolean {
  const r = spawnSync(toolPath('apt-get')!, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 600_000,
  });
  if (r.status !== 0) {
    const why = r.error?.message ?? (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    console.warn(`[rrdns tests] apt-get ${args.join(' ')} failed: ${why}`);
    return false;
  }
  return true;
}

/**
 * True when `binary` is available. If it is missing and we are root with
 * apt-get (and the globalSetup has not already tried), installs
 * `debianPackage` and checks again. Otherwise prints a notice once and
 * returns false. Results are cached per process.
 */
export function ensureTool(binary: string, debianPackage: string): boolean {
  const known = verdicts.get(binary);
  if (known !== undefined) return known;
  let found = toolPath(binary) !== undefined;
  if (!found && canApt()) {
    console.warn(`[rrdns tests] '${binary}' not found: installing Debian package '${debianPackage}' with apt-get`);
    if (!aptUpdated) aptUpdated = apt(['update', '-qq']);
    apt(['install', '-y', '-qq', '--no-install-recommends', debianPackage]);
    found = toolPath(binary) !== undefined;
  }
  if (!found) console.warn(`[rrdns tests] skipping: '${binary}' not found; install Debian package '${debianPackage}'`);
  verdicts.set(binary, found);
  return found;
}

/** For describe.skipIf: true when the tool is missing (after trying to install it). */
export const missing = (binary: string, pkg: string): boolean => !ensureTool(binary, pkg);
