/**
 * Authoritative answer logic (RFC 1034 §4.3.2, RFC 2308, RFC 4592, RFC 6604,
 * RFC 8482), in the shape of Knot's query pipeline: the zone is already chosen;
 * the name resolves to one explicit outcome, then answer, authority and
 * additional are filled in separate steps. Pure: no I/O, no logging, no clock.
 */
import { isAtOrBelow, nameKey } from '../zone/name.ts';
import { RRType, type RData } from '../zone/records.ts';
import type { RRset, SectionEntry, Zone, ZoneNode } from '../zone/zone.ts';

export type Outcome = 'HIT' | 'NODATA' | 'NXDOMAIN' | 'DELEGATION' | 'SERVFAIL';

/**
 * What a health-checked RRset serves right now: the records and TTL to use,
 * or a policy outcome when every member is down. Decided outside the resolver
 * (src/server/pool-registry.ts) and passed in, so resolution stays a pure function.
 */
/** What a health-checked RRset serves: its live records and how to rotate and count them. */
export interface LiveRecords {
  readonly ttl: number;
  readonly records: readonly RData[];
  readonly weights?: readonly number[] | undefined;
  readonly firstSlots?: readonly number[] | undefined;
  readonly steer?: readonly number[] | undefined;
}

export type LiveSet =
  | {
      readonly kind: 'records';
      readonly records: readonly RData[];
      readonly ttl: number;
      readonly weights?: readonly number[] | undefined;
      /** First-position counter slot of each record (src/balancing/first-served.ts), same order. */
      readonly firstSlots?: readonly number[] | undefined;
      /** Headroom weights heavy resolvers are steered by (balance.resolvers.steer), same order as records. */
      readonly steer?: readonly number[] | undefined;
    }
  | { readonly kind: 'nodata' }
  | { readonly kind: 'servfail' };
export type LiveView = (rrset: RRset) => LiveSet | undefined;

export type { SectionEntry };

export interface Resolution {
  readonly outcome: Outcome;
  readonly rcode: 0 | 2 | 3;
  /** AA flag: false only for a plain referral. */
  readonly authoritative: boolean;
  readonly answer: readonly SectionEntry[];
  readonly authority: readonly SectionEntry[];
  readonly additional: readonly SectionEntry[];
  /**
   * For answers that do not depend on the exact qname (NXDOMAIN, wildcard
   * synthesis, referral from below a cut) a key naming what they do depend on,
   * so that one encoded answer serves every such name; undefined otherwise.
   */
  readonly sharedKey: string | undefined;
  /**
   * With a sharedKey: the deepest name every qname sharing the answer ends in
   * (the zone cut, the wildcard's parent, the apex). The encoded answer may
   * point only at it and its ancestors inside the question (wire/answer.ts).
   */
  readonly sharedSuffix: string | undefined;
  /** Leading additional entries that must fit or TC is set: a referral's in-domain glue (RFC 9471 §3). */
  readonly requiredAdditional: number;
  /**
   * The name has no data of this type, and the qtype played no other part
   * (not CNAME, ANY or DS): the same answer, byte for byte, serves every such
   * qtype, so it is cached once per name rather than once per qtype (random
   * qtypes cannot fill the cache).
   */
  readonly qtypeFree: boolean;
  /** With qtypeFree: the node that has no data of the qtype (the qname's, or the end of its CNAME chain). */
  readonly missingAt: ZoneNode | undefined;
}

/** Types whose resolution differs from a plain lookup before the final node (CNAME and ANY stop at a CNAME; DS takes the parent side of a cut). */
export const isPlainType = (qtype: number) => qtype !== RRType.CNAME && qtype !== RRType.ANY && qtype !== RRType.DS;

/** RFC 1034 §4.3.2 step 3.a: CNAME chains are followed, but never forever. */
export const MAX_CNAME_CHAIN = 12;

/** An RRset placed in a section: as the zone has it, or as its pool serves it now (`live`). */
const entry = (rrset: RRset, owner?: string, ownerKey?: string, live?: LiveRecords): SectionEntry => ({
  rrset,
  records: live?.records ?? rrset.records,
  owner: owner ?? rrset.owner,
  ownerKey: ownerKey ?? rrset.ownerKey,
  ttl: live?.ttl ?? rrset.ttl,
  weights: live?.weights,
  firstSlots: live?.firstSlots,
  steer: live?.steer,
});

/** Result of walking from the apex towards a name. */
type Lookup =
  | { kind: 'exact'; node: ZoneNode }
  | { kind: 'cut'; node: ZoneNode }
  | { kind: 'missing'; encloser: ZoneNode };

/**
 * Walks down from the apex, label by label, so a zone cut above the name is
 * found before the name itself (RFC 1034 §4.3.2 step 3.b). `qtype` matters
 * only for DS, which the parent side of a cut answers (RFC 4035 §3.1.4.1).
 */
export function lookup(zone: Zone, key: string, qtype: number): Lookup {
  const apex = zone.nodes.get(zone.originKey)!;
  if (key === zone.originKey) return { kind: 'exact', node: apex };
  // Byte offsets at which each suffix of `key` strictly below the apex starts, deepest last.
  const stop = zone.originKey === '' ? key.length + 1 : key.length - zone.originKey.length;
  let encloser = apex;
  let end = stop - 1; // position of the '.' before the apex (or key.length for the root zone)
  if (!zone.hasDelegations) {
    // Fast path: without cuts, only the full name and (if missing) its closest encloser matter.
    const node = zone.nodes.get(key);
    if (node) return { kind: 'exact', node };
    return { kind: 'missing', encloser: closestEncloser(zone, key) };
  }
  while (end > 0) {
    const start = key.lastIndexOf('.', end - 1) + 1;
    const suffix = start === 0 ? key : key.slice(start);
    const node = zone.nodes.get(suffix);
    if (!node) return { kind: 'missing', encloser };
    const isName = start === 0;
    if (node.rrsets.has(RRType.NS) && !(isName && qtype === RRType.DS)) return { kind: 'cut', node };
    if (isName) return { kind: 'exact', node };
    encloser = node;
    end = start - 1;
  }
  return { kind: 'exact', node: encloser };
}

function closestEncloser(zone: Zone, key: string): ZoneNode {
  let k = key;
  for (;;) {
    const dot = k.indexOf('.');
    k = dot < 0 ? '' : k.slice(dot + 1);
    const node = zone.nodes.get(k);
    if (node) return node;
    if (k === zone.originKey || k === '') return zone.nodes.get(zone.originKey)!;
  }
}

function negativeSoa(zone: Zone): SectionEntry {
  return entry(zone.soa, undefined, undefined, { ttl: zone.negativeTtl, records: zone.soa.records });
}

/** Targets whose addresses RFC 1034 §3.6 additional-section processing adds. */
function targetName(data: RData): string | undefined {
  switch (data.kind) {
    case 'NS':
      return data.ns;
    case 'MX':
      return data.exchange;
    case 'SRV':
      return data.target;
    default:
      return undefined;
  }
}

/**
 * A referral's additional section (RFC 1034 §4.3.2 step 3.b, RFC 9471):
 * in-domain glue (addresses of NS names at or below the cut) first, and how
 * many entries that is, then the addresses of other NS names inside the zone
 * (sibling glue), which are optional.
 */
function referralGlue(zone: Zone, cut: ZoneNode, ns: RRset, live?: LiveView): { additional: SectionEntry[]; required: number } {
  const all = addressesFor(zone, [ns], [], live);
  const inDomain = all.filter((e) => isAtOrBelow(e.ownerKey, cut.key));
  const sibling = all.filter((e) => !isAtOrBelow(e.ownerKey, cut.key));
  return { additional: [...inDomain, ...sibling], required: inDomain.length };
}

/**
 * Addresses of the NS, MX and SRV targets inside the zone (RFC 1034 §3.6):
 * the target's own A/AAAA only. Additional data is optional (RFC 2181 §9), so
 * none is synthesised from a wildcard (Knot 3.2 does, and then writes some of
 * it with the wildcard's own `*` owner). Each owner and type once, and none
 * already in the answer.
 */
function addressesFor(zone: Zone, sets: readonly RRset[], exclude: readonly SectionEntry[], live?: LiveView): SectionEntry[] {
  const out: SectionEntry[] = [];
  // Built on the first target: most answers (A, AAAA, TXT) have none, and this runs for every wildcard expansion.
  let seen: Set<string> | undefined;
  for (const set of sets) {
    for (const data of set.records) {
      const target = targetName(data);
      if (target === undefined) continue;
      seen ??= new Set<string>(exclude.map((e) => `${e.rrset.type}|${e.ownerKey}`));
      const key = nameKey(target);
      if (!isAtOrBelow(key, zone.originKey)) continue;
      const node = zone.nodes.get(key);
      if (!node) continue;
      for (const type of [RRType.A, RRType.AAAA]) {
        const rr = node.rrsets.get(type);
        if (!rr || seen.has(`${type}|${key}`)) continue;
        seen.add(`${type}|${key}`);
        const view = live?.(rr);
        if (!view) out.push(entry(rr));
        else if (view.kind === 'records') out.push(entry(rr, undefined, undefined, view));
      }
    }
  }
  return out;
}

/** RFC 8482 §4.2: answer ANY with one RRset; the lowest type code keeps it deterministic. */
function minimalAny(node: ZoneNode): RRset | undefined {
  let best: RRset | undefined;
  for (const set of node.rrsets.values()) if (!best || set.type < best.type) best = set;
  return best;
}

/**
 * Resolves `qnameKey` (lower case, below or at the zone apex) for `qtype`.
 * `qname` is the same name as the client wrote it; it is the owner written
 * for wildcard-synthesised records (RFC 4592 §2.1) when the qname itself was synthesised.
 */
export function resolve(zone: Zone, qname: string, qnameKey: string, qtype: number, live?: LiveView): Resolution {
  const answer: SectionEntry[] = [];
  const visited = new Set<string>();
  let currentKey = qnameKey;
  let current = qname;
  let sharedKey: string | undefined;
  let sharedSuffix: string | undefined;
  let wildcardKey: string | undefined;
  const done = (r: Omit<Resolution, 'sharedKey' | 'sharedSuffix' | 'requiredAdditional' | 'qtypeFree' | 'missingAt'> & { requiredAdditional?: number; missingType?: ZoneNode }): Resolution => {
    const qtypeFree = r.missingType !== undefined && isPlainType(qtype);
    // A wildcard's answer depends on the qtype, unless it is the qtype-free NODATA.
    const key = sharedKey !== undefined && wildcardKey !== undefined ? `W:${wildcardKey}:${qtypeFree ? 'N' : qtype}` : sharedKey;
    const { missingType: _, ...rest } = r;
    return { ...rest, requiredAdditional: r.requiredAdditional ?? 0, sharedKey: key, sharedSuffix: key === undefined ? undefined : sharedSuffix, qtypeFree, missingAt: qtypeFree ? r.missingType : undefined };
  };

  for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
    visited.add(currentKey);
    const found = lookup(zone, currentKey, qtype);

    if (found.kind === 'cut') {
      const ns = found.node.rrsets.get(RRType.NS)!;
      if (hop === 0 && found.node.key !== qnameKey) {
        sharedKey = `D:${found.node.key}`;
        sharedSuffix = found.node.key;
      }
      const glue = referralGlue(zone, found.node, ns, live);
      return done({
        outcome: 'DELEGATION',
        rcode: 0,
        // A referral reached through an authoritative CNAME keeps AA for the CNAME part.
        authoritative: answer.length > 0,
        answer,
        authority: [entry(ns)],
        additional: glue.additional,
        requiredAdditional: glue.required,
      });
    }

    let node: ZoneNode;
    // The qname is written as the client spelled it; later chain links as the zone spells them.
    let owner = current;
    const ownerKey = currentKey;
    if (found.kind === 'exact') {
      node = found.node;
      if (hop > 0) owner = node.name;
    } else {
      const wildcard = zone.hasWildcards ? zone.nodes.get(found.encloser.key === '' ? '*' : `*.${found.encloser.key}`) : undefined;
      if (!wildcard) {
        if (hop === 0) {
          sharedKey = 'X';
          sharedSuffix = zone.originKey;
        }
        return done({ outcome: 'NXDOMAIN', rcode: 3, authoritative: true, answer, authority: [negativeSoa(zone)], additional: [] });
      }
      node = wildcard;
      if (hop === 0) {
        sharedKey = 'W';
        wildcardKey = wildcard.key;
        sharedSuffix = found.encloser.key;
      }
    }

    const cname = node.rrsets.get(RRType.CNAME);
    if (cname && qtype !== RRType.CNAME && qtype !== RRType.ANY) {
      answer.push(entry(cname, owner, ownerKey));
      const target = (cname.records[0] as Extract<RData, { kind: 'CNAME' }>).domain;
      const targetKey = nameKey(target);
      // Follow only inside this zone (as Knot and NSD do); the resolver chases the rest.
      // A chain that comes back to the qname ends where it does because of the qname itself: not shareable.
      if (targetKey === qnameKey) sharedKey = undefined;
      if (!isAtOrBelow(targetKey, zone.originKey) || visited.has(targetKey) || hop === MAX_CNAME_CHAIN) {
        return done({ outcome: 'HIT', rcode: 0, authoritative: true, answer, authority: [], additional: [] });
      }
      current = target;
      currentKey = targetKey;
      continue;
    }

    const set = qtype === RRType.ANY ? minimalAny(node) : node.rrsets.get(qtype);
    if (!set) {
      return done({ outcome: 'NODATA', rcode: 0, authoritative: true, answer, authority: [negativeSoa(zone)], additional: [], missingType: node });
    }
    const view = live?.(set);
    if (view?.kind === 'nodata') {
      return done({ outcome: 'NODATA', rcode: 0, authoritative: true, answer, authority: [negativeSoa(zone)], additional: [] });
    }
    if (view?.kind === 'servfail') {
      return done({ outcome: 'SERVFAIL', rcode: 2, authoritative: false, answer: [], authority: [], additional: [] });
    }
    answer.push(view ? entry(set, owner, ownerKey, view) : entry(set, owner, ownerKey));
    return done({ outcome: 'HIT', rcode: 0, authoritative: true, answer, authority: [], additional: addressesFor(zone, [set], answer, live) });
  }
  // Unreachable: the loop returns on its last hop.
  return done({ outcome: 'HIT', rcode: 0, authoritative: true, answer, authority: [], additional: [] });
}
