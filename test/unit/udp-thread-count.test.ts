/** The UDP thread count (src/server/udp-thread-count.ts): `auto`, 0 (one per core) and explicit counts, by core count. */
import { describe, expect, it } from 'vitest';
import { chooseUdpThreads } from '../../src/server/udp-thread-count.ts';
import { parseConfig } from '../../src/config/schema.ts';

describe('chooseUdpThreads', () => {
  const cases: [name: string, setting: 'auto' | number, cores: number, threads: number, why: RegExp][] = [
    ['auto, 1 core', 'auto', 1, 1, /^auto: 1 core: no core free/],
    ['auto, 2 cores: one thread (measured faster, bench/threads.ts)', 'auto', 2, 1, /^auto: 2 cores: no core free for a second UDP thread/],
    ['auto, 3 cores: one per core', 'auto', 3, 3, /^auto: 3 cores: one UDP thread per core/],
    ['auto, 8 cores', 'auto', 8, 8, /^auto: 8 cores: one UDP thread per core/],
    ['auto, 200 cores: capped at 64', 'auto', 200, 64, /^auto: 200 cores/],
    ['0 on 2 cores: one per core, as asked', 0, 2, 2, /^udpThreads 0: one per core \(2 cores\)$/],
    ['0 on 1 core', 0, 1, 1, /^udpThreads 0: one per core/],
    ['0 on 100 cores: capped at 64', 0, 100, 64, /^udpThreads 0/],
    ['an explicit count wins over the core count', 2, 1, 2, /^udpThreads 2 as configured$/],
    ['1 on a big machine', 1, 32, 1, /^udpThreads 1 as configured$/],
  ];
  for (const [name, setting, cores, threads, why] of cases) {
    it(name, () => {
      const choice = chooseUdpThreads(setting, cores);
      expect(choice.threads).toBe(threads);
      expect(choice.why).toMatch(why);
    });
  }
});

describe('config udpThreads', () => {
  const base = { zonesDir: 'zones', listen: ['127.0.0.1:0'] };
  it('defaults to auto', () => expect(parseConfig(base).udpThreads).toBe('auto'));
  it('takes auto, 0 and counts up to 64', () => {
    for (const v of ['auto', 0, 1, 64] as const) expect(parseConfig({ ...base, udpThreads: v }).udpThreads).toBe(v);
  });
  it('refuses other values', () => {
    for (const v of [-1, 65, 1.5, 'many']) expect(() => parseConfig({ ...base, udpThreads: v as never })).toThrow();
  });
});
