/**
 * The cluster's metrics (src/cluster/), registered in the server's registry
 * only when the instance runs in a cluster: gauges read at scrape time from
 * the node, counters and the propagation histogram fed by it.
 */
import { Counter, Gauge, Histogram, type Registry } from './prom-client.ts';

export interface ClusterGauges {
  degraded: number;
  members: number;
  checks: number;
  probed: number;
}

/** Seconds from a verdict written elsewhere to its arrival here (clock skew between hosts applies). */
const PROPAGATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function registerClusterMetrics(registry: Registry, gauges: () => ClusterGauges) {
  const registers = [registry];
  const gauge = (name: string, help: string, pick: (g: ClusterGauges) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(pick(gauges()));
      },
    });
  gauge('rrdns_cluster_degraded', '1 while etcd is unreachable, partitioned or slow: answers come from this instance\'s own verdicts and the last overrides it knew.', (g) => g.degraded);
  gauge('rrdns_cluster_members', 'Live instances this one sees in the cluster (itself included).', (g) => g.members);
  gauge('rrdns_cluster_checks', 'Checks the served pools use.', (g) => g.checks);
  gauge('rrdns_cluster_checks_probed', 'Checks this instance probes (the others come from other instances: checkers: K).', (g) => g.probed);
  const writes = new Counter({ name: 'rrdns_cluster_verdict_writes_total', help: 'Verdicts this instance wrote to (or withdrew from) etcd.', registers });
  const reconnects = new Counter({ name: 'rrdns_cluster_reconnects_total', help: 'Returns from the degraded state (etcd reachable again, view resynchronised).', registers });
  const errors = new Counter({ name: 'rrdns_cluster_etcd_errors_total', help: 'etcd requests and streams that failed, by operation.', labelNames: ['op'] as const, registers });
  const propagation = new Histogram({ name: 'rrdns_cluster_verdict_propagation_seconds', help: 'Time from another instance writing a verdict to its arrival here.', buckets: PROPAGATION_BUCKETS, registers });
  return {
    verdictWrites: (n: number) => writes.inc(n),
    reconnect: () => reconnects.inc(),
    etcdError: (op: string) => errors.inc({ op }),
    propagation: (s: number) => propagation.observe(s),
  };
}
