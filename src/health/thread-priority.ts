/**
 * Lowers the priority of the calling thread (Linux: the nice value is per
 * thread, and /proc/thread-self names this thread). The probing thread runs
 * below the answering thread: on a busy machine the two compete for a core,
 * the answers must win, a probe can wait a few ms. Elsewhere, or without the
 * right, the thread stays as it is.
 */
import fs from 'node:fs';
import os from 'node:os';

/** How much lower than the answering thread the probing thread runs (nice +5). */
export const CHECKER_NICE = 5;

export function lowerThisThread(by: number = CHECKER_NICE): void {
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, Math.min(19, os.getPriority(tid) + by));
  } catch {
    // not Linux, or not allowed: same priority as the answering thread
  }
}
