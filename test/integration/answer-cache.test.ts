/**
 * The answer cache bound end to end: --answer-cache-bytes reaches the real
 * server, a flood of junk over real UDP keeps /metrics' cache bytes within
 * it, and ordinary names are still answered right afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RRType, typeFromText } from '../../src/zone/records.ts';
import { rawQuery, prng } from '../support/rawdns.ts';
import { addresses, udpExchange, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const ZONE = `$TTL 300
@ SOA ns1 hostmaster 1 3600 900 1209600 60
@ NS ns1
ns1 A 127.0.0.1
www A 192.0.2.10
www A 192.0.2.11
*.apps A 192.0.2.30
${Array.from({ length: 2000 }, (_, i) => `h${i} A 192.0.2.${i % 250}`).join('\n')}
`;
const BOUND = 64 * 1024;

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ 'cache.test.zone': ZONE }, { answerCacheBytes: BOUND });
});
afterAll(() => t?.close());

const metric = async (name: string) => {
  const text = await t.server.metrics.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
};

describe('answer cache bound', () => {
  it('junk over UDP stays within --answer-cache-bytes and ordinary answers stay right', { timeout: 60_000 }, async () => {
    const rand = prng(99);
    const label = () => Math.floor(rand() * 1e9).toString(36);
    let peak = 0;
    // Bounded: 3,000 queries, in batches of 50 in flight, each waiting at most 2 s.
    for (let batch = 0; batch < 60; batch++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          const n = batch * 50 + i;
          const kind = n % 4;
          // Kind 3: 750 distinct real names, each its own compiled answer: far more than the bound holds.
          const name = kind === 0 ? `${label()}.${label()}.apps.cache.test` : kind === 1 ? `www.cache.test` : kind === 2 ? `${label()}.cache.test` : `h${n >> 2}.cache.test`;
          const qtype = kind === 1 ? 1 + Math.floor(rand() * 65000) : kind === 3 ? RRType.A : [RRType.A, RRType.TXT, RRType.MX][i % 3]!;
          return udpExchange(t.port, rawQuery(name, { qtype, id: i })).catch(() => undefined);
        }),
      );
      peak = Math.max(peak, await metric('rrdns_answer_cache_bytes'));
    }
    // Full, and never past the bound.
    expect(peak).toBeGreaterThan(BOUND / 2);
    expect(peak).toBeLessThanOrEqual(BOUND);
    const www = await udpQuery(t.port, 'www.cache.test', { type: typeFromText('A') });
    expect(addresses(www.packet).sort()).toEqual(['192.0.2.10', '192.0.2.11']);
    const early = await udpQuery(t.port, 'h0.cache.test', { type: typeFromText('A') });
    expect(addresses(early.packet)).toEqual(['192.0.2.0']);
  });
});
