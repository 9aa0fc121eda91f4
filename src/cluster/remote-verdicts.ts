/**
 * The other instances' verdicts, as the watch delivers them: check key →
 * instance → verdict. Bounded: past MAX_REMOTE_VERDICTS new entries are
 * refused (the caller logs it), so a foreign writer cannot grow memory.
 */
import type { VerdictRecord } from './keys.ts';

/** Verdicts held from other instances at most. */
export const MAX_REMOTE_VERDICTS = 500_000;

export class RemoteVerdicts {
  readonly #byCheck = new Map<string, Map<string, VerdictRecord>>();
  #count = 0;
  readonly #max: number;

  constructor(max = MAX_REMOTE_VERDICTS) {
    this.#max = max;
  }

  get count(): number {
    return this.#count;
  }

  of(check: string): ReadonlyMap<string, VerdictRecord> | undefined {
    return this.#byCheck.get(check);
  }

  /** Stores a verdict; `previous` is what it replaced; `full` when refused for the bound. */
  put(instance: string, check: string, rec: VerdictRecord): { previous: VerdictRecord | undefined; full: boolean } {
    let held = this.#byCheck.get(check);
    const previous = held?.get(instance);
    if (!previous) {
      if (this.#count >= this.#max) return { previous, full: true };
      this.#count++;
    }
    if (!held) this.#byCheck.set(check, (held = new Map()));
    held.set(instance, rec);
    return { previous, full: false };
  }

  delete(instance: string, check: string): boolean {
    const held = this.#byCheck.get(check);
    if (!held?.delete(instance)) return false;
    this.#count--;
    if (held.size === 0) this.#byCheck.delete(check);
    return true;
  }

  /** Every verdict of `instance` goes (it left the cluster). */
  dropInstance(instance: string): void {
    for (const [check, held] of this.#byCheck) {
      if (held.delete(instance)) {
        this.#count--;
        if (held.size === 0) this.#byCheck.delete(check);
      }
    }
  }

  clear(): void {
    this.#byCheck.clear();
    this.#count = 0;
  }

  /** How many verdicts each instance has here. */
  countsByInstance(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const held of this.#byCheck.values()) for (const i of held.keys()) counts.set(i, (counts.get(i) ?? 0) + 1);
    return counts;
  }
}
