/**
 * Round robin. Rotation never touches zone data: it picks which precompiled
 * order to serve (CoreDNS's loadbalance returns a new order the same way).
 * True cyclic rotation, not a shuffle: each query for an RRset starts one
 * position after the previous one, so over k·n queries each of n records
 * comes first exactly k times.
 */

/** The records served at rotation `start`: `size` of them (default all), cyclically from `start`. */
export function rotatedWindow<T>(records: readonly T[], start: number, size = records.length): T[] {
  const n = records.length;
  const out: T[] = [];
  for (let i = 0; i < size; i++) out.push(records[(start + i) % n]!);
  return out;
}

/**
 * One counter per rotating RRset. A flat Uint32Array so that a multi-process
 * server can later back it with a SharedArrayBuffer and use Atomics.add.
 */
export class RotationCounters {
  private readonly slots: Uint32Array;
  constructor(count: number) {
    this.slots = new Uint32Array(Math.max(count, 1));
  }
  /** Returns this query's rotation (0..n-1) for `slot` and advances it. */
  next(slot: number, n: number): number {
    const k = this.slots[slot]!;
    this.slots[slot] = k + 1;
    return k % n;
  }
}
