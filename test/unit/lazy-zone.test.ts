/**
 * Lazy zones (src/zone/lazy-zone.ts): a small master file is kept as its text
 * and built again when read. Table-driven over zones written as zone files:
 * a zone dropped to its text and built again answers every query with the
 * same bytes as the zone built once; serial and digest are known without a
 * build; idle zones drop their records after IDLE_SWEEPS sweeps and zones in
 * use keep them; what is kept is the text as read, not the file as it is now.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNativeParser, ZoneDirReader, MASTER_BUILDER, type MasterRecipe } from '../../src/zone/load.ts';
import { LAZY_MAX_TEXT, IDLE_SWEEPS, LazyZone, dropAllZones, lazyZoneStats, sweepIdleZones } from '../../src/zone/lazy-zone.ts';
import { contentDigest, serialOf, withSerial } from '../../src/zone/serial.ts';
import { printZone } from '../../src/zone/print.ts';
import { nameKey, wireLength } from '../../src/zone/name.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { RRType } from '../../src/zone/records.ts';
import type { Zone } from '../../src/zone/zone.ts';

// The readers here parse native zones synchronously (readSync, loadZoneDir): the parser is loaded on demand.
await loadNativeParser();

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** The zone the reader makes of `text` as `<origin>.zone` in a directory of its own. */
function read(origin: string, text: string): { zone: Zone; file: string; reader: ZoneDirReader } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-lazy-'));
  dirs.push(dir);
  const file = path.join(dir, `${origin}.zone`);
  fs.writeFileSync(file, text);
  const reader = new ZoneDirReader(dir);
  const result = reader.readSync();
  expect(result.issues).toEqual([]);
  expect(result.zones).toHaveLength(1);
  return { zone: result.zones[0]!, file, reader };
}

/** The answer bytes (and counts, rcode) a ServedZone compiles for each query. */
function answers(zone: Zone, queries: readonly [string, number][]): string[] {
  const served = new ServedZone(zone);
  return queries.map(([name, qtype]) => {
    const key = nameKey(name);
    const plan = served.plan(name, key, wireLength(name), qtype);
    return `${name}/${qtype}: rcode ${plan.rcode} aa ${plan.authoritative} ${plan.an}/${plan.ns}/${plan.ar} ${plan.body.toString('hex')}`;
  });
}

const { A, AAAA, NS, SOA, MX, TXT, CNAME, ANY } = { A: RRType.A, AAAA: RRType.AAAA, NS: RRType.NS, SOA: RRType.SOA, MX: RRType.MX, TXT: RRType.TXT, CNAME: RRType.CNAME, ANY: 255 };

const cases: { name: string; origin: string; text: string; queries: [string, number][] }[] = [
  {
    name: 'names, an NS set, a delegation with glue and one without',
    origin: 'plain.test',
    text: `$ORIGIN plain.test.
$TTL 300
@ SOA ns1 hostmaster 7 3600 900 604800 60
@ NS ns1
@ NS ns2.elsewhere.test.
@ MX 10 mail
ns1 A 192.0.2.53
www A 192.0.2.10
www A 192.0.2.11
www AAAA 2001:db8::10
mail A 192.0.2.25
sub NS ns.sub
ns.sub A 192.0.2.99
far NS ns.elsewhere.test.
`,
    queries: [['plain.test', SOA], ['plain.test', NS], ['plain.test', MX], ['plain.test', ANY], ['www.plain.test', A], ['WWW.Plain.Test', AAAA], ['www.plain.test', TXT], ['nope.plain.test', A], ['host.sub.plain.test', A], ['sub.plain.test', NS], ['x.far.plain.test', AAAA]],
  },
  {
    name: 'a wildcard, a CNAME chain, an empty non-terminal and TXT data',
    origin: 'wild.test',
    text: `$ORIGIN wild.test.
$TTL 120
@ SOA ns1 hostmaster 2026120301 3600 900 604800 30
@ NS ns1
ns1 A 192.0.2.1
*.apps A 192.0.2.80
alias CNAME target
target CNAME www
www A 192.0.2.8
a.b.c TXT "deep" "two strings"
txt TXT "v=spf1 -all"
`,
    queries: [['x.apps.wild.test', A], ['y.z.apps.wild.test', A], ['apps.wild.test', A], ['alias.wild.test', A], ['alias.wild.test', CNAME], ['b.c.wild.test', TXT], ['c.wild.test', A], ['a.b.c.wild.test', TXT], ['txt.wild.test', TXT], ['gone.wild.test', MX]],
  },
];

describe('LazyZone', () => {
  for (const t of cases) {
    it(`built again from its text, answers as built once: ${t.name}`, () => {
      const { zone } = read(t.origin, t.text);
      expect(zone).toBeInstanceOf(LazyZone);
      const lazy = zone as LazyZone;
      const once = MASTER_BUILDER.build(lazy.recipe as MasterRecipe);
      expect(once).not.toBeInstanceOf(LazyZone);
      const expected = answers(once, t.queries);
      dropAllZones();
      expect(lazy.isResident).toBe(false);
      const before = lazyZoneStats().builds;
      expect(answers(lazy, t.queries)).toEqual(expected);
      expect(lazyZoneStats().builds).toBe(before + 1);
      expect(lazy.isResident).toBe(true);
      expect(printZone(lazy)).toBe(printZone(once));
    });
  }

  it('knows its serial and content digest without building its records', () => {
    const { zone } = read(cases[1]!.origin, cases[1]!.text);
    const digest = contentDigest(MASTER_BUILDER.build((zone as LazyZone).recipe as MasterRecipe));
    dropAllZones();
    const before = lazyZoneStats().builds;
    expect(serialOf(zone)).toBe(2026120301);
    expect(contentDigest(zone)).toBe(digest);
    expect(lazyZoneStats().builds).toBe(before);
    expect((zone as LazyZone).isResident).toBe(false);
  });

  it('serves the serial it was given after being built again (withSerial)', () => {
    const { zone } = read(cases[0]!.origin, cases[0]!.text);
    const served = withSerial(zone, 4_000_000_000);
    expect(served).toBeInstanceOf(LazyZone);
    expect(served).not.toBe(zone);
    expect(withSerial(served, 4_000_000_000)).toBe(served);
    dropAllZones();
    expect(serialOf(served)).toBe(4_000_000_000);
    const soa = served.soa.records[0] as { serial: number };
    expect(soa.serial).toBe(4_000_000_000);
    // The apex answers with it; the version the file declared keeps its own.
    expect((zone.soa.records[0] as { serial: number }).serial).toBe(7);
    expect(contentDigest(served)).toBe(contentDigest(zone));
  });

  it('keeps the text it read: the file changed on disk is not what a rebuild serves', () => {
    const { zone, file } = read(cases[0]!.origin, cases[0]!.text);
    fs.writeFileSync(file, cases[0]!.text.replace('www A 192.0.2.10', 'www A 198.51.100.1'));
    dropAllZones();
    expect(answers(zone, [['www.plain.test', A]])[0]).toContain('c000020a'); // 192.0.2.10
    expect(answers(zone, [['www.plain.test', A]])[0]).not.toContain('c6336401');
  });

  it(`drops the records of a zone not read for ${IDLE_SWEEPS} sweeps, keeps those of a zone in use`, () => {
    const used = read(cases[0]!.origin, cases[0]!.text).zone as LazyZone;
    const idle = read(cases[1]!.origin, cases[1]!.text).zone as LazyZone;
    expect(used.isResident && idle.isResident).toBe(true);
    for (let i = 0; i < IDLE_SWEEPS + 2; i++) {
      void used.nodes.size;
      sweepIdleZones();
    }
    expect(used.isResident).toBe(true);
    expect(idle.isResident).toBe(false);
    // Asked for again: built again, once.
    const before = lazyZoneStats().builds;
    void idle.soa;
    void idle.nodes;
    expect(idle.isResident).toBe(true);
    expect(lazyZoneStats().builds).toBe(before + 1);
  });

  it(`makes lazy only master files of at most ${LAZY_MAX_TEXT} octets; native zones and bigger files are built once`, () => {
    const big = cases[0]!.text.replaceAll('plain.test', 'big.test') + Array.from({ length: 400 }, (_, i) => `h${i} A 192.0.2.${i % 250}\n`).join('');
    expect(big.length).toBeGreaterThan(LAZY_MAX_TEXT);
    expect(read('big.test', big).zone).not.toBeInstanceOf(LazyZone);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-lazy-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'native.test.yaml'), 'soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n');
    const native = new ZoneDirReader(dir).readSync();
    expect(native.issues).toEqual([]);
    expect(native.zones[0]).not.toBeInstanceOf(LazyZone);
  });

  it('goes to another thread as plain data (structured clone) and is built there the same', () => {
    const { zone } = read(cases[1]!.origin, cases[1]!.text);
    const lazy = zone as LazyZone;
    const sent = structuredClone({ ...lazy }) as Record<string, unknown>;
    // Own fields only: no records, no builder; the recipe is text and options.
    expect(sent.nodes).toBeUndefined();
    expect(sent.soa).toBeUndefined();
    expect(typeof (sent.recipe as MasterRecipe).text).toBe('string');
    const there = new LazyZone(sent as never, { serial: lazy.serial, declaredSerial: lazy.declaredSerial, digest: lazy.digest }, sent.recipe as MasterRecipe, MASTER_BUILDER);
    expect(there.isResident).toBe(false);
    expect(answers(there, cases[1]!.queries)).toEqual(answers(lazy, cases[1]!.queries));
  });

  it('a build that fails throws (a handler fault for that one query) and leaves the zone as text, to be tried again', () => {
    const { zone } = read(cases[0]!.origin, cases[0]!.text);
    const lazy = zone as LazyZone<MasterRecipe>;
    const broken = new LazyZone(lazy, { serial: lazy.serial, declaredSerial: lazy.declaredSerial, digest: lazy.digest }, { ...lazy.recipe, text: '$ORIGIN plain.test.\n@ A not-an-address\n' }, MASTER_BUILDER);
    expect(() => broken.nodes).toThrow(/no longer builds from its kept text/);
    expect(broken.isResident).toBe(false);
    expect(() => broken.soa).toThrow();
  });
});
