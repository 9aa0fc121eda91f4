/**
 * The remote monitor with its real probing thread against real backends:
 * after the targets are sent, the answering thread sends the thread nothing
 * per probe (the schedule lives there) while checks go on and verdicts arrive;
 * a thread that dies is restarted with the verdicts and fall/rise counts kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import type { MemberHealth } from '../../src/health/monitor.ts';
import { RemoteMonitor } from '../../src/health/remote-monitor.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';
import { startHttpBackend, waitFor, type Backend } from '../support/backends.ts';

function target(b: Backend, name: string, input: CheckConfigInput = {}): CheckTarget {
  return makeTarget(b.address, name, CheckSchema.parse({ port: b.port, interval: '500ms', timeout: '450ms', fall: 2, rise: 1, ...input }));
}

describe('the remote monitor and its probing thread', () => {
  let up: Backend;
  let failing: Backend;
  beforeAll(async () => {
    up = await startHttpBackend();
    failing = await startHttpBackend();
    failing.setMode('status500');
  });
  afterAll(async () => {
    await up.close();
    await failing.close();
  });

  it('the answering thread sends nothing per probe: after the targets, checks and verdicts go on with no message to the thread', async () => {
    const changes: [string, MemberHealth][] = [];
    const m = new RemoteMonitor({ onChange: (s) => changes.push([s.address, s.health]) });
    const targets = [...Array.from({ length: 10 }, (_, i) => target(up, `n${i}.example.test`)), target(failing, 'bad.example.test')];
    try {
      m.setTargets(targets);
      await m.firstRound();
      const thread = m.workerForTest()!;
      const sent: unknown[] = [];
      const post = thread.postMessage.bind(thread);
      thread.postMessage = (msg: unknown, ...rest: never[]) => {
        sent.push(msg);
        post(msg, ...rest);
      };
      const checksAt = new Map(targets.map((t) => [t.key, m.state(t.key)!.checks]));
      await waitFor(() => targets.every((t) => m.state(t.key)!.checks >= checksAt.get(t.key)! + 5), 20_000, 'five more checks of every target');
      expect(sent).toEqual([]);
      for (const t of targets.slice(0, 10)) expect(m.state(t.key)).toMatchObject({ health: 'up', lastOutcome: { ok: true, status: 200 } });
      const bad = m.state(targets[10]!.key)!;
      expect(bad).toMatchObject({ health: 'down', lastOutcome: { ok: false, status: 500 } });
      expect(bad.lastOutcome!.detail).toMatch(/^HTTP 500/);
      expect(changes).toEqual([[failing.address, 'down']]);
      // The backend recovers: rise 1, so the next check brings it back, through the same thread.
      failing.setMode('ok');
      await waitFor(() => m.state(targets[10]!.key)!.health === 'up', 10_000, 'the recovery');
      expect(changes).toEqual([
        [failing.address, 'down'],
        [failing.address, 'up'],
      ]);
      expect(m.timeToPossibleChange(targets[0]!.key)).toBeLessThanOrEqual(2 * 500);
    } finally {
      failing.setMode('status500');
      await m.close();
    }
  });

  it('a probing thread that dies is restarted with every verdict and count kept; checks go on', async () => {
    const errors: unknown[] = [];
    const changes: MemberHealth[] = [];
    const m = new RemoteMonitor({ onCrash: (e) => errors.push(e), onChange: (s) => changes.push(s.health) });
    const good = target(up, 'good.example.test', { interval: '1s' });
    const bad = target(failing, 'bad.example.test', { interval: '1s', fall: 3, rise: 3 });
    try {
      m.setTargets([good, bad]);
      await m.firstRound();
      await waitFor(() => m.state(bad.key)!.consecutiveFail >= 2, 10_000, 'two failures');
      expect(m.state(bad.key)!.health).toBe('down'); // the first result decides
      const dead = m.workerForTest()!;
      const before = m.state(good.key)!.checks;
      await dead.terminate();
      await waitFor(() => m.restarts === 1 && m.workerForTest() !== undefined, 10_000, 'the restart');
      expect(m.workerForTest()).not.toBe(dead);
      await waitFor(() => m.state(good.key)!.checks >= before + 2, 10_000, 'checks after the restart');
      // Counts go on from where they were, not from a first check: a restart is not the backend's doing.
      expect(m.state(good.key)).toMatchObject({ health: 'up' });
      expect(m.state(bad.key)!.consecutiveFail).toBeGreaterThanOrEqual(3);
      expect(m.state(bad.key)!.health).toBe('down');
      expect(changes).toEqual(['down']);
      expect(errors).toHaveLength(1);
      // rise 3 still holds after the restart: one success does not bring it back.
      failing.setMode('ok');
      const early: MemberHealth[] = [];
      await waitFor(
        () => {
          const s = m.state(bad.key)!;
          if (s.consecutiveOk > 0 && s.consecutiveOk < 3) early.push(s.health);
          return s.health === 'up';
        },
        15_000,
        'up after rise successes',
      );
      expect(early.length).toBeGreaterThan(0);
      expect(new Set(early)).toEqual(new Set(['down']));
      expect(m.state(bad.key)!.consecutiveOk).toBeGreaterThanOrEqual(3);
      expect(changes).toEqual(['down', 'up']);
    } finally {
      failing.setMode('status500');
      await m.close();
    }
  });

  it('close() is idempotent and ends the thread', async () => {
    const m = new RemoteMonitor();
    m.setTargets([target(up, 'c.example.test', { keepAlive: true })]);
    await m.firstRound();
    const thread = m.workerForTest()!;
    let exited = false;
    thread.once('exit', () => (exited = true));
    const first = m.close();
    expect(m.close()).toBe(first);
    await first;
    await waitFor(() => exited, 5000, 'the thread to exit');
    expect(m.workerForTest()).toBeUndefined();
    m.setTargets([target(up, 'd.example.test')]);
    expect(m.targets()).toHaveLength(1); // closed: nothing changes any more
  });
});
