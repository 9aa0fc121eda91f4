/**
 * NameNode: buildZone's node of one name is its own table of RRsets (one
 * object per name, not a node and an RRsets), its empty-non-terminal flag is
 * derived, it crosses to a worker thread (structured clone) and back whole,
 * and with() replaces a set in a copy. The shape is what keeps a small zone's
 * heap small: these tests pin it.
 */
import { describe, expect, it } from 'vitest';
import { NameNode } from '../../src/zone/name-node.ts';
import { RRsets } from '../../src/zone/rrsets.ts';
import { RRType } from '../../src/zone/records.ts';
import type { RRset, Zone } from '../../src/zone/zone.ts';
import { parseName } from '../../src/zone/name.ts';
import { zoneFromText } from '../support/zone-text.ts';

const ZONE = `$ORIGIN Nn.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 900 604800 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
www AAAA 2001:db8::1
deep.below A 192.0.2.9
`;

/** The test zone, built as a zone file is (test/support/zone-text.ts). */
function zone(): Zone {
  return zoneFromText(parseName('Nn.test.', ''), ZONE);
}

describe('NameNode', () => {
  const cases: { name: string; key: string; types: number[]; ent: boolean; owner: string }[] = [
    { name: 'the apex', key: 'nn.test', types: [RRType.SOA, RRType.NS], ent: false, owner: 'Nn.test' },
    { name: 'a name of one type', key: 'ns1.nn.test', types: [RRType.A], ent: false, owner: 'ns1.Nn.test' },
    { name: 'a name of two types', key: 'www.nn.test', types: [RRType.A, RRType.AAAA], ent: false, owner: 'www.Nn.test' },
    { name: 'an empty non-terminal', key: 'below.nn.test', types: [], ent: true, owner: 'below.Nn.test' },
  ];
  for (const c of cases) {
    it(`${c.name}: is its own table of RRsets`, () => {
      const node = zone().nodes.get(c.key)!;
      expect(node).toBeInstanceOf(NameNode);
      expect(node.rrsets).toBe(node);
      expect([...node.rrsets.keys()]).toEqual(c.types);
      expect(node.emptyNonTerminal).toBe(c.ent);
      expect(node.name).toBe(c.owner);
      expect(node.key).toBe(c.key);
      // Own fields: the sets, the name and the key; nothing per name besides.
      expect(Object.keys(node).sort()).toEqual(['key', 'name', 'sets']);
    });

    it(`${c.name}: a structured clone is made whole by reviveNode`, () => {
      const node = zone().nodes.get(c.key)!;
      const revived = NameNode.reviveNode(structuredClone(node));
      expect(revived).toBeInstanceOf(NameNode);
      expect(revived.rrsets).toBe(revived);
      expect([revived.name, revived.key, revived.emptyNonTerminal]).toEqual([node.name, node.key, node.emptyNonTerminal]);
      expect([...revived.rrsets.values()]).toEqual([...node.rrsets.values()]);
    });
  }

  it('a name of one record shares its owner string with its RRset, whose records array holds just that record', () => {
    const node = zone().nodes.get('ns1.nn.test')!;
    const set = node.rrsets.get(RRType.A)! as RRset;
    expect(set.owner).toBe(node.name);
    expect(set.ownerKey).toBe(node.key);
    // A set that does not rotate carries only its five fields (rotation fields are left out, ~32 octets).
    expect(Object.keys(set).sort()).toEqual(['owner', 'ownerKey', 'records', 'ttl', 'type']);
    expect(set.records).toHaveLength(1);
  });

  it('with() replaces a set in a copy, and the copy is a NameNode too', () => {
    const node = zone().nodes.get('nn.test')! as NameNode;
    const soa = node.get(RRType.SOA)!;
    const next = node.with({ ...soa, ttl: 5 });
    expect(next).toBeInstanceOf(NameNode);
    expect(next.get(RRType.SOA)!.ttl).toBe(5);
    expect(node.get(RRType.SOA)).toBe(soa);
    expect([next.name, next.key]).toEqual([node.name, node.key]);
    expect(next.with(soa)).toBeInstanceOf(RRsets);
  });
});
