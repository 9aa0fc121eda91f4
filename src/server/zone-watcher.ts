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
 * ~15 µs each, so it spaces itself to cost at most ~2% of the time
 * (POLL_BUDGET) and never runs more often than pollMs.
 */
import fs from 'node:fs';
import path from 'node:path';
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
  /** Whether a name in the directory is a zone file (one the reader reads). */
  isZoneFile?: (name: string) => boolean;
  onError?: (err: unknown) => void;
}

/** size, mtime, inode of what a name points to; 'gone' when it does not exist. */
type Stamp = { size: number; mtimeMs: number; ino: number } | 'gone';

function stampOf(file: string): Stamp {
  try {
    // stat follows symlinks, so a ConfigMap's symlink swap shows as a new inode.
    const st = fs.statSync(file, { throwIfNoEntry: false });
    return st ? { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } : 'gone';
  } catch {
    return 'gone';
  }
}

const sameStamp = (a: Stamp | undefined, b: Stamp) =>
  a !== undefined && (a === 'gone' || b === 'gone' ? a === b : a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino);

/** The share of time a poll of every file may take: the next one waits at least scan time / POLL_BUDGET. */
export const POLL_BUDGET = 0.02;

/** Synchronous work between event-loop turns, in ms: 10,000 stat calls take tens of ms. */
const SLICE_MS = 1;

const isDefaultZoneFile = (name: string) => /\.(ya?ml|json|zone)$/i.test(name);

/**
 * The stamps of a directory and some extra files, kept in place and compared
 * name by name (no digest of everything: a partial look must be able to
 * update a few names without a full pass).
 */
export class DirStamps {
  private readonly dir: string;
  /** Relative names in dir, absolute paths for extra files. */
  private readonly stamps = new Map<string, Stamp>();
  /** Why the directory could not be read at the last look (an errno code), or undefined when it could. */
  private unreadable: string | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  private pathOf(name: string): string {
    return path.isAbsolute(name) ? name : path.join(this.dir, name);
  }

  /** Takes the stamps of everything now, synchronously (at start, before the first read). */
  takeAll(extraFiles: readonly string[]): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      names = [];
    }
    const steps = this.compareSteps(names, extraFiles, new Set());
    while (!steps.next().done);
  }

  /** Every name whose stamp moved since the last look (added, removed, changed), updating them; in slices. */
  async compareAll(extraFiles: readonly string[]): Promise<Set<string>> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
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
    await runInSlices(this.compareSteps(names, extraFiles, changed), SLICE_MS);
    return changed;
  }

  /** Of `names`, those whose stamp moved, updating them. */
  compareSome(names: Iterable<string>): Set<string> {
    const changed = new Set<string>();
    for (const name of names) {
      const now = stampOf(this.pathOf(name));
      if (sameStamp(this.stamps.get(name), now)) continue;
      changed.add(name);
      if (now === 'gone') this.stamps.delete(name);
      else this.stamps.set(name, now);
    }
    return changed;
  }

  private *compareSteps(names: readonly string[], extraFiles: readonly string[], changed: Set<string>): Generator<void, void, void> {
    const present = new Set<string>();
    for (const name of names) {
      present.add(name);
      const now = stampOf(path.join(this.dir, name));
      if (!sameStamp(this.stamps.get(name), now)) {
        changed.add(name);
        this.stamps.set(name, now);
      }
      yield;
    }
    for (const file of extraFiles) {
      present.add(file);
      const now = stampOf(file);
      if (!sameStamp(this.stamps.get(file), now)) {
        changed.add(file);
        this.stamps.set(file, now);
      }
    }
    for (const name of this.stamps.keys()) {
      if (present.has(name)) continue;
      changed.add(name);
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
    this.isZoneFile = opts.isZoneFile ?? isDefaultZoneFile;
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
    const wait = Math.max(this.opts.pollMs, Math.ceil(this.lastScanMs / POLL_BUDGET));
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
      if (stampOf(path.join(this.opts.dir, name)) !== 'gone') return undefined;
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
      if (partial !== undefined) {
        const some = this.stamps.compareSome(partial);
        changed = some;
      } else {
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
