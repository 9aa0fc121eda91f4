/**
 * What pointing a domain's NS at rrdns means: a real recursive resolver
 * (Unbound, qname minimisation on) resolves names through a stub zone whose
 * only server is rrdns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../support/dig.ts';
import { startUnbound, type UnboundServer } from '../support/unbound.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { missing } from '../support/tools.ts';

const ZONE = `
origin: resolve.test
ttl: { default: 300, min: 0 }
soa: { mname: ns1, rname: hostmaster, serial: 1, minimum: 30 }
records:
  "@": { NS: ns1 }
  ns1: { A: 127.0.0.1 }
  www: { ttl: 0, A: [192.0.2.10, 192.0.2.11, 192.0.2.12] }
  blog: { CNAME: www }
  "*.apps": { A: 192.0.2.30 }
  a.b.c.deep: { TXT: "deep name" }
`;

describe.skipIf(missing('dig', 'bind9-dnsutils') || missing('unbound', 'unbound'))('resolution through Unbound', () => {
  let rrdns: TestServer;
  let unbound: UnboundServer;
  beforeAll(async () => {
    rrdns = await startTestServer({ 'resolve.test.yaml': ZONE });
    unbound = await startUnbound('resolve.test', rrdns.port);
  });
  afterAll(async () => {
    await unbound?.close();
    await rrdns?.close();
  });

  const resolve = (name: string, type = 'A') => dig(unbound.port, ['+recurse', name, type]);

  it('resolves the round-robin name to the whole set, and rotation reaches clients through the resolver', async () => {
    // TTL 0: Unbound does not cache, so each client query reaches rrdns and gets the next rotation
    // (the harness turns Unbound's own rrset-roundrobin off, so the order is rrdns').
    let previous: string[] | undefined;
    const firsts = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await resolve('www.resolve.test');
      expect(r.status).toBe('NOERROR');
      expect(r.flags).toContain('ra');
      const got = r.answer.map((a) => a.data);
      expect([...got].sort()).toEqual(['192.0.2.10', '192.0.2.11', '192.0.2.12']);
      if (previous) expect(got).toEqual([...previous.slice(1), previous[0]]);
      previous = got;
      firsts.add(got[0]!);
    }
    expect(firsts.size).toBe(3);
  });

  it('follows the CNAME to the addresses', async () => {
    const r = await resolve('blog.resolve.test');
    expect(r.answer[0]).toMatchObject({ type: 'CNAME', data: 'www.resolve.test.' });
    expect(r.answer.filter((a) => a.type === 'A')).toHaveLength(3);
  });

  it('resolves a wildcard name', async () => {
    const r = await resolve('tenant42.apps.resolve.test');
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toEqual([expect.objectContaining({ name: 'tenant42.apps.resolve.test.', data: '192.0.2.30' })]);
  });

  it('resolves a deep name below empty non-terminals with qname minimisation', async () => {
    // Minimisation asks for c.deep, b.c.deep... first; NXDOMAIN there would hide the name.
    const r = await resolve('a.b.c.deep.resolve.test', 'TXT');
    expect(r.status).toBe('NOERROR');
    expect(r.answer[0]!.data).toBe('"deep name"');
  });

  it('reports a nonexistent name as NXDOMAIN', async () => {
    const r = await resolve('missing.resolve.test');
    expect(r.status).toBe('NXDOMAIN');
    expect(r.authority[0]!.type).toBe('SOA');
  });
});
