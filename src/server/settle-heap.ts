/**
 * One full garbage collection once the zones are loaded, before any socket
 * is bound. Reading 10,000 zone files leaves ~30 MB of garbage in V8's old
 * generation; left alone, V8 collects it a few seconds into serving, with
 * incremental marking steps and a final pause of ~20 ms on the answering
 * thread. Collected here, no query waits for that. What the rest of start-up
 * allocates (sockets, the watcher's first stamps) can still bring one more
 * collection soon after: measured, not prevented.
 *
 * `gc()` exists only with --expose-gc; without it, the flag is set for one
 * new context just long enough to take its gc function (the way Node's own
 * test tools do), then unset again.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Runs a full collection; false when the runtime offers none. */
export function settleHeap(): boolean {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as (() => void) | undefined;
    } catch {
      gc = undefined;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  if (typeof gc !== 'function') return false;
  gc();
  return true;
}
