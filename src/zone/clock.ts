/**
 * The one clock for durations, deadlines and intervals: monotonic
 * milliseconds (performance.now), which never jump when the wall clock is
 * stepped (NTP, a VM resumed, an operator's `date -s`). Date.now() stays for
 * timestamps people read (logs, /api/v1/health), never for "how long" or
 * "until when". Lives in the zone layer so that every layer above it (wire,
 * resolver, rotation, health, observability, server) may import it.
 */
import { performance } from 'node:perf_hooks';

/** Milliseconds on a monotonic clock; only differences mean anything. */
export function monotonicMs(): number {
  return performance.now();
}

/**
 * A monotonic reading expressed as epoch ms: fixed to the wall clock once, at
 * process start, and monotonic since. For schedules that want a plausible
 * timestamp to show as well (the health monitor).
 */
export function monotonicEpochMs(): number {
  return performance.timeOrigin + performance.now();
}
