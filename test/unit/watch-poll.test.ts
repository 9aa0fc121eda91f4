/**
 * How long the zones directory watcher waits between polls (pollWaitMs): the
 * operator's pollMs, unless a scan is slow (at most POLL_BUDGET of the time
 * goes to polling) or the directory is big (at least POLL_MS_PER_FILE per
 * file: a poll's garbage is ~250 octets a file, and it is the garbage that
 * costs a directory of 10,000 zones, not the time).
 */
import { describe, expect, it } from 'vitest';
import { POLL_BUDGET, POLL_MS_PER_FILE, pollWaitMs } from '../../src/server/zone-watcher.ts';

describe('pollWaitMs', () => {
  it.each([
    { name: 'a small directory polls every pollMs', pollMs: 2000, scanMs: 0.4, files: 12, want: 2000 },
    { name: 'a slow scan spaces the polls to POLL_BUDGET of the time', pollMs: 2000, scanMs: 80, files: 300, want: 4000 },
    { name: '10,000 files: 10 s between polls, though the scan took 25 ms', pollMs: 2000, scanMs: 25, files: 10_000, want: 10_000 },
    { name: '10,000 files on a slow disk: the scan time decides', pollMs: 2000, scanMs: 400, files: 10_000, want: 20_000 },
    { name: "an operator's longer pollMs wins over both", pollMs: 60_000, scanMs: 400, files: 10_000, want: 60_000 },
    { name: 'no files yet (an empty directory): pollMs', pollMs: 500, scanMs: 0, files: 0, want: 500 },
  ])('$name', ({ pollMs, scanMs, files, want }) => {
    expect(pollWaitMs(pollMs, scanMs, files)).toBe(want);
  });

  it('the constants are the ones the README gives: 2% of the time, 1 ms a file', () => {
    expect(POLL_BUDGET).toBe(0.02);
    expect(POLL_MS_PER_FILE).toBe(1);
  });
});
