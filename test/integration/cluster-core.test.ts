/**
 * The cluster core with real parts: one real etcd (started here on loopback
 * ephemeral ports with a temp data directory, stopped by PID), two real rrdns
 * servers in-process sharing it, real HTTP backends on 127.0.0.x, answers
 * read over DNS and the admin API over HTTP. Every wait is a bounded poll for
 * a condition; nothing asserts how long anything took.
 *
 * (The 3-member etcd, three instances and the failure drills of issue 12
 * point 6 are test/integration/cluster*.test.ts by helper clustertest.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, type Backend } from '../support/backends.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, REPO_ROOT, startProcess, tempDir, waitUntil, type ManagedProcess } from '../support/spawn.ts';
import { toolPath } from '../support/tools.ts';
import type { PoolSnapshot } from '../../src/observability/snapshot.ts';
import { PENDING_CLEARS_FILE } from '../../src/server/cluster-glue.ts';

const ETCD = toolPath('etcd');
const execFileAsync = promisify(execFile);

/** One etcd member on 127.0.0.1; start() again reuses its ports and data directory (a restart). */
class OneEtcd {
  proc: ManagedProcess | undefined;
  readonly dataDir = tempDir('etcd');
  clientPort = 0;
  peerPort = 0;
  get url(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }
  async start(): Promise<void> {
    if (this.clientPort === 0) {
      this.clientPort = await freePort();
      this.peerPort = await freePort();
    }
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.proc = startProcess('etcd', ETCD!, [
      '--name', 'core',
      '--data-dir', path.join(this.dataDir, 'data'),
      '--listen-client-urls', this.url,
      '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `core=${peer}`,
      '--log-level', 'error',
    ]);
    const proc = this.proc;
    await waitUntil(async () => (await (await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) })).json() as { health: string }).health === 'true', {
      what: 'etcd healthy',
      attempts: 200,
      intervalMs: 100,
      proc,
    });
  }
  async stop(): Promise<void> {
    await this.proc?.stop();
    this.proc = undefined;
  }
  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const FAST = { interval: '500ms', timeout: '400ms', fall: 1, rise: 1 };

function zoneFiles(b: Backend[]): Record<string, string> {
  const members = (bs: Backend[]) => Object.fromEntries(bs.map((x) => [x.address, { check: { port: x.port } }]));
  const zone = {
    origin: 'cluster.test',
    ttl: { default: 300, min: 0 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
    records: {
      '@': { NS: 'ns1' },
      ns1: { A: '192.0.2.53' },
      // Every instance probes; a member is down when both see it down (majority of 2).
      www: { A: [b[0]!.address, b[1]!.address], pool: { check: FAST, members: members([b[0]!, b[1]!]) } },
      // One instance probes each member (rendezvous): the other learns its verdicts through etcd only.
      one: { A: [b[2]!.address, b[3]!.address], pool: { check: FAST, checkers: 1, members: members([b[2]!, b[3]!]) } },
    },
  };
  return { 'cluster.test.yaml': JSON.stringify(zone, null, 2) };
}

describe.skipIf(ETCD === undefined)('cluster core: two instances, one etcd', () => {
  const etcd = new OneEtcd();
  const backends: Backend[] = [];
  const servers: TestServer[] = [];
  let a: TestServer;
  let b: TestServer;
  const cluster = `core-${randomBytes(4).toString('hex')}`;

  const start = (instance: string) =>
    startTestServer(zoneFiles(backends), {
      admin: { listen: '127.0.0.1:0' },
      cluster: { etcd: [etcd.url], name: cluster, instance, leaseTtl: 3 },
    });
  const admin = async (t: TestServer, p: string, init?: RequestInit) => {
    const { host, port } = t.server.adminAddress!;
    const res = await fetch(`http://${host}:${port}${p}`, { ...init, signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const pool = (t: TestServer, name: string): PoolSnapshot => t.server.healthSnapshot().find((p) => p.name === `${name}.cluster.test.`)!;
  const member = (t: TestServer, name: string, address: string) => pool(t, name).members.find((m) => m.address === address)!;
  const served = async (t: TestServer, name: string) => addresses((await udpQuery(t.port, `${name}.cluster.test`)).packet).sort();
  const poll = (what: string, check: () => Promise<boolean> | boolean) => waitUntil(async () => check(), { what, attempts: 300, intervalMs: 100 });
  const connected = async (t: TestServer) => (await admin(t, '/api/v1/cluster')).body.state === 'connected';
  const membersSeen = async (t: TestServer) => ((await admin(t, '/api/v1/cluster')).body.members as unknown[]).length;

  beforeAll(async () => {
    await etcd.start();
    for (let i = 0; i < 4; i++) backends.push(await startHttpBackend());
    a = await start('core-a');
    b = await start('core-b');
    servers.push(a, b);
    await poll('both instances connected and seeing each other', async () => (await connected(a)) && (await connected(b)) && (await membersSeen(a)) === 2 && (await membersSeen(b)) === 2);
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) await s.close();
    for (const x of backends) await x.close();
    await etcd.close();
  });

  it('each instance sees the other\'s verdict for every member, and the combined one', async () => {
    for (const t of [a, b]) {
      await poll('two verdicts per www member', () => pool(t, 'www').members.every((m) => m.cluster?.verdicts.length === 2));
      for (const m of pool(t, 'www').members) {
        expect(m.cluster!.verdicts.map((v) => v.instance).sort()).toEqual(['core-a', 'core-b']);
        expect(m.cluster!.verdicts.find((v) => v.self)!.instance).toBe(t === a ? 'core-a' : 'core-b');
        expect(m.cluster).toMatchObject({ quorum: 'majority', combined: 'up', voters: 2, needed: 2, basis: 'quorum' });
        expect(m.health).toBe('up');
      }
    }
    const metrics = await (await fetch(`http://127.0.0.1:${a.server.adminAddress!.port}/metrics`)).text();
    expect(metrics).toMatch(/^rrdns_cluster_members 2$/m);
    expect(metrics).toMatch(/^rrdns_cluster_degraded 0$/m);
    expect(metrics).toMatch(/^rrdns_cluster_verdict_writes_total [1-9]/m);
    // The status page lists each instance's verdict under the member.
    const page = await (await fetch(`http://127.0.0.1:${a.server.adminAddress!.port}/`)).text();
    expect(page).toMatch(/data-instance="core-a"/);
    expect(page).toMatch(/data-instance="core-b"/);
    expect(page).toMatch(/quorum majority: \d of 2 down, 2 needed/);
  });

  it('checkers: 1 gives each member to one instance, and the other serves by its verdict', async () => {
    await poll('one checker per member, agreed by both', () =>
      pool(a, 'one').members.every((m) => {
        const onB = member(b, 'one', m.address).cluster!;
        return m.cluster!.assigned.length === 1 && onB.assigned[0] === m.cluster!.assigned[0] && m.cluster!.probedHere !== onB.probedHere && m.cluster!.verdicts.length === 1;
      }),
    );
    // Stop the backend checked by the instance that is not `a`, if any, else by `a`: either way one instance learns it through etcd.
    const target = backends[2]!;
    const checker = member(a, 'one', target.address).cluster!.assigned[0]!;
    const learner = checker === 'core-a' ? b : a;
    expect(member(learner, 'one', target.address).cluster!.probedHere).toBe(false);
    await target.stop();
    await poll('the instance that does not probe it drops it from its answers', async () => !(await served(learner, 'one')).includes(target.address));
    expect(member(learner, 'one', target.address)).toMatchObject({ health: 'down', served: false });
    expect(member(learner, 'one', target.address).cluster!.verdicts).toMatchObject([{ instance: checker, health: 'down', self: false }]);
    await target.start();
    await poll('back in its answers', async () => (await served(learner, 'one')).includes(target.address));
  });

  it('a reload that adds a checkers: 1 pool gives each new member one checker, agreed by both', async () => {
    const files = zoneFiles(backends);
    const zone = JSON.parse(files['cluster.test.yaml']!) as { records: Record<string, unknown> };
    // Four members: the chance that none is given to b (and the hand-over below has nothing to do) is 1 in 16.
    const extra = [...backends];
    zone.records.two = { A: extra.map((x) => x.address), pool: { check: { ...FAST, path: '/two' }, checkers: 1, members: Object.fromEntries(extra.map((x) => [x.address, { check: { port: x.port } }])) } };
    // A rolling zone update: a has the new pool, b not yet. A member whose chosen checker is b (which lacks
    // the check) is probed by a after the grace, so no member of the new pool goes unchecked.
    fs.writeFileSync(path.join(a.dir, 'cluster.test.yaml'), JSON.stringify(zone, null, 2));
    expect((await a.server.reload('test')).ok).toBe(true);
    await poll('every member of two has a verdict on a while b lacks the pool', () => pool(a, 'two')?.members.every((m) => m.cluster!.probedHere && m.cluster!.verdicts.length === 1 && m.cluster!.combined === 'up') === true);
    fs.writeFileSync(path.join(b.dir, 'cluster.test.yaml'), JSON.stringify(zone, null, 2));
    expect((await b.server.reload('test')).ok).toBe(true);
    await poll('one checker per member of two, with its verdict on both', () =>
      pool(a, 'two')?.members.every((m) => {
        const onB = member(b, 'two', m.address)?.cluster;
        return onB !== undefined && m.cluster!.assigned.length === 1 && onB.assigned[0] === m.cluster!.assigned[0] && m.cluster!.probedHere !== onB.probedHere && m.cluster!.verdicts.length === 1 && onB.verdicts.length === 1;
      }) === true,
    );
    expect((await served(b, 'two')).sort()).toEqual(extra.map((x) => x.address).sort());
    // Back to the zones every instance starts with (a restart below reads those).
    for (const t of [a, b]) {
      fs.writeFileSync(path.join(t.dir, 'cluster.test.yaml'), files['cluster.test.yaml']!);
      expect((await t.server.reload('test')).ok).toBe(true);
    }
    await poll('two gone on both', () => pool(a, 'two') === undefined && pool(b, 'two') === undefined);
  });

  it('a backend down for both leaves both instances\' answers (majority of 2)', async () => {
    const target = backends[0]!;
    await target.stop();
    for (const t of [a, b]) await poll('www without the stopped backend', async () => !(await served(t, 'www')).includes(target.address));
    expect(member(a, 'www', target.address).cluster).toMatchObject({ combined: 'down', down: 2, needed: 2 });
    await target.start();
    for (const t of [a, b]) await poll('www with it again', async () => (await served(t, 'www')).includes(target.address));
  });

  it('an override set on one instance applies on the other, and clearing it there clears it here', async () => {
    const address = backends[1]!.address;
    const put = await admin(a, `/api/v1/pools/www.cluster.test/members/${address}/override`, { method: 'PUT', body: JSON.stringify({ override: 'drain' }) });
    expect(put.status).toBe(200);
    await poll('the drain on b', async () => !(await served(b, 'www')).includes(address));
    expect(member(b, 'www', address)).toMatchObject({ override: 'drain', overrideSource: 'api', served: false });
    const del = await admin(b, `/api/v1/pools/www.cluster.test/members/${address}/override`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    await poll('cleared on a', async () => (await served(a, 'www')).includes(address));
    expect(member(a, 'www', address).override).toBeNull();
  });

  it('an override survives the restart of an instance without a state directory (it comes back from etcd)', async () => {
    const address = backends[1]!.address;
    await admin(a, `/api/v1/pools/www.cluster.test/members/${address}/override`, { method: 'PUT', body: JSON.stringify({ override: 'force-down' }) });
    await poll('force-down on b', () => member(b, 'www', address).override === 'force-down');
    await b.close();
    servers.splice(servers.indexOf(b), 1);
    b = await start('core-b');
    servers.push(b);
    await poll('b back and connected', () => connected(b));
    await poll('the override on the restarted b', async () => member(b, 'www', address).override === 'force-down' && !(await served(b, 'www')).includes(address));
    await admin(a, `/api/v1/pools/www.cluster.test/members/${address}/override`, { method: 'DELETE' });
    await poll('cleared on b', () => member(b, 'www', address).override === null);
  });

  it('etcd stopped: both keep answering on their own verdicts, degraded in /readyz (still 200), the API and the metric; etcd back: resynchronised', async () => {
    await etcd.stop();
    for (const t of [a, b]) {
      await poll('degraded', async () => (await admin(t, '/api/v1/cluster')).body.state === 'degraded');
      const ready = await admin(t, '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ready', cluster: { state: 'degraded', degraded: true } });
      const metrics = await (await fetch(`http://127.0.0.1:${t.server.adminAddress!.port}/metrics`)).text();
      expect(metrics).toMatch(/^rrdns_cluster_degraded 1$/m);
      const page = await (await fetch(`http://127.0.0.1:${t.server.adminAddress!.port}/`)).text();
      expect(page).toMatch(/data-cluster-state="degraded"/);
      expect((await served(t, 'www')).length).toBe(2);
      // Degraded, every check runs here: `one`'s members are probed by both instances now.
      await poll('every check probed here', () => pool(t, 'one').members.every((m) => m.cluster!.probedHere));
    }
    // While etcd is away: a backend goes down (each instance sees it itself) and an override is set on one of them.
    const down = backends[3]!;
    await down.stop();
    for (const t of [a, b]) await poll('down seen on own verdicts', async () => !(await served(t, 'one')).includes(down.address));
    expect(member(a, 'one', down.address).cluster!.basis).toBe('own (degraded)');
    const drained = backends[0]!.address;
    expect((await admin(a, `/api/v1/pools/www.cluster.test/members/${drained}/override`, { method: 'PUT', body: JSON.stringify({ override: 'drain' }) })).status).toBe(200);
    expect(member(b, 'www', drained).override).toBeNull();

    await etcd.start();
    for (const t of [a, b]) await poll('connected again', () => connected(t));
    await poll('both members seen again', async () => (await membersSeen(a)) === 2 && (await membersSeen(b)) === 2);
    // The override set while etcd was away reached the other instance.
    await poll('drain reconciled onto b', async () => member(b, 'www', drained).override === 'drain' && !(await served(b, 'www')).includes(drained));
    // Verdicts republished: both instances' verdicts are back for every www member, and `one` has one checker per member again.
    for (const t of [a, b]) {
      await poll('verdicts resynchronised', () => pool(t, 'www').members.every((m) => m.cluster?.verdicts.length === 2 && m.cluster.basis === 'quorum'));
      await poll('checks handed back', () => pool(t, 'one').members.every((m) => m.cluster!.assigned.length === 1));
    }
    const statusA = (await admin(a, '/api/v1/cluster')).body;
    expect(statusA.reconnects).toBeGreaterThanOrEqual(1);
    await down.start();
    await admin(a, `/api/v1/pools/www.cluster.test/members/${drained}/override`, { method: 'DELETE' });
    await poll('the clear reached b', () => member(b, 'www', drained).override === null);
  }, 120_000);

  it('a clear made while etcd is away survives a restart before etcd returns: etcd\'s older override does not come back', async () => {
    // c keeps a state directory: the pending clear is written there beside state.json.
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-core-clears-'));
    const startC = () => startTestServer(zoneFiles(backends), { admin: { listen: '127.0.0.1:0' }, stateDir, cluster: { etcd: [etcd.url], name: cluster, instance: 'core-c', leaseTtl: 3 } });
    let c = await startC();
    servers.push(c);
    try {
      const address = backends[1]!.address;
      await poll('c connected', () => connected(c));
      expect((await admin(c, `/api/v1/pools/www.cluster.test/members/${address}/override`, { method: 'PUT', body: JSON.stringify({ override: 'drain' }) })).status).toBe(200);
      await poll('the drain on a', () => member(a, 'www', address).override === 'drain');
      await etcd.stop();
      await poll('c degraded', async () => (await admin(c, '/api/v1/cluster')).body.state === 'degraded');
      expect((await admin(c, `/api/v1/pools/www.cluster.test/members/${address}/override`, { method: 'DELETE' })).status).toBe(200);
      expect(fs.readFileSync(path.join(stateDir, PENDING_CLEARS_FILE), 'utf8')).toContain(`www.cluster.test.|${address}`);
      // Restarted while etcd is still away: the clear is read back from the state directory.
      await c.close();
      servers.splice(servers.indexOf(c), 1);
      c = await startC();
      servers.push(c);
      expect(member(c, 'www', address).override).toBeNull();
      await etcd.start();
      for (const t of [a, b, c]) await poll('connected again', () => connected(t));
      // The clear is newer than etcd's drain: it wins everywhere, and nothing is pending any more.
      for (const t of [a, b, c]) await poll('the clear everywhere', async () => member(t, 'www', address).override === null && (await served(t, 'www')).includes(address));
      await poll('the pending clear written to etcd and forgotten', () => !fs.existsSync(path.join(stateDir, PENDING_CLEARS_FILE)));
      expect(member(c, 'www', address).override).toBeNull();
    } finally {
      await c.close();
      servers.splice(servers.indexOf(c), 1);
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('etcd frozen (SIGSTOP: slow, no stream breaks): degraded while answering; thawed: connected again', async () => {
    for (const t of [a, b]) await poll('both www members served before the freeze', async () => (await served(t, 'www')).length === 2);
    const pid = etcd.proc!.pid;
    process.kill(pid, 'SIGSTOP');
    try {
      for (const t of [a, b]) await poll('degraded on a frozen etcd', async () => (await admin(t, '/api/v1/cluster')).body.state === 'degraded');
      for (const t of [a, b]) expect((await served(t, 'www')).length).toBe(2);
      expect((await admin(a, '/readyz')).status).toBe(200);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    for (const t of [a, b]) await poll('connected after the thaw', () => connected(t));
    await poll('both members seen again', async () => (await membersSeen(a)) === 2 && (await membersSeen(b)) === 2);
  }, 120_000);

  it('a second live process with the same --cluster-instance fails its start, and the first one keeps its key', async () => {
    const startedB = (await admin(b, '/api/v1/cluster')).body.members.find((m: { self: boolean }) => m.self).startedAt;
    await expect(start('core-b')).rejects.toMatchObject({ code: 'RRDNS_CLUSTER_INSTANCE_TAKEN' });
    const self = (await admin(b, '/api/v1/cluster')).body.members.find((m: { self: boolean }) => m.self);
    expect(self.startedAt).toBe(startedB);
    expect(await connected(b)).toBe(true);
  }, 60_000);

  it('an instance that leaves hands its checks (checkers: 1) to the other', async () => {
    const ofA = pool(b, 'one').members.filter((m) => m.cluster!.assigned[0] === 'core-a').map((m) => m.address);
    await a.close();
    servers.splice(servers.indexOf(a), 1);
    await poll('b alone in the cluster', async () => (await membersSeen(b)) === 1);
    await poll('b probes every member of one', () => pool(b, 'one').members.every((m) => m.cluster!.probedHere && m.cluster!.assigned[0] === 'core-b' && m.cluster!.verdicts.length === 1));
    // What a checked before now has b's own verdict.
    for (const address of ofA) expect(member(b, 'one', address).cluster!.verdicts[0]).toMatchObject({ instance: 'core-b', self: true });
    // Every backend runs again (the drill above restarted the one it stopped): b alone serves both.
    await poll('both members of one served by b', async () => (await served(b, 'one')).length === 2);
  });
});

describe.skipIf(ETCD === undefined || toolPath('openssl') === undefined)('etcd over TLS with a client certificate', () => {
  it('connects with --cluster-etcd-ca/-cert/-key, and a missing CA file fails the start naming the option', async () => {
    const dir = tempDir('etcd-tls');
    const ssl = (...args: string[]) => execFileAsync(toolPath('openssl')!, args, { cwd: dir });
    await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=rrdns-test-ca');
    fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const [name, cn, ext] of [['server', '127.0.0.1', true], ['client', 'rrdns', false]] as const) {
      await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', ...(ext ? ['-extfile', 'san.ext'] : []));
    }
    const client = await freePort();
    const peer = `http://127.0.0.1:${await freePort()}`;
    const url = `https://127.0.0.1:${client}`;
    const f = (n: string) => path.join(dir, n);
    const proc = startProcess('etcd-tls', ETCD!, ['--name', 'tls', '--data-dir', f('data'), '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `tls=${peer}`, '--cert-file', f('server.pem'), '--key-file', f('server.key'), '--trusted-ca-file', f('ca.pem'), '--client-cert-auth', '--log-level', 'error']);
    let t: TestServer | undefined;
    try {
      const backends4 = [await startHttpBackend(), await startHttpBackend(), await startHttpBackend(), await startHttpBackend()];
      try {
        const tls = { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') };
        await expect(startTestServer(zoneFiles(backends4), { cluster: { etcd: [url], name: 'tls', instance: 'tls-a', tls: { ...tls, ca: f('missing.pem') } } })).rejects.toMatchObject({ code: 'RRDNS_CLUSTER_CONFIG', message: expect.stringContaining('--cluster-etcd-ca') });
        t = await startTestServer(zoneFiles(backends4), { cluster: { etcd: [url], name: 'tls', instance: 'tls-a', tls } });
        const node = t.server.cluster!;
        await waitUntil(async () => node.state === 'connected', { what: 'connected over TLS', attempts: 300, intervalMs: 100, proc });
        expect(node.status()).toMatchObject({ state: 'connected', members: [{ instance: 'tls-a', self: true }] });
      } finally {
        await t?.close();
        for (const x of backends4) await x.close();
      }
    } finally {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe.skipIf(ETCD === undefined || toolPath('etcdctl') === undefined)('etcd with user and password', () => {
  it('connects with --cluster-etcd-user and --cluster-etcd-password-file; a wrong password fails the start with CLUSTER_CONFIG', async () => {
    const etcd = new OneEtcd();
    await etcd.start();
    const backends4 = [await startHttpBackend(), await startHttpBackend(), await startHttpBackend(), await startHttpBackend()];
    let t: TestServer | undefined;
    try {
      const ctl = (...args: string[]) => execFileAsync(toolPath('etcdctl')!, ['--endpoints', etcd.url, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
      await ctl('user', 'add', 'root', '--new-user-password=rootpw');
      await ctl('auth', 'enable');
      const pw = path.join(etcd.dataDir, 'pw');
      fs.writeFileSync(pw, 'wrong\n');
      await expect(startTestServer(zoneFiles(backends4), { cluster: { etcd: [etcd.url], name: 'auth', instance: 'auth-a', user: 'root', passwordFile: pw } })).rejects.toMatchObject({ code: 'RRDNS_CLUSTER_CONFIG', message: expect.stringContaining('--cluster-etcd-user') });
      // The file's trailing newline is not part of the password.
      fs.writeFileSync(pw, 'rootpw\n');
      t = await startTestServer(zoneFiles(backends4), { cluster: { etcd: [etcd.url], name: 'auth', instance: 'auth-a', user: 'root', passwordFile: pw } });
      const node = t.server.cluster!;
      await waitUntil(async () => node.state === 'connected', { what: 'connected with a password', attempts: 300, intervalMs: 100 });
      expect(node.status()).toMatchObject({ state: 'connected', members: [{ instance: 'auth-a', self: true }] });
    } finally {
      await t?.close();
      for (const x of backends4) await x.close();
      await etcd.close();
    }
  }, 120_000);
});

describe('alone (no --cluster-etcd)', () => {
  it('a server started alone loads neither etcd3 nor gRPC (a fresh process; with the option both are loaded)', async () => {
    const zones = tempDir('alone-zones');
    fs.writeFileSync(path.join(zones, 'alone.test.yaml'), JSON.stringify({ origin: 'alone.test', soa: { mname: 'ns1', rname: 'h', serial: 1 }, records: { '@': { NS: 'ns1' }, ns1: { A: '192.0.2.53' } } }));
    const script = (cluster: string) => `
      import { createRequire } from 'node:module';
      import { parseConfig } from ${JSON.stringify(path.join(REPO_ROOT, 'src/config/schema.ts'))};
      import { RrdnsServer } from ${JSON.stringify(path.join(REPO_ROOT, 'src/server/server.ts'))};
      import { createLogger } from ${JSON.stringify(path.join(REPO_ROOT, 'src/observability/log.ts'))};
      const extra = ${cluster ? `{ cluster: { etcd: [${JSON.stringify(cluster)}], name: 'alone-check', instance: 'x', timeoutMs: 500 } }` : '{}'};
      const s = new RrdnsServer(parseConfig({ zonesDir: ${JSON.stringify(zones)}, listen: ['127.0.0.1:0'], admin: { listen: 'off' }, stateDir: 'off', watch: { enabled: false }, udpThreads: 1, ...extra }), { logger: createLogger('silent') });
      await s.start();
      const cache = Object.keys(createRequire(import.meta.url)('node:module')._cache);
      console.log(JSON.stringify({ etcd3: cache.some((k) => k.includes('/etcd3/')), grpc: cache.some((k) => k.includes('@grpc')) }));
      await s.close();
      process.exit(0);`;
    const run = async (cluster: string) => {
      const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script(cluster)], { cwd: REPO_ROOT, timeout: 60_000 });
      return JSON.parse(stdout.trim().split('\n').pop()!) as { etcd3: boolean; grpc: boolean };
    };
    try {
      expect(await run('')).toEqual({ etcd3: false, grpc: false });
      // An unreachable endpoint is enough to load the client (the start goes on degraded).
      expect(await run('http://127.0.0.1:1')).toEqual({ etcd3: true, grpc: true });
    } finally {
      fs.rmSync(zones, { recursive: true, force: true });
    }
  }, 120_000);

  it('GET /api/v1/cluster says disabled, /readyz has no cluster field, members have no cluster verdicts', async () => {
    const bs = [await startHttpBackend(), await startHttpBackend(), await startHttpBackend(), await startHttpBackend()];
    const t = await startTestServer(zoneFiles(bs), { admin: { listen: '127.0.0.1:0' } });
    try {
      const { port } = t.server.adminAddress!;
      expect(await (await fetch(`http://127.0.0.1:${port}/api/v1/cluster`)).json()).toEqual({ enabled: false });
      const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as Record<string, unknown>;
      expect(ready.cluster).toBeUndefined();
      expect(t.server.cluster).toBeUndefined();
      for (const p of t.server.healthSnapshot()) for (const m of p.members) expect(m.cluster).toBeUndefined();
    } finally {
      await t.close();
      for (const x of bs) await x.close();
    }
  });
});
