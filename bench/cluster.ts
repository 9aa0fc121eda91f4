/**
 * `npm run bench:cluster`: three rrdns instances (the real CLI) sharing
 * verdicts through a real 3-member etcd on loopback, HTTP backends on
 * 127.0.0.61+. Prints:
 *
 * 1. Probes per backend per interval over a window of WINDOW_INTERVALS check
 *    intervals, for n = 3: a pool without `checkers` (every instance probes
 *    every member), `checkers: 1` and `checkers: 3`, with which instances'
 *    source addresses the probes came from (--check-source-address).
 * 2. Verdict propagation. A backend of a `quorum: majority` pool is stopped
 *    (and later started again), REPS times. Each instance's own verdict change
 *    is read from etcd (the `since` of its verdict); each instance's answers
 *    are polled over UDP every few ms. Per repetition:
 *      first verdict → last serving: from the first instance seeing the change
 *        to the last instance serving the new set (what the issue asks for; it
 *        includes the gap until a second instance's probe sees it, which is
 *        detection, not propagation);
 *      quorum verdict → last serving: from the verdict that made the majority
 *        (the second of three) to the last instance serving the new set: the
 *        propagation itself (target: under 1 s);
 *      first → last serving: how long the instances disagreed.
 *    Median and max over the repetitions. The answer polling adds up to a poll
 *    period (~POLL_MS plus a query) to each figure.
 *
 * Bounded: every wait has a bound, REPS repetitions, one window; every process
 * is stopped by its PID at the end (also on failure).
 */
import fs from 'node:fs';
import path from 'node:path';
import { addresses, udpQuery } from '../test/support/dnsclient.ts';
import { startHttpBackend, type Backend } from '../test/support/backends.ts';
import { HAVE_ETCD, startEtcdCluster, type EtcdCluster } from '../test/support/etcd.ts';
import { startInstances, type Instances } from '../test/support/instances.ts';
import { removeTempDirs, stopAll, tempDir } from '../test/support/spawn.ts';

const REPS = Number(process.env.REPS ?? 7);
const POLL_MS = 5;
const INTERVAL_MS = 500;
const PROBE_INTERVAL_MS = 1000;
const WINDOW_INTERVALS = 6;
const SOURCES = ['127.0.0.221', '127.0.0.222', '127.0.0.223'];
const ORIGIN = 'bench-cluster.test';

interface Verdict {
  health: 'up' | 'down';
  since: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (ms: number) => `${Math.round(ms)} ms`;

async function until<T>(what: string, boundMs: number, stepMs: number, get: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + boundMs;
  let lastError = '';
  while (performance.now() < deadline) {
    try {
      const v = await get();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = (e as Error).message;
    }
    await sleep(stepMs);
  }
  throw new Error(`no ${what} within ${boundMs} ms${lastError ? ` (last: ${lastError})` : ''}`);
}

function zone(b: Record<string, Backend>, pools: Record<string, { names: string[]; interval: number; extra?: Record<string, unknown> }>): string {
  const records: Record<string, unknown> = { '@': { NS: 'ns1' }, ns1: { A: '192.0.2.53' } };
  for (const [label, p] of Object.entries(pools)) {
    records[label] = {
      A: p.names.map((n) => b[n]!.address),
      pool: {
        check: { interval: `${p.interval}ms`, timeout: '400ms', fall: 2, rise: 1 },
        members: Object.fromEntries(p.names.map((n) => [b[n]!.address, { check: { port: b[n]!.port } }])),
        ...p.extra,
      },
    };
  }
  return JSON.stringify({ origin: ORIGIN, ttl: { default: 30, min: 0 }, soa: { mname: 'ns1', rname: 'hostmaster', serial: 1 }, records });
}

/** The check key of `address` in pool `label`, as instance 0's API names it. */
async function checkKey(rr: Instances, label: string, address: string): Promise<string> {
  const h = await rr.api<{ pools: { name: string; members: { address: string; check: string }[] }[] }>(0, '/api/v1/health');
  const m = h.pools.find((p) => p.name === `${label}.${ORIGIN}.`)?.members.find((x) => x.address === address);
  if (!m) throw new Error(`no member ${address} in ${label}`);
  return m.check;
}

/** Every instance's own verdict of `key` from etcd, once all `n` are `health`. */
async function verdictsIn(etcd: EtcdCluster, rr: Instances, key: string, health: 'up' | 'down'): Promise<number[]> {
  return until(`${rr.size} '${health}' verdicts in etcd`, 15_000, 50, async () => {
    const kv = await etcd.getPrefix(`/rrdns/${rr.clusterName}/verdicts/`);
    const mine = [...kv].filter(([k]) => k.endsWith(`/${key}`)).map(([, v]) => JSON.parse(v) as Verdict);
    if (mine.length !== rr.size || !mine.every((v) => v.health === health)) return undefined;
    return mine.map((v) => Date.parse(v.since)).sort((a, b) => a - b);
  });
}

/** Polls every instance until each serves `want` for `name`; the wall-clock time (Date.now) each first did. */
async function servedAt(rr: Instances, name: string, want: string): Promise<number[]> {
  const at: (number | undefined)[] = new Array(rr.size).fill(undefined);
  const deadline = performance.now() + 15_000;
  while (at.some((t) => t === undefined)) {
    if (performance.now() > deadline) throw new Error(`not every instance served [${want}] for ${name} within 15 s`);
    await Promise.all(
      at.map(async (t, i) => {
        if (t !== undefined) return;
        const r = await udpQuery(rr.instance(i).port, name).catch(() => undefined);
        if (r && addresses(r.packet).sort().join(' ') === want) at[i] = Date.now();
      }),
    );
    await sleep(POLL_MS);
  }
  return at as number[];
}

async function propagation(etcd: EtcdCluster, rr: Instances, b: Record<string, Backend>): Promise<void> {
  const name = `prop.${ORIGIN}`;
  const victim = b.p1!;
  const both = [b.p1!.address, b.p2!.address].sort().join(' ');
  const key = await checkKey(rr, 'prop', victim.address);
  await servedAt(rr, name, both);
  const rows: Record<'down' | 'up', { first: number; quorum: number; spread: number }[]> = { down: [], up: [] };
  for (let rep = 0; rep < REPS; rep++) {
    for (const change of ['down', 'up'] as const) {
      if (change === 'down') await victim.stop();
      else await victim.start();
      const served = await servedAt(rr, name, change === 'down' ? b.p2!.address : both);
      const own = await verdictsIn(etcd, rr, key, change);
      const last = Math.max(...served);
      // Majority of three: the second own verdict is the one that turns the combined verdict.
      rows[change].push({ first: last - own[0]!, quorum: last - own[1]!, spread: last - Math.min(...served) });
    }
  }
  console.log(`\n2. verdict propagation, n=3, quorum majority, check every ${INTERVAL_MS} ms, fall 2, rise 1; ${REPS} repetitions each`);
  console.log('   change              first verdict → last serving   quorum verdict → last serving   first → last serving');
  for (const change of ['down', 'up'] as const) {
    const r = rows[change];
    const col = (k: 'first' | 'quorum' | 'spread') => `median ${fmt(median(r.map((x) => x[k])))}, max ${fmt(Math.max(...r.map((x) => x[k])))}`;
    console.log(`   backend ${change === 'down' ? 'stopped' : 'started'}     ${col('first').padEnd(31)}${col('quorum').padEnd(32)}${col('spread')}`);
  }
  console.log(`   (answers polled every ~${POLL_MS} ms plus a UDP query per instance; verdict times are each instance's own 'since' in etcd, same host clock)`);
}

async function probeLoad(rr: Instances, b: Record<string, Backend>): Promise<void> {
  const pools = { all: ['a1', 'a2', 'a3'], k1: ['k1a', 'k1b', 'k1c'], k3: ['k3a', 'k3b', 'k3c'] } as const;
  const label = { all: 'no checkers (every instance probes)', k1: 'checkers: 1', k3: 'checkers: 3' } as const;
  // Settled: each instance has seen all three and the checks are where rendezvous hashing puts them.
  await until('three members seen by every instance', 20_000, 100, async () => {
    const seen = await Promise.all([0, 1, 2].map((i) => rr.api<{ members: unknown[]; state: string }>(i, '/api/v1/cluster')));
    return seen.every((c) => c.members.length === 3 && c.state === 'connected') ? true : undefined;
  });
  await sleep(2 * PROBE_INTERVAL_MS);
  const before = new Map<string, Map<string, number>>(Object.values(pools).flat().map((n) => [n, new Map(b[n]!.hitsFrom)]));
  const t0 = performance.now();
  await sleep(WINDOW_INTERVALS * PROBE_INTERVAL_MS);
  const intervals = (performance.now() - t0) / PROBE_INTERVAL_MS;
  console.log(`\n1. probes per backend per interval, n=3, check every ${PROBE_INTERVAL_MS} ms, window ${intervals.toFixed(2)} intervals`);
  for (const [pool, names] of Object.entries(pools) as [keyof typeof pools, readonly string[]][]) {
    const per = names.map((n) => {
      const was = before.get(n)!;
      const from = [...b[n]!.hitsFrom].map(([src, c]) => [src, c - (was.get(src) ?? 0)] as const).filter(([, c]) => c > 0);
      const total = from.reduce((s, [, c]) => s + c, 0);
      const who = from.map(([src]) => `rr${SOURCES.indexOf(src)}`).sort().join('+');
      return { total, who };
    });
    const rates = per.map((p) => p.total / intervals);
    console.log(`   ${label[pool].padEnd(38)} ${rates.map((r) => r.toFixed(2)).join(' / ')} per member (mean ${(rates.reduce((s, r) => s + r, 0) / rates.length).toFixed(2)}); probed by ${per.map((p) => p.who || 'none').join(', ')}`);
  }
}

async function main(): Promise<void> {
  if (!HAVE_ETCD) {
    console.error('bench:cluster needs etcd and etcdctl (Debian etcd-server, etcd-client)');
    process.exit(1);
  }
  let etcd: EtcdCluster | undefined;
  let rr: Instances | undefined;
  const b: Record<string, Backend> = {};
  let host = 61;
  try {
    for (const n of ['p1', 'p2', 'a1', 'a2', 'a3', 'k1a', 'k1b', 'k1c', 'k3a', 'k3b', 'k3c']) b[n] = await startHttpBackend({ address: `127.0.0.${host++}` });
    etcd = await startEtcdCluster({ size: 3 });
    const dir = tempDir('bench-cluster');
    fs.writeFileSync(
      path.join(dir, `${ORIGIN}.yaml`),
      zone(b, {
        prop: { names: ['p1', 'p2'], interval: INTERVAL_MS, extra: { quorum: 'majority' } },
        all: { names: ['a1', 'a2', 'a3'], interval: PROBE_INTERVAL_MS },
        k1: { names: ['k1a', 'k1b', 'k1c'], interval: PROBE_INTERVAL_MS, extra: { checkers: 1 } },
        k3: { names: ['k3a', 'k3b', 'k3c'], interval: PROBE_INTERVAL_MS, extra: { checkers: 3 } },
      }),
    );
    rr = await startInstances({ n: 3, zonesDir: dir, etcd: etcd.endpoints, leaseTtl: 2, sourceAddresses: SOURCES });
    console.log(`bench:cluster: etcd ${etcd.size} members (${etcd.endpoints}); rrdns ${rr.ids.map((id, i) => `${id} udp ${rr!.instance(i).port} source ${SOURCES[i]}`).join(', ')}`);
    await probeLoad(rr, b);
    await propagation(etcd, rr, b);
  } finally {
    await rr?.close();
    await etcd?.close();
    await Promise.all(Object.values(b).map((x) => x.close()));
    await stopAll();
    removeTempDirs();
  }
}

await main();
