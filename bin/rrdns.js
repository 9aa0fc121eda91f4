#!/usr/bin/env node
// Thin launcher: Node >= 22.18 strips TypeScript types natively, so the CLI runs from src/.
//
// The compile cache keeps each module's stripped and compiled form, so that
// type stripping (amaro, swc compiled to WebAssembly: ~25 MB of RSS in every
// thread that strips) runs only when a source changed, not on every start.
// It lives in node_modules/.cache, owned by whoever installed rrdns, not in a
// shared /tmp. NODE_COMPILE_CACHE (a directory) or NODE_DISABLE_COMPILE_CACHE=1
// decide instead when set; a cache that cannot be written only means no cache.
import module from 'node:module';

if (process.env.NODE_COMPILE_CACHE === undefined && process.env.NODE_DISABLE_COMPILE_CACHE === undefined) {
  const dir = new URL('../node_modules/.cache/rrdns-compile', import.meta.url).pathname;
  // Through the environment too: worker threads (UDP, health checks) read it when they start.
  process.env.NODE_COMPILE_CACHE = dir;
  module.enableCompileCache?.(dir);
}
await import('../src/main.ts');
