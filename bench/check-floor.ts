/**
 * What a keep-alive HTTP probe costs at the client, layer by layer: the floor
 * under `npm run bench:checks`'s figure. In this process (not rrdns), against
 * the same backends, at the same rate (`rate` probes a second, started in 10 ms
 * ticks like the probing thread's), each client in turn:
 *
 *   net      a request written on an idle net.Socket, the response's first
 *            chunk read: Node and the kernel, no HTTP parsing at all
 *   undici   undici's Pool.dispatch with an empty handler (the dispatch API
 *            rrdns uses, 16 connections per origin, no timers of ours)
 *   checker  rrdns's own checker (createChecker().check, keepAlive: true):
 *            undici plus the timeout, abort and outcome of each probe
 *   fresh    rrdns's checker with a new connection per probe (the default),
 *            at a fifth of the rate (this one process could not keep up)
 *
 * The checkers run as in the probing thread: with its error-stack setting
 * (src/health/error-stacks.ts), put back afterwards.
 *
 * It prints each one's CPU per probe (user + system of this process) and as a
 * share of one core at that rate. The monitor's own work (schedule, fall/rise,
 * the rows for the answering thread) is not in these figures: it is the
 * difference between rrdns's probing thread and `checker`.
 *
 * Bounded: each client runs for a fixed time; every socket and pool is closed.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Pool, type Dispatcher } from 'undici';
import { CheckSchema } from '../src/config/health-check.ts';
import { createChecker } from '../src/health/checkers.ts';
import { PROBING_STACK_TRACE_LIMIT } from '../src/health/error-stacks.ts';
import { makeTarget } from '../src/health/target.ts';

export interface FloorFigure {
  client: 'net' | 'undici' | 'checker' | 'fresh';
  probesPerS: number;
  usPerProbe: number;
  /** CPU as a share of one core at the measured rate. */
  cpuShare: number;
  failed: number;
}

interface Client {
  start(i: number): void;
  close(): Promise<void>;
}

/** The empty undici handler: counts, keeps nothing. */
class CountingHandler implements Dispatcher.DispatchHandler {
  readonly counts: { done: number; failed: number };
  constructor(counts: { done: number; failed: number }) {
    this.counts = counts;
  }
  onRequestStart(): void {}
  onResponseStart(): void {}
  onResponseData(): void {}
  onResponseEnd(): void {
    this.counts.done++;
  }
  onResponseError(): void {
    this.counts.failed++;
  }
}

function makeClient(kind: FloorFigure['client'], port: number, backends: readonly string[], names: readonly string[], counts: { done: number; failed: number }): Client {
  const backendOf = (i: number) => i % backends.length;
  if (kind === 'net') {
    const requests = names.map((n) => Buffer.from(`GET /health HTTP/1.1\r\nhost: ${n}\r\nuser-agent: rrdns-health-check\r\n\r\n`, 'latin1'));
    const idle: net.Socket[][] = backends.map(() => []);
    const all = new Set<net.Socket>();
    return {
      start(i) {
        const b = backendOf(i);
        const send = (s: net.Socket) => {
          // The backends answer with one small write: its first chunk is the whole response.
          s.once('data', () => {
            counts.done++;
            idle[b]!.push(s);
          });
          s.write(requests[i]!);
        };
        const s = idle[b]!.pop();
        if (s) return send(s);
        const c = net.connect({ host: backends[b]!, port });
        all.add(c);
        c.on('error', () => counts.failed++);
        c.once('connect', () => send(c));
      },
      async close() {
        for (const s of all) s.destroy();
      },
    };
  }
  if (kind === 'undici') {
    const pools = backends.map((b) => new Pool(`http://${b}:${port}`, { connections: 16, pipelining: 1, keepAliveTimeout: 4000 }));
    return {
      start(i) {
        pools[backendOf(i)]!.dispatch({ path: '/health', method: 'GET', headers: { host: names[i]!, 'user-agent': 'rrdns-health-check' } }, new CountingHandler(counts));
      },
      async close() {
        await Promise.allSettled(pools.map((p) => p.destroy()));
      },
    };
  }
  const checker = createChecker();
  const config = CheckSchema.parse({ type: 'http', port, path: '/health', interval: '1s', timeout: '500ms', keepAlive: kind === 'checker' });
  const targets = names.map((n, i) => makeTarget(backends[backendOf(i)]!, n, config));
  const signal = new AbortController().signal;
  return {
    start(i) {
      void checker.check(targets[i]!, signal).then((o) => (o.ok ? counts.done++ : counts.failed++));
    },
    close: () => checker.close(),
  };
}

/** One client at `rate` probes a second over `names` (round robin over `backends`): warm-up, then `seconds` measured. */
async function measure(kind: FloorFigure['client'], port: number, backends: readonly string[], names: readonly string[], rate: number, seconds: number): Promise<FloorFigure> {
  const counts = { done: 0, failed: 0 };
  const client = makeClient(kind, port, backends, names, counts);
  const stackLimit = Error.stackTraceLimit;
  if (kind === 'checker' || kind === 'fresh') Error.stackTraceLimit = PROBING_STACK_TRACE_LIMIT;
  const perTick = Math.max(1, Math.round(rate / 100));
  let next = 0;
  const tick = setInterval(() => {
    for (let k = 0; k < perTick; k++) client.start(next++ % names.length);
  }, 10);
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const cpu0 = process.cpuUsage();
    const done0 = counts.done;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const wall = (performance.now() - t0) / 1000;
    const probes = counts.done - done0;
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return { client: kind, probesPerS: probes / wall, usPerProbe: (cpuSeconds / Math.max(1, probes)) * 1e6, cpuShare: cpuSeconds / wall, failed: counts.failed };
  } finally {
    clearInterval(tick);
    // In-flight probes end (or fail) before the next client starts.
    await new Promise((r) => setTimeout(r, 600));
    await client.close();
    Error.stackTraceLimit = stackLimit;
  }
}

/** Each client in turn, `net` first (the floor), then undici, then rrdns's checker. */
export async function measureClientFloor(port: number, backends: readonly string[], names: readonly string[], rate: number, seconds: number): Promise<FloorFigure[]> {
  const out: FloorFigure[] = [];
  for (const kind of ['net', 'undici', 'checker', 'fresh'] as const) out.push(await measure(kind, port, backends, names, kind === 'fresh' ? Math.ceil(rate / 5) : rate, seconds));
  return out;
}
