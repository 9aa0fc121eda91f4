/**
 * Load feedback, the control law: one step moves a pool's effective weights
 * so that the loads its members report converge. Pure and deterministic (no
 * clock, no state): LoadFeedback (load-feedback.ts) keeps the weights between
 * steps and decides when to step.
 *
 * The law. For the members that serve and report a fresh signal, m is their
 * mean signal weighted by effective weight (the load an average unit of weight
 * carries). Each one's weight is multiplied by (m / signal)^gain: with load
 * proportional to weight share, that removes the fraction `gain` of each
 * member's log-distance to the mean per step (gain 1 would jump straight to
 * the weights that even the loads out; less damps the answer to a measurement
 * that lags). The factor is bounded to [1/(1+maxStep), 1+maxStep] and no
 * weight goes below floor × configured, so one bad reading moves little and
 * no healthy member starves. The weights are then scaled together so that
 * they sum to their configured weights (the pool's total capacity stays as
 * configured; only the split moves). Members without a fresh signal decay
 * towards their configured weight; members that do not serve keep theirs.
 */
import type { FeedbackSpec } from '../zone/zone.ts';

/**
 * The proportional part, for loads that answer slowly. When caches keep
 * answers for a TTL of several intervals, a weight change reaches the load
 * only gradually (each interval, about interval/TTL of the load is re-pinned
 * by caches that re-ask), so the law above, acting on what was measured, is
 * either slow (low gain) or chases its own past corrections and oscillates
 * (high gain). Such a pool gets, on top of the slow integral weights, an
 * immediate correction that is not remembered: effective = integral ×
 * (mean / load)^kp, with kp = gain × PROPORTIONAL × (responseSteps − 1) and
 * the integral's own gain divided by responseSteps, where responseSteps =
 * TTL / interval (how many steps a change takes to show in full). For a pool
 * whose load follows at once (responseSteps ≤ 1) it is exactly the law above.
 * Tuned on the simulator (bench/simulate): a Zipf population behind caching
 * resolvers, TTL 5 s, steps of 1 s.
 */
export const PROPORTIONAL = 1;
/** Bound of the proportional factor either way (×4 or ÷4). */
export const PROPORTIONAL_RANGE = 4;

/** Integral weights (kept between steps) and the effective ones (what rotation uses). */
export interface FeedbackStep {
  integral: number[];
  effective: number[];
}

/**
 * One step of the whole controller: the integral law (stepWeights) on the
 * integral weights, then the proportional correction for slow loads. Members
 * carry their integral weight as `effective` in, and get both back.
 */
export function feedbackStep(members: readonly FeedbackMember[], spec: FeedbackParams, responseSteps = 1): FeedbackStep {
  const steps = Math.max(1, responseSteps);
  const integral = stepWeights(members, { ...spec, gain: spec.gain / steps });
  const kp = spec.gain * PROPORTIONAL * (steps - 1);
  const effective = [...integral];
  const balanced = members.flatMap((m, i) => (m.usable && m.configured > 0 && validSignal(m.signal) ? [i] : []));
  if (kp <= 0 || balanced.length < 2) return { integral, effective };
  let capacity = 0;
  let weighted = 0;
  for (const i of balanced) {
    capacity += members[i]!.configured;
    weighted += members[i]!.configured * members[i]!.signal!;
  }
  // The load every member would carry if the pool were even (signals are per unit of capacity).
  const mean = weighted / capacity;
  if (!(mean > 0)) return { integral, effective };
  // Each corrected by at most ×/÷ PROPORTIONAL_RANGE, never below the floor, together the integral weights' total.
  const base = balanced.map((i) => integral[i]!);
  const want = balanced.map((i, k) => base[k]! * (mean / Math.max(members[i]!.signal!, mean * 1e-6)) ** kp);
  const lo = balanced.map((i, k) => Math.max(base[k]! / PROPORTIONAL_RANGE, Math.max(0, spec.floor) * members[i]!.configured));
  const hi = base.map((b, k) => Math.max(b * PROPORTIONAL_RANGE, lo[k]!));
  const fitted = fitTotal(want, lo, hi, base.reduce((a, b) => a + b, 0));
  balanced.forEach((i, k) => (effective[i] = fitted[k]!));
  return { integral, effective };
}

export interface FeedbackMember {
  /** Weight the zone configures (capacity). 0 stays 0: a reserve is never balanced into service. */
  configured: number;
  /** Effective weight now (what the rotation uses). */
  effective: number;
  /** The member's fresh signal (load, or latency in ms), undefined when stale or absent. */
  signal: number | undefined;
  /** Served and healthy: only these are balanced. */
  usable: boolean;
}

export type FeedbackParams = Pick<FeedbackSpec, 'gain' | 'maxStep' | 'floor'>;

/** A decaying weight this close to its configured one (relative) is set to it: decay ends instead of creeping. */
export const SNAP = 0.005;
/** Smallest weight a balanced member is computed from (relative to configured), so a floor of 0 cannot trap it at 0. */
const MIN_BASE = 1e-6;
/** Changes this small (relative) are rounding, not control: the old weight stays, equal loads change nothing. */
const NOISE = 1e-9;
/** Bisection steps for the common scale factor (each halves the interval: 200 reach any double's precision). */
const SCALE_ITERATIONS = 200;

const validSignal = (s: number | undefined): s is number => s !== undefined && Number.isFinite(s) && s >= 0;

/**
 * `want` scaled by one common factor so that, each clamped to [lo, hi], they
 * sum to `total` (the pool's weight stays its configured total; only the
 * split moves). The clamped sum grows with the factor: bisect for it.
 */
function fitTotal(want: readonly number[], lo: readonly number[], hi: readonly number[], total: number): number[] {
  const at = (scale: number) => want.map((w, k) => Math.min(hi[k]!, Math.max(lo[k]!, w * scale)));
  const sum = (ws: number[]) => ws.reduce((a, b) => a + b, 0);
  if (sum([...lo]) >= total) return [...lo];
  if (sum([...hi]) <= total) return [...hi];
  let a = 0;
  let b = Math.max(...hi.map((h, k) => h / want[k]!));
  for (let n = 0; n < SCALE_ITERATIONS && a < b; n++) {
    const mid = (a + b) / 2;
    if (mid === a || mid === b) break;
    if (sum(at(mid)) < total) a = mid;
    else b = mid;
  }
  return at((a + b) / 2);
}

/** The effective weights after one step, in member order. */
export function stepWeights(members: readonly FeedbackMember[], spec: FeedbackParams): number[] {
  const gain = Math.min(1, Math.max(0, spec.gain));
  const up = 1 + Math.max(0, spec.maxStep);
  const floor = Math.max(0, spec.floor);
  const out = members.map((m) => m.effective);
  const balanced: number[] = [];
  members.forEach((m, i) => {
    if (!(m.configured > 0)) {
      out[i] = 0;
      return;
    }
    if (!m.usable) return;
    if (validSignal(m.signal)) {
      balanced.push(i);
      return;
    }
    // No fresh signal: back towards the configured weight, at the same damping.
    const e = Number.isFinite(m.effective) && m.effective > 0 ? m.effective : m.configured;
    const next = e + (m.configured - e) * gain;
    out[i] = Math.abs(next - m.configured) <= SNAP * m.configured ? m.configured : next;
  });
  if (balanced.length === 0) return out;

  const base = balanced.map((i) => {
    const m = members[i]!;
    return Math.max(Number.isFinite(m.effective) ? m.effective : m.configured, MIN_BASE * m.configured);
  });
  const signal = balanced.map((i) => members[i]!.signal!);
  let weightSum = 0;
  let weighted = 0;
  base.forEach((b, k) => {
    weightSum += b;
    weighted += b * signal[k]!;
  });
  const mean = weighted / weightSum;
  // All idle (mean 0): nothing to even out.
  const ratio = signal.map((s) => (mean > 0 ? (mean / Math.max(s, mean * 1e-6)) ** gain : 1));
  const lo = base.map((b, k) => Math.max(b / up, floor * members[balanced[k]!]!.configured));
  const hi = base.map((b, k) => Math.max(b * up, lo[k]!));
  const want = base.map((b, k) => b * ratio[k]!);
  const total = balanced.reduce((sum, i) => sum + members[i]!.configured, 0);

  const next = fitTotal(want, lo, hi, total);
  balanced.forEach((i, k) => {
    const old = members[i]!.effective;
    out[i] = Math.abs(next[k]! - old) <= NOISE * Math.abs(old) ? old : next[k]!;
  });
  return out;
}
