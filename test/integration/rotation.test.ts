import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const ZONE = `
origin: rr.test
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 60 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    A: [192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4, 192.0.2.5]
    AAAA: ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
  win:
    maxAnswers: 2
    A: [192.0.2.11, 192.0.2.12, 192.0.2.13]
  alias: { CNAME: www }
`;

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ 'rr.test.yaml': ZONE });
});
afterAll(() => t.close());

describe('round robin over the wire', () => {
  it.each([
    { name: 'A', type: Packet.TYPE.A, all: ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5'] },
    { name: 'AAAA', type: Packet.TYPE.AAAA, all: ['2001:db8::1', '2001:db8::2', '2001:db8::3'] },
  ])('$name: every answer is the whole set, each next one rotated by one; over k·n queries each address leads k times', async ({ type, all }) => {
    const n = all.length;
    const k = 4;
    const firsts = new Map<string, number>();
    let previous: string[] | undefined;
    for (let i = 0; i < k * n; i++) {
      const { packet } = await udpQuery(t.port, 'www.rr.test', { type });
      const got = addresses(packet);
      expect([...got].sort()).toEqual([...all].sort());
      if (previous) expect(got).toEqual([...previous.slice(1), previous[0]]);
      previous = got;
      firsts.set(got[0]!, (firsts.get(got[0]!) ?? 0) + 1);
    }
    expect(firsts.size).toBe(n);
    for (const count of firsts.values()) expect(count).toBe(k);
  });

  it('maxAnswers serves a rotating window of that many addresses', async () => {
    const seen: string[][] = [];
    for (let i = 0; i < 6; i++) seen.push(addresses((await udpQuery(t.port, 'win.rr.test')).packet));
    for (const s of seen) expect(s).toHaveLength(2);
    // The window start advances by one each query and wraps over all three addresses.
    const firsts = seen.map((s) => s[0]);
    expect(new Set(firsts).size).toBe(3);
    for (let i = 1; i < seen.length; i++) {
      const order = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
      const prevStart = order.indexOf(seen[i - 1]![0]!);
      expect(seen[i]).toEqual([order[(prevStart + 1) % 3], order[(prevStart + 2) % 3]]);
    }
  });

  it('a name reached through a CNAME advances the same RRset rotation', async () => {
    const direct = addresses((await udpQuery(t.port, 'www.rr.test')).packet);
    const viaAlias = (await udpQuery(t.port, 'alias.rr.test')).packet;
    expect(viaAlias.answers[0]!.type).toBe(Packet.TYPE.CNAME);
    expect(addresses(viaAlias)).toEqual([...direct.slice(1), direct[0]]);
  });
});
