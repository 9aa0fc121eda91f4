/**
 * The `type: icmp` checker: the monitor's one-promise-per-probe contract on
 * top of long-running fping processes (fping-plan.ts says how many and why).
 *
 * A probe of address A with timeout τ that starts at T passes when fping
 * reports a reply from A to an echo sent at or after T (read time minus the
 * round trip), before T + τ; otherwise it fails at T + τ, saying what was
 * seen (echoes unanswered, an ICMP error, fping not running and why). Any
 * number of checks of A share its echoes.
 *
 * The target set is learnt from the probes themselves: a probe of an address
 * fping does not have adds it (its process is restarted with it, changes
 * within `settleMs` together), and an address not probed for two intervals
 * plus its timeout (removed by a reload, a cold standby) is taken out the
 * same way. A restart costs no state (the health states live in the monitor)
 * and no probe: the new fping sends its first echoes at once.
 *
 * fping dying is a crash: it is restarted after 100 ms doubling to 5 s while
 * it keeps dying (a minute without a death resets that), each death is
 * logged, and meanwhile probes fail with a detail naming what happened. fping
 * missing gives the same, with a message naming fping and how to install it.
 */
import { performance } from 'node:perf_hooks';
import type { CheckOutcome, Checker } from '../checkers.ts';
import type { CheckTarget } from '../target.ts';
import { fpingMissingMessage, locateFping } from './fping-locate.ts';
import { fpingArgs, idleLimitMs, placeTarget, processCapacity, echoPeriodMs, restartDelayMs } from './fping-plan.ts';
import { FpingProcess } from './fping-process.ts';
import type { FpingLine } from './fping-output.ts';

export type IcmpLogLevel = 'info' | 'warn' | 'error';
export type IcmpLog = (level: IcmpLogLevel, msg: string, fields: Record<string, unknown>) => void;

export interface IcmpCheckerOptions {
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
  /** Finds fping (default: on PATH, looked up at each start). */
  locate?: () => string | undefined;
  log?: IcmpLog;
  /** How often idle targets are looked for (default 1000 ms). */
  sweepMs?: number;
  /** Target-set changes within this many ms restart fping once (default 10 ms). */
  settleMs?: number;
}

/** One fping process as the checker sees it (the admin side and tests read it). */
export interface FpingInfo {
  pid: number | undefined;
  running: boolean;
  timeoutMs: number;
  periodMs: number;
  addresses: string[];
  /** Why it is not running, when it is not. */
  down?: string;
}

export interface IcmpChecker {
  check: Checker;
  processes(): FpingInfo[];
  /** Idempotent: fails what waits, stops every fping by its PID and resolves once they have exited. */
  close(): Promise<void>;
}

interface Waiter {
  start: number;
  member: Member;
  /** Echoes sent during this probe that fping reported unanswered. */
  lost: number;
  resolve: (o: CheckOutcome) => void;
  timer: NodeJS.Timeout;
  signal: AbortSignal;
  onAbort: () => void;
}

interface Member {
  address: string;
  slot: Slot;
  lastProbeAt: number;
  idleLimit: number;
  waiters: Set<Waiter>;
  lastError?: { message: string; at: number };
}

/** One fping process's place: its targets, the process when it runs, its restart state. */
interface Slot {
  timeoutMs: number;
  members: Map<string, Member>;
  proc?: FpingProcess | undefined;
  startTimer?: NodeJS.Timeout | undefined;
  /** A restart after a death waits until then. */
  notBefore: number;
  deaths: number[];
  down?: string | undefined;
  /** Garbage lines logged (the first few only). */
  garbageLogged: number;
}

const DEATH_WINDOW_MS = 60_000;
const GARBAGE_LOG_LINES = 3;
const toMicros = (n: number) => Math.max(0, Math.round(n * 1000) / 1000);

export function createIcmpChecker(opts: IcmpCheckerOptions = {}): IcmpChecker {
  const now = opts.now ?? (() => performance.now());
  const locate = opts.locate ?? (() => locateFping());
  const log: IcmpLog = opts.log ?? (() => {});
  const settleMs = opts.settleMs ?? 10;
  /** Timeout → its slots (processes), in placement order. */
  const groups = new Map<number, Slot[]>();
  /** `${timeout}|${address}` → member. */
  const members = new Map<string, Member>();
  const stopping = new Set<Promise<void>>();
  let closed = false;
  let closing: Promise<void> | undefined;

  const settle = (w: Waiter, outcome: CheckOutcome) => {
    if (!w.member.waiters.delete(w)) return;
    clearTimeout(w.timer);
    w.signal.removeEventListener('abort', w.onAbort);
    w.resolve(outcome);
  };

  const stopProc = (p: FpingProcess) => {
    const s = p.stop();
    stopping.add(s);
    void s.then(() => stopping.delete(s));
  };

  const scheduleStart = (slot: Slot) => {
    if (closed || slot.startTimer) return;
    const delay = Math.max(settleMs, slot.notBefore - now());
    slot.startTimer = setTimeout(() => startSlot(slot), delay);
  };

  const died = (slot: Slot, why: string, pid: number | undefined) => {
    const t = now();
    slot.deaths.push(t);
    while (slot.deaths.length > 0 && slot.deaths[0]! < t - DEATH_WINDOW_MS) slot.deaths.shift();
    const delay = restartDelayMs(slot.deaths.length);
    slot.down = `${why}; restarting it in ${delay}ms`;
    slot.notBefore = t + delay;
    log('error', 'fping (icmp checks) is not running; restarting it', { reason: why, pid, restartInMs: delay, targets: slot.members.size });
    scheduleStart(slot);
  };

  const onLine = (slot: Slot, line: FpingLine, readAt: number) => {
    const m = slot.members.get(line.address);
    if (!m) return;
    if (line.kind === 'reply') {
      const sentAt = readAt - line.rttMs;
      for (const w of [...m.waiters]) {
        if (w.start <= sentAt) settle(w, { ok: true, detail: `ICMP echo reply in ${toMicros(line.rttMs)}ms`, latencyMs: toMicros(line.rttMs) });
      }
    } else {
      const sentAt = readAt - slot.timeoutMs;
      for (const w of m.waiters) if (w.start <= sentAt) w.lost++;
    }
  };

  function startSlot(slot: Slot): void {
    slot.startTimer = undefined;
    if (closed) return;
    const old = slot.proc;
    slot.proc = undefined;
    if (old) stopProc(old);
    if (slot.members.size === 0) {
      slot.down = undefined;
      return;
    }
    const file = locate();
    if (file === undefined) return died(slot, fpingMissingMessage(), undefined);
    const addresses = [...slot.members.keys()];
    const proc: FpingProcess = new FpingProcess({
      file,
      args: fpingArgs(slot.timeoutMs, addresses),
      now,
      events: {
        onLine: (line, at) => {
          if (slot.proc === proc) onLine(slot, line, at);
        },
        onIcmpError: (e, at) => {
          const m = slot.proc === proc ? slot.members.get(e.address) : undefined;
          if (m) m.lastError = { message: e.message, at };
        },
        onExit: (why) => {
          if (slot.proc !== proc) return;
          slot.proc = undefined;
          died(slot, why, proc.pid);
        },
        onGarbage: (line, stream) => {
          if (slot.proc !== proc || slot.garbageLogged >= GARBAGE_LOG_LINES) return;
          slot.garbageLogged++;
          log('warn', 'fping wrote a line rrdns does not understand (ignored)', { stream, line: line.slice(0, 200), pid: proc.pid });
        },
      },
    });
    slot.proc = proc;
    slot.down = undefined;
  }

  const memberFor = (target: CheckTarget): Member => {
    const timeoutMs = target.config.timeout;
    const key = `${timeoutMs}|${target.address}`;
    let m = members.get(key);
    if (m) return m;
    let slots = groups.get(timeoutMs);
    if (!slots) groups.set(timeoutMs, (slots = []));
    const i = placeTarget(
      slots.map((s) => s.members.size),
      processCapacity(echoPeriodMs(timeoutMs)),
    );
    const slot = (slots[i] ??= { timeoutMs, members: new Map(), notBefore: 0, deaths: [], garbageLogged: 0 });
    m = { address: target.address, slot, lastProbeAt: now(), idleLimit: 0, waiters: new Set() };
    members.set(key, m);
    slot.members.set(target.address, m);
    scheduleStart(slot);
    return m;
  };

  // Addresses no longer probed leave fping.
  const sweep = setInterval(() => {
    const t = now();
    for (const [key, m] of members) {
      if (m.waiters.size > 0 || t - m.lastProbeAt <= m.idleLimit) continue;
      members.delete(key);
      m.slot.members.delete(m.address);
      scheduleStart(m.slot);
    }
  }, opts.sweepMs ?? 1000);
  sweep.unref();

  const failDetail = (w: Waiter): string => {
    const slot = w.member.slot;
    const within = `no ICMP echo reply within ${slot.timeoutMs}ms`;
    if (!slot.proc) return slot.down ? `${within}: ${slot.down}` : `${within} (fping starting)`;
    const e = w.member.lastError;
    if (e && e.at >= w.start) return `${within}: ${e.message}`;
    if (w.lost > 0) return `${within} (${w.lost} echo${w.lost === 1 ? '' : 'es'} unanswered)`;
    return within;
  };

  const check: Checker = (target, signal) => {
    const start = now();
    const failed = (detail: string): CheckOutcome => ({ ok: false, detail, latencyMs: toMicros(now() - start) });
    if (closed) return Promise.resolve(failed('checker closed'));
    if (signal.aborted) return Promise.resolve(failed('aborted'));
    const member = memberFor(target);
    member.lastProbeAt = start;
    member.idleLimit = Math.max(member.idleLimit, idleLimitMs(target.config.interval, target.config.timeout));
    return new Promise<CheckOutcome>((resolve) => {
      const w: Waiter = {
        start,
        member,
        lost: 0,
        resolve,
        signal,
        // Decided after the poll phase: when the event loop ran late, timers come first in its next turn, and a
        // reply already waiting in fping's pipe must be read before this probe is called a failure.
        timer: setTimeout(() => setImmediate(() => settle(w, failed(failDetail(w)))), target.config.timeout),
        onAbort: () => settle(w, failed('aborted')),
      };
      member.waiters.add(w);
      signal.addEventListener('abort', w.onAbort, { once: true });
    });
  };

  return {
    check,
    processes: () =>
      [...groups.values()].flat().map((s) => ({
        pid: s.proc?.pid,
        running: s.proc?.running ?? false,
        timeoutMs: s.timeoutMs,
        periodMs: echoPeriodMs(s.timeoutMs),
        addresses: [...s.members.keys()],
        ...(s.down !== undefined ? { down: s.down } : {}),
      })),
    close() {
      closing ??= (async () => {
        closed = true;
        clearInterval(sweep);
        for (const m of members.values()) for (const w of [...m.waiters]) settle(w, { ok: false, detail: 'checker closed', latencyMs: toMicros(now() - w.start) });
        for (const slot of [...groups.values()].flat()) {
          if (slot.startTimer) clearTimeout(slot.startTimer);
          slot.startTimer = undefined;
          if (slot.proc) stopProc(slot.proc);
          slot.proc = undefined;
        }
        await Promise.allSettled([...stopping]);
      })();
      return closing;
    },
  };
}
