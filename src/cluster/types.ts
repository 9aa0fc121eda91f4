/**
 * Shapes the cluster's parts share (node.ts wires them): the ports to the
 * server (monitor, overrides), the metrics sink, the options.
 */
import type { ClusterConfig } from '../config/schema.ts';
import type { Logger } from '../observability/log.ts';
import type { LogLimiter } from '../observability/log-limiter.ts';
import type { TargetState } from '../health/monitor.ts';
import type { CheckTarget } from '../health/target.ts';
import type { AdminOverride } from '../zone/zone.ts';
import type { ClusterStore } from './store.ts';

export type ClusterState = 'connecting' | 'connected' | 'degraded' | 'closed';

/** What the cluster reads from the health monitor, and the probing switch (the server's ProbeSwitch, source 'cluster'). */
export interface MonitorPort {
  state(key: string): TargetState | undefined;
  target(key: string): CheckTarget | undefined;
  timeToPossibleChange(key: string): number;
  setProbing?(key: string, on: boolean): void;
}

/** The server side of shared overrides. */
export interface OverridePort {
  /** Applies an override that came from etcd (null clears), writing the state directory too. */
  apply(owner: string, address: string, value: AdminOverride | null): void;
  /** The API overrides in force here with the time each was set (epoch ms; 0 unknown). */
  local(): Iterable<{ owner: string; address: string; override: AdminOverride; at: number }>;
  /**
   * Where clears made here that etcd has not been told yet are kept across a
   * restart (`owner|address` → epoch ms of the clear): without it, a clear made
   * while etcd was away and then a restart would let etcd's older value back.
   */
  clears?: { load(): Iterable<[string, number]>; save(pending: ReadonlyMap<string, number>): void };
}

export interface ClusterMetricsSink {
  verdictWrites(n: number): void;
  etcdError(op: string): void;
  reconnect(): void;
  propagation(seconds: number): void;
}

export interface ClusterNodeOptions {
  config: ClusterConfig;
  instance: string;
  /** The etcd client (store.ts openEtcdStore); opened by the caller, so a bad TLS file fails the start. */
  store: ClusterStore;
  monitor: MonitorPort;
  overrides: OverridePort;
  /** The combined view changed (a verdict, a member, the state): compiled answers must be redone. */
  onViewChange: () => void;
  log: Logger;
  logLimiter: LogLimiter;
  member: { version: string; listen: () => string[]; admin: () => string | null };
  metrics?: ClusterMetricsSink;
  /** Reconnect backoff (ms): first wait, cap. Defaults 250 ms and 5 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How often unchanged verdicts refresh their time in etcd (ms, default 30 s). */
  refreshMs?: number;
  now?: () => number;
}

export const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
