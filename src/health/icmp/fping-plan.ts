/**
 * How the ICMP checks map onto long-running fping processes. Pure policy.
 *
 * fping in loop mode (`-l`) sends an echo to every target it was given every
 * `period` ms, forever, and prints one line per echo. The monitor's probes are
 * not that: each is "did the host answer during this probe?". A probe that
 * starts at T with timeout τ passes when a reply arrives before T + τ to an
 * echo sent at or after T. That needs an echo sent inside every window of
 * length τ, early enough for its reply: so the period is τ/2 (a reply may
 * take up to τ/2 and still count; fping's own `-t` is τ, so a slower reply is
 * not thrown away by fping either). The cost: about 2 × interval/τ echoes per
 * target per interval (5 with the defaults, interval 5 s and timeout 2 s),
 * 84 bytes each.
 *
 * Targets are grouped by timeout (one period per fping process), and a group
 * is split into processes of at most `processCapacity` targets: fping sends
 * at most one echo every `-i` ms overall, so one process can only keep a
 * period for period/i targets, and after a restart its last target gets its
 * first echo capacity × i ms late; capacity = period/(2i) keeps that within
 * half a period. With the usual single timeout (and fewer than 5,000 targets at
 * τ = 2 s) that is one fping process for every ICMP check. Fewer is better:
 * every raw ICMP socket gets a copy of every ICMP packet the host receives,
 * so each process also reads (and drops) the others' replies.
 */

/** fping's minimum period (-p) in loop mode. */
export const FPING_MIN_PERIOD_MS = 10;
/**
 * `-i`: the gap between two echoes to any target (fping 5 takes fractions, also
 * without root): at most 10,000 echoes a second per process.
 */
export const FPING_SEND_GAP_MS = 0.1;

/** The echo period for a check with timeout `timeoutMs`: half of it, at least fping's minimum. */
export function echoPeriodMs(timeoutMs: number): number {
  return Math.max(FPING_MIN_PERIOD_MS, Math.floor(timeoutMs / 2));
}

/** How many targets one fping process at `periodMs` takes. */
export function processCapacity(periodMs: number): number {
  return Math.max(1, Math.floor(periodMs / (2 * FPING_SEND_GAP_MS)));
}

/**
 * fping's arguments: loop, the period, a per-echo timeout of the check's
 * timeout, the send gap, and the addresses (IP literals only: no name is
 * ever resolved).
 */
export function fpingArgs(timeoutMs: number, addresses: readonly string[]): string[] {
  return ['-l', '-p', String(echoPeriodMs(timeoutMs)), '-t', String(timeoutMs), '-i', String(FPING_SEND_GAP_MS), ...addresses];
}

/**
 * Delay before restarting an fping that died, given how many times it died in
 * the last minute (this death included): 100 ms, doubling, at most 5 s.
 */
export function restartDelayMs(recentDeaths: number): number {
  return Math.min(5000, 100 * 2 ** Math.max(0, recentDeaths - 1));
}

/**
 * How long a target may go without a probe before it leaves fping (removed
 * by a reload, or a cold standby no longer probed): two intervals plus its
 * timeout, so a slot skipped now and then does not restart fping.
 */
export function idleLimitMs(intervalMs: number, timeoutMs: number): number {
  return 2 * intervalMs + timeoutMs;
}

/**
 * The process index for a new target: the first of `sizes` with room, else a
 * new one (`sizes.length`). Existing targets never move, so adding one
 * restarts one process only.
 */
export function placeTarget(sizes: readonly number[], capacity: number): number {
  const i = sizes.findIndex((n) => n < capacity);
  return i === -1 ? sizes.length : i;
}
