/**
 * Who asks: a deterministic population of caches in front of the clients.
 * Resolvers' client counts follow a Zipf law (rank r gets a share ∝ r^-s),
 * so a few big resolvers (carrier proxies, large ISPs, public resolvers)
 * serve most clients; browser-like caches serve one client each and keep an
 * answer at least a minute. Some resolvers stretch TTLs (serve an answer
 * longer than told), some clamp them up to a minimum, as measured in the
 * wild. The largest resolvers may send ECS (RFC 7871) for their clients'
 * subnets, as public resolvers do.
 */
import { prng } from '../../test/support/rawdns.ts';

export { prng };

/** An exponential variate of `rate` per second, in ms (the gap to a Poisson process's next event). */
export function exponentialMs(random: () => number, rate: number): number {
  return (-Math.log(1 - random()) / rate) * 1000;
}

export interface PopulationOptions {
  resolvers: number;
  zipf: number;
  clients: number;
  browsers: number;
  /** Requests per second of one client. */
  clientRate: number;
  stretchShare: number;
  stretchTo: number;
  clampShare: number;
  clampTo: number;
  browserMinTtl: number;
  /** The largest this-many resolvers send ECS. */
  ecsResolvers: number;
  /** Clients per /24 subnet behind an ECS-sending resolver. */
  clientsPerSubnet: number;
}

/** One cache that asks rrdns: a resolver, one client subnet of an ECS-sending resolver, or a browser. */
export interface Cache {
  kind: 'resolver' | 'browser';
  /** The resolver (or browser) it belongs to: its rank, 1 = largest. */
  rank: number;
  clients: number;
  /** Requests per second its clients make. */
  rate: number;
  /** Source address of its queries (in-process only: no packet leaves the process). */
  source: string;
  /** The /24 its clients are in, sent as ECS; undefined for caches that send no ECS. */
  ecs: [number, number, number] | undefined;
  /** What the cache does with the TTL it is given (seconds → seconds). */
  ttlRule: 'honour' | 'stretch' | 'clamp' | 'browser';
}

/** The source address of resolver `rank`: each resolver gets its own /24 (127.x.y.1), inside loopback. */
const sourceOf = (rank: number) => `127.${(rank >> 8) & 255}.${rank & 255}.1`;

export function makePopulation(o: PopulationOptions, random: () => number): Cache[] {
  let harmonic = 0;
  for (let r = 1; r <= o.resolvers; r++) harmonic += r ** -o.zipf;
  const caches: Cache[] = [];
  const resolverClients = o.clients - o.browsers;
  for (let rank = 1; rank <= o.resolvers; rank++) {
    const clients = Math.max(1, Math.round((resolverClients * rank ** -o.zipf) / harmonic));
    const u = random();
    const ttlRule = u < o.stretchShare ? 'stretch' : u < o.stretchShare + o.clampShare ? 'clamp' : 'honour';
    const base = { kind: 'resolver' as const, rank, source: sourceOf(rank), ttlRule } satisfies Partial<Cache>;
    if (rank <= o.ecsResolvers) {
      // One cache entry per client subnet when rrdns answers with a scope; the simulation merges them when it answers scope 0.
      const subnets = Math.max(1, Math.round(clients / o.clientsPerSubnet));
      for (let s = 0; s < subnets; s++) {
        const share = Math.round(clients / subnets);
        caches.push({ ...base, clients: share, rate: share * o.clientRate, ecs: [10, (rank * 7 + (s >> 8)) & 255, s & 255] });
      }
    } else {
      caches.push({ ...base, clients, rate: clients * o.clientRate, ecs: undefined });
    }
  }
  for (let b = 0; b < o.browsers; b++) {
    const rank = o.resolvers + 1 + b;
    caches.push({ kind: 'browser', rank, clients: 1, rate: o.clientRate, source: sourceOf(rank), ecs: undefined, ttlRule: 'browser' });
  }
  return caches;
}

/** The TTL a cache actually keeps an answer for (seconds). */
export function keptTtl(rule: Cache['ttlRule'], ttl: number, o: PopulationOptions): number {
  switch (rule) {
    case 'stretch':
      return Math.max(ttl, o.stretchTo);
    case 'clamp':
      return Math.max(ttl, o.clampTo);
    case 'browser':
      return Math.max(ttl, o.browserMinTtl);
    default:
      return ttl;
  }
}
