/**
 * The pipeline's table of recent answers, keyed by the question's wire
 * bytes: (qname with ASCII letters lower-cased, qtype) → the zone that
 * answers it and its compiled plan. A repeated question (nearly every query
 * a server gets) is found from the bytes of the message, without making the
 * qname's strings, walking the zone store by suffix or building the answer
 * cache's string key.
 *
 * Two-way set-associative: a set of two slots per hash (view.qnameHash,
 * seeded per process), each verified against the stored name octets; a new
 * question takes the slot its set used less recently. Direct-mapped, 256
 * names asked in turn missed ~4.5% of the time on collisions (16 of them
 * evicting each other), and each miss makes the qname's strings and the
 * answer cache's key. Fixed size, allocated once: no query grows it.
 *
 * An entry is only a shortcut to what ServedZone.plan would return, so it is
 * used only while that is certain: the zone store has not been replaced
 * (the pipeline clears the table when ZoneStore.version moves, which also
 * lets go of the old zone versions), the zone's answers were not invalidated
 * (ServedZone.generation: health or weights changed) and the plan has not
 * expired (health-aware TTLs age). Plans larger than MAX_PLAN_SIZE are not
 * kept (they are TCP answers; the answer cache has them), so the table
 * holds at most SLOTS * MAX_PLAN_SIZE octets of plans beyond the cache's bound.
 */
import type { AnswerPlan } from '../wire/answer.ts';
import { HEADER_SIZE, type QueryView } from '../wire/query.ts';
import type { ServedZone } from './served-zone.ts';

/** Slots (a power of two). */
export const SLOTS = 4096;
/** Largest plan (AnswerPlan.size) kept: anything a UDP answer can carry. */
export const MAX_PLAN_SIZE = 4096;
/** Octets of a wire name at most (RFC 1035 §3.1). */
const NAME_MAX = 255;

/** Sets of two slots. */
const SETS = SLOTS / 2;

/** The set of a question: its name hash with the qtype mixed in (a name asked for A and AAAA takes two sets). Exported for tests. */
export function setOf(view: QueryView): number {
  let h = Math.imul(view.qnameHash ^ view.qtype, 0x9e3779b1);
  h ^= h >>> 15;
  return h & (SETS - 1);
}

export class HotAnswers {
  private readonly names = new Uint8Array(SLOTS * NAME_MAX);
  private readonly lengths = new Uint16Array(SLOTS);
  private readonly qtypes = new Int32Array(SLOTS).fill(-1);
  private readonly generations = new Float64Array(SLOTS);
  private readonly zones: (ServedZone | undefined)[] = new Array<ServedZone | undefined>(SLOTS).fill(undefined);
  private readonly plans: (AnswerPlan | undefined)[] = new Array<AnswerPlan | undefined>(SLOTS).fill(undefined);
  /** Per set, the way (0 or 1) found or stored last: the other one is replaced first. */
  private readonly recent = new Uint8Array(SETS);
  /** The zone of the last hit (lookup's second result; synchronous use only). */
  zone: ServedZone | undefined = undefined;

  /**
   * The plan kept for the question of `view` (in `msg`, decoded), with its
   * zone in `this.zone`; null when the name is known to be in no zone we
   * serve (REFUSED: until the store is replaced, that cannot change);
   * undefined when nothing still good is kept.
   */
  lookup(msg: Uint8Array, view: QueryView): AnswerPlan | null | undefined {
    const set = setOf(view);
    const first = this.recent[set]!;
    let slot = 2 * set + first;
    if (!this.holds(slot, msg, view)) {
      slot ^= 1;
      if (!this.holds(slot, msg, view)) return undefined;
      this.recent[set] = first ^ 1;
    }
    const zone = this.zones[slot];
    const plan = this.plans[slot];
    if (zone !== undefined && (this.generations[slot] !== zone.generation || !zone.current(plan!))) return undefined;
    this.zone = zone;
    return zone === undefined ? null : plan;
  }

  /** Whether `slot` holds the question of `view` (qtype, then the name's octets, letter case folded). */
  private holds(slot: number, msg: Uint8Array, view: QueryView): boolean {
    const len = view.qnameWireLength;
    if (this.qtypes[slot] !== view.qtype || this.lengths[slot] !== len) return false;
    const names = this.names;
    const base = slot * NAME_MAX;
    for (let i = 0; i < len; i++) {
      const c = msg[HEADER_SIZE + i]!;
      if ((c >= 65 && c <= 90 ? c + 32 : c) !== names[base + i]) return false;
    }
    return true;
  }

  /** Keeps `plan` from `zone` for the question of `view` (in `msg`); both undefined: the name is in no zone. */
  store(msg: Uint8Array, view: QueryView, zone: ServedZone | undefined, plan: AnswerPlan | undefined): void {
    if (plan !== undefined && plan.size > MAX_PLAN_SIZE) return;
    const set = setOf(view);
    // The way that holds this question already (its plan went stale), else the one used less recently.
    let way = this.recent[set]! ^ 1;
    if (this.holds(2 * set + (way ^ 1), msg, view)) way ^= 1;
    this.recent[set] = way;
    const slot = 2 * set + way;
    const len = view.qnameWireLength;
    const names = this.names;
    const base = slot * NAME_MAX;
    for (let i = 0; i < len; i++) {
      const c = msg[HEADER_SIZE + i]!;
      names[base + i] = c >= 65 && c <= 90 ? c + 32 : c;
    }
    this.lengths[slot] = len;
    this.qtypes[slot] = view.qtype;
    this.generations[slot] = zone?.generation ?? 0;
    this.zones[slot] = zone;
    this.plans[slot] = plan;
  }

  /** Forgets every entry (the zone store was replaced). */
  clear(): void {
    this.qtypes.fill(-1);
    this.zones.fill(undefined);
    this.plans.fill(undefined);
    this.zone = undefined;
  }
}
