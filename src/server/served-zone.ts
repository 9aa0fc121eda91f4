/**
 * A zone as the server runs it: the immutable Zone plus what serving adds —
 * rotation counters and caches of compiled answers. Created when a zone
 * version is swapped in and dropped with it, so a reload starts clean.
 */
import { compileAnswer, type AnswerPlan } from '../wire/answer.ts';
import { rotatedWindow } from '../rotation/rotation.ts';
import { resolve, type LiveView } from '../resolver/resolve.ts';
import { RotationCounters } from '../rotation/rotation.ts';
import type { Zone } from '../zone/zone.ts';
import { nameToText } from '../zone/name.ts';

/** Distinct qtypes cached per name: bounds memory under random-qtype floods. */
const MAX_QTYPES_PER_NAME = 64;
/** Compiled answers shared across names (NXDOMAIN, wildcard, below-cut referrals). */
const MAX_SHARED_PLANS = 4096;
/** Answers with health-checked RRsets are recompiled this often, so their TTLs keep counting down. */
export const LIVE_PLAN_MS = 1000;

export class ServedZone {
  readonly zone: Zone;
  /** The origin as logs and metrics name it (`example.test.`), computed once. */
  readonly label: string;
  readonly rotation: RotationCounters;
  private readonly exact = new Map<string, Map<number, AnswerPlan>>();
  private readonly shared = new Map<string, AnswerPlan>();

  /** What health-checked RRsets serve now; undefined for a zone without pools. */
  private readonly live: LiveView | undefined;

  /** `counters`: the rotation counters of the same zone version in another thread, to share them. */
  constructor(zone: Zone, live?: LiveView, counters?: SharedArrayBuffer) {
    this.zone = zone;
    this.label = nameToText(zone.origin);
    this.live = zone.pooled.length > 0 ? live : undefined;
    this.rotation = new RotationCounters(zone.rotationSlots, counters);
  }

  /** The compiled answer for a query already known to fall inside this zone. */
  plan(qname: string, qnameKey: string, qnameWireLength: number, qtype: number): AnswerPlan {
    const byType = this.exact.get(qnameKey);
    const cached = byType?.get(qtype);
    if (cached && (cached.expiresAt === Infinity || cached.expiresAt > Date.now())) return cached;

    let usedLive = false;
    const live = this.live;
    const view: LiveView | undefined = live
      ? (rrset) => {
          const set = live(rrset);
          if (set) usedLive = true;
          return set;
        }
      : undefined;
    const res = resolve(this.zone, qname, qnameKey, qtype, view);
    const ctx = { qnameKey, qnameWireLength, originKey: this.zone.originKey, perName: res.sharedKey === undefined };
    const compile = () => compileAnswer(res, ctx, rotatedWindow, usedLive ? Date.now() + LIVE_PLAN_MS : Infinity);
    if (res.sharedKey !== undefined) {
      // Bodies shared across qnames depend only on where the apex sits in the question.
      const key = `${res.sharedKey}#${qnameKey.length - this.zone.originKey.length}`;
      let plan = this.shared.get(key);
      if (!plan || (plan.expiresAt !== Infinity && plan.expiresAt <= Date.now())) {
        if (this.shared.size >= MAX_SHARED_PLANS) this.shared.clear();
        plan = compile();
        this.shared.set(key, plan);
      }
      return plan;
    }
    const plan = compile();
    if (!byType) this.exact.set(qnameKey, new Map([[qtype, plan]]));
    else if (byType.size < MAX_QTYPES_PER_NAME || byType.has(qtype)) byType.set(qtype, plan);
    return plan;
  }

  /** Drops every compiled answer: the live view changed (a member went up or down, an override). */
  invalidate(): void {
    this.exact.clear();
    this.shared.clear();
  }

  /** Picks the body for this query and advances the RRset's rotation by one. */
  nextVariant(plan: AnswerPlan): number {
    return plan.rotationSlot < 0 ? 0 : this.rotation.next(plan.rotationSlot, plan.bodies.length);
  }
}
