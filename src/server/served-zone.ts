/**
 * A zone as the server runs it: the immutable Zone plus what serving adds —
 * rotation counters and caches of compiled answers. Created when a zone
 * version is swapped in and dropped with it, so a reload starts clean.
 */
import { compileAnswer, type AnswerPlan } from '../wire/answer.ts';
import { resolve } from '../resolver/resolve.ts';
import { RotationCounters } from '../rotation/rotation.ts';
import type { Zone } from '../zone/zone.ts';

/** Distinct qtypes cached per name: bounds memory under random-qtype floods. */
const MAX_QTYPES_PER_NAME = 64;
/** Compiled answers shared across names (NXDOMAIN, wildcard, below-cut referrals). */
const MAX_SHARED_PLANS = 4096;

export class ServedZone {
  readonly zone: Zone;
  readonly rotation: RotationCounters;
  private readonly exact = new Map<string, Map<number, AnswerPlan>>();
  private readonly shared = new Map<string, AnswerPlan>();

  constructor(zone: Zone) {
    this.zone = zone;
    this.rotation = new RotationCounters(zone.rotationSlots);
  }

  /** The compiled answer for a query already known to fall inside this zone. */
  plan(qname: string, qnameKey: string, qnameWireLength: number, qtype: number): AnswerPlan {
    const byType = this.exact.get(qnameKey);
    const cached = byType?.get(qtype);
    if (cached) return cached;

    const res = resolve(this.zone, qname, qnameKey, qtype);
    const ctx = { qnameKey, qnameWireLength, originKey: this.zone.originKey, perName: res.sharedKey === undefined };
    if (res.sharedKey !== undefined) {
      // Bodies shared across qnames depend only on where the apex sits in the question.
      const key = `${res.sharedKey}#${qnameKey.length - this.zone.originKey.length}`;
      let plan = this.shared.get(key);
      if (!plan) {
        if (this.shared.size >= MAX_SHARED_PLANS) this.shared.clear();
        plan = compileAnswer(res, ctx);
        this.shared.set(key, plan);
      }
      return plan;
    }
    const plan = compileAnswer(res, ctx);
    if (!byType) this.exact.set(qnameKey, new Map([[qtype, plan]]));
    else if (byType.size < MAX_QTYPES_PER_NAME) byType.set(qtype, plan);
    return plan;
  }

  /** Picks the body for this query and advances the RRset's rotation by one. */
  nextVariant(plan: AnswerPlan): number {
    return plan.rotationSlot < 0 ? 0 : this.rotation.next(plan.rotationSlot, plan.bodies.length);
  }
}
