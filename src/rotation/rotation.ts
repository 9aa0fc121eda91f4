/**
 * Round robin. Rotation never touches zone data: a query's rotation offset
 * says which cyclic order to serve, and the response writer copies the
 * records' rdata in that order into its own message (wire/response.ts;
 * CoreDNS's loadbalance returns a new order the same way).
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
 * One counter per rotating RRset, in a SharedArrayBuffer: the UDP worker
 * threads of one server share a zone's counters, so rotation stays one cycle
 * across threads (Atomics.add: each query takes its own step).
 */
const NO_SLOTS = new SharedArrayBuffer(4);

export class RotationCounters {
  /** For zones without a rotating RRset: nothing to count, one instance for all of them. */
  static readonly NONE = new RotationCounters(0);
  readonly buffer: SharedArrayBuffer;
  private readonly slots: Uint32Array;
  /** `count` slots, or the counters of `shared` (another thread's RotationCounters.buffer). */
  constructor(count: number, shared?: SharedArrayBuffer) {
    // A zone without a rotating RRset never counts: all of them share one buffer (a
    // SharedArrayBuffer costs about 1 KB, which for 10,000 small zones was 10 MB).
    this.buffer = shared ?? (count === 0 ? NO_SLOTS : new SharedArrayBuffer(4 * count));
    this.slots = new Uint32Array(this.buffer);
  }
  /** Returns this query's rotation (0..n-1) for `slot` and advances it. */
  next(slot: number, n: number): number {
    return Atomics.add(this.slots, slot, 1) % n;
  }
}
