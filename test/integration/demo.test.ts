/**
 * `npm run demo` end to end: runs `node bench/demo.ts` as a child (real
 * backends on 127.0.0.31-33, the real rrdns CLI, the real dig) and reads what
 * it printed: the dig answers between "stopping backend 127.0.0.32" and
 * "restarting backend 127.0.0.32" lack .32, the ones after have it again, and
 * rrdns logged both health transitions. No timing is asserted.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, startProcess } from '../support/spawn.ts';
import { missing } from '../support/tools.ts';

const VICTIM = '127.0.0.32';
const ALL = ['127.0.0.31', VICTIM, '127.0.0.33'];
/** Bound on the whole demo run; the demo bounds itself at 90 s. */
const RUN_BOUND_MS = 100_000;

type Phase = 'setup' | 'healthy' | 'stopped' | 'restarted' | 'end';
interface DigBlock {
  phase: Phase;
  command: string;
  addresses: string[];
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Every "$ dig …" block the demo printed (the command, then dig's +short lines), tagged with the step it came in. */
function digBlocks(output: string): DigBlock[] {
  const blocks: DigBlock[] = [];
  let phase: Phase = 'setup';
  let current: DigBlock | undefined;
  for (const line of output.split('\n')) {
    if (/^1\. /.test(line)) phase = 'healthy';
    else if (line.startsWith(`2. stopping backend ${VICTIM}`)) phase = 'stopped';
    else if (line.startsWith(`3. restarting backend ${VICTIM}`)) phase = 'restarted';
    else if (/^4\. /.test(line)) phase = 'end';
    if (line.startsWith('$ dig ')) {
      current = { phase, command: line.slice(2), addresses: [] };
      blocks.push(current);
    } else if (current && IPV4.test(line.trim())) {
      current.addresses.push(line.trim());
    } else {
      current = undefined;
    }
  }
  return blocks;
}

describe.skipIf(missing('dig', 'bind9-dnsutils'))('npm run demo (bench/demo.ts)', () => {
  it('shows with dig 127.0.0.32 leaving the answers when its backend stops and returning when it restarts', async () => {
    const demo = startProcess('demo', process.execPath, [path.join(REPO_ROOT, 'bench/demo.ts')], { cwd: REPO_ROOT });
    const timer = setTimeout(() => void demo.stop(), RUN_BOUND_MS);
    const { code, signal } = await demo.exited;
    clearTimeout(timer);
    const out = demo.stdout();
    const context = `--- demo stdout ---\n${out}\n--- demo stderr ---\n${demo.stderr()}`;
    expect({ code, signal }, context).toEqual({ code: 0, signal: null });

    const blocks = digBlocks(out);
    const healthy = blocks.filter((b) => b.phase === 'healthy');
    const stopped = blocks.filter((b) => b.phase === 'stopped');
    const restarted = blocks.filter((b) => b.phase === 'restarted');
    expect(healthy.length, context).toBeGreaterThan(0);
    expect(stopped.length, context).toBeGreaterThan(0);
    expect(restarted.length, context).toBeGreaterThan(0);
    for (const b of blocks) expect(b.command, context).toMatch(/^dig @127\.0\.0\.1 -p \d+ www\.demo\.test \+short$/);
    // Before: all three, rotating (not every answer starts with the same address).
    for (const b of healthy) expect([...b.addresses].sort(), context).toEqual(ALL);
    expect(new Set(healthy.map((b) => b.addresses[0])).size, context).toBeGreaterThan(1);
    // Backend stopped: answers go on, without .32.
    for (const b of stopped) expect([...b.addresses].sort(), context).toEqual(['127.0.0.31', '127.0.0.33']);
    // Backend restarted: .32 is back.
    for (const b of restarted) expect([...b.addresses].sort(), context).toEqual(ALL);

    // rrdns's own log lines for both transitions, in order.
    const transitions = out.split('\n').filter((l) => l.includes('health state changed') && l.includes(VICTIM));
    expect(transitions.map((l) => /(\w+ -> \w+)/.exec(l)?.[1]), context).toEqual(['up -> down', 'down -> up']);
    // The admin API's view at the end: every member up and served.
    const members = out.split('\n').filter((l) => /^ {2}127\.0\.0\.3[123] /.test(l));
    expect(members.length, context).toBe(3);
    for (const m of members) expect(m, context).toMatch(/^ {2}\S+\s+up\s+served /);
  }, RUN_BOUND_MS + 20_000);
});
