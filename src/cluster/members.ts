/**
 * The live instances as etcd shows them (member keys under leases), and the
 * checkers of each check for them: rendezvous results are cached per
 * membership, since answers ask for them per member at every compile.
 */
import { parseMember, type MemberRecord } from './keys.ts';
import { chooseCheckers } from './rendezvous.ts';

export class Membership {
  readonly self: string;
  readonly #members = new Map<string, MemberRecord>();
  #live: string[] | undefined;
  readonly #checkers = new Map<string, string[]>();

  constructor(self: string) {
    this.self = self;
  }

  /** A member key was put; true when the instance is new. */
  put(instance: string, value: string): boolean {
    const joined = !this.#members.has(instance);
    this.#members.set(instance, parseMember(value, instance));
    if (joined) this.#changed();
    return joined;
  }

  /** A member key went (lease expired or revoked); true when it was known. */
  delete(instance: string): boolean {
    const left = this.#members.delete(instance);
    if (left) this.#changed();
    return left;
  }

  clear(): void {
    this.#members.clear();
    this.#changed();
  }

  has(instance: string): boolean {
    return this.#members.has(instance);
  }

  get(instance: string): MemberRecord | undefined {
    return this.#members.get(instance);
  }

  get size(): number {
    return this.#members.size;
  }

  /** Live instance IDs: etcd's members, and always this one. */
  liveIds(): readonly string[] {
    if (!this.#live) {
      const ids = [...this.#members.keys()];
      if (!this.#members.has(this.self)) ids.push(this.self);
      this.#live = ids;
    }
    return this.#live;
  }

  /** The live instances that run `key` (all of them, or the `k` with the highest rendezvous score). */
  checkers(key: string, k: number | undefined): readonly string[] {
    const cacheKey = `${k ?? '*'}|${key}`;
    let c = this.#checkers.get(cacheKey);
    if (!c) {
      c = chooseCheckers(key, this.liveIds(), k);
      this.#checkers.set(cacheKey, c);
    }
    return c;
  }

  #changed(): void {
    this.#live = undefined;
    this.#checkers.clear();
  }
}
