/**
 * A servable zone: records grouped into RRsets, indexed by lower-case owner name,
 * with empty non-terminals made explicit, validated as a whole. Built once per
 * load and never mutated afterwards (rotation and health keep their own state
 * elsewhere), so a reload can build the next version while this one serves.
 */
import { capIssues, type ZoneIssue } from '../errors.ts';
import type { CheckConfig } from '../config/health-check.ts';
import { ZONE_LIMIT_DEFAULTS, type ZoneLimits } from '../config/schema.ts';
import { isAtOrBelow, nameKey, nameToText, parentOf, wireLength } from './name.ts';
import { RRType, rdataKey, rdataLength, typeToText, type RData, type ZoneRecord } from './records.ts';
import type { RRsets } from './rrsets.ts';
import { NameNode } from './name-node.ts';
import { nodeIndex } from './node-index.ts';

export interface TtlPolicy {
  /** TTL for records that state none. */
  defaultTtl: number;
  /** Every TTL served from the zone (positive and negative) is clamped to [minTtl, maxTtl]. */
  minTtl: number;
  maxTtl: number;
}

export type AllDownPolicy = 'serveAll' | 'backup' | 'nodata' | 'servfail';
export type AdminOverride = 'drain' | 'force-up' | 'force-down';

/**
 * A health-checked name: its A/AAAA records are the primaries, watched by
 * `check` (per-address variants in `memberChecks`); `standby` addresses take
 * over under `allDown: backup`.
 */
export interface PoolSpec {
  readonly check: CheckConfig;
  /** Canonical address → its check, where a member overrides the pool's. */
  readonly memberChecks: ReadonlyMap<string, CheckConfig>;
  /** Standby addresses (either family); each RRset uses those of its own family. */
  readonly standby: readonly string[];
  /**
   * hot: standbys are probed all the time (the default); cold: only while no
   * primary is usable (src/server/probe-plan.ts), and one without a result yet
   * does not serve.
   */
  readonly standbyMode: 'hot' | 'cold';
  readonly allDown: AllDownPolicy;
  /** Below this fraction of healthy primaries, serve all primaries (spare the survivors). */
  readonly minHealthy: number | undefined;
  /** Canonical address → override set in the zone file. */
  readonly overrides: ReadonlyMap<string, AdminOverride>;
  /** Canonical address → configured weight (capacity), where a member states one; others weigh DEFAULT_WEIGHT. */
  readonly weights: ReadonlyMap<string, number>;
  /** Balancing mechanisms this pool enables (none by default: plain or weighted rotation). */
  readonly balance: BalanceSpec;
  /** In a cluster: how many live instances must see a member down (default majority); alone it has no effect. */
  readonly quorum?: 'majority' | 'any' | 'all' | number | undefined;
  /** In a cluster: only this many live instances (rendezvous hashing) probe each member; undefined: all of them. */
  readonly checkers?: number | undefined;
}

/** A member's weight when the zone states none. */
export const DEFAULT_WEIGHT = 1;

/** A member's weight as the zone file configures it. */
export const configuredWeight = (spec: Pick<PoolSpec, 'weights'>, address: string): number => spec.weights.get(address) ?? DEFAULT_WEIGHT;

/**
 * Load feedback (closed loop, src/balancing/feedback.ts): effective weights
 * move so that the members' reported loads converge.
 */
export interface FeedbackSpec {
  /** 'load': the number the check extracts (check.load: a header or a JSON path); 'latency': the check's latency. */
  readonly signal: 'load' | 'latency';
  /** How far one step moves towards the weights that would even the loads out (0..1]. */
  readonly gain: number;
  /** Largest relative change of an effective weight per step (0.25: at most ×1.25 or ÷1.25). */
  readonly maxStep: number;
  /** No healthy member's effective weight goes below this fraction of its configured weight. */
  readonly floor: number;
  /** A step every this many ms. */
  readonly intervalMs: number;
  /** Signals older than this (ms) no longer count; without signals effective weights decay back to the configured ones. */
  readonly staleMs: number;
}

/**
 * Resolver-aware TTLs (src/balancing/demand.ts, server/resolver-ttl.ts): the heaviest resolvers
 * (by estimated client demand) get shorter TTLs, never below the zone minimum,
 * and optionally the member with the most headroom first.
 */
export interface ResolverTtlSpec {
  /** A resolver whose estimated demand is at least this share of all the demand the server's resolver table holds is heavy (0..1). */
  readonly heavyShare: number;
  /** TTL for heavy resolvers (seconds; clamped to the zone's minimum and the answer's own TTL). */
  readonly ttl: number;
  /** Heavy resolvers get the member with the most headroom first. */
  readonly steer: boolean;
}

/** EDNS Client Subnet (RFC 7871): the scope prefix answered for each family. */
export interface EcsSpec {
  readonly ipv4: number;
  readonly ipv6: number;
}

export interface BalanceSpec {
  readonly feedback?: FeedbackSpec | undefined;
  readonly resolvers?: ResolverTtlSpec | undefined;
  readonly ecs?: EcsSpec | undefined;
}

/** Per-name serving options that a native zone file can add on top of the records. */
export interface NameOptions {
  /** Serve a rotating window of at most this many A/AAAA records. */
  maxAnswers?: number | undefined;
  pool?: PoolSpec | undefined;
}

/**
 * Zone transfer to secondaries (RFC 5936 AXFR, RFC 1996 NOTIFY). Absent on a
 * zone means transfer is off: every AXFR/IXFR for it is REFUSED.
 */
export interface TransferSettings {
  /** Addresses and CIDRs allowed to transfer, as written (for logs and docs). */
  readonly allow: readonly string[];
  /** Says whether a peer address may transfer; IPv4-mapped IPv6 peers match their IPv4 entries. */
  readonly allows: (address: string) => boolean;
  /** Secondaries sent a NOTIFY when the served serial changes, and once at start-up. */
  readonly notify: readonly { readonly host: string; readonly port: number }[];
}

export interface RRset {
  /** Owner as written in the zone (original case). */
  readonly owner: string;
  readonly ownerKey: string;
  readonly type: number;
  /** TTL served, after per-name overrides and the zone's clamps. */
  readonly ttl: number;
  readonly records: readonly RData[];
  /**
   * A/AAAA with more than one record rotate on every query (RFC 1794 style
   * round robin). An RRset that does not rotate (most of them) leaves out this
   * field and the three below: buildZone makes it of five fields, ~32 octets
   * less per RRset (~3 MB with 10,000 small zones).
   */
  readonly rotates?: boolean | undefined;
  /** Size of the served window when smaller than the set; undefined = whole set. */
  readonly maxAnswers?: number | undefined;
  /** Index of this RRset's rotation counter within its zone (see src/rotation); set when it rotates. */
  readonly rotationSlot?: number | undefined;
  /** Health-checked pool this A/AAAA RRset belongs to. */
  readonly pool?: PoolSpec | undefined;
}

/** One RRset placed in a section, with the owner and TTL to write for it. */
export interface SectionEntry {
  readonly rrset: RRset;
  /** Records to write: the RRset's own, or the live subset of a health-checked one. */
  readonly records: readonly RData[];
  /** Owner to write; compared by key against the qname to compress to the question. */
  readonly owner: string;
  readonly ownerKey: string;
  readonly ttl: number;
  /** Weights of `records` for weighted rotation (same order); undefined: plain rotation. */
  readonly weights?: readonly number[] | undefined;
  /** First-position counter slot of each of `records` (pools only); undefined: not counted. */
  readonly firstSlots?: readonly number[] | undefined;
  /** Headroom weights of `records` that heavy resolvers are steered by (balance.resolvers.steer); undefined: none. */
  readonly steer?: readonly number[] | undefined;
}

/** One name: buildZone makes each a NameNode (src/zone/name-node.ts), its own table of RRsets. */
export interface ZoneNode {
  readonly name: string;
  readonly key: string;
  readonly rrsets: RRsets;
  /** A name with no data of its own but with descendants (RFC 4592 §2.2.2): answered NODATA. */
  readonly emptyNonTerminal: boolean;
}

export interface Zone {
  readonly origin: string;
  readonly originKey: string;
  /** Number of labels in the origin; lets the resolver walk down from the apex. */
  readonly originLabels: number;
  readonly source: string;
  /** By key; a short array for a small zone (src/zone/node-index.ts). */
  readonly nodes: ReadonlyMap<string, ZoneNode>;
  readonly soa: RRset;
  /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM), then clamped. */
  readonly negativeTtl: number;
  readonly ttlPolicy: TtlPolicy;
  /** Number of rotation counters this zone needs. */
  readonly rotationSlots: number;
  /** Names holding NS records below the apex (zone cuts), for the resolver's walk. */
  readonly hasDelegations: boolean;
  readonly hasWildcards: boolean;
  /** RRsets with a health-checked pool, for the health layer. */
  readonly pooled: readonly RRset[];
  /** Transfer settings; undefined = transfer off (the default, and always for plain master files). */
  readonly transfer: TransferSettings | undefined;
  /**
   * The SOA serial is chosen by rrdns (`serial: auto` or no serial in a native
   * zone): the load time in unix seconds, then +1 per content change (src/zone/serial.ts).
   */
  readonly serialAuto: boolean;
}

export interface ZoneInput {
  origin: string;
  source: string;
  records: readonly ZoneRecord[];
  ttlPolicy: TtlPolicy;
  nameOptions?: ReadonlyMap<string, NameOptions & { line?: number | undefined; path?: string | undefined }>;
  transfer?: TransferSettings | undefined;
  serialAuto?: boolean | undefined;
}

const MAX_TTL = 0x7fffffff;

/** What a zone without pools (most) shares: one frozen empty list, not an array each. */
const NO_POOLS: readonly RRset[] = Object.freeze([]);

function pooledOf(nodes: ReadonlyMap<string, ZoneNode>): readonly RRset[] {
  const pooled = [...nodes.values()].flatMap((n) => [...n.rrsets.values()].filter((r) => r.pool !== undefined));
  return pooled.length === 0 ? NO_POOLS : pooled;
}

export function clampTtl(ttl: number, policy: TtlPolicy): number {
  return Math.min(Math.max(ttl, policy.minTtl), policy.maxTtl, MAX_TTL);
}

/**
 * Octets a message needs at the least to carry a whole RRset: header (12),
 * the question for the owner itself (its wire length + 4), an OPT record
 * (11, as an EDNS answer carries one), and per record an owner compressed to a
 * 2-octet pointer, type, class, TTL and RDLENGTH (10) and the rdata with names
 * uncompressed (rdataLength). No answer for the set can be smaller (only
 * rdata name compression could shave octets, which is why rdataLength counts
 * them in full: the bound errs on refusing), so a set over 65,535 octets could
 * never be sent over TCP either, and every query for it would fail.
 */
export function minimalMessageOctets(owner: string, records: readonly RData[]): number {
  let n = 12 + wireLength(owner) + 4 + 11;
  for (const r of records) n += 2 + 10 + rdataLength(r);
  return n;
}

/** The largest DNS message (two-octet TCP length prefix, RFC 1035 §4.2.2). */
export const MAX_MESSAGE_OCTETS = 65_535;

/**
 * Groups, indexes and validates. Returns the zone, or every issue found.
 * RFC 2181 §5.2: records of one RRset share a TTL; differing TTLs are reduced
 * to the smallest, as BIND and Knot do, so no record outlives the others.
 * Linear in the number of records: duplicates are found by key (rdataKey),
 * and `limits` bound the zone and each RRset.
 */
export function buildZone(input: ZoneInput, limits: ZoneLimits = ZONE_LIMIT_DEFAULTS): { zone?: Zone; issues: ZoneIssue[] } {
  const issues: ZoneIssue[] = [];
  const file = input.source;
  const originKey = nameKey(input.origin);
  if (input.records.length > limits.maxRecords) {
    const first = input.records[limits.maxRecords]!;
    return {
      issues: [
        {
          file: first.file ?? file,
          line: first.line,
          message: `zone ${nameToText(input.origin)} has more than ${limits.maxRecords} records, the limit per zone (--zone-max-records)`,
        },
      ],
    };
  }
  type Grouped = { owner: string; file: string; ttl: number; records: RData[]; firstKey: string; keys: Set<string> | undefined; line?: number | undefined; overLimit: boolean };
  const grouped = new Map<string, Map<number, Grouped>>();

  for (const rec of input.records) {
    const key = nameKey(rec.name);
    if (!isAtOrBelow(key, originKey)) {
      issues.push({ file: rec.file ?? file, line: rec.line, message: `${nameToText(rec.name)} is outside the zone ${nameToText(input.origin)}` });
      continue;
    }
    if (rec.type === RRType.SOA && key !== originKey) {
      issues.push({ file: rec.file ?? file, line: rec.line, message: `SOA record at ${nameToText(rec.name)} is not at the zone apex` });
      continue;
    }
    let byType = grouped.get(key);
    if (!byType) grouped.set(key, (byType = new Map()));
    const set = byType.get(rec.type);
    if (!set) {
      byType.set(rec.type, { owner: rec.name, file: rec.file ?? file, ttl: rec.ttl, records: [rec.data], firstKey: rdataKey(rec.data), keys: undefined, line: rec.line, overLimit: false });
    } else {
      set.ttl = Math.min(set.ttl, rec.ttl);
      // An RRset is a set: duplicates are dropped silently (RFC 2181 §5); see rdataKey for what counts as one.
      const k = rdataKey(rec.data);
      // Most RRsets hold one record: their Set is made only when a second one comes.
      set.keys ??= new Set([set.firstKey]);
      if (set.keys.has(k)) continue;
      if (set.records.length >= limits.maxRRsetRecords) {
        // Reported once per set, at the first record over the limit; the set stops growing.
        if (!set.overLimit) {
          issues.push({
            file: rec.file ?? file,
            line: rec.line,
            message: `${nameToText(rec.name)} ${typeToText(rec.type)} has more than ${limits.maxRRsetRecords} records, the limit per RRset (--rrset-max-records)`,
          });
        }
        set.overLimit = true;
        continue;
      }
      set.keys.add(k);
      set.records.push(rec.data);
    }
  }
  for (const byType of grouped.values()) {
    for (const [type, set] of byType) {
      if (set.overLimit) continue;
      const octets = minimalMessageOctets(set.owner, set.records);
      if (octets > MAX_MESSAGE_OCTETS) {
        issues.push({
          file: set.file,
          line: set.line,
          message: `${nameToText(set.owner)} ${typeToText(type)}: its ${set.records.length} records need at least ${octets} octets in an answer, over the ${MAX_MESSAGE_OCTETS}-octet limit of a DNS message; split them over several names`,
        });
      }
    }
  }

  const apex = grouped.get(originKey);
  const soaSet = apex?.get(RRType.SOA);
  if (!soaSet) issues.push({ file, message: `zone ${nameToText(input.origin)} has no SOA record at its apex` });
  else if (soaSet.records.length > 1) issues.push({ file: soaSet.file, line: soaSet.line, message: 'zone has more than one SOA record' });
  if (!apex?.get(RRType.NS)) issues.push({ file, message: `zone ${nameToText(input.origin)} has no NS records at its apex` });

  for (const [key, byType] of grouped) {
    const cname = byType.get(RRType.CNAME);
    if (cname) {
      if (cname.records.length > 1) issues.push({ file: cname.file, line: cname.line, message: `${nameToText(cname.owner)} has more than one CNAME` });
      if (byType.size > 1) {
        const others = [...byType.keys()].filter((t) => t !== RRType.CNAME).map(typeToText).join(', ');
        issues.push({ file: cname.file, line: cname.line, message: `${nameToText(cname.owner)} has a CNAME and other data (${others}); RFC 1034 §3.6.2 forbids this` });
      }
      if (key === originKey) issues.push({ file: cname.file, line: cname.line, message: 'a CNAME at the zone apex is not allowed' });
    }
  }

  const nameOptions = new Map<string, NameOptions & { line?: number | undefined; path?: string | undefined }>();
  for (const [name, opts] of input.nameOptions ?? []) {
    const key = nameKey(name);
    nameOptions.set(key, opts);
    if (!grouped.has(key)) issues.push({ file, line: opts.line, path: opts.path, message: `settings given for ${nameToText(name)}, which has no records` });
    else if (opts.pool && !grouped.get(key)!.has(RRType.A) && !grouped.get(key)!.has(RRType.AAAA)) {
      issues.push({ file, line: opts.line, path: opts.path, message: `a pool needs A or AAAA records at ${nameToText(name)}` });
    }
  }

  if (issues.length > 0 || !soaSet) return { issues: capIssues(issues, file) };

  // Build nodes; every ancestor between a name and the apex exists at least as an empty non-terminal.
  const nodes = new Map<string, ZoneNode>();
  let slot = 0;
  let hasDelegations = false;
  let hasWildcards = false;
  for (const [key, byType] of grouped) {
    const opts = nameOptions.get(key);
    const rrsets: RRset[] = [];
    let owner = input.origin;
    for (const [type, set] of byType) {
      owner = set.owner;
      const isAddress = type === RRType.A || type === RRType.AAAA;
      // A pooled RRset may shrink or grow (standby) at run time, so it always gets a rotation slot.
      const pool = isAddress ? opts?.pool : undefined;
      const rotates = isAddress && (set.records.length > 1 || pool !== undefined);
      const maxAnswers = rotates && opts?.maxAnswers !== undefined && (pool !== undefined || opts.maxAnswers < set.records.length) ? opts.maxAnswers : undefined;
      const ttl = clampTtl(set.ttl, input.ttlPolicy);
      const records = Object.freeze(set.records.slice());
      // A pool is only ever on a rotating set (see above), so a set that does not rotate needs none of the four.
      rrsets.push(rotates ? { owner: set.owner, ownerKey: key, type, ttl, records, rotates, maxAnswers, rotationSlot: slot++, pool } : { owner: set.owner, ownerKey: key, type, ttl, records });
    }
    if (key !== originKey && byType.has(RRType.NS)) hasDelegations = true;
    if (key.startsWith('*.') || key === '*') hasWildcards = true;
    nodes.set(key, new NameNode(owner, key, rrsets));
  }
  // A name of up to 127 labels can bring up to 126 empty non-terminals, so they count against
  // the zone limit too: otherwise a file of deep, distinct names would cost ~126 nodes per record.
  let emptyNonTerminals = 0;
  for (const key of [...nodes.keys()]) {
    let parent = parentOf(key);
    let parentName = parentOf(nodes.get(key)!.name);
    while (parent !== undefined && parentName !== undefined && isAtOrBelow(parent, originKey) && !nodes.has(parent)) {
      if (++emptyNonTerminals > limits.maxRecords) {
        return {
          issues: [
            {
              file,
              message: `zone ${nameToText(input.origin)} has more than ${limits.maxRecords} empty non-terminals (names with no records between the apex and the records' owners), the limit per zone (--zone-max-records)`,
            },
          ],
        };
      }
      nodes.set(parent, new NameNode(parentName, parent, []));
      parent = parentOf(parent);
      parentName = parentOf(parentName);
    }
  }

  // A wildcard may exist only as an empty non-terminal (`below.*.example.`): it still matches (RFC 4592 §2.2.2), answering NODATA.
  if (!hasWildcards) for (const key of nodes.keys()) if (key === '*' || key.startsWith('*.')) hasWildcards = true;

  const soa = nodes.get(originKey)!.rrsets.get(RRType.SOA)!;
  const soaData = soa.records[0] as Extract<RData, { kind: 'SOA' }>;
  const zone: Zone = {
    origin: input.origin,
    originKey,
    originLabels: originKey === '' ? 0 : originKey.split('.').length,
    source: input.source,
    nodes: nodeIndex(nodes),
    soa,
    negativeTtl: clampTtl(Math.min(soa.ttl, soaData.minimum), input.ttlPolicy),
    ttlPolicy: input.ttlPolicy,
    rotationSlots: slot,
    hasDelegations,
    hasWildcards,
    pooled: pooledOf(nodes),
    transfer: input.transfer,
    serialAuto: input.serialAuto ?? false,
  };
  return { zone, issues: [] };
}
