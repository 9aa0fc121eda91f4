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

  /**
   * True once the slice is used up; the caller then awaits pause(). A test,
   * not an awaited call per step: `await` on every one of 10,000 zones made a
   * promise each, megabytes of garbage per reload.
   */
  due(): boolean {
    return performance.now() - this.start >= this.sliceMs;
  }

  /** A turn of the event loop; the next slice starts after it. */
  async pause(): Promise<void> {
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
    if (slice.due()) await slice.pause();
  }
}
