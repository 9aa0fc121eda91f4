/**
 * A zone's names by key (Zone.nodes). A zone of a few names keeps them in one
 * short array searched linearly; a larger one in a Map. A Map of 9 entries
 * costs ~520 octets (its hash table has room for 16, three slots each, plus
 * buckets), against ~150 for the array: with 10,000 small zones, ~3.7 MB of
 * heap. A linear scan over at most SMALL_MAX keys is no slower than hashing
 * the key, and the lookup runs only when an answer is compiled.
 *
 * Both kinds read like a ReadonlyMap in insertion order (zone order: AXFR and
 * the printer iterate it). Read-only after construction. Structured clone (UDP
 * worker threads) turns the small kind into a plain object: `reviveNodes`
 * makes it whole again (a Map crosses as a Map).
 */
import type { ZoneNode } from './zone.ts';

/** Zones with at most this many names are kept in an array. */
export const SMALL_MAX = 16;

type Entry = [string, ZoneNode];

export class SmallNodeIndex implements ReadonlyMap<string, ZoneNode> {
  /** In insertion order, at most one per key. */
  readonly list: readonly ZoneNode[];

  constructor(nodes: readonly ZoneNode[]) {
    // A copy of exactly its length: an array grown by push keeps spare room.
    this.list = Object.freeze(nodes.slice());
  }

  get size(): number {
    return this.list.length;
  }

  get(key: string): ZoneNode | undefined {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (list[i]!.key === key) return list[i];
    return undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  values(): MapIterator<ZoneNode> {
    return this.list.values() as unknown as MapIterator<ZoneNode>;
  }

  keys(): MapIterator<string> {
    return this.list.map((n) => n.key).values() as unknown as MapIterator<string>;
  }

  entries(): MapIterator<Entry> {
    return this.list.map((n): Entry => [n.key, n]).values() as unknown as MapIterator<Entry>;
  }

  [Symbol.iterator](): MapIterator<Entry> {
    return this.entries();
  }

  forEach(fn: (value: ZoneNode, key: string, map: ReadonlyMap<string, ZoneNode>) => void, thisArg?: unknown): void {
    for (const n of this.list) fn.call(thisArg, n, n.key, this);
  }
}

/** The index for `nodes` (keyed by their own key; the Map is taken, not copied, when it is kept). */
export function nodeIndex(nodes: Map<string, ZoneNode>): ReadonlyMap<string, ZoneNode> {
  return nodes.size <= SMALL_MAX ? new SmallNodeIndex([...nodes.values()]) : nodes;
}

/** A copy of `nodes` with `node` in place of the one of its key (or added); the original is left alone. */
export function withNode(nodes: ReadonlyMap<string, ZoneNode>, node: ZoneNode): ReadonlyMap<string, ZoneNode> {
  const next = new Map(nodes);
  next.set(node.key, node);
  return nodeIndex(next);
}

/** An index that crossed threads as plain data (a SmallNodeIndex becomes `{ list }`), made whole again. */
export function reviveNodes(plain: ReadonlyMap<string, ZoneNode> | { readonly list: readonly ZoneNode[] }): ReadonlyMap<string, ZoneNode> {
  return plain instanceof Map ? plain : new SmallNodeIndex((plain as { readonly list: readonly ZoneNode[] }).list);
}
