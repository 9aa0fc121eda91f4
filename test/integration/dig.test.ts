/** The server as a user meets it: real `dig` over UDP and TCP, IPv4 and IPv6. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../support/dig.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { missing } from '../support/tools.ts';

const many = Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`);
const ZONE = `
origin: dig.test
ttl: { default: 300, min: 5, max: 3600 }
soa: { mname: ns1, rname: hostmaster, serial: 3, minimum: 60, ttl: 7200 }
records:
  "@": { NS: [ns1, ns2], MX: "10 mail", TXT: v=spf1 mx -all }
  ns1: { A: 192.0.2.53 }
  ns2: { A: 192.0.2.54 }
  mail: { A: 192.0.2.25 }
  www: { ttl: 30, A: [192.0.2.10, 192.0.2.11, 192.0.2.12], AAAA: ["2001:db8::10", "2001:db8::11"] }
  blog: { CNAME: www }
  "*.apps": { A: 192.0.2.30 }
  deep.ent: { TXT: x }
  big: { A: [${many.join(', ')}] }
  sub: { NS: ns.sub }
  ns.sub: { A: 192.0.2.99 }
`;

describe.skipIf(missing('dig', 'bind9-dnsutils'))('dig against rrdns', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ 'dig.test.yaml': ZONE }, { listen: ['127.0.0.1:0'] });
  });
  afterAll(() => t?.close());

  it.each([
    { name: 'UDP with EDNS', args: [] as string[] },
    { name: 'TCP', args: ['+tcp'] },
    { name: 'UDP without EDNS', args: ['+noedns'] },
  ])('round-robin A over $name: AA, no RA, the whole set', async ({ args }) => {
    const r = await dig(t.port, ['www.dig.test', 'A', ...args]);
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toContain('aa');
    expect(r.flags).not.toContain('ra');
    expect(r.answer.map((a) => a.data).sort()).toEqual(['192.0.2.10', '192.0.2.11', '192.0.2.12']);
    expect(r.answer.every((a) => a.ttl === 30)).toBe(true);
    if (args.includes('+noedns')) expect(r.edns).toBeUndefined();
    else expect(r.edns).toEqual({ version: 0, flags: [], udp: 1232 });
  });

  it('mixed-case names are answered and echoed in the client’s case', async () => {
    const r = await dig(t.port, ['WwW.DiG.tEsT', 'AAAA']);
    expect(r.question[0]!.name).toBe('WwW.DiG.tEsT.');
    expect(r.answer.map((a) => a.name)).toEqual(['WwW.DiG.tEsT.', 'WwW.DiG.tEsT.']);
  });

  it('NXDOMAIN with SOA, TTL = min(SOA TTL, MINIMUM)', async () => {
    const r = await dig(t.port, ['nothing.dig.test', 'A']);
    expect(r.status).toBe('NXDOMAIN');
    expect(r.flags).toContain('aa');
    expect(r.authority).toHaveLength(1);
    expect(r.authority[0]).toMatchObject({ type: 'SOA', ttl: 60, name: 'dig.test.' });
  });

  it('empty non-terminal is NOERROR/NODATA', async () => {
    const r = await dig(t.port, ['ent.dig.test', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toHaveLength(0);
    expect(r.authority[0]!.type).toBe('SOA');
  });

  it('CNAME followed, wildcard synthesised', async () => {
    const c = await dig(t.port, ['blog.dig.test', 'A']);
    expect(c.answer[0]).toMatchObject({ type: 'CNAME', data: 'www.dig.test.' });
    expect(c.answer.slice(1).map((a) => a.type)).toEqual(['A', 'A', 'A']);
    const w = await dig(t.port, ['anything.apps.dig.test', 'A']);
    expect(w.answer).toEqual([expect.objectContaining({ name: 'anything.apps.dig.test.', data: '192.0.2.30' })]);
  });

  it('referral: no AA, NS in authority, glue in additional', async () => {
    const r = await dig(t.port, ['host.sub.dig.test', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.flags).not.toContain('aa');
    expect(r.answer).toHaveLength(0);
    expect(r.authority).toEqual([expect.objectContaining({ name: 'sub.dig.test.', type: 'NS', data: 'ns.sub.dig.test.' })]);
    expect(r.additional).toEqual([expect.objectContaining({ name: 'ns.sub.dig.test.', type: 'A', data: '192.0.2.99' })]);
  });

  it('MX answer carries the exchange address in additional', async () => {
    const r = await dig(t.port, ['dig.test', 'MX']);
    expect(r.additional.filter((a) => a.type === 'A')).toEqual([expect.objectContaining({ name: 'mail.dig.test.', data: '192.0.2.25' })]);
  });

  it('+bufsize=512: a large RRset is truncated with TC and keeps OPT; +tcp gets it whole', async () => {
    // +ignore shows the truncated UDP answer instead of retrying over TCP.
    const udp = await dig(t.port, ['big.dig.test', 'A', '+bufsize=512', '+ignore']);
    expect(udp.flags).toContain('tc');
    expect(udp.answer).toHaveLength(0);
    expect(udp.edns?.udp).toBe(1232);
    const tcp = await dig(t.port, ['big.dig.test', 'A', '+tcp']);
    expect(tcp.flags).not.toContain('tc');
    expect(tcp.answer).toHaveLength(40);
    const edns = await dig(t.port, ['big.dig.test', 'A', '+bufsize=1232']);
    expect(edns.answer).toHaveLength(40);
  });

  it('ANY gets a minimal answer; outside names are REFUSED', async () => {
    const any = await dig(t.port, ['www.dig.test', 'ANY']);
    expect(new Set(any.answer.map((a) => a.type)).size).toBe(1);
    const out = await dig(t.port, ['example.org', 'A']);
    expect(out.status).toBe('REFUSED');
    expect(out.flags).not.toContain('aa');
  });

  it('one TCP connection carries several queries (dig +keepopen)', async () => {
    const r = await dig(t.port, ['+tcp', '+keepopen', 'www.dig.test', 'A', 'www.dig.test', 'AAAA']);
    expect(r.status).toBe('NOERROR');
  });

  it('IPv6 listener answers over UDP and TCP', async () => {
    const v6 = await startTestServer({ 'dig.test.yaml': ZONE }, { listen: ['[::1]:0'] });
    try {
      const udp = await dig(v6.port, ['www.dig.test', 'A'], '::1');
      const tcp = await dig(v6.port, ['www.dig.test', 'A', '+tcp'], '::1');
      expect(udp.answer).toHaveLength(3);
      expect(tcp.answer).toHaveLength(3);
    } finally {
      await v6.close();
    }
  });
});
