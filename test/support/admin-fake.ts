/**
 * A hand-made pool snapshot with members in every state, and a fake
 * AdminSource around it that records override calls and applies them the
 * way the pool registry does (for the admin API and status page tests; the
 * real server wiring is tested elsewhere).
 */
import type { AdminSource, OverrideValue } from '../../src/observability/admin.ts';
import type { MemberSnapshot, PoolSnapshot } from '../../src/observability/snapshot.ts';
import { BalanceHistory, type BalanceHistoryView } from '../../src/observability/balance-history.ts';

/** State changes two hours ago, last checks three seconds ago (for a realistic page; no test asserts on times). */
const T0 = new Date(Date.now() - 2 * 3600_000).toISOString();
const T1 = new Date(Date.now() - 3000).toISOString();

function member(m: Partial<MemberSnapshot> & Pick<MemberSnapshot, 'address'>): MemberSnapshot {
  return {
    role: 'primary',
    health: 'up',
    override: null,
    overrideSource: null,
    served: true,
    since: T0,
    lastCheckAt: T1,
    lastResult: 'HTTP 200',
    lastOk: true,
    latencyMs: 3.2,
    consecutiveOk: 5,
    consecutiveFail: 0,
    check: `http ${m.address}:80 GET /health`,
    weight: 1,
    effectiveWeight: 1,
    load: null,
    firstShare: null,
    firstServed: null,
    ...m,
  };
}

/** Pools with members up, down, unknown, drained, forced down and standby; hostile text in a result. */
export function samplePools(): PoolSnapshot[] {
  return [
    {
      zone: 'example.test.',
      name: 'www.example.test.',
      type: 'A',
      allDown: 'serveAll',
      minHealthy: null,
      serving: 'healthy',
      ttl: 10,
      members: [
        member({ address: '192.0.2.10' }),
        member({
          address: '192.0.2.11',
          health: 'down',
          served: false,
          lastResult: 'connect ECONNREFUSED 192.0.2.11:80',
          lastOk: false,
          latencyMs: 0.4,
          consecutiveOk: 0,
          consecutiveFail: 4,
        }),
        member({ address: '192.0.2.12', health: 'unknown', since: null, lastCheckAt: null, lastResult: null, lastOk: null, latencyMs: null, consecutiveOk: 0 }),
        member({ address: '192.0.2.13', override: 'drain', overrideSource: 'api', served: false }),
      ],
    },
    {
      zone: 'example.test.',
      name: 'www.example.test.',
      type: 'AAAA',
      allDown: 'serveAll',
      minHealthy: 0.5,
      serving: 'healthy',
      ttl: 10,
      members: [
        member({ address: '2001:db8::10' }),
        member({ address: '2001:db8::11', override: 'force-down', overrideSource: 'zone', served: false }),
      ],
    },
    {
      zone: 'example.test.',
      name: 'api.example.test.',
      type: 'A',
      allDown: 'backup',
      minHealthy: null,
      serving: 'allDown:backup',
      ttl: 5,
      members: [
        member({
          address: '192.0.2.20',
          health: 'down',
          served: false,
          lastResult: 'body did not match "<b>ok</b>" & more',
          lastOk: false,
          consecutiveOk: 0,
          consecutiveFail: 3,
        }),
        member({ address: '192.0.2.21', health: 'down', served: false, lastResult: 'HTTP 500', lastOk: false, consecutiveOk: 0, consecutiveFail: 7 }),
        member({ address: '192.0.2.30', role: 'standby' }),
      ],
    },
  ];
}

export interface OverrideCall {
  name: string;
  address: string;
  override: OverrideValue | null;
}

export class FakeSource implements AdminSource {
  isReady = false;
  snapshot: PoolSnapshot[] = samplePools();
  readonly calls: OverrideCall[] = [];
  metricsBody = '# HELP rrdns_test a test\n# TYPE rrdns_test gauge\nrrdns_test 1\n';
  metricsError: Error | undefined;

  ready(): boolean {
    return this.isReady;
  }

  pools(): PoolSnapshot[] {
    return structuredClone(this.snapshot);
  }

  setOverride(name: string, address: string, override: OverrideValue | null): boolean {
    this.calls.push({ name, address, override });
    const owner = name.toLowerCase().endsWith('.') ? name.toLowerCase() : `${name.toLowerCase()}.`;
    let found = false;
    for (const p of this.snapshot) {
      if (p.name !== owner) continue;
      for (const m of p.members) {
        if (m.address !== address) continue;
        found = true;
        m.override = override;
        m.overrideSource = override === null ? null : 'api';
        m.served = override === 'force-up' || (override === null && m.health !== 'down');
      }
    }
    return found;
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    if (this.metricsError) throw this.metricsError;
    return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: this.metricsBody };
  }

  /** The balance history over the snapshot: 20 samples in which the first member of each pool gets 3 first positions for every 1 of each other. */
  readonly balance = fakeHistory(this.snapshot);

  history(): BalanceHistoryView {
    return this.balance.view();
  }

  info(): { version: string; zones: string[]; startedAt: string } {
    return { version: '0.1.0-test', zones: ['example.test.'], startedAt: '2026-01-02T03:00:00.000Z' };
  }

  /** Finds a member of the snapshot (for tests that flip states). */
  member(name: string, type: 'A' | 'AAAA', address: string): MemberSnapshot {
    const m = this.snapshot.find((p) => p.name === name && p.type === type)?.members.find((x) => x.address === address);
    if (!m) throw new Error(`no member ${name} ${type} ${address} in the fake snapshot`);
    return m;
  }
}

function fakeHistory(pools: PoolSnapshot[]): BalanceHistory {
  const h = new BalanceHistory();
  const shaped = structuredClone(pools);
  for (let i = 0; i < 20; i++) {
    for (const p of shaped) {
      p.members.forEach((m, j) => {
        m.firstServed = (j === 0 ? 3 : 1) * i;
        m.load = m.health === 'up' ? 0.5 + 0.02 * i * (j === 0 ? 1 : -1) : null;
      });
    }
    h.sample(i * 10_000, shaped);
  }
  return h;
}
