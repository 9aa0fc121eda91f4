/**
 * The dig output parser (test/support/dig.ts), against output captured from
 * the real dig (BIND 9.18) querying the real knotd (3.2) serving CAP_ZONE:
 *   dig @127.0.0.1 -p PORT +norecurse +tries=1 +time=3 +nocmd +nostats ARGS
 * plus a live round trip through the same helpers (startKnot + dig) when
 * knotd and dig are installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, digAll, DigError, parseDig, parseDigAll, type DigResult } from '../support/dig.ts';
import { startKnot, type KnotServer } from '../support/knot.ts';
import { freePort } from '../support/spawn.ts';
import { ensureTool } from '../support/tools.ts';

const BIG = Array.from({ length: 40 }, (_, i) => `big IN A 192.0.2.${i + 1}`).join('\n');
const CAP_ZONE = `$ORIGIN cap.test.
$TTL 300
@ 3600 IN SOA ns1 hostmaster 7 3600 900 1209600 60
@ IN NS ns1
@ IN MX 10 mail
@ IN TXT "v=spf1  two  spaces" "second;string"
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
mail IN AAAA 2001:db8::25
www 30 IN A 192.0.2.10
www 30 IN A 192.0.2.11
blog IN CNAME www
sub IN NS ns.sub
ns.sub IN A 192.0.2.99
odd IN TYPE65280 \\# 4 0a000001
${BIG}
`;

const CAPTURED = {
  /** dig www.cap.test A */
  A_EDNS: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 10375
;; flags: qr aa; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;www.cap.test.\t\t\tIN\tA

;; ANSWER SECTION:
www.cap.test.\t\t30\tIN\tA\t192.0.2.10
www.cap.test.\t\t30\tIN\tA\t192.0.2.11

`,
  /** dig www.cap.test A +noedns */
  A_NOEDNS: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 47588
;; flags: qr aa; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 0

;; QUESTION SECTION:
;www.cap.test.\t\t\tIN\tA

;; ANSWER SECTION:
www.cap.test.\t\t30\tIN\tA\t192.0.2.10
www.cap.test.\t\t30\tIN\tA\t192.0.2.11

`,
  /** dig big.cap.test A +bufsize=512 +ignore */
  TC_IGNORE: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 36317
;; flags: qr aa tc; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;big.cap.test.\t\t\tIN\tA

`,
  /** dig big.cap.test A +bufsize=512 */
  TC_RETRY: `;; Truncated, retrying in TCP mode.
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 47382
;; flags: qr aa; QUERY: 1, ANSWER: 40, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;big.cap.test.\t\t\tIN\tA

;; ANSWER SECTION:
big.cap.test.\t\t300\tIN\tA\t192.0.2.1
big.cap.test.\t\t300\tIN\tA\t192.0.2.2
big.cap.test.\t\t300\tIN\tA\t192.0.2.3
big.cap.test.\t\t300\tIN\tA\t192.0.2.4
big.cap.test.\t\t300\tIN\tA\t192.0.2.5
big.cap.test.\t\t300\tIN\tA\t192.0.2.6
big.cap.test.\t\t300\tIN\tA\t192.0.2.7
big.cap.test.\t\t300\tIN\tA\t192.0.2.8
big.cap.test.\t\t300\tIN\tA\t192.0.2.9
big.cap.test.\t\t300\tIN\tA\t192.0.2.10
big.cap.test.\t\t300\tIN\tA\t192.0.2.11
big.cap.test.\t\t300\tIN\tA\t192.0.2.12
big.cap.test.\t\t300\tIN\tA\t192.0.2.13
big.cap.test.\t\t300\tIN\tA\t192.0.2.14
big.cap.test.\t\t300\tIN\tA\t192.0.2.15
big.cap.test.\t\t300\tIN\tA\t192.0.2.16
big.cap.test.\t\t300\tIN\tA\t192.0.2.17
big.cap.test.\t\t300\tIN\tA\t192.0.2.18
big.cap.test.\t\t300\tIN\tA\t192.0.2.19
big.cap.test.\t\t300\tIN\tA\t192.0.2.20
big.cap.test.\t\t300\tIN\tA\t192.0.2.21
big.cap.test.\t\t300\tIN\tA\t192.0.2.22
big.cap.test.\t\t300\tIN\tA\t192.0.2.23
big.cap.test.\t\t300\tIN\tA\t192.0.2.24
big.cap.test.\t\t300\tIN\tA\t192.0.2.25
big.cap.test.\t\t300\tIN\tA\t192.0.2.26
big.cap.test.\t\t300\tIN\tA\t192.0.2.27
big.cap.test.\t\t300\tIN\tA\t192.0.2.28
big.cap.test.\t\t300\tIN\tA\t192.0.2.29
big.cap.test.\t\t300\tIN\tA\t192.0.2.30
big.cap.test.\t\t300\tIN\tA\t192.0.2.31
big.cap.test.\t\t300\tIN\tA\t192.0.2.32
big.cap.test.\t\t300\tIN\tA\t192.0.2.33
big.cap.test.\t\t300\tIN\tA\t192.0.2.34
big.cap.test.\t\t300\tIN\tA\t192.0.2.35
big.cap.test.\t\t300\tIN\tA\t192.0.2.36
big.cap.test.\t\t300\tIN\tA\t192.0.2.37
big.cap.test.\t\t300\tIN\tA\t192.0.2.38
big.cap.test.\t\t300\tIN\tA\t192.0.2.39
big.cap.test.\t\t300\tIN\tA\t192.0.2.40

`,
  /** dig nothing.cap.test A */
  NXDOMAIN: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 24148
;; flags: qr aa; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;nothing.cap.test.\t\tIN\tA

;; AUTHORITY SECTION:
cap.test.\t\t60\tIN\tSOA\tns1.cap.test. hostmaster.cap.test. 7 3600 900 1209600 60

`,
  /** dig host.sub.cap.test A */
  REFERRAL: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 34059
;; flags: qr; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 2

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;host.sub.cap.test.\t\tIN\tA

;; AUTHORITY SECTION:
sub.cap.test.\t\t300\tIN\tNS\tns.sub.cap.test.

;; ADDITIONAL SECTION:
ns.sub.cap.test.\t300\tIN\tA\t192.0.2.99

`,
  /** dig cap.test MX */
  MX: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 41898
;; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 3

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;cap.test.\t\t\tIN\tMX

;; ANSWER SECTION:
cap.test.\t\t300\tIN\tMX\t10 mail.cap.test.

;; ADDITIONAL SECTION:
mail.cap.test.\t\t300\tIN\tA\t192.0.2.25
mail.cap.test.\t\t300\tIN\tAAAA\t2001:db8::25

`,
  /** dig cap.test TXT */
  TXT: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 58920
;; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;cap.test.\t\t\tIN\tTXT

;; ANSWER SECTION:
cap.test.\t\t300\tIN\tTXT\t"v=spf1  two  spaces" "second;string"

`,
  /** dig blog.cap.test A */
  CNAME: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 61251
;; flags: qr aa; QUERY: 1, ANSWER: 3, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;blog.cap.test.\t\t\tIN\tA

;; ANSWER SECTION:
blog.cap.test.\t\t300\tIN\tCNAME\twww.cap.test.
www.cap.test.\t\t30\tIN\tA\t192.0.2.10
www.cap.test.\t\t30\tIN\tA\t192.0.2.11

`,
  /** dig example.org A */
  REFUSED: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: REFUSED, id: 46968
;; flags: qr; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
; EDE: 20 (Not Authoritative)
;; QUESTION SECTION:
;example.org.\t\t\tIN\tA

`,
  /** dig www.cap.test A +nsid +dnssec */
  NSID_DO: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 45221
;; flags: qr aa; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags: do; udp: 1232
; NSID: 6b 6e 6f 74 2d 63 61 70 74 75 72 65 ("knot-capture")
;; QUESTION SECTION:
;www.cap.test.\t\t\tIN\tA

;; ANSWER SECTION:
www.cap.test.\t\t30\tIN\tA\t192.0.2.10
www.cap.test.\t\t30\tIN\tA\t192.0.2.11

`,
  /** dig www.cap.test A +edns=1 +noednsnegotiation */
  BADVERS: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: BADVERS, id: 40722
;; flags: qr; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;www.cap.test.\t\t\tIN\tA

`,
  /** dig odd.cap.test TYPE65280 */
  UNKNOWN: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 63888
;; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;odd.cap.test.\t\t\tIN\tTYPE65280

;; ANSWER SECTION:
odd.cap.test.\t\t300\tIN\tTYPE65280 \\# 4 0A000001

`,
  /** dig +tcp +keepopen www.cap.test A mail.cap.test AAAA */
  KEEPOPEN: `;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 20004
;; flags: qr aa; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;www.cap.test.\t\t\tIN\tA

;; ANSWER SECTION:
www.cap.test.\t\t30\tIN\tA\t192.0.2.10
www.cap.test.\t\t30\tIN\tA\t192.0.2.11

;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 24174
;; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;mail.cap.test.\t\t\tIN\tAAAA

;; ANSWER SECTION:
mail.cap.test.\t\t300\tIN\tAAAA\t2001:db8::25

`,
};

const WWW = [
  { name: 'www.cap.test.', ttl: 30, class: 'IN', type: 'A', data: '192.0.2.10' },
  { name: 'www.cap.test.', ttl: 30, class: 'IN', type: 'A', data: '192.0.2.11' },
];

describe('parseDig on captured dig output', () => {
  it('header, flags, counts, OPT, question and answer', () => {
    const r = parseDig(CAPTURED.A_EDNS);
    expect(r).toMatchObject({ rcode: 'NOERROR', status: 'NOERROR', opcode: 'QUERY', id: 10375, flags: ['qr', 'aa'] });
    expect(r.counts).toEqual({ query: 1, answer: 2, authority: 0, additional: 1 });
    expect(r.opt).toEqual({ udp: 1232, version: 0 });
    expect(r.edns).toEqual({ version: 0, flags: [], udp: 1232 });
    expect(r.question).toEqual([{ name: 'www.cap.test.', class: 'IN', type: 'A' }]);
    expect(r.answer).toEqual(WWW);
    expect(r.authority).toEqual([]);
    expect(r.additional).toEqual([]);
    expect(r.ednsOptions).toEqual([]);
    expect(r.notes).toEqual([]);
    expect(r.raw).toBe(CAPTURED.A_EDNS);
  });

  it('+noedns: no OPT', () => {
    const r = parseDig(CAPTURED.A_NOEDNS);
    expect(r.opt).toBeUndefined();
    expect(r.edns).toBeUndefined();
    expect(r.answer).toEqual(WWW);
  });

  it('+bufsize=512 +ignore: tc flag, empty answer; without +ignore: the TCP retry, noted', () => {
    const tc = parseDig(CAPTURED.TC_IGNORE);
    expect(tc.flags).toEqual(['qr', 'aa', 'tc']);
    expect(tc.answer).toEqual([]);
    const retried = parseDig(CAPTURED.TC_RETRY);
    expect(retried.flags).not.toContain('tc');
    expect(retried.answer).toHaveLength(40);
    expect(retried.notes).toEqual(['Truncated, retrying in TCP mode.']);
  });

  it('NXDOMAIN with the SOA in authority', () => {
    const r = parseDig(CAPTURED.NXDOMAIN);
    expect(r.rcode).toBe('NXDOMAIN');
    expect(r.authority).toEqual([{ name: 'cap.test.', ttl: 60, class: 'IN', type: 'SOA', data: 'ns1.cap.test. hostmaster.cap.test. 7 3600 900 1209600 60' }]);
  });

  it('referral: no aa, NS in authority, glue in additional', () => {
    const r = parseDig(CAPTURED.REFERRAL);
    expect(r.flags).toEqual(['qr']);
    expect(r.authority).toEqual([{ name: 'sub.cap.test.', ttl: 300, class: 'IN', type: 'NS', data: 'ns.sub.cap.test.' }]);
    expect(r.additional).toEqual([{ name: 'ns.sub.cap.test.', ttl: 300, class: 'IN', type: 'A', data: '192.0.2.99' }]);
  });

  it('MX with A and AAAA in additional; CNAME then its target', () => {
    const mx = parseDig(CAPTURED.MX);
    expect(mx.answer.map((a) => a.data)).toEqual(['10 mail.cap.test.']);
    expect(mx.additional.map((a) => `${a.type} ${a.data}`)).toEqual(['A 192.0.2.25', 'AAAA 2001:db8::25']);
    const cname = parseDig(CAPTURED.CNAME);
    expect(cname.answer.map((a) => a.type)).toEqual(['CNAME', 'A', 'A']);
    expect(cname.answer[0]!.data).toBe('www.cap.test.');
  });

  it('TXT data is kept verbatim: quotes, inner spaces, semicolons', () => {
    expect(parseDig(CAPTURED.TXT).answer[0]!.data).toBe('"v=spf1  two  spaces" "second;string"');
  });

  it('unknown types in RFC 3597 form', () => {
    expect(parseDig(CAPTURED.UNKNOWN).answer[0]).toMatchObject({ type: 'TYPE65280', data: '\\# 4 0A000001' });
    expect(parseDig(CAPTURED.UNKNOWN).question[0]!.type).toBe('TYPE65280');
  });

  it('REFUSED with an EDE option; NSID and the DO flag; BADVERS', () => {
    const refused = parseDig(CAPTURED.REFUSED);
    expect(refused.rcode).toBe('REFUSED');
    expect(refused.ednsOptions).toEqual(['EDE: 20 (Not Authoritative)']);
    const nsid = parseDig(CAPTURED.NSID_DO);
    expect(nsid.edns).toEqual({ version: 0, flags: ['do'], udp: 1232 });
    expect(nsid.ednsOptions).toEqual(['NSID: 6b 6e 6f 74 2d 63 61 70 74 75 72 65 ("knot-capture")']);
    expect(parseDig(CAPTURED.BADVERS).rcode).toBe('BADVERS');
  });

  it('several responses (+keepopen): parseDig gives the first, parseDigAll each', () => {
    const all = parseDigAll(CAPTURED.KEEPOPEN);
    expect(all.map((r) => r.question[0]!.type)).toEqual(['A', 'AAAA']);
    expect(all[1]!.answer).toEqual([{ name: 'mail.cap.test.', ttl: 300, class: 'IN', type: 'AAAA', data: '2001:db8::25' }]);
    expect(parseDig(CAPTURED.KEEPOPEN).answer).toEqual(WWW);
  });

  it('EDNS line with must-be-zero bits (format from BIND message.c)', () => {
    const r = parseDig(CAPTURED.A_EDNS.replace('; EDNS: version: 0, flags:; udp: 1232', '; EDNS: version: 0, flags: do; MBZ: 0x0005, udp: 4096'));
    expect(r.edns).toEqual({ version: 0, flags: ['do'], udp: 4096 });
  });

  it('no response: DigError carrying the output', () => {
    const out = ';; communications error to 127.0.0.1#9: connection refused\n';
    expect(() => parseDig(out)).toThrow(DigError);
  });
});

/** A result without the parts that differ between runs. */
const stable = ({ id: _id, raw: _raw, ...rest }: DigResult) => rest;

describe.skipIf(!ensureTool('dig', 'bind9-dnsutils') || !ensureTool('knotd', 'knot'))('dig() against a live knotd', () => {
  let knot: KnotServer;
  beforeAll(async () => {
    knot = await startKnot('cap.test', CAP_ZONE, { nsid: 'knot-capture' });
  });
  afterAll(() => knot?.close());

  it.each([
    ['A_EDNS', ['www.cap.test', 'A']],
    ['A_EDNS', ['www.cap.test', 'A', '+tcp']],
    ['A_NOEDNS', ['www.cap.test', 'A', '+noedns']],
    ['TC_IGNORE', ['big.cap.test', 'A', '+bufsize=512', '+ignore']],
    ['NXDOMAIN', ['nothing.cap.test', 'A']],
    ['REFERRAL', ['host.sub.cap.test', 'A']],
    ['TXT', ['cap.test', 'TXT']],
    ['NSID_DO', ['www.cap.test', 'A', '+nsid', '+dnssec']],
  ] as const)('%s: %j parses as captured', async (key, args) => {
    expect(stable(await dig(knot.port, [...args]))).toEqual(stable(parseDig(CAPTURED[key])));
  });

  it('digAll returns every response of a +keepopen run', async () => {
    const all = await digAll(knot.port, ['+tcp', '+keepopen', 'www.cap.test', 'A', 'mail.cap.test', 'AAAA']);
    expect(all.map(stable)).toEqual(parseDigAll(CAPTURED.KEEPOPEN).map(stable));
  });

  it('rejects layout-changing options and reports a server that is not there', async () => {
    await expect(dig(knot.port, ['www.cap.test', '+short'])).rejects.toThrow(/layout/);
    const nobody = await freePort();
    await expect(dig(nobody, ['www.cap.test', '+time=1'])).rejects.toThrow(DigError);
  });
});
