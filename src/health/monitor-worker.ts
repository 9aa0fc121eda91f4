/**
 * The probing thread of the remote monitor (remote-monitor.ts): a
 * MonitorHost (monitor-host.ts) over the real checker, run below the
 * answering thread's priority. Its clock is the answering thread's
 * (workerData.epochAtHr0: epoch ms at hrtime 0 as the main thread reads it),
 * so the times it reports (since, lastCheckAt, when a health can next change)
 * mean the same there, even if the wall clock was stepped since the process started.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createChecker } from './checkers.ts';
import { MonitorHost } from './monitor-host.ts';
import type { FromMonitor, ToMonitor } from './monitor-protocol.ts';
import { realScheduler } from './monitor.ts';
import { TickScheduler } from './tick-scheduler.ts';
import { dropErrorStacks } from './error-stacks.ts';
import { lowerThisThread } from './thread-priority.ts';

const port = parentPort!;
lowerThisThread();
dropErrorStacks();
const data = (workerData ?? {}) as { sourceAddress?: string; epochAtHr0?: number };
const hrMs = () => Number(process.hrtime.bigint()) / 1e6;
// This thread's performance clock, corrected to the main thread's once (hrtime is the same in every thread).
const delta = data.epochAtHr0 === undefined ? 0 : data.epochAtHr0 + hrMs() - realScheduler.now();
/**
 * Timers end on the next multiple of TICK_MS (tick-scheduler.ts): the checks
 * due within one tick start together, so the thread wakes about 100 times a
 * second for 5,000 probes instead of at every one of them (each wake-up, its
 * epoll round and context switch cost more than the few probes it served). A
 * check starts at most TICK_MS late; its phase does not drift (the monitor
 * plans from its grid).
 */
export const TICK_MS = 10;
const scheduler = new TickScheduler(TICK_MS, () => realScheduler.now() + delta);
// fping (icmp checks) is spawned from this thread too: its stream is parsed here, off the answering thread.
const checker = createChecker({
  ...(data.sourceAddress ? { sourceAddress: data.sourceAddress } : {}),
  icmp: { log: (level, msg, fields) => port.postMessage({ kind: 'log', level, msg, fields } satisfies FromMonitor) },
});
const host = new MonitorHost({
  check: checker.check,
  closeChecker: () => checker.close(),
  scheduler,
  post: (m, transfer) => port.postMessage(m, transfer ?? []),
});
port.on('message', (m: ToMonitor) => {
  host.handle(m);
  if (m.kind === 'close') void host.close().then(() => port.close());
});
