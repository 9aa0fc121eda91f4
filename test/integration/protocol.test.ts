import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { addresses, buildQuery, udpExchange, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { parseHeader } from '../support/rawdns.ts';

const many = Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`);
const ZONE = `
origin: proto.test
ttl: { default: 300 }
soa: { mname: ns1, rname: hostmaster, serial: 7, minimum: 45, ttl: 3600 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www: { A: [192.0.2.1, 192.0.2.2] }
  big: { A: [${many.join(', ')}] }
`;

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ 'proto.test.yaml': ZONE }, { identity: 'rrdns-test-1' });
});
afterAll(() => t.close());

/** Raw header fields of a reply, with the section counts under short names. */
const header = (raw: Buffer) => {
  const h = parseHeader(raw);
  return { ...h, qd: h.qdcount, an: h.ancount, ns: h.nscount, ar: h.arcount };
};

describe('header flags', () => {
  it('sets AA, never RA, copies ID and RD', async () => {
    const q = buildQuery('www.proto.test', { id: 4242 });
    const rdOn = header(await udpExchange(t.port, q));
    expect(rdOn).toMatchObject({ id: 4242, qr: true, aa: true, ra: false, rd: true, rcode: 0, an: 2 });
    q[2] = q[2]! & ~0x01;
    const rdOff = header(await udpExchange(t.port, q));
    expect(rdOff).toMatchObject({ rd: false, aa: true, ra: false });
  });

  it('echoes the question in the client’s letter case', async () => {
    const q = buildQuery('WwW.PrOtO.tEsT');
    const raw = await udpExchange(t.port, q);
    // The question section is byte-for-byte the client's.
    expect(raw.subarray(12, q.length).equals(q.subarray(12, q.length))).toBe(true);
    expect(header(raw).an).toBe(2);
  });

  it('NXDOMAIN and NODATA carry the SOA with TTL min(SOA TTL, MINIMUM)', async () => {
    const nx = await udpQuery(t.port, 'nope.proto.test');
    expect(nx.packet.header.rcode).toBe(3);
    expect(nx.packet.authorities).toHaveLength(1);
    expect(nx.packet.authorities[0]).toMatchObject({ type: Packet.TYPE.SOA, ttl: 45 });
    const nodata = await udpQuery(t.port, 'www.proto.test', { type: Packet.TYPE.MX });
    expect(nodata.packet.header.rcode).toBe(0);
    expect(nodata.packet.answers).toHaveLength(0);
    expect(nodata.packet.authorities[0]).toMatchObject({ type: Packet.TYPE.SOA, ttl: 45 });
  });

  it.each([
    { name: 'name outside every zone', qname: 'example.com', cls: Packet.CLASS.IN, rcode: 5 },
    { name: 'CHAOS other than the identity names', qname: 'version.bind', cls: 3, rcode: 5 },
    { name: 'class ANY', qname: 'www.proto.test', cls: 255, rcode: 5 },
  ])('REFUSED: $name', async ({ qname, cls, rcode }) => {
    const { packet, raw } = await udpQuery(t.port, qname, { cls, type: Packet.TYPE.TXT });
    expect(packet.header.rcode).toBe(rcode);
    expect(header(raw).aa).toBe(false);
    expect(packet.questions).toHaveLength(1);
  });

  it('CHAOS id.server answers with the configured identity', async () => {
    const { packet } = await udpQuery(t.port, 'id.server', { cls: 3, type: Packet.TYPE.TXT });
    expect(packet.header.rcode).toBe(0);
    expect(packet.answers[0]).toMatchObject({ class: 3, type: Packet.TYPE.TXT, data: ['rrdns-test-1'] });
  });

  it('qdcount other than 1 is FORMERR; opcode other than QUERY is NOTIMP', async () => {
    const noQuestion = Buffer.from([0x12, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(header(await udpExchange(t.port, noQuestion))).toMatchObject({ id: 0x1234, rcode: 1, qr: true });
    const q = buildQuery('www.proto.test');
    q[2] = (q[2]! & 0x87) | (2 << 3); // opcode STATUS
    expect(header(await udpExchange(t.port, q))).toMatchObject({ rcode: 4, opcode: 2 });
  });
});

describe('EDNS0 (RFC 6891)', () => {
  it('answers OPT with OPT, UDP size 1232', async () => {
    const { packet } = await udpQuery(t.port, 'www.proto.test', { edns: 4096 });
    const opt = packet.additionals.find((r) => r.type === 41) as unknown as { class: number };
    expect(opt).toBeDefined();
    expect(opt.class).toBe(1232);
  });
  it('no OPT in the query, none in the answer', async () => {
    const { packet } = await udpQuery(t.port, 'www.proto.test');
    expect(packet.additionals.find((r) => r.type === 41)).toBeUndefined();
  });
  it('version > 0 gets BADVERS with an OPT', async () => {
    const q = buildQuery('www.proto.test', { edns: 1232 });
    q[q.length - 11 + 6] = 1; // OPT TTL byte 2: version
    const raw = await udpExchange(t.port, q);
    const packet = Packet.parse(raw);
    expect(packet.header.rcode).toBe(16);
    expect(packet.answers).toHaveLength(0);
  });
  it('a second OPT is FORMERR', async () => {
    const q = buildQuery('www.proto.test', { edns: 1232 });
    const twice = Buffer.concat([q, q.subarray(q.length - 11)]);
    twice.writeUInt16BE(2, 10);
    expect(header(await udpExchange(t.port, twice)).rcode).toBe(1);
  });
  it('unknown options are ignored', async () => {
    const q = buildQuery('www.proto.test', { edns: 1232 });
    const option = Buffer.from([0xfd, 0xe9, 0, 3, 1, 2, 3]);
    const withOption = Buffer.concat([q, option]);
    withOption.writeUInt16BE(option.length, withOption.length - option.length - 2);
    const { an, rcode } = header(await udpExchange(t.port, withOption));
    expect({ an, rcode }).toEqual({ an: 2, rcode: 0 });
  });
});

describe('truncation', () => {
  it('cuts at an RRset boundary with TC=1 over 512 octets without EDNS', async () => {
    const raw = await udpExchange(t.port, buildQuery('big.proto.test'));
    expect(raw.length).toBeLessThanOrEqual(512);
    expect(header(raw)).toMatchObject({ tc: true, an: 0, rcode: 0 });
  });
  it('fits in 1232 with EDNS, keeping the OPT', async () => {
    const { packet, raw } = await udpQuery(t.port, 'big.proto.test', { edns: 1232 });
    expect(header(raw).tc).toBe(false);
    expect(addresses(packet)).toHaveLength(40);
  });
  it('a truncated EDNS answer keeps its OPT', async () => {
    const q = buildQuery('big.proto.test', { edns: 512 });
    const raw = await udpExchange(t.port, q);
    expect(raw.length).toBeLessThanOrEqual(512);
    expect(header(raw)).toMatchObject({ tc: true, an: 0, ar: 1 });
    expect(Packet.parse(raw).additionals[0]!.type).toBe(41);
  });
});
