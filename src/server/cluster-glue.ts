/**
 * The server's side of the cluster (src/cluster/), kept out of server.ts:
 * imports the cluster module (and etcd3 behind it) only when --cluster-etcd
 * is given, and hands it the ports it needs: the monitor (probing wishes go
 * through the ProbeSwitch it shares with cold standby), the overrides (the
 * state directory first, then the registry), the metrics, the member record.
 */
import type { ServerConfig } from '../config/schema.ts';
import type { MonitorApi } from '../health/monitor.ts';
import type { Logger } from '../observability/log.ts';
import type { LogLimiter } from '../observability/log-limiter.ts';
import type { Metrics } from '../observability/metrics.ts';
import fs from 'node:fs';
import path from 'node:path';
import { atomicIo, type StateStore } from '../state/store.ts';
import type { AdminOverride } from '../zone/zone.ts';
import type { ClusterNode } from '../cluster/node.ts';
import type { PoolRegistry } from './pool-registry.ts';
import type { ProbeSwitch } from './probe-switch.ts';

export interface ClusterGlueDeps {
  config: ServerConfig;
  version: string;
  monitor: MonitorApi;
  probeSwitch: ProbeSwitch;
  pools: PoolRegistry;
  stateStore: () => StateStore | undefined;
  metrics: Metrics;
  log: Logger;
  logLimiter: LogLimiter;
  /** Compiled answers are redone at the end of this loop turn. */
  invalidateSoon: () => void;
  listen: () => string[];
  admin: () => string | null;
}

/** The cluster node, made and started (connecting in the background); undefined alone. */
export async function startClusterNode(d: ClusterGlueDeps): Promise<ClusterNode | undefined> {
  if (!d.config.cluster) return undefined;
  const { createCluster } = await import('../cluster/index.ts');
  const { registerClusterMetrics } = await import('../observability/cluster-metrics.ts');
  const { monitor, probeSwitch, pools } = d;
  const apply = (owner: string, address: string, override: AdminOverride | null) => {
    try {
      d.stateStore()?.setOverride(owner, address, override);
    } catch (e) {
      // Applied all the same: etcd holds it, and a restart reads it from there.
      d.log.error({ owner, address, override, err: e }, 'cluster override not written to the state directory');
    }
    pools.applyOverride(owner, address, override);
    d.invalidateSoon();
  };
  const node = await createCluster(d.config, {
    monitor: {
      state: (key) => monitor.state(key),
      target: (key) => monitor.target(key),
      timeToPossibleChange: (key) => monitor.timeToPossibleChange(key),
      setProbing: (key, on) => void probeSwitch.set('cluster', key, on),
    },
    overrides: {
      apply,
      local: () => {
        const store = d.stateStore();
        return store && d.config.stateDir !== 'off'
          ? store.overrides().map((o) => ({ owner: o.owner, address: o.address, override: o.override, at: Date.parse(o.setAt) || 0 }))
          : pools.apiOverrideList().map((o) => ({ ...o, at: 0 }));
      },
      ...(d.config.stateDir === 'off' ? {} : { clears: pendingClearsFile(path.join(d.config.stateDir, PENDING_CLEARS_FILE), d.log) }),
    },
    onViewChange: d.invalidateSoon,
    log: d.log,
    logLimiter: d.logLimiter,
    member: { version: d.version, listen: d.listen, admin: d.admin },
    metrics: registerClusterMetrics(d.metrics.registry, () => node.gauges()),
  });
  pools.setHealthView(node);
  node.start();
  return node;
}

/** Each pool member's check with its pool's `checkers` (the cluster decides from these who probes what). */
export function clusterChecks(entries: Iterable<{ spec: { checkers?: number | undefined }; members: { target: { key: string } }[] }>): { key: string; checkers: number | undefined }[] {
  return [...entries].flatMap((e) => e.members.map((m) => ({ key: m.target.key, checkers: e.spec.checkers })));
}

/** Beside state.json: the override clears made here that etcd has not been told yet. */
export const PENDING_CLEARS_FILE = 'cluster-pending-clears.json';

/**
 * The pending clears kept in a file of their own (atomic, durable writes), so
 * state.json's format does not change. An unreadable or malformed file is
 * logged and read as empty: the clears it held are then lost, as they were
 * before this file existed, and nothing else is.
 */
export function pendingClearsFile(file: string, log: Logger): { load(): Iterable<[string, number]>; save(pending: ReadonlyMap<string, number>): void } {
  return {
    load() {
      let text: string | undefined;
      try {
        text = atomicIo.read(file);
      } catch (e) {
        log.error({ err: e, file }, 'cluster: cannot read the pending override clears; starting without them');
        return [];
      }
      if (text === undefined) return [];
      try {
        const parsed = JSON.parse(text) as unknown;
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        return Object.entries(parsed as Record<string, unknown>).filter((e): e is [string, number] => e[0].includes('|') && typeof e[1] === 'number' && Number.isFinite(e[1]));
      } catch (e) {
        log.error({ err: e, file }, 'cluster: the pending override clears file is malformed; starting without them');
        return [];
      }
    },
    save(pending) {
      if (pending.size === 0) {
        fs.rmSync(file, { force: true });
        return;
      }
      atomicIo.write(file, `${JSON.stringify(Object.fromEntries(pending), null, 2)}\n`);
    },
  };
}
