/**
 * Shared overrides: what this instance's API set goes to etcd (queued while
 * etcd is away), what others set arrives through the watch and is applied
 * here (and written to the state directory by the server), and on every
 * (re)connection both sides are reconciled, last writer wins
 * (reconcile.ts). A clear is written as a tombstone (`override: null`) so
 * "cleared elsewhere" is told apart from "never heard of".
 */
import type { Logger } from '../observability/log.ts';
import type { AdminOverride } from '../zone/zone.ts';
import { parseOverride, type KeyLayout } from './keys.ts';
import { reconcileOverrides, type TimedOverride } from './reconcile.ts';
import type { ClusterStore } from './store.ts';
import type { OverridePort } from './types.ts';

/** An override in etcd, or its tombstone. */
export interface EtcdOverride {
  override: AdminOverride | null;
  setBy: string;
  at: string;
}

export interface OverrideSyncDeps {
  instance: string;
  keys: KeyLayout;
  store: ClusterStore;
  port: OverridePort;
  log: Logger;
  now: () => number;
  connected: () => boolean;
  generation: () => number;
  trouble: (op: string, e: unknown, gen: number) => void;
  onViewChange: () => void;
}

/** An override record, or a tombstone a clear wrote; undefined for what is not ours. */
export function parseOverrideOrTombstone(text: string): EtcdOverride | undefined {
  const rec = parseOverride(text);
  if (rec) return rec;
  try {
    const v = JSON.parse(text) as { override?: unknown; setBy?: unknown; at?: unknown };
    if (v && v.override === null) return { override: null, setBy: typeof v.setBy === 'string' ? v.setBy : '', at: typeof v.at === 'string' ? v.at : '' };
  } catch {
    /* not ours */
  }
  return undefined;
}

function splitKey(key: string): [string, string] {
  const bar = key.lastIndexOf('|');
  return [key.slice(0, bar), key.slice(bar + 1)];
}

export class OverrideSync {
  readonly #d: OverrideSyncDeps;
  /** Overrides as etcd holds them (tombstones included), keyed `owner|address`. */
  readonly #etcd = new Map<string, EtcdOverride>();
  /** Clears made here that etcd has not been told (so a resync does not bring the old value back). */
  readonly #pendingClears = new Map<string, number>();
  /** Writes waiting for etcd (one per member: the latest). */
  readonly #queue = new Map<string, TimedOverride>();

  constructor(deps: OverrideSyncDeps) {
    this.#d = deps;
    for (const [key, at] of deps.port.clears?.load() ?? []) this.#pendingClears.set(key, at);
  }

  /** Kept across restarts (the state directory), so a clear etcd has not heard of is not undone by its older value. */
  #saveClears(): void {
    try {
      this.#d.port.clears?.save(this.#pendingClears);
    } catch (e) {
      this.#d.log.error({ err: e }, 'cluster: cannot keep the pending override clears in the state directory');
    }
  }

  /** Overrides in force in etcd (tombstones not counted). */
  get count(): number {
    return [...this.#etcd.values()].filter((o) => o.override !== null).length;
  }

  /**
   * Set (null: cleared) through this instance's API, already kept in the
   * state directory and applied here: it goes to etcd now, or when etcd is back.
   */
  publish(owner: string, address: string, value: AdminOverride | null): void {
    const key = `${owner}|${address}`;
    const at = this.#d.now();
    const hadClear = this.#pendingClears.has(key);
    if (value === null) this.#pendingClears.set(key, at);
    else this.#pendingClears.delete(key);
    if (value === null || hadClear) this.#saveClears();
    this.#queue.set(key, { override: value, at });
    void this.write();
  }

  /** A snapshot replaces what etcd is known to hold. */
  load(entries: Iterable<{ owner: string; address: string; value: string }>): void {
    this.#etcd.clear();
    for (const e of entries) {
      const rec = parseOverrideOrTombstone(e.value);
      if (rec) this.#etcd.set(`${e.owner}|${e.address}`, rec);
    }
  }

  /** A watch event for an override key (a deleted key clears too). */
  event(owner: string, address: string, value: string | null): void {
    const rec = value === null ? { override: null, setBy: '', at: new Date(this.#d.now()).toISOString() } : parseOverrideOrTombstone(value);
    if (!rec) return;
    const key = `${owner}|${address}`;
    const before = this.#etcd.get(key);
    this.#etcd.set(key, rec);
    // Our own write coming back through the watch, or one already applied.
    if (before && before.override === rec.override && before.at === rec.at) return;
    if (this.#queue.has(key)) return;
    if (this.#pendingClears.delete(key)) this.#saveClears();
    this.#d.port.apply(owner, address, rec.override);
    this.#d.log.info({ owner, address, override: rec.override, setBy: rec.setBy }, 'cluster: override applied from etcd');
    this.#d.onViewChange();
  }

  /** After a (re)connection and its snapshot: ours against etcd's, newest wins; then the queue goes out. */
  async sync(): Promise<void> {
    const local = new Map<string, TimedOverride>();
    for (const o of this.#d.port.local()) local.set(`${o.owner}|${o.address}`, { override: o.override, at: o.at });
    for (const [key, at] of this.#pendingClears) if (!local.has(key)) local.set(key, { override: null, at });
    const etcd = new Map<string, TimedOverride>();
    for (const [key, rec] of this.#etcd) etcd.set(key, { override: rec.override, at: Date.parse(rec.at) || 0 });
    const { toEtcd, toLocal } = reconcileOverrides(local, etcd);
    for (const [key, v] of toEtcd) if (!this.#queue.has(key)) this.#queue.set(key, v);
    for (const [key, value] of toLocal) {
      if (this.#queue.has(key)) continue;
      const [owner, address] = splitKey(key);
      this.#d.port.apply(owner, address, value);
      this.#d.log.info({ owner, address, override: value }, 'cluster: override applied from etcd');
    }
    // Reconciled: a clear that won is queued for etcd (and stays pending until written); one that lost is dropped.
    let dropped = false;
    for (const key of [...this.#pendingClears.keys()]) {
      if (this.#queue.get(key)?.override === null) continue;
      this.#pendingClears.delete(key);
      dropped = true;
    }
    if (dropped) this.#saveClears();
    await this.write();
  }

  /** Sends the queue (one transaction); on failure it stays queued and the connection goes degraded. */
  async write(): Promise<void> {
    if (!this.#d.connected() || this.#queue.size === 0) return;
    const gen = this.#d.generation();
    const batch = [...this.#queue];
    const records = batch.map(([key, v]) => ({ key, v, rec: { override: v.override, setBy: this.#d.instance, at: new Date(v.at).toISOString() } }));
    try {
      await this.#d.store.write(records.map(({ key, rec }) => ({ key: this.#d.keys.override(...splitKey(key)), value: JSON.stringify(rec), lease: false })));
    } catch (e) {
      this.#d.trouble('put', e, gen);
      return;
    }
    let cleared = false;
    for (const { key, v, rec } of records) {
      // A newer change to the same member may have come in meanwhile: that one stays queued.
      if (this.#queue.get(key) === v) this.#queue.delete(key);
      if (v.override === null && this.#pendingClears.get(key) === v.at) {
        this.#pendingClears.delete(key);
        cleared = true;
      }
      this.#etcd.set(key, rec);
    }
    if (cleared) this.#saveClears();
  }
}
