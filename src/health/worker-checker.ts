/**
 * The checker run in a worker thread: the same probes as createChecker
 * (checkers.ts), but their work (undici, sockets, parsing, timers) happens on
 * a thread of its own, so 5,000 probes a second never share the answering
 * thread's event loop. This side keeps the Checker contract the monitor uses
 * (one promise per probe, never rejects, honours the abort signal); the
 * monitor, the verdicts and every health state stay on the main thread.
 *
 * Traffic is batched both ways: the probes started within a few ms go in one
 * message, the outcomes finished within 10 ms come back in one (a message per
 * event-loop turn made the messages a large part of the cost). A target's definition is sent once per key, not
 * with every probe.
 *
 * A worker that dies (an uncaught error, an exit, terminate) is restarted,
 * after a delay that grows while it keeps dying (100 ms doubling to 5 s,
 * reset after a minute without one). Probes it was running are sent again to
 * the new worker once; a probe whose worker dies twice fails with a detail
 * that says so. Health states are not lost: they live in the monitor.
 *
 * When a worker cannot be created at all (a platform without worker threads),
 * probes run in this thread through createChecker.
 */
import { Worker } from 'node:worker_threads';
// Types only: undici (through checkers.ts) is loaded on this thread only when the worker cannot start.
import type { createChecker, CheckOutcome, Checker } from './checkers.ts';
import type { IcmpLog } from './icmp/icmp-checker.ts';
import type { CheckTarget } from './target.ts';
import type { FromChecker, ToChecker } from './worker-protocol.ts';
import { PROBING_RESOURCE_LIMITS } from './probing-heap.ts';

export interface WorkerCheckerOptions {
  /** Called when the worker died; the restart follows after `restartInMs`. */
  onCrash?: (error: unknown, restartInMs: number) => void;
  /** Called when no worker can be started and probes run in this thread. */
  onFallback?: (error: unknown) => void;
  /** What the checker logs (fping, for icmp checks, dying or writing garbage). */
  onLog?: IcmpLog;
  /** Bound on close(): after it the worker is terminated (default 5000 ms). */
  closeTimeoutMs?: number;
  /** Local address probes of its family connect from (--check-source-address; the worker's checker gets it). */
  sourceAddress?: string;
}

export interface WorkerChecker {
  check: Checker;
  /** Idempotent: aborts what runs, closes the worker's connections, ends the thread. */
  close(): Promise<void>;
  /**
   * Starts the thread if it has not started and resolves once it listens (or
   * probes run in this thread), at most `boundMs` later: the first round of
   * checks must not spend its timeouts on the thread's start-up.
   */
  ready(boundMs?: number): Promise<void>;
  /** How many times the worker was restarted after dying. */
  readonly restarts: number;
  /** The running worker (tests make it die). */
  workerForTest(): Worker | undefined;
}

interface Probe {
  id: number;
  target: CheckTarget;
  resolve: (o: CheckOutcome) => void;
  signal: AbortSignal;
  onAbort: () => void;
  /** Workers that died while running it. */
  deaths: number;
  started: number;
}

const SWEEP_MS = 60_000;
/**
 * Probes started within this many ms go to the worker in one message (each
 * message wakes the worker; the probe's own timeout starts when it arrives, the
 * monitor's guard allows a second more). Aborts travel the same way.
 */
const BATCH_MS = 5;
const failed = (detail: string, latencyMs = 0): CheckOutcome => ({ ok: false, detail, latencyMs });

export function createWorkerChecker(opts: WorkerCheckerOptions = {}): WorkerChecker {
  const file = import.meta.url.endsWith('.ts') ? './checker-worker.ts' : './checker-worker.js';
  const url = new URL(file, import.meta.url);
  const pending = new Map<number, Probe>();
  /** Keys whose target the current worker holds: when each was last probed, and its interval. */
  const sent = new Map<string, { at: number; interval: number }>();
  let nextId = 1;
  let worker: Worker | undefined;
  let fallback: ReturnType<typeof createChecker> | undefined;
  /** The in-thread checker being loaded (no worker): probes asked meanwhile wait in `pending`. */
  let fallbackLoading: Promise<void> | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let restarts = 0;
  const recentDeaths: number[] = [];
  let closed = false;
  let closing: Promise<void> | undefined;

  // The batch being filled this turn.
  let targets: CheckTarget[] = [];
  let forget: string[] = [];
  let probes: (number | string)[] = [];
  let cancels: number[] = [];
  let flushQueued = false;

  const flush = () => {
    flushQueued = false;
    if (!worker || (probes.length === 0 && cancels.length === 0 && forget.length === 0)) return;
    const msg: ToChecker = { kind: 'batch', targets, forget, probes, cancels };
    targets = [];
    forget = [];
    probes = [];
    cancels = [];
    worker.postMessage(msg);
  };
  const queueFlush = () => {
    if (flushQueued) return;
    flushQueued = true;
    setTimeout(flush, BATCH_MS).unref();
  };

  const send = (p: Probe) => {
    const key = p.target.key;
    const known = sent.get(key);
    if (known) known.at = Date.now();
    else {
      sent.set(key, { at: Date.now(), interval: p.target.config.interval });
      targets.push(p.target);
    }
    probes.push(p.id, key);
    queueFlush();
  };

  const settle = (p: Probe, outcome: CheckOutcome) => {
    if (!pending.delete(p.id)) return;
    p.signal.removeEventListener('abort', p.onAbort);
    p.resolve(outcome);
  };

  /** Waiting for the current worker's `ready`. */
  let readyWaiters: (() => void)[] = [];
  let listening = false;
  const wakeReady = () => {
    const waiters = readyWaiters;
    readyWaiters = [];
    for (const w of waiters) w();
  };

  const onMessage = (m: FromChecker) => {
    if (m.kind === 'ready') {
      listening = true;
      wakeReady();
      return;
    }
    if (m.kind === 'log') return opts.onLog?.(m.level, m.msg, m.fields);
    if (m.kind !== 'results') return;
    for (let i = 0; i < m.ids.length; i++) {
      const p = pending.get(m.ids[i]!);
      if (p) settle(p, m.outcomes[i]!);
    }
  };

  const start = () => {
    restartTimer = undefined;
    if (closed) return;
    let w: Worker;
    try {
      w = new Worker(url, { name: 'rrdns-health', resourceLimits: PROBING_RESOURCE_LIMITS, workerData: { sourceAddress: opts.sourceAddress } });
    } catch (e) {
      opts.onFallback?.(e);
      fallbackLoading = import('./checkers.ts').then(({ createChecker }) => {
        const f = createChecker({ ...(opts.sourceAddress ? { sourceAddress: opts.sourceAddress } : {}), ...(opts.onLog ? { icmp: { log: opts.onLog } } : {}) });
        fallback = f;
        wakeReady();
        for (const p of [...pending.values()]) void f.check(p.target, p.signal).then((o) => settle(p, o));
      }, (err: unknown) => {
        // Neither a thread nor the module: every probe fails with the reason, none hangs.
        wakeReady();
        for (const p of [...pending.values()]) settle(p, failed(`checker unavailable: ${(err as Error)?.message ?? String(err)}`));
      });
      return;
    }
    // The monitor's timers never keep a process alive; neither does its worker.
    w.unref();
    worker = w;
    listening = false;
    sent.clear();
    w.on('message', onMessage);
    w.on('error', () => {}); // 'exit' follows and decides
    w.once('exit', (code) => {
      if (worker === w) worker = undefined;
      if (closed) return;
      died(new Error(`health-check worker exited with code ${code}`));
    });
    for (const p of pending.values()) send(p);
  };

  const died = (error: unknown) => {
    restarts++;
    const now = Date.now();
    recentDeaths.push(now);
    while (recentDeaths.length > 0 && recentDeaths[0]! < now - 60_000) recentDeaths.shift();
    const delay = Math.min(5000, 100 * 2 ** (recentDeaths.length - 1));
    // The batch was for the dead worker; what still runs is sent again from `pending` on restart.
    targets = [];
    forget = [];
    probes = [];
    cancels = [];
    for (const p of [...pending.values()]) {
      p.deaths++;
      if (p.deaths > 1) settle(p, failed('checker error: the health-check worker died twice during this probe', Date.now() - p.started));
    }
    opts.onCrash?.(error, delay);
    restartTimer = setTimeout(start, delay);
    restartTimer.unref();
  };

  // Targets not probed for a while (removed by a reload) are dropped from the worker.
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, s] of sent) {
      if (now - s.at > Math.max(SWEEP_MS, 2 * s.interval)) {
        sent.delete(key);
        forget.push(key);
      }
    }
    if (forget.length > 0) queueFlush();
  }, SWEEP_MS);
  sweep.unref();

  // The thread starts with the first probe (or ready()): zones without health checks never pay for its isolate (~40 MB).
  let started = false;
  const startOnce = () => {
    if (started) return;
    started = true;
    start();
  };

  const check: Checker = (target, signal) => {
    if (closed) return Promise.resolve(failed('checker closed'));
    if (signal.aborted) return Promise.resolve(failed('aborted'));
    startOnce();
    if (fallback) return fallback.check(target, signal);
    return new Promise<CheckOutcome>((resolve) => {
      const id = nextId++;
      const p: Probe = {
        id,
        target,
        resolve,
        signal,
        deaths: 0,
        started: Date.now(),
        // Settled here at once (the monitor moves on); the worker is told to drop the probe and release its socket.
        onAbort: () => {
          if (worker) {
            cancels.push(id);
            queueFlush();
          }
          settle(p, failed('aborted', Date.now() - p.started));
        },
      };
      pending.set(id, p);
      signal.addEventListener('abort', p.onAbort, { once: true });
      if (worker) send(p);
    });
  };

  return {
    check,
    ready(boundMs = 10_000) {
      if (closed) return Promise.resolve();
      startOnce();
      if (fallback || listening) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const bound = setTimeout(resolve, boundMs);
        bound.unref();
        readyWaiters.push(() => {
          clearTimeout(bound);
          resolve();
        });
      });
    },
    get restarts() {
      return restarts;
    },
    workerForTest: () => worker,
    close() {
      closing ??= (async () => {
        closed = true;
        wakeReady();
        clearInterval(sweep);
        if (restartTimer) clearTimeout(restartTimer);
        for (const p of [...pending.values()]) settle(p, failed('checker closed', Date.now() - p.started));
        await fallbackLoading;
        if (fallback) await fallback.close();
        const w = worker;
        if (!w) return;
        // The worker closes its checker (every socket) and says so; past the bound it is terminated.
        await new Promise<void>((resolve) => {
          const bound = setTimeout(() => void w.terminate().then(() => resolve()), opts.closeTimeoutMs ?? 5000);
          w.on('message', (m: FromChecker) => {
            if (m.kind === 'closed') {
              clearTimeout(bound);
              resolve();
            }
          });
          w.once('exit', () => {
            clearTimeout(bound);
            resolve();
          });
          w.postMessage({ kind: 'close' } satisfies ToChecker);
        });
        await w.terminate();
        worker = undefined;
      })();
      return closing;
    },
  };
}
