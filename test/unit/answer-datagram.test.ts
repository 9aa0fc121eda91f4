/**
 * answerDatagram (the UDP paths: the answer written into the caller's send
 * buffer, the peer as parsed words) and handle (a Buffer per answer, the
 * peer as text) must send the same bytes for every message. Two identical
 * pipelines (their own zones, rotation counters, rate-limit tables) are
 * asked the same messages in the same order, one through each entry, and
 * every answer is compared octet for octet: over the differential corpus
 * (test/support/zone-gen.ts, the generator diff-fuzz.test.ts serves to Knot)
 * and over the answer fixture's pool (weighted rotation, resolver-aware TTLs
 * and steering, ECS), with rate limiting low enough to drop and slip,
 * cookies (client-only, valid server cookie, bad, malformed, required),
 * ECS options good and bad, errors (FORMERR, NOTIMP, BADVERS, REFUSED) and
 * truncation.
 */
import { describe, expect, it } from 'vitest';
import { QueryPipeline, type PipelineOptions } from '../../src/server/pipeline.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { QueryView } from '../../src/wire/query.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { Peer } from '../../src/zone/address.ts';
import { ResponseLimiter } from '../../src/rrl/limiter.ts';
import { BucketTable } from '../../src/rrl/table.ts';
import { CookieSecrets } from '../../src/cookies/secrets.ts';
import { ServerCookies } from '../../src/cookies/server-cookies.ts';
import { CookieCounts } from '../../src/observability/metrics.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { encodeQuery, type FuzzQuery } from '../support/diff-compare.ts';
import { generateBatch } from '../support/zone-gen.ts';
import { zoneFromText } from '../support/zone-text.ts';
import { ednsOption, rawQuery } from '../support/rawdns.ts';
import { answerFixture, clientCookieOption, ecsOption, ORIGIN, QUERY_KINDS } from '../support/answer-fixture.ts';

const SEED = 20261202;
const SOURCES = ['192.0.2.7', '198.51.100.9', '2001:db8::53', '::ffff:203.0.113.5', '10.1.2.3'];
const SECRET_CLOCK = () => 1_700_000_000;

interface Mode {
  name: string;
  rrl?: { rate: number; slip: number };
  cookies?: { require: boolean };
}

const MODES: Mode[] = [
  { name: 'plain' },
  { name: 'rrl (drops and slips) + cookies', rrl: { rate: 2, slip: 2 }, cookies: { require: false } },
  { name: 'require-cookies', cookies: { require: true } },
];

function optionsFor(mode: Mode): PipelineOptions {
  const opts: PipelineOptions = {};
  if (mode.rrl) {
    const r = mode.rrl.rate;
    const settings = parseConfig({ zonesDir: '/x', listen: ['127.0.0.1:53'], rrl: { responsesPerSecond: r, nodataPerSecond: r, nxdomainsPerSecond: r, referralsPerSecond: r, errorsPerSecond: r, slip: mode.rrl.slip } }).rrl;
    opts.rrl = new ResponseLimiter(settings, new BucketTable(4096));
  }
  if (mode.cookies) opts.cookies = { server: new ServerCookies(new CookieSecrets(Buffer.alloc(32, 7), 26 * 3600, SECRET_CLOCK)), require: mode.cookies.require, counts: new CookieCounts() };
  return opts;
}

/** Asks `msgs` of `a` through handle and of `b` through answerDatagram; returns how many got an answer, and the differences. */
function compareEntries(a: QueryPipeline, b: QueryPipeline, msgs: readonly Buffer[]): { answered: number; empty: number; differences: string[] } {
  const va = new QueryView();
  const vb = new QueryView();
  const peer = new Peer();
  const out = Buffer.alloc(4 * 1232 + 7);
  const differences: string[] = [];
  let answered = 0;
  let empty = 0;
  msgs.forEach((msg, i) => {
    const source = SOURCES[i % SOURCES.length]!;
    const viaHandle = a.handle(msg, msg.length, 'udp', va, source);
    expect(viaHandle === null || Buffer.isBuffer(viaHandle)).toBe(true);
    // Words as the native path gives them (IPv4-mapped folded), at an odd offset, over stale bytes.
    const probe = new Peer();
    probe.setText(source, 5353);
    peer.setWords(probe.address.family as 4 | 6, probe.address.w[0]!, probe.address.w[1]!, probe.address.w[2]!, probe.address.w[3]!, 5353);
    out.fill(0xa5);
    const at = 7 + (i % 3) * 1232;
    const n = b.answerDatagram(msg, msg.length, vb, peer, out, at);
    const viaDatagram = n === 0 ? null : out.subarray(at, at + n);
    if (viaHandle === null) empty++;
    else answered++;
    const ha = viaHandle === null ? 'none' : (viaHandle as Buffer).toString('hex');
    const da = viaDatagram === null ? 'none' : viaDatagram.toString('hex');
    if (ha !== da && differences.length < 5) differences.push(`message ${i} (${msg.toString('hex')}) from ${source}:\n  handle         ${ha}\n  answerDatagram ${da}`);
  });
  return { answered, empty, differences };
}

describe('answerDatagram sends what handle sends', () => {
  const batch = generateBatch(SEED, 0, 40, 40, { escapedDots: true });
  const storeOf = () => {
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map(batch.zones.map((z) => {
      const zone = zoneFromText(z.origin.join('.'), z.text);
      return [zone.originKey, new ServedZone(zone)] as const;
    })));
    return store;
  };
  // Each generated query as sent, then variants: no EDNS, a small UDP size (truncation), cookies, ECS.
  const corpus: Buffer[] = [];
  batch.queries.forEach((q: FuzzQuery, i) => {
    corpus.push(encodeQuery({ ...q, transport: 'udp' }, i));
    const labels = q.labels.join('.');
    if (i % 4 === 0) corpus.push(rawQuery(labels, { id: i, qtype: 255, opt: { udpSize: 512 } }));
    if (i % 4 === 1) corpus.push(rawQuery(labels, { id: i, qtype: 1, opt: { udpSize: 1232, rdata: clientCookieOption(i) } }));
    if (i % 4 === 2) corpus.push(rawQuery(labels, { id: i, qtype: 28, opt: { udpSize: 1232, rdata: ecsOption(198, 51, i & 255) } }));
    if (i % 4 === 3) corpus.push(rawQuery(labels, { id: i, qtype: 15 }));
  });

  it.each(MODES)('over the differential corpus: $name', (mode) => {
    expect(batch.queries.length).toBeGreaterThan(1000);
    const r = compareEntries(new QueryPipeline(storeOf(), optionsFor(mode)), new QueryPipeline(storeOf(), optionsFor(mode)), corpus);
    expect(r.differences).toEqual([]);
    expect(r.answered).toBeGreaterThan(corpus.length / 4);
    // With rate limiting at 2 per second, some responses are dropped (no answer from either).
    if (mode.rrl) expect(r.empty).toBeGreaterThan(0);
  });

  it.each(MODES)('over the pool fixture, errors, cookies, ECS and truncation: $name', async (mode) => {
    const fa = answerFixture({ rrl: mode.rrl !== undefined, cookies: mode.cookies !== undefined, rate: mode.rrl?.rate, requireCookies: mode.cookies?.require });
    const fb = answerFixture({ rrl: mode.rrl !== undefined, cookies: mode.cookies !== undefined, rate: mode.rrl?.rate, requireCookies: mode.cookies?.require });
    await fa.warm();
    await fb.warm();
    // A valid server cookie for 192.0.2.7 (the first source), as a client would return it.
    // Asked of both, so that their rotation counters stay in step.
    const first = fa.pipeline.handle(QUERY_KINDS.static(), QUERY_KINDS.static().length, 'tcp', new QueryView(), SOURCES[0]) as Buffer | null;
    fb.pipeline.handle(QUERY_KINDS.static(), QUERY_KINDS.static().length, 'tcp', new QueryView(), SOURCES[0]);
    const cookieAt = first ? first.indexOf(Buffer.from('000a0018', 'hex')) : -1;
    const serverCookie = cookieAt >= 0 ? first!.subarray(cookieAt + 4, cookieAt + 28) : Buffer.alloc(24, 1);
    const msgs: Buffer[] = [];
    for (let round = 0; round < 12; round++) {
      for (const make of Object.values(QUERY_KINDS)) msgs.push(make());
      msgs.push(
        rawQuery(`pool.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, rdata: Buffer.concat([ednsOption(10, serverCookie), ecsOption(203, 0, 113)]) } }),
        rawQuery(`www.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, rdata: ednsOption(10, Buffer.alloc(24, 9)) } }),
        rawQuery(`www.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, rdata: ednsOption(10, Buffer.alloc(5, 1)) } }),
        rawQuery(`www.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, rdata: ednsOption(8, Buffer.from([0, 9, 24, 0, 1, 2, 3])) } }),
        rawQuery(`www.${ORIGIN}`, { qtype: 1, opt: { udpSize: 1232, version: 1 } }),
        rawQuery(`www.${ORIGIN}`, { qtype: 1, opcode: 2 }),
        rawQuery(`www.${ORIGIN}`, { qtype: 1, qdcount: 2 }),
        rawQuery(`www.${ORIGIN}`, { qtype: 252 }),
        rawQuery('id.server', { qtype: 16, qclass: 3 }),
        rawQuery(`${ORIGIN}`, { qtype: 255, opt: { udpSize: 512 } }),
        rawQuery(`x.sub.${ORIGIN}`, { qtype: 1 }),
        Buffer.from('0001', 'hex'),
      );
    }
    const r = compareEntries(fa.pipeline, fb.pipeline, msgs);
    expect(r.differences).toEqual([]);
    expect(r.answered).toBeGreaterThan(msgs.length / 4);
  });

  it('a big answer is cut the same way for a small UDP size (TC set)', () => {
    const big = zoneFromText('big.test', '$TTL 300\n@ SOA ns1 big 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n' + Array.from({ length: 60 }, (_, i) => `www A 192.0.2.${i + 1}\n`).join(''));
    const storeOf = () => {
      const store = new ZoneStore<ServedZone>();
      store.replace(new Map([[big.originKey, new ServedZone(big)]]));
      return store;
    };
    const msgs = [rawQuery('www.big.test', { qtype: 1 }), rawQuery('www.big.test', { qtype: 1, opt: { udpSize: 600 } }), rawQuery('www.big.test', { qtype: 1, opt: { udpSize: 4096 } })];
    const a = new QueryPipeline(storeOf());
    const r = compareEntries(a, new QueryPipeline(storeOf()), [...msgs, ...msgs]);
    expect(r.differences).toEqual([]);
    const cut = a.handle(msgs[0]!, msgs[0]!.length, 'udp', new QueryView(), '192.0.2.1') as Buffer;
    expect(cut[2]! & 0x02).toBe(0x02);
  });
});
