/**
 * The node flags an operator's rrdns runs with come from two places, `npm
 * start` (package.json) and the image's entrypoint (docker/entrypoint.sh);
 * bench:zones-reload reads the first. They must say the same, or the
 * memory figures measured for one are not those of the other. And the
 * probing thread's own young generation (src/health/probing-heap.ts) must
 * not be smaller than what the flags give every other thread: it is the
 * thread that allocates per probe.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { PROBING_RESOURCE_LIMITS, PROBING_YOUNG_GENERATION_MB } from '../../src/health/probing-heap.ts';
import { REPO_ROOT, startScriptNodeFlags } from '../support/spawn.ts';

const entrypoint = fs.readFileSync(path.join(REPO_ROOT, 'docker', 'entrypoint.sh'), 'utf8');

function entrypointFlags(text: string): string[] {
  const m = /^V8_FLAGS=(.*)$/m.exec(text);
  return (m?.[1] ?? '').replace(/^["']|["']$/g, '').split(/\s+/).filter(Boolean);
}

/** A V8 flag's value in MB (`--max-semi-space-size=1` → 1), undefined when not given. */
function flagMb(flags: string[], name: string): number | undefined {
  const f = flags.find((x) => x.startsWith(`--${name}=`));
  return f === undefined ? undefined : Number(f.slice(name.length + 3));
}

describe('node flags', () => {
  it.each([
    ['npm start', startScriptNodeFlags()],
    ['the image entrypoint', entrypointFlags(entrypoint)],
  ])('%s caps the young generation', (_name, flags) => {
    const semi = flagMb(flags, 'max-semi-space-size');
    expect(semi).toBeGreaterThan(0);
    // V8 sizes a young generation at three semi-spaces: the probing thread's is at least what the flag gives.
    expect(PROBING_YOUNG_GENERATION_MB).toBeGreaterThanOrEqual(3 * semi!);
  });

  it('npm start and the image entrypoint give node the same flags', () => {
    expect(entrypointFlags(entrypoint)).toEqual(startScriptNodeFlags());
  });

  it('the entrypoint passes its flags to node on both paths (with and without capsh)', () => {
    const execs = entrypoint.split('\n').filter((l) => /^\s*exec\b/.test(l));
    expect(execs.length).toBe(2);
    for (const line of execs) expect(line).toContain('$V8_FLAGS "$MAIN"');
  });

  it('a thread started with the probing limits runs with that young generation', async () => {
    // The frozen object is what remote-monitor.ts and worker-checker.ts pass to new Worker().
    const w = new Worker("require('node:worker_threads').parentPort.postMessage(require('node:worker_threads').resourceLimits)", { eval: true, resourceLimits: PROBING_RESOURCE_LIMITS });
    try {
      const limits = await new Promise<Record<string, number>>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(limits.maxYoungGenerationSizeMb).toBe(PROBING_YOUNG_GENERATION_MB);
    } finally {
      await w.terminate();
    }
  });
});
