/**
 * Load feedback at run time: keeps each balanced pool's effective weights,
 * steps them (feedback.ts) from the loads the health checks read, and is the
 * registry's WeightSource. No timers and no clock of its own: the caller
 * drives step() with the time of the health monitor's scheduler (the server on
 * a timer, the simulator on simulated time), so both run the same code.
 *
 * Each check result is used once. A pool steps when its interval has passed
 * and every balanced member has reported since the last step (or none has a
 * fresh signal, and the weights decay): stepping again on the same reading
 * would push a weight further for a load that has not been measured since,
 * and overshoot. So a pool moves at most once per check interval.
 */
import { configuredWeight, type PoolSpec } from '../zone/zone.ts';
import { feedbackStep, type FeedbackMember } from './feedback.ts';

/**
 * What a pool is to the balancer: the registry's PoolEntry (src/server/pool-registry.ts)
 * has this shape. Structural, so this layer does not import the server's.
 */
export interface BalancedPool {
  /** Names the pool across reloads: `owner.|A`. */
  readonly key: string;
  readonly spec: PoolSpec;
  readonly members: readonly { readonly address: string; readonly target: { readonly key: string } }[];
}

/** The part of the health monitor's TargetState the balancer reads (times: epoch ms on the monitor's scheduler). */
export interface SignalState {
  lastCheckAt?: number | undefined;
  lastOutcome?: { ok: boolean; latencyMs: number; load?: number | undefined } | undefined;
}

export interface LoadFeedbackDeps {
  /** The health monitor's state of a check target (HealthMonitor.state). */
  state: (targetKey: string) => SignalState | undefined;
}

/**
 * Relative change of a weight below which answers are not recompiled: finer
 * than the rotation can show (its cycle quantises to 1/1024 of the total) and
 * far finer than loads can be measured.
 */
export const PUBLISH_EPSILON = 0.002;

/** Fraction of the interval a step may come early and still be due. */
const DUE_SLACK = 0.05;

interface MemberState {
  configured: number;
  /** The controller's integral weight (kept between steps). */
  integral: number;
  /** The controller's weight: the integral one with the proportional correction (feedback.ts). */
  effective: number;
  /** The weight answers use (effective, as of the last change worth recompiling for). */
  published: number;
  /** lastCheckAt of the reading the last step used. */
  usedSampleAt: number | undefined;
  /** The load the check last reported (for the snapshot). */
  load: number | undefined;
}

const memberKey = (poolKey: string, address: string) => `${poolKey}|${address}`;

/** The registry's WeightSource (src/server/pool-registry.ts) when a pool balances on load. */
export class LoadFeedback {
  readonly #state: LoadFeedbackDeps['state'];
  /** Per balanced member, keyed by pool key and address; only members of pools served at the last step. */
  readonly #members = new Map<string, MemberState>();
  /** Per balanced pool: when it last stepped. */
  readonly #lastStep = new Map<string, number>();

  constructor(deps: LoadFeedbackDeps) {
    this.#state = deps.state;
  }

  weight(poolKey: string, address: string, configured: number): number {
    const s = this.#members.get(memberKey(poolKey, address));
    return s !== undefined && s.configured === configured ? s.published : configured;
  }

  /** The load `address` last reported in balanced pool `poolKey`, as the last step read it. */
  load(poolKey: string, address: string): number | undefined {
    return this.#members.get(memberKey(poolKey, address))?.load;
  }

  /**
   * Steps every balanced pool that is due at `now` (epoch ms on the health
   * monitor's scheduler). `usable(entry)`: per member, whether it serves and is healthy.
   * `ttlMs(entry)`: the TTL its answers carry now (ms), which says how slowly
   * the load follows a weight change; without it, as if at once.
   * True when a weight the answers use changed (compiled answers are stale).
   */
  step<P extends BalancedPool>(pools: Iterable<P>, now: number, usable: (entry: P) => readonly boolean[], ttlMs?: (entry: P) => number): boolean {
    let changed = false;
    const seenMembers = new Set<string>();
    const seenPools = new Set<string>();
    for (const entry of pools) {
      const spec = entry.spec.balance.feedback;
      if (!spec) continue;
      seenPools.add(entry.key);
      const states = entry.members.map((m) => {
        const key = memberKey(entry.key, m.address);
        seenMembers.add(key);
        const configured = configuredWeight(entry.spec, m.address);
        let s = this.#members.get(key);
        // New, or the zone changed its weight: start from what the zone says.
        if (s === undefined || s.configured !== configured) {
          s = { configured, integral: configured, effective: configured, published: configured, usedSampleAt: undefined, load: undefined };
          this.#members.set(key, s);
        }
        return s;
      });
      const last = this.#lastStep.get(entry.key);
      // A timer that fires a little early (clock and timer granularity) still counts as due.
      if (last !== undefined && now - last < spec.intervalMs * (1 - DUE_SLACK)) continue;

      const usableNow = usable(entry);
      const inputs: FeedbackMember[] = [];
      const sampledAt: (number | undefined)[] = [];
      let fresh = 0;
      let unused = 0;
      entry.members.forEach((m, i) => {
        const s = states[i]!;
        const t = this.#state(m.target.key);
        const outcome = t?.lastOutcome;
        s.load = outcome?.load;
        const isUsable = usableNow[i] === true;
        let signal: number | undefined;
        if (outcome?.ok && t!.lastCheckAt !== undefined && now - t!.lastCheckAt <= spec.staleMs) {
          const raw = spec.signal === 'load' ? outcome.load : outcome.latencyMs;
          if (raw !== undefined && Number.isFinite(raw) && raw >= 0) signal = raw;
        }
        if (isUsable && signal !== undefined && s.configured > 0) {
          fresh++;
          if (t!.lastCheckAt !== s.usedSampleAt) unused++;
        }
        sampledAt.push(signal === undefined ? undefined : t!.lastCheckAt);
        inputs.push({ configured: s.configured, effective: s.integral, signal, usable: isUsable });
      });
      // Wait until every balanced member has a reading this pool has not acted on yet.
      if (fresh > 0 && unused < fresh) continue;

      // How many steps a weight change takes to show in the load: caches re-pin about interval/TTL of it per step.
      const responseSteps = ttlMs ? ttlMs(entry) / spec.intervalMs : 1;
      const { integral, effective: next } = feedbackStep(inputs, spec, responseSteps);
      this.#lastStep.set(entry.key, now);
      let publish = false;
      states.forEach((s, i) => {
        s.integral = integral[i]!;
        s.effective = next[i]!;
        if (inputs[i]!.usable && sampledAt[i] !== undefined) s.usedSampleAt = sampledAt[i];
        if (Math.abs(s.effective - s.published) > PUBLISH_EPSILON * Math.max(s.published, s.effective)) publish = true;
        // Back at the configured weight exactly (decay snaps to it): worth showing even below the epsilon.
        if (s.effective === s.configured && s.published !== s.configured) publish = true;
      });
      if (publish) {
        for (const s of states) s.published = s.effective;
        changed = true;
      }
    }
    // Pools and members no longer served (or no longer balanced) are forgotten: the state stays bounded.
    for (const key of this.#members.keys()) if (!seenMembers.has(key)) this.#members.delete(key);
    for (const key of this.#lastStep.keys()) if (!seenPools.has(key)) this.#lastStep.delete(key);
    return changed;
  }
}
