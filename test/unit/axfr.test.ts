import { Packet } from 'dns2';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/log.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { TransferService } from '../../src/server/transfer.ts';
import { axfrMessages, ixfrClientSerial, type XfrQuery } from '../../src/wire/axfr.ts';
import { decodeQuery, QueryStatus, QueryView } from '../../src/wire/query.ts';
import type { ResponseStream } from '../../src/wire/transport.ts';
import { transferSettings } from '../../src/zone/transfer.ts';
import type { Zone } from '../../src/zone/zone.ts';
import { encodeName, encodeHeader, typeClass } from '../support/rawdns.ts';
import { zoneFromText } from '../support/zone-text.ts';

const AXFR = 252;
const IXFR = 251;

function zone(extra = ''): Zone {
  const z = zoneFromText(
    'u.test',
    `$TTL 300
@ IN SOA ns1 hostmaster 10 3600 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.53
${extra}`,
  );
  return { ...z, transfer: transferSettings(['127.0.0.1'], []) };
}

function query(name: string, qtype: number, authoritySoaSerial?: number): Buffer {
  const parts = [encodeHeader({ id: 77, qdcount: 1, nscount: authoritySoaSerial === undefined ? 0 : 1 }), encodeName(name), typeClass(qtype, 1)];
  if (authoritySoaSerial !== undefined) {
    const rdata = Buffer.concat([Buffer.from([0xc0, 12]), Buffer.from([0xc0, 12]), Buffer.alloc(20)]);
    rdata.writeUInt32BE(authoritySoaSerial, 4);
    const rr = Buffer.alloc(10);
    rr.writeUInt16BE(6, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(rdata.length, 8);
    parts.push(Buffer.from([0xc0, 12]), rr, rdata);
  }
  return Buffer.concat(parts);
}

function decoded(msg: Buffer): QueryView {
  const view = new QueryView();
  expect(decodeQuery(msg, msg.length, view)).toBe(QueryStatus.OK);
  return view;
}

const xq = (view: QueryView, msg: Buffer): XfrQuery => ({ id: view.id, flags: view.flags, question: msg.subarray(12, view.questionEnd), qnameKey: view.qnameKey, edns: false, ednsDo: false });

function drain(stream: ResponseStream): Buffer[] {
  const out: Buffer[] = [];
  for (let m = stream.next(); m; m = stream.next()) {
    out.push(m);
    if (out.length > 10_000) throw new Error('stream does not end');
  }
  return out;
}

describe('AXFR message encoding', () => {
  it('splits at the size asked for, SOA first and last, question only in the first message', () => {
    const z = zone(Array.from({ length: 300 }, (_, i) => `n${i} IN TXT "${'x'.repeat(40)}"`).join('\n'));
    const msg = query('u.test', AXFR);
    const view = decoded(msg);
    const progress = { messages: 0, records: 0, bytes: 0 };
    const messages = [...axfrMessages(z, xq(view, msg), progress, 2048)];
    expect(messages.length).toBeGreaterThan(5);
    expect(progress).toMatchObject({ messages: messages.length, records: 300 + 4 });
    const all = messages.flatMap((m, i) => {
      expect(m.length).toBeLessThanOrEqual(2048);
      const p = Packet.parse(m);
      expect(p.header.qr).toBe(1);
      expect(p.header.aa).toBe(1);
      expect(p.questions).toHaveLength(i === 0 ? 1 : 0);
      return p.answers;
    });
    expect(all).toHaveLength(304);
    expect(all[0]!.type).toBe(6);
    expect(all[all.length - 1]!.type).toBe(6);
    expect(all.filter((a) => a.type === 6)).toHaveLength(2);
    expect(new Set(all.filter((a) => a.type === 16).map((a) => a.name)).size).toBe(300);
  });

  it('with a response cookie, every message carries it in its OPT and still keeps to the size asked for (RFC 7873 §5.2)', () => {
    const z = zone(Array.from({ length: 100 }, (_, i) => `n${i} IN TXT "${'x'.repeat(40)}"`).join('\n'));
    const msg = query('u.test', AXFR);
    const view = decoded(msg);
    const cookie = Buffer.from('0102030405060708' + '01000000' + '65536000' + 'aabbccddeeff0011', 'hex');
    const messages = [...axfrMessages(z, { ...xq(view, msg), edns: true, cookie }, undefined, 1024)];
    expect(messages.length).toBeGreaterThan(2);
    for (const m of messages) {
      expect(m.length).toBeLessThanOrEqual(1024);
      // OPT is the last record: root owner, type 41, ..., RDLENGTH 28, then option 10 of 24 octets.
      const opt = m.subarray(m.length - 11 - 28);
      expect([opt[0], opt.readUInt16BE(1), opt.readUInt16BE(9), opt.readUInt16BE(11), opt.readUInt16BE(13)]).toEqual([0, 41, 28, 10, 24]);
      expect(opt.subarray(15)).toEqual(cookie);
      expect(m.readUInt16BE(10)).toBe(1);
    }
  });

  it('a record larger than the message budget goes alone, whole', () => {
    const long = Array.from({ length: 8 }, () => `"${'y'.repeat(250)}"`).join(' ');
    const z = zone(`big IN TXT ${long}`);
    const msg = query('u.test', AXFR);
    const view = decoded(msg);
    const messages = [...axfrMessages(z, xq(view, msg), undefined, 512)];
    const withBig = messages.map((m) => Packet.parse(m)).find((p) => p.answers.some((a) => a.name === 'big.u.test'))!;
    expect(withBig.answers).toHaveLength(1);
    expect(messages.flatMap((m) => Packet.parse(m).answers)).toHaveLength(5);
  });

  it('reads the client serial from an IXFR query, bounds-checked', () => {
    const msg = query('u.test', IXFR, 9);
    const view = decoded(msg);
    expect(ixfrClientSerial(msg, msg.length, view.questionEnd)).toBe(9);
    expect(ixfrClientSerial(msg, msg.length - 3, view.questionEnd)).toBeUndefined();
    const none = query('u.test', IXFR);
    expect(ixfrClientSerial(none, none.length, decoded(none).questionEnd)).toBeUndefined();
  });
});

describe('TransferService', () => {
  const log = createLogger('silent');

  it('caps concurrent transfers: past the cap SERVFAIL; a finished or cancelled transfer frees its slot', () => {
    const served = new ServedZone(zone('a IN A 192.0.2.1'));
    const svc = new TransferService(log, { maxConcurrent: 1 });
    const msg = query('u.test', AXFR);
    const ask = () => svc.answer(msg, msg.length, decoded(msg), 'tcp', '127.0.0.1', served);

    const first = ask();
    expect(first.rcode).toBe(0);
    expect(svc.activeTransfers).toBe(1);
    const second = ask();
    expect(second.rcode).toBe(2);
    expect(Buffer.isBuffer(second.out)).toBe(true);

    (first.out as ResponseStream).cancel();
    expect(svc.activeTransfers).toBe(0);
    const third = ask();
    expect(third.rcode).toBe(0);
    const messages = drain(third.out as ResponseStream);
    expect(messages.flatMap((m) => Packet.parse(m).answers)).toHaveLength(5);
    expect(svc.activeTransfers).toBe(0);
    // Cancelling after the end changes nothing.
    (third.out as ResponseStream).cancel();
    expect(svc.activeTransfers).toBe(0);
  });

  it('decides by peer address, transport and the IXFR serial', () => {
    const served = new ServedZone(zone());
    const svc = new TransferService(log);
    const axfr = query('u.test', AXFR);
    const rcode = (msg: Buffer, transport: 'udp' | 'tcp', peer: string) => svc.answer(msg, msg.length, decoded(msg), transport, peer, served).rcode;
    expect(rcode(axfr, 'tcp', '127.0.0.2')).toBe(5);
    expect(rcode(axfr, 'tcp', '::ffff:127.0.0.1')).toBe(0);
    expect(rcode(axfr, 'udp', '127.0.0.1')).toBe(5);
    const upToDate = query('u.test', IXFR, 10);
    const soaOnly = svc.answer(upToDate, upToDate.length, decoded(upToDate), 'tcp', '127.0.0.1', served);
    expect(Buffer.isBuffer(soaOnly.out)).toBe(true);
    expect(Packet.parse(soaOnly.out as Buffer).answers.map((a) => a.type)).toEqual([6]);
    const older = query('u.test', IXFR, 9);
    const full = svc.answer(older, older.length, decoded(older), 'tcp', '127.0.0.1', served);
    expect(drain(full.out as ResponseStream).flatMap((m) => Packet.parse(m).answers)).toHaveLength(4);
    // Transfer off: REFUSED even from an address that would be allowed elsewhere.
    const off = new ServedZone({ ...zone(), transfer: undefined });
    expect(svc.answer(axfr, axfr.length, decoded(axfr), 'tcp', '127.0.0.1', off).rcode).toBe(5);
    expect(svc.answer(axfr, axfr.length, decoded(axfr), 'tcp', '127.0.0.1', undefined).rcode).toBe(5);
  });
});
