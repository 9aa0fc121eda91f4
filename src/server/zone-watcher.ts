/**
 * Notices edits in the zones directory and asks for a reload, naming what changed.
 *
 * Two sources, one decision: fs.watch gives a fast nudge where inotify works,
 * naming the files it saw change, and a poll catches what it misses (bind
 * mounts, NFS, a Kubernetes ConfigMap swapping its `..data` symlink). The
 * watcher keeps each entry's stamp (size, mtime, inode, following symlinks) as
 * of the last reload it asked for, and asks again only when a stamp moved,
 * after a quiet period so an editor's save in several writes is read once.
 *
 * Cost proportional to the change: an event naming zone files stats only those
 * and the reload re-reads only those (10,000 zones, one edited: one stat, one
 * parse). A name it cannot vouch for (a directory, a symlink like `..data`, a
 * file that is no zone file but still there) makes it look at everything, as
 * the poll does. The poll stats every file; with thousands of them that is
 * ~15 µs and ~250 octets of garbage each, so it spaces itself to cost at most
 * ~2% of the time (POLL_BUDGET), waits at least 1 ms a file between polls
 * (POLL_MS_PER_FILE: 10 s for 10,000) and never runs more often than pollMs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isZoneFileName } from '../zone/load.ts';
import { runInSlices } from '../zone/slices.ts';

/** The files a change touched (relative names in the directory, absolute for files outside it), or everything. */
export type ChangedFiles = ReadonlySet<string> | 'all';

export interface ZoneWatcherOptions {
  dir: string;
  pollMs: number;
  debounceMs: number;
  /** Called when stamps moved; the watcher does not call it again until it resolves. */
  onChange: (changed: ChangedFiles) => Promise<void>;
  /** Files outside `dir` that the served zones read (e.g. `masterFile: ../shared.zone`). */
  extraFiles?: () => readonly string[];
  /** Whether a name in the directory is a zone file; default the reader's own rule (isZoneFileName). */
  isZoneFile?: (name: string) => boolean;
  onError?: (err: unknown) => void;
}

/**
 * What a name points to as of the last look: size, mtime, inode (following
 * symlinks), or gone. Updated in place: a poll of 10,000 files made a stamp
 * object and a set entry per file, ~2.6 MB a second of garbage that outlived
 * the poll's slices and was what V8's full collections (~20 ms pauses) came
 * for on an idle server. The path it is stat'ed by is joined for each look,
 * not kept: kept, it was ~0.5 MB of strings for 10,000 files, against ~50
 * octets of garbage a file a poll (one poll every 10 s: POLL_MS_PER_FILE).
 */
interface Stamp {
  size: number;
  mtimeMs: number;
  ino: number;
  gone: boolean;
  /** The look that last found the name (names not found by a whole look are gone). */
  seen: number;
  /** Whether the last look at it found it moved (a new name counts as moved). */
  moved: boolean;
}

/** Whether `file` is there (what cannot be stat'ed counts as not there, as for stamps). */
function exists(file: string): boolean {
  try {
    return fs.statSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** Stats `file` into `stamp`; true when anything moved. */
function restamp(stamp: Stamp, file: string): boolean {
  let st: fs.Stats | undefined;
  try {
    // stat follows symlinks, so a ConfigMap's symlink swap shows as a new inode.
    st = fs.statSync(file, { throwIfNoEntry: false });
  } catch {
    st = undefined;
  }
  if (st === undefined) {
    if (stamp.gone) return false;
    stamp.gone = true;
    return true;
  }
  if (!stamp.gone && stamp.size === st.size && stamp.mtimeMs === st.mtimeMs && stamp.ino === st.ino) return false;
  stamp.gone = false;
  stamp.size = st.size;
  stamp.mtimeMs = st.mtimeMs;
  stamp.ino = st.ino;
  return true;
}

/** The share of time a poll of every file may take: the next one waits at least scan time / POLL_BUDGET. */
export const POLL_BUDGET = 0.02;

/**
 * The least wait between polls per file watched, ms: 10 s for 10,000 files.
 * A poll makes ~250 octets of garbage a file (fs.statSync's Stats, the
 * directory entry, its name), and that, not the stat calls' time, is what it
 * costs a big directory: 10,000 files every 2 s were ~1.3 MB a second, a
 * young-generation collection every second on an idle server and the steady
 * promotions that grew the heap between full collections. File events
 * (fs.watch) still name an edit at once; the poll is for the filesystems that
 * send none (NFS, some bind mounts), which now notice within 10 s per 10,000
 * files.
 */
export const POLL_MS_PER_FILE = 1;

/** How long to wait before the next poll: pollMs, or longer for a slow scan (POLL_BUDGET) or many files (POLL_MS_PER_FILE). */
export function pollWaitMs(pollMs: number, lastScanMs: number, files: number): number {
  return Math.max(pollMs, Math.ceil(lastScanMs / POLL_BUDGET), files * POLL_MS_PER_FILE);
}

/** Synchronous work between event-loop turns, in ms: 10,000 stat calls take tens of ms. */
const SLICE_MS = 1;

/**
 * The stamps of a directory and some extra files, kept in place and compared
 * name by name (no digest of everything: a partial look must be able to
 * update a few names without a full pass).
 */
export class DirStamps {
  private readonly dir: string;
  /** Relative names in dir, absolute paths for extra files. */
  private readonly stamps = new Map<string, Stamp>();
  /** Counts whole looks (takeAll, compareAll), for Stamp.seen. */
  private look = 0;
  /** Why the directory could not be read at the last look (an errno code), or undefined when it could. */
  private unreadable: string | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Names whose stamps are kept (the directory's entries and the extra files). */
  get size(): number {
    return this.stamps.size;
  }

  /** The path `name` is stat'ed by: in the directory, or absolute (an extra file). */
  private pathOf(name: string): string {
    return path.isAbsolute(name) ? name : path.join(this.dir, name);
  }

  /** The stamp of `name`, looked at again (`moved` says whether it moved; a name seen for the first time has). */
  private check(name: string): Stamp {
    const known = this.stamps.get(name);
    if (known !== undefined) {
      known.moved = restamp(known, this.pathOf(name));
      return known;
    }
    const stamp: Stamp = { size: 0, mtimeMs: 0, ino: 0, gone: true, seen: 0, moved: true };
    restamp(stamp, this.pathOf(name));
    this.stamps.set(name, stamp);
    return stamp;
  }

  /** Takes the stamps of everything now, synchronously (at start, before the first read). */
  takeAll(extraFiles: readonly string[]): void {
    let dir: fs.Dir | undefined;
    try {
      dir = fs.opendirSync(this.dir);
    } catch {
      dir = undefined;
    }
    const steps = this.compareSteps(dir, extraFiles, new Set());
    while (!steps.next().done);
  }

  /** Every name whose stamp moved since the last look (added, removed, changed), updating them; in slices. */
  async compareAll(extraFiles: readonly string[]): Promise<Set<string>> {
    let dir: fs.Dir;
    try {
      dir = await fs.promises.opendir(this.dir, { bufferSize: 256 });
    } catch (e) {
      // An unreadable directory is a change of its own only once (per reason); the reload reports why.
      const why = (e as NodeJS.ErrnoException).code ?? 'error';
      const changed = new Set<string>();
      if (this.unreadable !== why) changed.add(`\0unreadable:${why}`);
      this.unreadable = why;
      return changed;
    }
    const changed = new Set<string>();
    // Readable again: the reload that reported it unreadable must be followed by one that reads it.
    if (this.unreadable !== undefined) changed.add('\0readable');
    this.unreadable = undefined;
    await runInSlices(this.compareSteps(dir, extraFiles, changed), SLICE_MS);
    return changed;
  }

  /** Of `names`, those whose stamp moved, updating them. */
  compareSome(names: Iterable<string>): Set<string> {
    const changed = new Set<string>();
    for (const name of names) {
      const known = this.stamps.get(name);
      if (known === undefined) {
        // Never seen: a change only if it is there now.
        if (this.check(name).gone) this.stamps.delete(name);
        else changed.add(name);
        continue;
      }
      if (!restamp(known, this.pathOf(name))) continue;
      changed.add(name);
      if (known.gone) this.stamps.delete(name);
    }
    return changed;
  }

  /**
   * Walks the directory entry by entry (opendir, not a listing of all names
   * kept for the whole look), then the extra files, then drops the names
   * this look did not find. `dir` undefined: the directory could not be opened.
   */
  private *compareSteps(dir: fs.Dir | undefined, extraFiles: readonly string[], changed: Set<string>): Generator<void, void, void> {
    const look = ++this.look;
    if (dir !== undefined) {
      try {
        let n = 0;
        for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
          const stamp = this.check(entry.name);
          stamp.seen = look;
          if (stamp.moved) changed.add(entry.name);
          // A step per 32 files (~0.1 ms of stat calls), not per file: each step is an object too.
          if (++n % 32 === 0) yield;
        }
      } catch {
        // The directory went away during the look: what was not found counts as gone below.
      } finally {
        try {
          dir.closeSync();
        } catch {
          // already closed
        }
      }
    }
    for (const file of extraFiles) {
      const stamp = this.check(file);
      stamp.seen = look;
      if (stamp.moved) changed.add(file);
    }
    for (const [name, stamp] of this.stamps) {
      if (stamp.seen === look) continue;
      if (!stamp.gone) changed.add(name);
      this.stamps.delete(name);
    }
  }
}

export class ZoneWatcher {
  private readonly opts: ZoneWatcherOptions;
  private readonly isZoneFile: (name: string) => boolean;
  private fsWatcher: fs.FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private readonly stamps: DirStamps;
  /** Names fs.watch reported since the last look; `all` when it could not say (or a poll is due). */
  private pending = new Set<string>();
  private pendingAll = false;
  private running = false;
  private again = false;
  private closed = false;
  /** How long the last look at everything took (ms), which spaces the polls. */
  private lastScanMs = 0;

  constructor(opts: ZoneWatcherOptions) {
    this.opts = opts;
    this.isZoneFile = opts.isZoneFile ?? isZoneFileName;
    this.stamps = new DirStamps(opts.dir);
    // Before the first read, so an edit racing the start-up is not missed.
    this.stamps.takeAll(opts.extraFiles?.() ?? []);
  }

  start(): void {
    try {
      this.fsWatcher = fs.watch(this.opts.dir, { persistent: false }, (_event, filename) => {
        if (typeof filename === 'string' && filename.length > 0) this.pending.add(filename);
        else this.pendingAll = true;
        this.nudge();
      });
      this.fsWatcher.on('error', (err) => {
        // The poll still runs; a watcher error (directory removed, inotify limit) is not fatal.
        this.opts.onError?.(err);
        this.fsWatcher?.close();
        this.fsWatcher = undefined;
      });
    } catch (err) {
      this.opts.onError?.(err);
    }
    this.schedulePoll();
  }

  /** The next poll: pollMs after this one, or later when looking at everything costs more than POLL_BUDGET of the time. */
  private schedulePoll(): void {
    if (this.closed) return;
    const wait = pollWaitMs(this.opts.pollMs, this.lastScanMs, this.stamps.size);
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.pendingAll = true;
      this.nudge(0);
    }, wait);
    this.pollTimer.unref();
  }

  /** Something may have changed: look after the quiet period. */
  private nudge(delayMs = this.opts.debounceMs): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.compare();
    }, delayMs);
    this.debounceTimer.unref();
  }

  /**
   * The names to look at: only zone files, or names now gone that were no
   * zone files (an editor's temporary file), can be looked at one by one;
   * anything else that is there (a directory, `..data`, a swap file) may stand
   * for changes of files nobody named, so everything is looked at.
   */
  private partialNames(names: ReadonlySet<string>): string[] | undefined {
    const some: string[] = [];
    for (const name of names) {
      if (name.includes('/') || name.includes(path.sep)) return undefined;
      if (this.isZoneFile(name)) {
        some.push(name);
        continue;
      }
      if (exists(path.join(this.opts.dir, name))) return undefined;
    }
    return some;
  }

  private async compare(): Promise<void> {
    if (this.closed) return;
    if (this.running) {
      // One reload at a time; look again when it ends.
      this.again = true;
      return;
    }
    this.running = true;
    const all = this.pendingAll;
    const named = this.pending;
    this.pending = new Set();
    this.pendingAll = false;
    try {
      const partial = all ? undefined : this.partialNames(named);
      let changed: ChangedFiles;
      if (partial !== undefined) changed = this.stamps.compareSome(partial);
      else {
        const started = performance.now();
        const every = await this.stamps.compareAll(this.opts.extraFiles?.() ?? []);
        this.lastScanMs = performance.now() - started;
        // A file outside the directory (a master file a zone pulls in) or an unreadable directory: read everything.
        changed = [...every].some((n) => path.isAbsolute(n) || n.startsWith('\0') || !this.isZoneFile(n)) ? 'all' : every;
      }
      if (changed !== 'all' && changed.size === 0) return;
      await this.opts.onChange(changed);
    } catch (err) {
      // Nothing here may end the watching: a later change must still reload.
      try {
        this.opts.onError?.(err);
      } catch {
        // a failing error sink is not worth stopping for
      }
    } finally {
      this.running = false;
      if (all) this.schedulePoll();
    }
    if (this.again) {
      this.again = false;
      this.nudge();
    }
  }

  /** Idempotent. */
  close(): void {
    this.closed = true;
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
  }
}
