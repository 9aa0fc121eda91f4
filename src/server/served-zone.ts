/**
 * A zone as the server runs it: the immutable Zone plus what serving adds —
 * rotation counters and compiled answers. Created when a zone version is
 * swapped in and dropped with it: a new version starts clean, while a reload
 * that leaves a zone's file unchanged keeps its ServedZone (server.ts install).
 */
import { monotonicMs } from '../zone/clock.ts';
import { compileAnswer, firstRecordAt, type AnswerPlan } from '../wire/answer.ts';
import { isPlainType, resolve, type LiveView } from '../resolver/resolve.ts';
import { RotationCounters } from '../rotation/rotation.ts';
import type { Zone, ZoneNode } from '../zone/zone.ts';
import { nameToText } from '../zone/name.ts';
import { AnswerCache } from './answer-cache.ts';
import { classify } from '../rrl/classify.ts';
import type { FirstServedCounters } from '../balancing/first-served.ts';

/** Answers with health-checked RRsets are recompiled this often, so their TTLs keep counting down. */
export const LIVE_PLAN_MS = 1000;

/**
 * The node each qtype-free NODATA plan answers for (see Resolution.missingAt).
 * One map for all zones (plans are never shared between zones): a WeakMap per
 * zone was 10,000 of them for 10,000 zones.
 */
const missingAt = new WeakMap<AnswerPlan, ZoneNode>();

/** Tells cache keys of different ServedZones apart (a zone's versions share one cache). */
let nextZoneId = 1;

export class ServedZone {
  readonly zone: Zone;
  /**
   * The origin as logs and metrics name it (`example.test.`), made on first
   * use and kept: most of 10,000 zones are never asked for, and a string
   * each was ~320 kB of heap.
   */
  #label: string | undefined = undefined;
  readonly rotation: RotationCounters;
  private readonly cache: AnswerCache;
  /** Key prefix: this zone version, and how many times its answers were invalidated; made on the first plan() (as #label). */
  private prefix: string | undefined = undefined;
  private readonly id = nextZoneId++;
  /** How many times this zone's answers were invalidated (the pipeline's answer table compares it). Only invalidate() moves it. */
  generation = 0;

  /** What health-checked RRsets serve now; undefined for a zone without pools. */
  private readonly live: LiveView | undefined;
  /** Monotonic ms; the simulator (bench/simulate) runs on its own clock. */
  private readonly clock: () => number;
  /** The thread's view of the first-position counters (shared memory); undefined: not counted. */
  private readonly firstCounts: Uint32Array | undefined;

  /**
   * `counters`: the rotation counters of the same zone version in another
   * thread, to share them. `cache`: the thread's answer cache (one per zone when not given).
   * `firstServed`: where answers count which pool member they put first.
   */
  constructor(zone: Zone, live?: LiveView, counters?: SharedArrayBuffer, cache?: AnswerCache, clock: () => number = monotonicMs, firstServed?: FirstServedCounters) {
    this.zone = zone;
    this.clock = clock;
    this.firstCounts = firstServed?.counts;
    this.live = zone.pooled.length > 0 ? live : undefined;
    // Most small zones rotate nothing: they share one empty set of counters (a view each was ~150 octets a zone).
    this.rotation = zone.rotationSlots === 0 && counters === undefined ? RotationCounters.NONE : new RotationCounters(zone.rotationSlots, counters);
    this.cache = cache ?? new AnswerCache();
  }

  get label(): string {
    return (this.#label ??= nameToText(this.zone.origin));
  }

  /** The compiled answer for a query already known to fall inside this zone. */
  plan(qname: string, qnameKey: string, qnameWireLength: number, qtype: number): AnswerPlan {
    const prefix = (this.prefix ??= `${this.id}.${this.generation}\u0000`);
    const exactKey = `${prefix}${qtype}\u0000${qnameKey}`;
    const cached = this.cache.get(exactKey);
    const now = this.clock();
    if (cached && cached.expiresAt > now) return cached;
    // A qtype the name has never been asked for: if the name's qtype-free NODATA is compiled and its
    // node lacks this type too, that is the answer, without resolving again (random qtypes stay cheap).
    const nodataKey = `${prefix}N\u0000${qnameKey}`;
    const nodata = this.cache.get(nodataKey);
    if (nodata && nodata.expiresAt > now && isPlainType(qtype)) {
      const node = missingAt.get(nodata);
      if (node && !node.rrsets.has(qtype)) return nodata;
    }

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
    const expiresAt = () => (usedLive ? now + LIVE_PLAN_MS : Infinity);
    const limit = classify(res, qnameKey, qtype, this.zone.originKey);
    if (res.sharedKey === undefined) {
      // A NODATA that any missing qtype would get is kept once for the name, under the qtype 'N'.
      const key = res.qtypeFree ? nodataKey : exactKey;
      let plan = res.qtypeFree ? this.cache.get(key) : undefined;
      if (!plan || plan.expiresAt <= now) {
        plan = compileAnswer(res, { qnameKey, qnameWireLength, sharedSuffix: undefined, limit }, expiresAt());
        this.cache.set(key, plan);
        if (res.missingAt) missingAt.set(plan, res.missingAt);
      }
      return plan;
    }
    // Shared bodies depend on the qname's length only (where the shared suffix sits in the question).
    const sharedKey = `${prefix}${res.sharedKey}\u0000${qnameKey.length}`;
    let plan = this.cache.get(sharedKey);
    if (!plan || plan.expiresAt <= now) {
      plan = compileAnswer(res, { qnameKey, qnameWireLength, sharedSuffix: res.sharedSuffix, limit }, expiresAt());
      this.cache.set(sharedKey, plan);
    }
    return plan;
  }

  /** Whether a plan this zone compiled is still good now (health-aware plans expire). */
  current(plan: AnswerPlan): boolean {
    return plan.expiresAt === Infinity || plan.expiresAt > this.clock();
  }

  /** Drops every compiled answer: the live view changed (a member went up or down, an override). Old entries age out of the cache. */
  invalidate(): void {
    this.generation++;
    // Made again on the next plan(): a zone nobody asks for keeps none.
    this.prefix = undefined;
  }

  /** This query's rotation offset for the plan's rotating RRset (advancing it), or 0. */
  nextVariant(plan: AnswerPlan): number {
    return plan.rotation ? this.rotation.next(plan.rotation.slot, plan.rotation.period) : 0;
  }

  /**
   * Counts the pool member the answer at rotation step `k` puts first (the
   * record rotate() in wire/response.ts writes first). Hot path: one
   * Atomics.add, nothing allocated.
   */
  countFirst(plan: AnswerPlan, k: number): void {
    const slots = plan.firstSlots;
    const counts = this.firstCounts;
    if (slots === undefined || counts === undefined) return;
    const r = plan.rotation;
    const first = r === undefined ? 0 : firstRecordAt(r.order, r.stride, r.count, k);
    Atomics.add(counts, slots[first]!, 1);
  }
}
