/**
 * Cold standby's probe plan as tables: which check targets are probed now,
 * from each pool's standby mode, allDown policy and whether a primary is usable.
 */
import { describe, expect, it } from 'vitest';
import { coldStandbyNeeded, probePlan, type PlanPool } from '../../src/server/probe-plan.ts';

/** `p+` usable primary, `p-` unusable one, `s` standby; each followed by `=key` (default: its position). */
function pool(mode: 'hot' | 'cold', spec: string, allDown = 'backup'): PlanPool {
  return {
    standbyMode: mode,
    allDown,
    members: spec.split(' ').map((m, i) => {
      const [who, key] = m.split('=');
      return { key: key ?? `k${i}`, role: who![0] === 'p' ? 'primary' : 'standby', usable: who === 'p+' };
    }),
  };
}

describe('coldStandbyNeeded', () => {
  const cases: { name: string; pool: PlanPool; want: boolean }[] = [
    { name: 'a primary is usable: no', pool: pool('cold', 'p+ p- s'), want: false },
    { name: 'every primary down: yes', pool: pool('cold', 'p- p- s'), want: true },
    { name: 'hot standby: never "needed" (always probed)', pool: pool('hot', 'p- p- s'), want: false },
    { name: 'allDown serveAll: standbys never serve', pool: pool('cold', 'p- s', 'serveAll'), want: false },
  ];
  for (const c of cases) it(c.name, () => expect(coldStandbyNeeded(c.pool)).toBe(c.want));
});

describe('probePlan', () => {
  const cases: { name: string; pools: PlanPool[]; managed: string[]; probe: string[] }[] = [
    { name: 'no cold pool: nothing managed', pools: [pool('hot', 'p+=a s=b')], managed: [], probe: [] },
    { name: 'cold, primaries serve: standbys idle', pools: [pool('cold', 'p+=a p+=b s=c s=d')], managed: ['c', 'd'], probe: [] },
    { name: 'cold, one primary still up: standbys idle', pools: [pool('cold', 'p-=a p+=b s=c')], managed: ['c'], probe: [] },
    { name: 'cold, every primary down: standbys probed', pools: [pool('cold', 'p-=a p-=b s=c s=d')], managed: ['c', 'd'], probe: ['c', 'd'] },
    {
      name: 'a check shared by two cold pools: probed when either needs it',
      pools: [pool('cold', 'p+=a s=x'), pool('cold', 'p-=b s=x')],
      managed: ['x'],
      probe: ['x'],
    },
    {
      name: 'a cold standby that is a primary elsewhere: always probed',
      pools: [pool('cold', 'p+=a s=x'), pool('hot', 'p+=x')],
      managed: ['x'],
      probe: ['x'],
    },
    {
      name: 'a cold standby that is a hot standby elsewhere: always probed',
      pools: [pool('cold', 'p+=a s=x'), pool('hot', 'p+=b s=x')],
      managed: ['x'],
      probe: ['x'],
    },
    { name: 'cold under allDown: serveAll: never probed', pools: [pool('cold', 'p-=a s=x', 'serveAll')], managed: ['x'], probe: [] },
    {
      name: 'pools are independent: one falls back, the other does not',
      pools: [pool('cold', 'p-=a s=x'), pool('cold', 'p+=b s=y')],
      managed: ['x', 'y'],
      probe: ['x'],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const plan = probePlan(c.pools);
      expect([...plan.managed].sort()).toEqual(c.managed);
      expect([...plan.probe].sort()).toEqual(c.probe);
    });
});
