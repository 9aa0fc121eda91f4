/**
 * UDP worker threads survive their faults: a worker that exits, throws from
 * its event loop, or hangs in a busy loop (no heartbeat for 2 s) is replaced
 * by a new thread that gets the current zones (after a reload) and shares
 * the rotation counters; the restart is counted in /metrics and logged; UDP
 * queries are answered by the new thread afterwards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { captureLogger, startTestServer, type TestServer } from '../support/server.ts';
import { sleep } from '../support/rawdns.ts';
import { waitUntil } from '../support/spawn.ts';
import { backoffMs } from '../../src/server/udp-threads.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

const RR = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'];
function zoneText(extra = ''): string {
  return `soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: [${RR.join(', ')}] }\n${extra}`;
}

const restartsMetric = async (t: TestServer, reason: string) => {
  const m = new RegExp(`^rrdns_udp_worker_restarts_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(await t.server.metrics.text());
  return m ? Number(m[1]) : NaN;
};

describe('UDP worker thread faults', () => {
  const cases = [
    { fault: 'exit', reason: 'exit' },
    { fault: 'throw', reason: 'error' },
    { fault: 'hang', reason: 'hung' },
  ] as const;
  for (const c of cases) {
    it(`a worker that is told to ${c.fault} is replaced (reason ${c.reason}), counted, logged, and answers with the current zones`, async () => {
      const { logger, lines } = captureLogger();
      const t = await startTestServer({ 'mt.test.yaml': zoneText() }, { udpThreads: 2 }, logger);
      servers.push(t);
      const before = t.server.udpThreadStats().threadIds[0];
      expect(before).toBeTypeOf('number');
      // A reload before the fault: the replacement must get this version, not the first one.
      fs.writeFileSync(path.join(t.dir, 'mt.test.yaml'), zoneText('  new: { A: 192.0.2.99 }\n'));
      expect((await t.server.reload()).ok).toBe(true);

      const injectedAt = performance.now();
      expect(t.server.injectWorkerFault(0, c.fault)).toBe(true);
      await waitUntil(
        async () => {
          const id = t.server.udpThreadStats().threadIds[0];
          return id !== undefined && id !== before;
        },
        { what: `worker 0 to be replaced after '${c.fault}'`, attempts: 200, intervalMs: 50 },
      );
      console.info(`worker fault '${c.fault}': replaced after ${Math.round(performance.now() - injectedAt)} ms (printed, not asserted)`);
      const stats = t.server.udpThreadStats();
      expect(stats.workers).toBe(1);
      expect(stats.restarts).toEqual({ exit: 0, error: 0, hung: 0, [c.reason]: 1 });
      expect(await restartsMetric(t, c.reason)).toBe(1);
      const logged = lines.find((l) => l.msg === 'UDP worker thread ended; restarting it');
      expect(logged).toMatchObject({ reason: c.reason, thread: before });

      // The new thread answers, with the reloaded zone, and the rotation is still one cycle across both threads.
      const answeredBefore = stats.answeredByWorkers;
      const firsts: string[] = [];
      for (let i = 0; i < RR.length * 10; i++) {
        expect(addresses((await udpQuery(t.port, 'new.mt.test')).packet)).toEqual(['192.0.2.99']);
        firsts.push(addresses((await udpQuery(t.port, 'www.mt.test')).packet)[0]!);
      }
      const start = RR.indexOf(firsts[0]!);
      expect(firsts).toEqual(firsts.map((_, i) => RR[(start + i) % RR.length]));
      // Workers report once a second; 80 queries from 80 source ports all missing the new thread has chance 2^-79.
      for (let i = 0; i < 60 && t.server.udpThreadStats().answeredByWorkers <= answeredBefore; i++) await sleep(100);
      expect(t.server.udpThreadStats().answeredByWorkers).toBeGreaterThan(answeredBefore);
    });
  }

  it('a worker that keeps failing is restarted again each time, with growing backoff', async () => {
    const { logger, lines } = captureLogger();
    const t = await startTestServer({ 'mt.test.yaml': zoneText() }, { udpThreads: 2 }, logger);
    servers.push(t);
    for (let n = 1; n <= 3; n++) {
      await waitUntil(async () => t.server.injectWorkerFault(0, 'exit'), { what: `worker 0 running before fault ${n}`, attempts: 200, intervalMs: 50 });
      await waitUntil(async () => t.server.udpThreadStats().restarts.exit === n, { what: `restart ${n} counted`, attempts: 200, intervalMs: 50 });
    }
    await waitUntil(async () => t.server.udpThreadStats().workers === 1, { what: 'the worker to be back', attempts: 200, intervalMs: 50 });
    const delays = lines.filter((l) => l.msg === 'UDP worker thread ended; restarting it').map((l) => l.restartInMs);
    expect(delays).toEqual([100, 200, 400]);
    expect((await udpQuery(t.port, 'www.mt.test')).packet.answers).toHaveLength(RR.length);
  });
});

describe('restart backoff', () => {
  const opts = { minBackoffMs: 100, maxBackoffMs: 10_000 };
  const cases: [number, number][] = [[0, 100], [1, 200], [2, 400], [5, 3200], [7, 10_000], [50, 10_000], [2000, 10_000]];
  for (const [failures, ms] of cases) it(`after ${failures} failures in a row: ${ms} ms`, () => expect(backoffMs(failures, opts)).toBe(ms));
});
