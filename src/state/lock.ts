/**
 * A short-lived lock on the state directory, so that processes sharing it
 * read-modify-write the state file one at a time (a write re-reads the file
 * and applies one change: nobody's entries are lost). The lock is a file
 * created with O_EXCL holding the owner's PID. A lock whose PID is no longer
 * running (a process killed mid-write) is stale and taken over; one that stays
 * held past `waitMs` is an error, never waited on forever.
 *
 * Synchronous on purpose: a state write happens on an admin request or a
 * zone install, a few milliseconds at most, and being synchronous means no
 * other code of this process runs while the lock is held.
 */
import fs from 'node:fs';

const SLEEP = new Int32Array(new SharedArrayBuffer(4));
const POLL_MS = 10;
/** A lock file with no PID in it (its owner died between creating and writing it) is stale after this long. */
const EMPTY_LOCK_STALE_MS = 2000;

function sleepSync(ms: number): void {
  Atomics.wait(SLEEP, 0, 0, ms);
}

function running(pid: number): boolean {
  if (pid === process.pid) return false; // synchronous: this process never waits on a lock it holds
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class LockTimeout extends Error {
  readonly lockPath: string;
  readonly holder: string;
  constructor(lockPath: string, holder: string) {
    super(`${lockPath} is held by ${holder}`);
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

/** Runs `fn` holding the lock at `lockPath`; fs errors other than contention are thrown as they are. */
export function withLock<T>(lockPath: string, fn: () => T, waitMs = 3000): T {
  const release = acquireLock(lockPath, waitMs);
  try {
    return fn();
  } finally {
    release();
  }
}

/**
 * Takes the lock at `lockPath` (waiting up to `waitMs` for another process)
 * and returns its release, for a holder that awaits while it holds it. Within
 * this process the caller must keep other holders out itself: a lock file
 * naming our own pid counts as stale here.
 */
export function acquireLock(lockPath: string, waitMs = 3000): () => void {
  const deadline = Date.now() + waitMs;
  let fd: number | undefined;
  for (;;) {
    try {
      fd = fs.openSync(lockPath, 'wx', 0o644);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readHolder(lockPath);
    if (holder !== undefined && isStale(lockPath, holder)) {
      takeOver(lockPath, holder);
      continue;
    }
    if (Date.now() >= deadline) throw new LockTimeout(lockPath, holder ? `pid ${holder}` : 'another process');
    sleepSync(POLL_MS);
  }
  try {
    fs.writeSync(fd, `${process.pid}\n`);
  } finally {
    fs.closeSync(fd);
  }
  return () => {
    try {
      fs.unlinkSync(lockPath);
    } catch {
      // Gone already (taken over as stale by someone who thought we died): nothing to release.
    }
  };
}

function readHolder(lockPath: string): string | undefined {
  try {
    return fs.readFileSync(lockPath, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function isStale(lockPath: string, holder: string): boolean {
  const pid = /^\d+$/.test(holder) ? Number(holder) : undefined;
  if (pid !== undefined) return !running(pid);
  try {
    return Date.now() - fs.statSync(lockPath).mtimeMs > EMPTY_LOCK_STALE_MS;
  } catch {
    return false;
  }
}

/**
 * Removes a stale lock, but only the one judged stale: it is renamed aside
 * first, and put back when what was renamed is someone else's fresh lock
 * (another process took the stale one over in between).
 */
function takeOver(lockPath: string, holder: string): void {
  const aside = `${lockPath}.stale-${process.pid}-${Date.now()}`;
  try {
    fs.renameSync(lockPath, aside);
  } catch {
    return; // someone else moved it: just retry
  }
  if (readHolder(aside) !== holder) {
    try {
      fs.linkSync(aside, lockPath);
    } catch {
      // A newer lock is in place already; its owner holds the directory.
    }
  }
  try {
    fs.unlinkSync(aside);
  } catch {
    // already gone
  }
}
