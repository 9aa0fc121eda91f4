/**
 * rrdns' native zone format: one YAML (or JSON) document per zone, validated by
 * zod. Records are written as rdata text and parsed by the same code as RFC 1035
 * master files, so both formats accept exactly the same values. A native zone
 * may take its static records from a master file (`masterFile:`) and add
 * round-robin settings and TTL policy on top. Every problem is reported with
 * file, line and path, all at once.
 */
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import type { ZoneIssue } from '../errors.ts';
import { parseMasterFile, parseTimeValue } from './masterfile.ts';
import { nameKey, nameToText, parseName } from './name.ts';
import { typeFromText, type ZoneRecord } from './records.ts';
import type { NameOptions, TtlPolicy, ZoneInput } from './zone.ts';

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

const NAME_SETTINGS = new Set(['ttl', 'maxAnswers']);
const NameEntry = z
  .object({
    ttl: Ttl.optional(),
    maxAnswers: z.number().int().min(1).max(1024).optional(),
  })
  .catchall(RecordValues);

const Soa = z
  .object({
    mname: z.string(),
    rname: z.string(),
    serial: z.number().int().min(0).max(0xffffffff),
    refresh: Ttl.default(3600),
    retry: Ttl.default(900),
    expire: Ttl.default(1209600),
    minimum: Ttl.default(60),
    ttl: Ttl.optional(),
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
  })
  .strict();
export type NativeZone = z.infer<typeof NativeZoneSchema>;

type PathPart = string | number;
export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

class Locator {
  private readonly doc: Document;
  private readonly lines: LineCounter;
  constructor(doc: Document, lines: LineCounter) {
    this.doc = doc;
    this.lines = lines;
  }
  /** Line of the deepest node on `path` that exists (the key's value, else its parent). */
  line(path: readonly PathPart[]): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) return this.lines.linePos(node.range[0]).line;
      if (n > 0 && n === path.length) {
        // A key with a null value has no value node: find the key itself.
        const parent = this.doc.getIn(path.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === path[n - 1]);
          if (pair && isScalar(pair.key) && pair.key.range) return this.lines.linePos(pair.key.range[0]).line;
        }
      }
    }
    return undefined;
  }
}

export interface NativeParseOptions {
  file: string;
  /** Zone origin implied by the file name; `origin:` in the document overrides it. */
  defaultOrigin: string;
  /** Reads the master file named by `masterFile:` (path relative to the zone file). */
  readMasterFile: (relativePath: string) => string;
}

/**
 * A TXT value not written in quotes is one string, spaces and ';' included
 * (`TXT: v=spf1 mx -all`), as a YAML user expects; quoted values are taken as
 * master-file rdata, so several strings stay possible.
 */
function rdataText(type: string, value: string): string {
  if (type !== 'TXT' || value.trimStart().startsWith('"')) return value;
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Parses a native zone document into the input for `buildZone`, or issues. */
export function parseNativeZone(text: string, opts: NativeParseOptions): { input?: ZoneInput; issues: ZoneIssue[] } {
  const file = opts.file;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return { issues: doc.errors.map((e) => ({ file, line: lines.linePos(e.pos[0]).line, message: e.message.split('\n')[0]! })) };
  }
  const loc = new Locator(doc, lines);
  const parsed = NativeZoneSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    return {
      issues: parsed.error.issues.map((i) => ({ file, line: loc.line(i.path as PathPart[]), path: formatPath(i.path as PathPart[]), message: i.message })),
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
      const master = parseMasterFile(masterText, { file: spec.masterFile, origin, defaultTtl: ttlPolicy.defaultTtl });
      issues.push(...master.issues);
      records.push(...master.records);
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
          serial: s.serial,
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
    if (entry.maxAnswers !== undefined) {
      nameOptions.set(ownerName, { maxAnswers: entry.maxAnswers, line: loc.line(['records', owner]), path: formatPath(['records', owner]) });
    }
    if (nameTtl !== undefined) {
      // A name's ttl also overrides what the master file says for that name.
      const key = nameKey(ownerName);
      let found = false;
      for (const rec of records) {
        if (nameKey(rec.name) === key) {
          rec.ttl = nameTtl;
          found = true;
        }
      }
      const declaresRecords = Object.keys(entry).some((k) => !NAME_SETTINGS.has(k));
      if (!found && !declaresRecords) issue(['records', owner], `settings given for ${nameToText(ownerName)}, which has no records`);
    }
    for (const [typeText, raw] of Object.entries(entry)) {
      if (NAME_SETTINGS.has(typeText)) continue;
      const type = typeFromText(typeText);
      if (type === undefined || typeText !== typeText.toUpperCase()) {
        issue(['records', owner, typeText], `"${typeText}" is neither a record type (A, AAAA, CNAME, MX, NS, PTR, SRV, TXT, CAA, SOA, TYPEnnn) nor a setting (ttl, maxAnswers)`);
        continue;
      }
      const values = Array.isArray(raw) ? raw : [raw];
      values.forEach((v, i) => {
        const path: PathPart[] = Array.isArray(raw) ? ['records', owner, typeText, i] : ['records', owner, typeText];
        const value = typeof v === 'object' ? v.value : v;
        const ttl = (typeof v === 'object' ? v.ttl : undefined) ?? nameTtl ?? ttlPolicy.defaultTtl;
        // One master-file line per value: the same rdata grammar and checks as *.zone files.
        const line = `${nameToText(ownerName)} ${ttl} IN ${typeText} ${rdataText(typeText, String(value))}`;
        const result = parseMasterFile(line, { file, origin, defaultTtl: ttl });
        for (const problem of result.issues) issue(path, problem.message);
        for (const rec of result.records) records.push({ ...rec, line: loc.line(path) });
      });
    }
  }
  if (issues.length > 0) return { issues };
  return { input: { origin, source: file, records, ttlPolicy, nameOptions }, issues };
}
