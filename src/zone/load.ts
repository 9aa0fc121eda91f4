/**
 * Loads every zone in a directory: `*.yaml`/`*.yml`/`*.json` (native format)
 * and `*.zone` (RFC 1035 master files, origin from the file name). A master
 * file named by a native zone's `masterFile:` belongs to that zone and is not
 * loaded again on its own. Either every zone loads, or the caller gets every
 * issue of every file, so a bad file never half-replaces what is served.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, RrdnsError, type ZoneIssue } from '../errors.ts';
import { ZONE_LIMIT_DEFAULTS, type ZoneLimits } from '../config/schema.ts';
import { parseMasterFile } from './masterfile.ts';
import { nameToText, parseName } from './name.ts';
import { buildZone, type Zone } from './zone.ts';
import { nextTurn, runInSlices } from './slices.ts';
import { LAZY_MAX_TEXT, LazyZone, type ZoneBuilder } from './lazy-zone.ts';
import { contentDigest, reserial, serialOf } from './serial.ts';

/** Resource limits on what a zones directory may make us read. */
export const MAX_ZONE_FILE_BYTES = 64 * 1024 * 1024;
export const MAX_ZONE_FILES = 10_000;

const NATIVE = /\.(ya?ml|json)$/i;
const MASTER = /\.zone$/i;

/** Whether a name in the zones directory is one the reader reads. */
export const isZoneFileName = (name: string): boolean => NATIVE.test(name) || MASTER.test(name);

/**
 * The native (YAML/JSON) zone parser, loaded the first time a directory holds a
 * native zone file: it brings the yaml package and the native schema, ~5 MB of
 * heap in every process, which a directory of master files alone never needs
 * (10,000 `.zone` files and the 100 MB of issue 11). Every read that can meet
 * a native file awaits it first (readAll, read); the in-place edit path only
 * re-reads files read before, so it finds it loaded.
 */
let nativeParser: typeof import('./native.ts').parseNativeZone | undefined;

/** Loads the native zone parser (once; later calls return at once). */
export async function loadNativeParser(): Promise<void> {
  nativeParser ??= (await import('./native.ts')).parseNativeZone;
}

/** Loads the native zone parser if `names` (a directory listing) holds a native zone file. */
async function loadNativeParserFor(names: readonly string[]): Promise<void> {
  if (names.some((n) => NATIVE.test(n))) await loadNativeParser();
}

/** Whether the native zone parser (and so the yaml package) has been loaded in this process. */
export const nativeParserLoaded = (): boolean => nativeParser !== undefined;

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
  /** The reader's own list: valid until its next read, which may update it in place (ZoneDirReader.edited). */
  zones: Zone[];
  issues: ZoneIssue[];
  files: string[];
  /** Master files pulled in by native zones (`masterFile:`), absolute paths: a watcher follows them too. */
  masterFiles: string[];
  /** How many zone files were looked at and how many of them had to be parsed. */
  counts: ReadCounts;
}

export interface LoadOptions {
  /** Per-zone and per-RRset record limits; ZONE_LIMIT_DEFAULTS when absent. */
  limits?: ZoneLimits | undefined;
}


/** Files a reader looked at, and how many it had to parse (the rest were unchanged by stat or digest). */
export interface ReadCounts {
  files: number;
  parsed: number;
  unchanged: number;
  /** Files whose stamp was read (stat); the others a watcher vouched for (read(changed)). */
  looked: number;
}

/** What one zone file gave, kept until the file changes. */
interface FileEntry {
  /** The file's path (the directory joined with its name), made once and kept: the zone's source shares it. */
  file: string;
  /** size, mtime and inode: equal means unchanged without reading it. */
  stamp: string;
  /**
   * sha256 of the text, to tell a rewrite with the same content; undefined for
   * a LazyZone, whose kept text is compared instead (keptText): 80 octets of
   * hex a file less, ~0.8 MB with 10,000 zones.
   */
  digest: string | undefined;
  /** Master files this (native) file pulled in, with their stamps and digests: any change re-parses it. */
  deps: { file: string; stamp: string; digest: string }[];
  zone: Zone | undefined;
  issues: ZoneIssue[];
  /** The read that last saw this file (entries not seen by a read are dropped at its end). */
  seen: number;
}

function stampOf(file: string): string {
  // stat follows symlinks, so a ConfigMap's symlink swap shows as a new inode.
  const st = fs.statSync(file);
  // join() makes one flat string (~48 octets); the template literal made a tree of three
  // concatenations and their parts (~180 octets), kept per file: ~1.3 MB with 10,000 zones.
  return [st.size, st.mtimeMs, st.ino].join(':');
}

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

/** The text a lazy zone was built from (the file as it was read), else undefined. */
function keptText(zone: Zone | undefined): string | undefined {
  if (!(zone instanceof LazyZone)) return undefined;
  const text = (zone.recipe as Partial<MasterRecipe> | undefined)?.text;
  return typeof text === 'string' ? text : undefined;
}

/** Whether `text` is the content `old` was made from: by its kept text when it is a lazy zone's, else by digest. */
function sameContent(old: FileEntry, text: string): boolean {
  const kept = keptText(old.zone);
  if (kept !== undefined) return kept === text;
  return old.digest !== undefined && old.digest === sha256(text);
}

/** The digest a new entry keeps: none when the zone keeps its text (sameContent compares that). */
const digestFor = (zone: Zone | undefined, text: string): string | undefined => (keptText(zone) === text ? undefined : sha256(text));

/**
 * `file` looked at again against what it gave last time (`old`): the kept
 * entry when neither it nor what it pulled in changed (by stamp, then by
 * digest), else its text to parse. Reads the file only when its stamp moved;
 * throws when it cannot be stat'ed or read.
 */
function examine(file: string, old: FileEntry | undefined): { entry?: FileEntry; text?: string; stamp: string } {
  const stamp = stampOf(file);
  if (old === undefined) return { stamp };
  const depsSame = old.deps.every((d) => {
    try {
      return stampOf(d.file) === d.stamp;
    } catch {
      return false;
    }
  });
  if (old.stamp === stamp && depsSame) return { entry: old, stamp };
  const text = readLimited(file);
  // Written out, not spread: a spread copy adds its fields out of the object (a property array more per file).
  if (depsSame && sameContent(old, text)) return { entry: { file: old.file, stamp, digest: old.digest, deps: old.deps, zone: old.zone, issues: old.issues, seen: old.seen }, stamp };
  return { text, stamp };
}

/** What most entries hold: one frozen empty list each, not two arrays per file (10,000 files: ~0.6 MB). */
const NO_DEPS: FileEntry['deps'] = Object.freeze([]) as unknown as FileEntry['deps'];
const NO_ISSUES: ZoneIssue[] = Object.freeze([]) as unknown as ZoneIssue[];

/** What building a master-file zone again takes: the text as it was read, and the options it was read with. */
export interface MasterRecipe {
  text: string;
  file: string;
  origin: string;
  limits: ZoneLimits;
}

function buildMasterZone(r: MasterRecipe): { zone: Zone | undefined; issues: ZoneIssue[] } {
  const result = parseMasterFile(r.text, { file: r.file, origin: r.origin, defaultTtl: MASTER_FILE_POLICY.defaultTtl, maxRecords: r.limits.maxRecords });
  const issues = [...result.issues];
  let zone: Zone | undefined;
  if (result.issues.length === 0) {
    const built = buildZone({ origin: r.origin, source: r.file, records: result.records, ttlPolicy: MASTER_FILE_POLICY }, r.limits);
    for (const i of built.issues) issues.push(i);
    zone = built.zone;
  }
  return { zone, issues };
}

/** Builds a master-file zone again from its recipe; the text gave a valid zone once, so anything else is a bug. */
export const MASTER_BUILDER: ZoneBuilder<MasterRecipe> = {
  build(r) {
    const { zone, issues } = buildMasterZone(r);
    if (zone === undefined || issues.length > 0) throw new Error(`zone ${r.file} no longer builds from its kept text: ${issues[0]?.message ?? 'no zone'}`);
    return zone;
  },
  reserial,
};

/** `built` as a LazyZone: its records resident until the sweeps find it idle. */
function lazyZone<R>(built: Zone, recipe: R, builder: ZoneBuilder<R>): LazyZone<R> {
  const serial = serialOf(built);
  return new LazyZone(built, { serial, declaredSerial: serial, digest: contentDigest(built) }, recipe, builder, built);
}

/** Slices of synchronous work between event-loop turns, in ms. */
const SLICE_MS = 1;

/**
 * Reads a zones directory again and again, re-parsing only what changed.
 * One read at a time (the reload coordinator serialises them).
 */
export class ZoneDirReader {
  private readonly dir: string;
  private readonly limits: ZoneLimits;
  /**
   * Each file's entry under its name in the directory. Kept and updated in
   * place across reads (not rebuilt): a new map of 10,000 entries per reload
   * outlived the young generation and piled up as garbage. The entry keeps
   * the file's path (a second map from names to paths was ~50 octets a file).
   */
  private readonly entries = new Map<string, FileEntry>();
  private generation = 0;
  /** What the last read did. */
  counts: ReadCounts = { files: 0, parsed: 0, unchanged: 0, looked: 0 };
  /** The last read's result: the base the edit-in-place path (edited) patches. */
  private last: LoadResult | undefined;

  constructor(dir: string, opts: LoadOptions = {}) {
    this.dir = dir;
    this.limits = opts.limits ?? ZONE_LIMIT_DEFAULTS;
  }

  /** Reads the directory in one go (start-up): loads the native parser first if a native file is there. */
  async readAll(): Promise<LoadResult> {
    const names = listDir(this.dir);
    await loadNativeParserFor(names);
    return this.readNames(names);
  }

  /** readAll without the wait, for callers that loaded the native parser already (`rrdns check`, tests). */
  readSync(): LoadResult {
    return this.readNames(listDir(this.dir));
  }

  private readNames(names: string[]): LoadResult {
    const steps = this.steps(names);
    for (let r = steps.next(); ; r = steps.next()) if (r.done) return r.value;
  }

  /**
   * Reads the directory in slices of about SLICE_MS, yielding to the event
   * loop between them. `changed` (names in the directory, from a watcher that
   * stat'ed them) narrows the look: a file read before and not named is taken
   * as unchanged without a stat, so one edit among 10,000 files costs one
   * stat and one parse. When every named file was read before and still gives
   * a valid zone of the same origin, the listing is not read either (edited);
   * otherwise it is, so a named file added or removed counts. Without
   * `changed` every file is stat'ed.
   */
  async read(changed?: ReadonlySet<string>): Promise<LoadResult> {
    if (changed !== undefined) {
      const quick = await this.edited(changed);
      if (quick !== undefined) return quick;
    }
    let names: string[];
    try {
      names = (await fs.promises.readdir(this.dir)).sort();
    } catch (e) {
      throw unreadable(this.dir, e);
    }
    await loadNativeParserFor(names);
    return runInSlices(this.steps(names, changed), SLICE_MS);
  }

  /**
   * The common case of a watched directory, at the cost of what changed: the
   * named files were read before, each gave a valid zone, and each still does,
   * of the same origin, without pulling in master files. Their zones are put
   * in place of the old ones in the last result; the listing is not read and
   * nothing of the other files is touched, so one edit among 10,000 zones
   * makes no garbage in proportion to the 10,000 (the full read's lists, maps
   * and per-file objects were ~10 MB a reload, promoted by the reload's event
   * loop turns and collected only by full GCs, which held answering for ~20 ms).
   * Anything else (a file added, removed or failing, an origin moved, a name
   * that is not a zone file, a last read with issues or master files) returns
   * undefined, and the full read decides, with nothing changed here.
   */
  private async edited(changed: ReadonlySet<string>): Promise<LoadResult | undefined> {
    const last = this.last;
    if (last === undefined || changed.size === 0 || last.issues.length > 0 || last.masterFiles.length > 0) return undefined;
    const edits: { name: string; old: FileEntry & { zone: Zone }; entry: FileEntry }[] = [];
    for (const name of changed) {
      const old = this.entries.get(name);
      if (old?.zone === undefined || old.deps.length > 0) return undefined;
      const file = old.file;
      if (edits.length > 0) await nextTurn();
      const deps: FileEntry['deps'] = [];
      let looked: ReturnType<typeof examine>;
      let parsed: { zone: Zone | undefined; issues: ZoneIssue[] } | undefined;
      try {
        looked = examine(file, old);
        if (looked.entry === old) continue;
        if (looked.text !== undefined) parsed = NATIVE.test(name) ? this.parseNative(file, name, looked.text, deps) : this.parseMaster(file, name, looked.text);
      } catch {
        return undefined;
      }
      if (parsed === undefined) {
        // The same content under a new stamp (touched, or rewritten alike).
        edits.push({ name, old: old as FileEntry & { zone: Zone }, entry: looked.entry! });
        continue;
      }
      const { zone, issues } = parsed;
      if (zone === undefined || issues.length > 0 || deps.length > 0 || zone.originKey !== old.zone.originKey) return undefined;
      edits.push({ name, old: old as FileEntry & { zone: Zone }, entry: { file, stamp: looked.stamp, digest: digestFor(zone, looked.text!), deps: NO_DEPS, zone, issues: NO_ISSUES, seen: this.generation } });
    }
    // In place: reads are one at a time, and the install that took the last list is done with it
    // (a copy of 10,000 pointers per reload outlived the young generation).
    const zones = last.zones;
    let parsed = 0;
    for (const { name, old, entry } of edits) {
      this.entries.set(name, entry);
      if (entry.zone === old.zone) continue;
      parsed++;
      const i = zones.indexOf(old.zone);
      if (i >= 0) zones[i] = entry.zone!;
    }
    const counts: ReadCounts = { files: last.files.length, parsed, unchanged: last.files.length - parsed, looked: changed.size };
    this.counts = counts;
    this.last = { zones, issues: [], files: last.files, masterFiles: [], counts };
    return this.last;
  }

  private parseNative(file: string, name: string, text: string, deps: FileEntry['deps']): { zone: Zone | undefined; issues: ZoneIssue[] } {
    const limits = this.limits;
    // Loaded by readAll/read before any native file is parsed (and kept): not loaded here is a bug.
    if (nativeParser === undefined) throw new Error(`${file}: the native zone parser was not loaded (await loadNativeParser() before reading)`);
    const result = nativeParser(text, {
      file,
      defaultOrigin: originFromFileName(name, NATIVE),
      maxRecords: limits.maxRecords,
      readMasterFile: (rel) => {
        const full = path.resolve(path.dirname(file), rel);
        const stamp = stampOf(full);
        const content = readLimited(full);
        deps.push({ file: full, stamp, digest: sha256(content) });
        return content;
      },
    });
    const issues = [...result.issues];
    let zone: Zone | undefined;
    if (result.input) {
      const built = buildZone(result.input, limits);
      for (const i of built.issues) issues.push(i);
      zone = built.zone;
    }
    return { zone, issues };
  }

  private parseMaster(file: string, name: string, text: string): { zone: Zone | undefined; issues: ZoneIssue[] } {
    const recipe: MasterRecipe = { text, file, origin: originFromFileName(name, MASTER), limits: this.limits };
    const { zone, issues } = buildMasterZone(recipe);
    // A small master file is a pure function of its text: kept as text, built again when asked for (lazy-zone.ts).
    if (zone === undefined || issues.length > 0 || text.length > LAZY_MAX_TEXT) return { zone, issues };
    return { zone: lazyZone(zone, recipe, MASTER_BUILDER), issues };
  }

  /** The work of one read, yielding after each file so the caller decides when to pause. */
  private *steps(names: string[], changed?: ReadonlySet<string>): Generator<void, LoadResult, void> {
    const dir = this.dir;
    const zoneFiles = names.filter((f) => NATIVE.test(f) || MASTER.test(f));
    if (zoneFiles.length > MAX_ZONE_FILES) {
      throw new RrdnsError(ErrorCode.ZONE_INVALID, `${dir} holds ${zoneFiles.length} zone files, over the limit of ${MAX_ZONE_FILES}`);
    }
    const previous = this.entries;
    const next = previous;
    const generation = ++this.generation;
    const counts: ReadCounts = { files: zoneFiles.length, parsed: 0, unchanged: 0, looked: 0 };
    const claimed = new Set<string>();
    const results: FileEntry[] = [];
    // Kept across reads in the file's entry: 10,000 path.join calls per reload were a tenth of a reload's time.
    const display = (f: string) => previous.get(f)?.file ?? path.join(dir, f);

    /** The kept entry when neither the file nor what it pulled in changed; reads the file only when its stamp moved. */
    const reuse = (file: string, name: string): { entry?: FileEntry; text?: string; stamp: string } => {
      const old = previous.get(name);
      // The caller vouches that files it did not name kept their stamps. A zone that pulls in master files
      // is looked at anyway: the file that changed may be one of those, named under its own name.
      if (old !== undefined && changed !== undefined && !changed.has(name) && old.deps.length === 0) return { entry: old, stamp: old.stamp };
      counts.looked++;
      return examine(file, old);
    };

    /**
     * The entry for `file`: the kept one when neither it nor what it pulled in changed, else
     * `parse(text, deps)`'s zone and issues; a file that cannot be read is an issue of its own.
     */
    const entryFor = (file: string, name: string, parse: (text: string, deps: FileEntry['deps']) => { zone: Zone | undefined; issues: ZoneIssue[] }): FileEntry => {
      let entry: FileEntry;
      try {
        const r = reuse(file, name);
        if (r.entry) {
          entry = r.entry;
          counts.unchanged++;
        } else {
          counts.parsed++;
          const text = r.text ?? readLimited(file);
          const deps: FileEntry['deps'] = [];
          const { zone, issues } = parse(text, deps);
          entry = { file, stamp: r.stamp, digest: digestFor(zone, text), deps: deps.length === 0 ? NO_DEPS : deps, zone, issues: issues.length === 0 ? NO_ISSUES : issues, seen: generation };
        }
      } catch (e) {
        entry = { file, stamp: '', digest: undefined, deps: [], zone: undefined, issues: [{ file, message: (e as Error).message }], seen: generation };
      }
      entry.seen = generation;
      if (previous.get(name) !== entry) next.set(name, entry);
      results.push(entry);
      return entry;
    };

    for (const f of zoneFiles.filter((x) => NATIVE.test(x))) {
      const file = display(f);
      const entry = entryFor(file, f, (text, deps) => this.parseNative(file, f, text, deps));
      for (const d of entry.deps) claimed.add(d.file);
      yield;
    }
    for (const f of zoneFiles.filter((x) => MASTER.test(x))) {
      const file = display(f);
      if (claimed.size > 0 && claimed.has(path.resolve(file))) continue;
      entryFor(file, f, (text) => this.parseMaster(file, f, text));
      yield;
    }

    const issues: ZoneIssue[] = [];
    const zones: Zone[] = [];
    const byOrigin = new Map<string, string>();
    for (const entry of results) {
      for (const i of entry.issues) issues.push(i);
      const zone = entry.zone;
      if (!zone) continue;
      const other = byOrigin.get(zone.originKey);
      if (other !== undefined) {
        issues.push({ file: zone.source, message: `zone ${nameToText(zone.origin)} is also defined by ${other}` });
        continue;
      }
      byOrigin.set(zone.originKey, zone.source);
      zones.push(zone);
    }
    // Entries of removed (or now claimed) files go; a failed file is kept without a zone, so fixing it parses it again.
    for (const [name, entry] of previous) {
      if (entry.seen === generation) continue;
      previous.delete(name);
    }
    this.counts = counts;
    this.last = { zones, issues, files: zoneFiles.map(display), masterFiles: [...claimed], counts };
    return this.last;
  }
}

function unreadable(dir: string, e: unknown): RrdnsError {
  return new RrdnsError(ErrorCode.ZONE_DIR_UNREADABLE, `cannot read zones directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? e}`, { cause: e });
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch (e) {
    throw unreadable(dir, e);
  }
}

/**
 * Reads and validates every zone of `dir` once. Throws only when the directory
 * itself cannot be read, or when it holds a native zone file and
 * loadNativeParser() has not been awaited before.
 */
export function loadZoneDir(dir: string, opts: LoadOptions = {}): LoadResult {
  return new ZoneDirReader(dir, opts).readSync();
}
