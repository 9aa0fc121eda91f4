/** Per-client TCP connection counting (src/wire/tcp-client-limits.ts): keys, caps, release once, bounded maps. */
import { describe, expect, it } from 'vitest';
import { ClientConnectionCounts, clientKeys } from '../../src/wire/tcp-client-limits.ts';

describe('clientKeys', () => {
  const cases: [name: string, remote: string, address: string, prefix: string | undefined][] = [
    ['IPv4', '192.0.2.1', '192.0.2.1', undefined],
    ['IPv4 loopback', '127.0.0.2', '127.0.0.2', undefined],
    ['IPv4-mapped, dotted', '::ffff:192.0.2.1', '192.0.2.1', undefined],
    ['IPv4-mapped, hex', '::ffff:c000:201', '192.0.2.1', undefined],
    ['IPv4-mapped, upper case, long form', '0:0:0:0:0:FFFF:7F00:2', '127.0.0.2', undefined],
    ['IPv6 loopback', '::1', '0:0:0:0:0:0:0:1', '0:0:0:0::/64'],
    ['IPv6 compressed', '2001:db8::1', '2001:db8:0:0:0:0:0:1', '2001:db8:0:0::/64'],
    ['IPv6 same /64, other host', '2001:db8::ffff:1:2', '2001:db8:0:0:0:ffff:1:2', '2001:db8:0:0::/64'],
    ['IPv6 other /64', '2001:db8:0:1::1', '2001:db8:0:1:0:0:0:1', '2001:db8:0:1::/64'],
    ['IPv6 leading zeros and case', '2001:0DB8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1:0:0:0:1', '2001:db8:0:1::/64'],
    ['IPv6 link-local with zone', 'fe80::1%eth0', 'fe80:0:0:0:0:0:0:1', 'fe80:0:0:0::/64'],
    ['NAT64 embedded IPv4 (not mapped)', '64:ff9b::192.0.2.1', '64:ff9b:0:0:0:0:c000:201', '64:ff9b:0:0::/64'],
    ['IPv4-compatible (deprecated, not mapped)', '::192.0.2.1', '0:0:0:0:0:0:c000:201', '0:0:0:0::/64'],
    ['trailing ::', '2001:db8:1:2::', '2001:db8:1:2:0:0:0:0', '2001:db8:1:2::/64'],
    ['not an address (kept as is)', '', '', undefined],
  ];
  for (const [name, remote, address, prefix] of cases) {
    it(name, () => expect(clientKeys(remote)).toEqual({ address, prefix }));
  }
});

describe('ClientConnectionCounts', () => {
  it('caps one address, leaves others alone, and admits again after a release', () => {
    const c = new ClientConnectionCounts({ maxPerClient: 2, maxPerPrefix: 10 });
    const a1 = c.admit('127.0.0.2');
    const a2 = c.admit('::ffff:127.0.0.2');
    expect(typeof a1).toBe('function');
    expect(typeof a2).toBe('function');
    expect(c.admit('127.0.0.2')).toBe('per-client');
    expect(c.admit('::ffff:7f00:2')).toBe('per-client');
    expect(typeof c.admit('127.0.0.3')).toBe('function');
    (a1 as () => void)();
    expect(typeof c.admit('127.0.0.2')).toBe('function');
  });

  it('caps an IPv6 /64 across addresses', () => {
    const c = new ClientConnectionCounts({ maxPerClient: 5, maxPerPrefix: 3 });
    for (let i = 1; i <= 3; i++) expect(typeof c.admit(`2001:db8::${i}`)).toBe('function');
    expect(c.admit('2001:db8::4')).toBe('per-prefix');
    expect(c.admit('2001:db8:0:0:1::9')).toBe('per-prefix');
    expect(typeof c.admit('2001:db8:0:1::4')).toBe('function');
    // IPv4 has no prefix cap here (its per-address cap only).
    for (let i = 0; i < 5; i++) expect(typeof c.admit(`192.0.2.${i}`)).toBe('function');
  });

  it('the per-client cap bites before the per-prefix one', () => {
    const c = new ClientConnectionCounts({ maxPerClient: 1, maxPerPrefix: 1 });
    expect(typeof c.admit('::1')).toBe('function');
    expect(c.admit('::1')).toBe('per-client');
    expect(c.admit('::2')).toBe('per-prefix');
  });

  it('a refusal counts nothing; a release uncounts once however often called; empty entries go', () => {
    const c = new ClientConnectionCounts({ maxPerClient: 1, maxPerPrefix: 2 });
    const r = c.admit('2001:db8::1') as () => void;
    expect(c.admit('2001:db8::1')).toBe('per-client');
    expect(c.countFor('2001:db8::1')).toEqual({ address: 1, prefix: 1 });
    const other = c.admit('2001:db8::2') as () => void;
    expect(c.countFor('2001:db8::2')).toEqual({ address: 1, prefix: 2 });
    r();
    r();
    r();
    expect(c.countFor('2001:db8::1')).toEqual({ address: 0, prefix: 1 });
    expect(c.size).toEqual({ addresses: 1, prefixes: 1 });
    other();
    expect(c.size).toEqual({ addresses: 0, prefixes: 0 });
  });

  it('holds entries only for addresses with open connections (10,000 distinct clients come and go)', () => {
    const c = new ClientConnectionCounts({ maxPerClient: 16, maxPerPrefix: 64 });
    for (let i = 0; i < 10_000; i++) {
      const release = c.admit(`2001:db8:${(i >> 8).toString(16)}:${(i & 0xff).toString(16)}::1`) as () => void;
      release();
    }
    expect(c.size).toEqual({ addresses: 0, prefixes: 0 });
  });
});
