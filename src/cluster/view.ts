/**
 * What the answers and the health snapshot read: per check and pool, the
 * combined verdict of the live instances (quorum.ts over members.ts and
 * remote-verdicts.ts, this instance's own from its monitor directly), or,
 * degraded, this instance's own verdict (the last combined one it knew where
 * it has no own result yet). Also the health-aware TTL's input.
 */
import type { PoolSpec } from '../zone/zone.ts';
import type { MemberClusterSnapshot } from '../observability/snapshot.ts';
import type { TargetState } from '../health/monitor.ts';
import { combineVerdicts, type QuorumResult, type Verdict, type Vote } from './quorum.ts';
import type { Membership } from './members.ts';
import type { RemoteVerdicts } from './remote-verdicts.ts';
import type { ProbeAssignment } from './assignment.ts';
import { verdictRecord } from './publisher.ts';
import type { MonitorPort } from './types.ts';

type Spec = Pick<PoolSpec, 'quorum' | 'checkers'>;

export interface ViewDeps {
  instance: string;
  monitor: MonitorPort;
  members: Membership;
  remote: RemoteVerdicts;
  assignment: ProbeAssignment;
  degraded: () => boolean;
  now: () => number;
}

export class ClusterView {
  readonly #d: ViewDeps;

  constructor(deps: ViewDeps) {
    this.#d = deps;
  }

  /** This instance's own verdict for `key`, when it probes it and has a result. */
  #own(key: string): TargetState | undefined {
    if (!this.#d.assignment.probes(key)) return undefined;
    const s = this.#d.monitor.state(key);
    return s && s.checks > 0 ? s : undefined;
  }

  #combined(key: string, spec: Spec): QuorumResult & { basis: MemberClusterSnapshot['basis']; assigned: readonly string[] } {
    const own = this.#own(key);
    if (this.#d.degraded() && own) {
      const down = own.health === 'down' ? 1 : 0;
      return { verdict: own.health, down, up: 1 - down, voters: 1, needed: 1, basis: 'own (degraded)', assigned: [this.#d.instance] };
    }
    const liveList = this.#d.members.liveIds();
    const voters = this.#d.members.checkers(key, spec.checkers);
    const votes: Vote[] = [];
    const held = this.#d.remote.of(key);
    if (held) for (const [instance, v] of held) votes.push({ instance, health: v.health });
    if (own) votes.push({ instance: this.#d.instance, health: own.health });
    const r = combineVerdicts({ quorum: spec.quorum ?? 'majority', live: new Set(liveList), voters, votes });
    return { ...r, basis: this.#d.degraded() ? 'last known (degraded)' : 'quorum', assigned: voters };
  }

  /** The health answers use; undefined: no verdict anywhere (fail open). */
  health(key: string, spec: Spec): Verdict | undefined {
    const v = this.#combined(key, spec).verdict;
    return v === 'unknown' ? undefined : v;
  }

  /**
   * How long until the combined verdict could change (ms): our monitor's
   * figure when we probe the check, else the earliest flip another checker
   * announced, rolled forward by the interval once passed (its schedule goes
   * on between refreshes).
   */
  msToPossibleChange(key: string): number {
    const now = this.#d.now();
    let best = this.#own(key) ? this.#d.monitor.timeToPossibleChange(key) : Infinity;
    const interval = this.#d.monitor.target(key)?.config.interval ?? 0;
    const held = this.#d.remote.of(key);
    if (held) {
      for (const [instance, v] of held) {
        if (!this.#d.members.has(instance) || v.changeAt === undefined) continue;
        let at = v.changeAt;
        if (at < now && interval > 0) at += Math.ceil((now - at) / interval) * interval;
        best = Math.min(best, Math.max(0, at - now));
      }
    }
    return Number.isFinite(best) ? best : 0;
  }

  /** Each instance's verdict and the combined one, for the health snapshot (own first, then by ID). */
  memberView(key: string, spec: Spec): MemberClusterSnapshot {
    const c = this.#combined(key, spec);
    const verdicts: MemberClusterSnapshot['verdicts'] = [];
    const own = this.#own(key);
    if (own) {
      const { changeAt: _drop, ...rec } = verdictRecord(own, this.#d.now(), 0);
      verdicts.push({ instance: this.#d.instance, self: true, ...rec });
    }
    const held = this.#d.remote.of(key);
    if (held) {
      for (const [instance, v] of [...held].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (!this.#d.members.has(instance)) continue;
        const { changeAt: _drop, ...rec } = v;
        verdicts.push({ instance, self: false, ...rec });
      }
    }
    return {
      quorum: spec.quorum ?? 'majority',
      checkers: spec.checkers ?? null,
      combined: c.verdict,
      basis: c.basis,
      down: c.down,
      up: c.up,
      voters: c.voters,
      needed: c.needed,
      probedHere: this.#d.assignment.probes(key),
      assigned: [...c.assigned],
      verdicts,
    };
  }
}
