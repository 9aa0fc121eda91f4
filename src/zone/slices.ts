/**
 * Long work on the main thread (a reload over thousands of files and zones,
 * the watcher's poll, the state file's serials) done in slices of about a
 * millisecond, with a turn of the event loop (setImmediate) between slices,
 * so that answering queries is never held for longer than a slice.
 */

/** Lets the event loop answer what waits before the next step of a long job. */
export const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/** Measures a slice: turn() gives the event loop a turn once ~sliceMs of work has passed since the last one. */
export class Slicer {
  private start = performance.now();
  private readonly sliceMs: number;
  constructor(sliceMs = 1) {
    this.sliceMs = sliceMs;
  }

  /** Resolves at once until the slice is used up, then after a turn of the event loop. */
  async turn(): Promise<void> {
    if (performance.now() - this.start < this.sliceMs) return;
    await nextTurn();
    this.start = performance.now();
  }
}

/** Runs a generator's steps to its result, a slice at a time. */
export async function runInSlices<T>(steps: Generator<void, T, void>, sliceMs = 1): Promise<T> {
  const slice = new Slicer(sliceMs);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await slice.turn();
  }
}
