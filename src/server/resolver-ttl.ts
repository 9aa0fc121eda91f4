/**
 * Resolver-aware TTLs in the answer path (issue 10, README "Resolver-aware
 * TTLs"): for an answer whose rotating RRset belongs to a pool with
 * `balance.resolvers`, count the query in the shared demand table
 * (src/balancing/demand.ts), and when the asking resolver is heavy serve the
 * pooled records with the pool's shorter TTL (never below the zone minimum,
 * never above the answer's own) and, with `steer`, start the answer with the
 * member with the most headroom (drawn from the plan's steering cycle, weighted by the
 * registry). The TTL given is recorded: the resolver's next re-ask after it
 * expires is the next demand sample.
 *
 * Two calls per query, step() before the answer is written and finish()
 * after; the state between them lives in this object (one per pipeline,
 * pipelines are per thread and synchronous), so nothing is allocated.
 */
import { DemandTracker, heavyTtl, type DemandTable, type PrefixBits } from '../balancing/demand.ts';
import type { AnswerPlan } from '../wire/answer.ts';
import type { QueryView } from '../wire/query.ts';
import type { Address } from '../zone/address.ts';
import { setRotationTtl } from '../wire/response.ts';
import { processMs } from '../rrl/table.ts';

/** What a pipeline needs to run resolver-aware TTLs (PipelineOptions.demand). */
export interface DemandOptions {
  /** The table every thread shares (DemandTable over the main thread's buffer). */
  table: DemandTable;
  /** Monotonic ms; default: the process-wide clock every thread reads the same (rrl/table.ts processMs). A simulation passes its own. */
  now?: (() => number) | undefined;
  /** How sources group into resolvers (default /24 and /56). */
  bits?: PrefixBits | undefined;
}

export class ResolverTtl {
  readonly tracker: DemandTracker;
  /** Entry of the query between step() and finish(); -1: nothing to record. */
  private at = -1;
  private ttl = 0;
  /** Heavy answers steered by this thread: the position in the plan's steering cycle. */
  private steered = 0;

  constructor(opts: DemandOptions) {
    this.tracker = new DemandTracker(opts.table, opts.now ?? processMs, opts.bits);
  }

  /** Whether the plan's rotating RRset is in a pool with resolver-aware TTLs. */
  static applies(plan: AnswerPlan): boolean {
    return plan.rotation !== undefined && plan.rotation.resolvers !== undefined;
  }

  /**
   * Counts the query from `remote` (parsed: the datagram's Peer, or the
   * address a TCP connection reported; plan: one that applies()), decides its
   * TTL; returns the rotation step to write (`k`, or the steered one).
   */
  step(plan: AnswerPlan, minTtl: number, remote: Address, k: number): number {
    const r = plan.rotation!;
    const spec = r.resolvers!;
    this.ttl = r.ttl;
    this.at = this.tracker.observeAddress(remote, answerId(plan));
    if (this.at < 0 || !this.tracker.heavy(this.at, spec.heavyShare)) return k;
    this.ttl = heavyTtl(spec.ttl, r.ttl, minTtl);
    if (r.steer !== undefined && r.firstStep !== undefined) {
      // Each heavy answer takes the cycle's next position: over a cycle, members come first in proportion to their headroom.
      const step = r.firstStep[r.steer[this.steered++ % r.steer.length]!]!;
      if (step >= 0) return step;
    }
    return k;
  }

  /** After writeAnswer (the answer at out[at..at+length)): the heavy TTL into the bytes, and the TTL given into the table. */
  finish(out: Uint8Array, q: QueryView, plan: AnswerPlan, at = 0, length = out.length - at): void {
    if (this.at < 0) return;
    if (this.ttl !== plan.rotation!.ttl) setRotationTtl(out, q, plan, this.ttl, at, length);
    this.tracker.answered(this.at, answerId(plan), this.ttl);
    this.at = -1;
  }
}

/** The answer a re-ask is matched against: the plan's name hash (qname and qtype); 0 means none in the table. */
const answerId = (plan: AnswerPlan): number => plan.limitName || 1;
