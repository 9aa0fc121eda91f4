/**
 * Logging never blocks query handling: the real CLI logs every query
 * (debug) into a stdout pipe that the test stops reading. Queries keep
 * being answered (UDP, TCP, dig, the admin API); lines past the bound are
 * dropped and counted in /metrics; once the test reads again, one line
 * reports how many were lost. SIGTERM then exits without hanging on stdout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { udpQuery, addresses } from '../support/dnsclient.ts';
import { dig } from '../support/dig.ts';
import { freePort, startRrdns, stopAll, tempDir, waitUntil } from '../support/spawn.ts';

afterAll(() => stopAll());

const ZONE = `soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: [192.0.2.1, 192.0.2.2] }\n`;

const droppedMetric = async (admin: string) => {
  const m = /^rrdns_log_lines_dropped_total (\d+)$/m.exec(await (await fetch(`${admin}/metrics`)).text());
  return m ? Number(m[1]) : NaN;
};

describe('a stalled stdout', () => {
  it('does not stop answers; dropped lines are counted and reported once stdout drains', async () => {
    const dir = tempDir('zones');
    fs.writeFileSync(path.join(dir, 'log.test.yaml'), ZONE);
    const adminPort = await freePort();
    const rrdns = await startRrdns({ zonesDir: dir, logLevel: 'debug', args: ['--admin', `127.0.0.1:${adminPort}`, '--log-buffer-bytes', '16384', '--no-watch'] });
    const admin = `http://127.0.0.1:${adminPort}`;
    rrdns.child.stdout!.pause();

    // Each query logs a ~200-byte debug line: 3,000 of them are far more than the 16 KiB bound plus the pipe's 64 KiB.
    const N = 3000;
    let answered = 0;
    for (let i = 0; i < N; i++) {
      const { packet } = await udpQuery(rrdns.port, 'www.log.test', { timeoutMs: 2000 });
      if (addresses(packet).length === 2) answered++;
    }
    expect(answered).toBe(N);
    // dig, over UDP and TCP, still answered while nobody reads stdout.
    for (const args of [['www.log.test', 'A'], ['www.log.test', 'A', '+tcp']]) {
      const r = await dig(rrdns.port, args);
      expect(r.status).toBe('NOERROR');
      expect(r.answer).toHaveLength(2);
    }
    const dropped = await droppedMetric(admin);
    expect(dropped).toBeGreaterThan(0);

    rrdns.child.stdout!.resume();
    const report = () => rrdns.logs.filter((l) => /^\d+ log lines dropped while stdout was stalled$/.test(String(l.msg)));
    // The report comes with the drain; a later query makes a line that may need the room freed first.
    await waitUntil(async () => {
      await udpQuery(rrdns.port, 'www.log.test');
      return report().length > 0;
    }, { what: 'the dropped-lines report', attempts: 100, intervalMs: 100 });
    const reported = report().reduce((n, l) => n + Number(l.dropped), 0);
    expect(reported).toBeGreaterThan(0);
    // Everything dropped so far was reported (the counter may only have grown since the scrape).
    expect(reported).toBeGreaterThanOrEqual(dropped);
    expect(await droppedMetric(admin)).toBe(reported);
    console.info(`stalled stdout: ${answered}/${N} UDP queries answered, ${dropped} log lines dropped at the 16 KiB bound, ${reported} reported after the drain`);

    rrdns.child.stdout!.pause();
    for (let i = 0; i < 1000; i++) await udpQuery(rrdns.port, 'www.log.test', { timeoutMs: 2000 });
    // Stopping with stdout stalled again: the exit waits for the log only a bounded time, and is clean.
    await rrdns.stop(15_000);
    expect(await rrdns.exited).toEqual({ code: 0, signal: null });
  });
});
