/**
 * One full garbage collection once the zones are loaded, before any socket
 * is bound. Reading 10,000 zone files leaves ~30 MB of garbage in V8's old
 * generation; left alone, V8 collects it a few seconds into serving, with
 * incremental marking steps and a final pause of ~20 ms on the answering
 * thread. Collected here, no query waits for that. What the rest of start-up
 * allocates (sockets, the watcher's first stamps) can still bring one more
 * collection soon after: measured, not prevented.
 *
 * The collection is V8's memory-reducing one (`flavor: 'last-resort'`, what
 * a low-memory notification runs): it also compacts the old generation and
 * shrinks the young one. The load grows the young generation to its maximum
 * (16 MB of RSS with `--max-semi-space-size=8`) and V8 keeps it while the
 * answering thread allocates next to nothing; measured with 10,000 zones, a
 * plain full collection left ~15 MB of young generation and ~7 MB of
 * fragmented old space resident that this one gives back.
 *
 * `gc()` exists only with --expose-gc; without it, the flag is set for one
 * new context just long enough to take its gc function (the way Node's own
 * test tools do), then unset again.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** The options V8's gc extension reads (src/extensions/gc-extension.cc); a runtime that knows no flavor runs a plain full collection. */
interface GcOptions {
  type: 'major' | 'minor';
  execution: 'sync' | 'async';
  flavor: 'regular' | 'last-resort';
}

const MEMORY_REDUCING: GcOptions = { type: 'major', execution: 'sync', flavor: 'last-resort' };

/** Runs a full collection; false when the runtime offers none. */
export function settleHeap(): boolean {
  let gc = (globalThis as { gc?: (options?: GcOptions) => void }).gc;
  if (typeof gc !== 'function') {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as ((options?: GcOptions) => void) | undefined;
    } catch {
      gc = undefined;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  if (typeof gc !== 'function') return false;
  gc(MEMORY_REDUCING);
  return true;
}
