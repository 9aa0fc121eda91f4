/**
 * The RRsets of one name, by type. A name holds one to a few RRsets, so a
 * linear scan over a short array finds a type as fast as a hash lookup, and
 * costs a fraction of a Map: with 10,000 zones of ten names each, one Map per
 * name was ~180 octets (the Map and its hash table) against ~70 here, about
 * 10 MB of heap, and 90,000 fewer objects for every full GC to walk.
 *
 * Read-only after construction. Structured clone (UDP worker threads) drops
 * the prototype: the receiving side rebuilds it with `RRsets.revive`.
 */
import type { RRset } from './zone.ts';

/** The list of every table without RRsets (empty non-terminals). */
const NONE: readonly RRset[] = Object.freeze([]);

export class RRsets implements Iterable<[number, RRset]> {
  /** Every name without records (empty non-terminals) shares this one. */
  static readonly EMPTY = new RRsets([]);

  /**
   * The one RRset of a name that holds one (most do: `www A`), else a frozen
   * array of them. A frozen array of one was ~56 octets per name (the array
   * and its backing store): with 10,000 small zones, ~4.5 MB of heap.
   */
  private readonly sets: RRset | readonly RRset[];

  /** `sets` must hold at most one RRset per type. */
  constructor(sets: readonly RRset[]) {
    // A copy of exactly its length: an array grown by push keeps room for 17 (~150 octets) however few it holds.
    this.sets = sets.length === 1 ? sets[0]! : sets.length === 0 ? NONE : Object.freeze(sets.slice());
  }

  /** A table that crossed threads as plain data (`{ sets }`), made whole again. */
  static revive(plain: { readonly sets: RRset | readonly RRset[] }): RRsets {
    const sets = plain.sets;
    if (!Array.isArray(sets)) return new RRsets([sets as RRset]);
    return sets.length === 0 ? RRsets.EMPTY : new RRsets(sets as readonly RRset[]);
  }

  /** The RRsets in zone order (a new frozen array for a name of one type; for iteration, not the hot path). */
  get list(): readonly RRset[] {
    const sets = this.sets;
    return Array.isArray(sets) ? (sets as readonly RRset[]) : Object.freeze([sets as RRset]);
  }

  get size(): number {
    const sets = this.sets;
    return Array.isArray(sets) ? sets.length : 1;
  }

  get(type: number): RRset | undefined {
    const sets = this.sets;
    if (!Array.isArray(sets)) return (sets as RRset).type === type ? (sets as RRset) : undefined;
    const list = sets as readonly RRset[];
    for (let i = 0; i < list.length; i++) if (list[i]!.type === type) return list[i];
    return undefined;
  }

  has(type: number): boolean {
    return this.get(type) !== undefined;
  }

  values(): IterableIterator<RRset> {
    return this.list.values();
  }

  keys(): IterableIterator<number> {
    return this.list.map((s) => s.type).values();
  }

  *[Symbol.iterator](): IterableIterator<[number, RRset]> {
    for (const s of this.list) yield [s.type, s];
  }

  /** A copy with `set` in place of the RRset of its type (or added). */
  with(set: RRset): RRsets {
    const list = this.list.filter((s) => s.type !== set.type);
    list.push(set);
    return new RRsets(list);
  }
}
