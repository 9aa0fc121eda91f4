/**
 * First-position counting: how many answers put each pool member first.
 * Clients mostly connect to the first address, so this is the load DNS
 * hands each member, the quantity weighted rotation and load feedback act on.
 *
 * One Uint32 per member in a SharedArrayBuffer, so every UDP worker thread
 * counts into the same cells (one Atomics.add per answer, no allocation).
 * Slots are handed out on the main thread only, one per `poolKey|address`,
 * and never reused while the process lives: an answer compiled before a
 * reload keeps counting for the member it names. Slot 0 is the overflow:
 * members that arrive once every slot is taken all share it, so the hot path
 * needs no branch, and they are reported as untracked.
 *
 * The cells wrap at 2^32; the main thread reads them often (every snapshot,
 * at least every sampling interval) and accumulates the wrap-safe deltas
 * into totals that do not.
 */

/** Slots by default: members (pool × address) counted over the process's life. */
export const FIRST_SERVED_CAPACITY = 65_536;

/** The slot of members that got none (the table was full); never read as a member's count. */
export const OVERFLOW_SLOT = 0;

export class FirstServedCounters {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  private readonly cells: Uint32Array;
  /** Main thread only: slot per `poolKey|address`. */
  private readonly slots = new Map<string, number>();
  /** Members refused a slot (distinct keys), for the metric. */
  private readonly refused = new Set<string>();
  /** Main thread only: accumulated totals and the raw cell value they were last brought up to. */
  private totals: Float64Array | undefined;
  private seen: Uint32Array | undefined;

  /** `capacity` slots (the overflow slot included), or the cells of `shared` (another thread's buffer). */
  constructor(capacity = FIRST_SERVED_CAPACITY, shared?: SharedArrayBuffer) {
    this.buffer = shared ?? new SharedArrayBuffer(4 * Math.max(2, capacity));
    this.cells = new Uint32Array(this.buffer);
    this.capacity = this.cells.length;
  }

  /** The cells, for the answer path (ServedZone.countFirst). */
  get counts(): Uint32Array {
    return this.cells;
  }

  /** The slot of `address` in pool `poolKey`, assigned on first use; OVERFLOW_SLOT once the table is full. Main thread only. */
  slot(poolKey: string, address: string): number {
    const key = `${poolKey}|${address}`;
    const known = this.slots.get(key);
    if (known !== undefined) return known;
    const next = this.slots.size + 1;
    if (next >= this.capacity) {
      if (this.refused.size < this.capacity) this.refused.add(key);
      return OVERFLOW_SLOT;
    }
    this.slots.set(key, next);
    return next;
  }

  /** Counts one answer that put the member of `slot` first (any thread). */
  count(slot: number): void {
    Atomics.add(this.cells, slot, 1);
  }

  /** Answers that put `address` of `poolKey` first since the process started; null when it has no slot. Main thread only. */
  total(poolKey: string, address: string): number | null {
    const slot = this.slots.get(`${poolKey}|${address}`);
    return slot === undefined ? null : this.totalOf(slot);
  }

  /** The accumulated count of `slot` (wrap-safe while it is read at least once per 2^32 answers). */
  totalOf(slot: number): number {
    this.totals ??= new Float64Array(this.capacity);
    this.seen ??= new Uint32Array(this.capacity);
    const raw = Atomics.load(this.cells, slot);
    this.totals[slot]! += (raw - this.seen[slot]!) >>> 0;
    this.seen[slot] = raw;
    return this.totals[slot]!;
  }

  /** Members that got no slot because the table was full: their first positions are not counted. */
  get untracked(): number {
    return this.refused.size;
  }

  /** Answers that put an untracked member first. */
  get uncounted(): number {
    return this.totalOf(OVERFLOW_SLOT);
  }
}
