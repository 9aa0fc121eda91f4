/**
 * The set of zones being served. Lookups go by longest matching suffix
 * (RFC 1034 §4.3.2 step 2). The whole set is replaced in one assignment, so a
 * query sees either the old set or the new one, never a mix, and a reload that
 * fails to parse never reaches `replace`.
 */
export class ZoneStore<T> {
  /** Owned by the store: replace() takes the map it is given, patch() changes it in place. */
  private zones: ReadonlyMap<string, T> = new Map();
  /** Moves on every replace(): what was looked up before may be stale (the pipeline's answer table checks it). */
  version = 0;

  /** Atomically swaps in a complete new set, keyed by origin key (lower case). */
  replace(next: ReadonlyMap<string, T>): void {
    this.zones = next;
    this.version++;
  }

  /**
   * Replaces some entries in place, in one synchronous step (so, like
   * replace(), a query sees all of them old or all new). For a reload that
   * changed a few zones of thousands: a new map of every zone per reload went
   * straight to V8's large-object space and was what brought its full
   * collections. Keys must already be present (use replace() to add or remove).
   */
  patch(changed: ReadonlyMap<string, T>): void {
    const zones = this.zones as Map<string, T>;
    for (const key of changed.keys()) {
      if (!zones.has(key)) throw new Error(`ZoneStore.patch: ${key} is not served; use replace()`);
    }
    for (const [key, value] of changed) zones.set(key, value);
    this.version++;
  }

  get size(): number {
    return this.zones.size;
  }

  all(): IterableIterator<T> {
    return this.zones.values();
  }

  get(originKey: string): T | undefined {
    return this.zones.get(originKey);
  }

  /** The zone with the longest origin that `key` is at or below, if any. */
  find(key: string): T | undefined {
    const zones = this.zones;
    let k = key;
    for (;;) {
      const hit = zones.get(k);
      if (hit !== undefined) return hit;
      if (k === '') return undefined;
      const dot = k.indexOf('.');
      k = dot < 0 ? '' : k.slice(dot + 1);
    }
  }
}
