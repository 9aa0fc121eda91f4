/**
 * `npm run failover`: measures, with the real CLI server and real `dig`, the time
 * from stopping a backend to its address leaving the answers, and the TTLs
 * served meanwhile, with and without fastInterval. Checks every 2 s, fall 2
 * (the thresholds issue 12 compares with gdnsd); fastInterval 500 ms.
 *
 * Each run stops the backend at a random point of the check interval (so the
 * mean is over phases, as a real failure is), waits until its address leaves
 * the answers, starts it again and waits until it is back. Bounded: `--runs N`
 * (default 8, at most 50) per configuration, 30 s per wait.
 *
 *   npm run failover              # both configurations
 *   npm run failover -- --runs 10
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { dig } from '../test/support/dig.ts';
import { freePort } from '../test/support/spawn.ts';
import { ensureTool } from '../test/support/tools.ts';
import { poolZone, type PoolCheck } from './pool-zone.ts';
import { steadyHorizonMs, worstDetectionMs } from '../src/health/recheck.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const VICTIM = '127.0.0.41';
const SURVIVOR = '127.0.0.42';
const WAIT_MS = 30_000;

const { values } = parseArgs({ options: { runs: { type: 'string', default: '8' } } });
const RUNS = Math.min(50, Math.max(1, Number(values.runs) || 8));

const CONFIGS: { label: string; check: PoolCheck }[] = [
  { label: 'without fastInterval', check: { intervalS: 2, timeoutS: 1, fall: 2, rise: 2 } },
  { label: 'fastInterval 500ms', check: { intervalS: 2, fastIntervalS: 0.5, timeoutS: 1, fall: 2, rise: 2 } },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function backend(address: string, port = 0): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.end('ok'));
  return new Promise((resolve) => server.listen(port, address, () => resolve(server)));
}

const answerOf = async (dnsPort: number) => (await dig(dnsPort, ['www.failover.test', 'A'])).answer;

/** Polls dig until `want` holds; the time it took (ms) and the TTLs seen on the way, or undefined after WAIT_MS. */
async function until(dnsPort: number, want: (addrs: string[]) => boolean): Promise<{ ms: number; ttls: Set<number> } | undefined> {
  const from = performance.now();
  const ttls = new Set<number>();
  while (performance.now() - from < WAIT_MS) {
    const answer = await answerOf(dnsPort).catch(() => undefined);
    if (answer) {
      for (const a of answer) ttls.add(a.ttl);
      if (want(answer.map((a) => a.data))) return { ms: performance.now() - from, ttls };
    }
    await sleep(50);
  }
  return undefined;
}

async function measure(label: string, check: PoolCheck): Promise<number[]> {
  let victim = await backend(VICTIM);
  const survivor = await backend(SURVIVOR);
  const victimPort = (victim.address() as { port: number }).port;
  const survivorPort = (survivor.address() as { port: number }).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-failover-'));
  const zone = poolZone({ origin: 'failover.test', ttl: 30, members: [{ address: VICTIM, port: victimPort }, { address: SURVIVOR, port: survivorPort }], check });
  fs.writeFileSync(path.join(dir, 'failover.test.yaml'), zone.yaml);
  const dnsPort = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'src/main.ts'), 'serve', '--zones', dir, '--listen', `127.0.0.1:${dnsPort}`, '--log-level', 'error', '--admin', 'off', '--state-dir', 'off'], { stdio: 'inherit' });
  const cfg = { interval: check.intervalS * 1000, fastInterval: check.fastIntervalS === undefined ? undefined : check.fastIntervalS * 1000, timeout: check.timeoutS * 1000, fall: check.fall };
  const step = cfg.fastInterval ?? cfg.interval;
  const detections: number[] = [];
  const ttls = new Set<number>();
  try {
    const up = await until(dnsPort, (a) => a.length === 2);
    if (!up) throw new Error('rrdns did not start with both addresses');
    console.log(`\n${label}: check every ${check.intervalS}s${check.fastIntervalS ? `, fastInterval ${check.fastIntervalS}s` : ''}, timeout ${check.timeoutS}s, fall ${check.fall}, record TTL 30s`);
    for (let run = 1; run <= RUNS; run++) {
      await sleep(Math.random() * cfg.interval); // a random phase of the check interval
      await new Promise<void>((r) => victim.close(() => r()));
      victim.closeAllConnections();
      const gone = await until(dnsPort, (a) => !a.includes(VICTIM));
      if (!gone) {
        console.log(`  run ${run}: the stopped backend was still served after ${WAIT_MS / 1000}s`);
        break;
      }
      for (const t of gone.ttls) ttls.add(t);
      detections.push(gone.ms);
      console.log(`  run ${run}: left the answers after ${(gone.ms / 1000).toFixed(2)}s (TTLs served meanwhile: ${[...gone.ttls].sort((a, b) => a - b).join(', ')}s)`);
      victim = await backend(VICTIM, victimPort);
      if (!(await until(dnsPort, (a) => a.length === 2))) {
        console.log(`  run ${run}: the restarted backend did not come back within ${WAIT_MS / 1000}s`);
        break;
      }
    }
    if (detections.length > 0) {
      const mean = detections.reduce((a, b) => a + b, 0) / detections.length;
      console.log(
        `  detection: mean ${(mean / 1000).toFixed(2)}s, min ${(Math.min(...detections) / 1000).toFixed(2)}s, max ${(Math.max(...detections) / 1000).toFixed(2)}s over ${detections.length} runs` +
          ` (expected mean about interval/2 + (fall-1) x ${cfg.fastInterval ? 'fastInterval' : 'interval'} = ${(cfg.interval / 2 + (cfg.fall - 1) * step) / 1000}s plus the dig poll; worst case ${worstDetectionMs(cfg) / 1000}s)`,
      );
      console.log(`  TTLs served meanwhile: ${[...ttls].sort((a, b) => a - b).join(', ')}s (health-aware cap ${Math.floor(steadyHorizonMs(cfg) / 1000)}s)`);
    }
  } finally {
    // Wait for it to exit: a server still shutting down must not probe the next configuration's backends.
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    victim.close();
    survivor.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return detections;
}

async function main(): Promise<void> {
  if (!ensureTool('dig', 'bind9-dnsutils')) process.exit(1);
  const results: { label: string; mean: number }[] = [];
  for (const c of CONFIGS) {
    const d = await measure(c.label, c.check);
    if (d.length) results.push({ label: c.label, mean: d.reduce((a, b) => a + b, 0) / d.length });
  }
  console.log('\nsummary (interval 2s, fall 2):');
  for (const r of results) console.log(`  ${r.label}: mean detection ${(r.mean / 1000).toFixed(2)}s`);
  console.log('  (for reference, issue 12 quotes ~4.5 s for rrdns without fastInterval and ~3.7 s for gdnsd at the same thresholds)');
}

await main();
