/**
 * RRsets: the per-name table of RRsets by type that replaced a Map per name.
 * It must answer like the Map did (get, has, size, values, keys, entries),
 * stay frozen, replace by type, and survive a trip to a worker thread
 * (structured clone drops its class; revive makes it whole again).
 */
import { describe, expect, it } from 'vitest';
import { RRsets } from '../../src/zone/rrsets.ts';
import { RRType } from '../../src/zone/records.ts';
import type { RRset } from '../../src/zone/zone.ts';
import { parseName } from '../../src/zone/name.ts';
import { zoneFromText } from '../support/zone-text.ts';

const ZONE = `$ORIGIN t.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 900 604800 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
www A 192.0.2.2
www AAAA 2001:db8::1
www TXT "hello"
deep.below A 192.0.2.9
`;

/** The test zone, built as a zone file is (test/support/zone-text.ts). */
function zone() {
  return zoneFromText(parseName('t.test.', ''), ZONE);
}

/** What a structured clone of an RRsets is: its fields, without the class. */
type Plain = { sets: RRset | RRset[] };

describe('RRsets', () => {
  const www = () => zone().nodes.get('www.t.test')!.rrsets;
  const cases: { name: string; run: (t: RRsets) => unknown; want: unknown }[] = [
    { name: 'size counts the types', run: (t) => t.size, want: 3 },
    { name: 'get finds a type', run: (t) => t.get(RRType.A)!.records.length, want: 2 },
    { name: 'get of a missing type is undefined', run: (t) => t.get(RRType.MX), want: undefined },
    { name: 'has', run: (t) => [t.has(RRType.AAAA), t.has(RRType.CNAME)], want: [true, false] },
    { name: 'keys in zone order', run: (t) => [...t.keys()], want: [RRType.A, RRType.AAAA, RRType.TXT] },
    { name: 'entries like a Map', run: (t) => [...t].map(([type, s]) => type === s.type), want: [true, true, true] },
    { name: 'values are the sets', run: (t) => [...t.values()].map((s) => s.ownerKey), want: ['www.t.test', 'www.t.test', 'www.t.test'] },
    { name: 'the list is frozen', run: (t) => Object.isFrozen(t.list), want: true },
  ];
  for (const c of cases) it(c.name, () => expect(c.run(www())).toEqual(c.want));

  it('empty non-terminals share the one empty list', () => {
    const z = zone();
    const ent = z.nodes.get('below.t.test')!;
    expect(ent.emptyNonTerminal).toBe(true);
    expect(ent.rrsets.size).toBe(0);
    expect((ent.rrsets as unknown as Plain).sets).toBe((RRsets.EMPTY as unknown as Plain).sets);
    expect(RRsets.EMPTY.size).toBe(0);
    expect(RRsets.EMPTY.get(RRType.A)).toBeUndefined();
  });

  it('with() replaces the set of its type in a copy and leaves the original alone', () => {
    const t = www();
    const a = t.get(RRType.A)!;
    const replaced: RRset = { ...a, ttl: 5 };
    const next = t.with(replaced);
    expect(next.get(RRType.A)!.ttl).toBe(5);
    expect(next.size).toBe(3);
    expect(t.get(RRType.A)).toBe(a);
    const added = t.with({ ...a, type: RRType.MX });
    expect(added.size).toBe(4);
  });

  it('a structured clone (as sent to a UDP worker) is made whole by revive', () => {
    const t = www();
    const cloned = structuredClone(t) as unknown as Plain;
    expect(cloned).not.toBeInstanceOf(RRsets);
    const revived = RRsets.revive(cloned);
    expect(revived).toBeInstanceOf(RRsets);
    expect(revived.get(RRType.AAAA)!.records).toEqual(t.get(RRType.AAAA)!.records);
    expect(RRsets.revive(structuredClone(RRsets.EMPTY) as unknown as Plain)).toBe(RRsets.EMPTY);
    const one = zone().nodes.get('ns1.t.test')!.rrsets;
    const revivedOne = RRsets.revive(structuredClone(one) as unknown as Plain);
    expect(revivedOne).toBeInstanceOf(RRsets);
    expect([...revivedOne.keys()]).toEqual([RRType.A]);
    expect(revivedOne.get(RRType.A)!.records).toEqual(one.get(RRType.A)!.records);
  });

  // Most names hold one RRset: theirs is kept without an array (~56 octets a name, ~4.5 MB of heap with 10,000 small zones).
  const ns1 = () => zone().nodes.get('ns1.t.test')!.rrsets;
  const single: { name: string; run: (t: RRsets) => unknown; want: unknown }[] = [
    { name: 'holds the RRset itself, no array', run: (t) => Array.isArray((t as unknown as Plain).sets), want: false },
    { name: 'size is 1', run: (t) => t.size, want: 1 },
    { name: 'get finds its type', run: (t) => t.get(RRType.A)!.records.length, want: 1 },
    { name: 'get of another type is undefined', run: (t) => t.get(RRType.AAAA), want: undefined },
    { name: 'keys', run: (t) => [...t.keys()], want: [RRType.A] },
    { name: 'values', run: (t) => [...t.values()].map((s) => s.ownerKey), want: ['ns1.t.test'] },
    { name: 'list is a frozen array of it', run: (t) => [Object.isFrozen(t.list), t.list.length], want: [true, 1] },
    { name: 'with() another type makes two', run: (t) => [...t.with({ ...t.get(RRType.A)!, type: RRType.AAAA }).keys()], want: [RRType.A, RRType.AAAA] },
  ];
  for (const c of single) it(`a name of one type: ${c.name}`, () => expect(c.run(ns1())).toEqual(c.want));
});
