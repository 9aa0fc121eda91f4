/**
 * rrdns' native zone format: one YAML (or JSON) document per zone, validated by
 * zod. Records are written as rdata text and parsed by the same rdata code as
 * RFC 1035 master files (parseRdataValue: the value alone, never spliced into a
 * master-file line), so both formats accept exactly the same values. A native zone
 * may take its static records from a master file (`masterFile:`) and add
 * round-robin settings and TTL policy on top. Every problem is reported with
 * file, line and path, all at once.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Pair, type YAMLMap } from 'yaml';
import { z } from 'zod';
import { capIssues, type ZoneIssue } from '../errors.ts';
import { parseMasterFile, parseRdataValue, parseTimeValue } from './masterfile.ts';
import { nameKey, nameToText, parseName } from './name.ts';
import { RRType, typeFromText, type ZoneRecord } from './records.ts';
import type { AdminOverride, BalanceSpec, NameOptions, PoolSpec, TtlPolicy, ZoneInput } from './zone.ts';
import { canonicalAddress, CheckObjectSchema, CheckSchema, parseDuration, type CheckConfig } from '../config/health-check.ts';
import { parseAllowEntry, parseNotifyTarget, transferSettings } from './transfer.ts';

const MAX_TTL = 0x7fffffff;
/** Seconds as a number, or a BIND-style duration string; one message for every bad form. */
const Ttl = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const seconds = typeof v === 'number' ? v : parseTimeValue(v.trim());
  if (seconds === undefined || !Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TTL) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a TTL (seconds 0..${MAX_TTL}, or units like 5m, 1h30m)` });
    return z.NEVER;
  }
  return seconds;
});

const RecordValue = z.union([z.string(), z.number(), z.object({ value: z.union([z.string(), z.number()]), ttl: Ttl.optional() }).strict()]);
const RecordValues = z.union([RecordValue, z.array(RecordValue).min(1)]);

const NAME_SETTINGS = new Set(['ttl', 'maxAnswers', 'pool']);

const OverrideValue = z.enum(['drain', 'force-up', 'force-down']);
const Fraction = z.number().min(0).max(1);
const DurationMs = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 100 || ms > 3_600_000) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration between 100ms and 1h (seconds as a number, or e.g. 500ms, 5s, 1m)` });
    return z.NEVER;
  }
  return ms;
});

/** Balancing mechanisms of a pool (README "Balancing"); each one is off unless its key is present. */
const Balance = z
  .object({
    feedback: z
      .object({
        signal: z.enum(['load', 'latency']).default('load'),
        gain: z.number().gt(0).max(1).default(0.5),
        maxStep: z.number().gt(0).max(4).default(0.25),
        floor: Fraction.default(0.1),
        interval: DurationMs.default(1000),
        stale: DurationMs.optional(),
      })
      .strict()
      .optional(),
    resolvers: z
      .object({
        heavyShare: Fraction.default(0.02),
        ttl: Ttl.default(5),
        steer: z.boolean().default(false),
      })
      .strict()
      .optional(),
    ecs: z
      .object({
        ipv4: z.number().int().min(0).max(32).default(24),
        ipv6: z.number().int().min(0).max(128).default(56),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Check fields are validated per member after merging (see parsePool), so the raw object schema here. */
const Pool = z
  .object({
    check: CheckObjectSchema.default({}),
    allDown: z.enum(['serveAll', 'backup', 'nodata', 'servfail']).default('serveAll'),
    // A list is hot standby (probed all the time, as it always was); the object form names the mode.
    standby: z
      .union([
        z.array(z.string()),
        z.object({ mode: z.enum(['hot', 'cold']).default('hot'), addresses: z.array(z.string()) }).strict(),
      ])
      .default([]),
    minHealthy: z.number().min(0).max(1).optional(),
    // Cluster only (--cluster-etcd): how many live instances must see a member down, and how many probe it.
    quorum: z.union([z.enum(['majority', 'any', 'all']), z.number().int('quorum must be majority, any, all or a whole number').min(1).max(1000)]).optional(),
    checkers: z.number().int('checkers must be a whole number').min(1).max(1000).optional(),
    members: z
      .record(
        z.string(),
        z
          .object({
            check: CheckObjectSchema.optional(),
            admin: OverrideValue.optional(),
            // Capacity, relative to the other members: comes first `weight` times per sum(weights) answers. 0: only when the pool would otherwise fall back.
            weight: z.number().int('weight must be a whole number').min(0).max(1000).optional(),
          })
          .strict(),
      )
      .default({}),
    balance: Balance.default({}),
  })
  .strict();

const NameEntry = z
  .object({
    ttl: Ttl.optional(),
    maxAnswers: z.number().int().min(1).max(1024).optional(),
    pool: Pool.optional(),
  })
  .catchall(RecordValues);

const Soa = z
  .object({
    mname: z.string(),
    rname: z.string(),
    /** `auto` (or no serial at all): rrdns picks and bumps it (src/zone/serial.ts). */
    serial: z.union([z.number().int().min(0).max(0xffffffff), z.literal('auto')]).default('auto'),
    refresh: Ttl.default(3600),
    retry: Ttl.default(900),
    expire: Ttl.default(1209600),
    minimum: Ttl.default(60),
    ttl: Ttl.optional(),
  })
  .strict();

/** One string or a list; each entry checked by `parse`, errors at `transfer.allow[i]`. */
const entries = (parse: (text: string) => unknown) =>
  z.union([z.string(), z.array(z.string())]).transform((v, ctx) => {
    const list = typeof v === 'string' ? [v] : v;
    list.forEach((text, i) => {
      try {
        parse(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: typeof v === 'string' ? [] : [i], message: (e as Error).message });
      }
    });
    return list;
  });

/** Zone transfer (AXFR/IXFR over TCP) and NOTIFY; off unless `allow` lists someone. */
const Transfer = z
  .object({
    allow: entries(parseAllowEntry).default([]),
    notify: entries(parseNotifyTarget).default([]),
  })
  .strict();

export const NativeZoneSchema = z
  .object({
    origin: z.string().optional(),
    ttl: z
      .object({ default: Ttl.default(300), min: Ttl.default(0), max: Ttl.default(604800) })
      .strict()
      .default({ default: 300, min: 0, max: 604800 })
      .refine((t) => t.min <= t.max, { message: 'ttl.min must not exceed ttl.max' }),
    masterFile: z.string().optional(),
    soa: Soa.optional(),
    records: z.record(z.string(), NameEntry).default({}),
    transfer: Transfer.optional(),
  })
  .strict();
export type NativeZone = z.infer<typeof NativeZoneSchema>;

type PathPart = string | number;
export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

/**
 * Finds the source line of a path in the document. Each map's keys are
 * indexed once (yaml's own getIn scans a map's items per lookup, which made
 * locating every value of a zone with n names O(n²)).
 */
class Locator {
  private readonly doc: Document;
  private readonly lines: LineCounter;
  private readonly index = new WeakMap<YAMLMap, Map<string, Pair>>();
  constructor(doc: Document, lines: LineCounter) {
    this.doc = doc;
    this.lines = lines;
  }
  private pairs(map: YAMLMap): Map<string, Pair> {
    let pairs = this.index.get(map);
    if (!pairs) {
      pairs = new Map();
      for (const it of map.items) {
        const k = isScalar(it.key) ? String(it.key.value) : String(it.key);
        if (!pairs.has(k)) pairs.set(k, it as Pair);
      }
      this.index.set(map, pairs);
    }
    return pairs;
  }
  private lineOf(node: unknown): number | undefined {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? this.lines.linePos(range[0]).line : undefined;
  }
  /** Line of the deepest node on `path` that exists (the key's value, else the key, else its parent). */
  line(path: readonly PathPart[]): number | undefined {
    let node: unknown = this.doc.contents;
    let best = this.lineOf(node);
    for (const part of path) {
      if (isMap(node)) {
        const pair = this.pairs(node).get(String(part));
        if (!pair) break;
        const at = this.lineOf(pair.value) ?? this.lineOf(pair.key);
        if (at !== undefined) best = at;
        node = pair.value;
      } else if (isSeq(node) && typeof part === 'number') {
        const item = node.items[part];
        if (item === undefined) break;
        best = this.lineOf(item) ?? best;
        node = item;
      } else break;
    }
    return best;
  }
}

/**
 * Keys that appear twice in one mapping, each at its line. Checked here in one
 * pass with a Set per map: yaml's own `uniqueKeys` compares every key with every
 * earlier one, quadratic in the names of a zone.
 */
function duplicateKeys(doc: Document, lines: LineCounter, file: string): ZoneIssue[] {
  const issues: ZoneIssue[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const it of map.items) {
        const k = isScalar(it.key) ? String(it.key.value) : JSON.stringify(it.key);
        if (seen.has(k)) {
          const range = (it.key as { range?: [number, number, number] } | null)?.range;
          issues.push({ file, line: range ? lines.linePos(range[0]).line : undefined, message: `key "${k}" appears twice in the same mapping` });
        }
        seen.add(k);
      }
    },
  });
  return issues;
}

export interface NativeParseOptions {
  file: string;
  /** Zone origin implied by the file name; `origin:` in the document overrides it. */
  defaultOrigin: string;
  /** Reads the master file named by `masterFile:` (path relative to the zone file). */
  readMasterFile: (relativePath: string) => string;
  /** Passed on to the master file parser (see MasterFileOptions.maxRecords). */
  maxRecords?: number | undefined;
}

/**
 * A TXT value not written in quotes is one string, kept exactly: spaces, ';',
 * quotes, backslashes and control characters (a line break too, as \010)
 * included (`TXT: v=spf1 mx -all`), as a YAML user expects; quoted values are
 * taken as master-file rdata, so several strings stay possible.
 */
export function rdataText(type: string, value: string): string {
  if (type !== 'TXT' || value.trimStart().startsWith('"')) return value;
  return `"${value.replace(/["\\\x00-\x1f\x7f]/g, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\${String(c.charCodeAt(0)).padStart(3, '0')}`))}"`;
}

type IssueFn = (path: PathPart[], message: string) => void;

function indexRecord(index: Map<string, ZoneRecord[]>, r: ZoneRecord): void {
  const key = nameKey(r.name);
  const list = index.get(key);
  if (list) list.push(r);
  else index.set(key, [r]);
}

/**
 * Validates a name's pool against its addresses: every check (the pool's, and
 * each member's merged over it) through CheckSchema, addresses as IP literals,
 * members naming only addresses of this pool.
 */
function parsePool(raw: z.infer<typeof Pool>, owner: string, addresses: readonly string[], issue: IssueFn): PoolSpec | undefined {
  const base = ['records', owner, 'pool'];
  let ok = true;
  const check = (input: unknown, path: PathPart[]): CheckConfig | undefined => {
    const r = CheckSchema.safeParse(input);
    if (r.success) return r.data;
    ok = false;
    for (const i of r.error.issues) issue([...path, ...(i.path as PathPart[])], i.message);
    return undefined;
  };
  const poolCheck = check(raw.check, [...base, 'check']);
  const canon = (a: string, path: PathPart[]): string | undefined => {
    try {
      return canonicalAddress(a).address;
    } catch {
      ok = false;
      issue(path, `"${a}" is not an IP address`);
      return undefined;
    }
  };
  const standbyList = Array.isArray(raw.standby) ? raw.standby : raw.standby.addresses;
  const standbyPath: PathPart[] = Array.isArray(raw.standby) ? [...base, 'standby'] : [...base, 'standby', 'addresses'];
  const standbyMode = Array.isArray(raw.standby) ? 'hot' : raw.standby.mode;
  const standby = standbyList.map((a, i) => canon(a, [...standbyPath, i])).filter((a): a is string => a !== undefined);
  const known = new Set([...addresses, ...standby]);
  const memberChecks = new Map<string, CheckConfig>();
  const overrides = new Map<string, AdminOverride>();
  const weights = new Map<string, number>();
  for (const [address, member] of Object.entries(raw.members)) {
    const path = [...base, 'members', address];
    const a = canon(address, path);
    if (a === undefined) continue;
    if (!known.has(a)) {
      ok = false;
      issue(path, `${address} is neither a record nor a standby address of this pool`);
      continue;
    }
    if (member.check) {
      const merged = check({ ...raw.check, ...member.check }, [...path, 'check']);
      if (merged) memberChecks.set(a, merged);
    }
    if (member.admin) overrides.set(a, member.admin);
    if (member.weight !== undefined) weights.set(a, member.weight);
  }
  const feedback = raw.balance.feedback;
  if (feedback?.signal === 'load') {
    // The check each member actually runs: its own where it has one, else the pool's.
    const checks = [...known].map((a) => memberChecks.get(a) ?? poolCheck);
    if (checks.some((c) => c !== undefined && c.load === undefined)) {
      ok = false;
      issue([...base, 'balance', 'feedback', 'signal'], 'signal: load needs check.load (a header or a JSON path the health check reads the load from); use signal: latency for checks without one');
    }
  }
  const balance: BalanceSpec = {
    feedback: feedback && {
      signal: feedback.signal,
      gain: feedback.gain,
      maxStep: feedback.maxStep,
      floor: feedback.floor,
      intervalMs: feedback.interval,
      // By default a signal counts for three check intervals.
      staleMs: feedback.stale ?? 3 * Math.max(poolCheck?.interval ?? 0, feedback.interval),
    },
    resolvers: raw.balance.resolvers,
    ecs: raw.balance.ecs,
  };
  if (standbyMode === 'cold' && raw.allDown !== 'backup') {
    ok = false;
    issue([...base, 'standby', 'mode'], 'cold standby addresses serve (and are probed) only under allDown: backup; set allDown: backup or use mode: hot');
  }
  if (raw.allDown === 'backup' && standby.length === 0) {
    ok = false;
    issue([...base, 'allDown'], 'allDown: backup needs standby addresses');
  }
  if (!ok || !poolCheck) return undefined;
  return { check: poolCheck, memberChecks, standby, standbyMode, allDown: raw.allDown, minHealthy: raw.minHealthy, overrides, weights, balance, quorum: raw.quorum, checkers: raw.checkers };
}

/** Parses a native zone document into the input for `buildZone`, or issues. */
export function parseNativeZone(text: string, opts: NativeParseOptions): { input?: ZoneInput; issues: ZoneIssue[] } {
  const file = opts.file;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    return { issues: capIssues(doc.errors.map((e) => ({ file, line: lines.linePos(e.pos[0]).line, message: e.message.split('\n')[0]! })), file) };
  }
  const dups = duplicateKeys(doc, lines, file);
  if (dups.length > 0) return { issues: capIssues(dups, file) };
  const loc = new Locator(doc, lines);
  let js: unknown;
  try {
    // yaml refuses alias expansions that would blow up (billion laughs) by throwing.
    js = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    return { issues: [{ file, line: 1, message: `cannot read the document: ${(e as Error).message}` }] };
  }
  const parsed = NativeZoneSchema.safeParse(js ?? {});
  if (!parsed.success) {
    return {
      issues: capIssues(
        parsed.error.issues.map((i) => ({ file, line: loc.line(i.path as PathPart[]), path: formatPath(i.path as PathPart[]), message: i.message })),
        file,
      ),
    };
  }
  const spec = parsed.data;
  const issues: ZoneIssue[] = [];
  const issue = (path: PathPart[], message: string) => issues.push({ file, line: loc.line(path), path: formatPath(path), message });

  let origin = opts.defaultOrigin;
  if (spec.origin !== undefined) {
    try {
      origin = parseName(spec.origin.endsWith('.') ? spec.origin : `${spec.origin}.`, '');
    } catch (e) {
      issue(['origin'], (e as Error).message);
      return { issues };
    }
  }
  const ttlPolicy: TtlPolicy = { defaultTtl: spec.ttl.default, minTtl: spec.ttl.min, maxTtl: spec.ttl.max };
  const records: ZoneRecord[] = [];

  if (spec.masterFile !== undefined) {
    let masterText: string | undefined;
    try {
      masterText = opts.readMasterFile(spec.masterFile);
    } catch (e) {
      issue(['masterFile'], `cannot read ${spec.masterFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (masterText !== undefined) {
      const master = parseMasterFile(masterText, { file: spec.masterFile, origin, defaultTtl: ttlPolicy.defaultTtl, maxRecords: opts.maxRecords });
      for (const i of master.issues) issues.push(i);
      for (const r of master.records) records.push({ ...r, file: spec.masterFile });
    }
  }

  if (spec.soa) {
    const s = spec.soa;
    const line = loc.line(['soa']);
    try {
      records.push({
        name: origin,
        type: 6,
        ttl: s.ttl ?? ttlPolicy.defaultTtl,
        line,
        data: {
          kind: 'SOA',
          primary: parseName(s.mname, origin),
          admin: parseName(s.rname, origin),
          // 'auto': a placeholder; assignSerial() picks the served serial when the zone is installed.
          serial: s.serial === 'auto' ? 0 : s.serial,
          refresh: s.refresh,
          retry: s.retry,
          expiration: s.expire,
          minimum: s.minimum,
        },
      });
    } catch (e) {
      issue(['soa'], (e as Error).message);
    }
  }

  // Records by owner key, built on first use and kept up to date, so per-name settings
  // find their records without a scan of the whole zone per name.
  let index: Map<string, ZoneRecord[]> | undefined;
  const byName = (): Map<string, ZoneRecord[]> => {
    if (!index) {
      index = new Map();
      for (const r of records) indexRecord(index, r);
    }
    return index;
  };
  const addRecord = (r: ZoneRecord) => {
    records.push(r);
    if (index) indexRecord(index, r);
  };

  const nameOptions = new Map<string, NameOptions & { line?: number; path?: string }>();
  for (const [owner, entry] of Object.entries(spec.records)) {
    let ownerName: string;
    try {
      ownerName = parseName(owner, origin);
    } catch (e) {
      issue(['records', owner], (e as Error).message);
      continue;
    }
    const nameTtl = entry.ttl;
    if (entry.maxAnswers !== undefined || entry.pool !== undefined) {
      nameOptions.set(ownerName, { maxAnswers: entry.maxAnswers, line: loc.line(['records', owner]), path: formatPath(['records', owner]) });
    }
    if (nameTtl !== undefined) {
      // A name's ttl also overrides what the master file says for that name.
      const same = byName().get(nameKey(ownerName)) ?? [];
      for (const rec of same) rec.ttl = nameTtl;
      const found = same.length > 0;
      const declaresRecords = Object.keys(entry).some((k) => !NAME_SETTINGS.has(k));
      if (!found && !declaresRecords) issue(['records', owner], `settings given for ${nameToText(ownerName)}, which has no records`);
    }
    for (const [typeText, raw] of Object.entries(entry)) {
      if (NAME_SETTINGS.has(typeText)) continue;
      const type = typeFromText(typeText);
      if (type === undefined || typeText !== typeText.toUpperCase()) {
        issue(['records', owner, typeText], `"${typeText}" is neither a record type (A, AAAA, CNAME, MX, NS, PTR, SRV, TXT, CAA, SOA, TYPEnnn) nor a setting (ttl, maxAnswers, pool)`);
        continue;
      }
      const values = (Array.isArray(raw) ? raw : [raw]) as z.infer<typeof RecordValue>[];
      values.forEach((v, i) => {
        const path: PathPart[] = Array.isArray(raw) ? ['records', owner, typeText, i] : ['records', owner, typeText];
        const value = typeof v === 'object' ? v.value : v;
        const ttl = (typeof v === 'object' ? v.ttl : undefined) ?? nameTtl ?? ttlPolicy.defaultTtl;
        // The same rdata grammar and checks as *.zone files, but parsed as rdata alone: the
        // value is never spliced into a master-file line, so it cannot add records or be cut.
        const line = loc.line(path);
        const result = parseRdataValue(type, rdataText(typeText, String(value)), { file, origin, line });
        for (const problem of result.issues) issue(path, problem.message);
        if (result.data) addRecord({ name: ownerName, type, ttl, data: result.data, line });
      });
    }
  }
  // Pools are checked last: their addresses may come from the master file as well as from YAML.
  for (const [owner, entry] of Object.entries(spec.records)) {
    if (!entry.pool) continue;
    let ownerName: string;
    try {
      ownerName = parseName(owner, origin);
    } catch {
      continue; // already reported
    }
    const addresses = (byName().get(nameKey(ownerName)) ?? [])
      .filter((r) => r.type === RRType.A || r.type === RRType.AAAA)
      .map((r) => canonicalAddress((r.data as { address: string }).address).address);
    const pool = parsePool(entry.pool, owner, addresses, issue);
    const opts = nameOptions.get(ownerName);
    if (pool && opts) opts.pool = pool;
  }
  if (issues.length > 0) return { issues: capIssues(issues, file) };
  const transfer = spec.transfer ? transferSettings(spec.transfer.allow, spec.transfer.notify) : undefined;
  if (spec.transfer && transfer && transfer.allow.length === 0 && transfer.notify.length > 0) {
    // A NOTIFY makes the secondary pull at once; without `allow` that pull is refused.
    issue(['transfer', 'notify'], 'notify needs transfer.allow: the secondaries notified must be allowed to transfer the zone');
    return { issues };
  }
  const serialAuto = spec.soa !== undefined && spec.soa.serial === 'auto';
  return { input: { origin, source: file, records, ttlPolicy, nameOptions, transfer, serialAuto }, issues };
}
