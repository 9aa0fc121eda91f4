/**
 * `npm run bench -- --flood`: what response rate limiting buys under a flood
 * from one prefix, next to normal traffic from others. rrdns runs as a child
 * process; a flooder in this process sends, from 127.0.0.2 (4 sockets), a
 * bounded number of queries at a bounded rate (FLOOD_QPS, default 10,000/s,
 * for BENCH_SECONDS, default 3; from a worker thread): TXT, a 60-address pool, ANY and random
 * NXDOMAIN names, with EDNS 1232. Four legitimate clients, one each in
 * 127.0.1.0/24 .. 127.0.4.0/24, query ten names one after the other, paced
 * to 200 queries/s each (20/s per name, below the default limit of 100).
 *
 * Three phases, each on a fresh server:
 *   1. --rrl on (defaults: 100/s, window 15, slip 2): the legitimate answer
 *      rate, and the flood's response rate and bytes in/out.
 *   2. --rrl on --rrl-slip 0: limited responses are all dropped; the server's
 *      CPU (utime+stime from /proc/PID/stat) per dropped query.
 *   3. --rrl off: the same flood answered; CPU per answered query.
 * CPU per dropped query = (CPU of phase 2 - answered queries x the CPU per
 * answered query of phase 3) / dropped queries; counts from /metrics.
 * Prints figures; exits nonzero only on obvious failure (no legitimate
 * answers, or a drop dearer than an answer).
 */
import dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, removeDir, startRrdns, stopAll, tempDir, type RrdnsProcess } from '../test/support/spawn.ts';
import { rawQuery, sleep } from '../test/support/rawdns.ts';
import { metricSum } from '../test/support/metrics-text.ts';
import { bindUdpClient, FLOOD_ZONE, LEGIT_NAMES } from '../test/support/flood.ts';

const SECONDS = Math.min(Math.max(Number(process.env.BENCH_SECONDS ?? 3) || 3, 1), 30);
const FLOOD_QPS = Math.min(Math.max(Number(process.env.FLOOD_QPS ?? 10_000) || 10_000, 100), 200_000);
export const ORIGIN = 'flood.test';

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}


export interface FloodResult {
  sent: number;
  sentBytes: number;
  responses: number;
  responseBytes: number;
  truncated: number;
}

/**
 * Runs the flooder in a worker thread (bench/flood-sender.ts), so that its
 * sends and the responses it counts do not delay the legitimate clients'
 * event loop here. Bounded in count (FLOOD_QPS x SECONDS) and time.
 */
function flood(port: number): Promise<FloodResult> {
  const worker = new Worker(new URL('./flood-sender.ts', import.meta.url), { workerData: { port, qps: FLOOD_QPS, seconds: SECONDS } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error('flooder did not finish in time'));
    }, (SECONDS + 10) * 1000);
    worker.once('message', (r: FloodResult) => {
      clearTimeout(timer);
      resolve(r);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

interface LegitResult {
  sent: number;
  answered: number;
  wrong: number;
}

/** One client in `host`'s /24: sequential queries, paced to 200/s, 1 s timeout (no retry: a timeout counts as unanswered), bounded by time. */
async function legit(port: number, host: string, seconds: number): Promise<LegitResult> {
  const s = await bindUdpClient(host);
  const r: LegitResult = { sent: 0, answered: 0, wrong: 0 };
  const end = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < end; i++) {
    const k = i % LEGIT_NAMES.length;
    const id = i & 0xffff;
    const got = new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => {
        s.off('message', on);
        resolve(undefined);
      }, 1000);
      const on = (m: Buffer) => {
        if (m.readUInt16BE(0) !== id) return;
        clearTimeout(timer);
        s.off('message', on);
        resolve(m);
      };
      s.on('message', on);
    });
    r.sent++;
    s.send(rawQuery(`${LEGIT_NAMES[k]}.${ORIGIN}`, { id, qtype: 1 }), port, '127.0.0.1');
    const m = await got;
    if (m) {
      // The one A record, 198.51.100.k+1, ends the answer.
      if (m.readUInt16BE(6) === 1 && m[m.length - 1] === k + 1) r.answered++;
      else r.wrong++;
    }
    await sleep(5);
  }
  s.close();
  return r;
}

interface PhaseResult {
  name: string;
  flood: FloodResult;
  legit: LegitResult;
  cpu: number;
  answered: number;
  dropped: number;
  slipped: number;
}

async function phase(name: string, zonesDir: string, args: string[]): Promise<PhaseResult> {
  const adminPort = await freePort();
  let server: RrdnsProcess | undefined;
  try {
    server = await startRrdns({ zonesDir, logLevel: 'warn', args: ['--no-watch', '--admin', `127.0.0.1:${adminPort}`, ...args] });
    const metrics = async () => (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const before = await metrics();
    const cpu0 = cpuSeconds(server.pid!);
    const legits = [1, 2, 3, 4].map((n) => legit(server!.port, `127.0.${n}.2`, SECONDS));
    const f = await flood(server.port);
    const ls = await Promise.all(legits);
    const cpu = cpuSeconds(server.pid!) - cpu0;
    await sleep(1100); // worker threads report once a second
    const after = await metrics();
    const delta = (metric: string, labels: Record<string, string> = {}) => metricSum(after, metric, labels) - metricSum(before, metric, labels);
    const l = ls.reduce((a, b) => ({ sent: a.sent + b.sent, answered: a.answered + b.answered, wrong: a.wrong + b.wrong }));
    return {
      name,
      flood: f,
      legit: l,
      cpu,
      answered: delta('rrdns_queries_total', { transport: 'udp' }),
      dropped: delta('rrdns_rrl_dropped_total'),
      slipped: delta('rrdns_rrl_slipped_total'),
    };
  } finally {
    await server?.close();
  }
}

function report(p: PhaseResult): void {
  const f = p.flood;
  console.log(`\n${p.name}`);
  console.log(`  legitimate: ${p.legit.answered}/${p.legit.sent} answered (${((100 * p.legit.answered) / Math.max(1, p.legit.sent)).toFixed(1)}%, ${(p.legit.answered / SECONDS).toFixed(0)}/s over 4 prefixes)${p.legit.wrong ? `, ${p.legit.wrong} WRONG` : ''}`);
  console.log(
    `  flood: ${f.responses}/${f.sent} responses (${((100 * f.responses) / Math.max(1, f.sent)).toFixed(1)}%, ${f.truncated} truncated), bytes in ${f.sentBytes} -> out ${f.responseBytes} (x${(f.responseBytes / Math.max(1, f.sentBytes)).toFixed(2)})`,
  );
  console.log(`  server: ${p.answered} answered (slipped included), ${p.dropped} dropped, ${p.slipped} slipped; CPU ${p.cpu.toFixed(2)} s`);
}

export async function floodBench(): Promise<number> {
  const dir = tempDir('bench-flood');
  try {
    const zonesDir = path.join(dir, 'zones');
    fs.mkdirSync(zonesDir);
    fs.writeFileSync(path.join(zonesDir, `${ORIGIN}.yaml`), FLOOD_ZONE);
    console.log(`bench --flood: ${SECONDS} s per phase, flood ${FLOOD_QPS}/s from 127.0.0.2 (4 sockets), 4 legitimate clients at 200/s from 127.0.1-4.2; rrdns --udp-threads 1`);
    const on = await phase('1. --rrl on (defaults: 100/s, window 15, slip 2)', zonesDir, ['--rrl', 'on']);
    report(on);
    const drop = await phase('2. --rrl on --rrl-slip 0 (limited responses all dropped)', zonesDir, ['--rrl', 'on', '--rrl-slip', '0']);
    report(drop);
    const off = await phase('3. --rrl off (the flood answered)', zonesDir, ['--rrl', 'off']);
    report(off);
    const perAnswer = off.cpu / Math.max(1, off.answered);
    const perDrop = (drop.cpu - perAnswer * drop.answered) / Math.max(1, drop.dropped);
    console.log(`\nserver CPU per answered query (phase 3): ${(perAnswer * 1e6).toFixed(1)} µs`);
    console.log(`server CPU per dropped query (phase 2, answered ones at the phase-3 cost taken out): ${(perDrop * 1e6).toFixed(1)} µs`);
    console.log(`dropped / answered: ${(perDrop / perAnswer).toFixed(2)}`);
    let failed = false;
    for (const p of [on, drop]) {
      // Obvious failure only: on a busy machine some legitimate queries time out in every phase (see phase 3).
      if (p.legit.answered < p.legit.sent * 0.5 || p.legit.wrong > 0) {
        console.error(`FAIL: ${p.name}: legitimate clients got ${p.legit.answered}/${p.legit.sent} (${p.legit.wrong} wrong)`);
        failed = true;
      }
      if (p.dropped + p.slipped === 0) {
        console.error(`FAIL: ${p.name}: nothing was limited`);
        failed = true;
      }
    }
    if (!(perDrop < perAnswer)) {
      console.error('FAIL: a dropped query cost no less than an answered one');
      failed = true;
    }
    return failed ? 1 : 0;
  } finally {
    await stopAll();
    removeDir(dir);
  }
}
