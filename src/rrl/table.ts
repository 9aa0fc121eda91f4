/**
 * The rate-limit buckets: a fixed-size, set-associative table in a
 * SharedArrayBuffer, so the main thread and every UDP worker thread account
 * one client prefix in the same bucket (the kernel spreads one client's
 * datagrams over the SO_REUSEPORT sockets). Its size is set at start and
 * never grows: a flood from random source addresses only replaces buckets.
 *
 * Each bucket is a token bucket with BIND's bounds (ARM, rate-limit: "the
 * account cannot become more positive than the per-second limit or more
 * negative than window times the per-second limit"; a response is limited
 * while the account would be negative). It is kept as the one number that
 * determines it, the time `fullAt` at which the account will be full again
 * (the "theoretical arrival time" of GCRA, ITU-T I.371):
 *
 *   balance(now) = rate - max(0, fullAt - now) * rate / 1000
 *
 * A response debits 1000/rate ms onto fullAt; it is sent when the balance
 * after the debit is >= 0, i.e. fullAt - now <= 1000 ms; fullAt - now never
 * exceeds (window + 1) * 1000 ms (the floor). Limited responses are debited
 * too, so a flood that continues stays limited, and a client must go quiet
 * for up to `window` seconds before answers resume (as in BIND).
 *
 * Replacement. A key hashes (with a secret seed, so clients cannot aim at
 * one set) to a set of WAYS buckets; a new key takes the bucket with the
 * smallest fullAt: empty or already full buckets first (they hold nothing a
 * fresh bucket would not), a bucket in debt last, so random one-off sources
 * cannot push a flooding prefix out of the table.
 *
 * Threads. Buckets are read and written without locks. Two threads updating
 * one bucket at the same instant may lose a debit, and a bucket replaced
 * while another thread reads it may lend one response its state; both only
 * make limiting slightly inexact, never corrupt the table (each field is an
 * aligned 8-octet cell).
 */
import { performance } from 'node:perf_hooks';
import { finish32, mix32, powerOfTwoAtLeast } from '../zone/hash.ts';

/** Buckets per set. */
export const WAYS = 8;
/** Cells per bucket: tag, fullAt, limited count. */
const FIELDS = 3;
/** Header cells: the two hash seeds, shared by every thread through the buffer. */
const HEADER = 2;

/**
 * Milliseconds on one clock for the whole process. performance.now() counts
 * from each thread's own start; process.hrtime is process-wide. The offset
 * between them is read once per thread, so a reading costs one performance.now().
 */
const HRTIME_OFFSET_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();
export function processMs(): number {
  return performance.now() + HRTIME_OFFSET_MS;
}

/** The table size actually used: `size` rounded up to a power of two, at least one set. */
export function tableSizeFor(size: number): number {
  return powerOfTwoAtLeast(size, WAYS);
}

export class BucketTable {
  /** Pass this to other threads (workerData) to share the buckets. */
  readonly buffer: SharedArrayBuffer;
  /** Buckets in the table; fixed. */
  readonly capacity: number;
  private readonly cells: Float64Array;
  private readonly setMask: number;
  private readonly seedSet: number;
  private readonly seedTag: number;

  /** A new table of `size` buckets (rounded up to a power of two), or a view of one another thread made. */
  constructor(size: number | SharedArrayBuffer) {
    if (typeof size === 'number') {
      const capacity = tableSizeFor(size);
      this.buffer = new SharedArrayBuffer((HEADER + capacity * FIELDS) * 8);
      this.cells = new Float64Array(this.buffer);
      const seeds = crypto.getRandomValues(new Uint32Array(2));
      this.cells[0] = seeds[0]!;
      this.cells[1] = seeds[1]!;
    } else {
      this.buffer = size;
      this.cells = new Float64Array(this.buffer);
    }
    this.capacity = (this.cells.length - HEADER) / FIELDS;
    this.setMask = this.capacity / WAYS - 1;
    this.seedSet = this.cells[0]! | 0;
    this.seedTag = this.cells[1]! | 0;
  }

  /** Octets of shared memory the table holds. */
  get bytes(): number {
    return this.buffer.byteLength;
  }

  /** Buckets in use (for tests and status; walks the table). */
  occupied(): number {
    let n = 0;
    for (let at = HEADER; at < this.cells.length; at += FIELDS) if (this.cells[at] !== 0) n++;
    return n;
  }

  /**
   * Debits one response from the bucket of key (k0..k5) at `now` (processMs)
   * for a class of `rate` responses per second and a `window` of seconds.
   * Returns 0 when the response may be sent; otherwise how many responses of
   * this bucket have been limited so far (1, 2, ...), for slip.
   */
  debit(k0: number, k1: number, k2: number, k3: number, k4: number, k5: number, rate: number, window: number, now: number): number {
    this.now = now;
    return this.debitNow(k0, k1, k2, k3, k4, k5, rate, window);
  }

  /**
   * The time debitNow() debits at (processMs). A field, not an argument: a
   * double passed to a call V8 does not inline is boxed, an object per
   * response; a double field is updated in place.
   */
  now = 0;

  /** debit() at `this.now`. */
  debitNow(k0: number, k1: number, k2: number, k3: number, k4: number, k5: number, rate: number, window: number): number {
    const now = this.now;
    const cells = this.cells;
    let h = mix32(mix32(mix32(mix32(mix32(mix32(this.seedSet, k0), k1), k2), k3), k4), k5);
    const set = finish32(h) & this.setMask;
    h = mix32(mix32(mix32(mix32(mix32(mix32(this.seedTag, k0), k1), k2), k3), k4), k5);
    const tag = finish32(h) || 1;
    const base = HEADER + set * WAYS * FIELDS;
    let at = -1;
    let victim = base;
    let victimFullAt = Infinity;
    for (let way = 0; way < WAYS; way++) {
      const cell = base + way * FIELDS;
      const t = cells[cell]!;
      if (t === tag) {
        at = cell;
        break;
      }
      const fullAt = t === 0 ? -Infinity : cells[cell + 1]!;
      if (fullAt < victimFullAt) {
        victim = cell;
        victimFullAt = fullAt;
      }
    }
    let fullAt: number;
    if (at < 0) {
      at = victim;
      cells[at] = tag;
      cells[at + 2] = 0;
      fullAt = now;
    } else {
      fullAt = cells[at + 1]!;
      if (fullAt < now) fullAt = now;
    }
    fullAt += 1000 / rate;
    const ahead = fullAt - now;
    if (ahead <= 1000) {
      cells[at + 1] = fullAt;
      return 0;
    }
    const floor = (window + 1) * 1000;
    cells[at + 1] = ahead > floor ? now + floor : fullAt;
    const limited = cells[at + 2]! + 1;
    cells[at + 2] = limited;
    return limited;
  }
}
