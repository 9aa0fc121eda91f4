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
  return { ok: true, state: parsed.data };
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

/**
 * One serial entry's line, as JSON.stringify(state, null, 2) writes it. An
 * entry of strings, numbers and booleans (what the store makes) is written
 * field by field, which makes no intermediate text to indent again; anything
 * else goes through JSON.stringify. Joined flat: a template and replace()
 * make a tree of ~15 concatenations and slices.
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
 * `text` in a Buffer of its own ArrayBuffer, never a slice of Node's shared
 * pool (Buffer.from takes one for text under half its 64 KB slab, which a
 * slice of 100 serials is): so that release() can free it, and one kept slice
 * does not pin a whole slab.
 */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'utf8'));
  bytes.write(text, 0, 'utf8');
  return bytes;
}

/** Frees `bytes` now, when it is the whole of its ArrayBuffer (not a slice of Node's shared pool): it reads as empty afterwards. */
function release(bytes: Buffer): void {
  const whole = bytes.buffer;
  if (whole instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === whole.byteLength && bytes.byteLength > 0) whole.transfer(0);
}

/**
 * Serial entries per slice of a write: an edit of one zone encodes the lines
 * of its slice again (~20 kB of text for 100), and a write pauses between
 * slices. Measured with 2,000 zones: 500 a slice doubled a named edit's
 * garbage (1.1 MB against ~550 kB with every line kept).
 */
export const SERIALS_PER_SLICE = 100;

/** One slice of serial lines as the last write encoded it, and the entries it holds under their origins (for reuse). */
interface EncodedSlice {
  readonly origins: readonly string[];
  readonly entries: readonly StoredSerial[];
  readonly bytes: Buffer;
}

/**
 * The encoded slices of the last write of each serials record. The store
 * patches its record in place (applySerials), so the same record comes back
 * reload after reload with a few entries replaced: a slice whose entries are
 * all the same objects is written from the octets it had, not encoded again.
 */
const encodedSlices = new WeakMap<Record<string, StoredSerial>, EncodedSlice[]>();

/**
 * stateText's octets as a series of chunks, a slice of `perSlice` serials per
 * chunk with `pause()` awaited between them: with 10,000 zones the serials are
 * ~2 MB of JSON, and one JSON.stringify of them held answering for 10-30 ms on
 * every reload. Written chunk by chunk, no 2 MB string (nor its Buffer) is
 * made per reload: those went straight to V8's large-object space and were
 * what grew the heap between major collections. A slice of unchanged entries
 * is the Buffer the last write made (encodedSlices): a reload that changes
 * one zone of 10,000 encodes the lines of one slice (SERIALS_PER_SLICE of them), not 2 MB.
 * The lines themselves are not kept: with 10,000 zones they were 2.2 MB of
 * heap beside the same octets in the slices' Buffers.
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
    const before = encodedSlices.get(serials) ?? [];
    const slices: EncodedSlice[] = [];
    // The slice being filled: while it matches the last write's slice entry by entry, no array is made.
    let old: EncodedSlice | undefined = before[0];
    let origins: string[] | undefined;
    let entries: StoredSerial[] | undefined;
    let k = 0;
    const encode = (): Buffer => {
      const at = slices.length;
      let slice: EncodedSlice;
      if (entries === undefined && old !== undefined && k === old.entries.length) slice = old;
      else {
        const names = origins ?? old!.origins.slice(0, k);
        const list = entries ?? old!.entries.slice(0, k);
        let text = '';
        for (let e = 0; e < list.length; e++) text += (at > 0 || e > 0 ? ',\n' : '') + serialLine(names[e]!, list[e]!);
        slice = { origins: names, entries: list, bytes: ownBytes(text) };
      }
      slices.push(slice);
      old = before[slices.length];
      origins = undefined;
      entries = undefined;
      k = 0;
      return slice.bytes;
    };
    let n = 0;
    for (const origin in serials) {
      if (!Object.hasOwn(serials, origin)) continue;
      if (n === 0) {
        chunk += `  ${JSON.stringify(key)}: {\n`;
        yield chunk;
        chunk = '';
      } else if (n % perSlice === 0) {
        yield encode();
        await pause();
      }
      n++;
      const entry = serials[origin]!;
      // An entry object only ever sits under its own origin (patchSerials and applySerials put new ones in):
      // the same object at the same place is the same line.
      if (entries === undefined && (old === undefined || old.entries[k] !== entry || old.origins[k] !== origin)) {
        origins = old === undefined ? [] : old.origins.slice(0, k);
        entries = old === undefined ? [] : old.entries.slice(0, k);
      }
      origins?.push(origin);
      entries?.push(entry);
      k++;
    }
    if (n > 0) yield encode();
    encodedSlices.set(serials, slices);
    // The consumer has written every slice by now (it asked for the chunk after the last). The last
    // write's slices that this one did not reuse are garbage: their octets are freed here, not at V8's
    // next full collection, which with an answering thread that allocates next to nothing can be many
    // reloads away. Measured: ~100 kB of ArrayBuffer a reload, 4.6 MB more after 120 reloads of one zone.
    for (const last of before) if (!slices.includes(last)) release(last.bytes);
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
