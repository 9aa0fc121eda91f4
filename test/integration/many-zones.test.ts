/**
 * Many zones, as a spawned rrdns runs them: editing one of 2,000 zone files
 * re-parses that file alone (the reload's log line counts the files parsed),
 * its answers change and the others' do not; the start-up and reload lines
 * summarise the zones instead of listing them; and the process's memory
 * levels off across reloads instead of growing with each one (its live heap
 * after a full collection, read through its inspector: RSS also holds what V8
 * has not collected yet, and when it collects is its own choice), as does what
 * one small zone costs (the live heap with 2,000 zones against one), and what
 * a query to every zone adds off the V8 heap (its ArrayBuffers).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../support/dig.ts';
import { startRrdns, tempDir, type RrdnsProcess } from '../support/spawn.ts';
import { inspectorUrl, liveHeapBytes, liveMemory } from '../support/inspector.ts';
import { addresses, udpQuery } from '../support/dnsclient.ts';

const ZONES = 2_000;
const RELOAD_WAIT_MS = 30_000;
/**
 * Live heap a zone of ten records may cost, in kB: measured ~1.5 with lazy zones (a small master file
 * kept as its text, src/zone/lazy-zone.ts) compared by that text, without the state file's kept lines
 * and without property arrays, and a third more for noise; it was ~1.9 before those, ~4.4 with every
 * zone built, ~6.6 before that.
 */
const ZONE_HEAP_KB = 2;
/**
 * ArrayBuffers a zone may cost before any query, in octets: none is made per zone now. The state
 * directory kept the octets of its last write's slices (~220 a zone) until 2026-12-07.
 */
const ZONE_BUFFER_BYTES = 64;
/**
 * Live heap a zone may cost more after a restart that reads the state file than at the first start,
 * in octets: measured ~48 (and below zero in runs whose first start still held its first write's
 * garbage, ~400 kB more); ~200 before 2026-12-07, when every entry kept its own digest and time
 * strings and zod's objects with a property array each.
 */
const RESTART_EXTRA_BYTES = 96;

const zoneText = (z: number, serial: number, www: string) =>
  `$ORIGIN z${z}.test.\n$TTL 300\n@ SOA ns1 hostmaster ${serial} 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A ${www}\nmail A 10.0.${z >> 8}.${z & 255}\napi A 10.1.${z >> 8}.${z & 255}\na A 10.2.0.1\nb A 10.2.0.2\nc A 10.2.0.3\nd A 10.2.0.4\n`;

const reloadLines = (p: RrdnsProcess) => p.logs.filter((l) => l.msg === 'zones reloaded' || String(l.msg).startsWith('zone reload'));

/** Writes z`z` anew, sends SIGHUP and waits (bounded) for that reload's log line. */
async function editAndReload(p: RrdnsProcess, dir: string, z: number, serial: number, www: string): Promise<Record<string, unknown>> {
  const before = reloadLines(p).length;
  fs.writeFileSync(path.join(dir, `z${z}.test.zone`), zoneText(z, serial, www));
  process.kill(p.pid, 'SIGHUP');
  const until = Date.now() + RELOAD_WAIT_MS;
  while (reloadLines(p).length <= before) {
    if (Date.now() > until || !p.running()) throw new Error(`no reload line after SIGHUP (serial ${serial}); stderr: ${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return reloadLines(p).at(-1)!;
}

/**
 * Off-heap octets a zone may gain from being queried (ArrayBuffers, after a query to every zone):
 * measured ~0.1 kB; the query counters' dense row of 980 cells made it 7.8 kB, which the live-heap
 * bound above never saw.
 */
const QUERIED_ZONE_BUFFER_BYTES = 1024;

/** The environment a spawned rrdns gets so that it listens for the inspector (loopback, an ephemeral port). */
const inspectedEnv = () => ({ ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim() });

/** The inspector address `p` printed (started with inspectedEnv()). */
function inspectorOf(p: RrdnsProcess): string {
  const url = inspectorUrl(p.stderr());
  if (url === undefined) throw new Error(`rrdns printed no inspector address; stderr: ${p.stderr()}`);
  return url;
}

/** The live heap of `p` after a full collection, in kB. */
async function liveHeapKb(p: RrdnsProcess): Promise<number> {
  return (await liveHeapBytes(inspectorOf(p))) / 1024;
}

describe(`${ZONES} zones`, () => {
  let dir: string;
  let rrdns: RrdnsProcess;

  beforeAll(async () => {
    dir = tempDir('many-zones');
    for (let z = 0; z < ZONES; z++) fs.writeFileSync(path.join(dir, `z${z}.test.zone`), zoneText(z, 1, '10.9.0.1'));
    // The watcher is off so that every reload is one SIGHUP and its line is the one we wait for.
    // The inspector (loopback, an ephemeral port) is how the memory test reads the live heap.
    rrdns = await startRrdns({ zonesDir: dir, args: ['--admin', 'off', '--no-watch'], env: inspectedEnv(), startTimeoutMs: 60_000 });
  }, 90_000);
  afterAll(() => rrdns?.close());

  it('the start-up line counts the zones and names the first few, not all of them', () => {
    const line = rrdns.logs.find((l) => l.msg === 'rrdns listening')!;
    expect(line.zonesCount).toBe(ZONES);
    expect(line.zones).toHaveLength(5);
    expect(JSON.stringify(line).length).toBeLessThan(2000);
  });

  it(`a small zone costs at most ${ZONE_HEAP_KB} kB of live heap and ${ZONE_BUFFER_BYTES} octets of ArrayBuffers (against the same server with one zone)`, async () => {
    // No query has read the 2,000 zones: each is its text, its few walked fields and the reader's,
    // watcher's and state directory's bookkeeping (~1.5 kB). Built, a zone is ~3 kB more.
    const oneDir = tempDir('many-zones-one');
    fs.writeFileSync(path.join(oneDir, 'z0.test.zone'), zoneText(0, 1, '10.9.0.1'));
    const one = await startRrdns({ zonesDir: oneDir, args: ['--admin', 'off', '--no-watch'], env: inspectedEnv(), startTimeoutMs: 60_000 });
    try {
      expect((await dig(one.port, ['www.z0.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.9.0.1']);
      const [many, single] = [await liveMemory(inspectorOf(rrdns)), await liveMemory(inspectorOf(one))];
      const perZone = (many.heap - single.heap) / 1024 / (ZONES - 1);
      const buffersPerZone = (many.arrayBuffers - single.arrayBuffers) / (ZONES - 1);
      console.log(`[many-zones] live heap after a full GC: ${Math.round(many.heap / 1024)} kB with ${ZONES} zones, ${Math.round(single.heap / 1024)} kB with one: ${perZone.toFixed(2)} kB a zone; ArrayBuffers ${Math.round(many.arrayBuffers / 1024)} against ${Math.round(single.arrayBuffers / 1024)} kB: ${buffersPerZone.toFixed(0)} octets a zone`);
      expect(perZone).toBeGreaterThan(0);
      expect(perZone).toBeLessThan(ZONE_HEAP_KB);
      expect(buffersPerZone).toBeLessThan(ZONE_BUFFER_BYTES);
    } finally {
      await one.close();
      fs.rmSync(oneDir, { recursive: true, force: true });
    }
  }, 90_000);

  it('editing one zone re-parses only its file; its answer changes, another zone answers as before', async () => {
    expect((await dig(rrdns.port, ['www.z7.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.9.0.1']);
    const line = await editAndReload(rrdns, dir, 7, 2, '10.7.7.7');
    expect(line.msg).toBe('zones reloaded');
    expect({ files: line.files, parsed: line.parsed, unchanged: line.unchanged, zonesCount: line.zonesCount }).toEqual({ files: ZONES, parsed: 1, unchanged: ZONES - 1, zonesCount: ZONES });
    expect((line.zones as string[]).length).toBeLessThanOrEqual(5);
    const www = await dig(rrdns.port, ['www.z7.test', 'A']);
    expect(www.answer.map((r) => r.data)).toEqual(['10.7.7.7']);
    const soa = await dig(rrdns.port, ['z7.test', 'SOA']);
    expect(soa.answer[0]!.data.split(' ')[2]).toBe('2');
    expect((await dig(rrdns.port, ['www.z8.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.9.0.1']);
    expect((await dig(rrdns.port, ['mail.z1999.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.0.7.207']);
  });

  it('an invalid edit keeps the previous version serving and says which file and line is wrong', async () => {
    const before = reloadLines(rrdns).length;
    fs.writeFileSync(path.join(dir, 'z9.test.zone'), zoneText(9, 3, '10.9.9.300'));
    process.kill(rrdns.pid, 'SIGHUP');
    const until = Date.now() + RELOAD_WAIT_MS;
    while (reloadLines(rrdns).length <= before && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    const line = reloadLines(rrdns).at(-1)!;
    expect(line.msg).toMatch(/found errors/);
    expect(line.parsed).toBe(1);
    expect(line.keptPrevious).toEqual(['z9.test.']);
    expect(String((line.issues as string[])[0])).toContain(`${path.join(dir, 'z9.test.zone')}:6`);
    expect((await dig(rrdns.port, ['www.z9.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.9.0.1']);
    // Fixed again: the next reload is clean.
    const fixed = await editAndReload(rrdns, dir, 9, 4, '10.9.9.9');
    expect(fixed.msg).toBe('zones reloaded');
    expect((await dig(rrdns.port, ['www.z9.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.9.9.9']);
  });

  it(`a query to every zone adds at most ${QUERIED_ZONE_BUFFER_BYTES} octets of ArrayBuffers a zone`, async () => {
    const url = inspectorOf(rrdns);
    const before = await liveMemory(url);
    for (let z = 0; z < ZONES; z++) {
      const { packet } = await udpQuery(rrdns.port, `mail.z${z}.test`);
      expect(addresses(packet)).toEqual([`10.0.${z >> 8}.${z & 255}`]);
    }
    const after = await liveMemory(url);
    const perZone = (after.arrayBuffers - before.arrayBuffers) / ZONES;
    console.log(`[many-zones] ArrayBuffers ${Math.round(before.arrayBuffers / 1024)} kB before a query to each of ${ZONES} zones, ${Math.round(after.arrayBuffers / 1024)} kB after: ${perZone.toFixed(0)} octets a zone; live heap ${Math.round(before.heap / 1024)} -> ${Math.round(after.heap / 1024)} kB`);
    expect(perZone).toBeLessThan(QUERIED_ZONE_BUFFER_BYTES);
  }, 120_000);

  it('memory levels off across reloads: the last 40 of 60 add less than a tenth of what the process holds', async () => {
    // The first reloads let the heap reach its working size; after that each reload must not keep anything.
    for (let i = 0; i < 20; i++) await editAndReload(rrdns, dir, 11, 10 + i, `10.11.0.${i + 1}`);
    const settled = await liveHeapKb(rrdns);
    for (let i = 20; i < 60; i++) await editAndReload(rrdns, dir, 11, 10 + i, `10.11.0.${i + 1}`);
    const after = await liveHeapKb(rrdns);
    console.log(`[many-zones] live heap after a full GC: ${Math.round(settled)} kB after 20 reloads, ${Math.round(after)} kB after 60`);
    expect((await dig(rrdns.port, ['www.z11.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.11.0.60']);
    expect(after - settled).toBeLessThan(settled / 10);
  }, 120_000);
});

describe(`${ZONES} zones, the watcher on`, () => {
  let dir: string;
  let rrdns: RrdnsProcess;
  const watcherLines = () => reloadLines(rrdns).filter((l) => l.trigger === 'file change');

  beforeAll(async () => {
    dir = tempDir('many-zones-watch');
    for (let z = 0; z < ZONES; z++) fs.writeFileSync(path.join(dir, `z${z}.test.zone`), zoneText(z, 1, '10.9.0.1'));
    // The poll is an hour away: the reloads below come from the file events alone.
    rrdns = await startRrdns({ zonesDir: dir, args: ['--admin', 'off', '--watch', '--watch-poll-ms', '3600000'], startTimeoutMs: 60_000 });
  }, 90_000);
  afterAll(() => rrdns?.close());

  async function nextWatcherLine(before: number): Promise<Record<string, unknown>> {
    const until = Date.now() + RELOAD_WAIT_MS;
    while (watcherLines().length <= before) {
      if (Date.now() > until || !rrdns.running()) throw new Error(`no reload line from the watcher; stderr: ${rrdns.stderr()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return watcherLines().at(-1)!;
  }

  it('an edit in place and an editor-style save (temporary file renamed over) each stat and parse one file of 2,000', async () => {
    let before = watcherLines().length;
    fs.writeFileSync(path.join(dir, 'z5.test.zone'), zoneText(5, 2, '10.5.5.5'));
    let line = await nextWatcherLine(before);
    expect({ looked: line.looked, parsed: line.parsed, unchanged: line.unchanged, files: line.files }).toEqual({ looked: 1, parsed: 1, unchanged: ZONES - 1, files: ZONES });
    expect((await dig(rrdns.port, ['www.z5.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.5.5.5']);

    before = watcherLines().length;
    const tmp = path.join(dir, '.z6.test.zone.swp-save');
    fs.writeFileSync(tmp, zoneText(6, 2, '10.6.6.6'));
    fs.renameSync(tmp, path.join(dir, 'z6.test.zone'));
    line = await nextWatcherLine(before);
    expect({ looked: line.looked, parsed: line.parsed }).toEqual({ looked: 1, parsed: 1 });
    expect((await dig(rrdns.port, ['www.z6.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.6.6.6']);
    // Another zone answers as before, and a SIGHUP still looks at every file.
    expect((await dig(rrdns.port, ['www.z7.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.9.0.1']);
    const all = reloadLines(rrdns).length;
    process.kill(rrdns.pid, 'SIGHUP');
    const until = Date.now() + RELOAD_WAIT_MS;
    while (reloadLines(rrdns).length <= all && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    const hup = reloadLines(rrdns).at(-1)!;
    expect({ trigger: hup.trigger, looked: hup.looked, parsed: hup.parsed }).toEqual({ trigger: 'SIGHUP', looked: ZONES, parsed: 0 });
  }, 120_000);
});

describe(`${ZONES} zones, restarted with their state directory`, () => {
  it('costs no more live heap than the first start: what the state file gives back is not a second copy of each zone digest and save time', async () => {
    const dir = tempDir('many-zones-restart');
    const stateDir = tempDir('many-zones-restart-state');
    for (let z = 0; z < ZONES; z++) fs.writeFileSync(path.join(dir, `z${z}.test.zone`), zoneText(z, 1, '10.9.0.1'));
    const start = () => startRrdns({ zonesDir: dir, args: ['--admin', 'off', '--no-watch', '--state-dir', stateDir], env: inspectedEnv(), startTimeoutMs: 60_000 });
    try {
      const first = await start();
      let fresh: number;
      try {
        fresh = await liveHeapKb(first);
      } finally {
        await first.close();
      }
      // The first start wrote every zone's serial, digest and time.
      expect(Object.keys(JSON.parse(fs.readFileSync(path.join(stateDir, 'state.json'), 'utf8')).serials)).toHaveLength(ZONES);
      const again = await start();
      try {
        expect((await dig(again.port, ['www.z5.test', 'A'])).answer.map((r) => r.data)).toEqual(['10.9.0.1']);
        const restarted = await liveHeapKb(again);
        const perZone = ((restarted - fresh) * 1024) / ZONES;
        console.log(`[many-zones] live heap ${Math.round(fresh)} kB at the first start, ${Math.round(restarted)} kB restarted: ${perZone.toFixed(0)} octets a zone more`);
        expect(perZone).toBeLessThan(RESTART_EXTRA_BYTES);
      } finally {
        await again.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  }, 120_000);
});
