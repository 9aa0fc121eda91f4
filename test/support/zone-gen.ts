/**
 * fast-check generators of random authoritative zones and of queries against
 * them, for the differential test against Knot (test/integration/diff-fuzz.test.ts,
 * bench/fuzz-diff.ts).
 *
 * A zone is generated as a *recipe* (plain data chosen by fast-check, so it
 * shrinks) and rendered by `renderZone` into master-file text with absolute
 * names only (no $ORIGIN, no relative names: both servers read the same
 * octets the same way). Rendering keeps every zone loadable by both servers:
 * a CNAME never shares its owner with other data (RFC 1034 §3.6.2, Knot
 * refuses such zones), one TTL per RRset (RFC 2181 §5.2), names at most 255
 * octets. What it deliberately produces:
 *
 *   - delegations with several NS, glue in and out of bailiwick, glue for
 *     names below the cut, DS at the cut, occluded data below it, and
 *     delegations big enough that their glue does not fit 512 octets;
 *   - a child zone for some cuts, served too (DS at its apex is the parent's);
 *   - wildcards at several depths, with and without data for the qtype,
 *     wildcard CNAMEs, and a wildcard that is only an empty non-terminal
 *     (`below.*.x` with nothing at `*.x`);
 *   - CNAME chains: in-zone, out of zone, dangling, loops, to wildcards, to cuts;
 *   - empty non-terminals, several RRsets per name (A AAAA MX TXT SRV PTR CAA
 *     TYPE65280 in RFC 3597 form), mixed-case owners;
 *   - names near 255 octets and RRsets near the UDP limits (512 and 1232);
 *   - optionally labels with escaped dots (`a\.b`), off by default.
 *
 * Queries (`queryArb`) pick a name at, above, below or beside a node of the
 * zone, random letter case, a qtype, EDNS or not, bufsize 512 or 1232, UDP or TCP.
 */
import fc from 'fast-check';
import { labelText, namesText, type FuzzQuery } from './diff-compare.ts';
import { prng } from './rawdns.ts';

export interface GenOptions {
  /** Labels containing a literal '.' (written `a\.b`). Off until rrdns accepts them. */
  escapedDots?: boolean;
  /** Names within a few octets of 255 (default true). */
  longNames?: boolean;
  /** RRsets and delegations near the UDP limits (default true). */
  bigSets?: boolean;
  /** Child zones served beside their parent (default true). */
  childZones?: boolean;
}

/** Parent of every generated zone: z<N>.fuzz.test. */
export const FUZZ_SUFFIX = ['fuzz', 'test'];

const LABELS = ['a', 'b', 'c', 'www', 'mail', 'ns1', 'ns2', 'x', 'sub', 'dev'];
const ESCAPED = ['a.b', 'x.y'];

const DATA_TYPES = ['A', 'AAAA', 'MX', 'TXT', 'SRV', 'PTR', 'CAA', 'TYPE65280'] as const;
type DataType = (typeof DATA_TYPES)[number];

/** A name relative to the zone apex, as labels (leaf first). */
type Rel = string[];

/** Where a target name (NS, MX, SRV, PTR, CNAME) points. */
type Target =
  | { kind: 'node'; index: number } // an owner generated in this zone
  | { kind: 'missing'; label: string } // in the zone, no such name
  | { kind: 'outside'; label: string } // another domain
  | { kind: 'below-cut'; index: number; label: string } // below one of the cuts
  | { kind: 'wildcard'; index: number; label: string } // a name a wildcard matches
  | { kind: 'cut'; index: number } // the delegation point itself
  | { kind: 'cname'; index: number } // another CNAME (chains, loops)
  | { kind: 'self-wildcard'; label: string }; // for a wildcard CNAME: a name that same wildcard matches (a loop through it)

interface NodeRecipe {
  rel: Rel;
  types: DataType[];
  /** Records per RRset (1..3), rotation order exercised for A/AAAA. */
  count: number;
  target: Target;
}

interface DelegationRecipe {
  rel: Rel;
  ns: Array<{ where: 'below' | 'deep' | 'zone' | 'outside' | 'sibling'; label: string; glue: 'a' | 'aaaa' | 'both' | 'none' }>;
  ds: boolean;
  occluded: boolean;
  child: boolean;
}

interface WildcardRecipe {
  parent: Rel;
  types: DataType[];
  cname: Target | null;
  /** `below.*.parent` only: `*` exists as an empty non-terminal. */
  entOnly: boolean;
}

interface CnameRecipe {
  rel: Rel;
  target: Target;
}

export interface ZoneRecipe {
  nodes: NodeRecipe[];
  delegations: DelegationRecipe[];
  wildcards: WildcardRecipe[];
  cnames: CnameRecipe[];
  apexTypes: DataType[];
  negativeTtl: number;
  soaTtl: number;
  longName: { at: number; pad: number } | null;
  big: { kind: 'A' | 'AAAA' | 'TXT' | 'MX'; count: number; rel: Rel } | null;
  bigDelegation: { count: number; rel: Rel } | null;
  /** Seed for letter case of owners (mixed-case zone text). */
  caseSeed: number;
}

const labelArb = (opts: GenOptions) => (opts.escapedDots ? fc.constantFrom(...LABELS, ...ESCAPED) : fc.constantFrom(...LABELS));
const relArb = (opts: GenOptions, max = 3) => fc.array(labelArb(opts), { minLength: 1, maxLength: max });

/** `arb` in about `percent`% of zones, else null. */
const sometimes = <T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(null) }, { weight: percent, arbitrary: arb });

const targetArb: fc.Arbitrary<Target> = fc.oneof(
  fc.record({ kind: fc.constant('node' as const), index: fc.nat(20) }),
  fc.record({ kind: fc.constant('missing' as const), label: fc.constantFrom(...LABELS) }),
  fc.record({ kind: fc.constant('outside' as const), label: fc.constantFrom(...LABELS) }),
  fc.record({ kind: fc.constant('below-cut' as const), index: fc.nat(5), label: fc.constantFrom(...LABELS) }),
  fc.record({ kind: fc.constant('wildcard' as const), index: fc.nat(5), label: fc.constantFrom(...LABELS) }),
  fc.record({ kind: fc.constant('cut' as const), index: fc.nat(5) }),
  fc.record({ kind: fc.constant('cname' as const), index: fc.nat(8) }),
  fc.record({ kind: fc.constant('self-wildcard' as const), label: fc.constantFrom(...LABELS) }),
);

export function zoneRecipeArb(opts: GenOptions = {}): fc.Arbitrary<ZoneRecipe> {
  const types = fc.subarray([...DATA_TYPES], { minLength: 1, maxLength: 4 });
  return fc.record({
    nodes: fc.array(fc.record({ rel: relArb(opts), types, count: fc.integer({ min: 1, max: 3 }), target: targetArb }), { minLength: 2, maxLength: 10 }),
    delegations: fc.array(
      fc.record({
        rel: relArb(opts, 2),
        ns: fc.array(
          fc.record({
            where: fc.constantFrom('below' as const, 'deep' as const, 'zone' as const, 'outside' as const, 'sibling' as const),
            label: fc.constantFrom('ns1', 'ns2', 'ns3', 'a', 'www'),
            glue: fc.constantFrom('a' as const, 'aaaa' as const, 'both' as const, 'none' as const),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        ds: fc.boolean(),
        occluded: fc.boolean(),
        child: opts.childZones === false ? fc.constant(false) : fc.boolean(),
      }),
      { maxLength: 3 },
    ),
    wildcards: fc.array(
      fc.record({
        parent: fc.array(labelArb(opts), { maxLength: 2 }),
        types,
        // Loops through the wildcard itself are weighted up: they are where a body shared by every matching name can go wrong.
        cname: fc.option(fc.oneof({ weight: 3, arbitrary: targetArb }, { weight: 2, arbitrary: fc.record({ kind: fc.constant('self-wildcard' as const), label: fc.constantFrom(...LABELS) }) }), { freq: 3 }),
        entOnly: fc.boolean(),
      }),
      { maxLength: 3 },
    ),
    cnames: fc.array(fc.record({ rel: relArb(opts, 2), target: targetArb }), { maxLength: 5 }),
    apexTypes: fc.subarray(['MX', 'TXT', 'A', 'AAAA', 'CAA'] as DataType[]),
    negativeTtl: fc.constantFrom(30, 60, 600),
    soaTtl: fc.constantFrom(60, 3600),
    longName: opts.longNames === false ? fc.constant(null) : sometimes(fc.record({ at: fc.nat(10), pad: fc.nat(8) }), 30),
    big:
      opts.bigSets === false
        ? fc.constant(null)
        : sometimes(
            fc.record({ kind: fc.constantFrom('A' as const, 'AAAA' as const, 'TXT' as const, 'MX' as const), count: fc.integer({ min: 5, max: 80 }), rel: relArb(opts, 1) }),
            40,
          ),
    bigDelegation: opts.bigSets === false ? fc.constant(null) : sometimes(fc.record({ count: fc.integer({ min: 4, max: 16 }), rel: relArb(opts, 1) }), 25),
    caseSeed: fc.nat(),
  });
}

// ---------------------------------------------------------------------------
// Rendering

export interface GeneratedZone {
  /** Apex as labels, e.g. ['z3', 'fuzz', 'test']. */
  origin: string[];
  /** Master file text (absolute names only). */
  text: string;
  /** Every name the zone mentions (owners, targets, apex), as labels: where queries start from. */
  names: string[][];
}


const lower = (labels: readonly string[]) => labels.map((l) => l.toLowerCase());
const keyOf = (labels: readonly string[]) => namesText(lower(labels));
const wireLen = (labels: readonly string[]) => labels.reduce((n, l) => n + Buffer.byteLength(l, 'latin1') + 1, 1);
const isBelow = (name: readonly string[], anc: readonly string[]) =>
  name.length > anc.length && keyOf(name.slice(name.length - anc.length)) === keyOf(anc);

class ZoneBuilder {
  readonly lines: string[] = [];
  private readonly types = new Map<string, Set<string>>();
  private readonly ttls = new Map<string, number>();
  private readonly seen = new Set<string>();
  readonly names = new Map<string, string[]>();
  readonly cuts: string[][] = [];
  private readonly randomCase: () => number;
  readonly origin: string[];

  constructor(origin: string[], caseSeed: number) {
    this.origin = origin;
    this.randomCase = prng(caseSeed);
  }

  mention(name: string[]): void {
    if (wireLen(name) <= 255) this.names.set(keyOf(name), name);
  }

  underCut(owner: readonly string[]): boolean {
    return this.cuts.some((c) => isBelow(owner, c));
  }

  private caseOf(owner: string[]): string[] {
    // A third of the owners are written in mixed case: both servers must match case-insensitively.
    if (this.randomCase() > 0.33) return owner;
    return owner.map((l) => [...l].map((c) => (this.randomCase() < 0.5 ? c.toUpperCase() : c)).join(''));
  }

  /** Adds one record unless it would make the zone invalid for either server; true when added. */
  add(owner: string[], type: string, rdata: string, ttl: number, mention = true): boolean {
    if (wireLen(owner) > 255 || !isBelow(owner, this.origin) && keyOf(owner) !== keyOf(this.origin)) return false;
    const k = keyOf(owner);
    // Identical records are one record (RFC 2181 §5): never write a duplicate line.
    const exact = `${k} ${type} ${rdata.toLowerCase()}`;
    if (this.seen.has(exact)) return false;
    const set = this.types.get(k) ?? new Set<string>();
    if (type === 'CNAME' ? set.size > 0 : set.has('CNAME')) return false;
    if (type === 'CNAME' && this.underCut(owner)) return false;
    const ttlKey = `${k} ${type}`;
    const fixed = this.ttls.get(ttlKey) ?? ttl;
    this.ttls.set(ttlKey, fixed);
    set.add(type);
    this.types.set(k, set);
    this.seen.add(exact);
    if (mention) this.mention(owner);
    this.lines.push(`${namesText(this.caseOf(owner))} ${fixed} IN ${type} ${rdata}`);
    return true;
  }

  has(owner: readonly string[], type?: string): boolean {
    const set = this.types.get(keyOf(owner));
    return set !== undefined && (type === undefined || set.has(type));
  }
}

const addrA = (zone: number, i: number) => `192.0.2.${(zone * 7 + i) % 250 + 1}`;
const addrAAAA = (zone: number, i: number) => `2001:db8::${zone.toString(16)}:${i.toString(16)}`;

function rdataFor(type: DataType, i: number, zone: number, target: string): string {
  switch (type) {
    case 'A':
      return addrA(zone, i);
    case 'AAAA':
      return addrAAAA(zone, i);
    case 'MX':
      return `${10 * (i + 1)} ${target}`;
    case 'TXT':
      return `"t${i}" "zone ${zone}"`;
    case 'SRV':
      return `${i} 5 ${5060 + i} ${target}`;
    case 'PTR':
      return target;
    case 'CAA':
      return `0 issue "ca${i}.example"`;
    case 'TYPE65280':
      return `\\# 4 0a0000${(i + 1).toString(16).padStart(2, '0')}`;
  }
}

export interface RenderedBatchZone extends GeneratedZone {
  /** Child zones served beside this one (their apex is a cut of this zone). */
  children: GeneratedZone[];
}

/** Renders recipe number `index` as zone `z<index>.fuzz.test` (and its served children). */
export function renderZone(index: number, recipe: ZoneRecipe, opts: GenOptions = {}): RenderedBatchZone {
  const origin = [`z${index}`, ...FUZZ_SUFFIX];
  const b = new ZoneBuilder(origin, recipe.caseSeed);
  const abs = (rel: Rel) => [...rel, ...origin];
  const apex = origin;
  const apexText = namesText(apex);

  // With escaped dots on, the SOA rname is the classic mailbox with a dot in its local part (RFC 1035 §8).
  const rname = opts.escapedDots && index % 2 === 0 ? `john\\.doe.${apexText}` : `hostmaster.${apexText}`;
  b.add(apex, 'SOA', `ns1.${apexText} ${rname} ${index + 1} 3600 900 1209600 ${recipe.negativeTtl}`, recipe.soaTtl);
  b.add(apex, 'NS', `ns1.${apexText}`, 3600);
  b.add(apex, 'NS', `ns.outside.example.`, 3600);
  b.add(['ns1', ...apex], 'A', addrA(index, 0), 3600);

  // Cuts first: what lies below them is occluded, so other owners are placed knowing where they are.
  const cutNames = recipe.delegations.map((d) => abs(d.rel)).filter((c) => keyOf(c) !== keyOf(apex));
  for (const c of cutNames) if (!b.cuts.some((x) => keyOf(x) === keyOf(c) || isBelow(c, x))) b.cuts.push(c);

  const wildcardMatch = (i: number, label: string) => {
    const w = recipe.wildcards[i % Math.max(1, recipe.wildcards.length)];
    return w ? [label, ...abs(w.parent)] : [label, 'nowild', ...apex];
  };
  const cnameOwner = (i: number) => {
    const c = recipe.cnames[i % Math.max(1, recipe.cnames.length)];
    return c ? abs(c.rel) : ['nocname', ...apex];
  };
  // Targets are query starting points too (a query for a CNAME's target, a glue name, ...).
  const targetName = (t: Target, wildcardParent?: string[]): string[] => {
    const name = targetOf(t, wildcardParent);
    b.mention(name);
    return name;
  };
  const targetOf = (t: Target, wildcardParent?: string[]): string[] => {
    switch (t.kind) {
      case 'self-wildcard':
        return [t.label, ...(wildcardParent ?? ['missing', ...apex])];
      case 'node':
        return recipe.nodes.length ? abs(recipe.nodes[t.index % recipe.nodes.length]!.rel) : apex;
      case 'missing':
        return [t.label, 'missing', ...apex];
      case 'outside':
        return [t.label, 'elsewhere', 'example'];
      case 'below-cut':
        return b.cuts.length ? [t.label, ...b.cuts[t.index % b.cuts.length]!] : [t.label, ...apex];
      case 'wildcard':
        return wildcardMatch(t.index, t.label);
      case 'cut':
        return b.cuts.length ? b.cuts[t.index % b.cuts.length]! : apex;
      case 'cname':
        return cnameOwner(t.index);
    }
  };

  // Delegations: NS set, glue (in bailiwick, below the cut, deeper below, elsewhere in the zone, outside), DS, occluded data.
  const children: GeneratedZone[] = [];
  recipe.delegations.forEach((d, di) => {
    const cut = abs(d.rel);
    if (!b.cuts.some((c) => keyOf(c) === keyOf(cut))) return;
    const nsNames: string[][] = [];
    d.ns.forEach((ns, i) => {
      const name =
        ns.where === 'below'
          ? [ns.label, ...cut]
          : ns.where === 'deep'
            ? [ns.label, 'deep', ...cut]
            : ns.where === 'zone'
              ? [ns.label, 'hosts', ...apex]
              : ns.where === 'sibling'
                ? [ns.label, ...(b.cuts[(di + 1) % b.cuts.length] ?? cut)]
                : [ns.label, `dns${i}`, 'example'];
      if (!b.add(cut, 'NS', namesText(name), 3600)) return;
      nsNames.push(name);
      if (ns.where !== 'outside') {
        if (ns.glue === 'a' || ns.glue === 'both') b.add(name, 'A', addrA(index, 100 + di * 10 + i), 3600);
        if (ns.glue === 'aaaa' || ns.glue === 'both') b.add(name, 'AAAA', addrAAAA(index, 100 + di * 10 + i), 3600);
      }
    });
    if (d.ds) b.add(cut, 'DS', `\\# 24 ${(0x3039 + di).toString(16).padStart(4, '0')}0d02${'ab'.repeat(20)}`, 3600);
    if (d.occluded) {
      b.add(['www', ...cut], 'A', addrA(index, 200 + di), 300);
      b.add(['www', ...cut], 'TXT', '"occluded"', 300);
    }
    if (d.child && nsNames.length && !children.some((c) => keyOf(c.origin) === keyOf(cut))) {
      const child = new ZoneBuilder(cut, recipe.caseSeed + di + 1);
      const ct = namesText(cut);
      child.add(cut, 'SOA', `${namesText(nsNames[0]!)} hostmaster.${ct} 7 3600 900 1209600 60`, 3600);
      for (const n of nsNames) child.add(cut, 'NS', namesText(n), 3600);
      for (const [i, n] of nsNames.entries()) if (isBelow(n, cut)) child.add(n, 'A', addrA(index, 100 + di * 10 + i), 3600);
      child.add(cut, 'A', addrA(index, 150 + di), 300);
      child.add(['www', ...cut], 'A', addrA(index, 160 + di), 300);
      child.add(['www', ...cut], 'TXT', '"child zone"', 300);
      child.add(['*', ...cut], 'TXT', '"child wildcard"', 300);
      children.push({ origin: cut, text: `${child.lines.join('\n')}\n`, names: [...child.names.values()] });
    }
  });

  if (recipe.bigDelegation) {
    // Many NS with in-domain glue: the referral's glue cannot all fit 512 octets (RFC 9471 says TC then).
    const cut = abs(['big', ...recipe.bigDelegation.rel]);
    if (!b.underCut(cut) && !b.cuts.some((c) => isBelow(c, cut))) {
      b.cuts.push(cut);
      for (let i = 0; i < recipe.bigDelegation.count; i++) {
        const ns = [`ns${i}-with-a-longer-label`, ...cut];
        b.add(cut, 'NS', namesText(ns), 3600);
        // Only a few of the many glue names become query starting points: the rest would crowd out other cases.
        b.add(ns, 'A', addrA(index, i), 3600, i < 2);
        b.add(ns, 'AAAA', addrAAAA(index, i), 3600, i < 2);
      }
    }
  }

  // Apex data.
  for (const t of recipe.apexTypes) b.add(apex, t, rdataFor(t, 0, index, namesText(['mail', ...apex])), 300);
  b.add(['mail', ...apex], 'A', addrA(index, 1), 300);

  // Ordinary nodes (several RRsets each; below a cut they become occluded data).
  recipe.nodes.forEach((n, ni) => {
    const owner = abs(n.rel);
    const under = b.underCut(owner) || b.cuts.some((c) => keyOf(c) === keyOf(owner));
    const tgt = namesText(targetName(n.target));
    for (const t of n.types) {
      if (under && t !== 'A' && t !== 'AAAA' && t !== 'TXT') continue;
      for (let i = 0; i < n.count; i++) b.add(owner, t, rdataFor(t, ni * 3 + i, index, tgt), t === 'A' || t === 'AAAA' ? 30 : 300);
    }
  });

  // Wildcards.
  recipe.wildcards.forEach((w, wi) => {
    const parent = abs(w.parent);
    if (b.underCut(parent) || b.cuts.some((c) => keyOf(c) === keyOf(parent))) return;
    const star = ['*', ...parent];
    if (w.entOnly) {
      // `*` exists only as an empty non-terminal: it matches nothing (RFC 4592 §2.2.1) but makes names below it exist.
      b.add(['below', ...star], 'TXT', '"below a wildcard ENT"', 300);
      return;
    }
    if (w.cname) b.add(star, 'CNAME', namesText(targetName(w.cname, parent)), 300);
    else for (const t of w.types) b.add(star, t, rdataFor(t, 50 + wi, index, namesText(['mail', ...apex])), 300);
    // Several names the wildcard matches, of equal and of different lengths (bodies are shared per qname length).
    for (const l of ['a', 'b', 'x', 'match']) b.mention([l, ...parent]);
    b.mention(['deeper', 'match', ...parent]);
  });

  // CNAMEs (chains form when targets are other CNAMEs; loops when they come back).
  for (const c of recipe.cnames) b.add(abs(c.rel), 'CNAME', namesText(targetName(c.target)), 300);

  // A name near 255 octets, with data, and a CNAME to it.
  if (recipe.longName) {
    const room = 255 - wireLen(apex) - recipe.longName.pad;
    const labels: string[] = [];
    let left = room;
    while (left > 1) {
      const len = Math.min(63, left - 1);
      labels.push('l'.repeat(len - 1) + String(labels.length % 10));
      left -= len + 1;
    }
    const long = [...labels, ...apex];
    if (wireLen(long) <= 255 && !b.underCut(long)) {
      b.add(long, 'A', addrA(index, 90), 300);
      b.add(long, 'TXT', '"long name"', 300);
      b.add(['long', ...apex], 'CNAME', namesText(long), 300);
    }
  }

  // An RRset near the UDP limits.
  if (recipe.big) {
    const owner = abs(['big', ...recipe.big.rel]);
    if (!b.underCut(owner) && !b.has(owner)) {
      for (let i = 0; i < recipe.big.count; i++) {
        const rdata =
          recipe.big.kind === 'TXT'
            ? `"${'x'.repeat(180)}${String(i).padStart(3, '0')}"`
            : recipe.big.kind === 'MX'
              ? `${i} mx${i}.${apexText}`
              : recipe.big.kind === 'A'
                ? `198.51.${Math.floor(i / 250)}.${(i % 250) + 1}`
                : `2001:db8:1::${i.toString(16)}`;
        b.add(owner, recipe.big.kind, rdata, 300);
        if (recipe.big.kind === 'MX' && i % 3 === 0) b.add([`mx${i}`, ...apex], 'A', addrA(index, i), 300, i < 3);
      }
    }
  }

  return { origin, text: `${b.lines.join('\n')}\n`, names: [...b.names.values(), apex], children };
}

// ---------------------------------------------------------------------------
// Queries

export const QTYPES = ['A', 'AAAA', 'NS', 'MX', 'TXT', 'SOA', 'CNAME', 'DS', 'ANY', 'TYPE65280', 'SRV', 'PTR', 'CAA', 'TYPE4321'] as const;

/** The types a name holds in the generated zones (for queries that ask for data that exists). */
export type TypesOf = (labels: readonly string[]) => readonly string[];

/** A query against one of `names`: at, above, below or beside it, in random letter case. */
export function queryArb(names: readonly string[][], opts: GenOptions = {}, typesOf?: TypesOf): fc.Arbitrary<FuzzQuery> {
  return queryGroupArb(names, opts, typesOf).map((g) => g[0]!);
}

/**
 * One query, sometimes followed by siblings: the same question for names
 * differing only in the first label (same length and not). A server that
 * shares one encoded answer between names (wildcards, NXDOMAIN, referrals)
 * gives itself away only when a second name asks the same qtype after the
 * first one filled the cache, so groups are asked in order.
 */
export function queryGroupArb(names: readonly string[][], opts: GenOptions = {}, typesOf?: TypesOf): fc.Arbitrary<FuzzQuery[]> {
  const extra = opts.escapedDots ? [...LABELS, ...ESCAPED, '*'] : [...LABELS, '*'];
  const base = fc.constantFrom(...names);
  const nameArb = fc.oneof(
    { weight: 4, arbitrary: base },
    { weight: 2, arbitrary: fc.tuple(base, fc.integer({ min: 1, max: 2 })).map(([n, k]) => n.slice(Math.min(k, n.length))) },
    { weight: 3, arbitrary: fc.tuple(base, fc.constantFrom(...extra)).map(([n, l]) => [l, ...n]) },
    { weight: 1, arbitrary: fc.tuple(base, fc.constantFrom(...extra), fc.constantFrom(...extra)).map(([n, l, m]) => [l, m, ...n]) },
    { weight: 2, arbitrary: fc.tuple(base, fc.constantFrom(...extra)).map(([n, l]) => (n.length ? [l, ...n.slice(1)] : [l])) },
  );
  return fc
    .record({
      labels: nameArb,
      siblings: fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.subarray(['a', 'b', 'x', 'www', 'other'], { minLength: 1, maxLength: 3 }) }),
      caseBits: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
      mixed: fc.boolean(),
      // Two in five ask a type the name holds (answers big enough to truncate come from there), the rest any type.
      qtype: fc.oneof({ weight: 3, arbitrary: fc.constantFrom<string>(...QTYPES) }, { weight: 2, arbitrary: fc.nat().map((n) => ({ own: n })) }),
      edns: fc.constantFrom(null, 512, 1232),
      transport: fc.constantFrom('udp' as const, 'udp' as const, 'tcp' as const),
      rd: fc.boolean(),
    })
    .filter((r) => wireLen(r.labels) <= 255)
    .map((r) => {
      let bit = 0;
      const cased = (labels: string[]) => (r.mixed ? labels.map((l) => [...l].map((c) => (r.caseBits[bit++ % 64] ? c.toUpperCase() : c)).join('')) : labels);
      const group = [r.labels, ...(r.labels.length ? r.siblings.map((l) => [l, ...r.labels.slice(1)]) : [])].filter((n) => wireLen(n) <= 255);
      let qtype: string;
      if (typeof r.qtype === 'string') qtype = r.qtype;
      else {
        const own = typesOf?.(r.labels) ?? [];
        qtype = own.length ? own[r.qtype.own % own.length]! : QTYPES[r.qtype.own % QTYPES.length]!;
      }
      return group.map((labels) => ({ labels: cased(labels), qtype, edns: r.edns, transport: r.transport, rd: r.rd }));
    });
}

/** Presentation form of a query name (for messages). */
export const nameText = (labels: readonly string[]) => labels.map(labelText).join('.') + '.';

// ---------------------------------------------------------------------------
// Batches

export interface Batch {
  seed: number;
  /** Every zone to serve (generated zones and their children), for one Knot and one rrdns. */
  zones: GeneratedZone[];
  queries: FuzzQuery[];
}

/**
 * Zones `first`..`first+count-1` of run `seed` and `queriesPerZone` queries
 * for each: the same seed always gives the same batch (fast-check's sampler
 * is deterministic for a given seed), so a CI failure replays exactly.
 */
export function generateBatch(seed: number, first: number, count: number, queriesPerZone: number, opts: GenOptions = {}): Batch {
  const recipes = fc.sample(zoneRecipeArb(opts), { seed: (seed + first * 7919) | 0, numRuns: count });
  const zones: GeneratedZone[] = [];
  const queries: FuzzQuery[] = [];
  recipes.forEach((r, i) => {
    const z = renderZone(first + i, r, opts);
    // A child zone whose apex label holds a '.' cannot be named by a file: serve it only through the parent.
    const children = z.children.filter((c) => c.origin.every((l) => !/[.\\/]/.test(l)));
    zones.push({ origin: z.origin, text: z.text, names: z.names }, ...children);
    const names = [...z.names, ...children.flatMap((c) => c.names)];
    // Queries outside every zone too (REFUSED from both): the parent, the TLD, an unrelated name.
    names.push(FUZZ_SUFFIX, ['unrelated', 'example']);
    const types = new Map<string, string[]>();
    for (const t of [z, ...children])
      for (const line of t.text.split('\n')) {
        const [owner, , , type] = line.split(/\s+/);
        if (!owner || !type) continue;
        const k = owner.toLowerCase();
        types.set(k, [...(types.get(k) ?? []), ...(types.get(k)?.includes(type) ? [] : [type])]);
      }
    const typesOf: TypesOf = (labels) => types.get(keyOf(labels)) ?? [];
    // Names holding a large RRset are where truncation happens: weight them up as starting points.
    const counts = new Map<string, number>();
    for (const t of [z, ...children]) for (const line of t.text.split('\n')) if (line) counts.set(line.split(/\s+/)[0]!.toLowerCase(), (counts.get(line.split(/\s+/)[0]!.toLowerCase()) ?? 0) + 1);
    for (const n of [...names]) if ((counts.get(keyOf(n)) ?? 0) >= 8) for (let k = 0; k < 6; k++) names.push(n);
    const groups = fc.sample(queryGroupArb(names, opts, typesOf), { seed: (seed ^ ((first + i) * 2654435761)) | 0, numRuns: queriesPerZone });
    queries.push(...groups.flat().slice(0, queriesPerZone));
  });
  return { seed, zones, queries };
}
