/**
 * The balance over the last minutes, per pool member: its share of the
 * pool's first positions, its effective weight and the load it reported, one
 * sample per interval (10 s) over a window (15 min), so the status page can
 * draw what the balancing did and an operator sees it work.
 *
 * Pure: the caller samples (the server on its scheduler, a test by hand) and
 * passes the time and the pools' snapshot; nothing here reads a clock.
 * Bounded: one ring of sample times and, per member, a fixed ring per series;
 * at most `maxMembers` members are kept, and a member missing from a sample
 * (a reload removed it) is dropped at once.
 */
import type { MemberSnapshot, PoolSnapshot } from './snapshot.ts';

/** What a sample reads of a pool: a PoolSnapshot has it, and so has the registry's lean balanceSample(). */
export type SampledPool = Pick<PoolSnapshot, 'zone' | 'name' | 'type'> & { members: readonly SampledMember[] };

/**
 * A member as a sample reads it. `key`, when given, is its memberKey made
 * once by the caller: the same string every sample, so its hash is computed
 * once (5,000 members' keys built and hashed anew each sample were most of
 * the sample's time).
 */
export type SampledMember = Pick<MemberSnapshot, 'address' | 'firstServed' | 'effectiveWeight' | 'load'> & { key?: string };

export const SAMPLE_EVERY_MS = 10_000;
export const HISTORY_WINDOW_MS = 15 * 60_000;
/** Members kept at most (each costs 3 × 8 bytes per sample: about 2 KiB over the default window). */
export const HISTORY_MAX_MEMBERS = 4096;

export type PoolType = 'A' | 'AAAA';

/** How the history names a member: zone, owner, type and address, as the snapshot writes them. */
export const memberKey = (zone: string, name: string, type: PoolType, address: string): string => `${zone}|${name}|${type}|${address}`;

/** One member's series, oldest first, aligned with BalanceHistoryView.at (null: no value for that sample). */
export interface MemberSeries {
  address: string;
  /** Share (0..1) of the pool's answers that put it first over the interval ending at the sample; null when it or the pool had none to compare. */
  firstShare: (number | null)[];
  effectiveWeight: (number | null)[];
  load: (number | null)[];
}

export interface PoolHistory {
  zone: string;
  name: string;
  type: PoolType;
  members: MemberSeries[];
}

export interface BalanceHistoryView {
  intervalMs: number;
  windowMs: number;
  /** Sample times (the sampler's clock, epoch ms), oldest first. */
  at: number[];
  pools: PoolHistory[];
}

export interface BalanceHistoryOptions {
  intervalMs?: number;
  windowMs?: number;
  maxMembers?: number;
}

interface Tracked {
  zone: string;
  name: string;
  type: PoolType;
  address: string;
  /** capacity × [firstShare, effectiveWeight, load]; NaN for no value. */
  values: Float64Array;
  /** Its first-position count at the previous sample (null: not counted then). */
  lastCount: number | null;
  /** The number of the last sample it was in. */
  seenAt: number;
}

const FIELDS = 3;
const SHARE = 0;
const WEIGHT = 1;
const LOAD = 2;

const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v);

export class BalanceHistory {
  readonly intervalMs: number;
  readonly windowMs: number;
  /** Samples kept: the window over the interval. */
  readonly capacity: number;
  private readonly maxMembers: number;
  private readonly times: Float64Array;
  /** Samples taken so far; the ring slot of sample n is n % capacity. */
  private taken = 0;
  /** By memberKey, in the order they first appeared (a Map keeps it). */
  private readonly members = new Map<string, Tracked>();

  constructor(opts: BalanceHistoryOptions = {}) {
    this.intervalMs = Math.max(1, opts.intervalMs ?? SAMPLE_EVERY_MS);
    this.windowMs = Math.max(this.intervalMs, opts.windowMs ?? HISTORY_WINDOW_MS);
    this.capacity = Math.ceil(this.windowMs / this.intervalMs);
    this.maxMembers = Math.max(0, opts.maxMembers ?? HISTORY_MAX_MEMBERS);
    this.times = new Float64Array(this.capacity);
  }

  /** Members tracked now. */
  get size(): number {
    return this.members.size;
  }

  /** Samples kept now (up to capacity). */
  get samples(): number {
    return Math.min(this.taken, this.capacity);
  }

  /**
   * Takes one sample at `now` from the pools' snapshot: each member's
   * first-position count (MemberSnapshot.firstServed, cumulative) against
   * the previous sample's, its effective weight and reported load.
   */
  sample(now: number, pools: readonly SampledPool[]): void {
    const n = this.taken++;
    const at = n % this.capacity;
    this.times[at] = now;
    for (const p of pools) {
      // The pool's total over the interval: members counted both now and at the previous sample.
      let total = 0;
      const deltas: number[] = [];
      const tracked: (Tracked | undefined)[] = [];
      for (const m of p.members) {
        const t = this.track(p.zone, p.name, p.type, m.address, m.key);
        tracked.push(t);
        const delta = t && t.lastCount !== null && m.firstServed !== null && t.seenAt === n - 1 ? Math.max(0, m.firstServed - t.lastCount) : NaN;
        deltas.push(delta);
        if (!Number.isNaN(delta)) total += delta;
      }
      p.members.forEach((m, i) => {
        const t = tracked[i];
        if (!t) return;
        const base = at * FIELDS;
        t.values[base + SHARE] = total > 0 && !Number.isNaN(deltas[i]!) ? deltas[i]! / total : NaN;
        t.values[base + WEIGHT] = m.effectiveWeight;
        t.values[base + LOAD] = m.load ?? NaN;
        t.lastCount = m.firstServed;
        t.seenAt = n;
      });
    }
    // Members this sample did not have are gone (a reload removed them, or their pool).
    for (const [key, t] of this.members) if (t.seenAt !== n) this.members.delete(key);
  }

  private track(zone: string, name: string, type: PoolType, address: string, known?: string): Tracked | undefined {
    const key = known ?? memberKey(zone, name, type, address);
    let t = this.members.get(key);
    if (t) return t;
    if (this.members.size >= this.maxMembers) return undefined;
    t = { zone, name, type, address, values: new Float64Array(this.capacity * FIELDS).fill(NaN), lastCount: null, seenAt: -1 };
    this.members.set(key, t);
    return t;
  }

  /** The member's first-position share over the last interval, or null (not tracked, or nothing served then). */
  share(zone: string, name: string, type: PoolType, address: string): number | null {
    const t = this.members.get(memberKey(zone, name, type, address));
    if (!t || this.taken === 0 || t.seenAt !== this.taken - 1) return null;
    return orNull(t.values[((this.taken - 1) % this.capacity) * FIELDS + SHARE]!);
  }

  /** Ring slots of the samples kept, oldest first. */
  private order(): number[] {
    const n = this.samples;
    const out: number[] = [];
    for (let j = 0; j < n; j++) out.push((this.taken - n + j) % this.capacity);
    return out;
  }

  private seriesOf(t: Tracked, slots: readonly number[]): MemberSeries {
    const pick = (field: number) => slots.map((s) => orNull(t.values[s * FIELDS + field]!));
    return { address: t.address, firstShare: pick(SHARE), effectiveWeight: pick(WEIGHT), load: pick(LOAD) };
  }

  /** One member's series, oldest first; undefined when not tracked. */
  series(zone: string, name: string, type: PoolType, address: string): MemberSeries | undefined {
    const t = this.members.get(memberKey(zone, name, type, address));
    return t ? this.seriesOf(t, this.order()) : undefined;
  }

  /** Everything kept, by pool, for the admin API and the status page. */
  view(): BalanceHistoryView {
    const slots = this.order();
    const pools = new Map<string, PoolHistory>();
    for (const t of this.members.values()) {
      const key = `${t.zone}|${t.name}|${t.type}`;
      let p = pools.get(key);
      if (!p) pools.set(key, (p = { zone: t.zone, name: t.name, type: t.type, members: [] }));
      p.members.push(this.seriesOf(t, slots));
    }
    return { intervalMs: this.intervalMs, windowMs: this.windowMs, at: slots.map((s) => this.times[s]!), pools: [...pools.values()] };
  }
}
