/**
 * Child processes for tests and the bench: the rrdns CLI, knotd, unbound.
 * Each is started on loopback, waited for with a bounded number of probes
 * (no fixed sleeps), and stopped by its PID: SIGTERM, then SIGKILL after a
 * bound. Everything started here is also SIGKILLed if the parent exits
 * without stopping it.
 *
 *   const rrdns = await startRrdns({ zonesDir });          // 127.0.0.1, ephemeral port
 *   afterAll(() => rrdns.close());                         // or afterAll(stopAll)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { dig, type DigResult } from './dig.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
/** The launcher `npm start` and the `rrdns` bin run (bin/rrdns.js: src/main.ts with the compile cache on). */
export const RRDNS_MAIN = path.join(REPO_ROOT, 'bin/rrdns.js');

/** The node flags `npm start` runs with: the `--flags` between `node` and the script in package.json's start script. */
export function startScriptNodeFlags(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const m = /\bnode((?:\s+--\S+)*)\s/.exec(pkg.scripts.start);
  return (m?.[1] ?? '').split(/\s+/).filter(Boolean);
}

/** Output kept per stream: the tail, for error messages. */
const OUTPUT_LIMIT = 64 * 1024;

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Tail of what the process wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** True until the process has exited. */
  running(): boolean;
  /** Resolves once the process has exited (never rejects). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM by PID, SIGKILL after `graceMs` (default 5000); resolves when it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with every complete stdout line. */
  onStdoutLine?: (line: string) => void;
}

const live = new Set<ManagedProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a run ends without its afterAll: no daemons or temp dirs left behind.
  process.on('exit', () => {
    for (const p of live) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** Starts `cmd args` with piped output and registers it for stopAll() and the exit hook. */
export function startProcess(name: string, cmd: string, args: string[], opts: StartOptions = {}): ManagedProcess {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let partial = '';
  let spawnError: Error | undefined;
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    out = (out + d).slice(-OUTPUT_LIMIT);
    if (!opts.onStdoutLine) return;
    partial += d;
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      opts.onStdoutLine(line);
    }
    if (partial.length > OUTPUT_LIMIT) partial = '';
  });
  child.stderr!.on('data', (d: string) => (err = (err + d).slice(-OUTPUT_LIMIT)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (e) => {
      spawnError = e;
      resolve({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let done = false;
  let stopping: Promise<void> | undefined;
  const proc: ManagedProcess = {
    name,
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => (spawnError ? `${err}\n${spawnError.message}` : err),
    running: () => !done,
    exited,
    stop(graceMs = 5000) {
      stopping ??= (async () => {
        if (done) return;
        signal(proc, 'SIGTERM');
        const killTimer = setTimeout(() => signal(proc, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(killTimer);
      })();
      return stopping;
    },
  };
  void exited.then(() => {
    done = true;
    live.delete(proc);
  });
  if (proc.pid > 0) {
    live.add(proc);
    installExitHook();
  }
  return proc;
}

function signal(p: ManagedProcess, sig: NodeJS.Signals): void {
  if (!p.running() || p.pid <= 0) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    // exited in between
  }
}

/**
 * Starts a daemon that lives in its own temp `dir` and resolves once `ready`
 * passes; if it does not, stops it and removes `dir` before rethrowing. The
 * returned close() does the same for a daemon that came up.
 */
export async function startDaemonIn(
  dir: string,
  name: string,
  cmd: string,
  args: string[],
  ready: (proc: ManagedProcess) => Promise<void>,
): Promise<{ proc: ManagedProcess; close: () => Promise<void> }> {
  const proc = startProcess(name, cmd, args, { cwd: dir });
  const close = async () => {
    await proc.stop();
    removeDir(dir);
  };
  try {
    await ready(proc);
  } catch (e) {
    await close();
    throw e;
  }
  return { proc, close };
}

/** Stops every process started here that is still running (for afterAll). */
export async function stopAll(graceMs?: number): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** Describes a process that did not come up: how it ended and the tail of its output. */
export function describeFailure(p: ManagedProcess, what: string): Error {
  const state = p.running() ? 'still running' : 'exited';
  return new Error(`${p.name} (pid ${p.pid}, ${state}): ${what}\n--- stderr ---\n${p.stderr().slice(-4000)}\n--- stdout ---\n${p.stdout().slice(-4000)}`);
}

/** A port free for both UDP and TCP on `host` (default 127.0.0.1), chosen by the kernel. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => resolve(udp.address().port));
    });
    const tcpOk = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (tcpOk) return port;
  }
  throw new Error(`no port free for both UDP and TCP on ${host} in 50 attempts`);
}

/** A fresh directory under the OS temp dir, named rrdns-PREFIX-*; removed by removeDir or at process exit. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rrdns-${prefix}-`));
  tempDirs.add(dir);
  installExitHook();
  return dir;
}

/** Removes every directory tempDir() made that is still there (test/support/cleanup.ts calls it after each test file). */
export function removeTempDirs(): void {
  for (const dir of [...tempDirs]) removeDir(dir);
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` up to `attempts` times, `intervalMs` apart, until it returns
 * true; fails early if `proc` exits. A check that throws counts as "not yet".
 */
export async function waitUntil(
  check: () => Promise<boolean>,
  opts: { what: string; attempts?: number; intervalMs?: number; proc?: ManagedProcess },
): Promise<void> {
  const attempts = opts.attempts ?? 100;
  let lastError = '';
  for (let i = 0; i < attempts; i++) {
    if (opts.proc && !opts.proc.running()) throw describeFailure(opts.proc, `exited while waiting for ${opts.what}`);
    try {
      if (await check()) return;
    } catch (e) {
      lastError = (e as Error).message.split('\n')[0] ?? '';
    }
    await pause(opts.intervalMs ?? 50);
  }
  const msg = `no ${opts.what} after ${attempts} attempts${lastError ? ` (last: ${lastError})` : ''}`;
  throw opts.proc ? describeFailure(opts.proc, msg) : new Error(msg);
}

/**
 * Waits until a DNS server on host:port answers `probe` (dig args, e.g.
 * ['example.test', 'SOA']) with a reply `accept` likes (default: any reply).
 * Each attempt is one dig with a 1 s timeout.
 */
export async function waitForDns(
  port: number,
  probe: string[],
  opts: { host?: string; proc?: ManagedProcess; attempts?: number; accept?: (r: DigResult) => boolean } = {},
): Promise<DigResult> {
  let last: DigResult | undefined;
  await waitUntil(
    async () => {
      last = await dig(port, [...probe, '+time=1', '+tries=1'], opts.host);
      if (opts.accept && !opts.accept(last)) throw new Error(`not accepted: ${last.rcode} flags [${last.flags.join(' ')}], ${last.answer.length} answers`);
      return true;
    },
    { what: `acceptable DNS answer to '${probe.join(' ')}' on ${opts.host ?? '127.0.0.1'}#${port}`, attempts: opts.attempts ?? 100, ...(opts.proc ? { proc: opts.proc } : {}) },
  );
  return last!;
}

/** Resolves once a TCP connection to host:port is accepted. */
export function tcpConnects(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

/** "127.0.0.1:53" / "[::1]:53" -> { host, port }. */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) throw new Error(`not host:port: ${s}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export interface RrdnsProcess extends ManagedProcess {
  /** Port of the first listen address (UDP and TCP share it). */
  port: number;
  /** Every bound address, as "host:port" / "[::1]:port". */
  listen: string[];
  addresses: { host: string; port: number }[];
  /** Parsed pino JSON lines from stdout so far (non-JSON lines are skipped). */
  logs: Record<string, unknown>[];
  /** Same as stop(). */
  close(): Promise<void>;
}

export interface RrdnsOptions {
  zonesDir: string;
  /** Listen addresses; default ['127.0.0.1:0']. Port 0 = ephemeral. */
  listen?: string[];
  /** Default 'info'. Above info the start-up line is not logged: port-0 addresses get a freePort() instead, and readiness is probed with dig. */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Extra CLI args after the ones above (e.g. ['--identity', 'x']). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Bound on waiting for start-up, default 30000 ms. */
  startTimeoutMs?: number;
  /** Node flags before the script, for those NODE_OPTIONS refuses (e.g. --trace-gc). */
  nodeArgs?: string[];
  /** Called with each stdout line that is not a JSON log line (e.g. V8's --trace-gc), for benchmarks. */
  onOtherLine?: (line: string) => void;
  /** Another tree's entry point to run (benchmarks comparing two versions); default this tree's RRDNS_MAIN. */
  main?: string;
}

const QUIET = new Set(['warn', 'error', 'fatal', 'silent']);

/**
 * `node bin/rrdns.js serve --zones DIR --listen ... --log-level LEVEL` as a
 * child. Resolves once every address is bound: at the "rrdns listening" log
 * line (log level info or lower), otherwise when each address answers a dig
 * over UDP and accepts a TCP connection.
 */
export async function startRrdns(opts: RrdnsOptions): Promise<RrdnsProcess> {
  const level = opts.logLevel ?? 'info';
  const quiet = QUIET.has(level);
  let listen = opts.listen ?? ['127.0.0.1:0'];
  if (quiet) {
    listen = await Promise.all(
      listen.map(async (l) => {
        const { host, port } = parseHostPort(l);
        return port !== 0 ? l : net.isIPv6(host) ? `[${host}]:${await freePort(host)}` : `${host}:${await freePort(host)}`;
      }),
    );
  }
  const extra = opts.args ?? [];
  const env = opts.env ?? process.env;
  const given = (flag: string, variable: string) => extra.some((a) => a === flag || a.startsWith(`${flag}=`)) || env[variable] !== undefined;
  // Tests that are not about them run without rate limiting (they send thousands of queries from
  // one address) and with a state directory of their own (parallel tests must not share overrides or serials).
  const defaults = [...(given('--rrl', 'RRDNS_RRL') ? [] : ['--rrl', 'off']), ...(given('--state-dir', 'RRDNS_STATE_DIR') ? [] : ['--state-dir', tempDir('state')])];
  const args = [...(opts.nodeArgs ?? []), opts.main ?? RRDNS_MAIN, 'serve', '--zones', opts.zonesDir, ...listen.flatMap((l) => ['--listen', l]), '--log-level', level, ...defaults, ...extra];
  const logs: Record<string, unknown>[] = [];
  let onListening: ((listen: string[]) => void) | undefined;
  const proc = startProcess('rrdns', process.execPath, args, {
    cwd: REPO_ROOT,
    env,
    onStdoutLine(line) {
      if (!line.startsWith('{')) {
        opts.onOtherLine?.(line);
        return;
      }
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (logs.length < 10_000) logs.push(obj);
      if (obj.msg === 'rrdns listening' && Array.isArray(obj.listen)) onListening?.(obj.listen as string[]);
    },
  });
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  let bound: string[];
  try {
    if (!quiet) {
      bound = await new Promise<string[]>((resolve, reject) => {
        const timer = setTimeout(() => reject(describeFailure(proc, `no "rrdns listening" line within ${timeoutMs} ms`)), timeoutMs);
        onListening = (l) => {
          clearTimeout(timer);
          resolve(l);
        };
        void proc.exited.then(() => {
          clearTimeout(timer);
          reject(describeFailure(proc, 'exited before "rrdns listening"'));
        });
      });
    } else {
      const attempts = Math.max(1, Math.ceil(timeoutMs / 100));
      for (const l of listen) {
        const { host, port } = parseHostPort(l);
        await waitForDns(port, ['.', 'SOA'], { host, proc, attempts });
        await waitUntil(() => tcpConnects(port, host), { what: `TCP accept on ${l}`, attempts, proc });
      }
      bound = listen;
    }
  } catch (e) {
    await proc.stop();
    throw e;
  }
  const addresses = bound.map(parseHostPort);
  return Object.assign(proc, { port: addresses[0]!.port, listen: bound, addresses, logs, close: () => proc.stop() });
}

const ADDRESS_IN_USE = /address already in use/i;

/**
 * Starts a daemon on a port from freePort(). Another process may take that port
 * before the daemon binds it; the daemon then exits with "address already in
 * use" and we try again, at most 3 times. A fixed port is never retried.
 */
export async function retryOnPortClash<T>(start: () => Promise<T>, fixedPort: number | undefined): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (fixedPort !== undefined || attempt >= 3 || !(e instanceof Error) || !ADDRESS_IN_USE.test(e.message)) throw e;
    }
  }
}
