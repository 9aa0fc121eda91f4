/**
 * Free C-heap pages go back to the kernel (src/server/malloc-trim.ts, native/memory.c).
 *
 * Each case runs in a child Node of its own, so that its RSS is its own: the
 * child fills ~200 MB of C heap with 16 KB Buffers (below glibc's mmap
 * threshold: they come from malloc's arena), keeps one in 64 alive so the
 * arena cannot shrink from its top, lets V8 collect the rest, then trims.
 * Without the trim those pages stay resident for the life of the process;
 * with it they are returned, which is what keeps a server with 10,000 zones
 * from holding the ~10 MB its start-up read left in the arenas.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../support/spawn.ts';

const ADDON = path.join(REPO_ROOT, 'native', 'build', 'Release', 'memory.node');
const HAVE_ADDON = process.platform === 'linux' && fs.existsSync(ADDON);

interface ChildResult {
  available: boolean;
  released: boolean;
  periodic: boolean | null;
  before: number;
  after: number;
}

/** Runs the fill-free-trim script in a child; `how` picks trimMallocNow or one round of trimMallocPeriodically. */
function runChild(how: 'now' | 'periodic', env: NodeJS.ProcessEnv = process.env): ChildResult {
  const dir = tempDir('malloc-trim');
  const script = path.join(dir, 'child.ts');
  const module = path.join(REPO_ROOT, 'src', 'server', 'malloc-trim.ts');
  fs.writeFileSync(
    script,
    `import fs from 'node:fs';
import { mallocTrimAvailable, trimMallocNow, trimMallocPeriodically } from ${JSON.stringify(module)};
const rssMb = () => Number(/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const keep: Buffer[] = [];
{
  const all: Buffer[] = [];
  for (let i = 0; i < 12800; i++) {
    const b = Buffer.alloc(16384, 1);
    all.push(b);
    if (i % 64 === 63) keep.push(b);
  }
}
(globalThis as { gc?: () => void }).gc!();
(globalThis as { gc?: () => void }).gc!();
const before = rssMb();
let released = false;
let periodic: boolean | null = null;
if (${JSON.stringify(how)} === 'now') released = trimMallocNow();
else {
  // Resolves on the first trim's callback; a build without the addon never calls it, so the stop is immediate.
  // The trim timer is unref'd (it never keeps a server alive): this one holds the child open meanwhile.
  const hold = setTimeout(() => {}, 30_000);
  periodic = await new Promise<boolean | null>((resolve) => {
    const stop = trimMallocPeriodically(20, (r) => { stop(); resolve(r); });
    if (!mallocTrimAvailable()) resolve(null);
  });
  clearTimeout(hold);
  released = periodic === true;
}
const after = rssMb();
console.log(JSON.stringify({ available: mallocTrimAvailable(), released, periodic, before: Math.round(before), after: Math.round(after), kept: keep.length }));
`,
  );
  const out = execFileSync(process.execPath, ['--expose-gc', script], { env, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult;
}

describe.skipIf(!HAVE_ADDON)('malloc_trim through native/memory.node', () => {
  it.each([
    { name: 'trimMallocNow, on the calling thread', how: 'now' as const },
    { name: "trimMallocPeriodically's first round, on libuv's thread pool", how: 'periodic' as const },
  ])('$name: the freed ~200 MB of arena pages leave the RSS', ({ how }) => {
    const r = runChild(how);
    expect(r.available).toBe(true);
    expect(r.released).toBe(true);
    // ~197 MB were freed into the arena; at least 120 MB of them must be gone from the RSS.
    expect(r.before - r.after).toBeGreaterThan(120);
  });
});

describe('without the addon (not built, or another platform)', () => {
  it.each([
    { name: 'trimMallocNow', how: 'now' as const },
    { name: 'trimMallocPeriodically', how: 'periodic' as const },
  ])('$name does nothing and says so; the freed pages stay resident', ({ how }) => {
    const r = runChild(how, { ...process.env, RRDNS_MEMORY_ADDON: path.join(tempDir('no-memory-addon'), 'memory.node') });
    expect(r.available).toBe(false);
    expect(r.released).toBe(false);
    expect(r.periodic).toBe(null);
    // Nothing returned them: within 40 MB of where they were (the child's own noise).
    expect(r.before - r.after).toBeLessThan(40);
  });
});
