/**
 * The messages between remote-monitor.ts (the answering thread: a mirror of
 * every check's state) and monitor-host.ts (the probing thread: the
 * HealthMonitor with its schedule and the probes). Targets are named by a
 * slot number the main thread gives each key (never reused), so results
 * travel as numbers: one row of a Float64Array per completed check, strings
 * only when they changed.
 */
import type { IcmpLogLevel } from './icmp/icmp-checker.ts';
import type { CheckOutcome } from './checkers.ts';
import type { MemberHealth } from './monitor.ts';
import type { CheckTarget } from './target.ts';

/** A check's state as the mirror holds it, to seed a restarted probing thread (its verdicts must survive). */
export interface RestoredState {
  health: MemberHealth;
  since: number;
  consecutiveOk: number;
  consecutiveFail: number;
  checks: number;
  lastCheckAt?: number;
  lastOutcome?: CheckOutcome;
}

export interface AddedTarget {
  slot: number;
  target: CheckTarget;
  probe: boolean;
  /** The main thread's probing generation of the slot: results carry it back, stale ones are dropped. */
  gen: number;
  restore?: RestoredState;
}

export type ToMonitor =
  /** The watched set changes: `add` joins it, `remove` (slots) leaves it. `seq` is answered by a `first` message. */
  | { kind: 'targets'; seq: number; add: AddedTarget[]; remove: number[] }
  | { kind: 'probing'; seq: number; slot: number; on: boolean; gen: number }
  | { kind: 'close' };

export type FromMonitor =
  /** Completed checks, ROW numbers each (see Row), and the strings the rows' flags announce, in order. */
  | { kind: 'results'; rows: Float64Array; texts: string[] }
  /** The first round after message `seq` is over (every result up to it was sent before). */
  | { kind: 'first'; seq: number }
  | { kind: 'closed' }
  | { kind: 'log'; level: IcmpLogLevel; msg: string; fields: Record<string, unknown> };

/** Column of a results row. */
export const Row = {
  slot: 0,
  gen: 1,
  flags: 2,
  status: 3,
  latencyMs: 4,
  load: 5,
  checks: 6,
  consecutiveOk: 7,
  consecutiveFail: 8,
  since: 9,
  lastCheckAt: 10,
  /** When the health could next change (epoch ms on the shared clock; Infinity: not probed). */
  changeAt: 11,
} as const;
export const ROW = 12;

/** Bits of Row.flags. */
export const Flag = {
  ok: 1,
  down: 2,
  /** The health changed with this result: a reason follows in texts (after the detail, if any). */
  changed: 4,
  hasStatus: 8,
  hasLoad: 16,
  /** The outcome's detail differs from the last one sent for the slot: it follows in texts. */
  detail: 32,
} as const;
