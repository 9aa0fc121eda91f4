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

  const at = (scale: number) => want.map((w, k) => Math.min(hi[k]!, Math.max(lo[k]!, w * scale)));
  const sum = (ws: number[]) => ws.reduce((a, b) => a + b, 0);
  let next: number[];
  if (sum(lo) >= total) next = lo;
  else if (sum(hi) <= total) next = hi;
  else {
    // The sum is monotone in the scale: bisect for the one that restores the configured total.
    let a = 0;
    let b = Math.max(...hi.map((h, k) => h / want[k]!));
    for (let n = 0; n < SCALE_ITERATIONS && a < b; n++) {
      const mid = (a + b) / 2;
      if (mid === a || mid === b) break;
      if (sum(at(mid)) < total) a = mid;
      else b = mid;
    }
    next = at((a + b) / 2);
  }
  balanced.forEach((i, k) => {
    const old = members[i]!.effective;
    out[i] = Math.abs(next[k]! - old) <= NOISE * Math.abs(old) ? old : next[k]!;
  });
  return out;
}
