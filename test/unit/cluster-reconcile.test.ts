/**
 * Override reconciliation tables: this instance's overrides against etcd's
 * after a separation, last writer wins (src/cluster/reconcile.ts).
 */
import { describe, expect, it } from 'vitest';
import { reconcileOverrides, type TimedOverride } from '../../src/cluster/reconcile.ts';

/** `m1=drain@5 m2=-@7`: member m1 drained at t=5, m2 cleared (tombstone / pending clear) at t=7. */
function side(spec: string): Map<string, TimedOverride> {
  return new Map(
    spec
      .split(' ')
      .filter(Boolean)
      .map((e) => {
        const [key, rest] = e.split('=');
        const [value, at] = rest!.split('@');
        return [key!, { override: value === '-' ? null : (value as TimedOverride['override']), at: Number(at) }];
      }),
  );
}

describe('reconcileOverrides', () => {
  const cases: { name: string; local: string; etcd: string; toEtcd: string; toLocal: string }[] = [
    { name: 'same on both sides: nothing to do', local: 'm1=drain@5', etcd: 'm1=drain@3', toEtcd: '', toLocal: '' },
    { name: 'set here while etcd was away (etcd never heard of it): pushed', local: 'm1=drain@5', etcd: '', toEtcd: 'm1=drain@5', toLocal: '' },
    { name: 'set elsewhere while we were away: applied here', local: '', etcd: 'm1=force-down@5', toEtcd: '', toLocal: 'm1=force-down' },
    { name: 'cleared elsewhere after we set it: cleared here', local: 'm1=drain@5', etcd: 'm1=-@9', toEtcd: '', toLocal: 'm1=-' },
    { name: 'set here after it was cleared elsewhere: pushed', local: 'm1=drain@9', etcd: 'm1=-@5', toEtcd: 'm1=drain@9', toLocal: '' },
    { name: 'cleared here while away, etcd still has the older set: the clear is pushed', local: 'm1=-@9', etcd: 'm1=drain@5', toEtcd: 'm1=-@9', toLocal: '' },
    { name: 'cleared here, set again elsewhere later: the newer set applies here', local: 'm1=-@5', etcd: 'm1=drain@9', toEtcd: '', toLocal: 'm1=drain' },
    { name: 'both changed: the later one wins (here)', local: 'm1=force-up@9', etcd: 'm1=drain@5', toEtcd: 'm1=force-up@9', toLocal: '' },
    { name: 'both changed: the later one wins (etcd)', local: 'm1=force-up@5', etcd: 'm1=drain@9', toEtcd: '', toLocal: 'm1=drain' },
    { name: 'same time: etcd wins (the others already apply it)', local: 'm1=force-up@5', etcd: 'm1=drain@5', toEtcd: '', toLocal: 'm1=drain' },
    { name: 'a local override of unknown time loses a conflict', local: 'm1=drain@0', etcd: 'm1=-@1', toEtcd: '', toLocal: 'm1=-' },
    { name: 'a tombstone with nothing here: nothing', local: '', etcd: 'm1=-@5', toEtcd: '', toLocal: '' },
    { name: 'a clear here of something etcd never had: nothing', local: 'm1=-@5', etcd: '', toEtcd: '', toLocal: '' },
    { name: 'members are independent', local: 'm1=drain@5 m2=force-up@1', etcd: 'm2=-@3 m3=drain@2', toEtcd: 'm1=drain@5', toLocal: 'm2=- m3=drain' },
  ];
  it.each(cases)('$name', ({ local, etcd, toEtcd, toLocal }) => {
    const r = reconcileOverrides(side(local), side(etcd));
    expect(r.toEtcd).toEqual(side(toEtcd));
    const wantLocal = new Map([...side(toLocal.replace(/(=[^ ]+)/g, '$1@0'))].map(([k, v]) => [k, v.override]));
    expect(r.toLocal).toEqual(wantLocal);
  });
});
