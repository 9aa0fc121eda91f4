/**
 * `npm run demo`: three local web backends (127.0.0.31-33, GET /healthz -> 200)
 * behind one health-checked round-robin name served by the real rrdns CLI, and
 * the real `dig` showing 127.0.0.32 leave the answers when its backend stops and
 * come back when it restarts. Prints rrdns's "health state changed" log lines
 * as they come and the pool's state from the admin API at the end.
 *
 * Loopback only. Bounded: each transition is polled at most POLL_MAX times over
 * at most POLL_BOUND_MS, the whole run at most OVERALL_MS. Stops what it started
 * (rrdns by PID, the backends) and removes its temp dir on exit, Ctrl-C or
 * SIGTERM. Exit 0 when both transitions were seen, 1 otherwise.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startHttpBackend, type Backend } from '../test/support/backends.ts';
import { freePort, removeDir, retryOnPortClash, startRrdns, tempDir, type RrdnsProcess } from '../test/support/spawn.ts';
import { ensureTool, requireTool } from '../test/support/tools.ts';
import { duration, poolZone } from './pool-zone.ts';

const ORIGIN = 'demo.test';
const NAME = `www.${ORIGIN}`;
const ADDRESSES = ['127.0.0.31', '127.0.0.32', '127.0.0.33'];
const VICTIM = '127.0.0.32';
const CHECK = { intervalS: 1, timeoutS: 0.5, fall: 2, rise: 2, path: '/healthz' };
const RECORD_TTL = 5;
const PREFERRED_PORT = 8080;
const POLL_MS = 250;
const POLL_MAX = 60;
const POLL_BOUND_MS = 15_000;
const OVERALL_MS = 90_000;

/** Everything this process started, for cleanup(). */
const owned: { backends: Backend[]; rrdns?: RrdnsProcess; dir?: string } = { backends: [] };
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await owned.rrdns?.stop(); // SIGTERM by PID, SIGKILL after 5 s
    await Promise.all(owned.backends.map((b) => b.close()));
    if (owned.dir) removeDir(owned.dir);
  })();
  return cleaning;
}

function finish(code: number): never {
  process.exit(code);
}

class DemoFailure extends Error {}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

/** The three backends on one port: 8080 if free on all three addresses, else one from freePort. */
async function startBackends(): Promise<Backend[]> {
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = attempt === 0 ? PREFERRED_PORT : await freePort(ADDRESSES[0]);
    const started: Backend[] = [];
    try {
      for (const address of ADDRESSES) started.push(await startHttpBackend({ address, port }));
      return started;
    } catch (e) {
      await Promise.all(started.map((b) => b.close()));
      if (!/EADDRINUSE/.test(String(e))) throw e;
    }
  }
  throw new DemoFailure('no port free on all of 127.0.0.31-33 in 4 attempts');
}

interface DigShort {
  command: string;
  /** The addresses dig printed, in order. */
  addresses: string[];
  /** dig's output when it failed (timeout, no server). */
  error?: string;
}

let digPort = 0;

/** Real `dig +short` for www, bounded by a 5 s kill. */
function digShort(): Promise<DigShort> {
  const args = [`@127.0.0.1`, '-p', String(digPort), NAME, '+short'];
  const command = `dig ${args.join(' ')}`;
  return new Promise((resolve) => {
    execFile(requireTool('dig'), args, { timeout: 5000 }, (err, stdout, stderr) => {
      const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
      if (err) resolve({ command, addresses: [], error: (stdout + stderr).trim() || err.message });
      else resolve({ command, addresses: lines });
    });
  });
}

function printDig(r: DigShort): void {
  console.log(`$ ${r.command}`);
  console.log(r.error ?? (r.addresses.join('\n') || '(no addresses)'));
}

async function showDig(times: number): Promise<DigShort[]> {
  const out: DigShort[] = [];
  for (let i = 0; i < times; i++) {
    const r = await digShort();
    printDig(r);
    out.push(r);
  }
  return out;
}

/** Prints the "health state changed" lines rrdns logged since the last call. */
let logsSeen = 0;
function printHealthLogs(): void {
  const logs = owned.rrdns?.logs ?? [];
  for (; logsSeen < logs.length; logsSeen++) {
    const l = logs[logsSeen]!;
    if (l.msg !== 'health state changed') continue;
    // pino's time: ISO text in rrdns (epoch ms in pino's default); shown as UTC hh:mm:ss.mmm.
    const t = typeof l.time === 'string' || typeof l.time === 'number' ? new Date(l.time) : undefined;
    const at = t && !Number.isNaN(t.getTime()) ? t.toISOString().slice(11, 23) : '?';
    console.log(`  [rrdns log ${at}] health state changed: ${l.address} ${l.from} -> ${l.to} (${l.reason})`);
  }
}

/** Polls dig until `want` holds; undefined when the bound ran out first. */
async function pollUntil(want: (addresses: string[]) => boolean, since: number): Promise<{ elapsedMs: number; queries: number } | undefined> {
  console.log(`  polling with dig every ${POLL_MS} ms (at most ${POLL_MAX} queries over ${POLL_BOUND_MS / 1000} s):`);
  for (let i = 1; i <= POLL_MAX && performance.now() - since < POLL_BOUND_MS; i++) {
    const r = await digShort();
    const elapsedMs = performance.now() - since;
    printHealthLogs();
    console.log(`  +${seconds(elapsedMs).padStart(6)}  ${r.error ? `dig failed: ${r.error.split('\n')[0]}` : r.addresses.join(' ') || '(no addresses)'}`);
    if (!r.error && r.addresses.length > 0 && want(r.addresses)) return { elapsedMs, queries: i };
    await sleep(POLL_MS);
  }
  printHealthLogs();
  return undefined;
}

async function waitReady(adminPort: number): Promise<void> {
  const url = `http://127.0.0.1:${adminPort}/readyz`;
  for (let i = 0; i < 100; i++) {
    const status = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.status, () => 0);
    if (status === 200) {
      console.log(`GET ${url} -> 200: rrdns is ready (zones loaded, first round of checks done)`);
      return;
    }
    await sleep(100);
  }
  throw new DemoFailure(`${url} did not answer 200 within 100 tries`);
}

interface MemberView {
  address: string;
  health: string;
  served: boolean;
  since: string | null;
  lastResult: string | null;
  latencyMs: number | null;
  consecutiveOk: number;
  consecutiveFail: number;
}
interface PoolView {
  name: string;
  type: string;
  serving: string;
  ttl: number;
  members: MemberView[];
}

async function printHealthApi(adminPort: number): Promise<void> {
  const url = `http://127.0.0.1:${adminPort}/api/v1/health`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { pools: PoolView[] };
  console.log(`GET ${url} (summarised):`);
  for (const p of body.pools) {
    console.log(`pool ${p.name} ${p.type}: serving ${p.serving}, TTL now ${p.ttl}s`);
    for (const m of p.members) {
      const latency = m.latencyMs === null ? '' : ` in ${m.latencyMs.toFixed(1)} ms`;
      console.log(
        `  ${m.address.padEnd(11)} ${m.health.padEnd(4)} ${m.served ? 'served    ' : 'not served'} since ${m.since ?? '-'}  last check: ${m.lastResult ?? '-'}${latency}, ${m.consecutiveOk} ok / ${m.consecutiveFail} failed in a row`,
      );
    }
  }
}

async function main(): Promise<void> {
  if (!ensureTool('dig', 'bind9-dnsutils')) throw new DemoFailure("the demo needs 'dig' (Debian package bind9-dnsutils)");
  const checkText = `every ${duration(CHECK.intervalS)}, timeout ${duration(CHECK.timeoutS)}, fall ${CHECK.fall}, rise ${CHECK.rise}`;
  console.log(`rrdns demo: three web backends behind ${NAME}, HTTP health checks ${checkText}\n`);

  owned.backends = await startBackends();
  const port = owned.backends[0]!.port;
  console.log(`backends: ${ADDRESSES.map((a) => `http://${a}:${port}${CHECK.path}`).join(', ')} (each answers 200)`);

  owned.dir = tempDir('demo');
  const zone = poolZone({ origin: ORIGIN, ttl: RECORD_TTL, members: ADDRESSES.map((address) => ({ address, port })), check: CHECK });
  const zoneFile = path.join(owned.dir, `${ORIGIN}.yaml`);
  fs.writeFileSync(zoneFile, zone.yaml);
  console.log(`zone file ${zoneFile}:`);
  console.log(zone.yaml.trimEnd().replace(/^/gm, '  '));

  let adminPort = 0;
  const rrdns = await retryOnPortClash(async () => {
    digPort = await freePort();
    adminPort = await freePort();
    return startRrdns({
      zonesDir: owned.dir!,
      listen: [`127.0.0.1:${digPort}`],
      logLevel: 'info',
      args: ['--admin', `127.0.0.1:${adminPort}`],
      startTimeoutMs: 20_000,
    });
  }, undefined);
  owned.rrdns = rrdns;
  console.log(`\n$ node src/main.ts serve --zones ${owned.dir} --listen 127.0.0.1:${digPort} --log-level info --admin 127.0.0.1:${adminPort}`);
  console.log(`rrdns running as pid ${rrdns.pid}; its log is pino JSON on stdout, the health lines are shown below`);
  await waitReady(adminPort);
  printHealthLogs();

  console.log(`\n1. All three backends are healthy: each query gets the set rotated one step further.`);
  const before = await showDig(3);
  const incomplete = before.find((r) => r.error || !ADDRESSES.every((a) => r.addresses.includes(a)));
  if (incomplete) throw new DemoFailure(`expected all three addresses at the start, dig said: ${incomplete.error ?? incomplete.addresses.join(' ')}`);

  const victim = owned.backends[ADDRESSES.indexOf(VICTIM)]!;
  console.log(`\n2. stopping backend ${VICTIM} (its port now refuses connections)`);
  await victim.stop();
  const stoppedAt = performance.now();
  const gone = await pollUntil((a) => !a.includes(VICTIM), stoppedAt);
  if (!gone) throw new DemoFailure(`${VICTIM} was still in the answers ${POLL_BOUND_MS / 1000} s after its backend stopped`);
  const detection = CHECK.intervalS * CHECK.fall + CHECK.timeoutS;
  console.log(`${VICTIM} left the answers ${seconds(gone.elapsedMs)} after its backend stopped (query ${gone.queries}; expected within interval x fall + timeout = ${detection}s)`);
  console.log(`the two others keep rotating:`);
  await showDig(2);

  console.log(`\n3. restarting backend ${VICTIM}`);
  await victim.start();
  const restartedAt = performance.now();
  const back = await pollUntil((a) => a.includes(VICTIM), restartedAt);
  if (!back) throw new DemoFailure(`${VICTIM} was not back in the answers ${POLL_BOUND_MS / 1000} s after its backend restarted`);
  console.log(`${VICTIM} is back in the answers ${seconds(back.elapsedMs)} after its backend restarted (query ${back.queries}; rise ${CHECK.rise} x interval ${duration(CHECK.intervalS)})`);
  await showDig(3);
  printHealthLogs();

  console.log(`\n4. the pool as the admin API shows it:`);
  await printHealthApi(adminPort);

  console.log(`\ndemo ok: ${VICTIM} left the answers ${seconds(gone.elapsedMs)} after its backend stopped and returned ${seconds(back.elapsedMs)} after it restarted`);
}

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(sig, () => {
    console.error(`\ndemo: ${sig}, stopping what it started`);
    void cleanup().finally(() => finish(code));
  });
}
setTimeout(() => {
  console.error(`\ndemo FAILED: not finished within ${OVERALL_MS / 1000} s`);
  void cleanup().finally(() => finish(1));
}, OVERALL_MS).unref();

let code = 0;
try {
  await main();
} catch (e) {
  code = 1;
  console.error(`\ndemo FAILED: ${e instanceof DemoFailure ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
}
await cleanup();
finish(code);
