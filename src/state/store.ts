/**
 * The state directory: what an operator set (API overrides) and what rrdns
 * promised secondaries (served SOA serials) survive a restart. One JSON file,
 * `state.json`, with a format version; written atomically (a temporary file in
 * the same directory, fsync, rename over the old one, fsync the directory: a
 * crash leaves the old file or the new one, never half of one) and validated
 * when read. A file that cannot be read, parsed or validated is an error that
 * names it, never silently replaced by an empty state: forgetting a drain or
 * lowering a serial is what this exists to prevent. A missing file is a first
 * run.
 *
 * Several processes may share a directory (the default `state` is relative to
 * the working directory): every write takes the directory lock (lock.ts),
 * re-reads the file and applies only its own change (format.ts patches).
 *
 * With `off` nothing is read or written; the same interface keeps the state in
 * memory only.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, RrdnsError } from '../errors.ts';
import { nextTurn } from '../zone/slices.ts';
import { applySerials, emptyState, overrideKey, parseState, patchCookieMasterKey, patchOverride, patchSerials, STATE_FILE, stateText, stateTextChunks, type StateData, type StoredOverride, type StoredSerial } from './format.ts';
import { acquireLock, LockTimeout, withLock } from './lock.ts';

export type { StoredOverride, StoredSerial } from './format.ts';
export { storedSerial } from './format.ts';

/** How the state file is read and written; tests inject a failing one. */
export interface StateIo {
  /** The file's text; undefined when it does not exist. Throws when it cannot be read. */
  read(file: string): string | undefined;
  /** Replaces the file with `text` atomically and durably. */
  write(file: string, text: string): void;
  /**
   * The same off the main thread (the writes and fsyncs are awaited), for
   * large files: the rename happens only if `commit()` still says so right
   * before it. Resolves true when the file was replaced. Optional: without it
   * writes are synchronous.
   */
  writeAsync?(file: string, text: string | AsyncIterable<string | Buffer>, commit: () => boolean): Promise<boolean>;
}

export const atomicIo: StateIo = {
  read(file) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
  write(file, text) {
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
    // Owner only: the file may hold the cookie master key.
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      try {
        fs.writeFileSync(fd, text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    // The rename is durable once the directory entry is.
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  },
  async writeAsync(file, text, commit) {
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.async.tmp`);
    try {
      const fh = await fs.promises.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // No await between the check and the rename: nothing else in this process runs in between.
      if (!commit()) {
        fs.rmSync(tmp, { force: true });
        return false;
      }
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    const dh = await fs.promises.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    return true;
  },
};

const errText = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

const RECOVER = 'move it aside to start with an empty state (API overrides and served serials are then forgotten)';

export class StateStore {
  /** The state file, undefined when the state is kept in memory only. */
  readonly file: string | undefined;
  private readonly lockFile: string | undefined;
  private readonly io: StateIo;
  private data: StateData;
  /** Writes that failed (the change was refused), for /metrics. */
  writeFailures = 0;
  /**
   * The file's size, mtime and inode right after our last write: while they
   * are the same nobody else wrote it, and `data` is what it holds, so the
   * next write need not read and validate the whole file again (with 10,000
   * zones' serials that was most of a reload's time on the main thread).
   */
  private writtenStamp: string | undefined;
  /** The state an asynchronous write (saveSerialsAsync) is putting in the file, while it does. */
  private pending: StateData | undefined;
  /** A synchronous write happened while `pending` was in flight (and wrote what it held): that write must not land after it. */
  private superseded = false;
  /** Asynchronous writes, one after the other. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(file: string | undefined, io: StateIo, data: StateData) {
    this.file = file;
    this.lockFile = file === undefined ? undefined : `${file}.lock`;
    this.io = io;
    this.data = data;
  }

  /**
   * Opens `stateDir` ('off': memory only), creating it when missing, and
   * reads the state. Throws RrdnsError STATE_INVALID naming the path when the
   * directory cannot be created or locked, or the file is unreadable or
   * invalid.
   */
  static open(stateDir: string, io: StateIo = atomicIo): StateStore {
    if (stateDir === 'off') return new StateStore(undefined, io, emptyState());
    const dir = path.resolve(stateDir);
    const file = path.join(dir, STATE_FILE);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new RrdnsError(ErrorCode.STATE_INVALID, `cannot create the state directory ${dir}: ${errText(e)} (set --state-dir / RRDNS_STATE_DIR to a writable directory, or off)`, { cause: e });
    }
    const store = new StateStore(file, io, emptyState());
    try {
      // Taking the lock proves the directory is writable before anything is served.
      store.data = withLock(store.lockFile!, () => store.readFile(ErrorCode.STATE_INVALID));
    } catch (e) {
      if (e instanceof RrdnsError) throw e;
      const why = e instanceof LockTimeout ? `${e.lockPath} stays held by ${e.holder}` : `cannot lock ${store.lockFile}: ${errText(e)}`;
      throw new RrdnsError(ErrorCode.STATE_INVALID, `state directory ${dir} is not usable: ${why}`, { cause: e });
    }
    return store;
  }

  /** The overrides as read at start. */
  overrides(): StoredOverride[] {
    return Object.values(this.data.overrides);
  }

  /** The serial last stored for a zone origin (lower case, trailing dot). */
  serial(origin: string): StoredSerial | undefined {
    return Object.hasOwn(this.data.serials, origin) ? this.data.serials[origin] : undefined;
  }

  /** Stores (null: removes) an override; throws RrdnsError STATE_WRITE_FAILED, and then nothing changed. */
  setOverride(owner: string, address: string, override: StoredOverride['override'] | null): void {
    const at = new Date().toISOString();
    this.update((s) => patchOverride(s, owner, address, override, at));
  }

  /**
   * The entries of `served` that differ from the stored ones. An unchanged
   * stored entry takes the served entry's digest string, the same 64 hex
   * digits: read from the file, it was a copy of the served zone's own
   * (~0.8 MB with 10,000 zones after a restart).
   */
  private changedSerials(served: ReadonlyMap<string, StoredSerial>): Map<string, StoredSerial> {
    const changed = new Map<string, StoredSerial>();
    for (const [origin, entry] of served) {
      const stored = this.serial(origin);
      if (stored !== undefined && sameSerial(stored, entry)) stored.digest = entry.digest;
      else changed.set(origin, entry);
    }
    return changed;
  }

  /** Stores the serials served now; an origin whose stored entry is already the same is not rewritten. */
  saveSerials(served: ReadonlyMap<string, StoredSerial>): void {
    const changed = this.changedSerials(served);
    if (changed.size === 0) return;
    this.update((s) => patchSerials(s, changed));
  }

  /**
   * The cookie master key kept here; on first use `generate()`'s key is stored
   * (or, if another instance sharing the directory stored one meanwhile, that
   * one is used). Throws RrdnsError STATE_WRITE_FAILED when it cannot be stored.
   */
  cookieMasterKey(generate: () => Buffer): Buffer {
    if (this.data.cookieMasterKey === undefined) {
      const hex = generate().toString('hex');
      this.update((s) => patchCookieMasterKey(s, hex));
    }
    return Buffer.from(this.data.cookieMasterKey!, 'hex');
  }

  /** Whether an override is stored for this member (read at start or written since). */
  hasOverride(owner: string, address: string): boolean {
    return Object.hasOwn(this.data.overrides, overrideKey(owner, address));
  }

  /**
   * saveSerials, with the file written and fsynced off the main thread: with
   * 10,000 zones the file is ~2 MB and a synchronous write held answering for
   * tens of ms per reload. Rejects with RrdnsError STATE_WRITE_FAILED as
   * saveSerials throws. An override set meanwhile (synchronously) writes the
   * file with these serials included, and this write then does not land.
   */
  saveSerialsAsync(served: ReadonlyMap<string, StoredSerial>): Promise<void> {
    const run = this.writing.then(() => this.writeSerialsAsync(served));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async writeSerialsAsync(served: ReadonlyMap<string, StoredSerial>): Promise<void> {
    const changed = this.changedSerials(served);
    if (changed.size === 0) return;
    const writeAsync = this.io.writeAsync?.bind(this.io);
    // Memory only: in place, nothing to undo (applySerials; a copy of 10,000 entries per reload was ~1 MB of garbage).
    if (this.file === undefined) return void applySerials(this.data.serials, changed);
    if (writeAsync === undefined) return this.update((s) => patchSerials(s, changed));
    const file = this.file;
    let release: (() => void) | undefined;
    let undo: (() => void) | undefined;
    try {
      release = acquireLock(this.lockFile!);
      const current = this.writtenStamp !== undefined && fileStamp(file) === this.writtenStamp ? this.data : this.readFile(ErrorCode.STATE_WRITE_FAILED);
      // In place (see applySerials): `current` is this store's own (this.data or just read), and a failed write undoes it.
      undo = applySerials(current.serials, changed);
      const next: StateData = { ...current };
      this.pending = next;
      this.superseded = false;
      this.writtenStamp = undefined;
      // Chunk by chunk: no 2 MB string per reload (see stateTextChunks).
      const replaced = await writeAsync(file, stateTextChunks(next, nextTurn), () => !this.superseded);
      if (replaced) {
        this.data = next;
        this.writtenStamp = fileStamp(file);
      }
    } catch (e) {
      undo?.();
      this.writeFailures++;
      if (e instanceof RrdnsError) throw e;
      const why = e instanceof LockTimeout ? `${e.lockPath} stays held by ${e.holder}` : errText(e);
      throw new RrdnsError(ErrorCode.STATE_WRITE_FAILED, `cannot write the state file ${file}: ${why}`, { cause: e });
    } finally {
      this.pending = undefined;
      // Unless a synchronous write took the lock over (and released it) meanwhile.
      if (!this.superseded) release?.();
    }
  }

  private update(patch: (s: StateData) => StateData): void {
    if (this.file === undefined) {
      this.data = patch(this.data);
      return;
    }
    const file = this.file;
    try {
      if (this.pending !== undefined) {
        // An asynchronous write is in flight: this one includes what it writes, and it will not land after this.
        this.superseded = true;
        const next = patch(this.pending);
        this.data = withLock(this.lockFile!, () => {
          this.io.write(file, stateText(next));
          return next;
        });
        this.writtenStamp = fileStamp(file);
        return;
      }
      this.data = withLock(this.lockFile!, () => {
        const current = this.writtenStamp !== undefined && fileStamp(file) === this.writtenStamp ? this.data : this.readFile(ErrorCode.STATE_WRITE_FAILED);
        const next = patch(current);
        this.writtenStamp = undefined;
        this.io.write(file, stateText(next));
        this.writtenStamp = fileStamp(file);
        return next;
      });
    } catch (e) {
      this.writeFailures++;
      if (e instanceof RrdnsError) throw e;
      const why = e instanceof LockTimeout ? `${e.lockPath} stays held by ${e.holder}` : errText(e);
      throw new RrdnsError(ErrorCode.STATE_WRITE_FAILED, `cannot write the state file ${file}: ${why}`, { cause: e });
    }
  }

  private readFile(code: ErrorCode): StateData {
    const file = this.file!;
    let text: string | undefined;
    try {
      text = this.io.read(file);
    } catch (e) {
      throw new RrdnsError(code, `cannot read the state file ${file}: ${errText(e)}; fix its permissions or ${RECOVER}`, { cause: e });
    }
    if (text === undefined) return emptyState();
    const parsed = parseState(text);
    if (!parsed.ok) throw new RrdnsError(code, `state file ${file} ${parsed.problem}; ${RECOVER}`);
    return parsed.state;
  }
}

/** size, mtime and inode of `file`; undefined when it cannot be stat'ed. */
function fileStamp(file: string): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.size}:${st.mtimeNs}:${st.ino}`;
  } catch {
    return undefined;
  }
}

function sameSerial(a: StoredSerial | undefined, b: StoredSerial): boolean {
  return a !== undefined && a.serial === b.serial && a.digest === b.digest && a.declared === b.declared && a.auto === b.auto;
}
