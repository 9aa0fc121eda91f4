/**
 * Compiles a Resolution into one encoded answer body, so a query only copies
 * bytes: header and question from the query itself (keeping the client's
 * letter case), then the body (RFC 1035 §4.1.4 compression, written by
 * message.ts), then OPT.
 *
 * Where a body may point. A body made for one qname (any letter case) may
 * point at any suffix of the question. A body shared by many qnames (an
 * NXDOMAIN, a wildcard synthesis, a referral from below a cut) must not
 * depend on the qname's bytes: it points at the question only for owners
 * that *are* the qname (synthesised records) and for the suffixes every
 * sharing qname ends in (the cut, the wildcard's parent, the apex), whose
 * position follows from the qname's length alone (the cache key includes it).
 * A name that merely happens to equal the compiling qname (glue named like
 * the query, say) is written from the body itself.
 *
 * Rotation. A rotating A/AAAA RRset is written once, in set order; its
 * records differ only in their fixed-size rdata, so the response writer
 * copies the rdata of the rotated order into the same slots (response.ts).
 * One body per plan, whatever the size of the set; zone data and the body
 * are never mutated.
 */
import { isAtOrBelow } from '../zone/name.ts';
import { RRClass, RRType, type RData } from '../zone/records.ts';
import type { ResolverTtlSpec, SectionEntry } from '../zone/zone.ts';
import { HEADER_SIZE, MessageWriter, rdataOf } from './message.ts';
import { quantizeWeights, smoothWeightedSequence, weightedCycle } from '../rotation/weighted.ts';

/** Steps of a steering cycle: headroom shares to within a few percent are all steering needs. */
const STEER_CYCLE = 64;

export type { SectionEntry };

/**
 * What a body is made of: sections of RRsets (zone's SectionEntry). The
 * resolver's Resolution fits this as it is, so wire does not import the resolver.
 */
export interface AnswerSections {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answer: readonly SectionEntry[];
  readonly authority: readonly SectionEntry[];
  readonly additional: readonly SectionEntry[];
  /** Leading additional entries that must fit or TC is set: a referral's in-domain glue (RFC 9471 §3). */
  readonly requiredAdditional?: number | undefined;
}

/** A point at which a body may be cut on an RRset boundary when it does not fit (RFC 2181 §9). */
export interface Cut {
  readonly end: number;
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
}

/** The rotating RRset of a plan: where its records' rdata sit in the body, and every record's rdata in set order. */
export interface Rotation {
  /** Counter slot of the RRset (rotation/RotationCounters). */
  readonly slot: number;
  /** Records in the set. */
  readonly count: number;
  /** Steps of the rotation cycle: the offset runs 0..period-1 (count for plain rotation, sum of weights for weighted). */
  readonly period: number;
  /**
   * Weighted rotation (rotation/weighted.ts): at step k the records served are
   * order[k*stride ..] (stride = written records), or with stride 1 only the
   * first, the rest following it cyclically. Undefined: plain cyclic rotation,
   * step k starts at record k.
   */
  readonly order: Uint16Array | undefined;
  readonly stride: number;
  /** Octets of each record's rdata (A: 4, AAAA: 16). */
  readonly rdlength: number;
  /** Body offset of the rdata of each written record, in written order (maxAnswers may write fewer than count). */
  readonly at: readonly number[];
  /** The rdata of all `count` records, in set order. */
  readonly rdata: Buffer;
  /** TTL written for the records (a heavy resolver's shorter TTL replaces it: server/resolver-ttl.ts). */
  readonly ttl: number;
  /** Resolver-aware TTLs of the RRset's pool (balance.resolvers); undefined: off. */
  readonly resolvers: ResolverTtlSpec | undefined;
  /** With resolvers.steer: per record, the first step at which it comes first (-1: never); undefined otherwise. */
  readonly firstStep: Int32Array | undefined;
  /**
   * Where heavy resolvers are steered: a smooth weighted cycle of record
   * indices by headroom (LiveSet steer, pool-policy.ts steeringWeights); a
   * heavy query at rotation step k gets steer[k mod length] first. Undefined:
   * no steering.
   */
  readonly steer: Uint16Array | undefined;
}

/**
 * The record written first at rotation step `k`: record k for plain rotation,
 * the step's head in the weighted order table (rotation/weighted.ts). The one
 * rule the response writer, first-position counting and steering share.
 */
export function firstRecordAt(order: Uint16Array | undefined, stride: number, count: number, k: number): number {
  return order === undefined ? k % count : order[k * stride]!;
}

/**
 * Per record index, the first rotation step at which that record is served
 * first (-1 when it never is: weight 0), so steering to a member is one lookup.
 */
export function firstSteps(count: number, period: number, order: Uint16Array | undefined, stride: number): Int32Array {
  const steps = new Int32Array(count).fill(-1);
  for (let k = period - 1; k >= 0; k--) {
    const first = firstRecordAt(order, stride, count, k);
    if (first < count) steps[first] = k;
  }
  return steps;
}

export interface AnswerPlan {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
  /** The body at rotation offset 0. */
  readonly body: Buffer;
  readonly rotation: Rotation | undefined;
  /**
   * Cut points in body order. Cutting before `mustFit` (the end of answer,
   * authority and required glue) sets TC; dropping other additional records
   * does not (RFC 2181 §9, RFC 9471).
   */
  readonly cuts: readonly Cut[];
  readonly mustFit: number;
  /** Monotonic ms after which the plan must be recompiled (health-aware TTLs age); Infinity = never. */
  readonly expiresAt: number;
  /** Approximate bytes the plan holds, for byte-bounded caches. */
  readonly size: number;
  /**
   * Response rate limiting (src/rrl/classify.ts): the response class and the
   * hash of what the class is accounted by, set by the server when it
   * compiles; 0 and 0 (an answer, no name) when compiled without them.
   */
  readonly limitClass: number;
  readonly limitName: number;
  /**
   * First-position counter slots (src/balancing/first-served.ts) of the
   * counted RRset's records, in set order: the rotating one, or a pool's
   * single served record. At step k the record written first is k (plain
   * rotation), rotation.order[k*stride] (weighted) or 0 (no rotation).
   * Undefined: nothing in the answer is counted.
   */
  readonly firstSlots: Uint32Array | undefined;
  /**
   * EDNS Client Subnet (RFC 7871 §7.2.1): the SCOPE PREFIX-LENGTH answered to
   * an IPv4 / IPv6 client subnet: the longest scope any pool in the answer
   * section configures (balance.ecs), 0 (valid for every client) when none
   * does. Only the answer section counts: §7.4 scopes negative answers,
   * delegations and additional addresses at /0.
   */
  readonly ecsScope4: number;
  readonly ecsScope6: number;
}

export interface CompileContext {
  qnameKey: string;
  /** Octets of the qname on the wire: the body starts at 12 + this + 4. */
  qnameWireLength: number;
  /**
   * Undefined for a body made for this qname only. For a body shared by many
   * qnames: the deepest name all of them end in; only it and its ancestors
   * are pointed at inside the question.
   */
  sharedSuffix: string | undefined;
  /** The rate-limit class and name hash to keep on the plan (AnswerPlan.limitClass/limitName). */
  limit?: { readonly limitClass: number; readonly limitName: number } | undefined;
}

const writer = new MessageWriter();

function seed(ctx: CompileContext): void {
  writer.reset(HEADER_SIZE + ctx.qnameWireLength + 4);
  const suffix = ctx.sharedSuffix;
  if (suffix === undefined) {
    writer.remember(ctx.qnameKey, HEADER_SIZE);
  } else if (suffix !== '' && isAtOrBelow(ctx.qnameKey, suffix)) {
    // Octet offset of the suffix inside the wire qname = its char offset in the key (one char per octet).
    writer.remember(suffix, HEADER_SIZE + ctx.qnameKey.length - suffix.length);
  }
}

/** Bytes a plan costs beyond its buffers (objects, cut points), for cache accounting: with the cache's own per-entry cost, a heap measurement of 20,000 small answers under 95-octet names came to within 10% of what is counted. */
const PLAN_OVERHEAD = 512;

/**
 * Compiles a resolution into an AnswerPlan. Only the first rotating RRset of
 * the answer rotates. Never throws for size: records that might not fit a
 * 65,535-octet message are left out at an RRset boundary, and if that cuts
 * answer or authority the plan always sets TC.
 */
export function compileAnswer(res: AnswerSections, ctx: CompileContext, expiresAt = Infinity): AnswerPlan {
  seed(ctx);
  const shared = ctx.sharedSuffix !== undefined;
  const rotateEntry = res.answer.find((e) => e.rrset.rotates && e.records.length > 1 && (e.rrset.type === RRType.A || e.rrset.type === RRType.AAAA));
  // What first-position counting follows: the rotating set, else a pool's set of one (a CNAME chain ends in one address set).
  const countedEntry = rotateEntry ?? res.answer.find((e) => e.firstSlots !== undefined && e.records.length > 0 && (e.rrset.type === RRType.A || e.rrset.type === RRType.AAAA));
  const slots = countedEntry?.firstSlots;
  const firstSlots = slots !== undefined && slots.length === countedEntry!.records.length ? Uint32Array.from(slots) : undefined;
  let rotation: Rotation | undefined;
  const cuts: Cut[] = [];
  let an = 0;
  let ns = 0;
  let ar = 0;
  let full = false;
  let mustFit = -1;

  /** Writes one entry whole, or nothing of it; false when it did not fit. */
  const put = (e: SectionEntry, section: 0 | 1 | 2): boolean => {
    if (full) return false;
    const rotating = e === rotateEntry;
    const count = rotating ? Math.min(e.rrset.maxAnswers ?? Infinity, e.records.length) : e.records.length;
    const ownerAt = shared && section === 0 && e.ownerKey === ctx.qnameKey ? HEADER_SIZE : -1;
    const start = writer.len;
    const at: number[] = [];
    for (let i = 0; i < count; i++) {
      const rdataAt = writer.record(e.owner, e.ownerKey, e.rrset.type, RRClass.IN, e.ttl, e.records[i]!, ownerAt);
      if (rdataAt < 0) {
        // Names remembered inside the dropped part are never used: nothing more is written.
        writer.len = start;
        full = true;
        return false;
      }
      at.push(rdataAt - writer.base);
    }
    if (rotating) {
      const rdlength = e.rrset.type === RRType.A ? 4 : 16;
      const cycle = e.weights ? weightedCycle(quantizeWeights(e.weights), count) : undefined;
      const resolvers = e.rrset.pool?.balance.resolvers;
      const period = cycle?.period ?? e.records.length;
      const firstStep = resolvers?.steer ? firstSteps(e.records.length, period, cycle?.order, cycle?.stride ?? 0) : undefined;
      rotation = {
        slot: e.rrset.rotationSlot ?? -1,
        count: e.records.length,
        period,
        order: cycle?.order,
        stride: cycle?.stride ?? 0,
        rdlength,
        at,
        rdata: Buffer.concat(e.records.map((r: RData) => rdataOf(e.rrset.type, r))),
        ttl: e.ttl,
        resolvers,
        firstStep,
        steer: firstStep && e.steer?.length === e.records.length ? smoothWeightedSequence(quantizeWeights(e.steer, STEER_CYCLE)) : undefined,
      };
    }
    if (section === 0) an += count;
    else if (section === 1) ns += count;
    else ar += count;
    cuts.push({ end: writer.len, an, ns, ar });
    return true;
  };

  // Answer, authority or required glue left out (65,535 octets reached): the plan can never be whole.
  let lostRequired = false;
  for (const e of res.answer) if (!put(e, 0)) lostRequired = true;
  for (const e of res.authority) if (!put(e, 1)) lostRequired = true;
  const required = res.requiredAdditional ?? 0;
  res.additional.forEach((e, i) => {
    if (i === required) mustFit = writer.len;
    if (!put(e, 2) && i < required) lostRequired = true;
  });
  if (mustFit < 0) mustFit = writer.len;
  // §7.2.1: "the longest relevant PREFIX-LENGTH of any RRset in the answer" (a CNAME to a pool takes the pool's).
  let ecsScope4 = 0;
  let ecsScope6 = 0;
  for (const e of res.answer) {
    const ecs = e.rrset.pool?.balance.ecs;
    if (ecs === undefined) continue;
    ecsScope4 = Math.max(ecsScope4, ecs.ipv4);
    ecsScope6 = Math.max(ecsScope6, ecs.ipv6);
  }
  const body = writer.take();
  return {
    rcode: res.rcode,
    authoritative: res.authoritative,
    an,
    ns,
    ar,
    body,
    rotation,
    cuts,
    mustFit: lostRequired ? Infinity : mustFit,
    expiresAt,
    size: body.length + (rotation ? rotation.rdata.length + rotation.at.length * 8 + (rotation.order?.byteLength ?? 0) : 0) + (firstSlots?.byteLength ?? 0) + cuts.length * 40 + PLAN_OVERHEAD,
    limitClass: ctx.limit?.limitClass ?? 0,
    limitName: ctx.limit?.limitName ?? 0,
    firstSlots,
    ecsScope4,
    ecsScope6,
  };
}

/**
 * The CHAOS TXT answer for id.server / hostname.bind (RFC 4892): one record
 * owned by the qname, whatever it is, so the plan is shared by both names.
 */
export function chaosTxtPlan(identity: string): AnswerPlan {
  const text = Buffer.from(identity, 'utf8').subarray(0, 255);
  const w = new MessageWriter();
  w.reset(HEADER_SIZE, 0);
  w.pointer(HEADER_SIZE);
  w.u16(RRType.TXT);
  w.u16(RRClass.CH);
  w.u32(0);
  w.u16(1 + text.length);
  w.u8(text.length);
  w.bytes(text);
  const body = w.take();
  return { rcode: 0, authoritative: true, an: 1, ns: 0, ar: 0, body, rotation: undefined, cuts: [{ end: body.length, an: 1, ns: 0, ar: 0 }], mustFit: body.length, expiresAt: Infinity, size: body.length + PLAN_OVERHEAD, limitClass: 0, limitName: 0, firstSlots: undefined, ecsScope4: 0, ecsScope6: 0 };
}
