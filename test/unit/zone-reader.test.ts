/**
 * ZoneDirReader: a re-read parses only the files whose content changed (stat
 * first, then the kept text of a lazy zone or the sha256 of any other), hands back the very same Zone objects for the others,
 * forgets removed files, follows renames and reports a broken file with its
 * name and line while the good files still load.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/errors.ts';
import { loadNativeParser, ZoneDirReader } from '../../src/zone/load.ts';
import { nameToText } from '../../src/zone/name.ts';
import type { Zone } from '../../src/zone/zone.ts';

// The readers here parse native zones synchronously (readSync, loadZoneDir): the parser is loaded on demand.
await loadNativeParser();

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-reader-'));
  dirs.push(d);
  return d;
}

const zoneText = (origin: string, www: string) => `$ORIGIN ${origin}.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A ${www}\n`;

function write(dir: string, file: string, text: string, mtime?: Date): void {
  fs.writeFileSync(path.join(dir, file), text);
  if (mtime) fs.utimesSync(path.join(dir, file), mtime, mtime);
}

const byOrigin = (zones: readonly Zone[]) => new Map(zones.map((z) => [nameToText(z.origin), z]));
const wwwOf = (z: Zone | undefined) => {
  const node = z?.nodes.get(`www.${z.originKey}`);
  return node ? JSON.stringify([...node.rrsets.values()][0]!.records) : undefined;
};

describe('ZoneDirReader', () => {
  it('re-parses only the changed file and returns the same Zone objects for the others', async () => {
    const dir = tempDir();
    for (let i = 0; i < 5; i++) write(dir, `z${i}.test.zone`, zoneText(`z${i}.test`, `10.0.0.${i}`));
    const reader = new ZoneDirReader(dir);
    const first = reader.readSync();
    expect(first.issues).toEqual([]);
    expect(first.counts).toEqual({ files: 5, parsed: 5, unchanged: 0, looked: 5 });

    const again = await reader.read();
    expect(again.counts).toEqual({ files: 5, parsed: 0, unchanged: 5, looked: 5 });
    const before = byOrigin(first.zones);
    for (const z of again.zones) expect(z).toBe(before.get(nameToText(z.origin)));

    write(dir, 'z2.test.zone', zoneText('z2.test', '10.9.9.9'));
    const edited = await reader.read();
    expect(edited.counts).toEqual({ files: 5, parsed: 1, unchanged: 4, looked: 5 });
    const after = byOrigin(edited.zones);
    expect(after.get('z2.test.')).not.toBe(before.get('z2.test.'));
    expect(wwwOf(after.get('z2.test.'))).toContain('10.9.9.9');
    for (const o of ['z0.test.', 'z1.test.', 'z3.test.', 'z4.test.']) expect(after.get(o)).toBe(before.get(o));
  });

  it('a file touched with the same content is read and digested but not parsed again', async () => {
    const dir = tempDir();
    write(dir, 'a.test.zone', zoneText('a.test', '10.0.0.1'));
    const reader = new ZoneDirReader(dir);
    const first = reader.readSync();
    write(dir, 'a.test.zone', zoneText('a.test', '10.0.0.1'), new Date(Date.now() + 60_000));
    const touched = await reader.read();
    expect(touched.counts).toEqual({ files: 1, parsed: 0, unchanged: 1, looked: 1 });
    expect(touched.zones[0]).toBe(first.zones[0]);
  });

  // A small master file is a LazyZone and is compared by its kept text; a bigger one (over 4 KB), or a
  // native YAML zone, by its sha256. Each kind: rewritten alike under a new mtime, and changed by one octet.
  const padded = (origin: string, www: string) => zoneText(origin, www) + Array.from({ length: 300 }, (_, i) => `h${i} A 192.0.2.${i % 250}\n`).join('');
  const yaml = (origin: string, www: string) => `origin: ${origin}\nsoa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  '@': { NS: [ns1] }\n  ns1: { A: 192.0.2.53 }\n  www: { A: ${www} }\n`;
  it.each([
    { name: 'small master file (kept as text)', file: 'a.test.zone', text: zoneText, lazy: true },
    { name: 'master file over 4 KB (digest)', file: 'a.test.zone', text: padded, lazy: false },
    { name: 'native YAML zone (digest)', file: 'a.test.yaml', text: yaml, lazy: false },
  ])('$name: the same content under a new mtime is not parsed again; one changed octet is', async ({ file, text, lazy }) => {
    const dir = tempDir();
    write(dir, file, text('a.test', '10.0.0.1'));
    const reader = new ZoneDirReader(dir);
    const first = reader.readSync();
    expect(first.issues).toEqual([]);
    expect('recipe' in first.zones[0]!).toBe(lazy);
    write(dir, file, text('a.test', '10.0.0.1'), new Date(Date.now() + 60_000));
    const touched = await reader.read();
    expect(touched.counts).toEqual({ files: 1, parsed: 0, unchanged: 1, looked: 1 });
    expect(touched.zones[0]).toBe(first.zones[0]);
    // Same length, one octet different, a later mtime: parsed, and the new address served.
    write(dir, file, text('a.test', '10.0.0.2'), new Date(Date.now() + 120_000));
    const changed = await reader.read();
    expect(changed.counts).toEqual({ files: 1, parsed: 1, unchanged: 0, looked: 1 });
    expect(wwwOf(changed.zones[0])).toContain('10.0.0.2');
    // And back to the first content: parsed again (the kept text or digest is the last read's, not the first's).
    write(dir, file, text('a.test', '10.0.0.1'), new Date(Date.now() + 180_000));
    const back = await reader.read();
    expect(back.counts.parsed).toBe(1);
    expect(wwwOf(back.zones[0])).toContain('10.0.0.1');
  });

  it('a deleted file removes its zone; a renamed file serves under its new origin', async () => {
    const dir = tempDir();
    // No $ORIGIN: the origin is the file name's, so a rename moves the zone.
    const relative = (www: string) => zoneText('x', www).split('\n').slice(1).join('\n');
    write(dir, 'a.test.zone', relative('10.0.0.1'));
    write(dir, 'b.test.zone', relative('10.0.0.2'));
    const reader = new ZoneDirReader(dir);
    expect(reader.readSync().issues).toEqual([]);
    fs.rmSync(path.join(dir, 'a.test.zone'));
    fs.renameSync(path.join(dir, 'b.test.zone'), path.join(dir, 'c.test.zone'));
    const r = await reader.read();
    expect(r.issues).toEqual([]);
    expect([...byOrigin(r.zones).keys()]).toEqual(['c.test.']);
    // Renamed: origin comes from the new file name, so the file is parsed under it.
    expect(r.counts).toEqual({ files: 1, parsed: 1, unchanged: 0, looked: 1 });
  });

  it('a broken file is reported with file and line, the other files still load, and fixing it parses it again', async () => {
    const dir = tempDir();
    write(dir, 'a.test.zone', zoneText('a.test', '10.0.0.1'));
    write(dir, 'b.test.zone', zoneText('b.test', '10.0.0.2'));
    const reader = new ZoneDirReader(dir);
    const first = reader.readSync();
    write(dir, 'b.test.zone', zoneText('b.test', '10.0.0.300'));
    const broken = await reader.read();
    expect(broken.zones.map((z) => nameToText(z.origin))).toEqual(['a.test.']);
    expect(broken.zones[0]).toBe(first.zones[0]);
    const text = broken.issues.map(formatIssue).join('\n');
    expect(text).toContain(path.join(dir, 'b.test.zone'));
    expect(text).toMatch(/:6\b/);
    // Unchanged and still broken: reported again on the next read, without parsing.
    const still = await reader.read();
    expect(still.issues.map(formatIssue)).toEqual(broken.issues.map(formatIssue));
    expect(still.counts.parsed).toBe(0);
    write(dir, 'b.test.zone', zoneText('b.test', '10.0.0.3'));
    const fixed = await reader.read();
    expect(fixed.issues).toEqual([]);
    expect(fixed.counts.parsed).toBe(1);
    expect(wwwOf(byOrigin(fixed.zones).get('b.test.'))).toContain('10.0.0.3');
  });

  it('a native zone is parsed again when the master file it pulls in changes', async () => {
    const dir = tempDir();
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    fs.writeFileSync(path.join(shared, 'n.txt'), '$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 10.1.1.1\n');
    write(dir, 'n.test.yaml', 'masterFile: shared/n.txt\n');
    const reader = new ZoneDirReader(dir);
    const first = reader.readSync();
    expect(first.issues).toEqual([]);
    expect((await reader.read()).counts.parsed).toBe(0);
    fs.writeFileSync(path.join(shared, 'n.txt'), '$TTL 300\n@ SOA ns1 hostmaster 2 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 10.2.2.2\n');
    const r = await reader.read();
    expect(r.counts.parsed).toBe(1);
    expect(wwwOf(r.zones[0])).toContain('10.2.2.2');
  });
});

describe('ZoneDirReader.read(changed): a watcher names what changed', () => {
  it('looks only at the named files; files not named keep their Zone until a full read', async () => {
    const dir = tempDir();
    for (let i = 0; i < 4; i++) write(dir, `z${i}.test.zone`, zoneText(`z${i}.test`, `10.0.0.${i}`));
    const reader = new ZoneDirReader(dir);
    const first = byOrigin(reader.readSync().zones);
    write(dir, 'z1.test.zone', zoneText('z1.test', '10.1.1.1'));
    write(dir, 'z2.test.zone', zoneText('z2.test', '10.2.2.2'));
    const named = await reader.read(new Set(['z1.test.zone']));
    expect(named.counts).toEqual({ files: 4, parsed: 1, unchanged: 3, looked: 1 });
    const after = byOrigin(named.zones);
    expect(wwwOf(after.get('z1.test.'))).toContain('10.1.1.1');
    // Not named: taken as unchanged (the watcher's poll would name it, or a SIGHUP reads everything).
    expect(after.get('z2.test.')).toBe(first.get('z2.test.'));
    const full = await reader.read();
    expect(full.counts).toEqual({ files: 4, parsed: 1, unchanged: 3, looked: 4 });
    expect(wwwOf(byOrigin(full.zones).get('z2.test.'))).toContain('10.2.2.2');
  });

  it('a file added or removed counts whatever was named: the listing is always read', async () => {
    const dir = tempDir();
    write(dir, 'a.test.zone', zoneText('a.test', '10.0.0.1'));
    write(dir, 'b.test.zone', zoneText('b.test', '10.0.0.2'));
    const reader = new ZoneDirReader(dir);
    reader.readSync();
    fs.rmSync(path.join(dir, 'a.test.zone'));
    write(dir, 'c.test.zone', zoneText('c.test', '10.0.0.3'));
    const r = await reader.read(new Set());
    expect([...byOrigin(r.zones).keys()].sort()).toEqual(['b.test.', 'c.test.']);
    expect(r.counts).toEqual({ files: 2, parsed: 1, unchanged: 1, looked: 1 });
  });

  it('a native zone whose master file (a .zone file in the same directory) was named is parsed again', async () => {
    const dir = tempDir();
    const body = (www: string) => `$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A ${www}\n`;
    write(dir, 'inner.zone', body('10.1.1.1'));
    write(dir, 'n.test.yaml', 'masterFile: inner.zone\n');
    const reader = new ZoneDirReader(dir);
    expect(reader.readSync().zones.map((z) => nameToText(z.origin))).toEqual(['n.test.']);
    write(dir, 'inner.zone', body('10.2.2.2'));
    const r = await reader.read(new Set(['inner.zone']));
    expect(r.issues).toEqual([]);
    expect(r.counts.parsed).toBe(1);
    expect(wwwOf(r.zones[0])).toContain('10.2.2.2');
  });

  it('an edit the watcher names is put in place in the last result: the listing is not read again and nothing else is made anew', async () => {
    const dir = tempDir();
    for (let i = 0; i < 4; i++) write(dir, `z${i}.test.zone`, zoneText(`z${i}.test`, `10.0.0.${i}`));
    const reader = new ZoneDirReader(dir);
    const first = reader.readSync();
    // The list is the reader's: the next read may update it in place, so the test keeps its own copy.
    const firstZones = [...first.zones];
    write(dir, 'z1.test.zone', zoneText('z1.test', '10.1.1.1'));
    // Not named and not in the listing the reader holds: the edit-in-place read does not list the directory.
    write(dir, 'late.test.zone', zoneText('late.test', '10.5.5.5'));
    const named = await reader.read(new Set(['z1.test.zone']));
    expect(named.issues).toEqual([]);
    expect(named.files).toBe(first.files);
    expect(named.counts).toEqual({ files: 4, parsed: 1, unchanged: 3, looked: 1 });
    expect(named.zones.map((z) => nameToText(z.origin))).toEqual(firstZones.map((z) => nameToText(z.origin)));
    named.zones.forEach((z, i) => (i === 1 ? expect(z).not.toBe(firstZones[i]) : expect(z).toBe(firstZones[i])));
    expect(wwwOf(named.zones[1])).toContain('10.1.1.1');
    // The full read sees the added file.
    const full = await reader.read();
    expect([...byOrigin(full.zones).keys()].sort()).toEqual(['late.test.', 'z0.test.', 'z1.test.', 'z2.test.', 'z3.test.']);
  });

  const twoNative = (origin: string, www: string) => JSON.stringify({ origin, soa: { mname: 'ns1', rname: 'hostmaster', serial: 1 }, records: { '@': { NS: 'ns1' }, ns1: { A: '192.0.2.53' }, www: { A: www } } });
  const fallbacks: { name: string; change: (dir: string) => void; named: string; expect: (r: Awaited<ReturnType<ZoneDirReader['read']>>) => void }[] = [
    {
      name: 'the named file now fails: its issue is reported and its previous zone is not in the result',
      change: (dir) => write(dir, 'b.test.zone', '$ORIGIN b.test.\n@ SOA ns1 hostmaster 1 3600 900 604800 60\nwww A not-an-address\n'),
      named: 'b.test.zone',
      expect: (r) => {
        expect(r.issues.map(formatIssue).join('\n')).toContain('b.test.zone');
        expect([...byOrigin(r.zones).keys()].sort()).toEqual(['a.test.', 'n.test.']);
      },
    },
    {
      name: 'the named file is gone: its zone goes',
      change: (dir) => fs.rmSync(path.join(dir, 'b.test.zone')),
      named: 'b.test.zone',
      expect: (r) => {
        expect(r.issues).toEqual([]);
        expect([...byOrigin(r.zones).keys()].sort()).toEqual(['a.test.', 'n.test.']);
      },
    },
    {
      name: 'the named file is new: its zone comes',
      change: (dir) => write(dir, 'c.test.zone', zoneText('c.test', '10.0.0.3')),
      named: 'c.test.zone',
      expect: (r) => expect([...byOrigin(r.zones).keys()].sort()).toEqual(['a.test.', 'b.test.', 'c.test.', 'n.test.']),
    },
    {
      name: 'the named native file now claims an origin another file serves: the duplicate is reported',
      change: (dir) => write(dir, 'n.test.json', twoNative('a.test.', '10.7.7.7')),
      named: 'n.test.json',
      expect: (r) => expect(r.issues.map(formatIssue).join('\n')).toMatch(/also defined by/),
    },
    {
      name: 'a name that is no zone file: the full read decides (nothing changes)',
      change: (dir) => write(dir, 'README', 'notes'),
      named: 'README',
      expect: (r) => {
        expect(r.issues).toEqual([]);
        expect(r.zones).toHaveLength(3);
        expect(r.counts).toEqual({ files: 3, parsed: 0, unchanged: 3, looked: 0 });
      },
    },
  ];
  for (const c of fallbacks) {
    it(`a named change the edit-in-place read does not take goes through the full read: ${c.name}`, async () => {
      const dir = tempDir();
      write(dir, 'a.test.zone', zoneText('a.test', '10.0.0.1'));
      write(dir, 'b.test.zone', zoneText('b.test', '10.0.0.2'));
      write(dir, 'n.test.json', twoNative('n.test.', '10.0.0.9'));
      const reader = new ZoneDirReader(dir);
      expect(reader.readSync().issues).toEqual([]);
      c.change(dir);
      c.expect(await reader.read(new Set([c.named])));
    });
  }
});
