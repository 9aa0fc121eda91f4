/**
 * First-position counting: the slot table (stable slots, overflow, wrap-safe
 * totals, shared memory) and, on the wire, that the member counted is the
 * one the answer writes first (compileAnswer + writeAnswer + ServedZone.countFirst).
 */
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { FirstServedCounters, OVERFLOW_SLOT } from '../../src/balancing/first-served.ts';
import { compileAnswer } from '../../src/wire/answer.ts';
import { writeAnswer } from '../../src/wire/response.ts';
import { decodeQuery, QueryView } from '../../src/wire/query.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { buildQuery } from '../support/dnsclient.ts';
import type { RRset, SectionEntry, Zone } from '../../src/zone/zone.ts';

describe('FirstServedCounters slots', () => {
  it.each([
    { name: 'one slot per pool and address, from 1 (0 is the overflow)', members: [['a.|A', '192.0.2.1'], ['a.|A', '192.0.2.2'], ['b.|A', '192.0.2.1']], capacity: 8, want: [1, 2, 3], untracked: 0 },
    { name: 'the same member asked again keeps its slot', members: [['a.|A', '192.0.2.1'], ['a.|A', '192.0.2.2'], ['a.|A', '192.0.2.1']], capacity: 8, want: [1, 2, 1], untracked: 0 },
    { name: 'beyond capacity members share the overflow slot and are untracked', members: [['a.|A', '192.0.2.1'], ['a.|A', '192.0.2.2'], ['a.|A', '192.0.2.3'], ['a.|A', '192.0.2.3']], capacity: 3, want: [1, 2, OVERFLOW_SLOT, OVERFLOW_SLOT], untracked: 1 },
  ])('$name', ({ members, capacity, want, untracked }) => {
    const c = new FirstServedCounters(capacity);
    expect(members.map(([pool, address]) => c.slot(pool!, address!))).toEqual(want);
    expect(c.untracked).toBe(untracked);
  });

  it('a slot is never reused: a member that comes back after others keeps its slot', () => {
    const c = new FirstServedCounters(16);
    const first = c.slot('www.|A', '192.0.2.1');
    for (let i = 2; i < 10; i++) c.slot('www.|A', `192.0.2.${i}`);
    expect(c.slot('www.|A', '192.0.2.1')).toBe(first);
  });
});

describe('FirstServedCounters totals', () => {
  it.each([
    { name: 'counts add up', start: 0, adds: [5, 7], want: 12 },
    { name: 'a cell wrapping at 2^32 between reads: the total goes on past it', start: 2 ** 32 - 3, adds: [2, 5], want: 2 ** 32 + 4 },
  ])('$name', ({ start, adds, want }) => {
    const c = new FirstServedCounters(4);
    const slot = c.slot('p.|A', '192.0.2.1');
    c.counts[slot] = start;
    c.totalOf(slot); // the main thread reads: `start` answers so far
    for (const n of adds) {
      for (let i = 0; i < n; i++) c.count(slot);
      c.totalOf(slot);
    }
    expect(c.total('p.|A', '192.0.2.1')).toBe(want);
  });

  it('a member without a slot has no total; answers for untracked members are counted as uncounted', () => {
    const c = new FirstServedCounters(2);
    expect(c.total('p.|A', '192.0.2.1')).toBeNull();
    expect(c.slot('p.|A', '192.0.2.1')).toBe(1);
    expect(c.slot('p.|A', '192.0.2.2')).toBe(OVERFLOW_SLOT);
    c.count(OVERFLOW_SLOT);
    expect(c.uncounted).toBe(1);
    expect(c.total('p.|A', '192.0.2.2')).toBeNull();
  });

  it('another thread counting into the shared buffer is seen by the main thread', async () => {
    const c = new FirstServedCounters(8);
    const slot = c.slot('p.|A', '192.0.2.1');
    const code = `const { workerData, parentPort } = require('node:worker_threads');
const cells = new Uint32Array(workerData.buffer);
for (let i = 0; i < 1000; i++) Atomics.add(cells, workerData.slot, 1);
parentPort.postMessage('done');`;
    const w = new Worker(code, { eval: true, workerData: { buffer: c.buffer, slot } });
    await new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
    await w.terminate();
    expect(c.totalOf(slot)).toBe(1000);
  });
});

describe('countFirst counts the record written first', () => {
  const addresses = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
  const records = addresses.map((address) => ({ kind: 'A', address }) as const);
  const rrset = { owner: 'www.example.test.', ownerKey: 'www.example.test', type: 1, ttl: 30, records, rotates: true, maxAnswers: undefined, rotationSlot: 0, pool: { balance: {} } } as unknown as RRset;
  // Only what ServedZone's constructor reads: countFirst itself needs the plan and the counters.
  const zone = { origin: 'example.test.', originKey: 'example.test', pooled: [], rotationSlots: 1 } as unknown as Zone;

  it.each([
    { name: 'plain rotation of three', records: 3, weights: undefined, maxAnswers: undefined, want: [1, 1, 1] },
    { name: 'weights 3,1,0', records: 3, weights: [3, 1, 0], maxAnswers: undefined, want: [3, 1, 0] },
    { name: 'weights 2,1,1 with maxAnswers 1', records: 3, weights: [2, 1, 1], maxAnswers: 1, want: [2, 1, 1] },
    { name: 'a pool serving one record (no rotation)', records: 1, weights: undefined, maxAnswers: undefined, want: [1, 0, 0] },
  ])('$name', ({ records: n, weights, maxAnswers, want }) => {
    const counters = new FirstServedCounters(8);
    const slots = addresses.map((a) => counters.slot('www.example.test.|A', a));
    const served = new ServedZone(zone, undefined, undefined, undefined, undefined, counters);
    const set = { ...rrset, maxAnswers } as RRset;
    const entry: SectionEntry = { rrset: set, records: records.slice(0, n), owner: set.owner, ownerKey: set.ownerKey, ttl: 30, weights, firstSlots: slots.slice(0, n) };
    const msg = buildQuery('www.example.test', { id: 1 });
    const view = new QueryView();
    decodeQuery(msg, msg.length, view);
    const plan = compileAnswer({ rcode: 0, authoritative: true, answer: [entry], authority: [], additional: [] }, { qnameKey: view.qnameKey, qnameWireLength: view.qnameWireLength, sharedSuffix: undefined });
    const period = plan.rotation?.period ?? 1;
    const written = [0, 0, 0];
    for (let k = 0; k < period; k++) {
      const wire = writeAnswer(msg, view, plan, k, 512);
      const at = view.questionEnd + 12; // owner pointer 2, type 2, class 2, ttl 4, rdlength 2
      written[addresses.indexOf([...wire.subarray(at, at + 4)].join('.'))]!++;
      served.countFirst(plan, k);
    }
    expect(written).toEqual(want);
    expect(slots.map((s) => counters.totalOf(s))).toEqual(want);
  });

  it('an answer without first slots counts nothing', () => {
    const counters = new FirstServedCounters(8);
    const served = new ServedZone(zone, undefined, undefined, undefined, undefined, counters);
    const entry: SectionEntry = { rrset, records, owner: rrset.owner, ownerKey: rrset.ownerKey, ttl: 30 };
    const msg = buildQuery('www.example.test', { id: 1 });
    const view = new QueryView();
    decodeQuery(msg, msg.length, view);
    const plan = compileAnswer({ rcode: 0, authoritative: true, answer: [entry], authority: [], additional: [] }, { qnameKey: view.qnameKey, qnameWireLength: view.qnameWireLength, sharedSuffix: undefined });
    expect(plan.firstSlots).toBeUndefined();
    served.countFirst(plan, 1);
    expect([...counters.counts].every((n) => n === 0)).toBe(true);
  });
});
