/** The simulated pool as a zone file: the same YAML an operator would write, parsed by rrdns's own loader. */

export type Mechanism = 'rr' | 'weighted' | 'feedback' | 'resolvers' | 'steer' | 'ecs' | 'all';

export const MECHANISMS: Record<Mechanism, string> = {
  rr: 'plain round robin',
  weighted: 'weighted rotation (weights = capacities)',
  feedback: 'load feedback',
  resolvers: 'resolver-aware TTLs (+ steering)',
  steer: 'load feedback + resolver-aware TTLs and steering',
  ecs: 'ECS scope /24',
  all: 'feedback + resolver TTLs + ECS',
};

export interface ZoneOptions {
  mechanism: Mechanism;
  addresses: string[];
  capacities: number[];
  ttl: number;
  minTtl: number;
  checkInterval: number;
}

export function poolZone(o: ZoneOptions): string {
  const weighted = o.mechanism !== 'rr';
  const members = weighted ? o.addresses.map((a, i) => `        "${a}": { weight: ${o.capacities[i]} }`).join('\n') : '';
  const feedback = o.mechanism === 'feedback' || o.mechanism === 'steer' || o.mechanism === 'all';
  const resolvers = o.mechanism === 'resolvers' || o.mechanism === 'steer' || o.mechanism === 'all';
  const ecs = o.mechanism === 'ecs' || o.mechanism === 'all';
  const balance = [
    feedback ? `        feedback: { signal: load, interval: ${o.checkInterval} }` : '',
    resolvers ? `        resolvers: { heavyShare: 0.02, ttl: ${o.minTtl}, steer: true }` : '',
    ecs ? '        ecs: { ipv4: 24, ipv6: 56 }' : '',
  ].filter(Boolean);
  return `origin: sim.test
ttl: { default: 300, min: ${o.minTtl}, max: 86400 }
soa: { mname: ns1, rname: hostmaster, serial: 1, refresh: 3600, retry: 900, expire: 1209600, minimum: 60 }
records:
  "@":
    NS: ns1
  ns1:
    A: 127.0.0.53
  www:
    ttl: ${o.ttl}
    A: [${o.addresses.join(', ')}]
    pool:
      check: { type: http, port: 80, path: /health, interval: ${o.checkInterval}, timeout: ${o.checkInterval / 2}, fall: 2, rise: 2, load: { header: X-Load } }
${members ? `      members:\n${members}\n` : ''}${balance.length ? `      balance:\n${balance.join('\n')}\n` : ''}`;
}
