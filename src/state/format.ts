/**
 * What the state file holds, how it is validated (zod, once per read) and the
 * pure patches writers apply to it. Several rrdns processes may share one
 * state directory, so a write never replaces the file with one process's view:
 * it re-reads the file under the directory lock and applies only its change
 * (store.ts). Serials merge by the greater one in RFC 1982 arithmetic, so a
 * serial any instance served is never lowered by another; overrides merge by
 * key (the last writer of that member wins, other members are untouched).
 */
import { z } from 'zod';
import { serialGt } from '../zone/serial.ts';

export const STATE_FORMAT = 'rrdns-state';
export const STATE_VERSION = 1;
export const STATE_FILE = 'state.json';

const serialNumber = z.number().int().min(0).max(0xffffffff);

const overrideEntry = z.object({
  /** Owner as the API names it: lower case, trailing dot. */
  owner: z.string().min(1),
  /** Canonical address text (as the snapshot shows it). */
  address: z.string().min(1),
  override: z.enum(['drain', 'force-up', 'force-down']),
  setAt: z.string(),
});

const serialEntry = z.object({
  /** The SOA serial served for this origin. */
  serial: serialNumber,
  /** contentDigest() of the version served with it (src/zone/serial.ts). */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  /** The serial the zone's file declared (0 for `serial: auto`). */
  declared: serialNumber,
  auto: z.boolean(),
  savedAt: z.string(),
});

export const stateSchema = z.strictObject({
  format: z.literal(STATE_FORMAT),
  version: z.literal(STATE_VERSION),
  /** Keyed `owner|address`. */
  overrides: z.record(z.string(), overrideEntry),
  /** Keyed by zone origin text (lower case, trailing dot). */
  serials: z.record(z.string(), serialEntry),
  /**
   * The DNS cookie master key (hex) when no --cookie-secret-file is given, so
   * the server cookies resolvers hold stay valid across a restart (and at every
   * instance sharing this directory). Optional: files written before it read as they are.
   */
  cookieMasterKey: z.string().regex(/^([0-9a-f]{2}){16,256}$/).optional(),
});

export type StateData = z.infer<typeof stateSchema>;
export type StoredOverride = z.infer<typeof overrideEntry>;
export type StoredSerial = z.infer<typeof serialEntry>;

export function emptyState(): StateData {
  return { format: STATE_FORMAT, version: STATE_VERSION, overrides: {}, serials: {} };
}

export function overrideKey(owner: string, address: string): string {
  return `${owner}|${address}`;
}

/** Why `text` is not a state file this version reads, or the state it holds. */
export function parseState(text: string): { ok: true; state: StateData } | { ok: false; problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `is not valid JSON (${(e as Error).message})` };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, problem: 'does not hold a JSON object' };
  const { format, version } = raw as { format?: unknown; version?: unknown };
  if (format !== STATE_FORMAT) return { ok: false, problem: `is not an rrdns state file (format is ${JSON.stringify(format)}, expected "${STATE_FORMAT}")` };
  if (version !== STATE_VERSION) return { ok: false, problem: `has format version ${JSON.stringify(version)}; this rrdns reads version ${STATE_VERSION}` };
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    return { ok: false, problem: `does not match the state format: ${issues.join('; ')}` };
  }
  return { ok: true, state: compactSerials(parsed.data) };
}

/**
 * The serial entries as the store makes them (storedSerial): a literal
 * each, fields in place, and one string for each distinct savedAt.
 * zod's output adds the fields one by one to an empty object, the fifth out
 * of the object in a property array of its own; and JSON.parse makes a
 * savedAt string per entry although a write stores a reload's zones with one
 * time. Together ~80 octets a zone more after a restart than at a first start
 * (many-zones.test.ts). In place; returns `state`.
 */
function compactSerials(state: StateData): StateData {
  const times = new Map<string, string>();
  const serials = state.serials;
  for (const origin in serials) {
    const e = serials[origin]!;
    let savedAt = times.get(e.savedAt);
    if (savedAt === undefined) times.set(e.savedAt, (savedAt = e.savedAt));
    serials[origin] = storedSerial(e, savedAt);
  }
  return state;
}

/**
 * A serial entry as the store keeps and writes it: a literal with its fields
 * in SERIAL_FIELDS order, every one in the object (written out, not spread:
 * `{ ...v, savedAt }` puts savedAt in a property array of its own).
 */
export function storedSerial(v: Omit<StoredSerial, 'savedAt'>, savedAt: string): StoredSerial {
  return { serial: v.serial, digest: v.digest, declared: v.declared, auto: v.auto, savedAt };
}

/** Sets (null: removes) one override; every other entry is kept. */
export function patchOverride(state: StateData, owner: string, address: string, override: StoredOverride['override'] | null, at: string): StateData {
  const overrides = { ...state.overrides };
  const key = overrideKey(owner, address);
  if (override === null) delete overrides[key];
  else overrides[key] = { owner, address, override, setAt: at };
  return { ...state, overrides };
}

/**
 * Records served serials: an origin's entry is replaced unless the file
 * already holds a greater serial (RFC 1982), which another instance served.
 */
export function patchSerials(state: StateData, served: ReadonlyMap<string, StoredSerial>): StateData {
  const serials = { ...state.serials };
  applySerials(serials, served);
  return { ...state, serials };
}

/**
 * What patchSerials does, in place, for a reload's write: with 10,000 zones, copying
 * every entry to change one held answering for ~10 ms per reload. Returns
 * what undoes it, for a write that fails (serials never written must not
 * stay as if they were). `serials` must be the caller's own object.
 */
export function applySerials(serials: Record<string, StoredSerial>, served: ReadonlyMap<string, StoredSerial>): () => void {
  const undo: [string, StoredSerial | undefined][] = [];
  for (const [origin, entry] of served) {
    const stored = Object.hasOwn(serials, origin) ? serials[origin] : undefined;
    if (stored && serialGt(stored.serial, entry.serial)) continue;
    undo.push([origin, stored]);
    serials[origin] = entry;
  }
  return () => {
    for (let i = undo.length - 1; i >= 0; i--) {
      const [origin, before] = undo[i]!;
      if (before === undefined) delete serials[origin];
      else serials[origin] = before;
    }
  };
}

/** Keeps the cookie master key already stored (another instance chose it first), else stores `hex`. */
export function patchCookieMasterKey(state: StateData, hex: string): StateData {
  return state.cookieMasterKey !== undefined ? state : { ...state, cookieMasterKey: hex };
}

export function stateText(state: StateData): string {
  return JSON.stringify(state, null, 2) + '\n';
}

const indented = (value: unknown, by: string) => JSON.stringify(value, null, 2).replace(/\n/g, `\n${by}`);

/** The fields of a serial entry in the order the store makes them (storedSerial). */
const SERIAL_FIELDS = ['serial', 'digest', 'declared', 'auto', 'savedAt'] as const;

/** Whether `entry` has exactly SERIAL_FIELDS, in that order, with the types the schema gives them (no allocation: for-in over its own keys). */
function canonicalSerial(entry: StoredSerial): boolean {
  let i = 0;
  for (const key in entry) if (key !== SERIAL_FIELDS[i++]) return false;
  return i === SERIAL_FIELDS.length && typeof entry.serial === 'number' && typeof entry.digest === 'string' && typeof entry.declared === 'number' && typeof entry.auto === 'boolean' && typeof entry.savedAt === 'string';
}

/** Whether JSON.stringify(text) is text in quotes: printable ASCII without `"` or `\\` (origins, hex digests and ISO times are). */
function plainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/**
 * One serial entry's line, as JSON.stringify(state, null, 2) writes it, as a
 * string: for entries the store did not make (fields in another order, from a
 * hand-edited file) and text that needs escaping. Field by field, in the
 * entry's own order; anything but strings, numbers and booleans goes through
 * JSON.stringify whole.
 */
function serialLine(origin: string, entry: StoredSerial): string {
  const parts: string[] = [`    ${JSON.stringify(origin)}: {`];
  let fields = 0;
  for (const key in entry) {
    const value = (entry as unknown as Record<string, unknown>)[key];
    if (value === undefined) continue; // as JSON.stringify leaves it out
    if (value === null || (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')) return [`    ${JSON.stringify(origin)}: `, indented(entry, '    ')].join('');
    parts.push(`${fields++ === 0 ? '\n' : ',\n'}      ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
  }
  parts.push(fields === 0 ? '}' : '\n    }');
  return parts.join('');
}

/**
 * Serial entries per slice of a write: a write pauses between slices, so
 * that encoding 10,000 lines never holds answering for long at a time.
 */
export const SERIALS_PER_SLICE = 100;

/**
 * Where a write encodes its slices of serial lines: one Buffer, reused slice
 * after slice (grown when a slice needs more). Each slice is handed out as a
 * view of it that is good until the next chunk is asked for; the writer
 * (FileHandle.writeFile over the chunks) has written it by then.
 */
class LineBuffer {
  bytes = Buffer.allocUnsafeSlow(64 * 1024);
  used = 0;

  /** The slice encoded so far, and a fresh start for the next. */
  take(): Buffer {
    const view = this.bytes.subarray(0, this.used);
    this.used = 0;
    return view;
  }

  /** Room for `more` octets after what is there, keeping it. */
  private ensure(more: number): void {
    if (this.used + more <= this.bytes.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.bytes.length * 2, this.used + more));
    this.bytes.copy(bigger, 0, 0, this.used);
    this.bytes = bigger;
  }

  /**
   * Appends the line of `entry` under `origin` (a ",\n" before it unless it
   * is the first). An entry the store made, of plain ASCII text (every one it
   * makes), is written piece by piece with no string made; any other goes
   * through serialLine.
   */
  line(first: boolean, origin: string, entry: StoredSerial): void {
    if (!(canonicalSerial(entry) && plainAscii(origin) && plainAscii(entry.digest) && plainAscii(entry.savedAt))) {
      const text = (first ? '' : ',\n') + serialLine(origin, entry);
      this.ensure(Buffer.byteLength(text, 'utf8'));
      this.used += this.bytes.write(text, this.used, 'utf8');
      return;
    }
    this.ensure(origin.length + entry.digest.length + entry.savedAt.length + 160);
    const b = this.bytes;
    let o = this.used;
    if (!first) o += b.write(',\n', o, 'latin1');
    o += b.write('    "', o, 'latin1');
    o += b.write(origin, o, 'latin1');
    o += b.write('": {\n      "serial": ', o, 'latin1');
    // Serials are integers below 2^32: their decimal text, as JSON.stringify writes them (V8 caches the strings of small integers).
    o += b.write(String(entry.serial), o, 'latin1');
    o += b.write(',\n      "digest": "', o, 'latin1');
    o += b.write(entry.digest, o, 'latin1');
    o += b.write('",\n      "declared": ', o, 'latin1');
    o += b.write(String(entry.declared), o, 'latin1');
    o += b.write(entry.auto ? ',\n      "auto": true,\n      "savedAt": "' : ',\n      "auto": false,\n      "savedAt": "', o, 'latin1');
    o += b.write(entry.savedAt, o, 'latin1');
    o += b.write('"\n    }', o, 'latin1');
    this.used = o;
  }
}

/**
 * The LineBuffer the last finished write gave back, for the next: a write
 * per reload makes no new one. Writes that overlap (two stores in one
 * process) each take their own.
 */
let spareLines: LineBuffer | undefined;

/**
 * stateText's octets as a series of chunks, a slice of `perSlice` serials per
 * chunk with `pause()` awaited between them: with 10,000 zones the serials are
 * ~2 MB of JSON, and one JSON.stringify of them held answering for 10-30 ms on
 * every reload. No 2 MB string (nor its Buffer) is made per reload: those
 * went straight to V8's large-object space and were what grew the heap
 * between major collections. Each slice is encoded into one reused Buffer
 * (LineBuffer) and handed out as a view of it, valid until the next chunk is
 * asked for: a write makes next to no garbage and keeps nothing but that
 * Buffer for the next write.
 *
 * Every write encodes every line, ~1 µs each (10,000 in ~10 ms, spread over
 * the slices). The octets of the last write's slices were kept before, so
 * that an edit of one zone encoded one slice: with 10,000 zones that was
 * 2.2 MB of memory held for good, of the 100 MB a server of 10,000 small
 * zones may take.
 */
export async function* stateTextChunks(state: StateData, pause: () => Promise<void>, perSlice = SERIALS_PER_SLICE): AsyncGenerator<string | Buffer, void, void> {
  let chunk = '';
  let fields = 0;
  for (const key of Object.keys(state) as (keyof StateData)[]) {
    const value = state[key];
    if (value === undefined) continue; // as JSON.stringify leaves it out
    chunk += fields++ === 0 ? '{\n' : ',\n';
    if (key !== 'serials') {
      chunk += `  ${JSON.stringify(key)}: ${indented(value, '  ')}`;
      continue;
    }
    const serials = value as Record<string, StoredSerial>;
    const lines = spareLines ?? new LineBuffer();
    spareLines = undefined;
    let n = 0;
    try {
      for (const origin in serials) {
        if (!Object.hasOwn(serials, origin)) continue;
        if (n === 0) {
          chunk += `  ${JSON.stringify(key)}: {\n`;
          yield chunk;
          chunk = '';
        } else if (n % perSlice === 0) {
          yield lines.take();
          await pause();
        }
        lines.line(n === 0, origin, serials[origin]!);
        n++;
      }
      if (n > 0) yield lines.take();
    } finally {
      // Also when the writer stops early (its loop's return() runs this): the slice in it is dropped.
      lines.take();
      spareLines = lines;
    }
    chunk += n === 0 ? `  ${JSON.stringify(key)}: {}` : '\n  }';
  }
  yield fields === 0 ? '{}\n' : `${chunk}\n}\n`;
}

/** stateTextChunks joined: the same octets as stateText (a test compares them). */
export async function stateTextInSteps(state: StateData, pause: () => Promise<void>, perSlice = SERIALS_PER_SLICE): Promise<string> {
  let text = '';
  for await (const chunk of stateTextChunks(state, pause, perSlice)) text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
  return text;
}
