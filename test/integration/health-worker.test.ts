/**
 * The checker in a worker thread (worker-checker.ts) against real backends:
 * the same outcomes as the in-thread checker, a worker that dies is restarted
 * with the monitor's verdicts kept, and close() is idempotent and ends the thread.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import { createChecker } from '../../src/health/checkers.ts';
import { HealthMonitor, type MemberHealth } from '../../src/health/monitor.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';
import { createWorkerChecker } from '../../src/health/worker-checker.ts';
import { startHttpBackend, startHttpsBackend, waitFor, type Backend, type HttpsBackend } from '../support/backends.ts';
import { dig } from '../support/dig.ts';
import { startRrdns, tempDir } from '../support/spawn.ts';

function target(b: Backend, input: CheckConfigInput = {}): CheckTarget {
  return makeTarget(b.address, 'www.example.test', CheckSchema.parse({ port: b.port, interval: '200ms', timeout: '150ms', ...input }));
}
const signal = () => new AbortController().signal;
const strip = (o: { latencyMs: number }) => ({ ...o, latencyMs: 0 });

describe('the worker-thread checker', () => {
  let b: Backend;
  let tls: HttpsBackend;
  beforeAll(async () => {
    b = await startHttpBackend();
    tls = await startHttpsBackend();
  });
  afterAll(async () => {
    await b.close();
    await tls.close();
  });

  it('gives the same outcomes as the in-thread checker', async () => {
    const worker = createWorkerChecker();
    const local = createChecker();
    try {
      const https = makeTarget(tls.address, tls.certName, CheckSchema.parse({ type: 'https', port: tls.port, interval: '2s', timeout: '1500ms', tls: { ca: tls.caPath } }));
      const cases: [string, CheckTarget][] = [
        ['ok', target(b)],
        ['status500', target(b)],
        ['wrongBody', target(b, { body: { match: 'OK body' } })],
        ['ok', target(b, { keepAlive: true, load: { header: 'X-Missing' } })],
        ['ok', https],
      ];
      for (const [mode, t] of cases) {
        b.setMode(mode as never);
        const [w, l] = [await worker.check(t, signal()), await local.check(t, signal())];
        expect(strip(w)).toEqual(strip(l));
      }
      await b.stop();
      try {
        expect(strip(await worker.check(target(b), signal()))).toEqual(strip(await local.check(target(b), signal())));
      } finally {
        await b.start();
      }
    } finally {
      b.setMode('ok');
      await worker.close();
      await local.close();
    }
  });

  it('an aborted probe settles as aborted and releases its connection', async () => {
    const worker = createWorkerChecker();
    try {
      b.setMode('hang');
      const ac = new AbortController();
      const pending = worker.check(target(b, { interval: '5s', timeout: '4s' }), ac.signal);
      await waitFor(() => b.connections >= 1, 5000, 'the probe to connect');
      ac.abort();
      expect(await pending).toMatchObject({ ok: false, detail: 'aborted' });
      await waitFor(() => b.connections === 0, 5000, 'the aborted probe connection to close');
    } finally {
      b.setMode('ok');
      await worker.close();
    }
  });

  it('survives its worker dying: restarted, checks go on, the verdict is kept', async () => {
    b.setMode('ok');
    const errors: unknown[] = [];
    const worker = createWorkerChecker({ onCrash: (e) => errors.push(e) });
    const changes: MemberHealth[] = [];
    const m = new HealthMonitor({ check: worker.check, onChange: (s) => changes.push(s.health) });
    // fall 2 and a generous timeout: on a loaded machine a restarting worker may be slow, and one late
    // probe must not read as the backend failing; what this asserts is that no verdict changes.
    const t = target(b, { interval: '1s', timeout: '900ms', fall: 2, rise: 1 });
    try {
      m.setTargets([t]);
      await m.firstRound();
      await waitFor(() => (m.state(t.key)?.checks ?? 0) >= 2, 10_000, 'two checks');
      expect(m.state(t.key)!.health).toBe('up');
      const dead = worker.workerForTest()!;
      await dead.terminate();
      const checksAtDeath = m.state(t.key)!.checks;
      await waitFor(() => worker.restarts === 1 && worker.workerForTest() !== undefined, 5000, 'the restart');
      expect(worker.workerForTest()).not.toBe(dead);
      await waitFor(() => m.state(t.key)!.checks >= checksAtDeath + 3, 10_000, 'checks after the restart');
      const s = m.state(t.key)!;
      expect(s.health).toBe('up');
      expect(s.lastOutcome).toMatchObject({ ok: true });
      expect(changes).toEqual([]); // never went down: the death of the worker is not the backend's
      expect(errors).toHaveLength(1);
      // Still a real check: a failing backend goes down through the new worker.
      b.setMode('status500');
      await waitFor(() => m.state(t.key)!.health === 'down', 10_000, 'down after the backend fails');
    } finally {
      b.setMode('ok');
      await m.close();
      await worker.close();
    }
  });

  it('close() is idempotent, ends the thread, and later checks say the checker is closed', async () => {
    const worker = createWorkerChecker();
    b.setMode('ok');
    expect((await worker.check(target(b, { keepAlive: true }), signal())).ok).toBe(true);
    const thread = worker.workerForTest()!;
    let exited = false;
    thread.once('exit', () => (exited = true));
    const first = worker.close();
    const second = worker.close();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    await worker.close();
    await waitFor(() => exited, 5000, 'the worker thread to exit');
    expect(worker.workerForTest()).toBeUndefined();
    expect(await worker.check(target(b), signal())).toMatchObject({ ok: false, detail: 'checker closed' });
    await waitFor(() => b.connections === 0, 5000, 'the keep-alive connection to close with the worker');
  });
});

describe('the probing thread starts with the first checks', () => {
  const threadNames = (pid: number) => fs.readdirSync(`/proc/${pid}/task`).map((t) => { try { return fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim(); } catch { return ''; } });

  it.skipIf(!fs.existsSync('/proc/self/task'))('a server whose zones have no checks runs no rrdns-health thread; a reload that adds a pool starts it and its first check passes', async () => {
    const b = await startHttpBackend();
    const dir = tempDir('lazy-checker');
    const zone = (pool: string) => `origin: lazy.test\nsoa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  '@': { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: [${b.address}]${pool} }\n`;
    fs.writeFileSync(path.join(dir, 'lazy.test.yaml'), zone(''));
    const rrdns = await startRrdns({ zonesDir: dir, args: ['--admin', 'off', '--no-watch'] });
    try {
      expect(threadNames(rrdns.pid)).not.toContain('rrdns-health');
      fs.writeFileSync(path.join(dir, 'lazy.test.yaml'), zone(`, pool: { check: { port: ${b.port}, interval: 1s, timeout: 500ms } }`));
      process.kill(rrdns.pid, 'SIGHUP');
      await waitFor(() => rrdns.logs.some((l) => l.msg === 'zones reloaded' && l.pools === 1), 20_000, 'the reload with a pool');
      expect(threadNames(rrdns.pid)).toContain('rrdns-health');
      // The first check ran on the thread once it listened: the backend is up, not timed out during its start.
      expect(rrdns.logs.filter((l) => l.msg === 'health state changed')).toEqual([]);
      expect((await dig(rrdns.port, ['www.lazy.test', 'A'])).answer.map((r) => r.data)).toEqual([b.address]);
    } finally {
      await rrdns.close();
      await b.close();
    }
  }, 60_000);
});
