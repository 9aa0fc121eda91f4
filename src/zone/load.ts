/**
 * Loads every zone in a directory: `*.yaml`/`*.yml`/`*.json` (native format)
 * and `*.zone` (RFC 1035 master files, origin from the file name). A master
 * file named by a native zone's `masterFile:` belongs to that zone and is not
 * loaded again on its own. Either every zone loads, or the caller gets every
 * issue of every file, so a bad file never half-replaces what is served.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, RrdnsError, type ZoneIssue } from '../errors.ts';
import { ZONE_LIMIT_DEFAULTS, type ZoneLimits } from '../config/schema.ts';
import { parseMasterFile } from './masterfile.ts';
import { nameKey, nameToText, parseName } from './name.ts';
import { parseNativeZone } from './native.ts';
import { buildZone, type Zone, type ZoneInput } from './zone.ts';

/** Resource limits on what a zones directory may make us read. */
export const MAX_ZONE_FILE_BYTES = 64 * 1024 * 1024;
export const MAX_ZONE_FILES = 10_000;

const NATIVE = /\.(ya?ml|json)$/i;
const MASTER = /\.zone$/i;

/** Master files hold the plain RFC 1035 defaults; native zones choose their own TTL policy. */
const MASTER_FILE_POLICY = { defaultTtl: 3600, minTtl: 0, maxTtl: 0x7fffffff };

function originFromFileName(file: string, ext: RegExp): string {
  const base = path.basename(file).replace(ext, '');
  return base === 'root' || base === '.' ? '' : parseName(base.endsWith('.') ? base : `${base}.`, '');
}

function readLimited(file: string): string {
  const size = fs.statSync(file).size;
  if (size > MAX_ZONE_FILE_BYTES) throw new Error(`file is ${size} bytes, over the ${MAX_ZONE_FILE_BYTES}-byte limit`);
  return fs.readFileSync(file, 'utf8');
}

export interface LoadResult {
  zones: Zone[];
  issues: ZoneIssue[];
  files: string[];
  /** Master files pulled in by native zones (`masterFile:`), absolute paths: a watcher follows them too. */
  masterFiles: string[];
}

export interface LoadOptions {
  /** Per-zone and per-RRset record limits; ZONE_LIMIT_DEFAULTS when absent. */
  limits?: ZoneLimits | undefined;
}

/** Reads and validates every zone of `dir`. Throws only when the directory itself cannot be read. */
export function loadZoneDir(dir: string, opts: LoadOptions = {}): LoadResult {
  const limits = opts.limits ?? ZONE_LIMIT_DEFAULTS;
  let entries: string[];
  try {
    entries = fs.readdirSync(dir).sort();
  } catch (e) {
    throw new RrdnsError(ErrorCode.ZONE_DIR_UNREADABLE, `cannot read zones directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? e}`, { cause: e });
  }
  const issues: ZoneIssue[] = [];
  const inputs: ZoneInput[] = [];
  const claimed = new Set<string>();
  const zoneFiles = entries.filter((f) => NATIVE.test(f) || MASTER.test(f));
  if (zoneFiles.length > MAX_ZONE_FILES) {
    throw new RrdnsError(ErrorCode.ZONE_INVALID, `${dir} holds ${zoneFiles.length} zone files, over the limit of ${MAX_ZONE_FILES}`);
  }
  const display = (f: string) => path.join(dir, f);

  for (const f of zoneFiles.filter((x) => NATIVE.test(x))) {
    const file = display(f);
    try {
      const text = readLimited(file);
      const result = parseNativeZone(text, {
        file,
        defaultOrigin: originFromFileName(f, NATIVE),
        maxRecords: limits.maxRecords,
        readMasterFile: (rel) => {
          const full = path.resolve(path.dirname(file), rel);
          claimed.add(full);
          return readLimited(full);
        },
      });
      for (const i of result.issues) issues.push(i);
      if (result.input) inputs.push(result.input);
    } catch (e) {
      issues.push({ file, message: (e as Error).message });
    }
  }
  for (const f of zoneFiles.filter((x) => MASTER.test(x))) {
    const file = display(f);
    if (claimed.has(path.resolve(file))) continue;
    try {
      const origin = originFromFileName(f, MASTER);
      const result = parseMasterFile(readLimited(file), { file, origin, defaultTtl: MASTER_FILE_POLICY.defaultTtl, maxRecords: limits.maxRecords });
      for (const i of result.issues) issues.push(i);
      if (result.issues.length === 0) inputs.push({ origin, source: file, records: result.records, ttlPolicy: MASTER_FILE_POLICY });
    } catch (e) {
      issues.push({ file, message: (e as Error).message });
    }
  }

  const zones: Zone[] = [];
  const byOrigin = new Map<string, string>();
  for (const input of inputs) {
    const key = nameKey(input.origin);
    const other = byOrigin.get(key);
    if (other !== undefined) {
      issues.push({ file: input.source, message: `zone ${nameToText(input.origin)} is also defined by ${other}` });
      continue;
    }
    byOrigin.set(key, input.source);
    const built = buildZone(input, limits);
    for (const i of built.issues) issues.push(i);
    if (built.zone) zones.push(built.zone);
  }
  return { zones, issues, files: zoneFiles.map(display), masterFiles: [...claimed] };
}
