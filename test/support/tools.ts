/**
 * External tools the tests drive (dig, unbound, knotd, dnsperf). When one is
 * missing and we are root with apt, it is installed; otherwise its suites are
 * skipped with a notice naming the Debian package.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

const SEARCH = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin']);

export function toolPath(binary: string): string | undefined {
  for (const dir of SEARCH) {
    if (!dir) continue;
    const p = `${dir}/${binary}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

let aptUpdated = false;

function canApt(): boolean {
  return process.getuid?.() === 0 && toolPath('apt-get') !== undefined;
}

/** True when `binary` is available (installing `debianPackage` if needed and possible). */
export function ensureTool(binary: string, debianPackage: string): boolean {
  if (toolPath(binary)) return true;
  if (canApt()) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      if (!aptUpdated) {
        execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
        aptUpdated = true;
      }
      spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', debianPackage], { stdio: 'ignore', env, timeout: 600_000 });
    } catch {
      // fall through to the notice
    }
    if (toolPath(binary)) return true;
  }
  console.warn(`[rrdns tests] skipping: '${binary}' not found; install Debian package '${debianPackage}'`);
  return false;
}

export const TOOLS = [
  { binary: 'dig', pkg: 'bind9-dnsutils' },
  { binary: 'unbound', pkg: 'unbound' },
  { binary: 'knotd', pkg: 'knot' },
  { binary: 'dnsperf', pkg: 'dnsperf' },
] as const;

/** For describe.skipIf: true when the tool is missing. */
export const missing = (binary: string, pkg: string) => !ensureTool(binary, pkg);
