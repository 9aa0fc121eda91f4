/**
 * Weighted rotation: which record comes first, and in what order the rest
 * follow, for each query of a cycle. Smooth weighted round robin as nginx's
 * upstream module does it (each step every member gains its weight, the
 * member with the most is picked and loses the total): over a cycle of
 * sum(weights) steps each member comes first exactly `weight` times, and the
 * picks are interleaved (weights 5,1,1 give a a b a c a a, not a a a a a b c):
 * after any n steps each member has come first within one of n·weight/total.
 * Pure and deterministic: the same weights always give the same cycle, so the
 * UDP threads, which share one rotation counter per RRset, serve one cycle.
 */

/** Upper bound on a cycle's length (sum of quantised weights). */
export const MAX_CYCLE = 1024;
/** Upper bound on entries of a precomputed order table (cycle × window); above it only the first position is weighted. */
export const MAX_ORDER_ENTRIES = 65_536;

/**
 * Integer weights for a cycle of at most `maxTotal` steps, in the same ratios
 * as `weights` (any non-negative numbers) as nearly as integers allow: every
 * positive weight keeps at least 1, zeros stay 0. Equal positive weights give
 * all ones (the plain rotation). All zero (or empty) gives all ones: a set
 * that is served at all is served evenly.
 */
export function quantizeWeights(weights: readonly number[], maxTotal = MAX_CYCLE): number[] {
  const positive = weights.filter((w) => w > 0 && Number.isFinite(w));
  if (positive.length === 0) return weights.map(() => 1);
  const min = Math.min(...positive);
  const max = Math.max(...positive);
  if (max - min <= max * 1e-9) return weights.map((w) => (w > 0 && Number.isFinite(w) ? 1 : 0));
  const sum = positive.reduce((a, b) => a + b, 0);
  // Whole weights that fit the cycle are used as they are; others scale so the total fits, never below 1.
  const exact = sum <= maxTotal && positive.every((w) => Number.isInteger(w));
  const scale = exact ? 1 : Math.max(maxTotal, positive.length) / sum;
  const ints = weights.map((w) => (w > 0 && Number.isFinite(w) ? Math.max(1, Math.round(w * scale)) : 0));
  // Reduce by the greatest common divisor: weights 2,4 are the cycle 1,2.
  const g = ints.reduce((a, b) => gcd(a, b), 0);
  return g > 1 ? ints.map((w) => w / g) : ints;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The member picked first at each step of the cycle (length sum(weights)); weights are integers >= 0, at least one positive. */
export function smoothWeightedSequence(weights: readonly number[]): Uint16Array {
  const total = weights.reduce((a, b) => a + b, 0);
  const seq = new Uint16Array(total);
  const current = new Float64Array(weights.length);
  for (let step = 0; step < total; step++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      // Ties go to the lower index: deterministic.
      if (weights[i]! > 0 && (best < 0 || current[i]! > current[best]!)) best = i;
    }
    current[best]! -= total;
    seq[step] = best;
  }
  return seq;
}

/**
 * A weighted cycle: `period` steps; at step k the served order is
 * order[k*stride .. k*stride+stride-1] (record indices). The window at a step
 * is the first `stride` distinct members of the sequence from that step on,
 * so heavier members appear in more windows, and members of weight 0 follow
 * only when the positive ones do not fill it. When the table would be larger
 * than MAX_ORDER_ENTRIES only the first position is weighted and the rest
 * follow it cyclically (`order` has stride 1 then).
 */
export interface WeightedCycle {
  readonly period: number;
  readonly stride: number;
  readonly order: Uint16Array;
}

/** The cycle for `weights` (integers from quantizeWeights) and a window of `size` records; undefined when every weight is equal (plain rotation serves). */
export function weightedCycle(weights: readonly number[], size = weights.length): WeightedCycle | undefined {
  const n = weights.length;
  if (n < 2 || weights.every((w) => w === weights[0])) return undefined;
  const seq = smoothWeightedSequence(weights);
  const period = seq.length;
  const stride = period * size <= MAX_ORDER_ENTRIES ? Math.min(size, n) : 1;
  const order = new Uint16Array(period * stride);
  const taken = new Uint8Array(n);
  for (let k = 0; k < period; k++) {
    taken.fill(0);
    let filled = 0;
    // Positive members in the order the sequence next picks them (every positive member occurs within one period).
    for (let j = 0; j < period && filled < stride; j++) {
      const m = seq[(k + j) % period]!;
      if (taken[m]) continue;
      taken[m] = 1;
      order[k * stride + filled++] = m;
    }
    // Then weight-0 members, cyclically after the first.
    for (let j = 1; j < n && filled < stride; j++) {
      const m = (seq[k]! + j) % n;
      if (taken[m]) continue;
      taken[m] = 1;
      order[k * stride + filled++] = m;
    }
  }
  return { period, stride, order };
}
