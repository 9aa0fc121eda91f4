/**
 * Caches cannot be turned against the server: whatever junk is asked (random
 * qtypes, names, letter case, wildcard expansions, NXDOMAIN floods), the
 * answer cache stays within its byte bound and an answer in use stays
 * compiled (the same plan object comes back: no recompilation per query).
 */
import { describe, expect, it } from 'vitest';
import { AnswerCache } from '../../src/server/answer-cache.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { prng } from '../support/rawdns.ts';
import { zoneFromText } from '../support/zone-text.ts';

const A_LINES = Array.from({ length: 64 }, (_, i) => `www A 192.0.2.${i + 1}`).join('\n');
const zone = zoneFromText(
  'example.test',
  `$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.53\n${A_LINES}\n*.w A 192.0.2.40\nmail MX 10 ns1\nchild NS ns1.child\nns1.child A 192.0.2.99\n`,
);

function wireLength(name: string): number {
  return name.length + 2;
}

const ask = (served: ServedZone, qname: string, qtype: number) => served.plan(qname, qname.toLowerCase(), wireLength(qname), qtype);

function randomCase(rand: () => number, s: string): string {
  return s.replace(/[a-z]/g, (c) => (rand() < 0.5 ? c.toUpperCase() : c));
}

function randomLabel(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 20);
  let out = '';
  for (let i = 0; i < n; i++) out += String.fromCharCode(97 + Math.floor(rand() * 26));
  return out;
}

describe('answer cache under hostile query mixes', () => {
  const floods = [
    { name: 'random qtypes for a real name', junk: (r: () => number) => ['www.example.test', 1 + Math.floor(r() * 65535)] as const },
    { name: 'random letter case', junk: (r: () => number) => [randomCase(r, 'www.example.test'), 1 + Math.floor(r() * 300)] as const },
    { name: 'NXDOMAIN names', junk: (r: () => number) => [`${randomLabel(r)}.${randomLabel(r)}.example.test`, 1 + Math.floor(r() * 300)] as const },
    { name: 'wildcard expansions', junk: (r: () => number) => [`${randomLabel(r)}.w.example.test`, 1 + Math.floor(r() * 65535)] as const },
    { name: 'names below a cut', junk: (r: () => number) => [`${randomLabel(r)}.child.example.test`, 1 + Math.floor(r() * 65535)] as const },
  ];

  it.each(floods)('$name: bounded bytes, and the legitimate answer is never recompiled', ({ junk }) => {
    const cache = new AnswerCache(256 * 1024);
    const served = new ServedZone(zone, undefined, undefined, cache);
    const legit = ask(served, 'www.example.test', 1);
    const mx = ask(served, 'mail.example.test', 15);
    const rand = prng(42);
    let peak = 0;
    for (let i = 0; i < 50_000; i++) {
      const [q, t] = junk(rand);
      ask(served, q, t);
      // Legitimate traffic continues among the junk, as it would on a real server.
      if (i % 50 === 0) {
        expect(ask(served, 'www.example.test', 1)).toBe(legit);
        expect(ask(served, 'mail.example.test', 15)).toBe(mx);
      }
      peak = Math.max(peak, cache.bytes);
    }
    expect(peak).toBeLessThanOrEqual(256 * 1024);
    expect(ask(served, 'WWW.example.TEST', 1)).toBe(legit);
  });

  it('random qtypes for one name cost one NODATA entry, not one per qtype, and never hide the types it has', () => {
    const cache = new AnswerCache();
    const served = new ServedZone(zone, undefined, undefined, cache);
    const rand = prng(3);
    const nodata = ask(served, 'www.example.test', 999);
    expect(nodata.rcode).toBe(0);
    expect(nodata.an).toBe(0);
    for (let i = 0; i < 20_000; i++) {
      const t = 1 + Math.floor(rand() * 65535);
      const plan = ask(served, 'www.example.test', t);
      if (t === 1) expect(plan.an).toBe(64);
      else if (![5, 43, 255].includes(t)) expect(plan).toBe(nodata);
    }
    // The A answer, the NODATA, and at most CNAME, DS and ANY of their own.
    expect(cache.entries).toBeLessThanOrEqual(5);
    expect(ask(served, 'www.example.test', 1).an).toBe(64);
    expect(ask(served, 'mail.example.test', 15).an).toBe(1);
  });

  it('one cache serves many zones within one bound', () => {
    const cache = new AnswerCache(64 * 1024);
    const zones = Array.from({ length: 50 }, () => new ServedZone(zone, undefined, undefined, cache));
    const rand = prng(7);
    for (let i = 0; i < 20_000; i++) ask(zones[i % 50]!, 'www.example.test', 1 + Math.floor(rand() * 1000));
    expect(cache.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(cache.entries).toBeGreaterThan(0);
  });

  it('invalidation makes the next query compile afresh', () => {
    const served = new ServedZone(zone);
    const before = ask(served, 'www.example.test', 1);
    served.invalidate();
    const after = ask(served, 'www.example.test', 1);
    expect(after).not.toBe(before);
    expect(after.body.equals(before.body)).toBe(true);
  });
});
