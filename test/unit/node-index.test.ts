/**
 * The node index (Zone.nodes): a small zone keeps its names in a short array
 * instead of a Map (~370 octets a zone less), a large one keeps the Map. Both
 * must read like the Map did, in zone order, survive a trip to a worker thread
 * (structured clone drops the class; reviveNodes makes it whole again), and
 * withNode replaces one name in a copy.
 */
import { describe, expect, it } from 'vitest';
import { nodeIndex, reviveNodes, SMALL_MAX, SmallNodeIndex, withNode } from '../../src/zone/node-index.ts';
import type { Zone } from '../../src/zone/zone.ts';
import { parseName } from '../../src/zone/name.ts';
import { RRsets } from '../../src/zone/rrsets.ts';
import { zoneFromText } from '../support/zone-text.ts';

function zoneOf(names: number): Zone {
  let text = '$ORIGIN n.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\n';
  for (let i = 0; i < names; i++) text += `h${i}.Sub A 192.0.2.${i % 250}\n`;
  return zoneFromText(parseName('n.test.', ''), text);
}

/** Every way of reading the index, as plain data. */
function readAll(nodes: ReadonlyMap<string, { key: string; name: string }>) {
  const each: string[] = [];
  nodes.forEach((n, k) => each.push(`${k}=${n.name}`));
  return {
    size: nodes.size,
    keys: [...nodes.keys()],
    values: [...nodes.values()].map((n) => n.name),
    entries: [...nodes].map(([k, n]) => k === n.key),
    each,
    apex: nodes.get('n.test')?.key,
    sub: nodes.get('sub.n.test')?.key,
    missing: nodes.get('nope.n.test'),
    has: [nodes.has('ns1.n.test'), nodes.has('nope.n.test')],
  };
}

describe('node index', () => {
  // 3 names of their own (apex, ns1, sub as an empty non-terminal) plus the h<i> names.
  const small = SMALL_MAX - 3;
  const cases: { name: string; names: number; kind: 'small' | 'map' }[] = [
    { name: 'a zone of a few names keeps them in an array', names: 2, kind: 'small' },
    { name: 'a zone of SMALL_MAX names still does', names: small, kind: 'small' },
    { name: 'one name more takes a Map', names: small + 1, kind: 'map' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const z = zoneOf(c.names);
      expect(z.nodes.size).toBe(c.names + 3);
      expect(z.nodes instanceof SmallNodeIndex).toBe(c.kind === 'small');
      expect(z.nodes instanceof Map).toBe(c.kind === 'map');
      // Reads exactly as a Map of the same nodes in the same order does.
      expect(readAll(z.nodes)).toEqual(readAll(new Map(z.nodes)));
      expect(readAll(z.nodes).keys.slice(0, 3)).toEqual(['n.test', 'ns1.n.test', 'h0.sub.n.test']);
      expect(z.nodes.get('sub.n.test')!.emptyNonTerminal).toBe(true);
      expect(z.nodes.get('h0.sub.n.test')!.name).toBe('h0.Sub.n.test');
    });

    it(`${c.name}: a structured clone is made whole by reviveNodes`, () => {
      const z = zoneOf(c.names);
      const revived = reviveNodes(structuredClone(z.nodes) as unknown as Parameters<typeof reviveNodes>[0]);
      expect(revived instanceof SmallNodeIndex).toBe(c.kind === 'small');
      expect(readAll(revived)).toEqual(readAll(z.nodes));
    });
  }

  it('withNode replaces a name in a copy and keeps the kind', () => {
    for (const names of [2, small + 5]) {
      const z = zoneOf(names);
      const apex = z.nodes.get('n.test')!;
      const replaced = { ...apex, rrsets: RRsets.EMPTY };
      const next = withNode(z.nodes, replaced);
      expect(next.get('n.test')).toBe(replaced);
      expect(z.nodes.get('n.test')).toBe(apex);
      expect([...next.keys()]).toEqual([...z.nodes.keys()]);
      expect(next.constructor).toBe(z.nodes.constructor);
    }
  });

  it('nodeIndex keeps a large Map as it is', () => {
    const z = zoneOf(small + 5);
    const map = new Map(z.nodes);
    expect(nodeIndex(map)).toBe(map);
  });
});
