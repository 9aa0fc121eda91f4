/**
 * The etcd key layout and the default instance ID (src/cluster/keys.ts,
 * identity.ts): keys parse back to what made them, and foreign or malformed
 * keys and values are ignored rather than thrown on inside a watch.
 */
import { describe, expect, it } from 'vitest';
import { KeyLayout, parseOverride, parseVerdict } from '../../src/cluster/keys.ts';
import { defaultInstanceId } from '../../src/cluster/identity.ts';

const keys = new KeyLayout('prod');
const check = 'http://www.example.test@127.0.0.11:8080/health#0123456789abcdef';

describe('KeyLayout.parse', () => {
  const cases: { name: string; key: string; want: ReturnType<KeyLayout['parse']> }[] = [
    { name: 'a member', key: keys.member('ns1'), want: { kind: 'member', instance: 'ns1' } },
    { name: 'a verdict: the check key keeps its slashes', key: keys.verdict('ns1', check), want: { kind: 'verdict', instance: 'ns1', check } },
    { name: 'an override (IPv6 address)', key: keys.override('www.example.test.', '2001:db8::1'), want: { kind: 'override', owner: 'www.example.test.', address: '2001:db8::1' } },
    { name: 'another cluster\'s key', key: '/rrdns/staging/members/ns1', want: { kind: 'other' } },
    { name: 'a verdict without a check', key: '/rrdns/prod/verdicts/ns1/', want: { kind: 'other' } },
    { name: 'a member with a slash', key: '/rrdns/prod/members/a/b', want: { kind: 'other' } },
    { name: 'an unknown area', key: '/rrdns/prod/locks/x', want: { kind: 'other' } },
  ];
  it.each(cases)('$name', ({ key, want }) => expect(keys.parse(key)).toEqual(want));
});

describe('values from etcd', () => {
  const cases: { name: string; text: string; ok: boolean }[] = [
    { name: 'a verdict', text: JSON.stringify({ health: 'down', checks: 3, lastOk: false, lastResult: 'ECONNREFUSED', lastCheckAt: null, since: 'x', at: 'y' }), ok: true },
    { name: 'a verdict with an unknown health', text: JSON.stringify({ health: 'sideways', since: 'x', at: 'y' }), ok: false },
    { name: 'not JSON', text: '{', ok: false },
    { name: 'a JSON array', text: '[]', ok: false },
  ];
  it.each(cases)('$name', ({ text, ok }) => expect(parseVerdict(text) !== undefined).toBe(ok));

  it('an override parses; a tombstone or an unknown value is not an override', () => {
    expect(parseOverride(JSON.stringify({ override: 'drain', setBy: 'ns1', at: 't' }))).toEqual({ override: 'drain', setBy: 'ns1', at: 't' });
    expect(parseOverride(JSON.stringify({ override: null, setBy: 'ns1', at: 't' }))).toBeUndefined();
    expect(parseOverride(JSON.stringify({ override: 'maybe' }))).toBeUndefined();
  });
});

describe('defaultInstanceId', () => {
  const cases: { name: string; hostname: string; listen: { host: string; port: number } | undefined; want: string }[] = [
    { name: 'hostname, address and port', hostname: 'ns1', listen: { host: '127.0.0.1', port: 53 }, want: 'ns1-127.0.0.1-53' },
    { name: 'IPv6 colons become dashes', hostname: 'ns1', listen: { host: '::1', port: 5353 }, want: 'ns1---1-5353' },
    { name: 'no hostname', hostname: '', listen: { host: '10.0.0.1', port: 53 }, want: 'rrdns-10.0.0.1-53' },
    { name: 'odd characters in the hostname', hostname: 'ns 1/x', listen: undefined, want: 'ns-1-x' },
  ];
  it.each(cases)('$name', ({ hostname, listen, want }) => expect(defaultInstanceId(hostname, listen)).toBe(want));
});
