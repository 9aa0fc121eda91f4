/**
 * Cold standby with the real server, real HTTP backends on 127.0.0.x and real
 * dig: the standby is not probed while a primary serves, its checks start when
 * every primary is down and it serves once one passes, and they stop again
 * when a primary is back. Waits are bounded polls; what is asserted is what
 * the backends saw and what dig got, never how long it took.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger, startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, waitFor, type Backend } from '../support/backends.ts';
import { dig } from '../support/dig.ts';

const servers: TestServer[] = [];
const backends: Backend[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const b of backends.splice(0)) await b.close();
});

// Generous timeout: on a loaded machine a healthy loopback backend must never time out.
const CHECK = { interval: '500ms', timeout: '400ms', fall: 2, rise: 2 };

async function http(): Promise<Backend> {
  const b = await startHttpBackend();
  backends.push(b);
  return b;
}

function zoneText(primaries: Backend[], standby: Backend[], mode: 'hot' | 'cold', ttl = 300, others: Backend[] = []): string {
  const members = Object.fromEntries([...primaries, ...standby].map((b) => [b.address, { check: { port: b.port } }]));
  const pool: Record<string, unknown> = { check: CHECK, members };
  if (standby.length > 0) Object.assign(pool, { allDown: 'backup', standby: { mode, addresses: standby.map((b) => b.address) } });
  const zone = {
    origin: 'cold.test',
    ttl: { default: 300, min: 0 },
    soa: { mname: 'ns1', rname: 'hostmaster', serial: 1, minimum: 30 },
    records: {
      '@': { NS: 'ns1' },
      ns1: { A: '192.0.2.53' },
      www: { ttl, A: primaries.map((b) => b.address), pool },
      // Other pooled names, for a reload that also brings health changes.
      ...Object.fromEntries(others.map((b, i) => [`other${i}`, { A: [b.address], pool: { check: { ...CHECK, port: b.port } } }])),
    },
  };
  return JSON.stringify(zone);
}

async function serve(primaries: Backend[], standby: Backend[], mode: 'hot' | 'cold', logger?: ReturnType<typeof captureLogger>['logger']): Promise<TestServer> {
  const t = await startTestServer({ 'cold.test.yaml': zoneText(primaries, standby, mode) }, {}, logger);
  servers.push(t);
  return t;
}

const digServed = async (t: TestServer) => (await dig(t.port, ['www.cold.test', 'A'])).answer.map((r) => r.data).sort();
const member = (t: TestServer, address: string) => t.server.healthSnapshot().find((p) => p.name === 'www.cold.test.')!.members.find((m) => m.address === address)!;

/** Polls dig until `want` holds; bounded. */
async function untilServed(t: TestServer, want: string[], what: string): Promise<void> {
  let last: string[] = [];
  for (let i = 0; i < 300; i++) {
    last = await digServed(t);
    if (last.join() === [...want].sort().join()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}; dig last got: ${last.join(', ') || '(none)'}`);
}

/**
 * Waits (bounded) until every primary has passed two checks in a row and the standby is idle.
 * Where the counting of standby probes starts: on a loaded machine a primary's first check can
 * time out, and a first result decides directly, so the standby may rightly have been woken
 * (and put back to sleep) before.
 */
async function primariesSteady(t: TestServer, primaries: Backend[], standby: Backend): Promise<void> {
  const key = member(t, standby.address).check;
  await waitFor(
    () => primaries.every((p) => member(t, p.address).consecutiveOk >= 2) && !t.server.monitor.probing(key),
    20_000,
    'the primaries to pass two checks in a row, the standby idle',
  );
}

/** Waits (bounded) until `b` has received `n` more probes. */
const probesOf = (b: Backend, n: number) => {
  const target = b.hits + n;
  return waitFor(() => b.hits >= target, 20_000, `${n} probes of ${b.address}`);
};

describe('cold standby', () => {
  it('is not probed while primaries serve, takes over once its check passes when every primary is down, and is left alone again when one is back', async () => {
    const p1 = await http();
    const p2 = await http();
    const s = await http();
    const capture = captureLogger();
    const t = await serve([p1, p2], [s], 'cold', capture.logger);
    expect(await digServed(t)).toEqual([p1.address, p2.address].sort());

    // Primaries up: several check rounds, and the standby backend sees nothing.
    await primariesSteady(t, [p1, p2], s);
    const idle = s.hits;
    await probesOf(p1, 4);
    expect(s.hits).toBe(idle);
    const key = member(t, s.address).check;
    expect(t.server.monitor.probing(key)).toBe(false);
    expect(member(t, s.address)).toMatchObject({ health: 'unknown', served: false, probing: false });

    // Every primary down: the standby's checks start, and it serves once one has passed.
    await p1.stop();
    await p2.stop();
    await untilServed(t, [s.address], 'the cold standby to take over');
    expect(s.hits).toBeGreaterThanOrEqual(1);
    expect(member(t, s.address)).toMatchObject({ health: 'up', served: true, probing: true });
    expect(t.server.monitor.probing(key)).toBe(true);
    await probesOf(s, 2); // probed on its schedule while it serves

    // A primary back: it serves again and the standby's checks stop.
    await p1.start();
    await untilServed(t, [p1.address], 'the primary to return');
    await waitFor(() => !t.server.monitor.probing(key), 20_000, 'the standby checks to stop');
    await probesOf(p1, 1); // a probe of the standby aborted at the switch has had time to land
    const after = s.hits;
    await probesOf(p1, 4);
    expect(s.hits).toBe(after);
    expect(member(t, s.address)).toMatchObject({ health: 'unknown', served: false });

    const switches = capture.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('cold standby:') && l.address === s.address).map((l) => l.msg);
    expect(switches).toEqual(['cold standby: no usable primary, checks start', 'cold standby: a primary is usable again, checks stop']);
  });

  it('a cold standby whose first check fails does not serve: the pool falls back as with no healthy standby (fail open)', async () => {
    const p1 = await http();
    const s = await http();
    const t = await serve([p1], [s], 'cold');
    await p1.stop();
    s.setMode('status500');
    await probesOf(s, 2);
    expect(member(t, s.address)).toMatchObject({ health: 'down', served: false });
    expect(t.server.healthSnapshot()[0]!.serving).toBe('allDown:serveAll');
    expect(await digServed(t)).toEqual([p1.address]);
    // It passes later: rise successes bring it up and it serves.
    s.setMode('ok');
    await untilServed(t, [s.address], 'the standby to come up');
  });

  it('hot standby (mode: hot, like the plain list) is probed while primaries serve, as before', async () => {
    const p1 = await http();
    const s = await http();
    const t = await serve([p1], [s], 'hot');
    await probesOf(s, 2);
    expect(member(t, s.address)).toMatchObject({ health: 'up', served: false });
    await p1.stop();
    await untilServed(t, [s.address], 'the hot standby to take over');
  });

  it('reloads: a serving cold standby keeps serving; one added while every primary is down is probed at once and serves', async () => {
    const p1 = await http();
    const s1 = await http();
    const s2 = await http();
    const t = await serve([p1], [s1], 'cold');
    await p1.stop();
    await untilServed(t, [s1.address], 's1 to take over');
    // Same pool, another TTL: the standby's check survives the reload with its state and keeps serving.
    fs.writeFileSync(path.join(t.dir, 'cold.test.yaml'), zoneText([p1], [s1], 'cold', 120));
    expect((await t.server.reload()).ok).toBe(true);
    expect(await digServed(t)).toEqual([s1.address]);
    expect(member(t, s1.address)).toMatchObject({ health: 'up', probing: true });
    // A new cold standby, while the primary is still down: probed in the reload's first round, served at the swap.
    fs.writeFileSync(path.join(t.dir, 'cold.test.yaml'), zoneText([p1], [s1, s2], 'cold'));
    expect((await t.server.reload()).ok).toBe(true);
    expect(s2.hits).toBeGreaterThanOrEqual(1);
    expect(await digServed(t)).toEqual([s1.address, s2.address].sort());
  });

  it('a reload that adds a cold standby while the primaries serve does not probe it, even with a health change during the reload', async () => {
    const p1 = await http();
    const s1 = await http();
    const dead = await http();
    dead.setMode('status500');
    const slow = await http();
    slow.setMode('hang');
    const t = await serve([p1], [], 'cold');
    await waitFor(() => member(t, p1.address).consecutiveOk >= 2, 20_000, 'p1 to pass two checks in a row');
    // The reload also adds a name whose backend fails (its first result is a change) and one that hangs
    // (its first check keeps the reload's first round open meanwhile).
    fs.writeFileSync(path.join(t.dir, 'cold.test.yaml'), zoneText([p1], [s1], 'cold', 300, [dead, slow]));
    expect((await t.server.reload()).ok).toBe(true);
    await probesOf(p1, 4);
    expect(dead.hits).toBeGreaterThanOrEqual(1);
    expect(s1.hits).toBe(0);
    expect(member(t, s1.address)).toMatchObject({ health: 'unknown', probing: false, served: false });
  });
});
