import { describe, expect, it } from 'vitest';
import { Address, maskAddress, parseAddress, prefixText } from '../../src/zone/address.ts';
import { CidrSet } from '../../src/rrl/prefix.ts';
import { classify, nameHash, ResponseClass } from '../../src/rrl/classify.ts';
import { BucketTable, tableSizeFor, WAYS } from '../../src/rrl/table.ts';
import { Decision, ResponseLimiter, type RrlSettings } from '../../src/rrl/limiter.ts';
import { parseCidr, parseConfig } from '../../src/config/schema.ts';

const hex = (a: Address) => Array.from(a.w, (w) => w.toString(16).padStart(8, '0')).join(' ');

describe('parseAddress', () => {
  const cases: [string, string, 0 | 4 | 6, string][] = [
    ['IPv4', '192.0.2.1', 4, 'c0000201 00000000 00000000 00000000'],
    ['IPv4 zeros', '0.0.0.0', 4, '00000000 00000000 00000000 00000000'],
    ['IPv4 max', '255.255.255.255', 4, 'ffffffff 00000000 00000000 00000000'],
    ['loopback v6', '::1', 6, '00000000 00000000 00000000 00000001'],
    ['documentation v6', '2001:db8::1', 6, '20010db8 00000000 00000000 00000001'],
    ['full v6', '2001:db8:1:2:3:4:5:6', 6, '20010db8 00010002 00030004 00050006'],
    ['gap in the middle', '2001:db8:0:0:1::ff', 6, '20010db8 00000000 00010000 000000ff'],
    ['trailing gap', 'fe80::', 6, 'fe800000 00000000 00000000 00000000'],
    ['zone index ignored', 'fe80::1%eth0', 6, 'fe800000 00000000 00000000 00000001'],
    ['upper-case hex', '2001:DB8::A', 6, '20010db8 00000000 00000000 0000000a'],
    ['IPv4-mapped is IPv4', '::ffff:192.0.2.7', 4, 'c0000207 00000000 00000000 00000000'],
    ['IPv4-compatible tail', '64:ff9b::192.0.2.1', 6, '0064ff9b 00000000 00000000 c0000201'],
  ];
  it.each(cases)('%s: %s', (_n, text, family, words) => {
    const a = new Address();
    expect(parseAddress(text, a)).toBe(true);
    expect(a.family).toBe(family);
    expect(hex(a)).toBe(words);
  });
  const bad: [string, string][] = [
    ['empty', ''],
    ['three octets', '1.2.3'],
    ['octet over 255', '1.2.3.256'],
    ['five octets', '1.2.3.4.5'],
    ['two gaps', '1::2::3'],
    ['nine groups', '1:2:3:4:5:6:7:8:9'],
    ['group too long', '12345::1'],
    ['letters', 'localhost'],
    ['single colon start', ':1'],
  ];
  it.each(bad)('rejects %s (%s)', (_n, text) => {
    expect(parseAddress(text, new Address())).toBe(false);
  });
});

describe('maskAddress and prefixText', () => {
  const cases: [string, string, number, string][] = [
    ['IPv4 /24', '192.0.2.77', 24, '192.0.2.0/24'],
    ['IPv4 /32', '192.0.2.77', 32, '192.0.2.77/32'],
    ['IPv4 /20', '198.51.100.200', 20, '198.51.96.0/20'],
    ['IPv6 /56', '2001:db8:aa:bbcc:1::1', 56, '2001:db8:aa:bb00::/56'],
    ['IPv6 /64', '2001:db8:1:2:3:4:5:6', 64, '2001:db8:1:2::/64'],
    ['IPv6 /128', '::1', 128, '::1/128'],
  ];
  it.each(cases)('%s', (_n, text, bits, want) => {
    const a = new Address();
    parseAddress(text, a);
    maskAddress(a, bits);
    expect(prefixText(a.family as 4 | 6, a.w, bits)).toBe(want);
  });
});

describe('CidrSet', () => {
  const set = new CidrSet(['192.0.2.0/24', '10.0.0.1', '2001:db8:1::/48', '::ffff:198.51.100.0/120'].map(parseCidr));
  const cases: [string, boolean][] = [
    ['192.0.2.1', true],
    ['192.0.2.255', true],
    ['192.0.3.1', false],
    ['10.0.0.1', true],
    ['10.0.0.2', false],
    ['2001:db8:1:ffff::1', true],
    ['2001:db8:2::1', false],
    ['::ffff:192.0.2.9', true],
    ['198.51.100.4', true],
    ['198.51.101.4', false],
  ];
  it.each(cases)('%s exempt: %s', (text, want) => {
    const a = new Address();
    expect(parseAddress(text, a)).toBe(true);
    expect(set.has(a)).toBe(want);
  });
});

describe('classify', () => {
  const origin = 'example.test';
  const cases: [string, Parameters<typeof classify>[0], string, number, ResponseClass, string][] = [
    ['plain answer by qname and qtype', { outcome: 'HIT', sharedKey: undefined, sharedSuffix: undefined }, 'www.example.test', 1, ResponseClass.ANSWER, '1:www.example.test'],
    ['wildcard answer by wildcard owner', { outcome: 'HIT', sharedKey: 'W:*.w.example.test:16', sharedSuffix: 'w.example.test' }, 'random.w.example.test', 16, ResponseClass.ANSWER, 'W:*.w.example.test:16'],
    ['NODATA per zone', { outcome: 'NODATA', sharedKey: undefined, sharedSuffix: undefined }, 'www.example.test', 28, ResponseClass.NODATA, origin],
    ['NXDOMAIN per zone', { outcome: 'NXDOMAIN', sharedKey: 'X', sharedSuffix: origin }, 'nope.example.test', 1, ResponseClass.NXDOMAIN, origin],
    ['referral from below the cut, per cut', { outcome: 'DELEGATION', sharedKey: 'D:sub.example.test', sharedSuffix: 'sub.example.test' }, 'a.b.sub.example.test', 1, ResponseClass.REFERRAL, 'sub.example.test'],
    ['referral at the cut', { outcome: 'DELEGATION', sharedKey: undefined, sharedSuffix: undefined }, 'sub.example.test', 1, ResponseClass.REFERRAL, 'sub.example.test'],
  ];
  it.each(cases)('%s', (_n, res, qnameKey, qtype, cls, keyedBy) => {
    const k = classify(res, qnameKey, qtype, origin);
    expect(k.limitClass).toBe(cls);
    expect(k.limitName).toBe(nameHash(keyedBy));
  });
  it('SERVFAIL is an error, per prefix only', () => {
    expect(classify({ outcome: 'SERVFAIL', sharedKey: undefined, sharedSuffix: undefined }, 'a.example.test', 1, origin)).toEqual({ limitClass: ResponseClass.ERROR, limitName: 0 });
  });
  it('different qtypes of one name are different answers', () => {
    const res = { outcome: 'HIT' as const, sharedKey: undefined, sharedSuffix: undefined };
    expect(classify(res, 'www.example.test', 1, origin).limitName).not.toBe(classify(res, 'www.example.test', 16, origin).limitName);
  });
});

/** Debits key (prefix p, name n) at time t; true when sent. */
function sent(t: BucketTable, p: number, n: number, rate: number, window: number, now: number): boolean {
  return t.debit(0, p, 0, 0, 0, n, rate, window, now) === 0;
}

describe('BucketTable', () => {
  it('rounds the size up to a power of two and never below one set', () => {
    expect(tableSizeFor(1000)).toBe(1024);
    expect(tableSizeFor(1024)).toBe(1024);
    expect(tableSizeFor(1)).toBe(WAYS);
    expect(new BucketTable(3000).capacity).toBe(4096);
  });

  it('allows rate responses at once (one second of burst), then limits', () => {
    const t = new BucketTable(1024);
    let ok = 0;
    for (let i = 0; i < 50; i++) if (sent(t, 1, 1, 10, 15, 1000)) ok++;
    expect(ok).toBe(10);
  });

  it('earns rate responses per second back', () => {
    const t = new BucketTable(1024);
    for (let i = 0; i < 10; i++) expect(sent(t, 1, 1, 10, 15, 1000)).toBe(true);
    expect(sent(t, 1, 1, 10, 1, 1000)).toBe(false);
    // With window 1 the debt is at most 1 s: after it and another 100 ms, one response is earned.
    expect(sent(t, 1, 1, 10, 1, 3101)).toBe(true);
  });

  it('a flood builds debt up to window seconds: answers resume only after it', () => {
    const t = new BucketTable(1024);
    const rate = 10;
    const window = 5;
    let now = 0;
    // 100 queries a second for 10 s.
    for (let i = 0; i < 1000; i++, now += 10) sent(t, 7, 7, rate, window, now);
    // Quiet for less than the window: still limited.
    expect(sent(t, 7, 7, rate, window, now + 4000)).toBe(false);
    // The floor is -window*rate: quiet for window + 1 s, the bucket is full again.
    const later = now + 4000 + (window + 1) * 1000 + 1;
    let ok = 0;
    for (let i = 0; i < 20; i++) if (sent(t, 7, 7, rate, window, later)) ok++;
    expect(ok).toBe(rate);
  });

  it('counts limited responses per bucket (for slip)', () => {
    const t = new BucketTable(1024);
    for (let i = 0; i < 2; i++) t.debit(0, 5, 0, 0, 0, 0, 2, 15, 0);
    expect([1, 2, 3].map(() => t.debit(0, 5, 0, 0, 0, 0, 2, 15, 0))).toEqual([1, 2, 3]);
  });

  it('keys differ by class, prefix and name', () => {
    const t = new BucketTable(1024);
    expect(t.debit(0, 1, 0, 0, 0, 1, 1, 15, 0)).toBe(0);
    expect(t.debit(0, 1, 0, 0, 0, 1, 1, 15, 0)).toBe(1);
    expect(t.debit(1, 1, 0, 0, 0, 1, 1, 15, 0)).toBe(0);
    expect(t.debit(0, 2, 0, 0, 0, 1, 1, 15, 0)).toBe(0);
    expect(t.debit(0, 1, 0, 0, 0, 2, 1, 15, 0)).toBe(0);
  });

  it('stays the same size under millions of random sources, and a bucket in debt keeps limiting', () => {
    const t = new BucketTable(4096);
    const bytes = t.bytes;
    const capacity = t.capacity;
    const rate = 5;
    let now = 0;
    // The flooder's bucket goes into debt.
    for (let i = 0; i < 100; i++) sent(t, 0xc0000200, 42, rate, 15, now);
    expect(sent(t, 0xc0000200, 42, rate, 15, now)).toBe(false);
    // Two million one-off sources, over two simulated seconds.
    let x = 12345;
    for (let i = 0; i < 2_000_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      sent(t, x, 42, rate, 15, now);
      if (i % 1_000_000 === 0) now += 1000;
    }
    expect(t.bytes).toBe(bytes);
    expect(t.capacity).toBe(capacity);
    expect(t.occupied()).toBeLessThanOrEqual(capacity);
    expect(t.occupied()).toBe(capacity);
    // Still limited: the random one-offs replaced each other, not the bucket in debt.
    expect(sent(t, 0xc0000200, 42, rate, 15, now)).toBe(false);
  });

  it('two views of one buffer (two threads) share the buckets', () => {
    const a = new BucketTable(1024);
    const b = new BucketTable(a.buffer);
    for (let i = 0; i < 3; i++) expect(sent(a, 9, 9, 6, 15, 0)).toBe(true);
    for (let i = 0; i < 3; i++) expect(sent(b, 9, 9, 6, 15, 0)).toBe(true);
    expect(sent(a, 9, 9, 6, 15, 0)).toBe(false);
  });
});

function settings(over: Record<string, unknown> = {}): RrlSettings {
  return parseConfig({ zonesDir: '/x', listen: ['127.0.0.1:53'], rrl: { responsesPerSecond: 4, errorsPerSecond: 2, ...over } }).rrl;
}

describe('ResponseLimiter', () => {
  const decisions = (l: ResponseLimiter, address: string, n: number, cls: number = ResponseClass.ANSWER) => Array.from({ length: n }, () => l.decide(address, cls, 77));
  const { SEND, DROP, SLIP } = Decision;

  const cases: [string, Record<string, unknown>, Decision[]][] = [
    ['slip 2: every other limited response slips', { slip: 2 }, [SEND, SEND, SEND, SEND, DROP, SLIP, DROP, SLIP]],
    ['slip 1: every limited response slips', { slip: 1 }, [SEND, SEND, SEND, SEND, SLIP, SLIP, SLIP, SLIP]],
    ['slip 0: all dropped', { slip: 0 }, [SEND, SEND, SEND, SEND, DROP, DROP, DROP, DROP]],
    ['slip 3', { slip: 3 }, [SEND, SEND, SEND, SEND, DROP, DROP, SLIP, DROP]],
    ['log-only sends everything', { mode: 'log-only' }, [SEND, SEND, SEND, SEND, SEND, SEND, SEND, SEND]],
  ];
  it.each(cases)('%s', (_n, over, want) => {
    expect(decisions(new ResponseLimiter(settings(over), new BucketTable(1024)), '192.0.2.1', want.length)).toEqual(want);
  });

  it('one /24 shares a bucket; another /24 has its own', () => {
    const l = new ResponseLimiter(settings({ slip: 0 }), new BucketTable(1024));
    expect(decisions(l, '192.0.2.1', 4)).toEqual([SEND, SEND, SEND, SEND]);
    expect(l.decide('192.0.2.200', ResponseClass.ANSWER, 77)).toBe(DROP);
    expect(l.decide('192.0.3.1', ResponseClass.ANSWER, 77)).toBe(SEND);
  });

  it('the prefix lengths are configurable (IPv4 /32, IPv6 /64)', () => {
    const l = new ResponseLimiter(settings({ slip: 0, ipv4Prefix: 32, ipv6Prefix: 64 }), new BucketTable(1024));
    decisions(l, '192.0.2.1', 4);
    expect(l.decide('192.0.2.1', ResponseClass.ANSWER, 77)).toBe(DROP);
    expect(l.decide('192.0.2.2', ResponseClass.ANSWER, 77)).toBe(SEND);
    decisions(l, '2001:db8:0:1::1', 4);
    expect(l.decide('2001:db8:0:1:ffff::9', ResponseClass.ANSWER, 77)).toBe(DROP);
    expect(l.decide('2001:db8:0:2::1', ResponseClass.ANSWER, 77)).toBe(SEND);
  });

  it('errors have their own lower rate', () => {
    const l = new ResponseLimiter(settings({ slip: 0 }), new BucketTable(1024));
    expect(decisions(l, '192.0.2.1', 3, ResponseClass.ERROR)).toEqual([SEND, SEND, DROP]);
  });

  it('exempt clients are never limited', () => {
    const l = new ResponseLimiter(settings({ slip: 0, exempt: ['192.0.2.0/25'] }), new BucketTable(1024));
    expect(decisions(l, '192.0.2.5', 20).every((d) => d === SEND)).toBe(true);
    expect(decisions(l, '192.0.2.200', 6)).toEqual([SEND, SEND, SEND, SEND, DROP, DROP]);
  });

  it('an unreadable address is not limited', () => {
    const l = new ResponseLimiter(settings({ slip: 0 }), new BucketTable(1024));
    expect(decisions(l, 'not-an-address', 10).every((d) => d === SEND)).toBe(true);
  });

  it('take() reports counts by action and class and the prefixes limited, bounded, then starts over', () => {
    const l = new ResponseLimiter(settings({ slip: 2 }), new BucketTable(1024));
    decisions(l, '192.0.2.1', 8);
    decisions(l, '198.51.100.1', 5, ResponseClass.ERROR);
    const r = l.take()!;
    // answer: 4 limited (2 dropped, 2 slipped); error: 3 limited (drop, slip, drop).
    expect(r.counts.slice(0, 5)).toEqual([2, 0, 0, 0, 2]);
    expect(r.counts.slice(5, 10)).toEqual([2, 0, 0, 0, 1]);
    expect(new Map(r.prefixes)).toEqual(new Map([['192.0.2.0/24', 4], ['198.51.100.0/24', 3]]));
    expect(r.other).toBe(0);
    expect(l.take()).toBeUndefined();
    // More than 64 prefixes: the rest are counted as other.
    for (let i = 0; i < 100; i++) decisions(l, `10.0.${i}.1`, 6);
    const r2 = l.take()!;
    expect(r2.prefixes.length).toBe(64);
    expect(r2.prefixes.reduce((s, [, n]) => s + n, 0) + r2.other).toBe(200);
  });
});
