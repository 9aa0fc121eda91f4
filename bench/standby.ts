/**
 * `npm run standby`: the cost of cold standby, measured with the real CLI
 * server and real `dig`. A pool of one primary and one standby (allDown:
 * backup); the primary is stopped, and what is measured is the hand-over:
 * from rrdns seeing the primary down (its log line) to dig getting the
 * standby, with `mode: hot` and `mode: cold`, plus the probes the standby
 * backend saw while the primary served (detection itself is the same for
 * both modes: npm run failover). Checks every 1 s, fall 2,
 * rise 2. Bounded: `--runs N` (default 5, at most 30) per mode, 30 s per wait.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { dig } from '../test/support/dig.ts';
import { freePort } from '../test/support/spawn.ts';
import { ensureTool } from '../test/support/tools.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const PRIMARY = '127.0.0.43';
const STANDBY = '127.0.0.44';
const WAIT_MS = 30_000;
const CHECK = { interval: '1s', timeout: '500ms', fall: 2, rise: 2 };

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Math.min(30, Math.max(1, Number(values.runs) || 5));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An HTTP backend counting the probes it answers. */
async function backend(address: string, port = 0): Promise<{ server: http.Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(port, address, () => resolve()));
  return { server, port: (server.address() as { port: number }).port, hits: () => hits };
}

async function until(dnsPort: number, want: (addrs: string[]) => boolean): Promise<number | undefined> {
  const from = performance.now();
  while (performance.now() - from < WAIT_MS) {
    const r = await dig(dnsPort, ['www.standby.test', 'A']).catch(() => undefined);
    if (r && want(r.answer.map((a) => a.data))) return performance.now() - from;
    await sleep(20);
  }
  return undefined;
}

async function measure(mode: 'hot' | 'cold'): Promise<number[]> {
  let primary = await backend(PRIMARY);
  const standby = await backend(STANDBY);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-standby-'));
  const zone = {
    origin: 'standby.test',
    ttl: { default: 300, min: 0 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
    records: {
      '@': { NS: 'ns1' },
      ns1: { A: '192.0.2.53' },
      www: {
        ttl: 30,
        A: [PRIMARY],
        pool: {
          check: CHECK,
          allDown: 'backup',
          standby: { mode, addresses: [STANDBY] },
          members: { [PRIMARY]: { check: { port: primary.port } }, [STANDBY]: { check: { port: standby.port } } },
        },
      },
    },
  };
  fs.writeFileSync(path.join(dir, 'standby.test.yaml'), YAML.stringify(zone));
  const dnsPort = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'src/main.ts'), 'serve', '--zones', dir, '--listen', `127.0.0.1:${dnsPort}`, '--log-level', 'warn', '--admin', 'off', '--state-dir', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // When rrdns saw the primary down: its log line (wall-clock ms; this process reads the same clock).
  let primaryDownAt: number | undefined;
  let buffered = '';
  const onLog = (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      try {
        const l = JSON.parse(line) as { msg?: string; address?: string; to?: string; time?: string | number };
        if (l.msg === 'health state changed' && l.address === PRIMARY && l.to === 'down') primaryDownAt = new Date(l.time!).getTime();
      } catch {
        // not a log line
      }
    }
  };
  child.stdout!.on('data', onLog);
  child.stderr!.on('data', onLog);
  const handovers: number[] = [];
  try {
    if ((await until(dnsPort, (a) => a.join() === PRIMARY)) === undefined) throw new Error('rrdns did not start serving the primary');
    console.log(`\nstandby mode ${mode}: check every ${CHECK.interval}, timeout ${CHECK.timeout}, fall ${CHECK.fall}, rise ${CHECK.rise}`);
    for (let run = 1; run <= RUNS; run++) {
      const before = standby.hits();
      await sleep(3000 + Math.random() * 1000); // the primary serves for a few intervals, stopped at a random phase
      const idleProbes = standby.hits() - before;
      primaryDownAt = undefined;
      // From the moment the primary is seen down (after fall failures) to the standby in the answers:
      // what the mode changes. Detection itself is the same for both (npm run failover).
      await new Promise<void>((r) => primary.server.close(() => r()));
      primary.server.closeAllConnections();
      const gone = await until(dnsPort, (a) => !a.includes(PRIMARY) || a.includes(STANDBY));
      if (gone === undefined) {
        console.log(`  run ${run}: the standby did not take over within ${WAIT_MS / 1000}s`);
        break;
      }
      const servedAt = Date.now();
      await sleep(100); // the log line may trail the answer
      if (primaryDownAt === undefined) {
        console.log(`  run ${run}: no 'health state changed' log line for the primary`);
        break;
      }
      handovers.push(servedAt - primaryDownAt);
      console.log(
        `  run ${run}: standby served ${(gone / 1000).toFixed(2)}s after the primary stopped, ${servedAt - primaryDownAt} ms after rrdns saw it down; standby probes while the primary served: ${idleProbes}`,
      );
      primary = await backend(PRIMARY, primary.port);
      if ((await until(dnsPort, (a) => a.join() === PRIMARY)) === undefined) {
        console.log(`  run ${run}: the primary did not come back within ${WAIT_MS / 1000}s`);
        break;
      }
    }
    if (handovers.length) {
      const mean = handovers.reduce((a, b) => a + b, 0) / handovers.length;
      console.log(`  hand-over: mean ${mean.toFixed(0)} ms from rrdns seeing the primary down to dig getting the standby (dig polls every ~20 ms plus its own start-up), over ${handovers.length} runs`);
    }
  } finally {
    // Wait for it to exit: a server still shutting down must not probe the next run's backends.
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    primary.server.close();
    standby.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return handovers;
}

async function main(): Promise<void> {
  if (!ensureTool('dig', 'bind9-dnsutils')) process.exit(1);
  const hot = await measure('hot');
  const cold = await measure('cold');
  const mean = (xs: number[]) => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(0) : '?');
  console.log(`\nsummary: hand-over after the primary is seen down: hot ${mean(hot)} ms, cold ${mean(cold)} ms on average (cold: its first check runs then; the primaries are served meanwhile, fail open)`);
}

await main();
