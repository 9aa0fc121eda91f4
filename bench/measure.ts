/**
 * What the benchmarks measure with: one bounded dnsperf run, and a process's
 * CPU time from /proc. dnsperf stops itself after -l seconds (and is stopped
 * by PID if it overruns).
 */
import fs from 'node:fs';
import { startProcess } from '../test/support/spawn.ts';
import { toolPath } from '../test/support/tools.ts';

/** dnsperf -T / -c / -q as issue 11 measured with: two sending threads, 16 sockets, 200 queries in flight. */
export const THREADS = 2;
export const CLIENTS = 16;
/** Rate cap (queries/s) and outstanding-query cap: bounded load even on a fast machine. */
export const MAX_QPS = 200_000;
export const OUTSTANDING = 200;

export interface DnsperfOptions {
  /** dnsperf -m: udp (default) or tcp. */
  mode?: 'udp' | 'tcp';
  clients?: number;
  outstanding?: number;
  /** Extra dnsperf arguments (e.g. -T threads). */
  extra?: string[];
  /** Run dnsperf under `taskset -c CPUS` (pinned away from the server) when given. */
  cpus?: string | undefined;
}

export interface PerfResult {
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  lostText: string;
  latency: string;
}

/** One bounded dnsperf run against 127.0.0.1:port. */
export async function dnsperf(port: number, queryFile: string, seconds: number, opts: DnsperfOptions = {}): Promise<PerfResult> {
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(seconds), '-T', String(THREADS), '-c', String(opts.clients ?? CLIENTS), '-Q', String(MAX_QPS), '-q', String(opts.outstanding ?? OUTSTANDING), '-t', '2', ...(opts.mode === 'tcp' ? ['-m', 'tcp'] : []), ...(opts.extra ?? [])];
  const proc = opts.cpus ? startProcess('dnsperf', 'taskset', ['-c', opts.cpus, toolPath('dnsperf')!, ...args]) : startProcess('dnsperf', toolPath('dnsperf')!, args);
  // dnsperf stops itself after -l seconds plus its -t drain; this is only the backstop.
  const overrun = setTimeout(() => void proc.stop(2000), (seconds + 20) * 1000);
  const { code } = await proc.exited;
  clearTimeout(overrun);
  const out = proc.stdout();
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const qps = num(/Queries per second:\s+([\d.]+)/);
  if (!Number.isFinite(qps)) throw new Error(`dnsperf (exit ${code}) gave no figures:\n${out}\n${proc.stderr()}`);
  return {
    qps,
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    lostText: /Queries lost:\s+(.*)/.exec(out)?.[1]?.trim() ?? '?',
    latency: /Average Latency \(s\):\s+([\d.]+)/.exec(out)?.[1] ?? '?',
  };
}


/** CPU time (user + system) the process has used, in seconds, from /proc/PID/stat; undefined off Linux. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): utime is the 14th field, stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}


/** CPU seconds of each thread of `pid`, by thread id, from /proc/PID/task/TID/stat (USER_HZ 100); empty off Linux. */
export function threadCpu(pid: number): Map<number, { name: string; user: number; system: number }> {
  const out = new Map<number, { name: string; user: number; system: number }>();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { name, user: Number(f[11]) / 100, system: Number(f[12]) / 100 });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** One collection as `node --trace-gc` prints it: the isolate, the kind, the pause, and what V8 says started it. */
export interface GcTraceLine {
  /** `0x…`: which isolate (thread) collected; the first to print is the main thread's. */
  isolate: string;
  kind: string;
  ms: number;
  why: string;
}

/** `[pid:0x..]   4764 ms: Scavenge 106.1 (116.2) -> 101.6 (118.4) MB, pooled: 0 MB, 5.04 / 0.00 ms  (…) task;` */
const GC_TRACE_LINE = /^\[\d+:(0x[0-9a-f]+)\][^:]*ms: (Scavenge|Mark-Compact|Minor Mark-Sweep|Mark-Compact \(reduce\))[^,]*,(?: pooled: [\d.]+ MB,)? ([\d.]+) \/ [\d.]+ ms/;

/** A --trace-gc line read, or undefined for any other line. */
export function parseGcTraceLine(line: string): GcTraceLine | undefined {
  const m = GC_TRACE_LINE.exec(line);
  if (!m) return undefined;
  return { isolate: m[1]!, kind: m[2]!, ms: Number(m[3]), why: line.slice(line.lastIndexOf(')') + 1).replace(/;\s*$/, '').trim().slice(0, 120) };
}
