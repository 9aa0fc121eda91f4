/**
 * Notices edits in the zones directory and asks for a reload.
 *
 * Two sources, one decision: fs.watch gives a fast nudge where inotify works,
 * and a poll catches what it misses (bind mounts, NFS, a Kubernetes ConfigMap
 * swapping its `..data` symlink). Either only *asks*; a reload is requested
 * only when the directory's fingerprint (every entry's name, size, mtime and
 * inode, plus the master files zones pull in from elsewhere) differs from the
 * one of the last reload, after a quiet period so an editor's save in several
 * writes is read once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runInSlices } from '../zone/slices.ts';

export interface ZoneWatcherOptions {
  dir: string;
  pollMs: number;
  debounceMs: number;
  /** Called when the fingerprint changed; the watcher does not call it again until it resolves. */
  onChange: () => Promise<void>;
  /** Files outside `dir` that the served zones read (e.g. `masterFile: ../shared.zone`). */
  extraFiles?: () => readonly string[];
  onError?: (err: unknown) => void;
}

/** Cheap summary of what a reload would read: changes when any file is added, removed, replaced or written. */
export function fingerprintZoneDir(dir: string, extraFiles: readonly string[] = []): string {
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch (e) {
    return `unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  const steps = fingerprintSteps(dir, names, extraFiles);
  for (let r = steps.next(); ; r = steps.next()) if (r.done) return r.value;
}

/** Synchronous work between event-loop turns, in ms: 10,000 stat calls take tens of ms. */
const SLICE_MS = 1;

/** fingerprintZoneDir in ~1 ms slices that yield to the event loop, so a poll never holds answering. */
export async function fingerprintZoneDirAsync(dir: string, extraFiles: readonly string[] = []): Promise<string> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(dir)).sort();
  } catch (e) {
    return `unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  return runInSlices(fingerprintSteps(dir, names, extraFiles), SLICE_MS);
}

function* fingerprintSteps(dir: string, names: readonly string[], extraFiles: readonly string[]): Generator<void, string, void> {
  // A running digest, not a list of lines: 10,000 lines kept until the end outlived the young
  // generation on every poll and piled up as old-space garbage (RSS grew between collections).
  const hash = crypto.createHash('sha256');
  const parts = { push: (line: string) => hash.update(line).update('\n') };
  const statLine = (label: string, file: string) => {
    try {
      // stat follows symlinks, so a ConfigMap's symlink swap shows as a new inode.
      const st = fs.statSync(file);
      parts.push(`${label}\0${st.size}\0${st.mtimeMs}\0${st.ino}`);
    } catch {
      parts.push(`${label}\0gone`);
    }
  };
  for (const name of names) {
    statLine(name, path.join(dir, name));
    yield;
  }
  for (const file of [...extraFiles].sort()) statLine(file, file);
  return hash.digest('hex');
}

export class ZoneWatcher {
  private readonly opts: ZoneWatcherOptions;
  private fsWatcher: fs.FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private last: string;
  private running = false;
  private again = false;
  private closed = false;

  constructor(opts: ZoneWatcherOptions) {
    this.opts = opts;
    this.last = fingerprintZoneDir(opts.dir, opts.extraFiles?.() ?? []);
  }

  start(): void {
    try {
      this.fsWatcher = fs.watch(this.opts.dir, { persistent: false }, () => this.nudge());
      this.fsWatcher.on('error', (err) => {
        // The poll still runs; a watcher error (directory removed, inotify limit) is not fatal.
        this.opts.onError?.(err);
        this.fsWatcher?.close();
        this.fsWatcher = undefined;
      });
    } catch (err) {
      this.opts.onError?.(err);
    }
    this.pollTimer = setInterval(() => this.nudge(), this.opts.pollMs);
    this.pollTimer.unref();
  }

  /** Something may have changed: look again after the quiet period. */
  private nudge(): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.compare();
    }, this.opts.debounceMs);
    this.debounceTimer.unref();
  }

  private async compare(): Promise<void> {
    if (this.closed) return;
    if (this.running) {
      // One reload at a time; look again when it ends.
      this.again = true;
      return;
    }
    this.running = true;
    try {
      const now = await fingerprintZoneDirAsync(this.opts.dir, this.opts.extraFiles?.() ?? []);
      if (now === this.last) return;
      this.last = now;
      await this.opts.onChange();
    } catch (err) {
      // Nothing here may end the watching: a later change must still reload.
      try {
        this.opts.onError?.(err);
      } catch {
        // a failing error sink is not worth stopping for
      }
    } finally {
      this.running = false;
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
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
  }
}
