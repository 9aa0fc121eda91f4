/**
 * The other instances' verdicts held here (src/cluster/remote-verdicts.ts):
 * bounded, and an instance that leaves takes all its verdicts with it.
 */
import { describe, expect, it } from 'vitest';
import { RemoteVerdicts } from '../../src/cluster/remote-verdicts.ts';
import type { VerdictRecord } from '../../src/cluster/keys.ts';

const v = (health: 'up' | 'down'): VerdictRecord => ({ health, checks: 1, lastOk: health === 'up', lastResult: null, lastCheckAt: null, since: 't', at: 't' });

describe('RemoteVerdicts', () => {
  it('past its bound new verdicts are refused, replacing a held one still works', () => {
    const r = new RemoteVerdicts(2);
    expect(r.put('a', 'k1', v('up')).full).toBe(false);
    expect(r.put('b', 'k1', v('up')).full).toBe(false);
    expect(r.put('a', 'k2', v('down')).full).toBe(true);
    expect(r.of('k2')).toBeUndefined();
    const replaced = r.put('a', 'k1', v('down'));
    expect(replaced).toEqual({ previous: v('up'), full: false });
    expect(r.count).toBe(2);
  });

  it('an instance that leaves takes its verdicts with it, and frees room', () => {
    const r = new RemoteVerdicts(3);
    r.put('a', 'k1', v('up'));
    r.put('a', 'k2', v('up'));
    r.put('b', 'k1', v('down'));
    r.dropInstance('a');
    expect(r.count).toBe(1);
    expect([...r.of('k1')!.keys()]).toEqual(['b']);
    expect(r.of('k2')).toBeUndefined();
    expect(r.countsByInstance()).toEqual(new Map([['b', 1]]));
    expect(r.delete('b', 'k1')).toBe(true);
    expect(r.delete('b', 'k1')).toBe(false);
    expect(r.count).toBe(0);
  });
});
