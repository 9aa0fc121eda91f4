/**
 * The pipeline's answer table (src/server/hot-answers.ts) is a shortcut to
 * what the zone store and ServedZone.plan would give, so it must never
 * outlive it: a replaced store (a reload), an invalidated zone (health or
 * weights changed) and an expired plan (health-aware TTLs) are each seen by
 * the very next query; names differing only in letter case share an answer,
 * names differing otherwise never do.
 */
import { describe, expect, it } from 'vitest';
import { QueryPipeline } from '../../src/server/pipeline.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { QueryView } from '../../src/wire/query.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { Peer } from '../../src/zone/address.ts';
import { rawQuery } from '../support/rawdns.ts';
import { decodeMessage, summarize } from '../support/wire-decode.ts';
import { parseNativeText, zoneFromText } from '../support/zone-text.ts';
import { buildZone } from '../../src/zone/zone.ts';
import { HotAnswers, setOf, SLOTS } from '../../src/server/hot-answers.ts';
import { decodeQuery } from '../../src/wire/query.ts';

const zoneV = (address: string, serial: number) => zoneFromText('hot.test', `$TTL 300\n@ SOA ns1 h ${serial} 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A ${address}\n`);

function asker(pipeline: QueryPipeline) {
  const view = new QueryView();
  const peer = new Peer();
  peer.setWords(4, 0xc0000263, 0, 0, 0, 5353);
  const out = Buffer.alloc(1232);
  return (qname: string, qtype = 1) => {
    const msg = rawQuery(qname, { qtype });
    const n = pipeline.answerDatagram(msg, msg.length, view, peer, out, 0);
    const m = decodeMessage(Buffer.from(out.subarray(0, n)));
    return { rcode: m.rcode, answer: summarize(m.answer) };
  };
}

describe('the answer table never outlives what it shortcuts', () => {
  it('a replaced zone store is seen by the next query', () => {
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map([['hot.test', new ServedZone(zoneV('192.0.2.10', 1))]]));
    const ask = asker(new QueryPipeline(store));
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.10']);
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.10']);
    store.replace(new Map([['hot.test', new ServedZone(zoneV('192.0.2.20', 2))]]));
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.20']);
    // A name outside every zone is REFUSED until a zone for it appears.
    expect(ask('www.other.test').rcode).toBe(5);
    expect(ask('www.other.test').rcode).toBe(5);
    store.replace(new Map([['hot.test', new ServedZone(zoneV('192.0.2.20', 2))], ['other.test', new ServedZone(zoneFromText('other.test', '$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.30\n'))]]));
    expect(ask('www.other.test').answer).toEqual(['www.other.test 1 192.0.2.30']);
  });

  it('an invalidated zone and an expired plan are compiled again', () => {
    let now = 0;
    const parsed = parseNativeText('origin: hot.test\nsoa: { mname: ns1, rname: h, serial: 1, minimum: 60 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n  www:\n    A: [192.0.2.40]\n    pool:\n      check: { type: http, port: 80, interval: 1s, timeout: 500ms, fall: 2, rise: 2 }\n', 'hot.test');
    const zone = buildZone(parsed.input!).zone!;
    expect(zone.pooled.length).toBe(1);
    const www = zone.nodes.get('www.hot.test')!.rrsets.get(1)!;
    const recordsOf = (address: string) => zoneV(address, 1).nodes.get('www.hot.test')!.rrsets.get(1)!.records;
    let live = recordsOf('192.0.2.41');
    // A live view serving other records than the zone file, as a health-checked pool does.
    const served = new ServedZone(zone, (rrset) => (rrset === www ? { kind: 'records', records: live, ttl: 300 } : undefined), undefined, undefined, () => now);
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map([['hot.test', served]]));
    const ask = asker(new QueryPipeline(store));
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.41']);
    live = recordsOf('192.0.2.42');
    // Neither invalidated nor expired: the answer compiled before.
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.41']);
    served.invalidate();
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.42']);
    live = recordsOf('192.0.2.43');
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.42']);
    // Live answers are compiled for LIVE_PLAN_MS: past it, the next query compiles again.
    now = 10_000;
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.43']);
  });

  it('letter case shares an entry, other names never do', () => {
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map([['hot.test', new ServedZone(zoneV('192.0.2.10', 1))]]));
    const ask = asker(new QueryPipeline(store));
    expect(ask('WWW.Hot.TEST').answer).toEqual(['www.hot.test 1 192.0.2.10']);
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.10']);
    expect(ask('wwx.hot.test').rcode).toBe(3);
    expect(ask('www.hot.test', 28).answer).toEqual([]);
    expect(ask('www.hot.test').answer).toEqual(['www.hot.test 1 192.0.2.10']);
  });

  it('a lookup is verified against the stored octets, not just the hash', () => {
    const table = new HotAnswers();
    const store = new ZoneStore<ServedZone>();
    const served = new ServedZone(zoneV('192.0.2.10', 1));
    store.replace(new Map([['hot.test', served]]));
    const view = new QueryView();
    const a = rawQuery('www.hot.test');
    decodeQuery(a, a.length, view);
    const plan = served.plan(view.qname, view.qnameKey, view.qnameWireLength, 1);
    table.store(a, view, served, plan);
    expect(table.lookup(a, view)).toBe(plan);
    // Same length, same hash forced: different octets are a miss.
    const b = rawQuery('wwx.hot.test');
    const hash = view.qnameHash;
    decodeQuery(b, b.length, view);
    view.qnameHash = hash;
    expect(table.lookup(b, view)).toBeUndefined();
    table.clear();
    decodeQuery(a, a.length, view);
    expect(table.lookup(a, view)).toBeUndefined();
    expect(SLOTS & (SLOTS - 1)).toBe(0);
  });

  it('two questions of one hash both stay (two ways); a third replaces the one used less recently', () => {
    const table = new HotAnswers();
    const served = new ServedZone(zoneV('192.0.2.10', 1));
    const view = new QueryView();
    const HASH = 0x1234567;
    // Each question decoded with the same hash forced: all three fall in one set.
    const question = (name: string) => {
      const msg = rawQuery(name);
      decodeQuery(msg, msg.length, view);
      view.qnameHash = HASH;
      return msg;
    };
    const planOf = (name: string) => {
      const msg = rawQuery(name);
      decodeQuery(msg, msg.length, view);
      return served.plan(view.qname, view.qnameKey, view.qnameWireLength, 1);
    };
    const [pa, pb, pc] = [planOf('a.hot.test'), planOf('b.hot.test'), planOf('c.hot.test')];
    const a = question('a.hot.test');
    table.store(a, view, served, pa);
    const b = question('b.hot.test');
    table.store(b, view, served, pb);
    expect(table.lookup(question('a.hot.test'), view)).toBe(pa);
    expect(table.lookup(question('b.hot.test'), view)).toBe(pb);
    // b was used last: c takes a's way.
    table.store(question('c.hot.test'), view, served, pc);
    expect(table.lookup(question('a.hot.test'), view)).toBeUndefined();
    expect(table.lookup(question('b.hot.test'), view)).toBe(pb);
    expect(table.lookup(question('c.hot.test'), view)).toBe(pc);
    // Storing a question the set holds again (its plan renewed) overwrites its own way, not the other one.
    table.store(question('c.hot.test'), view, served, pc);
    expect(table.lookup(question('b.hot.test'), view)).toBe(pb);
    expect(table.lookup(question('c.hot.test'), view)).toBe(pc);
  });

  it('256 names, in 128 pairs that hash alike, are all found after their first query', () => {
    // Two names per hash (forced, as a collision would make them): direct-mapped, one of each pair was
    // always a miss (128 of 256); with two ways none is.
    const names = Array.from({ length: 256 }, (_, i) => `n${i}.hot.test`);
    const text = `$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n${names.map((n, i) => `${n.split('.')[0]} A 10.0.${i >> 8}.${i & 255}`).join('\n')}\n`;
    const served = new ServedZone(zoneFromText('hot.test', text));
    const table = new HotAnswers();
    const view = new QueryView();
    const msgs = names.map((n) => rawQuery(n));
    // 128 hashes whose sets differ, so that each set holds exactly one pair.
    const hashes: number[] = [];
    const sets = new Set<number>();
    for (let h = 1; hashes.length < 128; h++) {
      view.qtype = 1;
      view.qnameHash = h;
      if (sets.has(setOf(view))) continue;
      sets.add(setOf(view));
      hashes.push(h);
    }
    const decode = (msg: Buffer, i: number) => {
      decodeQuery(msg, msg.length, view);
      view.qnameHash = hashes[i >> 1]!;
    };
    msgs.forEach((msg, i) => {
      decode(msg, i);
      table.store(msg, view, served, served.plan(view.qname, view.qnameKey, view.qnameWireLength, 1));
    });
    let misses = 0;
    msgs.forEach((msg, i) => {
      decode(msg, i);
      const plan = table.lookup(msg, view);
      if (plan === undefined) misses++;
      else expect(plan).toBe(served.plan(view.qname, view.qnameKey, view.qnameWireLength, 1));
    });
    expect(misses).toBe(0);
  });
});
