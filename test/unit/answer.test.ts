/**
 * Compiled answers and the response writer, byte for byte: compression
 * (where rdata names may and may not be compressed), bodies shared between
 * qnames, rotation by rdata permutation, cut points and TC, the 65,535-octet
 * bound, and OPT echo. Every message is read back with a strict decoder
 * (test/support/wire-decode.ts) that rejects forward or dangling pointers.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileAnswer, chaosTxtPlan, type AnswerPlan } from '../../src/wire/answer.ts';
import { writeAnswer, writeEmpty } from '../../src/wire/response.ts';
import { decodeQuery, QueryStatus, QueryView, Rcode } from '../../src/wire/query.ts';
import { resolve } from '../../src/resolver/resolve.ts';
import { rotatedWindow } from '../../src/rotation/rotation.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { typeFromText } from '../../src/zone/records.ts';
import type { Zone } from '../../src/zone/zone.ts';
import { rawQuery } from '../support/rawdns.ts';
import { decodeMessage, summarize, type DecodedMessage } from '../support/wire-decode.ts';
import { zoneFromText } from '../support/zone-text.ts';

const ZONE = `
$ORIGIN example.test.
$TTL 300
@         IN SOA ns1 hostmaster 1 3600 900 1209600 60
@         IN NS  ns1
@         IN NS  ns2
@         IN MX  10 mail
ns1       IN A   192.0.2.53
ns2       IN A   192.0.2.54
mail      IN A   192.0.2.25
www       IN A   192.0.2.10
www       IN A   192.0.2.11
www       IN A   192.0.2.12
www       IN A   192.0.2.13
www       IN A   192.0.2.14
v6        IN AAAA 2001:db8::1
v6        IN AAAA 2001:db8::2
v6        IN AAAA 2001:db8::3
cn        IN CNAME www
ptr       IN PTR www
_s._tcp   IN SRV 0 0 5060 mail
unk       IN TYPE65280 \\# 2 0102
*.w       IN A   192.0.2.40
child     IN NS  ns1.child
child     IN NS  ns2.child
child     IN NS  ns.elsewhere.test.
child     IN NS  mail
ns1.child IN A   192.0.2.153
ns2.child IN A   192.0.2.154
`;
const zone = zoneFromText('example.test', ZONE, { maxAnswers: { www: 5 } });

interface Ask {
  edns?: boolean;
  bufsize?: number;
  do?: boolean;
  limit?: number;
  k?: number;
  rd?: boolean;
}

function query(qname: string, type: string, ask: Ask = {}) {
  const msg = rawQuery(qname, { qtype: typeFromText(type)!, rd: ask.rd, opt: ask.edns === false ? undefined : { udpSize: ask.bufsize ?? 1232, do: ask.do } });
  const view = new QueryView();
  expect(decodeQuery(msg, msg.length, view)).toBe(QueryStatus.OK);
  return { msg, view };
}

function planFor(z: Zone, view: QueryView): AnswerPlan {
  const res = resolve(z, view.qname, view.qnameKey, view.qtype);
  return compileAnswer(res, { qnameKey: view.qnameKey, qnameWireLength: view.qnameWireLength, sharedSuffix: res.sharedSuffix });
}

function answer(z: Zone, qname: string, type: string, ask: Ask = {}): DecodedMessage {
  const { msg, view } = query(qname, type, ask);
  const limit = ask.limit ?? (ask.edns === false ? 512 : Math.min(Math.max(ask.bufsize ?? 1232, 512), 1232));
  return decodeMessage(writeAnswer(msg, view, planFor(z, view), ask.k ?? 0, limit));
}

describe('rdata name compression (RFC 3597 §4)', () => {
  it.each([
    { name: 'NS targets are compressed', q: 'example.test', type: 'NS', compressed: true },
    { name: 'MX exchange is compressed', q: 'example.test', type: 'MX', compressed: true },
    { name: 'SOA mname and rname are compressed', q: 'example.test', type: 'SOA', compressed: true },
    { name: 'CNAME target is compressed', q: 'cn.example.test', type: 'CNAME', compressed: true },
    { name: 'PTR target is compressed', q: 'ptr.example.test', type: 'PTR', compressed: true },
    { name: 'SRV target is never compressed (RFC 2782)', q: '_s._tcp.example.test', type: 'SRV', compressed: false },
  ])('$name', ({ q, type, compressed }) => {
    const m = answer(zone, q, type);
    expect(m.answer.length).toBeGreaterThan(0);
    for (const r of m.answer) expect(r.compressedRdata).toBe(compressed);
    // Whatever the compression, the names read back are the zone's.
    expect(m.answer.every((r) => r.names!.every((n) => n.toLowerCase().endsWith('example.test')))).toBe(true);
  });

  it('an unknown type is copied as opaque octets', () => {
    const m = answer(zone, 'unk.example.test', 'TYPE65280');
    expect(m.answer.map((r) => r.rdata.toString('hex'))).toEqual(['0102']);
  });

  it('compressed NS answers are smaller than the same names written in full', () => {
    const m = answer(zone, 'example.test', 'NS');
    // "ns1.example.test" in full is 18 octets; compressed against the question it is 4 + 2.
    expect(m.answer.map((r) => r.rdata.length)).toEqual([6, 6]);
  });
});

describe('bodies shared between qnames', () => {
  it('glue in a referral from below the cut is owned by the NS names, whatever was asked first', () => {
    const served = new ServedZone(zone);
    const ask = (qname: string) => {
      const { msg, view } = query(qname, 'A');
      const plan = served.plan(view.qname, view.qnameKey, view.qnameWireLength, view.qtype);
      return decodeMessage(writeAnswer(msg, view, plan, 0, 1232));
    };
    // Same length, same cut: the second answer reuses the first's body.
    for (const order of [['ns1.child.example.test', 'www.child.example.test'], ['WWW.Child.example.test', 'ns1.child.example.TEST']]) {
      for (const q of order) {
        const m = ask(q);
        expect(m.aa).toBe(false);
        expect(summarize(m.authority).sort()).toEqual(['child.example.test 2 mail.example.test', 'child.example.test 2 ns.elsewhere.test', 'child.example.test 2 ns1.child.example.test', 'child.example.test 2 ns2.child.example.test']);
        expect(summarize(m.additional).sort()).toEqual(['mail.example.test 1 192.0.2.25', 'ns1.child.example.test 1 192.0.2.153', 'ns2.child.example.test 1 192.0.2.154']);
      }
    }
  });

  const label = fc.stringMatching(/^[a-zA-Z0-9]{1,12}$/);
  /** qb: qa with other letters and some of its dots made '-': the same length, another name, maybe another depth. */
  const sameLength = (qa: string, prefixLength: number, letters: string, merge: boolean[]) =>
    qa
      .split('')
      .map((c, i) => (i >= prefixLength ? c : c === '.' ? (merge[i % merge.length] ? '-' : '.') : letters[i % letters.length]!))
      .join('');
  const shapes = [
    { name: 'referral below a cut', suffix: 'child.example.test', type: 'A' },
    { name: 'wildcard synthesis', suffix: 'w.example.test', type: 'A' },
    { name: 'NXDOMAIN', suffix: 'nx.example.test', type: 'MX' },
  ];
  const sections = (m: DecodedMessage) => [summarize(m.answer), summarize(m.authority), summarize(m.additional)];
  it.each(shapes)('$name: a shared body does not depend on the qname beyond its length', ({ suffix, type }) => {
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), fc.stringMatching(/^[a-zA-Z0-9]{1,8}$/), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), (a, letters, merge) => {
        const prefix = a.join('.');
        const qa = `${prefix}.${suffix}`;
        const qb = sameLength(qa, prefix.length, letters, merge);
        const ra = resolve(zone, qa, qa.toLowerCase(), typeFromText(type)!);
        const rb = resolve(zone, qb, qb.toLowerCase(), typeFromText(type)!);
        expect(ra.sharedKey).toBeDefined();
        if (ra.sharedKey !== rb.sharedKey) return;
        const pa = planFor(zone, query(qa, type).view);
        const pb = planFor(zone, query(qb, type).view);
        expect(pa.body.equals(pb.body)).toBe(true);
        // The body compiled for a, sent to b, reads as b's own answer.
        const { msg, view } = query(qb, type);
        expect(sections(decodeMessage(writeAnswer(msg, view, pa, 0, 1232)))).toEqual(sections(decodeMessage(writeAnswer(msg, view, pb, 0, 1232))));
      }),
      { seed: 8, numRuns: 300 },
    );
  });

  it('a wildcard CNAME chain that comes back to the qname is not shared', () => {
    const z = zoneFromText('example.test', `$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n*.a CNAME foo.a\n`);
    const foo = resolve(z, 'foo.a.example.test', 'foo.a.example.test', 1);
    const bar = resolve(z, 'bar.a.example.test', 'bar.a.example.test', 1);
    expect(foo.answer).toHaveLength(1);
    expect(bar.answer).toHaveLength(2);
    expect(foo.sharedKey).toBeUndefined();
    const served = new ServedZone(z);
    const count = (q: string) => {
      const { msg, view } = query(q, 'A');
      return decodeMessage(writeAnswer(msg, view, served.plan(view.qname, view.qnameKey, view.qnameWireLength, 1), 0, 1232)).answer.length;
    };
    expect([count('bar.a.example.test'), count('foo.a.example.test'), count('baz.a.example.test')]).toEqual([2, 1, 2]);
  });
});

describe('rotation by rdata permutation', () => {
  const www = zone.nodes.get('www.example.test')!.rrsets.get(1)!;
  const text = (r: { address: string }) => r.address;
  it.each([0, 1, 2, 3, 4, 5, 9])('offset %i serves the cyclic window rotation.ts defines', (k) => {
    const m = answer(zone, 'www.example.test', 'A', { k: k % 5 });
    const expected = rotatedWindow(www.records, k % 5).map((r) => text(r as { address: string }));
    expect(m.answer.map((r) => [...r.rdata].join('.'))).toEqual(expected);
  });

  it('a maxAnswers window rotates through every record', () => {
    const z = zoneFromText('example.test', ZONE, { maxAnswers: { www: 2 } });
    const seen = [0, 1, 2, 3, 4].map((k) => answer(z, 'www.example.test', 'A', { k }).answer.map((r) => [...r.rdata].join('.')));
    expect(seen).toEqual([0, 1, 2, 3, 4].map((k) => rotatedWindow(www.records, k, 2).map((r) => text(r as { address: string }))));
  });

  it('AAAA sets rotate too, and the body itself is never changed', () => {
    const { msg, view } = query('v6.example.test', 'AAAA');
    const plan = planFor(zone, view);
    const before = Buffer.from(plan.body);
    const firsts = [0, 1, 2].map((k) => decodeMessage(writeAnswer(msg, view, plan, k, 1232)).answer[0]!.rdata.toString('hex'));
    expect(new Set(firsts).size).toBe(3);
    expect(plan.body.equals(before)).toBe(true);
  });

  it('a name with 4,000 A records compiles to one body of its own size', () => {
    const lines = Array.from({ length: 4000 }, (_, i) => `big A 10.${(i >> 8) & 255}.${i & 255}.1`).join('\n');
    const z = zoneFromText('example.test', `$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n${lines}\n`);
    const { msg, view } = query('big.example.test', 'A');
    const plan = planFor(z, view);
    expect(plan.body.length).toBe(4000 * 16);
    expect(plan.rotation!.count).toBe(4000);
    const m = decodeMessage(writeAnswer(msg, view, plan, 3999, 65535));
    expect(m.answer).toHaveLength(4000);
    expect([...m.answer[0]!.rdata].join('.')).toBe('10.15.159.1');
  });
});

describe('cuts and TC', () => {
  const bigTxt = Array.from({ length: 10 }, (_, i) => `t TXT "${String(i).padStart(2, '0')}${'x'.repeat(98)}"`).join('\n');
  const manyMx = Array.from({ length: 12 }, (_, i) => `m MX ${i} mx${i}\nmx${i} A 192.0.2.${i + 1}\nmx${i} AAAA 2001:db8::${i + 1}`).join('\n');
  const manyGlue = Array.from({ length: 12 }, (_, i) => `d NS ns${i}.d\nns${i}.d A 192.0.2.${i + 1}\nns${i}.d AAAA 2001:db8::${i + 1}`).join('\n');
  const siblings = Array.from({ length: 12 }, (_, i) => `s NS sib${i}\nsib${i} A 192.0.2.${i + 1}\nsib${i} AAAA 2001:db8::${i + 1}`).join('\n');
  const z = zoneFromText('example.test', `$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n${bigTxt}\n${manyMx}\n${manyGlue}\n${siblings}\n`);

  it.each([
    { name: 'an answer over 512 octets without EDNS is cut with TC', q: 't', type: 'TXT', edns: false, tc: true, an: 0 },
    { name: 'the same answer fits 1232', q: 't', type: 'TXT', edns: true, tc: false, an: 10 },
    { name: 'dropping additional addresses only does not set TC (RFC 2181 §9)', q: 'm', type: 'MX', edns: false, tc: false, an: 12 },
    { name: 'in-domain glue that does not fit sets TC (RFC 9471)', q: 'd', type: 'A', edns: false, tc: true, an: 0 },
    { name: 'sibling glue that does not fit does not', q: 's', type: 'A', edns: false, tc: false, an: 0 },
  ])('$name', ({ q, type, edns, tc, an }) => {
    const m = answer(z, `${q}.example.test`, type, { edns });
    expect(m.tc).toBe(tc);
    expect(m.answer).toHaveLength(an);
    // A referral keeps its NS set: only glue is cut.
    if (q === 'd' || q === 's') expect(m.authority).toHaveLength(12);
  });

  it('a referral whose glue fits keeps all of it and no TC', () => {
    const m = answer(z, 'www.d.example.test', 'A', { bufsize: 4096, limit: 65535 });
    expect(m.tc).toBe(false);
    expect(m.additional.filter((r) => r.type !== 41)).toHaveLength(24);
  });

  it('an answer larger than any message is cut at an RRset boundary with TC, even over TCP, and never throws', () => {
    const glue = Array.from({ length: 200 }, (_, i) => `huge NS n${i}.huge\n` + Array.from({ length: 10 }, (_, j) => `n${i}.huge A 10.0.${i}.${j + 1}\nn${i}.huge AAAA 2001:db8::${i.toString(16)}:${j + 1}`).join('\n')).join('\n');
    const big = zoneFromText('example.test', `$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n${glue}\n`);
    const { msg, view } = query('x.huge.example.test', 'A');
    const plan = planFor(big, view);
    const out = writeAnswer(msg, view, plan, 0, 65535);
    expect(out.length).toBeLessThanOrEqual(65535);
    const m = decodeMessage(out);
    expect(m.tc).toBe(true);
    expect(m.authority).toHaveLength(200);
    expect(m.additional.length).toBeGreaterThan(0);
  });
});

describe('header and OPT', () => {
  it('echoes ID, RD, CD and the question in the client case; AA on; RA never', () => {
    const { msg, view } = query('WwW.Example.TEST', 'A', { rd: true });
    msg[3] = msg[3]! | 0x10; // CD
    decodeQuery(msg, msg.length, view);
    const out = writeAnswer(msg, view, planFor(zone, view), 0, 1232);
    const m = decodeMessage(out);
    expect([m.id, m.qr, m.aa, m.rd, m.cd, (out[3]! & 0x80) !== 0]).toEqual([0x1234, true, true, true, true, false]);
    expect(m.question[0]!.name).toBe('WwW.Example.TEST');
    // Owners compressed to the question read back in the client's case.
    expect(m.answer[0]!.name).toBe('WwW.Example.TEST');
  });

  it('OPT is answered with our UDP size and DO copied; BADVERS goes in the extended RCODE', () => {
    for (const dnssecOk of [false, true]) {
      const { msg, view } = query('www.example.test', 'A', { do: dnssecOk, bufsize: 4096 });
      const m = decodeMessage(writeAnswer(msg, view, planFor(zone, view), 0, 1232));
      const opt = m.additional.find((r) => r.type === 41)!;
      expect(opt.cls).toBe(1232);
      expect((opt.ttl >>> 15) & 1).toBe(dnssecOk ? 1 : 0);
    }
    const { msg, view } = query('www.example.test', 'A');
    const bad = decodeMessage(writeEmpty(msg, view, Rcode.BADVERS, true));
    expect(bad.rcode).toBe(0);
    expect(bad.additional[0]!.ttl >>> 24).toBe(1);
  });

  it('a truncated answer keeps its OPT', () => {
    const { msg, view } = query('example.test', 'NS', { bufsize: 512 });
    const plan = planFor(zone, view);
    const m = decodeMessage(writeAnswer(msg, view, plan, 0, msg.length + 11 + 5));
    expect(m.tc).toBe(true);
    expect(m.additional.map((r) => r.type)).toEqual([41]);
  });

  it('the CHAOS identity answer is owned by whichever name was asked', () => {
    const plan = chaosTxtPlan('ns1 rrdns');
    for (const q of ['id.server', 'HOSTNAME.bind']) {
      const msg = rawQuery(q, { qtype: 16, qclass: 3 });
      const view = new QueryView();
      decodeQuery(msg, msg.length, view);
      const m = decodeMessage(writeAnswer(msg, view, plan, 0, 512));
      expect(m.answer.map((r) => [r.name, r.cls, r.rdata.subarray(1).toString()])).toEqual([[q, 3, 'ns1 rrdns']]);
    }
  });
});
