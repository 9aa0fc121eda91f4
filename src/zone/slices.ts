/**
 * Runs a generator's steps in slices of about `sliceMs` of the main thread,
 * yielding to the event loop (setImmediate) between slices, so that long
 * work over thousands of files (a reload, the watcher's poll) never holds
 * the answering of queries for longer than a slice.
 */
export async function runInSlices<T>(steps: Generator<void, T, void>, sliceMs = 1): Promise<T> {
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}
