/**
 * Resolver demand: how many requests per second the clients behind each
 * resolver make, estimated in bounded memory from the queries the resolver
 * itself sends us (the idea of Akamai's GTM).
 *
 * The estimator. A caching resolver with c clients, each asking for a name
 * as a Poisson process of rate λ, sees requests at rate c·λ. While its
 * cached answer is fresh it asks us nothing; once the answer expires, the
 * next client request makes it ask again. By memorylessness the gap between
 * expiry and that re-ask is exponential with mean 1/(c·λ), whatever happened
 * before. So each re-ask after expiry is one sample of 1/demand. We keep an
 * EWMA of the gaps and report demand = 1 / mean gap. (The mean of 1/gap
 * would be the obvious EWMA of a rate, but E[1/X] of an exponential X is
 * infinite: one near-zero gap would dominate it. The mean of the gaps is
 * unbiased for 1/demand, and its inverse consistent.) For the first samples
 * the weight is 1/n (a plain mean), then `alpha`: the relative error of the
 * estimate is about sqrt(alpha / (2 - alpha)), 13% at the default 1/32.
 *
 * Re-asks before expiry (a prefetching resolver, another resolver in the
 * same prefix, a cache that evicted early) say nothing about the gap: they
 * count as queries and restart the expiry (we answered them with a fresh
 * TTL), nothing more. A resolver that went quiet must not keep its old
 * rate: when the gap running now is already longer than the mean, the rate
 * read is 1 / that gap (the re-ask has not come, so demand is at most that),
 * which also ages silent resolvers out of the total.
 *
 * Limits (documented in the README too). The expiry is computed from the
 * TTL we gave, so a resolver that clamps TTLs up (a 30 s floor) or stretches
 * them looks lighter than it is: its extra wait counts as gap. A prefix
 * holding several resolvers (a farm behind one /24) is one entry: demand
 * adds up only roughly (their re-asks interleave). One answer is tracked per
 * entry at a time (the name last answered while the tracked one was fresh or
 * new); a resolver asking for many names is measured on whichever one is
 * tracked. Demand is per resolver, not per client subnet (see ECS for that).
 *
 * The table. A fixed number of entries in a SharedArrayBuffer, so the main
 * thread and every UDP worker thread count one resolver in the same entry
 * (as src/rrl/table.ts does for rate limiting): set-associative, WAYS
 * entries per set, a key hashed with a secret seed to its set. A
 * Space-Saving variant (Metwally, Agrawal, El Abbadi, 2005) within each set:
 * a key not in a full set replaces the entry with the smallest count and
 * inherits that count + 1 (its error bound is the inherited count), so a
 * heavy hitter, whose count grows faster than anything can inherit, stays.
 * Per entry: the key (family and masked address words), the query count and
 * inherited error, the answer tracked (its id, the time it was given and its
 * TTL), the gap EWMA and its sample count.
 *
 * Heaviness is relative: an entry's demand against the sum of every entry's
 * demand (rescanned at most once per `TOTAL_EVERY_MS` per thread, since a
 * scan costs O(entries)), so a share of 0.3 means "this resolver's clients
 * make 30% of all the requests the table accounts for".
 *
 * Threads: no locks, as in the RRL table; concurrent updates of one entry
 * may lose a count or a sample, never corrupt the table (aligned 8-octet
 * cells). Clock: monotonic ms passed in by the caller on every call (a
 * simulation runs on its own time). Per query: no allocation.
 */
import { Address, maskAddress, parseAddress, prefixText } from '../zone/address.ts';
import { finish32, mix32, powerOfTwoAtLeast } from '../zone/hash.ts';

/** Entries per set. */
export const WAYS = 8;
/** Header cells: two hash seeds, the cached total demand and when it was summed. */
const HEADER = 4;
const SEED_SET = 0;
const SEED_TAG = 1;
const TOTAL = 2;
const TOTAL_AT = 3;

// Cells of an entry.
const TAG = 0;
const FAMILY = 1;
const W0 = 2;
const COUNT = 6;
const ERROR = 7;
const ANSWER = 8;
const GIVEN_AT = 9;
const TTL = 10;
const GAP = 11;
const SAMPLES = 12;
const FIELDS = 13;

/** The EWMA weight once the first 1/alpha samples have been averaged. */
export const DEFAULT_ALPHA = 1 / 32;
/** The sum of all demand is recomputed at most this often (ms). */
export const TOTAL_EVERY_MS = 1000;
/** Shortest gap counted (ms): a re-ask cannot come sooner than a round trip; keeps 1/gap finite. */
export const MIN_GAP_MS = 1;
/** Longest gap counted (ms): a resolver idle for a day should not need thirty samples to recover. */
export const MAX_GAP_MS = 600_000;

/** The table size actually used: `size` rounded up to a power of two, at least one set. */
export function demandSizeFor(size: number): number {
  return powerOfTwoAtLeast(size, WAYS);
}

/** How source addresses are grouped into resolvers: BIND's and Knot's RRL prefixes, /24 and /56. */
export interface PrefixBits {
  readonly ipv4: number;
  readonly ipv6: number;
}
export const DEFAULT_PREFIX_BITS: PrefixBits = Object.freeze({ ipv4: 24, ipv6: 56 });

/** One resolver prefix as the status API shows it. */
export interface DemandRow {
  /** `192.0.2.0/24`, `2001:db8::/56`. */
  prefix: string;
  /** Queries counted (Space-Saving: may include up to `error` inherited from the entry it replaced). */
  queries: number;
  error: number;
  /** Estimated requests per second of the resolver's clients; 0 before the first re-ask after expiry. */
  demand: number;
  /** demand / the sum over the table. */
  share: number;
  /** Re-asks after expiry measured. */
  samples: number;
}

export class DemandTable {
  /** Pass this to other threads (workerData) to share the entries. */
  readonly buffer: SharedArrayBuffer;
  /** Entries; fixed. */
  readonly capacity: number;
  private readonly cells: Float64Array;
  private readonly setMask: number;
  private readonly seedSet: number;
  private readonly seedTag: number;
  private readonly alpha: number;

  /**
   * A new table of `size` entries (rounded up to a power of two), or a view of
   * one another thread made. `seeds` fixes the hash seeds (a deterministic
   * simulation); by default they are random, so no one can aim sources at one set.
   */
  constructor(size: number | SharedArrayBuffer, alpha = DEFAULT_ALPHA, seeds?: readonly [number, number]) {
    this.alpha = alpha;
    if (typeof size === 'number') {
      const capacity = demandSizeFor(size);
      this.buffer = new SharedArrayBuffer((HEADER + capacity * FIELDS) * 8);
      this.cells = new Float64Array(this.buffer);
      const chosen = seeds ?? crypto.getRandomValues(new Uint32Array(2));
      this.cells[SEED_SET] = chosen[0]! >>> 0;
      this.cells[SEED_TAG] = chosen[1]! >>> 0;
      this.cells[TOTAL_AT] = -Infinity;
    } else {
      this.buffer = size;
      this.cells = new Float64Array(this.buffer);
    }
    this.capacity = (this.cells.length - HEADER) / FIELDS;
    this.setMask = this.capacity / WAYS - 1;
    this.seedSet = this.cells[SEED_SET]! | 0;
    this.seedTag = this.cells[SEED_TAG]! | 0;
  }

  /** Octets of shared memory the table holds (fixed at construction). */
  get bytes(): number {
    return this.buffer.byteLength;
  }

  /** Entries in use (walks the table; for tests and status). */
  occupied(): number {
    let n = 0;
    for (let at = HEADER; at < this.cells.length; at += FIELDS) if (this.cells[at + TAG] !== 0) n++;
    return n;
  }

  /**
   * Counts one query from the prefix (family, masked words w0..w3) for the
   * answer `answer` (any number naming what was asked; the pipeline uses
   * the plan's name hash) at `now` (ms). A re-ask of the tracked answer
   * after its expiry adds a gap sample. Returns the entry's handle for
   * demand(), share() and answered().
   */
  record(family: number, w0: number, w1: number, w2: number, w3: number, answer: number, now: number): number {
    const cells = this.cells;
    const set = finish32(mix32(mix32(mix32(mix32(mix32(this.seedSet, family), w0), w1), w2), w3)) & this.setMask;
    const tag = finish32(mix32(mix32(mix32(mix32(mix32(this.seedTag, family), w0), w1), w2), w3)) || 1;
    const base = HEADER + set * WAYS * FIELDS;
    let at = -1;
    let victim = base;
    let victimCount = Infinity;
    for (let way = 0; way < WAYS; way++) {
      const cell = base + way * FIELDS;
      const t = cells[cell + TAG]!;
      if (t === tag && cells[cell + FAMILY] === family && cells[cell + W0] === w0 && cells[cell + W0 + 1] === w1 && cells[cell + W0 + 2] === w2 && cells[cell + W0 + 3] === w3) {
        at = cell;
        break;
      }
      const count = t === 0 ? -1 : cells[cell + COUNT]!;
      if (count < victimCount) {
        victim = cell;
        victimCount = count;
      }
    }
    if (at < 0) {
      // Space-Saving: the newcomer inherits the smallest count (0 for an empty entry) as its error.
      at = victim;
      const inherited = victimCount < 0 ? 0 : victimCount;
      cells[at + TAG] = tag;
      cells[at + FAMILY] = family;
      cells[at + W0] = w0;
      cells[at + W0 + 1] = w1;
      cells[at + W0 + 2] = w2;
      cells[at + W0 + 3] = w3;
      cells[at + COUNT] = inherited + 1;
      cells[at + ERROR] = inherited;
      cells[at + ANSWER] = 0;
      cells[at + GIVEN_AT] = 0;
      cells[at + TTL] = -1;
      cells[at + GAP] = 0;
      cells[at + SAMPLES] = 0;
      return at;
    }
    cells[at + COUNT] = cells[at + COUNT]! + 1;
    const ttl = cells[at + TTL]!;
    if (ttl >= 0 && cells[at + ANSWER] === answer) {
      const gap = now - (cells[at + GIVEN_AT]! + ttl * 1000);
      // Before expiry: a query only (answered() restarts the expiry).
      if (gap >= 0) {
        const sample = gap < MIN_GAP_MS ? MIN_GAP_MS : gap > MAX_GAP_MS ? MAX_GAP_MS : gap;
        const n = cells[at + SAMPLES]! + 1;
        const a = 1 / n > this.alpha ? 1 / n : this.alpha;
        const mean = cells[at + GAP]!;
        cells[at + GAP] = n === 1 ? sample : mean + a * (sample - mean);
        cells[at + SAMPLES] = n;
        // Measured once: the next sample needs the next expiry.
        cells[at + TTL] = -1;
      }
    }
    return at;
  }

  /**
   * The answer to the query record() counted was sent with `ttl` seconds at
   * `now`: its expiry is what the next re-ask is measured from. Another
   * answer than the one tracked takes over only once that one has expired
   * or been measured (so a resolver asking for two names keeps one measurable).
   */
  answered(at: number, answer: number, ttl: number, now: number): void {
    const cells = this.cells;
    const tracked = cells[at + ANSWER]!;
    if (tracked !== answer && tracked !== 0) {
      const t = cells[at + TTL]!;
      if (t >= 0 && now < cells[at + GIVEN_AT]! + t * 1000) return;
    }
    cells[at + ANSWER] = answer;
    cells[at + GIVEN_AT] = now;
    cells[at + TTL] = ttl;
  }

  /** Estimated requests per second behind the entry at `at` (see the module comment); 0 without a sample. */
  demand(at: number, now: number): number {
    const cells = this.cells;
    if (cells[at + SAMPLES] === 0 || cells[at + TAG] === 0) return 0;
    let gap = cells[at + GAP]!;
    // The re-ask still awaited, counted from the expiry (none awaited between a sample and its answer).
    const ttl = cells[at + TTL]!;
    if (ttl >= 0) {
      const since = now - cells[at + GIVEN_AT]! - ttl * 1000;
      if (since > gap) gap = since;
    }
    return 1000 / gap;
  }

  /** Sum of every entry's demand; recomputed at most once per TOTAL_EVERY_MS of `now`. */
  total(now: number): number {
    const cells = this.cells;
    const at = cells[TOTAL_AT]!;
    if (now - at < TOTAL_EVERY_MS && now >= at) return cells[TOTAL]!;
    let sum = 0;
    for (let cell = HEADER; cell < cells.length; cell += FIELDS) sum += this.demand(cell, now);
    cells[TOTAL] = sum;
    cells[TOTAL_AT] = now;
    return sum;
  }

  /** The entry's share of the total demand (0 when nothing has demand yet). */
  share(at: number, now: number): number {
    const d = this.demand(at, now);
    if (d === 0) return 0;
    const total = this.total(now);
    // The total may be up to a second old; a share is never above 1.
    return total > d ? d / total : 1;
  }

  /** The `n` entries with the highest demand (then the most queries), for the status API; `bits`: the prefix lengths keys were masked to. Walks the table. */
  top(n: number, now: number, bits: PrefixBits = DEFAULT_PREFIX_BITS): DemandRow[] {
    const cells = this.cells;
    const total = this.total(now);
    const rows: DemandRow[] = [];
    for (let cell = HEADER; cell < cells.length; cell += FIELDS) {
      if (cells[cell + TAG] === 0) continue;
      const family = cells[cell + FAMILY]! as 4 | 6;
      const words = [cells[cell + W0]!, cells[cell + W0 + 1]!, cells[cell + W0 + 2]!, cells[cell + W0 + 3]!];
      const demand = this.demand(cell, now);
      rows.push({
        prefix: prefixText(family, words, family === 4 ? bits.ipv4 : bits.ipv6),
        queries: cells[cell + COUNT]!,
        error: cells[cell + ERROR]!,
        demand,
        share: total > 0 ? Math.min(1, demand / total) : 0,
        samples: cells[cell + SAMPLES]!,
      });
    }
    rows.sort((a, b) => b.demand - a.demand || b.queries - a.queries);
    return rows.slice(0, n);
  }
}

/**
 * One thread's view of the shared table: source addresses (as the
 * transports report them) parsed and masked to their prefix without
 * allocating, and the clock. The pipeline calls observe() for a query,
 * heavy() to decide, answered() once the answer is written.
 */
export class DemandTracker {
  readonly table: DemandTable;
  readonly bits: PrefixBits;
  private readonly clock: () => number;
  private readonly address = new Address();
  /** The time observe() read, used by the calls for the same query. */
  private now = 0;

  constructor(table: DemandTable, clock: () => number, bits: PrefixBits = DEFAULT_PREFIX_BITS) {
    this.table = table;
    this.clock = clock;
    this.bits = bits;
  }

  /** Counts a query from `remote` for answer `answer`; the entry's handle, or -1 for an address it cannot read. */
  observe(remote: string, answer: number): number {
    if (!parseAddress(remote, this.address)) return -1;
    return this.observeParsed(answer);
  }

  /** observe() for an address already parsed (the UDP paths' Peer); the caller's words are copied, not masked in place. */
  observeAddress(address: Address, answer: number): number {
    if (address.family === 0) return -1;
    this.address.copyFrom(address);
    return this.observeParsed(answer);
  }

  private observeParsed(answer: number): number {
    const a = this.address;
    maskAddress(a, a.family === 4 ? this.bits.ipv4 : this.bits.ipv6);
    this.now = this.clock();
    const w = a.w;
    return this.table.record(a.family, w[0]!, w[1]!, w[2]!, w[3]!, answer, this.now);
  }

  /** Whether the entry's share of all demand is at least `heavyShare`. */
  heavy(at: number, heavyShare: number): boolean {
    const share = this.table.share(at, this.now);
    return share > 0 && share >= heavyShare;
  }

  /** The answer to the query observed was sent with `ttl` seconds. */
  answered(at: number, answer: number, ttl: number): void {
    this.table.answered(at, answer, ttl, this.now);
  }

  /** The top resolvers now (status API). */
  top(n: number): DemandRow[] {
    return this.table.top(n, this.clock(), this.bits);
  }
}

/** The TTL a heavy resolver gets: the pool's resolver TTL, never above the answer's own, never below the zone minimum. */
export function heavyTtl(specTtl: number, answerTtl: number, minTtl: number): number {
  const t = specTtl < answerTtl ? specTtl : answerTtl;
  return t > minTtl ? t : minTtl;
}
