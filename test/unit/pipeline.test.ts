/**
 * The query pipeline's zone choice: longest suffix, except DS at the apex of
 * a served child zone, which the served parent answers (RFC 4035 §3.1.4.1).
 */
import { describe, expect, it } from 'vitest';
import { QueryPipeline } from '../../src/server/pipeline.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { QueryView } from '../../src/wire/query.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { rawQuery } from '../support/rawdns.ts';
import { decodeMessage, summarize } from '../support/wire-decode.ts';
import { zoneFromText } from '../support/zone-text.ts';

const parent = zoneFromText('example.test', '$TTL 300\n@ SOA ns1 parent 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nchild NS ns1.child\nns1.child A 192.0.2.2\nchild TYPE43 \\# 4 30390d02\n');
const child = zoneFromText('child.example.test', '$TTL 300\n@ SOA ns1 child 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.2\nwww A 192.0.2.3\n');
const lonely = zoneFromText('lonely.test', '$TTL 300\n@ SOA ns1 lonely 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.4\n');

function ask(store: ZoneStore<ServedZone>, qname: string, qtype: number) {
  const pipeline = new QueryPipeline(store);
  const msg = rawQuery(qname, { qtype });
  const out = pipeline.handle(msg, msg.length, 'udp', new QueryView()) as Buffer;
  return decodeMessage(out);
}

describe('zone choice', () => {
  const both = new ZoneStore<ServedZone>();
  both.replace(new Map([parent, child, lonely].map((z) => [z.originKey, new ServedZone(z)])));

  it.each([
    { name: 'DS at a served child apex comes from the parent', q: 'child.example.test', type: 43, rcode: 0, aa: true, answer: ['child.example.test 43'], authority: [] as string[] },
    { name: 'DS at a child apex in other letter case too', q: 'CHILD.example.test', type: 43, rcode: 0, aa: true, answer: ['child.example.test 43'], authority: [] },
    { name: 'other types at the child apex come from the child', q: 'child.example.test', type: 6, rcode: 0, aa: true, answer: ['child.example.test 6 ns1.child.example.test child.child.example.test'], authority: [] },
    { name: 'names inside the child come from the child', q: 'www.child.example.test', type: 1, rcode: 0, aa: true, answer: ['www.child.example.test 1 192.0.2.3'], authority: [] },
    { name: 'DS at an apex whose parent is not served stays with the zone (NODATA)', q: 'lonely.test', type: 43, rcode: 0, aa: true, answer: [], authority: ['lonely.test 6 ns1.lonely.test lonely.lonely.test'] },
    { name: 'outside every zone: REFUSED', q: 'example.com', type: 1, rcode: 5, aa: false, answer: [], authority: [] },
  ])('$name', ({ q, type, rcode, aa, answer, authority }) => {
    const m = ask(both, q, type);
    expect(m.rcode).toBe(rcode);
    expect(m.aa).toBe(aa);
    expect(summarize(m.answer).map((l) => (type === 43 ? l.split(' ').slice(0, 2).join(' ') : l))).toEqual(answer);
    expect(summarize(m.authority)).toEqual(authority);
  });
});
