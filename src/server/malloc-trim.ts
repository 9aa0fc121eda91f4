/**
 * Gives the C heap's free pages back to the kernel (glibc's malloc_trim,
 * through native/memory.c): at start-up once the zones are loaded, then every
 * TRIM_EVERY_MS on libuv's thread pool.
 *
 * glibc keeps what is freed. Each thread that mallocs (V8's compile and GC
 * workers, libuv's fs workers) has its own arena, and an arena only shrinks
 * from its top, so the buffers of 10,000 zone files read at start-up or in a
 * reload stay resident after they are freed: ~10 MB measured. What frees them
 * is V8's collection of their ArrayBuffers, which comes when it comes, hence
 * a timer rather than a call at the end of a reload.
 *
 * Without the addon (no compiler at `npm ci`, RRDNS_NATIVE=off) or without
 * glibc (musl), both do nothing and `available()` says so: the memory is
 * still reused by later mallocs, only not returned.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon's exports (native/memory.c). */
interface MemoryBinding {
  readonly available: boolean;
  trim(): boolean;
  trimAsync(callback: (error: null, released: boolean) => void): void;
}

/** How often free C-heap pages are given back while serving. */
export const TRIM_EVERY_MS = 10_000;

const ADDON = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'Release', 'memory.node');

let loaded: MemoryBinding | null | undefined;

/** The addon, or null where it is not built or not usable. RRDNS_MEMORY_ADDON names another file (tests point it at none). */
function binding(): MemoryBinding | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') return loaded;
  try {
    const b = createRequire(import.meta.url)(process.env.RRDNS_MEMORY_ADDON || ADDON) as MemoryBinding;
    if (typeof b.trim === 'function' && typeof b.trimAsync === 'function' && b.available === true) loaded = b;
  } catch {
    // Not built: the fallback is to keep the pages, which is what Node does anyway.
  }
  return loaded;
}

/** Whether free C-heap pages are given back on this build and platform. */
export function mallocTrimAvailable(): boolean {
  return binding() !== null;
}

/** Gives free C-heap pages back now, on this thread; true when some were. */
export function trimMallocNow(): boolean {
  return binding()?.trim() ?? false;
}

/**
 * Gives free C-heap pages back every TRIM_EVERY_MS, off the answering
 * thread, one trim at a time; returns what stops it. The timer does not keep
 * the process alive.
 */
export function trimMallocPeriodically(everyMs = TRIM_EVERY_MS, onTrim?: (released: boolean) => void): () => void {
  const b = binding();
  if (b === null) return () => {};
  let running = false;
  let stopped = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    b.trimAsync((_error, released) => {
      running = false;
      if (!stopped) onTrim?.(released);
    });
  }, everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
