/**
 * EDNS Client Subnet (RFC 7871), case by case: the decoder's verdict and view
 * fields for each shape of option (§6), the echoed option byte for byte with
 * the scope the answer's pools configure (§7.2.1), scope 0 everywhere else,
 * the room truncation leaves for it, and the pipeline's FORMERR for a
 * malformed one (with OPT and cookie, without ECS).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { QueryPipeline } from '../../src/server/pipeline.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { decodeQuery, QueryStatus, QueryView, Rcode } from '../../src/wire/query.ts';
import { writeAnswer, writeEmpty } from '../../src/wire/response.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { buildZone } from '../../src/zone/zone.ts';
import { formatIssue } from '../../src/errors.ts';
import { CookieSecrets } from '../../src/cookies/secrets.ts';
import { ServerCookies } from '../../src/cookies/server-cookies.ts';
import { CookieCounts } from '../../src/observability/metrics.ts';
import { ednsOption, rawQuery } from '../support/rawdns.ts';
import { decodeMessage, type DecodedMessage } from '../support/wire-decode.ts';
import { parseNativeText } from '../support/zone-text.ts';

/** ECS option data (RFC 7871 §6): FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS. */
const ecsData = (family: number, source: number, scope: number, address: number[]) => Buffer.from([family >> 8, family & 0xff, source, scope, ...address]);
const ecs = (family: number, source: number, scope: number, address: number[]) => ednsOption(8, ecsData(family, source, scope, address));
const cookie = (n: number) => ednsOption(10, Buffer.alloc(n, 0xab));
const query = (options: Buffer[], q: { qname?: string; qtype?: number; udpSize?: number } = {}) =>
  rawQuery(q.qname ?? 'www.ecs.test', { qtype: q.qtype ?? 1, id: 77, opt: { udpSize: q.udpSize ?? 1232, rdata: Buffer.concat(options) } });
const decode = (msg: Buffer) => {
  const view = new QueryView();
  return { status: decodeQuery(msg, msg.length, view), view };
};

describe('decodeQuery ECS option (RFC 7871 §6, §7.2.1)', () => {
  const V4_24 = [192, 0, 2];
  const V6_56 = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00];
  it.each([
    { name: 'IPv4 /24', data: ecsData(1, 24, 0, V4_24), family: 1, source: 24 },
    { name: 'IPv6 /56', data: ecsData(2, 56, 0, V6_56), family: 2, source: 56 },
    { name: '/0 with FAMILY 0 and no address', data: ecsData(0, 0, 0, []), family: 0, source: 0 },
    { name: 'IPv4 /0 and no address (what dig +subnet=0 sends)', data: ecsData(1, 0, 0, []), family: 1, source: 0 },
    { name: 'IPv4 /32 exact, every bit used', data: ecsData(1, 32, 0, [192, 0, 2, 255]), family: 1, source: 32 },
    { name: 'IPv6 /128 exact', data: ecsData(2, 128, 0, Array(16).fill(0xff) as number[]), family: 2, source: 128 },
    { name: 'IPv4 /23 with its last bit clear', data: ecsData(1, 23, 0, [192, 0, 2]), family: 1, source: 23 },
  ])('$name: recorded', ({ data, family, source }) => {
    const msg = query([ednsOption(65001, Buffer.from('x')), ednsOption(8, data)]);
    const { status, view } = decode(msg);
    expect(status).toBe(QueryStatus.OK);
    expect([view.ecsMalformed, view.ecsFamily, view.ecsSource, view.ecsLength]).toEqual([false, family, source, data.length]);
    expect(view.ecsAt).toBe(msg.length - data.length);
    expect(msg.subarray(view.ecsAt, view.ecsAt + view.ecsLength)).toEqual(data);
  });

  it.each([
    { name: 'address too long (4 octets for /24)', option: ecs(1, 24, 0, [192, 0, 2, 0]), problem: /ADDRESS of 4 octets .* 3/ },
    { name: 'address too short (2 octets for /24)', option: ecs(1, 24, 0, [192, 0]), problem: /ADDRESS of 2 octets .* 3/ },
    { name: 'an address with /0', option: ecs(1, 0, 0, [0]), problem: /ADDRESS of 1 octets/ },
    { name: 'nonzero bits beyond the source prefix (/23, last bit set)', option: ecs(1, 23, 0, [192, 0, 3]), problem: /bits set beyond SOURCE PREFIX-LENGTH 23/ },
    { name: 'nonzero bits beyond the source prefix (IPv6 /60)', option: ecs(2, 60, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x01]), problem: /bits set beyond/ },
    { name: 'family 3', option: ecs(3, 24, 0, V4_24), problem: /FAMILY 3/ },
    { name: 'family 0 with a source prefix', option: ecs(0, 8, 0, [10]), problem: /SOURCE PREFIX-LENGTH 8 for FAMILY 0/ },
    { name: 'IPv4 source longer than 32', option: ecs(1, 33, 0, [1, 2, 3, 4, 0]), problem: /SOURCE PREFIX-LENGTH 33/ },
    { name: 'IPv6 source longer than 128', option: ecs(2, 129, 0, Array(17).fill(0) as number[]), problem: /SOURCE PREFIX-LENGTH 129/ },
    { name: 'scope in query non-zero', option: ecs(1, 24, 24, V4_24), problem: /SCOPE PREFIX-LENGTH 24 in a query/ },
    { name: 'shorter than FAMILY and the prefix lengths', option: ednsOption(8, Buffer.from([0, 1, 24])), problem: /ECS option of 3 octets/ },
    { name: 'two ECS options', option: Buffer.concat([ecs(1, 24, 0, V4_24), ecs(1, 24, 0, V4_24)]), problem: /^second ECS option$/ },
  ])('$name: marked malformed, nothing recorded', ({ option, problem }) => {
    const { status, view } = decode(query([option]));
    // The decoder flags it; the pipeline answers FORMERR after the cookie step (below).
    expect(status).toBe(QueryStatus.OK);
    expect([view.ecsMalformed, view.ecsLength, view.ecsFamily, view.ecsSource]).toEqual([true, 0, 0, 0]);
    expect(view.problem).toMatch(problem);
  });

  it('ECS together with COOKIE: both recorded, each at its own offset', () => {
    const msg = query([cookie(8), ecs(1, 24, 0, V4_24)]);
    const { status, view } = decode(msg);
    expect(status).toBe(QueryStatus.OK);
    expect([view.cookieLength, view.cookieMalformed, view.ecsLength, view.ecsMalformed]).toEqual([8, false, 7, false]);
    expect(msg.subarray(view.cookieAt, view.cookieAt + 8)).toEqual(Buffer.alloc(8, 0xab));
    expect(msg.subarray(view.ecsAt, view.ecsAt + 7)).toEqual(ecsData(1, 24, 0, V4_24));
  });

  it('a reused view forgets the last query\'s ECS option, good or bad', () => {
    const view = new QueryView();
    const first = query([ecs(2, 56, 0, V6_56)]);
    decodeQuery(first, first.length, view);
    const second = query([]);
    decodeQuery(second, second.length, view);
    expect([view.ecsAt, view.ecsLength, view.ecsFamily, view.ecsSource, view.ecsMalformed]).toEqual([0, 0, 0, 0, false]);
    const bad = query([ecs(3, 0, 0, [])]);
    decodeQuery(bad, bad.length, view);
    expect(view.ecsMalformed).toBe(true);
    decodeQuery(second, second.length, view);
    expect(view.ecsMalformed).toBe(false);
  });
});

// A zone with a pool that enables ECS (scope /24 and /48), one whose pool does not, a plain name and a CNAME to the ECS pool.
const ZONE = `
origin: ecs.test
ttl: { default: 300, min: 0 }
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 30 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    A: [192.0.2.10, 192.0.2.11, 192.0.2.12]
    AAAA: ["2001:db8::10", "2001:db8::11"]
    pool: { check: { type: tcp, port: 80 }, balance: { ecs: { ipv4: 24, ipv6: 48 } } }
  plainpool:
    A: [192.0.2.20, 192.0.2.21]
    pool: { check: { type: tcp, port: 80 } }
  static: { A: 192.0.2.30 }
  alias: { CNAME: www }
  big: { A: [${Array.from({ length: 40 }, (_, i) => `10.0.0.${i + 1}`).join(', ')}] }
  bigpool:
    A: [${Array.from({ length: 40 }, (_, i) => `10.0.1.${i + 1}`).join(', ')}]
    pool: { check: { type: tcp, port: 80 }, balance: { ecs: { ipv4: 24, ipv6: 56 } } }
`;

function ecsZone() {
  const { input, issues } = parseNativeText(ZONE, 'ecs.test');
  if (!input) throw new Error(issues.map(formatIssue).join('\n'));
  const built = buildZone(input);
  if (!built.zone) throw new Error(built.issues.map(formatIssue).join('\n'));
  return built.zone;
}

/** The OPT record of a decoded response and its options as [code, data] pairs. */
function optOf(m: DecodedMessage): { rcodeHigh: number; options: [number, Buffer][] } {
  const opts = m.additional.filter((r) => r.type === 41);
  expect(opts).toHaveLength(1);
  const opt = opts[0]!;
  expect(m.additional.at(-1)).toBe(opt);
  const options: [number, Buffer][] = [];
  for (let at = 0; at < opt.rdata.length; ) {
    const code = opt.rdata.readUInt16BE(at);
    const len = opt.rdata.readUInt16BE(at + 2);
    options.push([code, Buffer.from(opt.rdata.subarray(at + 4, at + 4 + len))]);
    at += 4 + len;
  }
  return { rcodeHigh: opt.ttl >>> 24, options };
}
const ecsOptions = (m: DecodedMessage) => optOf(m).options.filter(([code]) => code === 8).map(([, data]) => data);

describe('the echoed ECS option (RFC 7871 §7.2.1), byte for byte', () => {
  const served = new ServedZone(ecsZone());
  const answer = (msg: Buffer, limit = 65535) => {
    const view = new QueryView();
    expect(decodeQuery(msg, msg.length, view)).toBe(QueryStatus.OK);
    const plan = served.plan(view.qname, view.qnameKey, view.qnameWireLength, view.qtype);
    const out = writeAnswer(msg, view, plan, 0, limit);
    return { out, m: decodeMessage(out), view };
  };

  it.each([
    { name: 'IPv4 /24 to the ECS pool: scope 24', qname: 'www.ecs.test', qtype: 1, sent: ecsData(1, 24, 0, [192, 0, 2]), echoed: ecsData(1, 24, 24, [192, 0, 2]) },
    { name: 'IPv6 /56 to the ECS pool: its IPv6 scope, 48 (shorter than the source)', qname: 'www.ecs.test', qtype: 1, sent: ecsData(2, 56, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0]), echoed: ecsData(2, 56, 48, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0]) },
    { name: 'an IPv4 subnet asking AAAA: the IPv4 scope (the scope is the client\'s family, not the record\'s)', qname: 'www.ecs.test', qtype: 28, sent: ecsData(1, 24, 0, [198, 51, 100]), echoed: ecsData(1, 24, 24, [198, 51, 100]) },
    { name: 'a /16 source: scope 24, longer than the source, as §7.2.1 allows', qname: 'www.ecs.test', qtype: 1, sent: ecsData(1, 16, 0, [10, 1]), echoed: ecsData(1, 16, 24, [10, 1]) },
    { name: 'source /0: scope 0 even for the ECS pool', qname: 'www.ecs.test', qtype: 1, sent: ecsData(0, 0, 0, []), echoed: ecsData(0, 0, 0, []) },
    { name: 'a CNAME to the ECS pool: the pool\'s scope', qname: 'alias.ecs.test', qtype: 1, sent: ecsData(1, 24, 0, [192, 0, 2]), echoed: ecsData(1, 24, 24, [192, 0, 2]) },
    { name: 'a pool without balance.ecs: scope 0', qname: 'plainpool.ecs.test', qtype: 1, sent: ecsData(1, 24, 0, [192, 0, 2]), echoed: ecsData(1, 24, 0, [192, 0, 2]) },
    { name: 'a plain name: scope 0', qname: 'static.ecs.test', qtype: 1, sent: ecsData(1, 32, 0, [192, 0, 2, 7]), echoed: ecsData(1, 32, 0, [192, 0, 2, 7]) },
    { name: 'NODATA at the ECS pool (§7.4: negative answers at /0)', qname: 'www.ecs.test', qtype: 16, sent: ecsData(1, 24, 0, [192, 0, 2]), echoed: ecsData(1, 24, 0, [192, 0, 2]) },
    { name: 'NXDOMAIN: scope 0', qname: 'nope.ecs.test', qtype: 1, sent: ecsData(2, 56, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0]), echoed: ecsData(2, 56, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0]) },
  ])('$name', ({ qname, qtype, sent, echoed }) => {
    const { m } = answer(query([ednsOption(8, sent)], { qname, qtype }));
    expect(ecsOptions(m)).toEqual([echoed]);
  });

  it('no ECS in the query: no ECS in the answer, even from the ECS pool (§7.2.1)', () => {
    const { m } = answer(query([], { qname: 'www.ecs.test' }));
    expect(optOf(m).options).toEqual([]);
  });

  it('an error response to a valid ECS query echoes it with scope 0', () => {
    const msg = query([ecs(1, 24, 0, [192, 0, 2])]);
    const view = new QueryView();
    decodeQuery(msg, msg.length, view);
    const m = decodeMessage(writeEmpty(msg, view, Rcode.REFUSED, true));
    expect(m.rcode).toBe(Rcode.REFUSED);
    expect(ecsOptions(m)).toEqual([ecsData(1, 24, 0, [192, 0, 2])]);
  });

  it('any option data: either malformed (FORMERR later) or echoed byte for byte but for the scope, in a well-formed response', () => {
    // Near-valid options mostly: the address sized for the prefix give or take an octet, its spare bits often cleared.
    const option = fc
      .record({
        family: fc.integer({ min: 0, max: 3 }),
        source: fc.integer({ min: 0, max: 130 }),
        scope: fc.constantFrom(0, 0, 0, 1, 24),
        delta: fc.constantFrom(-1, 0, 0, 0, 1),
        clear: fc.boolean(),
        bytes: fc.uint8Array({ minLength: 18, maxLength: 18 }),
      })
      .map(({ family, source, scope, delta, clear, bytes }) => {
        const octets = Math.max(0, ((source + 7) >> 3) + delta);
        const address = [...bytes.subarray(0, octets)];
        const spare = (((source + 7) >> 3) << 3) - source;
        if (clear && delta === 0 && octets > 0) address[octets - 1]! &= 0xff << spare;
        return { family, source, sent: ecsData(family, source, scope, address) };
      });
    let echoedCount = 0;
    fc.assert(
      fc.property(option, ({ family, source, sent }) => {
        const msg = query([ednsOption(8, sent)]);
        const view = new QueryView();
        expect(decodeQuery(msg, msg.length, view)).toBe(QueryStatus.OK);
        if (view.ecsMalformed) return;
        const plan = served.plan(view.qname, view.qnameKey, view.qnameWireLength, view.qtype);
        const [echoed] = ecsOptions(decodeMessage(writeAnswer(msg, view, plan, 0, 512)));
        expect(Buffer.concat([echoed!.subarray(0, 3), echoed!.subarray(4)])).toEqual(Buffer.concat([sent.subarray(0, 3), sent.subarray(4)]));
        expect(echoed![3]).toBe(source === 0 ? 0 : family === 1 ? 24 : 48);
        echoedCount++;
      }),
      { seed: 7871, numRuns: 3000 },
    );
    expect(echoedCount).toBeGreaterThan(100);
  });

  it.each([
    { name: 'a plain set', qname: 'big.ecs.test' },
    { name: 'an ECS pool', qname: 'bigpool.ecs.test' },
  ])('truncation to 512 octets leaves room for the option: $name', ({ qname }) => {
    const sent = ecsData(2, 128, 0, Array(16).fill(0x20) as number[]);
    const msg = query([ednsOption(8, sent)], { qname, udpSize: 512 });
    const whole = answer(msg);
    expect(whole.out.length).toBeGreaterThan(512);
    const { out, m } = answer(msg, 512);
    expect(out.length).toBeLessThanOrEqual(512);
    expect(m.tc).toBe(true);
    expect(ecsOptions(m)).toHaveLength(1);
    expect(ecsOptions(m)[0]!.subarray(0, 3)).toEqual(sent.subarray(0, 3));
    expect(ecsOptions(m)[0]!.subarray(4)).toEqual(sent.subarray(4));
  });
});

describe('the pipeline with ECS', () => {
  const store = new ZoneStore<ServedZone>();
  store.replace(new Map([['ecs.test', new ServedZone(ecsZone())]]));
  const now = 1_700_000_000;
  const withCookies = () => new QueryPipeline(store, { cookies: { server: new ServerCookies(new CookieSecrets(Buffer.alloc(32, 7), 26 * 3600, () => now)), require: false, counts: new CookieCounts() } });
  const ask = (pipeline: QueryPipeline, msg: Buffer) => decodeMessage(pipeline.handle(msg, msg.length, 'udp', new QueryView(), '192.0.2.1') as Buffer);

  it.each([
    { name: 'nonzero trailing bits', option: ecs(1, 23, 0, [192, 0, 3]) },
    { name: 'family 3', option: ecs(3, 24, 0, [192, 0, 2]) },
    { name: 'scope in query non-zero', option: ecs(1, 24, 8, [192, 0, 2]) },
    { name: 'two ECS options', option: Buffer.concat([ecs(1, 24, 0, [192, 0, 2]), ecs(1, 24, 0, [192, 0, 2])]) },
  ])('malformed ECS ($name) is FORMERR with OPT and no ECS', ({ option }) => {
    const m = ask(new QueryPipeline(store), query([option]));
    expect(m.rcode).toBe(Rcode.FORMERR);
    expect(m.answer).toEqual([]);
    expect(m.question).toHaveLength(1);
    expect(optOf(m).options).toEqual([]);
  });

  it('malformed ECS with a client cookie: FORMERR that still carries the cookie (the cookie step runs first)', () => {
    const m = ask(withCookies(), query([cookie(8), ecs(1, 24, 0, [192, 0, 2, 0])]));
    expect(m.rcode).toBe(Rcode.FORMERR);
    const options = optOf(m).options;
    expect(options.map(([code]) => code)).toEqual([10]);
    expect(options[0]![1].subarray(0, 8)).toEqual(Buffer.alloc(8, 0xab));
  });

  it('ECS with a client cookie: the answer carries COOKIE, then ECS with the pool\'s scope', () => {
    const m = ask(withCookies(), query([cookie(8), ecs(1, 24, 0, [192, 0, 2])]));
    expect(m.rcode).toBe(Rcode.NOERROR);
    expect(m.answer).toHaveLength(3);
    const options = optOf(m).options;
    expect(options.map(([code]) => code)).toEqual([10, 8]);
    expect(options[1]![1]).toEqual(ecsData(1, 24, 24, [192, 0, 2]));
  });

  it('REFUSED (outside every zone) to a valid ECS query: echoed with scope 0', () => {
    const m = ask(new QueryPipeline(store), query([ecs(2, 56, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0])], { qname: 'www.example.com' }));
    expect(m.rcode).toBe(Rcode.REFUSED);
    expect(ecsOptions(m)).toEqual([ecsData(2, 56, 0, [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0])]);
  });

  it('BADVERS to a valid ECS query: echoed with scope 0', () => {
    const msg = rawQuery('www.ecs.test', { opt: { version: 1, rdata: ecs(1, 24, 0, [192, 0, 2]) } });
    const m = ask(new QueryPipeline(store), msg);
    expect(m.rcode | (optOf(m).rcodeHigh << 4)).toBe(Rcode.BADVERS);
    expect(ecsOptions(m)).toEqual([ecsData(1, 24, 0, [192, 0, 2])]);
  });

  it('EDNS version 1 with a malformed ECS option: BADVERS, not FORMERR (another version\'s options are not judged)', () => {
    const msg = rawQuery('www.ecs.test', { opt: { version: 1, rdata: ecs(3, 24, 0, [192, 0, 2]) } });
    const m = ask(new QueryPipeline(store), msg);
    expect(m.rcode | (optOf(m).rcodeHigh << 4)).toBe(Rcode.BADVERS);
    expect(optOf(m).options).toEqual([]);
  });
});
