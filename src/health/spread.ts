/**
 * Where in its interval each periodic check runs (pure; the monitor plans with
 * it). Checks added together (one zone load: 5,000 of them) must not all fire
 * in the same millisecond every interval: that would queue 5,000 probes at once
 * and open as many sockets together. So the M checks sharing an interval get M
 * evenly spaced phases, in the order they were given, and each keeps its phase
 * for good: later slots are planned from the phase, never from when a check
 * completed, so nothing drifts and slow checks never bunch up.
 */

/** The phase (ms, 0 ≤ phase < interval) of the k-th of `count` checks sharing `interval`: ⌊k·interval/count⌋. */
export function spreadPhases(count: number, interval: number): number[] {
  return Array.from({ length: count }, (_, k) => Math.floor((k * interval) / count));
}

/**
 * The next planned start at or after `now` on the grid `nextAt + n·interval`:
 * slots missed while a check ran (or waited to start) are skipped, keeping the phase.
 */
export function nextSlot(nextAt: number, now: number, interval: number): number {
  return nextAt >= now ? nextAt : nextAt + Math.ceil((now - nextAt) / interval) * interval;
}
