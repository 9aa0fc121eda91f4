/**
 * `npm run bench`: rrdns and Knot on the same zone on loopback, each driven by
 * dnsperf with the same query mix for a bounded time (BENCH_SECONDS, default
 * 10). Prints each QPS and the ratio rrdns/Knot. A benchmark, not a test.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dig } from '../test/support/dig.ts';
import { freePort, startKnot } from '../test/support/daemons.ts';
import { ensureTool, toolPath } from '../test/support/tools.ts';

const SECONDS = Math.min(Math.max(Number(process.env.BENCH_SECONDS ?? 10), 1), 120);
const CLIENTS = 8;
const ROOT = path.resolve(import.meta.dirname, '..');
const ZONE = fs.readFileSync(path.join(ROOT, 'test/fixtures/diff.test.zone'), 'utf8');
/** The mix: round-robin A/AAAA, CNAME, MX with additional, TXT, wildcard, NXDOMAIN, NODATA, referral. */
const QUERIES = [
  'www.diff.test A',
  'www.diff.test A',
  'www.diff.test A',
  'www.diff.test AAAA',
  'blog.diff.test A',
  'diff.test MX',
  'diff.test TXT',
  'foo.w.diff.test A',
  'nothing.diff.test A',
  'www.diff.test MX',
  'host.sub.diff.test A',
];

interface PerfResult {
  qps: number;
  lost: string;
}

function dnsperf(port: number, file: string): Promise<PerfResult> {
  return new Promise((resolve, reject) => {
    execFile(
      toolPath('dnsperf')!,
      ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(SECONDS), '-c', String(CLIENTS), '-q', '200', '-t', '2'],
      { timeout: (SECONDS + 30) * 1000 },
      (err, stdout) => {
        const qps = /Queries per second:\s+([\d.]+)/.exec(stdout);
        const lost = /Queries lost:\s+(.*)/.exec(stdout);
        if (!qps) return reject(new Error(`dnsperf gave no figures: ${err?.message ?? ''}\n${stdout}`));
        resolve({ qps: Number(qps[1]), lost: lost?.[1]?.trim() ?? '?' });
      },
    );
  });
}

async function startRrdns(zonesDir: string) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'src/main.ts'), 'serve', '--zones', zonesDir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: 'inherit' });
  for (let i = 0; i < 50; i++) {
    try {
      if ((await dig(port, ['diff.test', 'SOA', '+time=1'])).status === 'NOERROR') break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

async function main(): Promise<void> {
  for (const [bin, pkg] of [['dnsperf', 'dnsperf'], ['knotd', 'knot'], ['dig', 'bind9-dnsutils']] as const) {
    if (!ensureTool(bin, pkg)) {
      console.error(`bench needs ${bin} (Debian package ${pkg})`);
      process.exit(1);
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-bench-'));
  const queryFile = path.join(dir, 'queries.txt');
  fs.writeFileSync(queryFile, QUERIES.join('\n') + '\n');
  const zonesDir = path.join(dir, 'zones');
  fs.mkdirSync(zonesDir);
  fs.writeFileSync(path.join(zonesDir, 'diff.test.zone'), ZONE);

  console.log(`bench: ${SECONDS}s per server, ${CLIENTS} dnsperf clients, ${QUERIES.length}-query mix, loopback UDP, ${os.cpus().length} cores`);
  const rrdns = await startRrdns(zonesDir);
  let ours: PerfResult;
  try {
    ours = await dnsperf(rrdns.port, queryFile);
  } finally {
    await rrdns.close();
  }
  const knot = await startKnot('diff.test', ZONE);
  let theirs: PerfResult;
  try {
    theirs = await dnsperf(knot.port, queryFile);
  } finally {
    await knot.close();
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const ratio = ours.qps / theirs.qps;
  console.log(`rrdns: ${ours.qps.toFixed(0)} QPS (lost ${ours.lost})`);
  console.log(`knot:  ${theirs.qps.toFixed(0)} QPS (lost ${theirs.lost})`);
  console.log(`ratio rrdns/knot: ${ratio.toFixed(2)} (target >= 0.50: ${ratio >= 0.5 ? 'met' : 'NOT met'})`);
}

await main();
