/**
 * Zone transfer to secondaries: AXFR/IXFR over TCP from allowed addresses,
 * REFUSED otherwise (over UDP too), several messages for a big
 * zone, NOTIFY on start and on change, and Knot as a real secondary that
 * pulls the zone from rrdns and picks up a change after a NOTIFY.
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { Packet } from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.ts';
import { RrdnsServer } from '../../src/server/server.ts';
import { asSet, dig, parseDigAll, type DigRecord, type DigResult } from '../support/dig.ts';
import { udpExchange } from '../support/dnsclient.ts';
import { startKnotSecondary, type KnotServer } from '../support/knot.ts';
import { parseHeader, rawQuery, TcpPeer, waitUntil } from '../support/rawdns.ts';
import { captureLogger, startTestServer, writeZones, type TestServer } from '../support/server.ts';
import { freePort, waitForDns } from '../support/spawn.ts';
import { missing, toolPath } from '../support/tools.ts';
import { DEFAULT_TCP_LIMITS, TcpListener, type ResponseStream } from '../../src/wire/transport.ts';

const AXFR = 252;
const IXFR = 251;
const SOA = 6;

/** `dig` with layout options the shared helper refuses (+comments shows every message of a transfer). */
function digRaw(port: number, args: string[], host = '127.0.0.1'): Promise<string> {
  const argv = [`@${host}`, '-p', String(port), '+norecurse', '+tries=1', '+time=5', ...args];
  return new Promise((resolve, reject) => {
    execFile(toolPath('dig') ?? 'dig', argv, { timeout: 30_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && !stdout) reject(new Error(`dig ${argv.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

interface Transfer {
  messages: DigResult[];
  records: DigRecord[];
  /** dig's summary: records, messages, bytes. */
  size: { records: number; messages: number } | undefined;
  raw: string;
}

/** A zone transfer as dig reassembles it, one DigResult per message. */
async function digTransfer(port: number, zone: string, args: string[] = []): Promise<Transfer> {
  const raw = await digRaw(port, [zone, 'AXFR', '+comments', ...args]);
  const messages = raw.includes('->>HEADER<<-') ? parseDigAll(raw) : [];
  const m = /XFR size: (\d+) records \(messages (\d+)/.exec(raw);
  return { messages, records: messages.flatMap((r) => r.answer), size: m ? { records: Number(m[1]), messages: Number(m[2]) } : undefined, raw };
}

const line = (r: DigRecord) => `${r.name.toLowerCase()} ${r.ttl} ${r.type} ${r.data.toLowerCase()}`;

const ZONE = (checkPort: number) => `soa: { mname: ns1, rname: hostmaster, serial: 2026112501 }
transfer:
  allow: [127.0.0.1, "::1"]
records:
  "@": { NS: [ns1, ns2], MX: "10 mail", TXT: "v=spf1 -all" }
  ns1: { A: 192.0.2.53 }
  ns2: { A: 192.0.2.54 }
  mail: { A: 192.0.2.25 }
  www: { A: [192.0.2.10, 192.0.2.11], AAAA: "2001:db8::10" }
  blog: { CNAME: www }
  "*.apps": { A: 192.0.2.30 }
  sub: { NS: ns.sub }
  ns.sub: { A: 192.0.2.99 }
  app:
    A: [127.0.0.231, 127.0.0.232]
    pool:
      check: { type: tcp, port: ${checkPort}, interval: 1m, timeout: 1s }
      members:
        127.0.0.232: { admin: force-down }
`;

/** What the zone file declares, as dig prints it: the pool's primaries as written, glue included. */
const STATIC = [
  'xfr.test. 300 SOA ns1.xfr.test. hostmaster.xfr.test. 2026112501 3600 900 1209600 60',
  'xfr.test. 300 NS ns1.xfr.test.',
  'xfr.test. 300 NS ns2.xfr.test.',
  'xfr.test. 300 MX 10 mail.xfr.test.',
  'xfr.test. 300 TXT "v=spf1 -all"',
  'ns1.xfr.test. 300 A 192.0.2.53',
  'ns2.xfr.test. 300 A 192.0.2.54',
  'mail.xfr.test. 300 A 192.0.2.25',
  'www.xfr.test. 300 A 192.0.2.10',
  'www.xfr.test. 300 A 192.0.2.11',
  'www.xfr.test. 300 AAAA 2001:db8::10',
  'blog.xfr.test. 300 CNAME www.xfr.test.',
  '*.apps.xfr.test. 300 A 192.0.2.30',
  'sub.xfr.test. 300 NS ns.sub.xfr.test.',
  'ns.sub.xfr.test. 300 A 192.0.2.99',
  'app.xfr.test. 300 A 127.0.0.231',
  'app.xfr.test. 300 A 127.0.0.232',
].sort();

const BIG_NAMES = 5000;
const bigZone = (names = BIG_NAMES) =>
  [
    '$TTL 300',
    '@ IN SOA ns1 hostmaster 7 3600 900 1209600 60',
    '@ IN NS ns1',
    'ns1 IN A 192.0.2.53',
    ...Array.from({ length: names }, (_, i) => `host-${i} IN A 10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`),
  ].join('\n') + '\n';

describe.skipIf(missing('dig', 'bind9-dnsutils'))('AXFR and IXFR', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      'xfr.test.yaml': ZONE(await freePort()),
      'off.test.yaml': 'soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n',
      'plain.test.zone': '$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n',
      'big.test.zone': bigZone(),
      'big.test.yaml': 'masterFile: big.test.zone\ntransfer: { allow: 127.0.0.0/8 }\n',
    });
  });
  afterAll(() => t?.close());

  it('dig axfr gets the whole static zone: SOA first and last, glue and the pool primaries as written', async () => {
    const x = await digTransfer(t.port, 'xfr.test');
    expect(x.messages.length, x.raw).toBe(1);
    const [msg] = x.messages;
    expect(msg!.rcode).toBe('NOERROR');
    expect(msg!.flags).toContain('aa');
    expect(msg!.counts.query).toBe(1);
    expect(x.records[0]!.type).toBe('SOA');
    expect(x.records[x.records.length - 1]!.type).toBe('SOA');
    expect(x.records.filter((r) => r.type === 'SOA')).toHaveLength(2);
    expect(x.size).toEqual({ records: STATIC.length + 1, messages: 1 });
    expect(x.records.slice(0, -1).map(line).sort()).toEqual(STATIC);
  });

  it('health state is not applied: the forced-down member is left out of answers but transferred', async () => {
    const live = await dig(t.port, ['app.xfr.test', 'A']);
    expect(live.answer.map((r) => r.data)).not.toContain('127.0.0.232');
    const x = await digTransfer(t.port, 'xfr.test');
    expect(x.records.filter((r) => r.name === 'app.xfr.test.').map((r) => r.data).sort()).toEqual(['127.0.0.231', '127.0.0.232']);
  });

  it('a source address not in transfer.allow is REFUSED', async () => {
    const x = await digTransfer(t.port, 'xfr.test', ['-b', '127.0.0.2']);
    expect(x.messages.map((m) => m.rcode)).toEqual(['REFUSED']);
    expect(x.messages[0]!.flags).not.toContain('aa');
    expect(x.records).toEqual([]);
    // The same address may still query normally.
    expect((await dig(t.port, ['www.xfr.test', 'A', '-b', '127.0.0.2'])).answer).toHaveLength(2);
  });

  it('transfer is off by default: a native zone without transfer:, and a plain master file, are REFUSED', async () => {
    for (const zone of ['off.test', 'plain.test']) {
      const x = await digTransfer(t.port, zone);
      expect(x.messages.map((m) => m.rcode), zone).toEqual(['REFUSED']);
    }
  });

  it('AXFR for a name that is not a zone apex, or outside every zone, is REFUSED', async () => {
    for (const name of ['www.xfr.test', 'example.org']) {
      const x = await digTransfer(t.port, name);
      expect(x.messages.map((m) => m.rcode), name).toEqual(['REFUSED']);
    }
  });

  it('AXFR over UDP is REFUSED (RFC 5936 §4.2: TCP only; Knot says NOTIMP), from allowed and other sources', async () => {
    for (const name of ['xfr.test', 'off.test', 'example.org']) {
      const reply = parseHeader(await udpExchange(t.port, rawQuery(name, { id: 0x4242, qtype: AXFR })));
      expect(reply, name).toMatchObject({ id: 0x4242, qr: true, rcode: 5, ancount: 0, qdcount: 1 });
    }
  });

  it('IXFR: the SOA alone when up to date or over UDP, the full zone over TCP otherwise, FORMERR without the client SOA', async () => {
    const current = await digRaw(t.port, ['xfr.test', 'IXFR=2026112501', '+comments']);
    const upToDate = parseDigAll(current);
    expect(upToDate).toHaveLength(1);
    expect(upToDate[0]!.answer.map((r) => r.type)).toEqual(['SOA']);
    expect(upToDate[0]!.flags).toContain('aa');

    const older = parseDigAll(await digRaw(t.port, ['xfr.test', 'IXFR=2026112400', '+comments']));
    const records = older.flatMap((m) => m.answer);
    expect(records[0]!.type).toBe('SOA');
    expect(records[1]!.type, 'AXFR-style: the second record is not an SOA').not.toBe('SOA');
    expect(records.slice(0, -1).map(line).sort()).toEqual(STATIC);

    const udp = parseDigAll(await digRaw(t.port, ['xfr.test', 'IXFR=2026112400', '+notcp', '+comments']));
    expect(udp[0]!.notes.join('\n') + udp[0]!.raw).toMatch(/\(UDP\)/);
    expect(udp[0]!.answer.map((r) => r.type)).toEqual(['SOA']);

    // Not allowed: REFUSED, over either transport.
    const refused = parseDigAll(await digRaw(t.port, ['xfr.test', 'IXFR=1', '+notcp', '+comments', '-b', '127.0.0.2']));
    expect(refused[0]!.rcode).toBe('REFUSED');

    // An IXFR query must carry the client's SOA (RFC 1995 §3).
    const peer = await TcpPeer.connect(t.port);
    try {
      const reply = parseHeader(await peer.exchange(rawQuery('xfr.test', { id: 0x1717, qtype: IXFR })));
      expect(reply).toMatchObject({ id: 0x1717, rcode: 1 });
    } finally {
      peer.destroy();
    }
  });

  it(`a large zone (${BIG_NAMES} names) goes in several messages of at most 16 KiB; dig reassembles it`, async () => {
    const peer = await TcpPeer.connect(t.port);
    let messages: Buffer[];
    try {
      peer.send(rawQuery('big.test', { id: 0x5151, qtype: AXFR, opt: { udpSize: 1232 } }));
      // Bounded: the transfer ends with the second SOA, or the wait fails.
      let soas = 0;
      for (let n = 1; soas < 2 && n < 1000; n++) {
        await peer.waitForMessages(n, 10_000);
        const p = Packet.parse(peer.messages[n - 1]!);
        soas += p.answers.filter((a) => a.type === SOA).length;
      }
      messages = peer.messages.slice();
    } finally {
      peer.destroy();
    }
    expect(messages.length).toBeGreaterThan(1);
    let records = 0;
    messages.forEach((m, i) => {
      const h = parseHeader(m);
      expect(m.length, `message ${i} size`).toBeLessThanOrEqual(16 * 1024);
      expect(h).toMatchObject({ id: 0x5151, qr: true, aa: true, tc: false, rcode: 0, qdcount: i === 0 ? 1 : 0, nscount: 0, arcount: 1 });
      const p = Packet.parse(m);
      expect((p as unknown as { errors?: Error[] }).errors ?? []).toEqual([]);
      expect(p.answers).toHaveLength(h.ancount);
      records += h.ancount;
    });
    expect(records).toBe(BIG_NAMES + 2 /* NS, ns1 A */ + 2 /* SOA twice */);
    expect(Packet.parse(messages[0]!).answers[0]!.type).toBe(SOA);
    const last = Packet.parse(messages[messages.length - 1]!).answers;
    expect(last[last.length - 1]!.type).toBe(SOA);

    const x = await digTransfer(t.port, 'big.test');
    expect(x.size).toEqual({ records: BIG_NAMES + 4, messages: messages.length });
    expect(new Set(x.records.filter((r) => r.type === 'A').map((r) => r.name)).size).toBe(BIG_NAMES + 1);
    // Written message by message under the connection's queue cap, never the whole zone at once.
    expect(t.server.transportStats().tcpPeakQueuedBytes).toBeLessThanOrEqual(t.server.config.tcp.maxQueuedBytes + 16 * 1024 + 2);
  });

  it('a query pipelined behind an AXFR on the same connection is answered after the transfer, in order', async () => {
    const peer = await TcpPeer.connect(t.port);
    try {
      peer.write(Buffer.concat([rawQuery('big.test', { id: 1, qtype: AXFR }), rawQuery('www.xfr.test', { id: 2 })].map((q) => {
        const f = Buffer.alloc(2 + q.length);
        f.writeUInt16BE(q.length, 0);
        q.copy(f, 2);
        return f;
      })));
      for (let n = 1; !peer.messages.some((m) => m.readUInt16BE(0) === 2) && n < 1000; n++) await peer.waitForMessages(n, 10_000);
      const ids = peer.messages.map((m) => m.readUInt16BE(0));
      expect(ids[ids.length - 1]).toBe(2);
      expect(ids.slice(0, -1).every((id) => id === 1)).toBe(true);
      const transfer = peer.messages.slice(0, -1).flatMap((m) => Packet.parse(m).answers);
      expect(transfer.length).toBe(BIG_NAMES + 4);
      expect(transfer[transfer.length - 1]!.type).toBe(SOA);
      expect(parseHeader(peer.messages[peer.messages.length - 1]!)).toMatchObject({ rcode: 0, ancount: 2 });
    } finally {
      peer.destroy();
    }
  });

  it('a client that half-closes after its AXFR still gets the whole transfer, then the server closes', async () => {
    const peer = await TcpPeer.connect(t.port);
    try {
      peer.send(rawQuery('big.test', { id: 4, qtype: AXFR }));
      peer.socket.end();
      await peer.waitClosed(20_000);
      const answers = peer.messages.flatMap((m) => Packet.parse(m).answers);
      expect(answers).toHaveLength(BIG_NAMES + 4);
      expect(answers[answers.length - 1]!.type).toBe(SOA);
      expect(peer.endedByPeer).toBe(true);
    } finally {
      peer.destroy();
    }
  });

  it('a NOTIFY sent to rrdns is NOTAUTH (it is a primary only), as Knot answers one it does not accept', async () => {
    const r = await dig(t.port, ['xfr.test', 'SOA', '+opcode=notify']);
    expect(r.opcode).toBe('NOTIFY');
    expect(r.rcode).toBe('NOTAUTH');
  });
});

describe('TCP transport with a multi-message response', () => {
  const MESSAGE = Buffer.alloc(16 * 1024, 0x61);
  const LIMIT = 12_800; // 200 MiB if nothing held the transport back

  it('pulls messages only as fast as the client reads, and cancels the stream when the client goes away', async () => {
    let pulled = 0;
    let cancelled = false;
    const stream: ResponseStream = {
      next: () => (pulled < LIMIT ? (pulled++, MESSAGE) : undefined),
      cancel: () => {
        cancelled = true;
      },
    };
    const limits = { ...DEFAULT_TCP_LIMITS, maxQueuedBytes: 256 * 1024 };
    const listener = new TcpListener(() => stream, limits, () => {});
    const port = await listener.listen('127.0.0.1', 0);
    const peer = await TcpPeer.connect(port, { read: false });
    try {
      peer.send(rawQuery('big.test', { id: 3, qtype: AXFR }));
      // The client reads nothing: once the kernel buffers are full the server's own queue fills up to the cap...
      await waitUntil(() => listener.peakQueuedBytes >= limits.maxQueuedBytes, 20_000, 'the server-side queue to reach its cap');
      // ...and the transport stops pulling: far fewer messages than the stream could give.
      expect(pulled).toBeLessThan(LIMIT / 2);
      expect(listener.peakQueuedBytes).toBeLessThanOrEqual(limits.maxQueuedBytes + MESSAGE.length + 2);
      expect(cancelled).toBe(false);
      peer.destroy();
      await waitUntil(() => cancelled, 5000, 'the stream to be cancelled');
    } finally {
      peer.destroy();
      await listener.close(100);
    }
  });
});

/** A stand-in secondary on a real UDP socket: records each NOTIFY with its sender, answers when told to. */
class FakeSecondary {
  readonly socket: dgram.Socket;
  readonly received: { msg: Buffer; from: dgram.RemoteInfo }[] = [];
  /** rcode to answer with; undefined = stay silent. */
  answerWith: number | undefined;
  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    socket.on('message', (msg, from) => {
      this.received.push({ msg, from });
      if (this.answerWith === undefined || msg.length < 12) return;
      const reply = Buffer.from(msg.subarray(0, 12));
      reply[2] = 0x80 | (msg[2]! & 0x78) | 0x04; // QR, opcode echoed, AA
      reply[3] = this.answerWith;
      reply.writeUInt16BE(0, 4);
      reply.writeUInt16BE(0, 6);
      socket.send(reply, from.port, from.address);
    });
  }
  static open(): Promise<FakeSecondary> {
    const socket = dgram.createSocket('udp4');
    return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(new FakeSecondary(socket))));
  }
  get port(): number {
    return this.socket.address().port;
  }
  /** The NOTIFYs received carrying `serial` in their answer SOA. */
  withSerial(serial: number): Buffer[] {
    return this.received.map((r) => r.msg).filter((m) => (Packet.parse(m).answers[0] as unknown as { serial?: number } | undefined)?.serial === serial);
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

describe('NOTIFY to secondaries', () => {
  const NOTIFY = 4;
  const zone = (port: number, extra = '') => `soa: { mname: ns1, rname: hostmaster, serial: 41 }
transfer: { allow: 127.0.0.1, notify: "127.0.0.1:${port}" }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.1 }
${extra}`;

  let secondary: FakeSecondary;
  let server: RrdnsServer;
  let dir: string;
  const { logger, lines } = captureLogger('info');
  const logged = (msg: string, serial: number) => lines.filter((l) => l.msg === msg && l.serial === serial);
  const rewrite = (extra: string) => fs.writeFileSync(path.join(dir, 'n.test.yaml'), zone(secondary.port, extra));

  beforeAll(async () => {
    secondary = await FakeSecondary.open();
    dir = writeZones({ 'n.test.yaml': zone(secondary.port) });
    const config = parseConfig({ zonesDir: dir, listen: ['127.0.0.1:0'], logLevel: 'info', admin: { listen: 'off' }, stateDir: 'off' });
    server = new RrdnsServer(config, { logger, notify: { attempts: 3, firstTimeoutMs: 150, maxTimeoutMs: 300 } });
    await server.start();
  });
  afterAll(async () => {
    await server?.close();
    await secondary?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('at start-up: opcode NOTIFY, AA, question <zone> SOA, the SOA as answer; retried (same ID) until the secondary answers', async () => {
    // Silent at first: rrdns must send again.
    await waitUntil(() => secondary.withSerial(41).length >= 2, 10_000, 'a retried NOTIFY');
    secondary.answerWith = 0;
    await waitUntil(() => logged('NOTIFY acknowledged', 41).length === 1, 10_000, 'the NOTIFY to be acknowledged');
    const sent = secondary.withSerial(41);
    expect(new Set(sent.map((m) => m.readUInt16BE(0))).size).toBe(1);
    const h = parseHeader(sent[0]!);
    expect(h).toMatchObject({ qr: false, opcode: NOTIFY, aa: true, qdcount: 1, ancount: 1, nscount: 0, arcount: 0 });
    const p = Packet.parse(sent[0]!);
    expect(p.questions[0]).toMatchObject({ name: 'n.test', type: SOA, class: 1 });
    expect(p.answers[0]).toMatchObject({ name: 'n.test', type: SOA, serial: 41 });
    expect(logged('NOTIFY acknowledged', 41)[0]).toMatchObject({ zone: 'n.test.', secondary: `127.0.0.1:${secondary.port}` });
    expect(logged('NOTIFY acknowledged', 41)[0]!.attempts).toBeGreaterThanOrEqual(2);
  });

  it('a content change on reload raises the serial (file not bumped: +1, with a warning) and NOTIFYs again', async () => {
    rewrite('  new: { A: 192.0.2.77 }\n');
    expect(await server.reload()).toMatchObject({ ok: true });
    expect((await dig(server.addresses[0]!.port, ['n.test', 'SOA'])).answer[0]!.data).toMatch(/ 42 3600 /);
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes('not greater than the served 41; serving 42'))).toBe(true);
    await waitUntil(() => logged('NOTIFY acknowledged', 42).length === 1, 10_000, 'the NOTIFY for serial 42');
    expect(secondary.withSerial(42).length).toBeGreaterThanOrEqual(1);
  });

  it('a reload without a content change keeps the serial and sends no NOTIFY', async () => {
    expect(await server.reload()).toMatchObject({ ok: true });
    // NOTIFYs are registered synchronously when the new zones are installed: none is pending, none was started.
    expect(server.notifier.pending).toBe(0);
    expect((await dig(server.addresses[0]!.port, ['n.test', 'SOA'])).answer[0]!.data).toMatch(/ 42 3600 /);
  });

  it('an unanswered NOTIFY stops after the configured attempts', async () => {
    secondary.answerWith = undefined;
    rewrite('  new: { A: 192.0.2.78 }\n');
    await server.reload();
    await waitUntil(() => logged('NOTIFY unanswered; the secondary will pull at its next SOA refresh', 43).length === 1, 10_000, 'NOTIFY to give up');
    expect(secondary.withSerial(43)).toHaveLength(3);
    expect(server.notifier.pending).toBe(0);
  });

  it('a secondary that refuses the NOTIFY is not retried', async () => {
    secondary.answerWith = 5; // REFUSED
    rewrite('  new: { A: 192.0.2.79 }\n');
    await server.reload();
    await waitUntil(() => logged('NOTIFY rejected by the secondary', 44).length === 1, 10_000, 'the NOTIFY rejection');
    expect(logged('NOTIFY rejected by the secondary', 44)[0]).toMatchObject({ rcode: 5, attempts: 1 });
    expect(secondary.withSerial(44)).toHaveLength(1);
  });

  it('close() cancels a NOTIFY still retrying', async () => {
    secondary.answerWith = undefined;
    rewrite('  new: { A: 192.0.2.80 }\n');
    await server.reload();
    await waitUntil(() => secondary.withSerial(45).length >= 1, 10_000, 'the NOTIFY for serial 45');
    await server.close();
    expect(server.notifier.pending).toBe(0);
    expect(logged('NOTIFY unanswered; the secondary will pull at its next SOA refresh', 45)).toHaveLength(0);
  });
});

describe.skipIf(missing('knotd', 'knot') || missing('dig', 'bind9-dnsutils'))('Knot as a real secondary of rrdns', () => {
  // SOA refresh and retry of a day: within the test only a NOTIFY can make Knot pull again.
  const zoneText = (opts: { notifyPort?: number; checkPort: number; extra?: string }) => `soa: { mname: ns1, rname: hostmaster, serial: 2026112501, refresh: 1d, retry: 1d }
transfer:
  allow: [127.0.0.1]
${opts.notifyPort ? `  notify: [127.0.0.1:${opts.notifyPort}]\n` : ''}records:
  "@": { NS: [ns1, ns2], MX: "10 mail", TXT: "v=spf1 -all" }
  ns1: { A: 192.0.2.53 }
  ns2: { A: 192.0.2.54 }
  mail: { A: 192.0.2.25, AAAA: "2001:db8::25" }
  www: { A: [192.0.2.10, 192.0.2.11, 192.0.2.12] }
  blog: { CNAME: www }
  "*.apps": { A: 192.0.2.30 }
  _sip._tcp: { SRV: "10 60 5060 www" }
  sub: { NS: ns.sub }
  ns.sub: { A: 192.0.2.99 }
  app:
    A: [127.0.0.233, 127.0.0.234]
    pool:
      check: { type: tcp, port: ${opts.checkPort}, interval: 1m, timeout: 1s }
      members:
        127.0.0.234: { admin: force-down }
${opts.extra ?? ''}`;

  let t: TestServer;
  let knot: KnotServer;
  let checkPort: number;
  let notifyPort = 0;
  const file = () => path.join(t.dir, 'sec.test.yaml');

  beforeAll(async () => {
    checkPort = await freePort();
    t = await startTestServer({ 'sec.test.yaml': zoneText({ checkPort }) });
    knot = await startKnotSecondary({
      zone: 'sec.test',
      primaryPort: t.port,
      // Knot's port is known only now: list it for NOTIFY. No content change, so no new serial and no NOTIFY yet.
      onPort: async (port) => {
        notifyPort = port;
        fs.writeFileSync(file(), zoneText({ checkPort, notifyPort }));
        expect(await t.server.reload()).toMatchObject({ ok: true });
      },
    });
  }, 120_000);
  afterAll(async () => {
    await knot?.close();
    await t?.close();
  });

  const soaSerial = (r: DigResult) => Number(r.answer.find((a) => a.type === 'SOA')?.data.split(/\s+/)[2]);

  it('pulls the zone and serves the same static data, with the same serial', async () => {
    const ours = await dig(t.port, ['sec.test', 'SOA']);
    const theirs = await waitForDns(knot.port, ['sec.test.', 'SOA'], { proc: knot.proc, accept: (r) => r.flags.includes('aa') && soaSerial(r) === soaSerial(ours) });
    expect(soaSerial(theirs)).toBe(2026112501);
    expect(knot.proc.stderr()).toMatch(/AXFR, incoming, remote 127\.0\.0\.1@\d+, finished/);

    const QUERIES: [string, string][] = [
      ['sec.test', 'NS'],
      ['sec.test', 'MX'],
      ['sec.test', 'TXT'],
      ['ns1.sec.test', 'A'],
      ['mail.sec.test', 'AAAA'],
      ['www.sec.test', 'A'],
      ['blog.sec.test', 'A'],
      ['x.apps.sec.test', 'A'],
      ['_sip._tcp.sec.test', 'SRV'],
      ['nothing.sec.test', 'A'],
      ['host.sub.sec.test', 'A'],
    ];
    for (const [name, type] of QUERIES) {
      const a = await dig(t.port, [name, type]);
      const b = await dig(knot.port, [name, type]);
      const what = `${name} ${type}`;
      expect(b.rcode, what).toBe(a.rcode);
      expect(b.flags.includes('aa'), what).toBe(a.flags.includes('aa'));
      expect(asSet(b.answer), what).toEqual(asSet(a.answer));
      expect(asSet(b.authority), what).toEqual(asSet(a.authority));
    }
  });

  it('the secondary serves the static records only: the member rrdns keeps out by health/admin state is served by Knot', async () => {
    const ours = (await dig(t.port, ['app.sec.test', 'A'])).answer.map((r) => r.data);
    const theirs = (await dig(knot.port, ['app.sec.test', 'A'])).answer.map((r) => r.data).sort();
    expect(ours).not.toContain('127.0.0.234');
    expect(theirs).toEqual(['127.0.0.233', '127.0.0.234']);
  });

  it('after an edit and a reload, the NOTIFY makes Knot pull the new record and the new serial', async () => {
    const before = soaSerial(await dig(t.port, ['sec.test', 'SOA']));
    // The file's serial is not bumped: rrdns serves serial + 1 itself.
    fs.writeFileSync(file(), zoneText({ checkPort, notifyPort, extra: '  new: { A: 192.0.2.77, TXT: "added after start" }\n' }));
    expect(await t.server.reload()).toMatchObject({ ok: true });
    const after = soaSerial(await dig(t.port, ['sec.test', 'SOA']));
    expect(after).toBe(before + 1);

    const got = await waitForDns(knot.port, ['new.sec.test.', 'A'], { proc: knot.proc, accept: (r) => r.rcode === 'NOERROR' && r.flags.includes('aa') && r.answer.length === 1 });
    expect(got.answer[0]!.data).toBe('192.0.2.77');
    expect(soaSerial(await dig(knot.port, ['sec.test', 'SOA']))).toBe(after);
    expect(asSet((await dig(knot.port, ['new.sec.test', 'TXT'])).answer)).toEqual(asSet((await dig(t.port, ['new.sec.test', 'TXT'])).answer));
    // Knot's own log: the NOTIFY came in, then it transferred (IXFR answered AXFR-style).
    expect(knot.proc.stderr()).toMatch(new RegExp(`notify, incoming, remote 127\\.0\\.0\\.1@\\d+, serial ${after}`));
    expect(knot.proc.stderr()).toMatch(new RegExp(`serial ${before} -> ${after}`));
  });
});

describe('transfer concurrency cap (--xfr-max-concurrent)', () => {
  it('with transfer.maxConcurrent 1, a second AXFR while one streams gets SERVFAIL; the slot frees when the first client goes', async () => {
    // About 8 MB of TXT: more than the kernel buffers a client that does not read can hold, so its transfer stays open.
    const txt = Array.from({ length: 8 }, () => `"${'x'.repeat(250)}"`).join(' ');
    const zone = ['$TTL 300', '@ IN SOA ns1 hostmaster 1 3600 900 1209600 60', '@ IN NS ns1', 'ns1 IN A 192.0.2.53', ...Array.from({ length: 4000 }, (_, i) => `t${i} IN TXT ${txt}`)].join('\n') + '\n';
    const t = await startTestServer({ 'fat.test.zone': zone, 'fat.test.yaml': 'masterFile: fat.test.zone\ntransfer: { allow: 127.0.0.0/8 }\n' }, { transfer: { maxConcurrent: 1 } });
    const firstRcode = async () => {
      const peer = await TcpPeer.connect(t.port);
      try {
        peer.send(rawQuery('fat.test', { id: 0x0909, qtype: AXFR }));
        await peer.waitForMessages(1, 10_000);
        return parseHeader(peer.messages[0]!).rcode;
      } finally {
        peer.destroy();
      }
    };
    try {
      const stuck = await TcpPeer.connect(t.port, { read: false });
      try {
        stuck.send(rawQuery('fat.test', { id: 0x0808, qtype: AXFR }));
        await waitUntil(() => t.server.transfers.activeTransfers === 1, 5000, 'the first transfer to start');
        expect(await firstRcode()).toBe(2);
      } finally {
        stuck.destroy();
      }
      await waitUntil(() => t.server.transfers.activeTransfers === 0, 5000, 'the stuck transfer to be cancelled');
      expect(await firstRcode()).toBe(0);
    } finally {
      await t.close();
    }
  });
});
