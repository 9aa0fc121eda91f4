/**
 * ProbeSwitch: several sources (cold standby, the cluster's shared check load)
 * share the monitor's one probing switch per check; a check is probed when no
 * source wants it off. Against the real HealthMonitor on a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { CheckSchema } from '../../src/config/health-check.ts';
import { ManualScheduler } from '../../src/health/manual-scheduler.ts';
import { HealthMonitor } from '../../src/health/monitor.ts';
import { makeTarget } from '../../src/health/target.ts';
import { ProbeSwitch } from '../../src/server/probe-switch.ts';

// Documentation address: the checker is scripted, nothing is sent.
const target = makeTarget('192.0.2.1', 'www.example.test', CheckSchema.parse({ interval: '1s', timeout: '500ms' }));

function setup() {
  const sched = new ManualScheduler();
  const m = new HealthMonitor({ check: async () => ({ ok: true, detail: 'scripted', latencyMs: 0 }), scheduler: sched });
  return { m, sw: new ProbeSwitch(m) };
}

describe('ProbeSwitch', () => {
  const cases: { name: string; steps: [source: 'cold' | 'cluster', on: boolean][]; probing: boolean; flips: boolean[] }[] = [
    { name: 'one source off: off', steps: [['cold', false]], probing: false, flips: [true] },
    { name: 'off then on by the same source: on', steps: [['cold', false], ['cold', true]], probing: true, flips: [true, true] },
    { name: 'one source turning on does not undo the other one\'s off', steps: [['cluster', false], ['cold', true]], probing: false, flips: [true, false] },
    { name: 'both off, one back on: still off', steps: [['cold', false], ['cluster', false], ['cold', true]], probing: false, flips: [true, false, false] },
    { name: 'both off, both back on: on', steps: [['cold', false], ['cluster', false], ['cold', true], ['cluster', true]], probing: true, flips: [true, false, false, true] },
    { name: 'repeated wishes flip nothing', steps: [['cold', true], ['cold', true]], probing: true, flips: [false, false] },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const { m, sw } = setup();
      m.setTargets([target]);
      const flips = c.steps.map(([source, on]) => sw.set(source, target.key, on));
      expect(flips).toEqual(c.flips);
      expect(m.probing(target.key)).toBe(c.probing);
      expect(sw.wants(target.key)).toBe(c.probing);
      await m.close();
    });

  it('a wish for a key not watched yet waits for setTargets (its probe option reads wants)', async () => {
    const { m, sw } = setup();
    expect(sw.set('cold', target.key, false)).toBe(false);
    m.setTargets([target], { probe: (t) => sw.wants(t.key) });
    expect(m.probing(target.key)).toBe(false);
    expect(sw.offBy('cold')).toEqual([target.key]);
    await m.close();
  });

  it('prune forgets keys the monitor no longer watches', async () => {
    const { m, sw } = setup();
    m.setTargets([target]);
    sw.set('cold', target.key, false);
    m.setTargets([]);
    sw.prune();
    expect(sw.offBy('cold')).toEqual([]);
    expect(sw.wants(target.key)).toBe(true);
    await m.close();
  });
});
