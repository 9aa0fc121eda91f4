/**
 * Several instances, one view (issue 12), with real parts only: a 3-member
 * etcd cluster on loopback ports (/usr/bin/etcd), three rrdns processes (the
 * real CLI) joined through it, real HTTP backends on 127.0.0.11+, real dig.
 * Each instance probes from a source address of its own
 * (--check-source-address 127.0.0.201/202/203), so a backend that refuses
 * 127.0.0.201 is unreachable for instance rr0 alone: its network path is
 * broken, the others' are not.
 *
 * The cases run in order on the same processes, each leaving things as it
 * found them. No timing assertions: every wait is a bounded poll of the admin
 * APIs, the answers (dig) or what the backends saw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type Backend } from '../support/backends.ts';
import { HAVE_ETCD, startEtcdCluster, type EtcdCluster } from '../support/etcd.ts';
import { startInstances, type Instances } from '../support/instances.ts';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { metricSum } from '../support/metrics-text.ts';
import { writeZones } from '../support/server.ts';
import { freePort, RRDNS_MAIN, REPO_ROOT, startProcess, tempDir, waitUntil } from '../support/spawn.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const SOURCES = ['127.0.0.201', '127.0.0.202', '127.0.0.203'];
const ORIGIN = 'cluster.test';
/** Fast checks: a change is seen within a second or two; fall 2 so one slow probe on a busy machine flips nothing. */
const CHECK = { interval: '500ms', timeout: '400ms', fall: 2, rise: 1 };
const LEASE_TTL = 2;

interface Verdict {
  instance: string;
  self: boolean;
  health: 'up' | 'down';
}
interface ClusterMember {
  combined: 'up' | 'down' | 'unknown';
  basis: string;
  down: number;
  up: number;
  voters: number;
  needed: number;
  probedHere: boolean;
  assigned: string[];
  verdicts: Verdict[];
}
interface Member {
  address: string;
  health: 'up' | 'down' | 'unknown';
  override: string | null;
  served: boolean;
  cluster?: ClusterMember;
}
interface Health {
  pools: { name: string; members: Member[] }[];
}
interface ClusterInfo {
  enabled: boolean;
  instance: string;
  state: 'connecting' | 'connected' | 'degraded';
  degraded: boolean;
  members: { instance: string; self: boolean }[];
}

const fqdn = (label: string) => `${label}.${ORIGIN}.`;
const memberOf = (h: Health, label: string, address: string): Member | undefined =>
  h.pools.find((p) => p.name === fqdn(label))?.members.find((m) => m.address === address);

describe.skipIf(!HAVE_ETCD)('three rrdns instances sharing verdicts and overrides through a 3-member etcd', () => {
  let etcd: EtcdCluster;
  let rr: Instances;
  /** rr0 reaches each etcd member through one of these: cutting them partitions rr0 alone from etcd. */
  let rr0Path: TcpProxy[] = [];
  let zonesDir = '';
  const b: Record<string, Backend> = {};
  const all = [0, 1, 2];

  const addrs = (...names: string[]) => names.map((n) => b[n]!.address).sort();
  /** A name whose A records are these backends, each checked on its own port. */
  const pool = (names: string[], extra: Record<string, unknown> = {}) => ({
    A: names.map((n) => b[n]!.address),
    pool: { check: CHECK, members: Object.fromEntries(names.map((n) => [b[n]!.address, { check: { port: b[n]!.port } }])), ...extra },
  });
  const cluster = (i: number) => rr.api<ClusterInfo>(i, '/api/v1/cluster');
  const waitAllClusters = (accept: (c: ClusterInfo) => boolean, what: string, which = all) =>
    Promise.all(which.map((i) => rr.waitApi<ClusterInfo>(i, '/api/v1/cluster', (c, status) => status === 200 && accept(c), what)));
  const waitMember = (i: number, label: string, name: string, accept: (m: Member) => boolean, what: string) =>
    rr.waitApi<Health>(
      i,
      '/api/v1/health',
      (h) => {
        const m = memberOf(h, label, b[name]!.address);
        return m !== undefined && accept(m);
      },
      what,
    );
  const metric = async (i: number, name: string) => metricSum((await rr.request<string>(i, 'GET', '/metrics')).body, name);
  /** Which sources probed `backend` while it received `count` more requests (bounded wait). */
  const probersOver = async (backend: Backend, count: number): Promise<string[]> => {
    const before = new Map(backend.hitsFrom);
    const total = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((s, n) => s + n, 0);
    const start = total(before);
    await waitUntil(async () => total(backend.hitsFrom) >= start + count, { what: `${count} more probes of ${backend.address}`, attempts: 200, intervalMs: 50 });
    return [...backend.hitsFrom].filter(([from, n]) => n > (before.get(from) ?? 0)).map(([from]) => from).sort();
  };

  beforeAll(async () => {
    etcd = await startEtcdCluster({ size: 3 });
    for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']) b[n] = await startHttpBackend();
    // rr0's path to b is broken: b resets every connection from rr0's source address.
    b.b!.refuseFrom([SOURCES[0]!]);
    zonesDir = writeZones({
      [`${ORIGIN}.yaml`]: JSON.stringify({
        origin: ORIGIN,
        ttl: { default: 30, min: 0 },
        soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
        records: {
          '@': { NS: 'ns1' },
          ns1: { A: '192.0.2.53' },
          split: pool(['a', 'b'], { quorum: 'majority' }),
          splitany: pool(['a', 'b'], { quorum: 'any' }),
          alldown: pool(['c', 'd']),
          ovr: pool(['e', 'f']),
          shared: pool(['g', 'h'], { checkers: 1 }),
          late: pool(['i', 'j']),
        },
      }),
    });
    rr0Path = await Promise.all(etcd.clientUrls.map((u) => startTcpProxy({ host: '127.0.0.1', port: Number(new URL(u).port) })));
    rr = await startInstances({ n: 3, zonesDir, etcd: etcd.endpoints, perInstanceEtcd: [rr0Path.map((p) => p.url).join(',')], leaseTtl: LEASE_TTL, sourceAddresses: SOURCES });
    await waitAllClusters((c) => c.enabled && c.state === 'connected' && c.members.length === 3, 'connected, three members seen');
  }, 120_000);

  afterAll(async () => {
    await rr?.close();
    await Promise.all(rr0Path.map((p) => p.close()));
    await etcd?.close();
    await Promise.all(Object.values(b).map((x) => x.close()));
  });

  it('a backend one instance cannot reach while two can stays served by all three under quorum: majority', async () => {
    // rr0 itself sees b down (its probes are reset), and publishes that …
    await waitMember(0, 'split', 'b', (m) => m.cluster?.verdicts.find((v) => v.self)?.health === 'down', 'rr0 seeing b down itself');
    // … but one down vote of three is not a majority: combined up, everywhere.
    for (const i of all) {
      const h = await waitMember(i, 'split', 'b', (m) => m.cluster?.down === 1 && m.cluster.up === 2 && m.cluster.combined === 'up', 'b: 1 down of 3, combined up');
      expect(memberOf(h, 'split', b.b!.address)!.cluster).toMatchObject({ voters: 3, needed: 2 });
    }
    await rr.waitServed('split.cluster.test', addrs('a', 'b'));
    // The probes really came from each instance's own source, rr0's refused.
    expect(b.b!.peers.get(SOURCES[0]!)).toBeGreaterThan(0);
    expect(b.b!.hitsFrom.get(SOURCES[0]!)).toBeUndefined();
    expect(b.b!.hitsFrom.get(SOURCES[1]!)).toBeGreaterThan(0);
    expect(b.b!.hitsFrom.get(SOURCES[2]!)).toBeGreaterThan(0);
  });

  it('the same view under quorum: any withdraws it from all three (one vantage point suffices there)', async () => {
    for (const i of all) await waitMember(i, 'splitany', 'b', (m) => m.cluster?.combined === 'down' && m.cluster.needed === 1, 'b combined down under any');
    await rr.waitServed('splitany.cluster.test', addrs('a'));
  });

  it('a backend down for all leaves every instance answer', async () => {
    await rr.waitServed('alldown.cluster.test', addrs('c', 'd'));
    b.c!.setMode('status500');
    await rr.waitServed('alldown.cluster.test', addrs('d'));
    for (const i of all) await waitMember(i, 'alldown', 'c', (m) => m.cluster?.down === 3 && m.cluster.combined === 'down', 'c down on every instance');
    b.c!.setMode('ok');
    await rr.waitServed('alldown.cluster.test', addrs('c', 'd'));
  });

  it('an override set through one instance applies on all and survives restarting that instance', async () => {
    const e = b.e!.address;
    const put = await rr.setOverride(1, fqdn('ovr'), e, 'drain');
    expect(put.status).toBe(200);
    await rr.waitServed('ovr.cluster.test', addrs('f'));
    for (const i of all) await waitMember(i, 'ovr', 'e', (m) => m.override === 'drain', 'e drained');
    // Stored in etcd, not only on rr1.
    const stored = await etcd.getPrefix(`/rrdns/${rr.clusterName}/overrides/`);
    expect([...stored.entries()].some(([k, v]) => k.endsWith(`|${e}`) && JSON.parse(v).override === 'drain')).toBe(true);

    await rr.stop(1);
    await rr.waitServed('ovr.cluster.test', addrs('f'), { which: [0, 2] });
    await rr.start(1);
    await waitAllClusters((c) => c.state === 'connected' && c.members.length === 3, 'rr1 back, three members');
    await rr.waitServed('ovr.cluster.test', addrs('f'));
    await waitMember(1, 'ovr', 'e', (m) => m.override === 'drain', 'e still drained on the restarted rr1');

    // Cleared through another instance: gone everywhere.
    expect((await rr.setOverride(2, fqdn('ovr'), e, null)).status).toBe(200);
    await rr.waitServed('ovr.cluster.test', addrs('e', 'f'));
    for (const i of all) await waitMember(i, 'ovr', 'e', (m) => m.override === null, 'e override cleared');
  });

  it('a second process started with a live instance ID fails its start and leaves the first alone', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    const args = [RRDNS_MAIN, 'serve', '--zones', zonesDir, '--listen', listen, '--admin', 'off', '--state-dir', tempDir('dup-state'), '--no-watch', '--rrl', 'off'];
    const clusterArgs = ['--cluster-etcd', etcd.endpoints, '--cluster-name', rr.clusterName, '--cluster-instance', 'rr1', '--cluster-lease-ttl', String(LEASE_TTL)];
    const dup = startProcess('rrdns duplicate rr1', process.execPath, [...args, ...clusterArgs], { cwd: REPO_ROOT });
    try {
      await waitUntil(async () => !dup.running(), { what: 'the duplicate to exit', attempts: 300, intervalMs: 100 });
      const { code } = await dup.exited;
      expect(code).not.toBe(0);
      expect(dup.stderr()).toContain('instance ID "rr1" is held by another live process');
    } finally {
      await dup.stop();
    }
    // rr1 is still rr1 in every view: its own admin address, never overwritten.
    for (const i of all) {
      const seen = (await cluster(i)).members.find((m) => m.instance === 'rr1') as { admin?: string } | undefined;
      expect(seen?.admin).toBe(`127.0.0.1:${rr.instance(1).adminPort}`);
    }
  });

  it('killing an rrdns instance (SIGKILL) moves its checks to the others (checkers: 1)', async () => {
    const g = b.g!;
    // One instance is assigned g, the same one in every instance's view, and only it probes g.
    let owner = '';
    await waitUntil(
      async () => {
        const views = await Promise.all(all.map(async (i) => memberOf(await rr.api<Health>(i, '/api/v1/health'), 'shared', g.address)?.cluster));
        const assigned = views.map((v) => v?.assigned.join(','));
        const probing = views.filter((v) => v?.probedHere).length;
        owner = views[0]?.assigned[0] ?? '';
        return views.every((v) => v?.assigned.length === 1) && new Set(assigned).size === 1 && probing === 1;
      },
      { what: 'one agreed checker for g', attempts: 150, intervalMs: 100 },
    );
    const ownerIndex = rr.ids.indexOf(owner);
    expect(ownerIndex).toBeGreaterThanOrEqual(0);
    expect(await probersOver(g, 4)).toEqual([SOURCES[ownerIndex]]);

    await rr.kill(ownerIndex);
    const rest = all.filter((i) => i !== ownerIndex);
    // Its lease expires; one of the others takes g over, seen through the API …
    let heir = '';
    await waitUntil(
      async () => {
        const views = await Promise.all(rest.map(async (i) => memberOf(await rr.api<Health>(i, '/api/v1/health'), 'shared', g.address)?.cluster));
        heir = views[0]?.assigned[0] ?? '';
        return views.every((v) => v?.assigned.length === 1 && v.assigned[0] !== owner && v.assigned[0] === heir) && views.filter((v) => v?.probedHere).length === 1;
      },
      { what: `g reassigned away from the killed ${owner}`, attempts: 200, intervalMs: 100 },
    );
    const heirIndex = rr.ids.indexOf(heir);
    expect(rest).toContain(heirIndex);
    // … and through the backend: its probes now come from the heir's source address only.
    await waitUntil(async () => (await probersOver(g, 2)).join() === SOURCES[heirIndex], { what: `probes of g from ${SOURCES[heirIndex]} only`, attempts: 10, intervalMs: 0 });
    expect(await probersOver(g, 4)).toEqual([SOURCES[heirIndex]]);
    await rr.waitServed('shared.cluster.test', addrs('g', 'h'), { which: rest });

    await rr.start(ownerIndex);
    await waitAllClusters((c) => c.state === 'connected' && c.members.length === 3, 'the killed instance back, three members');
  });

  it('an instance cut off from etcd answers on its own verdicts; the others drop its votes and take its checks; it rejoins', async () => {
    const g = b.g!.address;
    for (const p of rr0Path) p.cut();
    // rr0: still ready, degraded, and on its own verdict for b (its path to b is broken).
    await rr.waitApi<{ status: string; cluster?: { state: string } }>(0, '/readyz', (r, status) => status === 200 && r.cluster?.state === 'degraded', 'rr0 ready and degraded');
    await rr.waitServed('split.cluster.test', addrs('a'), { which: [0] });
    // rr1 and rr2: rr0's lease expires, its votes stop counting, and nothing it was checking is left unchecked.
    await waitAllClusters((c) => c.state === 'connected' && c.members.length === 2 && !c.members.some((m) => m.instance === 'rr0'), 'rr0 gone from the view', [1, 2]);
    for (const i of [1, 2]) {
      await waitMember(i, 'shared', 'g', (m) => m.cluster?.assigned.length === 1 && m.cluster.assigned[0] !== 'rr0', 'g assigned to a connected instance');
      await waitMember(i, 'split', 'b', (m) => m.cluster?.voters === 2 && m.cluster.down === 0 && m.cluster.combined === 'up', 'b voted on by rr1 and rr2 only');
    }
    await rr.waitServed('split.cluster.test', addrs('a', 'b'), { which: [1, 2] });
    await rr.waitServed('shared.cluster.test', [g, b.h!.address].sort());

    for (const p of rr0Path) p.heal();
    await waitAllClusters((c) => c.state === 'connected' && c.members.length === 3, 'rr0 back in the view');
    await rr.waitServed('split.cluster.test', addrs('a', 'b'));
    expect(rr0Path.every((p) => p.relayed > 0)).toBe(true);
  });

  it('stopping one etcd member changes nothing (each member in turn)', async () => {
    const reconnects = await Promise.all(all.map((i) => metric(i, 'rrdns_cluster_reconnects_total')));
    // Throughout, every instance keeps serving what it served: sampled answers of rr0 (the one whose own
    // verdicts differ, so a fall back to them would show) and of the others.
    const want = addrs('a', 'b').join(' ');
    const odd: string[] = [];
    let sampling = true;
    let samples = 0;
    // In-process UDP queries, not dig: a dig process per sample would load the machine for nothing.
    const sampler = (async () => {
      for (let n = 0; sampling && n < 2000; n++) {
        const got = await Promise.all(all.map(async (i) => addresses((await udpQuery(rr.instance(i).port, 'split.cluster.test')).packet).sort()));
        await new Promise((r) => setTimeout(r, 50));
        samples++;
        for (const [i, g] of got.entries()) {
          if (g.join(' ') === want || odd.length >= 10) continue;
          // What the instance says of etcd at that moment, for the failure message.
          const c = await rr.api<ClusterInfo & { lastError: string | null }>(i, '/api/v1/cluster').catch(() => undefined);
          odd.push(`${rr.ids[i]}: [${g.join(' ')}] (cluster ${c?.state}, last error ${c?.lastError})`);
        }
      }
    })();
    try {
      for (let m = 0; m < etcd.size; m++) {
        await etcd.stop(m);
        // Writes still reach every instance (two of three members are a quorum) …
        const f = b.f!.address;
        expect((await rr.setOverride(m, fqdn('ovr'), f, 'drain')).status).toBe(200);
        await rr.waitServed('ovr.cluster.test', addrs('e'));
        expect((await rr.setOverride((m + 1) % 3, fqdn('ovr'), f, null)).status).toBe(200);
        await rr.waitServed('ovr.cluster.test', addrs('e', 'f'));
        // … verdicts too.
        b.d!.setMode('status500');
        await rr.waitServed('alldown.cluster.test', addrs('c'));
        b.d!.setMode('ok');
        await rr.waitServed('alldown.cluster.test', addrs('c', 'd'));
        await etcd.start(m);
      }
    } finally {
      sampling = false;
      await sampler;
    }
    expect(samples).toBeGreaterThan(0);
    // And no instance went degraded on the way (every problem listed at once: which instances, and why).
    const problems = [...odd];
    for (const i of all) {
      const c = await cluster(i);
      if (c.state !== 'connected' || c.degraded) problems.push(`${rr.ids[i]}: state ${c.state} at the end`);
      const degraded = await metric(i, 'rrdns_cluster_degraded');
      if (degraded !== 0) problems.push(`${rr.ids[i]}: rrdns_cluster_degraded ${degraded} at the end`);
      const more = (await metric(i, 'rrdns_cluster_reconnects_total')) - reconnects[i]!;
      if (more !== 0) {
        const why = (rr.instance(i).proc?.logs ?? []).filter((l) => String(l.msg).startsWith('cluster: etcd unreachable')).map((l) => JSON.stringify(l.err ?? l)).slice(-2);
        problems.push(`${rr.ids[i]}: ${more} reconnect(s) (it went degraded: ${why.join('; ').slice(0, 400)})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('stopping every etcd member: all keep answering, degraded in /readyz (still ready) and the metric; overrides set meanwhile are kept and spread on recovery', async () => {
    const [e, i] = [b.e!.address, b.i!.address];
    // Known to every instance before the outage: e drained.
    expect((await rr.setOverride(0, fqdn('ovr'), e, 'drain')).status).toBe(200);
    await rr.waitServed('ovr.cluster.test', addrs('f'));

    await etcd.stopAll();
    for (const n of all) {
      await rr.waitApi<{ status: string; cluster?: { state: string } }>(n, '/readyz', (r, status) => status === 200 && r.status === 'ready' && r.cluster?.state === 'degraded', 'ready and degraded');
      await waitUntil(async () => (await metric(n, 'rrdns_cluster_degraded')) === 1, { what: `rrdns_cluster_degraded 1 on ${rr.ids[n]}`, attempts: 100, intervalMs: 100 });
    }
    // Every instance answers, each on its own verdicts now: rr0, whose path to b is broken, withdraws b; the others keep it.
    await rr.waitServed('split.cluster.test', addrs('a'), { which: [0] });
    await rr.waitServed('split.cluster.test', addrs('a', 'b'), { which: [1, 2] });
    // The last overrides each knew still apply.
    await rr.waitServed('ovr.cluster.test', addrs('f'));

    // Operators act during the outage: i drained through rr2, e's drain cleared through rr1. Each applies at once where it was set.
    expect((await rr.setOverride(2, fqdn('late'), i, 'drain')).status).toBe(200);
    expect((await rr.setOverride(1, fqdn('ovr'), e, null)).status).toBe(200);
    await rr.waitServed('late.cluster.test', addrs('j'), { which: [2] });
    await rr.waitServed('ovr.cluster.test', addrs('e', 'f'), { which: [1] });
    // The others cannot know yet.
    await rr.waitServed('late.cluster.test', addrs('i', 'j'), { which: [0, 1] });
    await rr.waitServed('ovr.cluster.test', addrs('f'), { which: [0, 2] });

    await etcd.startAll();
    await waitAllClusters((c) => c.state === 'connected' && !c.degraded && c.members.length === 3, 'connected again');
    // Nothing set during the outage is lost: both actions reach every instance (they are the latest).
    await rr.waitServed('late.cluster.test', addrs('j'));
    await rr.waitServed('ovr.cluster.test', addrs('e', 'f'));
    // Verdicts are shared again: rr0 back on the quorum.
    await rr.waitServed('split.cluster.test', addrs('a', 'b'));
    for (const n of all) {
      expect(await metric(n, 'rrdns_cluster_degraded')).toBe(0);
      expect(await metric(n, 'rrdns_cluster_reconnects_total')).toBeGreaterThanOrEqual(1);
      const ready = await rr.request<{ status: string; cluster?: { state: string } }>(n, 'GET', '/readyz');
      expect(ready).toMatchObject({ status: 200, body: { status: 'ready', cluster: { state: 'connected' } } });
    }
    const stored = await etcd.getPrefix(`/rrdns/${rr.clusterName}/overrides/`);
    expect([...stored.entries()].some(([k, v]) => k.endsWith(`|${i}`) && JSON.parse(v).override === 'drain')).toBe(true);
    expect((await rr.setOverride(0, fqdn('late'), i, null)).status).toBe(200);
    await rr.waitServed('late.cluster.test', addrs('i', 'j'));
  });
});
