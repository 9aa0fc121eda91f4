/**
 * Server lifecycle: load zones, bind UDP+TCP on every listen address (one port
 * for both), serve, reload atomically, close gracefully. `start()` and
 * `close()` are explicit; `close()` is idempotent. Dependencies (logger) are
 * injected so tests can capture or silence them.
 */
import type dgram from 'node:dgram';
import { ErrorCode, RrdnsError, ZoneValidationError, type ZoneIssue } from '../errors.ts';
import type { ServerConfig } from '../config/schema.ts';
import { createLogger, type Logger } from '../observability/log.ts';
import { loadZoneDir } from '../zone/load.ts';
import { nameToText } from '../zone/name.ts';
import { ZoneStore } from '../zone/store.ts';
import { bindUdp, TcpListener } from '../wire/transport.ts';
import { QueryPipeline } from './pipeline.ts';
import { ServedZone } from './served-zone.ts';
import { typeToText } from '../zone/records.ts';

export interface ServerDeps {
  logger?: Logger;
}

export interface BoundAddress {
  host: string;
  port: number;
}

/** Tries to get the same port for UDP and TCP when the port is ephemeral. */
const EPHEMERAL_BIND_ATTEMPTS = 8;

export class RrdnsServer {
  readonly config: ServerConfig;
  readonly log: Logger;
  readonly store = new ZoneStore<ServedZone>();
  private readonly pipeline: QueryPipeline;
  private udpSockets: dgram.Socket[] = [];
  private tcpListeners: TcpListener[] = [];
  private bound: BoundAddress[] = [];
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  private closing: Promise<void> | undefined;

  constructor(config: ServerConfig, deps: ServerDeps = {}) {
    this.config = config;
    this.log = deps.logger ?? createLogger(config.logLevel);
    const debug = this.log.isLevelEnabled('debug');
    this.pipeline = new QueryPipeline(this.store, {
      chaosIdentity: config.identity,
      // Per-query logging costs; it exists only at debug level.
      observe: debug
        ? (q, rcode, zone, transport) =>
            this.log.debug({ qname: q.qname, qtype: typeToText(q.qtype), rcode, zone: zone ? nameToText(zone.zone.origin) : undefined, transport }, 'query')
        : undefined,
    });
  }

  /** Addresses actually bound (ports resolved when 0 was asked for). */
  get addresses(): readonly BoundAddress[] {
    return this.bound;
  }

  /** Transport counters, for observability and tests. */
  transportStats(): { tcpConnections: number; tcpPeakQueuedBytes: number } {
    return {
      tcpConnections: this.tcpListeners.reduce((n, t) => n + t.connectionCount, 0),
      tcpPeakQueuedBytes: Math.max(0, ...this.tcpListeners.map((t) => t.peakQueuedBytes)),
    };
  }

  /** Loads the zones directory fully; throws ZoneValidationError with every issue. */
  private loadZones(): Map<string, ServedZone> {
    const result = loadZoneDir(this.config.zonesDir);
    if (result.issues.length > 0) throw new ZoneValidationError(result.issues);
    return new Map(result.zones.map((z) => [z.originKey, new ServedZone(z)]));
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new RrdnsError(ErrorCode.SERVER_STATE, `start() called on a ${this.state} server`);
    this.state = 'starting';
    try {
      this.store.replace(this.loadZones());
      for (const { host, port } of this.config.listen) this.bound.push(await this.bindBoth(host, port));
    } catch (e) {
      await this.shutdownSockets();
      this.state = 'closed';
      throw e;
    }
    this.state = 'running';
    this.log.info(
      {
        listen: this.bound.map((b) => (b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`)),
        zones: [...this.store.all()].map((s) => ({ origin: nameToText(s.zone.origin), file: s.zone.source, names: s.zone.nodes.size })),
      },
      'rrdns listening',
    );
  }

  private async bindBoth(host: string, port: number): Promise<BoundAddress> {
    const handler = this.pipeline.handle.bind(this.pipeline);
    const onError = (err: unknown, where: string) => this.log.error({ err, where }, 'transport error');
    for (let attempt = 0; ; attempt++) {
      let udp: dgram.Socket | undefined;
      try {
        udp = await bindUdp(host, port, handler, onError);
        const udpPort = udp.address().port;
        const tcp = new TcpListener(handler, this.config.tcp, onError);
        await tcp.listen(host, udpPort);
        this.udpSockets.push(udp);
        this.tcpListeners.push(tcp);
        return { host, port: udpPort };
      } catch (e) {
        udp?.close();
        const code = (e as NodeJS.ErrnoException).code;
        if (port === 0 && code === 'EADDRINUSE' && attempt < EPHEMERAL_BIND_ATTEMPTS) continue;
        throw new RrdnsError(ErrorCode.LISTEN_FAILED, `cannot listen on ${host}:${port}: ${code ?? (e as Error).message}`, { cause: e });
      }
    }
  }

  /**
   * Re-reads the zones directory. The new set is parsed and validated in full
   * before it replaces the old one in a single swap; on any error the old set
   * keeps serving and the issues are returned.
   */
  reload(): { ok: true; zones: number } | { ok: false; issues: readonly ZoneIssue[] } {
    try {
      const next = this.loadZones();
      this.store.replace(next);
      this.log.info({ zones: [...next.values()].map((s) => nameToText(s.zone.origin)) }, 'zones reloaded');
      return { ok: true, zones: next.size };
    } catch (e) {
      const issues = e instanceof ZoneValidationError ? e.issues : [{ file: this.config.zonesDir, message: (e as Error).message }];
      this.log.error({ issues }, 'zone reload failed; previous zones keep serving');
      return { ok: false, issues };
    }
  }

  /** Graceful and idempotent: stops accepting, lets TCP answers flush, closes sockets. */
  close(): Promise<void> {
    if (!this.closing) {
      this.state = 'closing';
      this.closing = this.shutdownSockets().then(() => {
        this.state = 'closed';
        this.log.info('rrdns stopped');
      });
    }
    return this.closing;
  }

  private async shutdownSockets(): Promise<void> {
    const udp = this.udpSockets.splice(0);
    const tcp = this.tcpListeners.splice(0);
    await Promise.all([
      ...udp.map((s) => new Promise<void>((r) => s.close(() => r()))),
      ...tcp.map((t) => t.close()),
    ]);
  }
}

export async function startServer(config: ServerConfig, deps: ServerDeps = {}): Promise<RrdnsServer> {
  const server = new RrdnsServer(config, deps);
  await server.start();
  return server;
}
