/**
 * The etcd key layout and value shapes, pure (written down in the README's
 * "Running several instances" and /api/v1/cluster's doc):
 *
 *   /rrdns/<cluster>/members/<instance>                 lease   MemberRecord
 *   /rrdns/<cluster>/verdicts/<instance>/<check key>    lease   VerdictRecord
 *   /rrdns/<cluster>/overrides/<owner>|<address>        none    OverrideRecord (cleared: deleted)
 *
 * Values from etcd are parsed defensively: another version, or a hand-made
 * key, must not throw inside the watch; what does not parse is ignored.
 */
import type { AdminOverride } from '../zone/zone.ts';
import type { InstanceVerdict } from '../observability/snapshot.ts';
import type { Verdict } from './quorum.ts';

export interface MemberRecord {
  instance: string;
  startedAt: string;
  version: string;
  pid: number;
  hostname: string;
  listen: string[];
  admin: string | null;
  leaseTtl: number;
}

/** A verdict as stored in etcd: what the API shows per instance (who wrote it is in the key), plus changeAt. */
export interface VerdictRecord extends Omit<InstanceVerdict, 'instance' | 'self'> {
  health: Verdict;
  /** Epoch ms at which this instance's verdict could next flip at the earliest (health-aware TTLs of the others). */
  changeAt?: number;
}

export interface OverrideRecord {
  override: AdminOverride;
  setBy: string;
  at: string;
}

export type ParsedKey =
  | { kind: 'member'; instance: string }
  | { kind: 'verdict'; instance: string; check: string }
  | { kind: 'override'; owner: string; address: string }
  | { kind: 'other' };

export class KeyLayout {
  readonly prefix: string;
  constructor(cluster: string) {
    this.prefix = `/rrdns/${cluster}/`;
  }
  member(instance: string): string {
    return `${this.prefix}members/${instance}`;
  }
  verdict(instance: string, check: string): string {
    return `${this.prefix}verdicts/${instance}/${check}`;
  }
  override(owner: string, address: string): string {
    return `${this.prefix}overrides/${owner}|${address}`;
  }
  parse(key: string): ParsedKey {
    if (!key.startsWith(this.prefix)) return { kind: 'other' };
    const rest = key.slice(this.prefix.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return { kind: 'other' };
    const area = rest.slice(0, slash);
    const tail = rest.slice(slash + 1);
    if (area === 'members' && tail.length > 0 && !tail.includes('/')) return { kind: 'member', instance: tail };
    if (area === 'verdicts') {
      const s = tail.indexOf('/');
      if (s > 0 && s < tail.length - 1) return { kind: 'verdict', instance: tail.slice(0, s), check: tail.slice(s + 1) };
    }
    if (area === 'overrides') {
      const bar = tail.lastIndexOf('|');
      if (bar > 0 && bar < tail.length - 1) return { kind: 'override', owner: tail.slice(0, bar), address: tail.slice(bar + 1) };
    }
    return { kind: 'other' };
  }
}

const json = (text: string): Record<string, unknown> | undefined => {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function parseVerdict(text: string): VerdictRecord | undefined {
  const v = json(text);
  if (!v || (v.health !== 'up' && v.health !== 'down') || typeof v.since !== 'string' || typeof v.at !== 'string') return undefined;
  return {
    health: v.health,
    checks: typeof v.checks === 'number' ? v.checks : 0,
    lastOk: typeof v.lastOk === 'boolean' ? v.lastOk : null,
    lastResult: str(v.lastResult),
    lastCheckAt: str(v.lastCheckAt),
    since: v.since,
    at: v.at,
    ...(typeof v.changeAt === 'number' ? { changeAt: v.changeAt } : {}),
  };
}

export function parseMember(text: string, instance: string): MemberRecord {
  const v = json(text) ?? {};
  return {
    instance,
    startedAt: str(v.startedAt) ?? '',
    version: str(v.version) ?? '',
    pid: typeof v.pid === 'number' ? v.pid : 0,
    hostname: str(v.hostname) ?? '',
    listen: Array.isArray(v.listen) ? v.listen.filter((x): x is string => typeof x === 'string') : [],
    admin: str(v.admin),
    leaseTtl: typeof v.leaseTtl === 'number' ? v.leaseTtl : 0,
  };
}

const OVERRIDES = new Set(['drain', 'force-up', 'force-down']);

export function parseOverride(text: string): OverrideRecord | undefined {
  const v = json(text);
  if (!v || typeof v.override !== 'string' || !OVERRIDES.has(v.override)) return undefined;
  return { override: v.override as AdminOverride, setBy: str(v.setBy) ?? '', at: str(v.at) ?? '' };
}
