/**
 * The query pipeline's zone choice: longest suffix, except DS at the apex of
 * a served child zone, which the served parent answers (RFC 4035 §3.1.4.1);
 * and the rate-limit step (UDP only, before the answer is written).
 */
import { describe, expect, it } from 'vitest';
import { QueryPipeline } from '../../src/server/pipeline.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { QueryView } from '../../src/wire/query.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { ednsOption, rawQuery } from '../support/rawdns.ts';
import { CookieSecrets } from '../../src/cookies/secrets.ts';
import { ServerCookies } from '../../src/cookies/server-cookies.ts';
import { CookieCounts } from '../../src/observability/metrics.ts';
import { decodeMessage, summarize } from '../support/wire-decode.ts';
import { zoneFromText } from '../support/zone-text.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { ResponseLimiter } from '../../src/rrl/limiter.ts';
import { BucketTable } from '../../src/rrl/table.ts';

const parent = zoneFromText('example.test', '$TTL 300\n@ SOA ns1 parent 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nchild NS ns1.child\nns1.child A 192.0.2.2\nchild TYPE43 \\# 4 30390d02\n');
const child = zoneFromText('child.example.test', '$TTL 300\n@ SOA ns1 child 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.2\nwww A 192.0.2.3\n');
const lonely = zoneFromText('lonely.test', '$TTL 300\n@ SOA ns1 lonely 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.4\n');

function ask(store: ZoneStore<ServedZone>, qname: string, qtype: number) {
  const pipeline = new QueryPipeline(store);
  const msg = rawQuery(qname, { qtype });
  const out = pipeline.handle(msg, msg.length, 'udp', new QueryView()) as Buffer;
  return decodeMessage(out);
}

describe('zone choice', () => {
  const both = new ZoneStore<ServedZone>();
  both.replace(new Map([parent, child, lonely].map((z) => [z.originKey, new ServedZone(z)])));

  it.each([
    { name: 'DS at a served child apex comes from the parent', q: 'child.example.test', type: 43, rcode: 0, aa: true, answer: ['child.example.test 43'], authority: [] as string[] },
    { name: 'DS at a child apex in other letter case too', q: 'CHILD.example.test', type: 43, rcode: 0, aa: true, answer: ['child.example.test 43'], authority: [] },
    { name: 'other types at the child apex come from the child', q: 'child.example.test', type: 6, rcode: 0, aa: true, answer: ['child.example.test 6 ns1.child.example.test child.child.example.test'], authority: [] },
    { name: 'names inside the child come from the child', q: 'www.child.example.test', type: 1, rcode: 0, aa: true, answer: ['www.child.example.test 1 192.0.2.3'], authority: [] },
    { name: 'DS at an apex whose parent is not served stays with the zone (NODATA)', q: 'lonely.test', type: 43, rcode: 0, aa: true, answer: [], authority: ['lonely.test 6 ns1.lonely.test lonely.lonely.test'] },
    { name: 'outside every zone: REFUSED', q: 'example.com', type: 1, rcode: 5, aa: false, answer: [], authority: [] },
  ])('$name', ({ q, type, rcode, aa, answer, authority }) => {
    const m = ask(both, q, type);
    expect(m.rcode).toBe(rcode);
    expect(m.aa).toBe(aa);
    expect(summarize(m.answer).map((l) => (type === 43 ? l.split(' ').slice(0, 2).join(' ') : l))).toEqual(answer);
    expect(summarize(m.authority)).toEqual(authority);
  });
});

describe('the rate-limit step', () => {
  const storeOf = (...zones: (typeof parent)[]) => {
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map(zones.map((z) => [z.originKey, new ServedZone(z)])));
    return store;
  };
  const store = storeOf(parent, child);
  const settings = (over: Record<string, unknown> = {}) => parseConfig({ zonesDir: '/x', listen: ['127.0.0.1:53'], rrl: { responsesPerSecond: 2, nxdomainsPerSecond: 2, referralsPerSecond: 2, errorsPerSecond: 2, slip: 1, ...over } }).rrl;
  const limited = (over: Record<string, unknown> = {}) => new QueryPipeline(store, { rrl: new ResponseLimiter(settings(over), new BucketTable(1024)) });
  const send = (p: QueryPipeline, qname: string, qtype: number, transport: 'udp' | 'tcp' = 'udp', proven = false, from = '192.0.2.1') => {
    const msg = rawQuery(qname, { qtype, opt: { udpSize: 1232 }, id: 7 });
    const view = new QueryView();
    const out = p.handle(msg, msg.length, transport, proven ? provenView(view) : view, from);
    return out === null ? null : decodeMessage(out as Buffer);
  };
  /** A view whose sourceProven survives decodeQuery's reset, as if the cookie step had set it after decoding. */
  function provenView(view: QueryView): QueryView {
    Object.defineProperty(view, 'sourceProven', { get: () => true, set: () => {} });
    return view;
  }

  it.each([
    { name: 'an answer', qname: 'ns1.example.test', qtype: 1, rcode: 0, aa: true },
    { name: 'an NXDOMAIN', qname: 'nope.example.test', qtype: 1, rcode: 3, aa: true },
    { name: 'a referral', qname: 'www.child.example.test', qtype: 1, rcode: 0, aa: false, only: parent },
    { name: 'a REFUSED (class error)', qname: 'example.com', qtype: 1, rcode: 5, aa: false },
  ])('over the limit, $name slips as TC=1 without records, rcode, AA, question and OPT kept', ({ qname, qtype, rcode, aa, only }) => {
    // The referral needs the parent served without the child.
    const p = only ? new QueryPipeline(storeOf(only), { rrl: new ResponseLimiter(settings(), new BucketTable(1024)) }) : limited();
    const full = [send(p, qname, qtype), send(p, qname, qtype)];
    for (const m of full) expect(m!.tc).toBe(false);
    const slip = send(p, qname, qtype)!;
    expect(slip.tc).toBe(true);
    expect(slip.rcode).toBe(rcode);
    expect(slip.aa).toBe(aa);
    expect(slip.id).toBe(7);
    expect(slip.question).toHaveLength(1);
    expect(slip.answer).toEqual([]);
    expect(slip.authority).toEqual([]);
    expect(slip.additional.map((r) => r.type)).toEqual([41]);
  });

  it('slip 0 drops: handle returns null', () => {
    const p = limited({ slip: 0 });
    send(p, 'ns1.example.test', 1);
    send(p, 'ns1.example.test', 1);
    expect(send(p, 'ns1.example.test', 1)).toBeNull();
  });

  it('TCP is never limited', () => {
    const p = limited({ slip: 0 });
    for (let i = 0; i < 20; i++) expect(send(p, 'ns1.example.test', 1, 'tcp')!.answer).toHaveLength(1);
  });

  it('a query whose source a server cookie proved (view.sourceProven) is not limited', () => {
    const p = limited({ slip: 0 });
    for (let i = 0; i < 20; i++) expect(send(p, 'ns1.example.test', 1, 'udp', true)!.answer).toHaveLength(1);
    // The same prefix without proof is limited.
    send(p, 'ns1.example.test', 1);
    send(p, 'ns1.example.test', 1);
    expect(send(p, 'ns1.example.test', 1)).toBeNull();
  });

  it('random names share the zone\'s NXDOMAIN account', () => {
    const p = limited({ slip: 0 });
    expect(send(p, 'a1.example.test', 1)!.rcode).toBe(3);
    expect(send(p, 'a2.example.test', 1)!.rcode).toBe(3);
    expect(send(p, 'a3.example.test', 1)).toBeNull();
    // Another zone has its own account.
    expect(send(p, 'a4.child.example.test', 1)!.rcode).toBe(3);
  });
});

describe('cookie step (RFC 7873 §5.2)', () => {
  const store = new ZoneStore<ServedZone>();
  const big = zoneFromText('big.test', '$TTL 300\n@ SOA ns1 big 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n' + Array.from({ length: 60 }, (_, i) => `www A 192.0.2.${i + 1}\n`).join(''));
  store.replace(new Map([parent, big].map((z) => [z.originKey, new ServedZone(z)])));
  const now = 1_700_000_000;
  const pipelineWith = (opts: { enabled?: boolean; require?: boolean } = {}) => {
    const counts = new CookieCounts();
    const server = new ServerCookies(new CookieSecrets(Buffer.alloc(32, 7), 26 * 3600, () => now));
    const pipeline = new QueryPipeline(store, opts.enabled === false ? {} : { cookies: { server, require: opts.require ?? false, counts } });
    return { pipeline, counts };
  };
  const query = (cookie: Buffer | undefined, extra: { udpSize?: number; qname?: string; noEdns?: boolean } = {}) =>
    rawQuery(extra.qname ?? 'ns1.example.test', extra.noEdns ? {} : { opt: { udpSize: extra.udpSize ?? 1232, rdata: cookie ? ednsOption(10, cookie) : Buffer.alloc(0) } });
  const send = (pipeline: QueryPipeline, msg: Buffer, transport: 'udp' | 'tcp' = 'udp', remote = '192.0.2.99') => {
    const view = new QueryView();
    const out = pipeline.handle(msg, msg.length, transport, view, remote) as Buffer;
    const m = decodeMessage(out);
    const opt = m.additional.find((r) => r.type === 41);
    // The COOKIE option in our OPT (we write no other option).
    const cookie = opt && opt.rdata.length > 0 ? (expect(opt.rdata.readUInt16BE(0)).toBe(10), opt.rdata.subarray(4, 4 + opt.rdata.readUInt16BE(2))) : undefined;
    return { m, out, view, opt, cookie, rcode: m.rcode | ((opt ? opt.ttl >>> 24 : 0) << 4) };
  };
  const client = Buffer.from('0102030405060708', 'hex');

  it('a client cookie gets its echo and a server cookie; returning that proves the source', () => {
    const { pipeline, counts } = pipelineWith();
    const first = send(pipeline, query(client));
    expect(first.rcode).toBe(0);
    expect(summarize(first.m.answer)).toEqual(['ns1.example.test 1 192.0.2.1']);
    expect(first.cookie).toHaveLength(24);
    expect(first.cookie!.subarray(0, 8)).toEqual(client);
    expect(first.view.sourceProven).toBe(false);
    const second = send(pipeline, query(first.cookie));
    expect(second.view.sourceProven).toBe(true);
    expect(second.cookie).toEqual(first.cookie);
    expect(Array.from(counts.cells)).toEqual([1, 1, 0, 0, 0, 0]);
  });

  it('a server cookie from another address is invalid, answered normally with a fresh cookie (no BADCOOKIE by default)', () => {
    const { pipeline, counts } = pipelineWith();
    const made = send(pipeline, query(client)).cookie!;
    const r = send(pipeline, query(made), 'udp', '192.0.2.100');
    expect([r.rcode, r.view.sourceProven, r.m.answer.length]).toEqual([0, false, 1]);
    expect(r.cookie).not.toEqual(made);
    expect(counts.cells[2]).toBe(1);
  });

  it.each([
    { name: 'a COOKIE option of 9 octets', cookie: Buffer.alloc(9, 1) },
    { name: 'a COOKIE option of 41 octets', cookie: Buffer.alloc(41, 1) },
  ])('$name is FORMERR with OPT and no cookie echoed', ({ cookie }) => {
    const { pipeline, counts } = pipelineWith();
    const r = send(pipeline, query(cookie));
    expect(r.rcode).toBe(1);
    expect(r.opt).toBeDefined();
    expect(r.cookie).toBeUndefined();
    expect(r.m.question).toHaveLength(1);
    expect(counts.cells[3]).toBe(1);
  });

  it('with cookies off the option is ignored, malformed or not (RFC 7873 §5.2)', () => {
    const { pipeline } = pipelineWith({ enabled: false });
    const bad = send(pipeline, query(Buffer.alloc(9, 1)));
    expect([bad.rcode, bad.m.answer.length, bad.cookie]).toEqual([0, 1, undefined]);
    const good = send(pipeline, query(client));
    expect([good.rcode, good.cookie]).toEqual([0, undefined]);
  });

  it('error responses carry the cookie too (REFUSED)', () => {
    const { pipeline } = pipelineWith();
    const r = send(pipeline, query(client, { qname: 'example.com' }));
    expect(r.rcode).toBe(5);
    expect(r.cookie).toHaveLength(24);
  });

  it('truncation leaves room for the cookie: a response that just fits without one is truncated with one', () => {
    const { pipeline } = pipelineWith();
    const plainPipeline = pipelineWith({ enabled: false }).pipeline;
    const full = send(plainPipeline, query(client, { qname: 'www.big.test' }));
    expect([full.m.tc, full.m.answer.length]).toEqual([false, 60]);
    // A UDP size with room for the answer but not for the 28 octets of COOKIE option on top.
    const udpSize = full.out.length + 10;
    const plain = send(plainPipeline, query(client, { qname: 'www.big.test', udpSize }));
    expect([plain.m.tc, plain.m.answer.length]).toEqual([false, 60]);
    const r = send(pipeline, query(client, { qname: 'www.big.test', udpSize }));
    expect(r.out.length).toBeLessThanOrEqual(udpSize);
    expect(r.m.tc).toBe(true);
    expect(r.cookie).toHaveLength(24);
    const roomy = send(pipeline, query(client, { qname: 'www.big.test', udpSize: full.out.length + 28 }));
    expect([roomy.m.tc, roomy.m.answer.length, roomy.out.length]).toEqual([false, 60, full.out.length + 28]);
  });

  describe('require-cookies', () => {
    it('UDP with a client cookie only: BADCOOKIE (23) with the fresh cookie and no records', () => {
      const { pipeline, counts } = pipelineWith({ require: true });
      const r = send(pipeline, query(client));
      expect(r.rcode).toBe(23);
      expect(r.m.rcode).toBe(7);
      expect(r.m.answer).toHaveLength(0);
      expect(r.cookie).toHaveLength(24);
      // The cookie it got is good: the retry is answered.
      const retry = send(pipeline, query(r.cookie));
      expect([retry.rcode, retry.m.answer.length, retry.view.sourceProven]).toEqual([0, 1, true]);
      expect(counts.cells[4]).toBe(1);
    });
    it('UDP with no cookie at all (EDNS or not): an empty TC answer', () => {
      const { pipeline, counts } = pipelineWith({ require: true });
      for (const msg of [query(undefined), query(undefined, { noEdns: true })]) {
        const r = send(pipeline, msg);
        expect([r.rcode, r.m.tc, r.m.answer.length, r.m.question.length]).toEqual([0, true, 0, 1]);
      }
      expect(counts.cells[5]).toBe(2);
    });
    it('TCP is never required', () => {
      const { pipeline } = pipelineWith({ require: true });
      expect(send(pipeline, query(client), 'tcp').m.answer).toHaveLength(1);
      expect(send(pipeline, query(undefined), 'tcp').m.answer).toHaveLength(1);
    });
  });
});
