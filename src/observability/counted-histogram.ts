/**
 * A Prometheus histogram with one label whose values are fixed up front,
 * counted in place: `observe(labelIndex, value)` adds to a Float64Array and
 * allocates nothing. prom-client's Histogram makes a label object, validates
 * it and builds a hash string on every observe(); at 5,000 health-check
 * results a second on the answering thread that was ~0.5 MB/s of garbage
 * (young-generation collections, each a pause for the answers).
 *
 * It registers as a prom-client metric (the registry only needs name, help,
 * type, aggregator, get() and reset()), and its exposition is the same as
 * prom-client's Histogram for the same observations: cumulative `_bucket`
 * lines with `le`, then `+Inf`, `_sum` and `_count` per label value
 * (test/unit/counted-histogram.test.ts compares the two).
 */
import type { Registry } from './prom-client.ts';

/** One exposition line as the registry reads it. */
interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface CountedHistogramOptions<L extends string> {
  name: string;
  help: string;
  labelName: string;
  /** Every value the label takes; observe() names one by its index here. */
  labelValues: readonly L[];
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registers: readonly Registry[];
}

export class CountedHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #labelName: string;
  readonly #labelValues: readonly L[];
  readonly #bounds: readonly number[];
  /** Per label value: a count per bucket (not cumulative), then the +Inf count, then the sum. */
  readonly #cells: Float64Array[];

  constructor(o: CountedHistogramOptions<L>) {
    for (let i = 1; i < o.buckets.length; i++) {
      if (!(o.buckets[i]! > o.buckets[i - 1]!)) throw new Error(`${o.name}: bucket bounds must ascend`);
    }
    this.name = o.name;
    this.help = o.help;
    this.#labelName = o.labelName;
    this.#labelValues = o.labelValues;
    this.#bounds = o.buckets;
    this.#cells = o.labelValues.map(() => new Float64Array(o.buckets.length + 2));
    // The registry's Metric type is a class; it reads only the members this one has.
    for (const r of o.registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** Counts `value` under the label value at `labelIndex`. Non-finite values are ignored (prom-client throws). */
  observe(labelIndex: number, value: number): void {
    const cells = this.#cells[labelIndex];
    if (cells === undefined || !Number.isFinite(value)) return;
    const bounds = this.#bounds;
    let b = 0;
    while (b < bounds.length && value > bounds[b]!) b++;
    cells[b]!++;
    cells[bounds.length + 1]! += value;
  }

  /** The registry's reset: every count and sum to zero. */
  reset(): void {
    for (const c of this.#cells) c.fill(0);
  }

  /** What the registry prints (scrape time only: allocating here is fine). */
  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    const n = this.#bounds.length;
    this.#labelValues.forEach((lv, i) => {
      const cells = this.#cells[i]!;
      const label = { [this.#labelName]: lv };
      let acc = 0;
      for (let b = 0; b < n; b++) {
        acc += cells[b]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: this.#bounds[b]!, ...label }, value: acc });
      }
      const count = acc + cells[n]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...label }, value: count });
      values.push({ metricName: `${this.name}_sum`, labels: label, value: cells[n + 1]! });
      values.push({ metricName: `${this.name}_count`, labels: label, value: count });
    });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
