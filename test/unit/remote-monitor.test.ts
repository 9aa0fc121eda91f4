/**
 * The remote monitor (remote-monitor.ts, the answering thread's mirror) over
 * a MonitorHost (monitor-host.ts, the probing side) run in this thread with a
 * scripted checker and a manual clock: the mirror must say what a
 * HealthMonitor driven by the same checker says (states, verdicts with their
 * reasons, time until a change), while results cross as batched rows.
 */
import { describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import type { CheckOutcome, Checker } from '../../src/health/checkers.ts';
import { flushPromises, ManualScheduler } from '../../src/health/manual-scheduler.ts';
import { MonitorHost } from '../../src/health/monitor-host.ts';
import { ROW, type FromMonitor } from '../../src/health/monitor-protocol.ts';
import { HealthMonitor, type MemberHealth } from '../../src/health/monitor.ts';
import { RemoteMonitor } from '../../src/health/remote-monitor.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';

function tgt(i: number, input: CheckConfigInput = {}): CheckTarget {
  return makeTarget(`192.0.2.${i}`, 'www.example.test', CheckSchema.parse({ interval: '1s', timeout: '500ms', fall: 3, rise: 2, ...input }));
}

/** A checker answering at once from `decide(key, n)` (n: 0-based check number of that key). */
function scripted(decide: (key: string, n: number) => Omit<CheckOutcome, 'latencyMs'>): Checker {
  const counts = new Map<string, number>();
  return async (t) => {
    const n = counts.get(t.key) ?? 0;
    counts.set(t.key, n + 1);
    return { ...decide(t.key, n), latencyMs: 1.5 };
  };
}

const OK = { ok: true, detail: 'HTTP 200', status: 200 };
const FAIL = { ok: false, detail: 'HTTP 500 not in 200-399', status: 500 };
const REFUSED = { ok: false, detail: 'ECONNREFUSED' };

/** The same script, twice: a HealthMonitor here, and a RemoteMonitor over a MonitorHost, on one manual clock. */
function pair(decide: (key: string, n: number) => Omit<CheckOutcome, 'latencyMs'>) {
  const sched = new ManualScheduler(1_700_000_000_000);
  const changes = { local: [] as [string, MemberHealth, string][], remote: [] as [string, MemberHealth, string][] };
  const messages: FromMonitor[] = [];
  const local = new HealthMonitor({ check: scripted(decide), scheduler: sched, onChange: (s, _p, r) => changes.local.push([s.key, s.health, r]) });
  const remote = new RemoteMonitor({
    clock: () => sched.now(),
    onChange: (s, _p, r) => changes.remote.push([s.key, s.health, r]),
    host: (post) => {
      const check = scripted(decide);
      return new MonitorHost({
        check,
        closeChecker: async () => {},
        scheduler: sched,
        post: (m) => {
          messages.push(m);
          post(m);
        },
      });
    },
  });
  /** Advances the clock in steps of `step` ms, letting the checks settle after each. */
  const advance = async (ms: number, step = 10) => {
    for (let t = 0; t < ms; t += step) {
      await sched.advance(step);
      await flushPromises();
    }
  };
  return { sched, local, remote, changes, messages, advance };
}

describe('the remote monitor mirrors a HealthMonitor', () => {
  it('states, verdicts (with their reasons) and the time until a change are the same, at every step of a failure and a recovery', async () => {
    // Target 1 fails from its 3rd check to its 8th and recovers; target 2 is refused throughout.
    const p = pair((key, n) => (key === a.key ? (n >= 2 && n < 8 ? FAIL : OK) : REFUSED));
    const a = tgt(1);
    const b = tgt(2, { fall: 2 });
    p.local.setTargets([a, b]);
    p.remote.setTargets([a, b]);
    const firstLocal = p.local.firstRound();
    const firstRemote = p.remote.firstRound();
    await p.advance(20);
    await Promise.all([firstLocal, firstRemote]);
    for (let step = 0; step < 44; step++) {
      await p.advance(250);
      for (const t of [a, b]) {
        expect(p.remote.state(t.key), `state of ${t.address} at step ${step}`).toEqual(p.local.state(t.key));
        expect(p.remote.timeToPossibleChange(t.key), `time to change of ${t.address} at step ${step}`).toBe(p.local.timeToPossibleChange(t.key));
      }
    }
    expect(p.remote.states()).toEqual(p.local.states());
    expect(p.changes.local.map(([k, h]) => [k, h])).toEqual([
      [b.key, 'down'],
      [a.key, 'down'],
      [a.key, 'up'],
    ]);
    expect(p.changes.remote).toEqual(p.changes.local);
    await Promise.all([p.local.close(), p.remote.close()]);
  });

  it('results travel in batches of rows, and a detail that did not change is not sent again', async () => {
    const p = pair(() => OK);
    const targets = Array.from({ length: 400 }, (_, i) => makeTarget(`10.0.${i >> 8}.${i & 255}`, 'www.example.test', CheckSchema.parse({ interval: '1s', timeout: '500ms' })));
    p.remote.setTargets(targets);
    await p.advance(3000, 5);
    const results = p.messages.filter((m) => m.kind === 'results');
    const rows = results.reduce((n, m) => n + m.rows.length / ROW, 0);
    expect(rows).toBeGreaterThanOrEqual(400 * 3);
    // 400 checks a second, spread over it: every 10 ms one message carries what finished (~4 rows), not one per check.
    expect(results.length).toBeLessThanOrEqual(3000 / 10 + 1);
    // 'HTTP 200' went once per target, not with every result.
    expect(results.flatMap((m) => m.texts)).toEqual(targets.map(() => 'HTTP 200'));
    for (const t of targets) expect(p.remote.state(t.key)?.lastOutcome).toEqual({ ok: true, detail: 'HTTP 200', status: 200, latencyMs: 1.5 });
    await p.remote.close();
  });

  it('probing off resets the mirror at once and later results of the old probing are not applied; on probes again', async () => {
    const p = pair(() => FAIL);
    const a = tgt(1, { fall: 1 });
    p.remote.setTargets([a]);
    await p.advance(30);
    expect(p.remote.state(a.key)).toMatchObject({ health: 'down', checks: 1 });
    expect(p.remote.setProbing(a.key, false)).toBe(true);
    expect(p.remote.probing(a.key)).toBe(false);
    expect(p.remote.state(a.key)).toMatchObject({ health: 'up', checks: 0 });
    expect(p.remote.state(a.key)).not.toHaveProperty('lastOutcome');
    expect(p.remote.timeToPossibleChange(a.key)).toBe(Infinity);
    await p.advance(3000);
    expect(p.remote.state(a.key)).toMatchObject({ health: 'up', checks: 0 });
    expect(p.remote.setProbing(a.key, true)).toBe(true);
    const first = p.remote.firstRound();
    await p.advance(30);
    await first;
    expect(p.remote.state(a.key)).toMatchObject({ health: 'down', checks: 1, lastOutcome: { detail: FAIL.detail } });
    expect(p.remote.setProbing('no such key', false)).toBe(false);
    await p.remote.close();
  });

  it('a target a reload removes is gone at once; one it adds starts with no result', async () => {
    const p = pair(() => OK);
    const a = tgt(1);
    const b = tgt(2);
    p.remote.setTargets([a]);
    await p.advance(1500);
    p.remote.setTargets([b]);
    expect(p.remote.state(a.key)).toBeUndefined();
    expect(p.remote.targets()).toEqual([b]);
    expect(p.remote.state(b.key)).toMatchObject({ health: 'up', checks: 0 });
    await p.advance(1500);
    expect(p.remote.state(a.key)).toBeUndefined();
    expect(p.remote.state(b.key)!.checks).toBeGreaterThanOrEqual(1);
    await p.remote.close();
  });
});
