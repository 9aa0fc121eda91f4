/**
 * The state directory across restarts of the real process (src/state/):
 * overrides set through the admin API and served SOA serials survive a stop
 * and start with the same --state-dir; a state file that cannot be used stops
 * the start with an error naming it; a write that fails refuses the override;
 * two processes sharing a directory keep each other's entries.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../support/dig.ts';
import { writeZones } from '../support/server.ts';
import { REPO_ROOT, RRDNS_MAIN, startRrdns, stopAll, tempDir, waitUntil, type RrdnsProcess } from '../support/spawn.ts';

// Two pool members on their own loopback addresses, both up (a TCP check on a port each accepts).
const MEMBERS = ['127.0.0.81', '127.0.0.82'];
const backends: net.Server[] = [];
let checkPort = 0;

beforeAll(async () => {
  for (const host of MEMBERS) {
    const s = net.createServer((c) => c.destroy());
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(checkPort, host, () => resolve());
    });
    checkPort = (s.address() as net.AddressInfo).port;
    backends.push(s);
  }
});
afterAll(async () => {
  for (const s of backends) await new Promise<void>((r) => s.close(() => r()));
});
afterEach(async () => {
  await stopAll();
});

const poolZone = (serial: number | 'auto', extra = '') => `soa: { mname: ns1, rname: hostmaster, serial: ${serial} }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    A: [${MEMBERS.join(', ')}]
    pool: { check: { type: tcp, port: ${checkPort}, interval: 1s, timeout: 500ms } }
${extra}`;

interface Running {
  proc: RrdnsProcess;
  admin: string;
}

async function start(zonesDir: string, stateDir: string): Promise<Running> {
  const proc = await startRrdns({ zonesDir, args: ['--state-dir', stateDir, '--admin', '127.0.0.1:0', '--no-watch'] });
  const listening = proc.logs.find((l) => l.msg === 'rrdns listening')!;
  return { proc, admin: `http://${listening.admin as string}` };
}

const addresses = async (port: number, name: string) => (await dig(port, [name, 'A'])).answer.map((r) => r.data).sort();
const soaSerial = async (port: number, zone: string) => Number((await dig(port, [zone, 'SOA'])).answer[0]!.data.split(' ')[2]);

function override(admin: string, name: string, address: string, value: string | null): Promise<Response> {
  const url = `${admin}/api/v1/pools/${name}/members/${address}/override`;
  return value === null
    ? fetch(url, { method: 'DELETE' })
    : fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ override: value }) });
}

async function memberState(admin: string, name: string, address: string) {
  const health = (await (await fetch(`${admin}/api/v1/health`)).json()) as { pools: { name: string; members: { address: string; override: string | null; overrideSource: string | null }[] }[] };
  return health.pools.find((p) => p.name === name)?.members.find((m) => m.address === address);
}

describe('overrides survive a restart', () => {
  it('a drained member stays drained from the first answer after a restart; cleared, it is back after the next', async () => {
    const zones = writeZones({ 'st.test.yaml': poolZone(1) });
    const stateDir = tempDir('state');
    let r = await start(zones, stateDir);
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual(MEMBERS);
    expect((await override(r.admin, 'www.st.test.', MEMBERS[0]!, 'drain')).status).toBe(200);
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual([MEMBERS[1]]);
    await r.proc.stop();

    r = await start(zones, stateDir);
    // The first query this process answers.
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual([MEMBERS[1]]);
    expect(await memberState(r.admin, 'www.st.test.', MEMBERS[0]!)).toMatchObject({ override: 'drain', overrideSource: 'api' });
    expect((await override(r.admin, 'www.st.test.', MEMBERS[0]!, null)).status).toBe(200);
    await r.proc.stop();

    r = await start(zones, stateDir);
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual(MEMBERS);
    expect(await memberState(r.admin, 'www.st.test.', MEMBERS[0]!)).toMatchObject({ override: null });
  });

  it('an override for a member the zones no longer have is kept and applies when it comes back', async () => {
    const zones = writeZones({ 'st.test.yaml': poolZone(1) });
    const stateDir = tempDir('state');
    let r = await start(zones, stateDir);
    expect((await override(r.admin, 'www.st.test.', MEMBERS[0]!, 'drain')).status).toBe(200);
    await r.proc.stop();
    // Restart without that member, then with it again.
    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone(2).replace(`[${MEMBERS.join(', ')}]`, `[${MEMBERS[1]}]`));
    r = await start(zones, stateDir);
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual([MEMBERS[1]]);
    await r.proc.stop();
    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone(3));
    r = await start(zones, stateDir);
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual([MEMBERS[1]]);
    expect(await memberState(r.admin, 'www.st.test.', MEMBERS[0]!)).toMatchObject({ override: 'drain' });
  });
});

describe('served serials never go backwards across restarts', () => {
  it('explicit serial: a lowered file serial with changed content is served above the stored one; unchanged content keeps it', async () => {
    const zones = writeZones({ 'st.test.yaml': poolZone(10) });
    const stateDir = tempDir('state');
    let r = await start(zones, stateDir);
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(10);
    await r.proc.stop();

    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone(5, '  txt: { TXT: "changed" }\n'));
    r = await start(zones, stateDir);
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(11);
    expect(r.proc.logs.some((l) => l.level === 40 && String(l.msg).includes('not greater than the served 10') && l.previous === 'state directory')).toBe(true);
    await r.proc.stop();

    r = await start(zones, stateDir);
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(11);
  });

  it('a reload that raised the served serial is remembered; a reload whose serial cannot be written fails and keeps the old zone', async () => {
    const zones = writeZones({ 'st.test.yaml': poolZone(10) });
    const stateDir = tempDir('state');
    let r = await start(zones, stateDir);
    const reloaded = async (msg: string) => {
      const before = r.proc.logs.filter((l) => l.msg === msg).length;
      r.proc.child.kill('SIGHUP');
      await waitUntil(async () => r.proc.logs.filter((l) => l.msg === msg).length > before, { what: msg, attempts: 200, proc: r.proc });
    };
    // Content changed, file serial not raised: served 11, and written down before it is served.
    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone(10, '  txt: { TXT: "one" }\n'));
    await reloaded('zones reloaded');
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(11);

    const file = path.join(stateDir, 'state.json');
    const kept = fs.readFileSync(file);
    fs.rmSync(file);
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone(10, '  txt: { TXT: "two" }\n'));
    await reloaded('zone reload failed; previous zones keep serving');
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(11);
    expect((await dig(r.proc.port, ['txt.st.test', 'TXT'])).answer.map((a) => a.data)).toEqual(['"one"']);
    await r.proc.stop();

    fs.rmdirSync(file);
    fs.writeFileSync(file, kept);
    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone(10, '  txt: { TXT: "one" }\n'));
    r = await start(zones, stateDir);
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(11);
  });

  it('serial: auto: a changed zone gets a greater serial even when the stored one is ahead of the clock', async () => {
    const zones = writeZones({ 'st.test.yaml': poolZone('auto') });
    const stateDir = tempDir('state');
    let r = await start(zones, stateDir);
    const first = await soaSerial(r.proc.port, 'st.test');
    await r.proc.stop();
    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone('auto', '  txt: { TXT: "changed" }\n'));
    r = await start(zones, stateDir);
    const second = await soaSerial(r.proc.port, 'st.test');
    expect(second).toBeGreaterThan(first);
    await r.proc.stop();

    // A stored serial far ahead of the clock (as after many changes within one second): + 1, not the clock.
    const file = path.join(stateDir, 'state.json');
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as { serials: Record<string, { serial: number }> };
    const ahead = second + 100_000;
    state.serials['st.test.']!.serial = ahead;
    fs.writeFileSync(file, JSON.stringify(state));
    fs.writeFileSync(path.join(zones, 'st.test.yaml'), poolZone('auto', '  txt: { TXT: "changed again" }\n'));
    r = await start(zones, stateDir);
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(ahead + 1);
    await r.proc.stop();
    // Unchanged content: the stored serial stays, though the clock is behind it.
    r = await start(zones, stateDir);
    expect(await soaSerial(r.proc.port, 'st.test')).toBe(ahead + 1);
  });
});

describe('a state file that cannot be used stops the start', () => {
  const serve = (stateDir: string) =>
    spawnSync(process.execPath, [RRDNS_MAIN, 'serve', '--zones', writeZones({ 'st.test.yaml': poolZone(1) }), '--listen', '127.0.0.1:0', '--admin', 'off', '--state-dir', stateDir, '--rrl', 'off'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
  it.each([
    { name: 'garbage JSON', make: (f: string) => fs.writeFileSync(f, '{"format": "rrdns-state", '), want: 'is not valid JSON' },
    { name: 'a wrong format version', make: (f: string) => fs.writeFileSync(f, JSON.stringify({ format: 'rrdns-state', version: 7, overrides: {}, serials: {} })), want: 'has format version 7' },
    { name: 'a field that does not validate', make: (f: string) => fs.writeFileSync(f, JSON.stringify({ format: 'rrdns-state', version: 1, overrides: {}, serials: { 'st.test.': { serial: 'ten' } } })), want: 'does not match the state format' },
    { name: 'a directory where the file should be (unreadable)', make: (f: string) => fs.mkdirSync(f), want: 'cannot read the state file' },
  ])('$name: exits non-zero, naming the file', ({ make, want }) => {
    const stateDir = tempDir('state');
    const file = path.join(stateDir, 'state.json');
    make(file);
    const r = serve(stateDir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain(want);
    expect(r.stderr).toContain('move it aside');
  });

  it('a state directory that cannot be created: exits non-zero, naming it', () => {
    const blocker = path.join(tempDir('state'), 'a-file');
    fs.writeFileSync(blocker, '');
    const r = serve(path.join(blocker, 'state'));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot create the state directory ${path.join(blocker, 'state')}`);
  });
});

describe('a failed state write refuses the override', () => {
  it('answers 503 state_write_failed, applies nothing, counts it; once writable again the override works', async () => {
    const zones = writeZones({ 'st.test.yaml': poolZone(1) });
    const stateDir = tempDir('state');
    const r = await start(zones, stateDir);
    const file = path.join(stateDir, 'state.json');
    const kept = fs.readFileSync(file);
    // Root ignores permissions: a directory in place of the file makes every write fail.
    fs.rmSync(file);
    fs.mkdirSync(file);
    const res = await override(r.admin, 'www.st.test.', MEMBERS[0]!, 'drain');
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe('state_write_failed');
    expect(body.error).toContain(file);
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual(MEMBERS);
    expect(await memberState(r.admin, 'www.st.test.', MEMBERS[0]!)).toMatchObject({ override: null });
    expect(await (await fetch(`${r.admin}/metrics`)).text()).toMatch(/^rrdns_state_write_failures_total 1$/m);

    fs.rmdirSync(file);
    fs.writeFileSync(file, kept);
    expect((await override(r.admin, 'www.st.test.', MEMBERS[0]!, 'drain')).status).toBe(200);
    expect(await addresses(r.proc.port, 'www.st.test')).toEqual([MEMBERS[1]]);
  });
});

describe('instances sharing one state directory', () => {
  it("keep each other's overrides and serials", async () => {
    const stateDir = tempDir('state');
    const zonesA = writeZones({ 'a.test.yaml': poolZone(7) });
    const zonesB = writeZones({ 'b.test.yaml': poolZone(9) });
    const a = await start(zonesA, stateDir);
    const b = await start(zonesB, stateDir);
    expect((await override(a.admin, 'www.a.test.', MEMBERS[0]!, 'drain')).status).toBe(200);
    expect((await override(b.admin, 'www.b.test.', MEMBERS[1]!, 'force-down')).status).toBe(200);
    await a.proc.stop();
    await b.proc.stop();

    const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as { overrides: Record<string, { override: string }>; serials: Record<string, { serial: number }> };
    expect(Object.keys(state.overrides).sort()).toEqual([`www.a.test.|${MEMBERS[0]}`, `www.b.test.|${MEMBERS[1]}`]);
    expect(state.serials['a.test.']?.serial).toBe(7);
    expect(state.serials['b.test.']?.serial).toBe(9);

    const a2 = await start(zonesA, stateDir);
    expect(await addresses(a2.proc.port, 'www.a.test')).toEqual([MEMBERS[1]]);
    const b2 = await start(zonesB, stateDir);
    expect(await addresses(b2.proc.port, 'www.b.test')).toEqual([MEMBERS[0]]);
  });

  it('writers in separate processes racing on one directory lose no entry (the lock serialises read-modify-write)', async () => {
    const stateDir = tempDir('state');
    const store = path.join(REPO_ROOT, 'src/state/store.ts');
    const WRITES = 40;
    const writer = (id: number) =>
      new Promise<number | null>((resolve) => {
        const script = `import { StateStore } from ${JSON.stringify(store)};
          const s = StateStore.open(${JSON.stringify(stateDir)});
          for (let i = 0; i < ${WRITES}; i++) s.setOverride('www.p${id}.test.', '192.0.2.' + i, 'drain');`;
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('exit', (code) => resolve(code));
      });
    expect(await Promise.all([writer(1), writer(2), writer(3)])).toEqual([0, 0, 0]);
    const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as { overrides: Record<string, unknown> };
    expect(Object.keys(state.overrides)).toHaveLength(3 * WRITES);
    expect(fs.readdirSync(stateDir)).toEqual(['state.json']);
  });
});
