/**
 * Query counts per zone (src/observability/metrics.ts): sparse, so what they
 * hold follows the cells a zone has met, not the 980 cells there are; the
 * totals are the same as counting every query in a dense reference; and what
 * a UDP worker thread hands over (take) adds up on the other side (add), with
 * malformed pairs ignored.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { QueryCounts, ZoneCounts, cellLabels, pairsTotal, type Transport } from '../../src/observability/metrics.ts';

/** Every count of `q`, as `zone|qtype|rcode|transport` → n. */
function totals(q: QueryCounts): Map<string, number> {
  const out = new Map<string, number>();
  for (const [zone, cells] of q.cells) {
    cells.forEach((cell, n) => {
      const l = cellLabels(cell);
      const key = `${zone}|${l.qtype}|${l.rcode}|${l.transport}`;
      out.set(key, (out.get(key) ?? 0) + n);
    });
  }
  return out;
}

const QTYPE: Record<number, string> = { 1: 'A', 28: 'AAAA', 15: 'MX', 65: 'HTTPS', 1000: 'OTHER' };
const RCODE: Record<number, string> = { 0: 'NOERROR', 3: 'NXDOMAIN', 5: 'REFUSED', 4000: 'OTHER' };

describe('QueryCounts', () => {
  it('10,000 zones with four kinds of query each hold 64 octets a zone, not a dense row (7,840)', () => {
    const q = new QueryCounts();
    for (let z = 0; z < 10_000; z++) {
      const zone = `z${z}.test.`;
      q.count(zone, 1, 0, 'udp');
      q.count(zone, 28, 0, 'udp');
      q.count(zone, 1, 3, 'udp');
      q.count(zone, 1, 0, 'tcp');
      q.count(zone, 1, 0, 'udp');
    }
    expect(q.cells.size).toBe(10_000);
    expect(q.byteLength).toBe(10_000 * 4 * 16);
    expect(totals(q).get('z9999.test.|A|NOERROR|udp')).toBe(2);
    expect(totals(q).get('z0.test.|A|NOERROR|tcp')).toBe(1);
  });

  it('a zone that meets more cells grows its pairs by doubling, and keeps every count', () => {
    const z = new ZoneCounts(1);
    for (let cell = 0; cell < 100; cell++) z.inc(cell, cell + 1);
    for (let cell = 0; cell < 100; cell++) z.inc(cell, 1);
    expect(z.byteLength).toBe(128 * 16);
    const seen: [number, number][] = [];
    z.forEach((cell, n) => seen.push([cell, n]));
    expect(seen).toEqual(Array.from({ length: 100 }, (_, c) => [c, c + 2]));
  });

  it('counts as a dense reference does, for any mix of zones, qtypes, rcodes and transports', () => {
    const query = fc.record({
      zone: fc.constantFrom('a.test.', 'b.test.', 'c.test.', undefined),
      qtype: fc.constantFrom(1, 28, 15, 65, 1000),
      rcode: fc.constantFrom(0, 3, 5, 4000),
      transport: fc.constantFrom<Transport>('udp', 'tcp'),
    });
    fc.assert(
      fc.property(fc.array(query, { maxLength: 300 }), (queries) => {
        const q = new QueryCounts();
        const expected = new Map<string, number>();
        for (const { zone, qtype, rcode, transport } of queries) {
          q.count(zone, qtype, rcode, transport);
          const key = `${zone ?? 'none'}|${QTYPE[qtype]}|${RCODE[rcode]}|${transport}`;
          expected.set(key, (expected.get(key) ?? 0) + 1);
        }
        expect(totals(q)).toEqual(expected);
        // A worker thread's handover: take() empties this one, add() sums into the other.
        const main = new QueryCounts();
        main.count('a.test.', 1, 0, 'udp');
        const taken = q.take();
        expect(q.cells.size).toBe(0);
        // What the main thread counts as answered by the worker: the counts, not the cell numbers.
        expect([...(taken?.values() ?? [])].reduce((n, pairs) => n + pairsTotal(pairs), 0)).toBe(queries.length);
        if (taken) main.add(taken);
        const summed = new Map(expected);
        summed.set('a.test.|A|NOERROR|udp', (summed.get('a.test.|A|NOERROR|udp') ?? 0) + 1);
        expect(totals(main)).toEqual(summed);
      }),
    );
  });

  it.each([
    { name: 'a cell past the last', pairs: [980, 5] },
    { name: 'a negative cell', pairs: [-2, 5] },
    { name: 'a fractional cell', pairs: [1.5, 5] },
    { name: 'a NaN cell', pairs: [Number.NaN, 5] },
    { name: 'a negative count', pairs: [0, -5] },
    { name: 'a NaN count', pairs: [0, Number.NaN] },
    { name: 'a cell without its count', pairs: [0] },
  ])('add() ignores $name', ({ pairs }) => {
    const q = new QueryCounts();
    q.add(new Map([['a.test.', Float64Array.from(pairs)]]));
    expect(totals(q)).toEqual(new Map());
  });
});
