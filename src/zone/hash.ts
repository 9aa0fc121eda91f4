/**
 * The 32-bit mixing steps of MurmurHash3 (Austin Appleby, public domain), for
 * the shared-memory tables that hash a source prefix to a set (rate limiting,
 * src/rrl/table.ts; resolver demand, src/balancing/demand.ts). Seeded per
 * table, so no one can aim sources at one set. Allocation-free; in the zone
 * layer only so that every layer above may use it.
 */

/** Mixes the 32-bit word `k` into the running hash `h`. */
export function mix32(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The final avalanche: every input bit affects every output bit. Unsigned. */
export function finish32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** `size` rounded up to a power of two, at least `min` (one set of a set-associative table). */
export function powerOfTwoAtLeast(size: number, min: number): number {
  let n = min;
  while (n < size) n *= 2;
  return n;
}
