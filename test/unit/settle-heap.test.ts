/**
 * settleHeap: one full collection without --expose-gc (the flag is set for one
 * new context only, then unset), and nothing left behind in this context.
 */
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { settleHeap } from '../../src/server/settle-heap.ts';

describe('settleHeap', () => {
  it('collects garbage that nothing references any more', async () => {
    const hadGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    let collected = false;
    const registry = new FinalizationRegistry(() => {
      collected = true;
    });
    (() => {
      registry.register({ garbage: new Array(1000).fill(0) }, 'x');
    })();
    expect(settleHeap()).toBe(true);
    // Finalizers run on a later task.
    for (let i = 0; i < 50 && !collected; i++) await new Promise((r) => setTimeout(r, 10));
    expect(collected).toBe(true);
    // This context did not gain a gc() it did not have, and new contexts do not get one either.
    expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGc);
    expect(vm.runInNewContext('typeof gc')).toBe(hadGc ? 'function' : 'undefined');
  });
});
