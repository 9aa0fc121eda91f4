/**
 * How many threads answer UDP (config udpThreads): a number as given, 0 for
 * one per core, or `auto` (the default), decided here from the machine.
 *
 * The `auto` rule comes from bench/threads.ts on a 2-core machine, where
 * dnsperf and rrdns share the cores: a second UDP thread never had a core of
 * its own. It took CPU from the client and from the kernel's loopback work
 * instead, each thread then found fewer datagrams per wake-up (smaller
 * recvmmsg batches on the native path, more epoll round trips on dgram), and
 * answers per server CPU-second fell (native x0.75-0.90, dgram x0.85-0.95)
 * for no reliable gain in QPS (x0.85-1.07 over the runs). So on <= 2 cores one thread is the better default. With
 * more cores, a thread per core has a core to run on, and the kernel spreads
 * clients over the SO_REUSEPORT sockets (Knot's `workers: auto` does the
 * same); that branch is not measured here (no such machine).
 */

/** What the configuration says: `auto`, 0 (one per core) or a count. */
export type UdpThreadsSetting = 'auto' | number;

export interface UdpThreadChoice {
  threads: number;
  /** Why, for the start-up log line. */
  why: string;
}

/** Most threads per address: the config bound. */
export const MAX_UDP_THREADS = 64;

/** At or below this many cores `auto` runs one thread (see above). */
export const AUTO_SINGLE_THREAD_CORES = 2;

/** The number of UDP threads per listen address for `setting` on a machine with `cores` cores (os.availableParallelism()). */
export function chooseUdpThreads(setting: UdpThreadsSetting, cores: number): UdpThreadChoice {
  const perCore = Math.max(1, Math.min(MAX_UDP_THREADS, Math.floor(cores)));
  if (setting === 0) return { threads: perCore, why: `udpThreads 0: one per core (${cores} cores)` };
  if (setting !== 'auto') return { threads: setting, why: `udpThreads ${setting} as configured` };
  if (cores <= AUTO_SINGLE_THREAD_CORES) {
    return {
      threads: 1,
      why: `auto: ${cores} core${cores === 1 ? '' : 's'}: no core free for a second UDP thread (it would share one with the clients and the kernel's packet work; measured: ~10% fewer answers per CPU-second for at most a few per cent more QPS, within the run-to-run spread)`,
    };
  }
  return { threads: perCore, why: `auto: ${cores} cores: one UDP thread per core (SO_REUSEPORT spreads clients over them)` };
}
