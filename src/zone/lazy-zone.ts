/**
 * A zone whose names and records are built from its kept text when they are
 * needed, and dropped again once they have not been needed for a while.
 *
 * Why: a small zone is ~200 octets of master-file text but ~3 KB of objects
 * (names, RRsets, record arrays, rdata, strings). With 10,000 zones that is
 * ~30 MB of heap, most of it for zones nobody is asking about at the moment:
 * compiled answers (server/answer-cache.ts) answer the usual queries without
 * the zone's records. A LazyZone keeps the text (the file as it was read, not
 * as it is on disk now: what is served never changes behind the operator's
 * back) and the few fields every walk over all zones reads (origin, TTL
 * policy, pools, transfer settings, the serial and the content digest), and
 * builds the rest on the first read of `nodes` or `soa`.
 *
 * Residency: each read stamps the zone with the current sweep; sweepIdleZones()
 * (the server runs it every ZONE_SWEEP_MS, each UDP thread too) drops the
 * records of zones not read for IDLE_SWEEPS sweeps. So a zone in use is built
 * once and stays; an idle one costs its text. A flood of queries for names
 * that miss the answer cache, spread over every zone, makes every zone
 * resident: the memory of a server that builds everything up front, and each
 * zone's build at most once per idle period, never one per query.
 *
 * Which zones: the reader (load.ts) makes a zone lazy only when building it
 * again is a pure function of the kept text (no file it pulls in, no health
 * checks: the pool registry holds a pooled zone's RRsets) and cheap (text of
 * at most LAZY_MAX_TEXT octets: a build well under a millisecond). Every other
 * zone is an ordinary Zone object.
 *
 * Rebuilding gives the same zone: the same parser and options over the same
 * text, then the served serial put into the SOA as at load. A build that fails
 * (which the same text cannot do, short of a bug) throws: that query fails as
 * any handler fault does (counted and reported; SERVFAIL over TCP, no answer
 * over UDP), and the zone stays text, so the next query tries again.
 */
import type { RRset, TransferSettings, TtlPolicy, Zone, ZoneNode } from './zone.ts';

/** Zones of at most this much text may be built on demand (4 KB: ~200 short records, ~0.6 ms to build). */
export const LAZY_MAX_TEXT = 4096;
/** How often the server sweeps (ms): a zone not read for IDLE_SWEEPS sweeps is dropped to its text. */
export const ZONE_SWEEP_MS = 30_000;
/** Sweeps without a read before a zone's records are dropped (30-60 s idle with the default sweep). */
export const IDLE_SWEEPS = 2;

/**
 * Builds the zone again as the file declared it (`build`, from the reader),
 * then with `serial` in its SOA when it differs (`reserial`, serial.ts's
 * withSerial). Both pure.
 */
export interface ZoneBuilder<R> {
  build(recipe: R): Zone;
  reserial(zone: Zone, serial: number): Zone;
}

/** The sweep counter and the zones whose records are built now (one per thread: module state). */
let sweep = 0;
const resident = new Set<LazyZone>();
/** Builds since start (/metrics: rrdns_zone_builds_total). */
let builds = 0;

export class LazyZone<R = unknown> implements Zone {
  readonly origin: string;
  readonly originKey: string;
  readonly originLabels: number;
  readonly source: string;
  readonly negativeTtl: number;
  readonly ttlPolicy: TtlPolicy;
  readonly rotationSlots: number;
  readonly hasDelegations: boolean;
  readonly hasWildcards: boolean;
  readonly pooled: readonly RRset[];
  readonly transfer: TransferSettings | undefined;
  readonly serialAuto: boolean;
  /** The SOA serial this version serves. */
  readonly serial: number;
  /** The serial its file declared (the build's own). */
  readonly declaredSerial: number;
  /** serial.ts contentDigest() of the records (computed at load from the built zone). */
  readonly digest: string;
  /** What the builder needs: plain data (cloned to UDP threads as it is). */
  readonly recipe: R;
  readonly #builder: ZoneBuilder<R>;
  #built: Zone | undefined;
  #readAt = 0;

  /**
   * `built`: the zone the recipe gives (with `serial` already in it, or
   * the declared one), kept resident until the sweeps find it idle; undefined
   * to build on first read.
   */
  constructor(shape: Omit<Zone, 'nodes' | 'soa'>, facts: { serial: number; declaredSerial: number; digest: string }, recipe: R, builder: ZoneBuilder<R>, built?: Zone) {
    this.origin = shape.origin;
    this.originKey = shape.originKey;
    this.originLabels = shape.originLabels;
    this.source = shape.source;
    this.negativeTtl = shape.negativeTtl;
    this.ttlPolicy = shape.ttlPolicy;
    this.rotationSlots = shape.rotationSlots;
    this.hasDelegations = shape.hasDelegations;
    this.hasWildcards = shape.hasWildcards;
    this.pooled = shape.pooled;
    this.transfer = shape.transfer;
    this.serialAuto = shape.serialAuto;
    this.serial = facts.serial;
    this.declaredSerial = facts.declaredSerial;
    this.digest = facts.digest;
    this.recipe = recipe;
    this.#builder = builder;
    if (built !== undefined) this.#keep(built);
  }

  get nodes(): ReadonlyMap<string, ZoneNode> {
    return this.#zone().nodes;
  }

  get soa(): RRset {
    return this.#zone().soa;
  }

  /** Whether the records are built now (tests). */
  get isResident(): boolean {
    return this.#built !== undefined;
  }

  /** The same zone serving `serial` (shares the text; built on first read). */
  withSerial(serial: number): LazyZone<R> {
    if (serial === this.serial) return this;
    const built = this.#built === undefined ? undefined : this.#builder.reserial(this.#built, serial);
    return new LazyZone(this, { serial, declaredSerial: this.declaredSerial, digest: this.digest }, this.recipe, this.#builder, built);
  }

  /** Drops the records (sweepIdleZones, dropAllZones). */
  drop(): void {
    this.#built = undefined;
    resident.delete(this);
  }

  #zone(): Zone {
    this.#readAt = sweep;
    return this.#built ?? this.#build();
  }

  #build(): Zone {
    let z = this.#builder.build(this.recipe);
    if (z.originKey !== this.originKey) throw new Error(`rebuilding zone ${this.originKey} gave ${z.originKey}`);
    if (this.serial !== this.declaredSerial) z = this.#builder.reserial(z, this.serial);
    builds++;
    this.#keep(z);
    return z;
  }

  #keep(z: Zone): void {
    this.#built = z;
    this.#readAt = sweep;
    resident.add(this);
  }

  /** For sweepIdleZones: read within the last IDLE_SWEEPS sweeps. */
  readSince(s: number): boolean {
    return this.#readAt >= s;
  }
}

/**
 * One sweep: the zones not read during the last IDLE_SWEEPS sweeps drop their
 * records. Returns how many did. Cost: one pass over the resident zones.
 */
export function sweepIdleZones(): number {
  sweep++;
  const keepFrom = sweep - IDLE_SWEEPS + 1;
  let dropped = 0;
  for (const z of resident) {
    if (z.readSince(keepFrom)) continue;
    z.drop();
    dropped++;
  }
  return dropped;
}

/** Drops the records of every lazy zone (start-up, before its memory-reducing collection: no query has read one yet). */
export function dropAllZones(): number {
  const n = resident.size;
  // drop() deletes the zone being visited, which a Set's iteration allows (as in sweepIdleZones).
  for (const z of resident) z.drop();
  return n;
}

/** How many lazy zones have their records built now, and how many builds there were since start. */
export function lazyZoneStats(): { resident: number; builds: number } {
  return { resident: resident.size, builds };
}
