/**
 * Health checks decide the answers: real HTTP(S)/TCP backends on 127.0.0.x,
 * the real server, answers read over DNS. Waits are bounded polls for an
 * expected state, never assertions about how long something took.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { captureLogger, startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, startHttpsBackend, startTcpBackend, type Backend, type BackendMode } from '../support/backends.ts';

// Generous timeout: on a loaded 2-core machine a healthy loopback backend must never time out.
const FAST = { interval: '500ms', timeout: '400ms', fall: 2, rise: 2 };

const servers: TestServer[] = [];
const backends: Backend[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const b of backends.splice(0)) await b.close();
});

async function http(mode: BackendMode = 'ok'): Promise<Backend> {
  const b = await startHttpBackend({ mode });
  backends.push(b);
  return b;
}

interface PoolOptions {
  check?: Record<string, unknown>;
  standby?: Backend[];
  allDown?: string;
  minHealthy?: number;
  admin?: Record<string, string>;
  ttl?: number;
}

/** A name entry whose A records are `primaries`, each checked on its own port. */
function poolEntry(primaries: Backend[], o: PoolOptions = {}): Record<string, unknown> {
  const members: Record<string, Record<string, unknown>> = {};
  for (const b of [...primaries, ...(o.standby ?? [])]) members[b.address] = { check: { port: b.port } };
  for (const [address, admin] of Object.entries(o.admin ?? {})) members[address] = { ...members[address], admin };
  const pool: Record<string, unknown> = { check: { ...FAST, ...o.check }, members };
  if (o.standby) pool.standby = o.standby.map((b) => b.address);
  if (o.allDown) pool.allDown = o.allDown;
  if (o.minHealthy !== undefined) pool.minHealthy = o.minHealthy;
  return { ...(o.ttl !== undefined ? { ttl: o.ttl } : {}), A: primaries.map((b) => b.address), pool };
}

async function serve(names: Record<string, Record<string, unknown>>, logger?: ReturnType<typeof captureLogger>['logger']): Promise<TestServer> {
  const zone = {
    origin: 'pool.test',
    ttl: { default: 300, min: 0 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
    records: { '@': { NS: 'ns1' }, ns1: { A: '192.0.2.53' }, ...names },
  };
  // JSON is YAML: the native zone format reads it as it is.
  const t = await startTestServer({ 'pool.test.yaml': JSON.stringify(zone, null, 2) }, {}, logger);
  servers.push(t);
  return t;
}

const query = async (t: TestServer, name = 'www.pool.test') => (await udpQuery(t.port, name)).packet;
const served = async (t: TestServer, name = 'www.pool.test') => addresses(await query(t, name)).sort();
const member = (t: TestServer, address: string, name = 'www.pool.test.') =>
  t.server.healthSnapshot().find((p) => p.name === name)!.members.find((m) => m.address === address)!;
const sorted = (...bs: Backend[]) => bs.map((b) => b.address).sort();

/** Polls the DNS answer until `want` holds; bounded. */
async function until(t: TestServer, want: (addrs: string[]) => boolean, what: string, name = 'www.pool.test'): Promise<string[]> {
  let last: string[] = [];
  for (let i = 0; i < 200; i++) {
    last = await served(t, name);
    if (want(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}; last answer: ${last.join(', ') || '(none)'}`);
}

/** Waits (bounded) until the backend has received `n` more checks. */
async function checksPass(b: Backend, n: number): Promise<void> {
  const target = b.hits + n;
  for (let i = 0; i < 400 && b.hits < target; i++) await new Promise((r) => setTimeout(r, 25));
  expect(b.hits).toBeGreaterThanOrEqual(target);
}

describe('answers follow health', () => {
  it('the first answers already exclude a dead backend (one round of checks before serving)', async () => {
    const a = await http();
    const dead = await http('status500');
    const t = await serve({ www: poolEntry([a, dead]) });
    expect(await served(t)).toEqual([a.address]);
  });

  it('a stopped backend leaves after `fall` failures and returns after `rise` successes; each change is logged with its reason', async () => {
    const a = await http();
    const b = await http();
    const capture = captureLogger();
    const t = await serve({ www: poolEntry([a, b]) }, capture.logger);
    expect(await served(t)).toEqual(sorted(a, b));
    await a.stop();
    await until(t, (s) => s.join() === b.address, 'a to leave');
    expect(member(t, a.address)).toMatchObject({ health: 'down', served: false, consecutiveFail: FAST.fall });
    await a.start();
    await until(t, (s) => s.length === 2, 'a to return');
    expect(member(t, a.address)).toMatchObject({ health: 'up', served: true, consecutiveOk: FAST.rise });
    const changes = capture.lines.filter((l) => l.msg === 'health state changed' && l.address === a.address);
    expect(changes.map((l) => [l.from, l.to])).toEqual([
      ['up', 'down'],
      ['down', 'up'],
    ]);
    expect(changes[0]!.reason).toMatch(/^2 consecutive failures: .*ECONNREFUSED/);
    expect(changes[1]!.reason).toMatch(/^2 consecutive successes: HTTP 200/);
  });

  it.each([
    { mode: 'hang' as const, detail: /timeout/i },
    { mode: 'reset' as const, detail: /ECONNRESET|socket|closed|other side/i },
    { mode: 'status500' as const, detail: /500/ },
    { mode: 'wrongBody' as const, detail: /body/i, check: { body: { match: 'OK body' } } },
  ])('a backend that $mode is kept out of the answers', async ({ mode, detail, check }) => {
    const good = await http();
    const bad = await http(mode);
    const t = await serve({ www: poolEntry([good, bad], { check }) });
    expect(await served(t)).toEqual([good.address]);
    await checksPass(bad, 2);
    const m = member(t, bad.address);
    expect(m.health).toBe('down');
    expect(m.lastResult).toMatch(detail);
    expect(await served(t)).toEqual([good.address]);
  });

  it('a backend that flaps on every check does not flap in the answers', async () => {
    const good = await http();
    const flappy = await http('flap');
    const t = await serve({ www: poolEntry([good, flappy]) });
    const first = await served(t);
    // Over at least 8 checks of the flapping backend, the answer never changes.
    const target = flappy.hits + 8;
    for (let i = 0; i < 400 && flappy.hits < target; i++) {
      expect(await served(t)).toEqual(first);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(flappy.hits).toBeGreaterThanOrEqual(target);
    expect(first).toContain(flappy.address);
  });
});

describe('HTTPS checks', () => {
  it('a self-signed backend is down with verification on, up with its CA, up with verification off', async () => {
    const tls = await startHttpsBackend();
    backends.push(tls);
    const base = { type: 'https', host: tls.certName, port: tls.port };
    const t = await serve({
      verify: { A: [tls.address], pool: { check: { ...FAST, ...base }, allDown: 'nodata' } },
      withca: { A: [tls.address], pool: { check: { ...FAST, ...base, tls: { ca: tls.caPath } }, allDown: 'nodata' } },
      noverify: { A: [tls.address], pool: { check: { ...FAST, ...base, tls: { verify: false } }, allDown: 'nodata' } },
    });
    expect(await served(t, 'verify.pool.test')).toEqual([]);
    expect(await served(t, 'withca.pool.test')).toEqual([tls.address]);
    expect(await served(t, 'noverify.pool.test')).toEqual([tls.address]);
    // SNI and Host equal the configured name.
    expect(tls.requests.every((r) => r.host === tls.certName)).toBe(true);
  });
});

describe('TCP checks', () => {
  it('a TCP check is up while the port accepts and down once it refuses', async () => {
    const tcp = await startTcpBackend();
    backends.push(tcp);
    const other = await http();
    const t = await serve({
      www: { A: [tcp.address, other.address], pool: { check: { type: 'tcp', port: tcp.port, ...FAST }, members: { [other.address]: { check: { type: 'tcp', port: other.port } } } } },
    });
    expect(await served(t)).toEqual(sorted(tcp, other));
    await tcp.stop();
    await until(t, (s) => s.join() === other.address, 'tcp backend to leave');
  });
});

describe('allDown policies', () => {
  it('serveAll (the default) fails open: every primary is served', async () => {
    const a = await http('status500');
    const b = await http('status500');
    const t = await serve({ www: poolEntry([a, b]) });
    expect(await served(t)).toEqual(sorted(a, b));
    expect(t.server.healthSnapshot()[0]!.serving).toBe('allDown:serveAll');
  });

  it('backup: the standby pool takes over and hands back when a primary recovers', async () => {
    const primary = await http();
    const standby = await http();
    const t = await serve({ www: poolEntry([primary], { standby: [standby], allDown: 'backup' }) });
    expect(await served(t)).toEqual([primary.address]);
    await primary.stop();
    await until(t, (s) => s.join() === standby.address, 'standby to take over');
    await primary.start();
    await until(t, (s) => s.join() === primary.address, 'primary to come back');
  });

  it('nodata: NOERROR with no answer and the SOA', async () => {
    const a = await http('status500');
    const t = await serve({ www: poolEntry([a], { allDown: 'nodata' }) });
    const p = await query(t);
    expect(p.header.rcode).toBe(0);
    expect(p.answers).toHaveLength(0);
    expect(p.authorities[0]!.type).toBe(Packet.TYPE.SOA);
  });

  it('servfail: SERVFAIL', async () => {
    const a = await http('status500');
    const t = await serve({ www: poolEntry([a], { allDown: 'servfail' }) });
    expect((await query(t)).header.rcode).toBe(2);
  });

  it('minHealthy: below the fraction, every primary is served to spare the survivors', async () => {
    const a = await http();
    const b = await http('status500');
    const c = await http('status500');
    const t = await serve({ www: poolEntry([a, b, c], { minHealthy: 0.5 }), strict: poolEntry([a, b, c]) });
    expect(await served(t)).toEqual(sorted(a, b, c));
    expect(await served(t, 'strict.pool.test')).toEqual([a.address]);
  });
});

describe('sharing, TTLs and overrides', () => {
  it('a backend used by several names gets one check per interval, counted at the backend', async () => {
    const shared = await http();
    // Same address, port and settings (one Host for all) make one check; a different Host would be a different probe.
    const check = { host: 'shared.pool.test' };
    const t = await serve({ www: poolEntry([shared], { check }), api: poolEntry([shared], { check }), app: poolEntry([shared], { check }) });
    await checksPass(shared, 3);
    const states = t.server.monitor.states().filter((s) => s.address === shared.address);
    expect(states).toHaveLength(1);
    // Every request the backend saw is one of the single shared check's runs.
    expect(Math.abs(shared.hits - states[0]!.checks)).toBeLessThanOrEqual(1);
  });

  it('the TTL never exceeds the time until the answer could change, within the zone clamps', async () => {
    const a = await http();
    const t = await serve({ www: poolEntry([a], { check: { interval: '1s', timeout: '500ms', fall: 3 }, ttl: 300 }) });
    const p = await query(t);
    // Up with no failures: at least `fall` (3) checks of 1 s are needed before it can go down.
    expect(p.answers[0]!.ttl).toBeLessThanOrEqual(3);
    expect(p.answers[0]!.ttl).toBeGreaterThanOrEqual(1);
  });

  it('drain (zone file) leaves new answers while its check keeps running', async () => {
    const a = await http();
    const b = await http();
    const t = await serve({ www: poolEntry([a, b], { admin: { [b.address]: 'drain' } }) });
    expect(await served(t)).toEqual([a.address]);
    await checksPass(b, 2);
    expect(member(t, b.address)).toMatchObject({ override: 'drain', overrideSource: 'zone', health: 'up', served: false });
  });

  it('force-down and force-up through the server API, keyed as the state output names members', async () => {
    const a = await http();
    const dead = await http('status500');
    const t = await serve({ www: poolEntry([a, dead]) });
    expect(await served(t)).toEqual([a.address]);
    expect(t.server.setOverride('www.pool.test.', dead.address, 'force-up')).toBe(true);
    expect(await served(t)).toEqual(sorted(a, dead));
    expect(t.server.setOverride('www.pool.test.', a.address, 'force-down')).toBe(true);
    expect(await served(t)).toEqual([dead.address]);
    t.server.setOverride('www.pool.test.', a.address, null);
    t.server.setOverride('www.pool.test.', dead.address, null);
    expect(await served(t)).toEqual([a.address]);
    expect(t.server.setOverride('www.pool.test.', '192.0.2.99', 'drain')).toBe(false);
  });

  it('rotation continues over the healthy members only', async () => {
    const bs = [await http(), await http(), await http(), await http('status500')];
    const t = await serve({ www: poolEntry(bs) });
    const firsts = new Map<string, number>();
    for (let i = 0; i < 9; i++) {
      const got = addresses(await query(t));
      expect(got).toHaveLength(3);
      firsts.set(got[0]!, (firsts.get(got[0]!) ?? 0) + 1);
    }
    expect([...firsts.values()]).toEqual([3, 3, 3]);
  });
});

describe('spreading', () => {
  it('50 addresses checked every second: after the first round, checks are spread across the second, not fired in a burst', async () => {
    const many: Backend[] = [];
    for (let i = 0; i < 50; i++) many.push(await http());
    const t = await serve({ many: poolEntry(many, { check: { interval: '1s', timeout: '500ms' } }) });
    // Wait (bounded) until every backend has had its second check: the first periodic round.
    for (let i = 0; i < 200 && many.some((b) => b.requests.length < 2); i++) await new Promise((r) => setTimeout(r, 25));
    expect(many.every((b) => b.requests.length >= 2)).toBe(true);
    const second = many.map((b) => b.requests[1]!.at);
    const start = Math.min(...second);
    // Ten 100 ms slots of the interval: a burst would fill one or two; an even spread fills them all.
    const slots = new Array(10).fill(0);
    for (const at of second) slots[Math.min(9, Math.floor((at - start) / 100))]++;
    expect(slots.filter((n) => n > 0).length).toBeGreaterThanOrEqual(8);
    expect(Math.max(...slots)).toBeLessThanOrEqual(15);
    expect(t.server.monitor.states()).toHaveLength(50);
  });
});

describe('IPv6 members', () => {
  it('AAAA members are checked over IPv6 and leave the AAAA answer when down', async () => {
    const v6 = await startHttpBackend({ address: '::1' });
    backends.push(v6);
    const v4 = await http();
    const t = await serve({
      dual: {
        A: [v4.address],
        AAAA: ['::1', '2001:db8::dead'],
        pool: {
          check: { ...FAST, port: v6.port },
          members: { [v4.address]: { check: { port: v4.port } }, '2001:db8::dead': { admin: 'force-down' } },
        },
      },
    });
    const aaaa = async () => addresses((await udpQuery(t.port, 'dual.pool.test', { type: Packet.TYPE.AAAA })).packet);
    expect(await aaaa()).toEqual(['::1']);
    // The backend saw the check arrive over IPv6, with the record's name as Host.
    expect(v6.requests.at(-1)!.host).toBe('dual.pool.test');
    await v6.stop();
    const v6State = () => t.server.healthSnapshot().find((p) => p.type === 'AAAA')!.members.find((m) => m.address === '::1')!;
    for (let i = 0; i < 200 && v6State().health !== 'down'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(v6State().health).toBe('down');
    // Every AAAA primary is down (one forced): serveAll fails open, but never with the forced-down one.
    expect(await aaaa()).toEqual(['::1']);
    expect(t.server.healthSnapshot().find((p) => p.type === 'AAAA')!.serving).toBe('allDown:serveAll');
    // The A pool is judged on its own and is unaffected.
    expect(await served(t, 'dual.pool.test')).toEqual([v4.address]);
  });
});
