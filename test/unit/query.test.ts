/**
 * The query decoder, case by case: every malformation maps to a status and
 * never to an exception or a read past the message; the view is reset
 * between queries so nothing leaks from one packet into the next.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeQuery, QueryStatus, QueryView } from '../../src/wire/query.ts';
import { ednsOption, encodeHeader, encodeName, encodeOpt, rawQuery, typeClass } from '../support/rawdns.ts';

const www = Buffer.concat([encodeName('www.example.test'), typeClass(1, 1)]);
const decode = (msg: Buffer) => {
  const view = new QueryView();
  return { status: decodeQuery(msg, msg.length, view), view };
};

describe('decodeQuery statuses', () => {
  it.each([
    { name: 'shorter than a header is dropped', msg: Buffer.alloc(11), status: QueryStatus.DROP },
    { name: 'a response (QR=1) is dropped, never answered', msg: Buffer.concat([encodeHeader({ qr: true }), www]), status: QueryStatus.DROP },
    { name: 'no question is FORMERR', msg: encodeHeader({ qdcount: 0 }), status: QueryStatus.FORMERR },
    { name: 'two questions are FORMERR', msg: Buffer.concat([encodeHeader({ qdcount: 2 }), www, www]), status: QueryStatus.FORMERR },
    { name: 'another opcode without a question is NOTIMP', msg: encodeHeader({ opcode: 2, qdcount: 0 }), status: QueryStatus.NOTIMP },
    { name: 'a compression pointer in the question is FORMERR', msg: Buffer.concat([encodeHeader(), Buffer.from([0xc0, 0x0c]), typeClass(1, 1)]), status: QueryStatus.FORMERR },
    { name: 'a reserved label type (0x40) is FORMERR', msg: Buffer.concat([encodeHeader(), Buffer.from([0x41, 0x61, 0]), typeClass(1, 1)]), status: QueryStatus.FORMERR },
    { name: 'a name over 255 octets is FORMERR', msg: Buffer.concat([encodeHeader(), encodeName(Array(5).fill('a'.repeat(63)).join('.')), typeClass(1, 1)]), status: QueryStatus.FORMERR },
    { name: 'a label running past the end is FORMERR', msg: Buffer.concat([encodeHeader(), Buffer.from([10, 0x61])]), status: QueryStatus.FORMERR },
    { name: 'a question cut inside QTYPE is FORMERR', msg: Buffer.concat([encodeHeader(), encodeName('a.test'), Buffer.from([0])]), status: QueryStatus.FORMERR },
    { name: 'record counts larger than the message can hold are FORMERR', msg: Buffer.concat([encodeHeader({ arcount: 65535 }), www]), status: QueryStatus.FORMERR },
    { name: 'a second OPT is FORMERR', msg: Buffer.concat([encodeHeader({ arcount: 2 }), www, encodeOpt(), encodeOpt()]), status: QueryStatus.FORMERR },
    { name: 'an OPT not owned by the root is FORMERR', msg: Buffer.concat([encodeHeader({ arcount: 1 }), www, encodeOpt({ owner: encodeName('x') })]), status: QueryStatus.FORMERR },
    { name: 'an EDNS option running past its OPT is FORMERR', msg: Buffer.concat([encodeHeader({ arcount: 1 }), www, encodeOpt({ rdata: Buffer.from([0, 10, 0, 9, 1]) })]), status: QueryStatus.FORMERR },
    { name: 'a truncated EDNS option header is FORMERR', msg: Buffer.concat([encodeHeader({ arcount: 1 }), www, encodeOpt({ rdata: Buffer.from([0, 10]) })]), status: QueryStatus.FORMERR },
    { name: 'an RDLENGTH past the end is FORMERR', msg: Buffer.concat([encodeHeader({ arcount: 1 }), www, encodeOpt({ rdlength: 40 })]), status: QueryStatus.FORMERR },
    { name: 'a plain query is OK', msg: Buffer.concat([encodeHeader(), www]), status: QueryStatus.OK },
    { name: 'unknown EDNS options are OK', msg: Buffer.concat([encodeHeader({ arcount: 1 }), www, encodeOpt({ rdata: ednsOption(65001, Buffer.from('hello')) })]), status: QueryStatus.OK },
  ])('$name', ({ msg, status }) => {
    expect(decode(msg).status).toBe(status);
  });
});

describe('decodeQuery fields', () => {
  it('reads the qname as written and its lower-case key, and the OPT fields', () => {
    const { status, view } = decode(rawQuery('WwW.Example.TEST', { qtype: 28, opt: { udpSize: 4096, do: true } }));
    expect(status).toBe(QueryStatus.OK);
    expect([view.qname, view.qnameKey, view.qnameWireLength, view.qtype, view.qclass]).toEqual(['WwW.Example.TEST', 'www.example.test', 18, 28, 1]);
    expect([view.hasEdns, view.ednsUdpSize, view.ednsDo, view.ednsVersion, view.questionEnd]).toEqual([true, 4096, true, 0, 12 + 18 + 4]);
  });

  it('a reused view forgets the previous query', () => {
    const view = new QueryView();
    const first = rawQuery('a.test', { opt: { udpSize: 4096, do: true } });
    decodeQuery(first, first.length, view);
    const second = encodeHeader({ qdcount: 0 });
    decodeQuery(second, second.length, view);
    expect([view.hasEdns, view.ednsDo, view.qname, view.questionEnd]).toEqual([false, false, '', 12]);
  });

  it('only reads the first `length` octets of a larger buffer', () => {
    const msg = rawQuery('www.example.test');
    const padded = Buffer.concat([msg, Buffer.from([0xff, 0xff, 0xff])]);
    const view = new QueryView();
    expect(decodeQuery(padded, msg.length, view)).toBe(QueryStatus.OK);
    expect(decodeQuery(padded, msg.length - 1, view)).toBe(QueryStatus.FORMERR);
  });

  it('never throws and never reports a question past the message, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, asQuery) => {
        const msg = Buffer.from(bytes);
        if (asQuery && msg.length >= 6) {
          msg[2] = msg[2]! & 0x07; // QR=0, opcode QUERY
          msg[4] = 0;
          msg[5] = 1; // one question
        }
        const view = new QueryView();
        const status = decodeQuery(msg, msg.length, view);
        expect([QueryStatus.OK, QueryStatus.DROP, QueryStatus.FORMERR, QueryStatus.NOTIMP]).toContain(status);
        expect(view.questionEnd).toBeLessThanOrEqual(Math.max(12, msg.length));
        if (status === QueryStatus.OK) expect(view.qnameWireLength).toBeLessThanOrEqual(255);
      }),
      { seed: 1035, numRuns: 3000 },
    );
  });
});

describe('decodeQuery COOKIE option (RFC 7873 §4, §5.2.2)', () => {
  const withOptions = (...options: Buffer[]) => rawQuery('www.example.test', { opt: { rdata: Buffer.concat(options) } });
  const cookie = (n: number) => ednsOption(10, Buffer.alloc(n, 0xab));
  it.each([
    { name: 'a client cookie alone (8 octets)', length: 8, ok: true },
    { name: 'client + an 8-octet server cookie (16)', length: 16, ok: true },
    { name: 'client + our 16-octet server cookie (24)', length: 24, ok: true },
    { name: 'client + a 32-octet server cookie (40)', length: 40, ok: true },
    { name: 'empty', length: 0, ok: false },
    { name: 'shorter than a client cookie (7)', length: 7, ok: false },
    { name: 'a client cookie and a server cookie too short (9)', length: 9, ok: false },
    { name: 'a server cookie of 7 octets (15)', length: 15, ok: false },
    { name: 'a server cookie over 32 octets (41)', length: 41, ok: false },
  ])('$name: recorded when valid, else marked malformed', ({ length, ok }) => {
    const msg = withOptions(ednsOption(65001, Buffer.from('x')), cookie(length));
    const { status, view } = decode(msg);
    // The decoder never answers FORMERR itself for a cookie: with cookies off the option is ignored (RFC 7873 §5.2).
    expect(status).toBe(QueryStatus.OK);
    expect(view.cookieMalformed).toBe(!ok);
    expect(view.cookieLength).toBe(ok ? length : 0);
    if (ok) {
      expect(view.cookieAt).toBe(msg.length - length);
      expect(msg.subarray(view.cookieAt, view.cookieAt + length)).toEqual(Buffer.alloc(length, 0xab));
    } else expect(view.problem).toMatch(/COOKIE option of \d+ octets/);
  });

  it('two COOKIE options are malformed', () => {
    const { status, view } = decode(withOptions(cookie(8), cookie(8)));
    expect(status).toBe(QueryStatus.OK);
    expect(view.cookieMalformed).toBe(true);
    expect(view.problem).toBe('second COOKIE option');
  });

  it('a query without one has none, and a reused view forgets the last one', () => {
    const view = new QueryView();
    const first = withOptions(cookie(24));
    decodeQuery(first, first.length, view);
    view.sourceProven = true;
    view.responseCookieLength = 24;
    const second = rawQuery('www.example.test', { opt: {} });
    expect(decodeQuery(second, second.length, view)).toBe(QueryStatus.OK);
    expect([view.cookieLength, view.cookieMalformed, view.sourceProven, view.responseCookieLength]).toEqual([0, false, false, 0]);
    const bad = withOptions(cookie(3));
    decodeQuery(bad, bad.length, view);
    decodeQuery(second, second.length, view);
    expect(view.cookieMalformed).toBe(false);
  });
});
