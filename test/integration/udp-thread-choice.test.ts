/**
 * The UDP thread count a server picks is the one the policy picks
 * (src/server/udp-thread-count.ts) and the start-up line says which and why;
 * from the CLI, `--udp-threads auto` and RRDNS_UDP_THREADS=auto are accepted
 * and anything else that is not a count is refused by name.
 */
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseUdpThreads } from '../../src/server/udp-thread-count.ts';
import { captureLogger, startTestServer } from '../support/server.ts';
import { removeDir, startRrdns, tempDir } from '../support/spawn.ts';
import { dig } from '../support/dig.ts';
import fs from 'node:fs';

const ZONE = `origin: choice.test
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 60 }
records:
  "@": { NS: [ns1] }
  ns1: { A: 127.0.0.1 }
  www: { A: [127.0.0.10, 127.0.0.11] }
`;

const listening = (lines: Record<string, unknown>[]) => lines.find((l) => l.msg === 'rrdns listening') as { udpThreads?: number; udpThreadsWhy?: string } | undefined;

describe('the UDP thread count at start-up', () => {
  for (const setting of ['auto', 0, 2] as const) {
    it(`udpThreads ${setting}: runs the policy's count and logs it with the reason`, async () => {
      const { logger, lines } = captureLogger('info');
      const t = await startTestServer({ 'choice.test.yaml': ZONE }, { udpThreads: setting }, logger);
      try {
        const expected = chooseUdpThreads(setting, os.availableParallelism());
        expect(t.server.udpThreadChoice).toEqual(expected);
        const line = listening(lines);
        expect(line?.udpThreads).toBe(expected.threads);
        expect(line?.udpThreadsWhy).toBe(expected.why);
        // As many threads answer as were chosen: the workers besides the main thread.
        expect(t.server.udpThreadStats().workers).toBe(expected.threads - 1);
        const r = await dig(t.port, ['www.choice.test', 'A']);
        expect(r.answer.map((a) => a.data).sort()).toEqual(['127.0.0.10', '127.0.0.11']);
      } finally {
        await t.close();
      }
    });
  }

  it('from the CLI: --udp-threads auto and RRDNS_UDP_THREADS=auto start, the line says the choice', async () => {
    const dir = tempDir('choice');
    fs.writeFileSync(path.join(dir, 'choice.test.yaml'), ZONE);
    const expected = chooseUdpThreads('auto', os.availableParallelism());
    try {
      for (const opts of [{ args: ['--udp-threads', 'auto', '--admin', 'off', '--no-watch'] }, { args: ['--admin', 'off', '--no-watch'], env: { ...process.env, RRDNS_UDP_THREADS: 'auto' } }]) {
        const s = await startRrdns({ zonesDir: dir, ...opts });
        try {
          const line = listening(s.logs);
          expect(line?.udpThreads).toBe(expected.threads);
          expect(line?.udpThreadsWhy).toBe(expected.why);
        } finally {
          await s.close();
        }
      }
    } finally {
      removeDir(dir);
    }
  });

  it('from the CLI: a value that is neither auto nor a count is refused, naming the flag', () => {
    const r = spawnSync(process.execPath, [path.resolve(import.meta.dirname, '../../src/main.ts'), 'serve', '--zones', tempDir('choice-bad'), '--udp-threads', 'lots'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--udp-threads="lots" is not auto or a whole number');
  });
});
