/**
 * `npm run bench:threads` (`npm run bench -- --threads`): does a second UDP
 * thread help? rrdns alone, on the native (recvmmsg/sendmmsg) and dgram
 * paths, with `--udp-threads 1` and `2`, each driven by dnsperf with the mix
 * of bench/mix.ts, in alternating rounds (all four servers run side by side,
 * idle but one, so drift on a shared machine hits each alike).
 *
 * Per server: QPS, server CPU share (all its threads), answers per server
 * CPU-second, how that CPU splits over its threads (from
 * /proc/PID/task/TID/stat: the REUSEPORT spread and the main thread's
 * share), and the whole machine's idle share during the run (none left
 * means a second server thread can only take CPU from dnsperf). Per thread
 * count: scaling efficiency = QPS(2) / (2 x QPS(1)) and the ratio of
 * answers per CPU-second, 2 threads against 1.
 *
 * Pinning (BENCH_PIN=1, or `--pin`): rrdns on the upper half of the cores
 * (taskset -a -cp on every thread), dnsperf on the lower half, so the load
 * generator never takes the server's cores. On a 2-core machine that is one
 * core each: two rrdns threads then share one core, so the pinned figures
 * show what splitting costs per CPU-second, not scaling (which needs N free
 * cores for N threads). Unpinned (the default) is the figure `auto` is
 * chosen by: the machine as it runs, client included.
 *
 * Where perf can count tracepoints (root here), each run also counts the
 * server's receive calls and event-loop waits (BENCH_SYSCALLS=0: not).
 *
 * Rounds BENCH_ROUNDS (default 3) of BENCH_SECONDS (default 3) per server.
 * Everything on 127.0.0.1; servers and dnsperf stopped by PID.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeDir, startProcess, startRrdns, stopAll, tempDir, type RrdnsProcess } from '../test/support/spawn.ts';
import { ensureTool, toolPath } from '../test/support/tools.ts';
import { ORIGIN, QUERIES, ZONE } from './mix.ts';
import { CLIENTS, THREADS, cpuSeconds, dnsperf, MAX_QPS, OUTSTANDING, threadCpu, type PerfResult } from './measure.ts';

interface Config {
  io: 'native' | 'dgram';
  threads: number;
  server: RrdnsProcess;
}

interface Run {
  perf: PerfResult;
  /** Server CPU seconds, all threads. */
  cpu: number;
  /** CPU seconds per thread of the server, busiest first (threads that used under 2% of the run left out). */
  tasks: { tid: number; name: string; cpu: number }[];
  /** Share of the machine's CPU time that was idle during the run. */
  idle: number;
  /** System calls the server made during the run (perf stat), when perf can count them. */
  syscalls: Syscalls | undefined;
}

interface Syscalls {
  recvmmsg: number;
  recvmsg: number;
  epoll: number;
}

/** The tracepoints counted: the receive calls of both paths and the event loop's waits. */
const EVENTS = ['recvmmsg', 'recvmsg', 'epoll_pwait', 'epoll_wait'].map((s) => `syscalls:sys_enter_${s}`);

/**
 * Counts the server's system calls for `seconds` with `perf stat -p` (needs
 * perf and tracepoint access: root, or perf_event_paranoid <= -1). How many
 * datagrams one recvmmsg returns, and how often the event loop waits, per
 * answer, is what a second thread changes.
 */
function countSyscalls(pid: number, seconds: number): { done: Promise<Syscalls | undefined> } {
  const perf = toolPath('perf');
  if (!perf || process.env.BENCH_SYSCALLS === '0') return { done: Promise.resolve(undefined) };
  const proc = startProcess('perf', perf, ['stat', '-x', ',', '-e', EVENTS.join(','), '-p', String(pid), '--', 'sleep', String(seconds)]);
  return {
    done: proc.exited.then(({ code }) => {
      if (code !== 0) return undefined;
      const n = (name: string) => Number(new RegExp(`^(\\d+),[^\\n]*sys_enter_${name}\\b`, 'm').exec(proc.stderr())?.[1] ?? NaN);
      const out = { recvmmsg: n('recvmmsg'), recvmsg: n('recvmsg'), epoll: n('epoll_pwait') + (n('epoll_wait') || 0) };
      return Number.isFinite(out.recvmmsg) ? out : undefined;
    }),
  };
}

/** CPU seconds of each thread of `pid` (Linux /proc; empty elsewhere). */
function taskCpu(pid: number): Map<number, { name: string; cpu: number }> {
  return new Map([...threadCpu(pid)].map(([tid, t]) => [tid, { name: t.name, cpu: t.user + t.system }]));
}

/** Idle and total jiffies of the whole machine (/proc/stat `cpu` line). */
function machineTimes(): { idle: number; total: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    return { idle: v[3]! + (v[4] ?? 0), total: v.reduce((a, b) => a + b, 0) };
  } catch {
    return { idle: NaN, total: NaN };
  }
}

/** Sets the CPU affinity of every thread of `pid` (taskset -a). */
function pin(pid: number, cpus: string): void {
  execFileSync(toolPath('taskset')!, ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
}

async function run(c: Config, file: string, seconds: number, dnsperfCpus: string | undefined): Promise<Run> {
  const t0 = taskCpu(c.server.pid);
  const m0 = machineTimes();
  const before = cpuSeconds(c.server.pid);
  const counting = countSyscalls(c.server.pid, seconds);
  const perf = await dnsperf(c.server.port, file, seconds, { cpus: dnsperfCpus });
  const after = cpuSeconds(c.server.pid);
  const syscalls = await counting.done;
  const m1 = machineTimes();
  const t1 = taskCpu(c.server.pid);
  const tasks = [...t1]
    .map(([tid, t]) => ({ tid, name: t.name, cpu: t.cpu - (t0.get(tid)?.cpu ?? 0) }))
    .filter((t) => t.cpu >= 0.02 * seconds)
    .sort((a, b) => b.cpu - a.cpu);
  return { perf, cpu: before !== undefined && after !== undefined ? after - before : NaN, tasks, idle: (m1.idle - m0.idle) / (m1.total - m0.total), syscalls };
}

const median = (xs: number[]) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
const k = (n: number) => `${(n / 1000).toFixed(0)}k`;
const pct = (n: number) => `${(100 * n).toFixed(0)}%`;

/** One line per run: QPS, CPU, efficiency, the split over the server's threads and the machine's idle share. */
function report(c: Config, r: Run, seconds: number): void {
  const split = r.tasks.map((t) => `${t.name}:${pct(t.cpu / seconds)}`).join(' ');
  const sc = r.syscalls;
  // Per answer: datagrams per receive call (native: per recvmmsg batch; dgram: 1), event-loop waits per 100 answers.
  const calls = sc ? `  ${(r.perf.completed / (c.io === 'native' ? sc.recvmmsg : sc.recvmsg)).toFixed(1)} datagrams/receive call, ${((100 * sc.epoll) / r.perf.completed).toFixed(1)} epoll waits/100 answers` : '';
  console.log(
    `  ${c.io.padEnd(6)} x${c.threads}  ${r.perf.qps.toFixed(0).padStart(7)} QPS  server CPU ${pct(r.cpu / seconds).padStart(4)}  ${k(r.perf.completed / r.cpu).padStart(5)} answers/CPU-s  threads [${split}]  machine idle ${pct(r.idle)}${calls}  lost ${r.perf.lostText}`,
  );
}

export async function threadsBench(): Promise<number> {
  if (!ensureTool('dnsperf', 'dnsperf')) {
    console.error('bench:threads needs dnsperf (Debian package dnsperf)');
    return 1;
  }
  const rounds = Math.min(Math.max(Math.round(Number(process.env.BENCH_ROUNDS ?? 3) || 3), 1), 20);
  const seconds = Math.min(Math.max(Math.round(Number(process.env.BENCH_SECONDS ?? 3) || 3), 1), 60);
  const cores = os.availableParallelism();
  const wantPin = process.argv.includes('--pin') || process.env.BENCH_PIN === '1';
  const canPin = wantPin && cores >= 2 && ensureTool('taskset', 'util-linux');
  if (wantPin && !canPin) console.warn('bench:threads: pinning needs taskset and at least 2 cores; running unpinned');
  // Lower half for dnsperf, upper half for rrdns (on 2 cores: core 0 and core 1).
  const half = Math.floor(cores / 2);
  const clientCpus = canPin ? `0-${half - 1}` : undefined;
  const serverCpus = canPin ? `${half}-${cores - 1}` : undefined;
  const dir = tempDir('bench-threads');
  try {
    const zonesDir = path.join(dir, 'zones');
    fs.mkdirSync(zonesDir);
    fs.writeFileSync(path.join(zonesDir, `${ORIGIN}.zone`), ZONE);
    const file = path.join(dir, 'queries.txt');
    fs.writeFileSync(file, QUERIES.join('\n') + '\n');
    console.log(
      `bench:threads: rrdns --udp-threads 1 vs 2 on the native and dgram UDP paths, ${rounds} alternating rounds of ${seconds} s; ` +
        `dnsperf -T ${THREADS} -c ${CLIENTS} -q ${OUTSTANDING} -Q ${MAX_QPS} on 127.0.0.1; ${cores} cores; ` +
        (canPin ? `pinned: dnsperf on CPU ${clientCpus}, rrdns (every thread) on CPU ${serverCpus}` : 'unpinned (client and server share every core)'),
    );
    const configs: Config[] = [];
    for (const io of ['native', 'dgram'] as const) {
      for (const threads of [1, 2]) {
        const server = await startRrdns({ zonesDir, logLevel: 'info', args: ['--udp-threads', String(threads), '--udp-io', io, '--no-watch', '--admin', 'off'] });
        const started = server.logs.find((l) => l.msg === 'rrdns listening') as { udpIo?: { path: string } } | undefined;
        if (started?.udpIo?.path !== io) {
          console.warn(`  --udp-io ${io}: the server uses ${started?.udpIo?.path ?? '?'} (addon not built?); skipped`);
          await server.close();
          continue;
        }
        if (serverCpus) pin(server.pid, serverCpus);
        configs.push({ io, threads, server });
      }
    }
    // Warm-up (JIT, answer caches in every thread), not reported.
    for (const c of configs) await dnsperf(c.server.port, file, 1, { cpus: clientCpus });
    const runs = new Map<Config, Run[]>(configs.map((c) => [c, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const c of configs) {
        const r = await run(c, file, seconds, clientCpus);
        report(c, r, seconds);
        runs.get(c)!.push(r);
      }
    }
    for (const c of configs) if (!c.server.running()) throw new Error(`rrdns (${c.io} x${c.threads}) exited during the bench:\n${c.server.stderr()}`);
    console.log('\n| UDP path | threads | QPS | server CPU | answers per server CPU-second | busiest thread / all server threads | machine idle | datagrams per receive call | epoll waits per 100 answers |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    const summary = new Map<string, { qps: number; eff: number }>();
    for (const c of configs) {
      const rs = runs.get(c)!;
      const qps = median(rs.map((r) => r.perf.qps));
      const eff = median(rs.map((r) => r.perf.completed / r.cpu));
      const top = median(rs.map((r) => (r.tasks[0]?.cpu ?? NaN) / r.cpu));
      summary.set(`${c.io}/${c.threads}`, { qps, eff });
      const batch = median(rs.map((r) => (r.syscalls ? r.perf.completed / (c.io === 'native' ? r.syscalls.recvmmsg : r.syscalls.recvmsg) : NaN)));
      const waits = median(rs.map((r) => (r.syscalls ? (100 * r.syscalls.epoll) / r.perf.completed : NaN)));
      const opt = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
      console.log(`| ${c.io} | ${c.threads} | ${qps.toFixed(0)} | ${pct(median(rs.map((r) => r.cpu / seconds)))} | ${k(eff)} | ${pct(top)} | ${pct(median(rs.map((r) => r.idle)))} | ${opt(batch)} | ${opt(waits)} |`);
    }
    console.log('');
    for (const io of ['native', 'dgram']) {
      const one = summary.get(`${io}/1`);
      const two = summary.get(`${io}/2`);
      if (!one || !two) continue;
      // Perfect scaling doubles QPS: 100%. Under 50% means two threads answer less than one did.
      console.log(
        `${io}: 2 threads vs 1: QPS x${(two.qps / one.qps).toFixed(2)} (per-thread efficiency ${pct(two.qps / (2 * one.qps))}), answers per server CPU-second x${(two.eff / one.eff).toFixed(2)}: ${Math.abs(two.qps / one.qps - 1) < 0.05 ? 'a tie in QPS (within 5%, under the noise of a shared machine)' : two.qps > one.qps ? 'two threads are faster' : 'one thread is faster'}`,
      );
    }
    return 0;
  } finally {
    await stopAll();
    removeDir(dir);
  }
}
