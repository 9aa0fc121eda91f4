/**
 * `node bench/icmp.ts`: what `type: icmp` checks cost and how fast they see a
 * host go, with the real fping. Prints figures, asserts nothing.
 *
 *   1. N loopback targets (127.0.x.y, they all answer) checked every
 *      --interval with --timeout through the in-thread checker and the real
 *      monitor: fping processes and their periods, probes/s, echoes/s, the
 *      CPU of this process and of fping (share of one core, /proc), the
 *      failures seen (should be 0).
 *   2. One more target added: how long until its first result, and whether
 *      any other target failed across the fping restart.
 *   3. As root, in a network namespace of its own (test/support/netns.ts):
 *      an answering address stops answering; time until it is down with
 *      --fall, and back after --rise once it answers again (three trials).
 *
 * Bounded: fixed durations, every fping stopped by its PID through close(),
 * the namespace deleted.
 *
 *   node bench/icmp.ts [--targets 1000] [--interval 1s] [--timeout 500ms] [--seconds 10] [--fall 2] [--rise 2]
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CheckSchema, parseDuration } from '../src/config/health-check.ts';
import { createIcmpChecker } from '../src/health/icmp/icmp-checker.ts';
import { echoPeriodMs } from '../src/health/icmp/fping-plan.ts';
import { HealthMonitor } from '../src/health/monitor.ts';
import { makeTarget, type CheckTarget } from '../src/health/target.ts';
import { createNetns, netnsUnavailable } from '../test/support/netns.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const N = Math.min(5000, Number(arg('targets', '1000')));
const interval = arg('interval', '1s');
const timeout = arg('timeout', '500ms');
const seconds = Math.min(60, Number(arg('seconds', '10')));
const fall = Number(arg('fall', '2'));
const rise = Number(arg('rise', '2'));
const cfg = CheckSchema.parse({ type: 'icmp', interval, timeout, fall, rise });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HZ = 100; // USER_HZ on Linux

function cpuTicks(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

async function load(): Promise<void> {
  const addresses = Array.from({ length: N }, (_, i) => `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}`);
  const targets = addresses.map((a) => makeTarget(a, 'bench.test', cfg));
  const checker = createIcmpChecker();
  let probes = 0;
  let failures = 0;
  const firstFailures: string[] = [];
  const monitor = new HealthMonitor({
    check: checker.check,
    onResult: (s, o) => {
      probes++;
      if (!o.ok) {
        failures++;
        if (firstFailures.length < 3) firstFailures.push(`${s.address}: ${o.detail}`);
      }
    },
  });
  try {
    const t0 = performance.now();
    monitor.setTargets(targets);
    await monitor.firstRound();
    const firstRoundMs = performance.now() - t0;
    await sleep(2 * (parseDuration(interval) ?? 1000));
    const procs = checker.processes();
    const pids = procs.map((p) => p.pid!).filter(Boolean);
    const [p0, f0, c0, w0] = [probes, failures, process.cpuUsage(), performance.now()];
    const fping0 = pids.reduce((s, p) => s + cpuTicks(p), 0);
    await sleep(seconds * 1000);
    const wall = (performance.now() - w0) / 1000;
    const c = process.cpuUsage(c0);
    const fping = (pids.reduce((s, p) => s + cpuTicks(p), 0) - fping0) / HZ;
    const period = echoPeriodMs(cfg.timeout);
    console.log(`${N} loopback targets, interval ${cfg.interval}ms, timeout ${cfg.timeout}ms (echo period ${period}ms):`);
    console.log(`  fping processes: ${procs.length} (${procs.map((p) => `${p.addresses.length} targets`).join(', ')})`);
    console.log(`  first round: ${firstRoundMs.toFixed(0)} ms`);
    console.log(`  probes/s: ${((probes - p0) / wall).toFixed(0)} (expected ${((N * 1000) / cfg.interval).toFixed(0)}); echoes/s: ~${((N * 1000) / period).toFixed(0)} (${(cfg.interval / period).toFixed(1)} per target per interval)`);
    console.log(`  CPU: this process ${(((c.user + c.system) / 1e6 / wall) * 100).toFixed(1)}% of a core, fping ${((fping / wall) * 100).toFixed(1)}%`);
    console.log(`  failed probes during the measurement: ${failures - f0}${firstFailures.length ? ` (first: ${firstFailures.join('; ')})` : ''}`);

    const extra = makeTarget(`127.0.${Math.floor(N / 250) + 1}.1`, 'bench.test', cfg);
    const f1 = failures;
    const t1 = performance.now();
    monitor.setTargets([...targets, extra]);
    const got = await until(() => (monitor.state(extra.key)?.checks ?? 0) >= 1, 10_000);
    const addMs = performance.now() - t1;
    await sleep(2 * cfg.interval);
    console.log(`  one target added: first result after ${got ? `${addMs.toFixed(0)} ms` : 'more than 10 s'} (${monitor.state(extra.key)?.lastOutcome?.detail ?? '-'}); failed probes of the others across the fping restart: ${failures - f1}`);
  } finally {
    await monitor.close();
    await checker.close();
  }
}

async function detection(): Promise<void> {
  const why = netnsUnavailable();
  if (why) {
    console.log(`detection: skipped (${why})`);
    return;
  }
  const ns = createNetns();
  const checker = createIcmpChecker();
  const monitor = new HealthMonitor({ check: checker.check });
  try {
    const t: CheckTarget = makeTarget(ns.answering4, 'bench.test', cfg);
    monitor.setTargets([t]);
    const down: number[] = [];
    const up: number[] = [];
    for (let trial = 0; trial < 3; trial++) {
      if (!(await until(() => monitor.state(t.key)?.health === 'up' && monitor.state(t.key)!.consecutiveOk >= rise, 20_000))) break;
      // A random point in the interval, as a real failure would be.
      await sleep(Math.random() * cfg.interval);
      let at = performance.now();
      ns.stopAnswering(ns.answering4);
      if (!(await until(() => monitor.state(t.key)?.health === 'down', 20_000))) break;
      down.push(performance.now() - at);
      at = performance.now();
      ns.startAnswering(ns.answering4);
      if (!(await until(() => monitor.state(t.key)?.health === 'up', 20_000))) break;
      up.push(performance.now() - at);
    }
    const fmt = (a: number[]) => a.map((x) => (x / 1000).toFixed(2)).join(', ');
    console.log(`detection (interval ${cfg.interval}ms, timeout ${cfg.timeout}ms, fall ${fall}, rise ${rise}; worst case interval x fall + timeout = ${((cfg.interval * fall + cfg.timeout) / 1000).toFixed(2)} s):`);
    console.log(`  host stops answering -> down: ${fmt(down)} s`);
    console.log(`  host answers again   -> up:   ${fmt(up)} s`);
  } finally {
    ns.startAnswering(ns.answering4);
    await monitor.close();
    await checker.close();
    ns.close();
  }
}

await load();
await detection();
