/**
 * Shared by `npm run failover` and `npm run demo`: a one-pool zone whose
 * round-robin name `www` is health-checked over HTTP, as the native format
 * (zones/README.md) writes it.
 *
 *   const zone = poolZone({ origin: 'demo.test', ttl: 5, members: [{ address: '127.0.0.31', port: 8080 }, …], check });
 *   fs.writeFileSync(path.join(dir, 'demo.test.yaml'), zone.yaml);
 */
import YAML from 'yaml';

export interface PoolCheck {
  /** Seconds between checks. */
  intervalS: number;
  /** Seconds between re-checks while a member's health is settling (fastInterval); absent: none. */
  fastIntervalS?: number;
  timeoutS: number;
  fall: number;
  rise: number;
  path?: string;
}

export interface PoolZoneOptions {
  origin: string;
  /** TTL of `www` (the health-aware cap may serve less). */
  ttl: number;
  members: { address: string; port: number }[];
  check: PoolCheck;
}

/** Seconds as the zone format writes a duration: 1s, 500ms. */
export function duration(seconds: number): string {
  return Number.isInteger(seconds) ? `${seconds}s` : `${Math.round(seconds * 1000)}ms`;
}

/** The zone as an object and as YAML. One check port for all members goes in the pool's check, otherwise per member. */
export function poolZone(opts: PoolZoneOptions): { object: Record<string, unknown>; yaml: string } {
  const ports = new Set(opts.members.map((m) => m.port));
  const shared = ports.size === 1 ? [...ports][0] : undefined;
  const check: Record<string, unknown> = {
    type: 'http',
    ...(shared !== undefined ? { port: shared } : {}),
    ...(opts.check.path ? { path: opts.check.path } : {}),
    interval: duration(opts.check.intervalS),
    ...(opts.check.fastIntervalS !== undefined ? { fastInterval: duration(opts.check.fastIntervalS) } : {}),
    timeout: duration(opts.check.timeoutS),
    fall: opts.check.fall,
    rise: opts.check.rise,
  };
  const pool: Record<string, unknown> = { check };
  if (shared === undefined) pool.members = Object.fromEntries(opts.members.map((m) => [m.address, { check: { port: m.port } }]));
  const object = {
    origin: opts.origin,
    ttl: { default: 300, min: 0 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
    records: {
      '@': { NS: 'ns1' },
      ns1: { A: '192.0.2.53' },
      www: { ttl: opts.ttl, A: opts.members.map((m) => m.address), pool },
    },
  };
  // Collections of plain values on one line ({ NS: ns1 }, [a, b]), the rest as blocks.
  const doc = new YAML.Document(object);
  YAML.visit(doc, {
    Collection(_key, node) {
      if (node.items.every((item) => (YAML.isPair(item) ? YAML.isScalar(item.value) : YAML.isScalar(item)))) node.flow = true;
    },
  });
  return { object, yaml: doc.toString({ lineWidth: 120, flowCollectionPadding: false }) };
}
