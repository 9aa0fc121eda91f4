/**
 * rrdns's real answer path, in-process and on simulated time: the zone is
 * parsed and built by the server's own loader, health comes from the real
 * HealthMonitor on a ManualScheduler (its checker is the simulated backends),
 * the real PoolRegistry and pool policy decide members and weights, the real
 * LoadFeedback steps effective weights, and each resolver query is a DNS
 * message answered by the real QueryPipeline (with the resolver's source
 * address, so resolver-aware TTLs and ECS see what a server would see). No
 * socket, no network: only the clock and the backends are simulated.
 */
import { parseNativeZone } from '../../src/zone/native.ts';
import { buildZone, type Zone } from '../../src/zone/zone.ts';
import { ZoneStore } from '../../src/zone/store.ts';
import { HealthMonitor } from '../../src/health/monitor.ts';
import { ManualScheduler } from '../../src/health/manual-scheduler.ts';
import type { CheckOutcome } from '../../src/health/checkers.ts';
import { PoolRegistry } from '../../src/server/pool-registry.ts';
import { ServedZone } from '../../src/server/served-zone.ts';
import { QueryPipeline } from '../../src/server/pipeline.ts';
import { AnswerCache } from '../../src/server/answer-cache.ts';
import { QueryView } from '../../src/wire/query.ts';
import { LoadFeedback } from '../../src/balancing/load-feedback.ts';
import { DemandTable } from '../../src/balancing/demand.ts';
import type { PoolSnapshot } from '../../src/observability/snapshot.ts';

/** What the simulation asks of a backend when the monitor checks it. */
export interface BackendProbe {
  /** The backend answers its checks. */
  up(index: number): boolean;
  /** Utilisation it reports (X-Load) over the last second. */
  load(index: number): number;
}

/** One answer as a resolver sees it. */
export interface SimAnswer {
  /** Indices of the backends in answer order. */
  order: number[];
  ttl: number;
  /** ECS scope prefix of the answer (0 without ECS). */
  scope: number;
}

export const ZONE_ORIGIN = 'sim.test';
export const POOL_NAME = 'www.sim.test';
const START = 1_700_000_000_000;

export class AnswerPath {
  readonly scheduler = new ManualScheduler(START);
  private readonly monitor: HealthMonitor;
  private readonly registry: PoolRegistry;
  private readonly feedback: LoadFeedback;
  private readonly served: ServedZone;
  private readonly pipeline: QueryPipeline;
  private readonly view = new QueryView();
  private readonly addressIndex = new Map<string, number>();
  private nowMs = 0;
  private nextId = 1;

  constructor(zoneText: string, backendAddresses: readonly string[], probe: BackendProbe) {
    const parsed = parseNativeZone(zoneText, { file: 'sim.yaml', defaultOrigin: ZONE_ORIGIN, readMasterFile: () => '' });
    if (!parsed.input) throw new Error(`simulated zone does not parse: ${parsed.issues.map((i) => i.message).join('; ')}`);
    const built = buildZone(parsed.input);
    if (!built.zone) throw new Error(`simulated zone does not build: ${built.issues.map((i) => i.message).join('; ')}`);
    const zone: Zone = built.zone;
    backendAddresses.forEach((a, i) => this.addressIndex.set(a, i));
    const check = async (target: { address: string }): Promise<CheckOutcome> => {
      const i = this.addressIndex.get(target.address)!;
      if (!probe.up(i)) return { ok: false, detail: 'ECONNREFUSED', latencyMs: 0 };
      return { ok: true, detail: 'HTTP 200', status: 200, latencyMs: 1, load: probe.load(i) };
    };
    this.monitor = new HealthMonitor({ check, scheduler: this.scheduler, onChange: () => this.served.invalidate() });
    this.feedback = new LoadFeedback({ state: (key) => this.monitor.state(key) });
    this.registry = new PoolRegistry(this.monitor, this.feedback);
    const entries = PoolRegistry.plan([zone]);
    this.monitor.setTargets(PoolRegistry.targets(entries));
    this.registry.use(entries);
    const live = (rrset: Parameters<PoolRegistry['liveSet']>[0]) => this.registry.liveSet(rrset);
    this.served = new ServedZone(zone, live, undefined, new AnswerCache(), () => this.nowMs);
    const store = new ZoneStore<ServedZone>();
    store.replace(new Map([[zone.originKey, this.served]]));
    // Resolver-aware TTLs measure each resolver's demand in the server's own table, on simulated time.
    this.pipeline = new QueryPipeline(store, { demand: { table: new DemandTable(4096, undefined, [0x9e3779b9, 0x85ebca6b]), now: () => this.nowMs } });
  }

  /** Simulated time in ms since the start. */
  get now(): number {
    return this.nowMs;
  }

  /** Moves simulated time to `ms`: health checks due run (against the probe), then load feedback steps. */
  async advanceTo(ms: number): Promise<void> {
    await this.scheduler.advance(START + ms - this.scheduler.now());
    this.nowMs = ms;
    const pools = this.registry.pools();
    if (this.feedback.step(pools, this.scheduler.now(), (entry) => this.registry.usableMembers(entry), (entry) => this.registry.servedTtlMs(entry))) this.served.invalidate();
  }

  /** Sets the clock for the queries that follow (between advanceTo steps). */
  setQueryTime(ms: number): void {
    this.nowMs = ms;
  }

  /** One resolver's query for the pooled name, from `source`, optionally with an ECS option for `ecsSubnet` (/24). */
  query(source: string, ecsSubnet?: readonly [number, number, number]): SimAnswer {
    const msg = buildQuery(this.nextId++ & 0xffff, ecsSubnet);
    const out = this.pipeline.handle(msg, msg.length, 'udp', this.view, source);
    if (!out || !Buffer.isBuffer(out)) throw new Error('the pipeline gave no answer');
    return this.decode(out);
  }

  snapshot(): PoolSnapshot[] {
    return this.registry.snapshot();
  }

  private decode(msg: Buffer): SimAnswer {
    const an = msg.readUInt16BE(6);
    const ar = msg.readUInt16BE(10);
    let at = skipName(msg, 12) + 4;
    const order: number[] = [];
    let ttl = 0;
    let scope = 0;
    for (let i = 0; i < an + ar + msg.readUInt16BE(8); i++) {
      at = skipName(msg, at);
      const type = msg.readUInt16BE(at);
      const rrTtl = msg.readUInt32BE(at + 4);
      const rdlength = msg.readUInt16BE(at + 8);
      const rdata = at + 10;
      if (type === 1 && i < an) {
        const address = `${msg[rdata]}.${msg[rdata + 1]}.${msg[rdata + 2]}.${msg[rdata + 3]}`;
        const index = this.addressIndex.get(address);
        if (index !== undefined) order.push(index);
        ttl = rrTtl;
      } else if (type === 41) {
        // OPT: find ECS (option 8): family(2) source(1) scope(1) address.
        for (let o = rdata; o + 4 <= rdata + rdlength; ) {
          const code = msg.readUInt16BE(o);
          const len = msg.readUInt16BE(o + 2);
          if (code === 8 && len >= 4) scope = msg[o + 7]!;
          o += 4 + len;
        }
      }
      at = rdata + rdlength;
    }
    return { order, ttl, scope };
  }
}

function skipName(msg: Buffer, at: number): number {
  for (;;) {
    const len = msg[at]!;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2;
    at += 1 + len;
  }
}

/** An A query for the pooled name with EDNS (and ECS for a /24 when given). */
function buildQuery(id: number, ecs?: readonly [number, number, number]): Buffer {
  const labels = POOL_NAME.split('.');
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const option = ecs ? Buffer.from([0, 8, 0, 7, 0, 1, 24, 0, ...ecs]) : Buffer.alloc(0);
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(41, 1);
  opt.writeUInt16BE(1232, 3);
  opt.writeUInt16BE(option.length, 9);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0000, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(1, 10);
  return Buffer.concat([header, qname, Buffer.from([0, 1, 0, 1]), opt, option]);
}
