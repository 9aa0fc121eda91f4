/**
 * Compiled answers, kept in one least-recently-used cache bounded in bytes
 * (lru-cache with each plan's size). Every zone of a thread shares it, so no
 * sequence of queries (random qtypes, names, letter case, wildcard
 * expansions) can grow memory past the bound, and an entry in use is never
 * locked out by junk: junk is what falls off the cold end.
 */
import { LRUCache } from 'lru-cache';
import type { AnswerPlan } from '../wire/answer.ts';

/** Default bound of one thread's answer cache. */
export const DEFAULT_ANSWER_CACHE_BYTES = 32 * 1024 * 1024;
/** Bytes an entry costs beyond its plan and key string (the cache's own bookkeeping). */
const KEY_OVERHEAD = 128;

export class AnswerCache {
  private readonly lru: LRUCache<string, AnswerPlan>;
  readonly maxBytes: number;

  constructor(maxBytes = DEFAULT_ANSWER_CACHE_BYTES) {
    this.maxBytes = maxBytes;
    // The key counts too (up to a 255-octet name, two bytes a char): many small answers under long
    // names must not hold several times the bound. A plan larger than the whole bound is not kept.
    this.lru = new LRUCache<string, AnswerPlan>({ maxSize: maxBytes, sizeCalculation: (plan, key) => Math.max(1, plan.size + 2 * key.length + KEY_OVERHEAD) });
  }

  get(key: string): AnswerPlan | undefined {
    return this.lru.get(key);
  }

  set(key: string, plan: AnswerPlan): void {
    this.lru.set(key, plan);
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
  }

  /** Entries and bytes held now. */
  get entries(): number {
    return this.lru.size;
  }
  get bytes(): number {
    return this.lru.calculatedSize;
  }
}
