/**
 * When the next check of a target runs, with fast re-checks (HAProxy's
 * fastinter; pure: the monitor plans with it, and timeToPossibleChange and the
 * worst-case figures read the same rules).
 *
 * A target is checked on its grid (spread.ts: phase + n·interval). Once a
 * streak towards a change has begun (a failure while up, a success while down:
 * "settling"), and the check has a `fastInterval`, the next check comes
 * fastInterval after the last one started, or at the next grid slot if that is
 * sooner; when health flips or the streak breaks, checks go back to the grid,
 * on the same phase (the grid is never moved by fast checks). So a stopped
 * backend is seen after about interval/2 + (fall − 1)·fastInterval on average,
 * and a steady pool is probed exactly at its interval.
 */
import { nextSlot } from './spread.ts';

/** The part of a target's state that says whether it is settling. */
export interface StreakState {
  health: 'up' | 'down';
  consecutiveOk: number;
  consecutiveFail: number;
}

/**
 * Settling: a streak that would change health has begun and not finished (the
 * streak that flips health ends it at once, since the flip makes it the steady
 * direction).
 */
export function settling(s: StreakState): boolean {
  return s.health === 'up' ? s.consecutiveFail > 0 : s.consecutiveOk > 0;
}

export interface NextCheckInput {
  /** The planned grid slot (the target's nextAt): a slot of its phase, possibly in the past. */
  gridAt: number;
  now: number;
  interval: number;
  /** Start time of the check that just completed. */
  lastStartedAt: number;
  fastInterval?: number | undefined;
  /** Whether the target is settling after that check (settling()). */
  settling: boolean;
}

export interface NextCheck {
  /** When the next check starts. */
  at: number;
  /** The grid slot planned (≥ now); the fast check, if any, comes before it. */
  gridAt: number;
  /** The next check is a fast re-check (off the grid: the grid slot stays planned). */
  fast: boolean;
}

/** The next check after one completed at `now`. */
export function nextCheck(i: NextCheckInput): NextCheck {
  const gridAt = nextSlot(i.gridAt, i.now, i.interval);
  if (i.fastInterval !== undefined && i.settling) {
    const fastAt = Math.max(i.now, i.lastStartedAt + i.fastInterval);
    if (fastAt < gridAt) return { at: fastAt, gridAt, fast: true };
  }
  return { at: gridAt, gridAt, fast: false };
}

export interface EarliestChangeInput {
  /** Start of the next check whose result counts (the one in flight, else the next planned). */
  firstAt: number;
  /** The grid slot planned after firstAt or at it (the target's nextAt). */
  gridAt: number;
  interval: number;
  fastInterval?: number | undefined;
  /** Checks still needed for health to flip (≥ 1). */
  needed: number;
}

/**
 * The earliest start of the check whose result could flip health: the first
 * counted check, then (needed − 1) more, each one at the sooner of
 * fastInterval after the previous start (the streak has begun, so they are
 * fast) and the next grid slot. Without fastInterval: firstAt + (needed − 1)·interval.
 * A lower bound (checks completing instantly), as a health-aware TTL needs.
 */
export function earliestChange(i: EarliestChangeInput): number {
  let t = i.firstAt;
  let grid = i.gridAt;
  for (let k = 1; k < i.needed; k++) {
    // The next grid slot strictly after t.
    if (grid <= t) grid += Math.floor((t - grid) / i.interval + 1) * i.interval;
    t = i.fastInterval === undefined ? grid : Math.min(t + i.fastInterval, grid);
  }
  return t;
}

/** The settings the worst-case figures depend on (a CheckConfig has them). */
export interface DetectionConfig {
  interval: number;
  fastInterval?: number | undefined;
  timeout: number;
  fall: number;
}

/**
 * Worst case from a backend dying (just after a check started that passed) to
 * it being seen down: up to one interval until the next check, (fall − 1) fast
 * re-checks (or intervals), and the last one's timeout.
 */
export function worstDetectionMs(c: DetectionConfig): number {
  return c.interval + (c.fall - 1) * (c.fastInterval ?? c.interval) + c.timeout;
}

/** Longest time a steady-up member's health stays unchanged: the health-aware TTL's cap (ms). */
export function steadyHorizonMs(c: Pick<DetectionConfig, 'interval' | 'fastInterval' | 'fall'>): number {
  return c.interval + (c.fall - 1) * (c.fastInterval ?? c.interval);
}
