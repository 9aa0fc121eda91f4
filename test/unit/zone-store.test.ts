/**
 * ZoneStore: longest-suffix lookup, replace() swapping the whole set, and
 * patch() swapping some entries in place (a reload that changed a few zones
 * of thousands), each moving the version the pipeline's answer table checks.
 */
import { describe, expect, it } from 'vitest';
import { ZoneStore } from '../../src/zone/store.ts';

describe('ZoneStore', () => {
  const cases: { name: string; keys: string[]; find: string; want: string | undefined }[] = [
    { name: 'exact origin', keys: ['a.test', 'test'], find: 'a.test', want: 'a.test' },
    { name: 'longest suffix wins', keys: ['a.test', 'test'], find: 'www.a.test', want: 'a.test' },
    { name: 'parent when no child zone', keys: ['a.test', 'test'], find: 'www.b.test', want: 'test' },
    { name: 'root zone catches the rest', keys: ['', 'a.test'], find: 'x.example', want: '' },
    { name: 'nothing served for it', keys: ['a.test'], find: 'b.test', want: undefined },
  ];
  for (const c of cases) {
    it(`find: ${c.name}`, () => {
      const store = new ZoneStore<string>();
      store.replace(new Map(c.keys.map((k) => [k, k])));
      expect(store.find(c.find)).toBe(c.want);
    });
  }

  it('patch swaps the named entries in place, keeps the others and moves the version', () => {
    const store = new ZoneStore<string>();
    store.replace(new Map([['a.test', 'a1'], ['b.test', 'b1'], ['c.test', 'c1']]));
    const v = store.version;
    store.patch(new Map([['b.test', 'b2']]));
    expect(store.version).toBe(v + 1);
    expect([...store.all()]).toEqual(['a1', 'b2', 'c1']);
    expect(store.size).toBe(3);
  });

  it('patch refuses a key that is not served, and changes nothing then', () => {
    const store = new ZoneStore<string>();
    store.replace(new Map([['a.test', 'a1']]));
    const v = store.version;
    expect(() => store.patch(new Map([['a.test', 'a2'], ['new.test', 'n']]))).toThrow(/new\.test is not served/);
    expect(store.get('a.test')).toBe('a1');
    expect(store.version).toBe(v);
  });
});
