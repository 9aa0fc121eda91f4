/**
 * ZoneWatcher on a real directory with real fs.watch (inotify): what it names
 * when files change, so a reload re-reads only those (one edit among 10,000
 * zones costs one stat and one parse), and when it must say "look at
 * everything" instead: a name it cannot vouch for (a ConfigMap's `..data`
 * symlink swap, a file that is no zone file), a master file outside the
 * directory. DirStamps is the poll's side: every added, removed or changed name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirStamps, ZoneWatcher, type ChangedFiles } from '../../src/server/zone-watcher.ts';
import { isZoneFileName } from '../../src/zone/load.ts';
import { waitUntil } from '../support/spawn.ts';

const dirs: string[] = [];
const watchers: ZoneWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-watch-'));
  dirs.push(d);
  return d;
}

/** A watcher on `dir` whose reload requests are recorded (a long poll: only fs.watch drives these cases). */
function watch(dir: string, extraFiles: string[] = [], pollMs = 3_600_000): ChangedFiles[] {
  const seen: ChangedFiles[] = [];
  const w = new ZoneWatcher({ dir, pollMs, debounceMs: 50, isZoneFile: isZoneFileName, extraFiles: () => extraFiles, onChange: async (c) => void seen.push(c) });
  watchers.push(w);
  w.start();
  return seen;
}

const named = (c: ChangedFiles | undefined) => (c === undefined || c === 'all' ? c : [...c].sort());
const settle = (seen: ChangedFiles[], n: number, what: string) => waitUntil(async () => seen.length >= n, { what, attempts: 200, intervalMs: 25 });

describe('ZoneWatcher names what changed', () => {
  it('an in-place edit of one zone file names just that file', async () => {
    const dir = tempDir();
    for (const n of ['a.test.zone', 'b.test.yaml', 'c.test.zone']) fs.writeFileSync(path.join(dir, n), 'x\n');
    const seen = watch(dir);
    fs.appendFileSync(path.join(dir, 'b.test.yaml'), 'y\n');
    await settle(seen, 1, 'a reload request');
    expect(named(seen[0])).toEqual(['b.test.yaml']);
  });

  it("an editor's save (temporary file renamed over the zone file) names the zone file: the temporary one is gone", async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'a.test.zone'), 'x\n');
    fs.writeFileSync(path.join(dir, 'b.test.zone'), 'x\n');
    const seen = watch(dir);
    fs.writeFileSync(path.join(dir, '.a.test.zone.tmp'), 'new\n');
    fs.renameSync(path.join(dir, '.a.test.zone.tmp'), path.join(dir, 'a.test.zone'));
    await settle(seen, 1, 'a reload request');
    expect(named(seen[0])).toEqual(['a.test.zone']);
  });

  it('a new and a removed zone file are both named', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'a.test.zone'), 'x\n');
    const seen = watch(dir);
    fs.rmSync(path.join(dir, 'a.test.zone'));
    fs.writeFileSync(path.join(dir, 'n.test.zone'), 'x\n');
    await waitUntil(async () => seen.flatMap((c) => (c === 'all' ? ['all'] : [...c])).length >= 2, { what: 'both names', attempts: 200, intervalMs: 25 });
    expect(seen.flatMap((c) => (c === 'all' ? ['all'] : [...c])).sort()).toEqual(['a.test.zone', 'n.test.zone']);
  });

  it("a Kubernetes ConfigMap's ..data symlink swap asks to look at everything: the zone files' own names never change", async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, '..v1'));
    fs.writeFileSync(path.join(dir, '..v1', 'a.test.zone'), 'one\n');
    fs.symlinkSync('..v1', path.join(dir, '..data'));
    fs.symlinkSync('..data/a.test.zone', path.join(dir, 'a.test.zone'));
    const seen = watch(dir);
    fs.mkdirSync(path.join(dir, '..v2'));
    fs.writeFileSync(path.join(dir, '..v2', 'a.test.zone'), 'two, longer\n');
    fs.symlinkSync('..v2', path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await settle(seen, 1, 'a reload request');
    expect(seen[0]).toBe('all');
  });

  it('a file that is no zone file but still there (notes, a swap file) asks to look at everything', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'a.test.zone'), 'x\n');
    const seen = watch(dir);
    fs.writeFileSync(path.join(dir, 'NOTES.txt'), 'hello\n');
    await settle(seen, 1, 'a reload request');
    expect(seen[0]).toBe('all');
  });

  it('the poll finds a change of a master file outside the directory and asks to look at everything', async () => {
    const dir = tempDir();
    const outside = tempDir();
    const master = path.join(outside, 'shared.zone');
    fs.writeFileSync(master, 'one\n');
    fs.writeFileSync(path.join(dir, 'n.test.yaml'), 'masterFile: ../shared.zone\n');
    const seen = watch(dir, [master], 100);
    fs.writeFileSync(master, 'two, longer\n');
    await settle(seen, 1, 'a reload request from the poll');
    expect(seen[0]).toBe('all');
  });
});

describe('DirStamps (the poll)', () => {
  it('names every added, removed and changed entry once, and nothing when nothing moved', async () => {
    const dir = tempDir();
    for (const n of ['a.zone', 'b.zone', 'c.zone']) fs.writeFileSync(path.join(dir, n), 'x\n');
    const stamps = new DirStamps(dir);
    stamps.takeAll([]);
    expect([...(await stamps.compareAll([]))]).toEqual([]);
    fs.rmSync(path.join(dir, 'a.zone'));
    fs.appendFileSync(path.join(dir, 'b.zone'), 'more\n');
    fs.writeFileSync(path.join(dir, 'd.zone'), 'x\n');
    expect([...(await stamps.compareAll([]))].sort()).toEqual(['a.zone', 'b.zone', 'd.zone']);
    expect([...(await stamps.compareAll([]))]).toEqual([]);
    // compareSome updates what it looked at: the poll after it does not name the same change again.
    fs.appendFileSync(path.join(dir, 'c.zone'), 'more\n');
    expect([...stamps.compareSome(['c.zone', 'b.zone'])]).toEqual(['c.zone']);
    expect([...(await stamps.compareAll([]))]).toEqual([]);
  });

  it('an unreadable directory is one change, reported once, and its return is another', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'a.zone'), 'x\n');
    const stamps = new DirStamps(dir);
    stamps.takeAll([]);
    const moved = `${dir}.moved`;
    fs.renameSync(dir, moved);
    dirs.push(moved);
    const gone = await stamps.compareAll([]);
    expect(gone.size).toBe(1);
    expect([...(await stamps.compareAll([]))]).toEqual([]);
    fs.renameSync(moved, dir);
    expect((await stamps.compareAll([])).size).toBeGreaterThan(0);
  });
});
