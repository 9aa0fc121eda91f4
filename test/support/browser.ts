/**
 * Headless Chromium for the tests that look at a page (Debian packages
 * `chromium` and `chromium-driver`; playwright-core drives it, and never
 * downloads a browser of its own). Same pattern as tools.ts: when the browser
 * is missing and we are root with apt-get, the packages are installed; else
 * the suite is skipped with a notice naming them.
 *
 *   describe.skipIf(!ensureChromium())('…', () => { … })
 *
 * The globalSetup does not know about the browser, so the install runs here,
 * while the test file is collected (outside any test or hook timeout). Only
 * the status page suite needs it, so no two workers run apt at once.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_PACKAGES = ['chromium', 'chromium-driver'] as const;

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function executable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function aptGet(): string | undefined {
  return ['/usr/bin/apt-get', '/bin/apt-get'].find(executable);
}

function apt(aptPath: string, args: string[]): boolean {
  const r = spawnSync(aptPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 900_000,
  });
  if (r.status !== 0) {
    const why = r.error?.message ?? (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    console.warn(`[rrdns tests] apt-get ${args.join(' ')} failed: ${why}`);
    return false;
  }
  return true;
}

let verdict: boolean | undefined;

/** True when headless Chromium is available (installing its Debian packages first when root with apt). */
export function ensureChromium(): boolean {
  if (verdict !== undefined) return verdict;
  let found = executable(CHROMIUM_PATH);
  const aptPath = aptGet();
  if (!found && process.getuid?.() === 0 && aptPath) {
    console.warn(`[rrdns tests] '${CHROMIUM_PATH}' not found: installing Debian packages ${CHROMIUM_PACKAGES.join(', ')} with apt-get`);
    if (apt(aptPath, ['update', '-qq'])) apt(aptPath, ['install', '-y', '-qq', '--no-install-recommends', ...CHROMIUM_PACKAGES]);
    found = executable(CHROMIUM_PATH);
  }
  if (!found) {
    console.warn(`[rrdns tests] skipping browser tests: '${CHROMIUM_PATH}' not found; install Debian packages ${CHROMIUM_PACKAGES.join(' and ')}`);
  }
  verdict = found;
  return found;
}

export interface Browser {
  context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh temporary profile (user data dir). */
export async function launchChromium(viewport = { width: 412, height: 900 }): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
      timeout: 60_000,
    });
    return {
      context,
      close: async () => {
        try {
          await context.close();
        } finally {
          fs.rmSync(profile, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}
