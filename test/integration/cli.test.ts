import fs from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import os from 'node:os';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { udpQuery } from '../support/dnsclient.ts';
import { writeZones } from '../support/server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'src/main.ts');
const GOOD = `soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: [192.0.2.1, 192.0.2.2] }\n`;
const BAD = `soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  www:\n    A: [192.0.2.1, 300.1.1.1]\n  mx: { MX: "ten mail" }\n`;

// The default state directory is ./state in the working directory (the repo root here): every
// serve below gets a directory of its own instead, except the test about that default.
const stateDirs: string[] = [];
afterAll(() => {
  for (const d of stateDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `rrdns-cli-${prefix}-`));
  stateDirs.push(d);
  return d;
}
const serveEnv = (env: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...process.env, RRDNS_STATE_DIR: tempDir('state'), ...env });

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

interface Started {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  listening: Record<string, unknown>;
  port: number;
}

/** Starts a command and resolves at its "rrdns listening" log line; bounded wait. */
function startCli(cmd: string, args: string[], env: Record<string, string> = {}, cwd = ROOT, spawnEnv: NodeJS.ProcessEnv = serveEnv(env)): Promise<Started> {
  const child = spawn(cmd, args, { cwd, env: spawnEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up line within 20 s; stderr: ${stderr}`)), 20_000);
    child.on('exit', (code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
    child.stdout!.on('data', (d) => {
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const obj = JSON.parse(line) as Record<string, unknown>;
        lines.push(obj);
        if (obj.msg === 'rrdns listening') {
          clearTimeout(timer);
          const port = Number(String((obj.listen as string[])[0]).split(':').pop());
          resolve({ child, lines, listening: obj, port });
        }
      }
    });
  });
}

/** Resolves when the process has exited and its stdout is closed (so every process writing to it is gone too). */
const exited = (child: ChildProcess) =>
  new Promise<number | null>((r) => (child.exitCode !== null && child.stdout!.closed ? r(child.exitCode) : child.on('close', (code) => r(code))));

describe('rrdns check', () => {
  it('accepts the shipped example zone', () => {
    const r = spawnSync(process.execPath, [MAIN, 'check', 'zones'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ok example\.test\./);
    // Each health-checked pool with its worst case: interval x fall + timeout, plus the capped TTL.
    expect(r.stdout).toContain('pool app.example.test. A: 2 primaries, 1 standby');
    expect(r.stdout).toContain('worst case before clients stop getting a dead address: 32s = detection 17s (interval x fall + timeout) + TTL 15s');
  });
  it('prints the worst case with fastInterval (fast re-checks counted) and names a cold standby', () => {
    // Documentation addresses only: `rrdns check` never probes.
    const dir = writeZones({
      'fast.test.yaml': `soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www:\n    ttl: 30\n    A: [192.0.2.1, 192.0.2.2]\n    pool:\n      check: { interval: 2s, fastInterval: 500ms, timeout: 1s, fall: 2 }\n      allDown: backup\n      standby: { mode: cold, addresses: [192.0.2.3] }\n`,
    });
    const r = spawnSync(process.execPath, [MAIN, 'check', dir], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('pool www.fast.test. A: 2 primaries, 1 cold standby; http GET / port 80, every 2s (0.5s while settling), timeout 1s, fall 2, rise 2');
    expect(r.stdout).toContain('worst case before clients stop getting a dead address: 5.5s = detection 3.5s (interval + (fall - 1) x fastInterval + timeout) + TTL 2s');
  });
  it('exits 1 and lists every error with file and line', () => {
    const dir = writeZones({ 'bad.test.yaml': BAD });
    const r = spawnSync(process.execPath, [MAIN, 'check', dir], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${dir}/bad.test.yaml:5 records.www.A[1]: "300.1.1.1" is not an IPv4 address`);
    expect(r.stderr).toMatch(/bad\.test\.yaml:6 records\.mx\.MX: /);
  });
});

describe('rrdns check: zone bounds (issue 8)', () => {
  const HEAD = '$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\n';
  const txt400 = Array.from({ length: 400 }, (_, i) => `big TXT "${String(i).padStart(4, '0')}${'x'.repeat(196)}"\n`).join('');
  const a = (n: number) => Array.from({ length: n }, (_, i) => `www A 10.0.${i >> 8}.${i & 255}\n`).join('');
  it.each([
    { name: 'an RRset over 65,535 octets', zone: HEAD + txt400, args: [], env: {}, want: 'bounds.test.zone:5: big.bounds.test. TXT: its 400 records need at least' },
    { name: 'a name over 255 octets', zone: HEAD + `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}. A 192.0.2.1\n`, args: [], env: {}, want: 'bounds.test.zone:5: owner: name' },
    { name: '--zone-max-records', zone: HEAD + a(10), args: ['--zone-max-records', '5'], env: {}, want: 'bounds.test.zone:7: zone bounds.test. has more than 5 records' },
    { name: 'RRDNS_RRSET_MAX_RECORDS', zone: HEAD + a(10), args: [], env: { RRDNS_RRSET_MAX_RECORDS: '4' }, want: 'bounds.test.zone:9: www.bounds.test. A has more than 4 records' },
  ])('exits 1 and names file, line and name: $name', ({ zone, args, env, want }) => {
    const dir = writeZones({ 'bounds.test.zone': zone });
    const r = spawnSync(process.execPath, [MAIN, 'check', dir, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    expect(r.stderr).toContain(`${dir}/${want}`);
    expect(r.status).toBe(1);
  });
  it('the same zone passes with the limits raised, and a bad limit is exit 2', () => {
    const dir = writeZones({ 'bounds.test.zone': HEAD + a(10) });
    const ok = spawnSync(process.execPath, [MAIN, 'check', dir, '--rrset-max-records', '10'], { encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const bad = spawnSync(process.execPath, [MAIN, 'check', dir, '--zone-max-records', '0'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--zone-max-records / RRDNS_ZONE_MAX_RECORDS');
  });
});

describe('rrdns help', () => {
  it('documents every flag and every RRDNS_* variable the code or the image reads', () => {
    const r = spawnSync(process.execPath, [MAIN, '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    // Every variable named anywhere in src/ (and the Dockerfile, when there is one) is in the help text.
    const sources = [
      ...fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => path.join(ROOT, 'src', f)),
      ...['Dockerfile'].map((f) => path.join(ROOT, f)).filter((f) => fs.existsSync(f)),
    ];
    // Variables, not error codes (RRDNS_ZONE_INVALID and the like are quoted codes in errors.ts).
    const codes = new Set(fs.readFileSync(path.join(ROOT, 'src/errors.ts'), 'utf8').match(/'RRDNS_[A-Z_]+'/g)?.map((c) => c.slice(1, -1)) ?? []);
    const named = new Set(sources.flatMap((f) => fs.readFileSync(f, 'utf8').match(/RRDNS_[A-Z_]+[A-Z]/g) ?? []).filter((v) => !codes.has(v)));
    expect(named.size).toBeGreaterThan(10);
    for (const v of named) expect(r.stdout, v).toContain(v);
    for (const flag of ['--zones', '--listen', '--log-level', '--identity', '--admin', '--admin-allow-remote', '--watch', '--shutdown-grace-ms', '--tcp-max-connections']) {
      expect(r.stdout).toContain(flag);
    }
    expect(spawnSync(process.execPath, [MAIN, 'serve', '--help'], { cwd: ROOT, encoding: 'utf8' }).stdout).toBe(r.stdout);
  });

  it('a bad flag or variable value is named in a clear error (exit 2)', () => {
    const bad = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones', '--tcp-idle-timeout-ms', 'soon'], { cwd: ROOT, encoding: 'utf8', env: serveEnv() });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--tcp-idle-timeout-ms="soon" is not a whole number');
    const env = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones'], { cwd: ROOT, encoding: 'utf8', env: serveEnv({ RRDNS_WATCH: 'maybe' }) });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('RRDNS_WATCH="maybe"');
    const range = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones'], { cwd: ROOT, encoding: 'utf8', env: serveEnv({ RRDNS_WATCH_POLL_MS: '5' }) });
    expect(range.status).toBe(2);
    expect(range.stderr).toContain('--watch-poll-ms / RRDNS_WATCH_POLL_MS');
    // An entry of a list is named with the flag and its position, from a flag or from the variable.
    const cidr = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones', '--rrl-exempt', '127.0.0.0/8', '--rrl-exempt', '10.0.0.0/33'], { cwd: ROOT, encoding: 'utf8', env: serveEnv() });
    expect(cidr.status).toBe(2);
    expect(cidr.stderr).toContain('--rrl-exempt / RRDNS_RRL_EXEMPT (entry 2): prefix length in "10.0.0.0/33" must be 0-32');
    const mode = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones'], { cwd: ROOT, encoding: 'utf8', env: serveEnv({ RRDNS_RRL: 'maybe', RRDNS_RRL_EXEMPT: 'not-an-address' }) });
    expect(mode.status).toBe(2);
    expect(mode.stderr).toContain('--rrl / RRDNS_RRL:');
    expect(mode.stderr).toContain('--rrl-exempt / RRDNS_RRL_EXEMPT (entry 1): "not-an-address" is not an address');
  });

  it('cluster options: a bad etcd URL is named by its position in a comma-separated flag; other cluster options need --cluster-etcd (exit 2)', () => {
    const url = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones', '--cluster-etcd', 'http://127.0.0.1:2379,ftp://127.0.0.1:2379'], { cwd: ROOT, encoding: 'utf8', env: serveEnv() });
    expect(url.status).toBe(2);
    expect(url.stderr).toContain('--cluster-etcd / RRDNS_CLUSTER_ETCD (entry 2): must be an etcd client URL');
    const alone = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones'], { cwd: ROOT, encoding: 'utf8', env: serveEnv({ RRDNS_CLUSTER_NAME: 'prod' }) });
    expect(alone.status).toBe(2);
    expect(alone.stderr).toContain('the --cluster-* options need --cluster-etcd');
    const ttl = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones', '--cluster-etcd', 'http://127.0.0.1:2379', '--cluster-lease-ttl', '1'], { cwd: ROOT, encoding: 'utf8', env: serveEnv() });
    expect(ttl.status).toBe(2);
    expect(ttl.stderr).toContain('--cluster-lease-ttl / RRDNS_CLUSTER_LEASE_TTL');
    const auth = spawnSync(process.execPath, [MAIN, 'serve', '--zones', 'zones', '--cluster-etcd', 'http://127.0.0.1:2379', '--cluster-etcd-user', 'rrdns'], { cwd: ROOT, encoding: 'utf8', env: serveEnv() });
    expect(auth.status).toBe(2);
    expect(auth.stderr).toContain('etcd authentication needs both --cluster-etcd-user and --cluster-etcd-password-file');
  });
});

describe('rrdns serve', () => {
  it('refuses to start on an invalid zone, exits non-zero and lists every error', () => {
    const dir = writeZones({ 'bad.test.yaml': BAD });
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', 'off'], { encoding: 'utf8', timeout: 20_000, env: serveEnv() });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/2 zone errors/);
    expect(r.stderr).toContain('300.1.1.1');
  });

  it('npm start passes flags through; logs a start-up line with zones and addresses; stops on SIGTERM', async () => {
    const dir = writeZones({ 'cli.test.yaml': GOOD });
    const s = await startCli('npm', ['start', '--silent', '--', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    // The line summarises: the first few origins and the count (10,000 zones must not make a 900 KB line).
    expect(s.listening.zones).toEqual(['cli.test.']);
    expect(s.listening.zonesCount).toBe(1);
    const { packet } = await udpQuery(s.port, 'www.cli.test');
    expect(packet.answers).toHaveLength(2);
    // npm forwards SIGTERM to the server, which shuts down cleanly.
    s.child.kill('SIGTERM');
    await exited(s.child);
    expect(s.lines.map((l) => l.msg)).toContain('rrdns stopped');
  });

  it('reads RRDNS_ZONES, RRDNS_LISTEN and RRDNS_LOG_LEVEL; logs each query only at debug', async () => {
    const dir = writeZones({ 'cli.test.yaml': GOOD });
    const s = await startCli(process.execPath, [MAIN, 'serve'], { RRDNS_ZONES: dir, RRDNS_LISTEN: '127.0.0.1:0,[::1]:0', RRDNS_LOG_LEVEL: 'debug', RRDNS_ADMIN: 'off' });
    expect((s.listening.listen as string[])[1]).toMatch(/^\[::1\]:\d+$/);
    await udpQuery(s.port, 'www.cli.test');
    const v6port = Number((s.listening.listen as string[])[1]!.split(':').pop());
    await udpQuery(v6port, 'www.cli.test', { host: '::1' });
    s.child.kill('SIGTERM');
    await exited(s.child);
    const queries = s.lines.filter((l) => l.msg === 'query');
    expect(queries).toHaveLength(2);
    expect(queries[0]).toMatchObject({ qname: 'www.cli.test.', qtype: 'A', rcode: 0, transport: 'udp' });
  });

  it('at info level logs no per-query lines', async () => {
    const dir = writeZones({ 'cli.test.yaml': GOOD });
    const s = await startCli(process.execPath, [MAIN, 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--log-level', 'info', '--admin', 'off']);
    await udpQuery(s.port, 'www.cli.test');
    s.child.kill('SIGTERM');
    await exited(s.child);
    expect(s.lines.some((l) => l.msg === 'query')).toBe(false);
    expect(s.lines.at(-1)).toMatchObject({ msg: 'rrdns stopped' });
  });

  it('reloads on SIGHUP and keeps serving the old zones when the new ones are invalid', async () => {
    const dir = writeZones({ 'cli.test.yaml': GOOD });
    const s = await startCli(process.execPath, [MAIN, 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', 'off']);
    fs.writeFileSync(path.join(dir, 'cli.test.yaml'), BAD);
    s.child.kill('SIGHUP');
    // Bounded wait for the reload outcome to be logged.
    for (let i = 0; i < 300 && !s.lines.some((l) => /^zone reload (failed|found errors)/.test(String(l.msg))); i++) await new Promise((r) => setTimeout(r, 50));
    expect(s.lines.some((l) => /^zone reload (failed|found errors)/.test(String(l.msg))), JSON.stringify(s.lines)).toBe(true);
    expect((await udpQuery(s.port, 'www.cli.test')).packet.answers).toHaveLength(2);
    fs.writeFileSync(path.join(dir, 'cli.test.yaml'), GOOD.replace('[192.0.2.1, 192.0.2.2]', '[192.0.2.1, 192.0.2.2, 192.0.2.3]'));
    s.child.kill('SIGHUP');
    for (let i = 0; i < 300 && !s.lines.some((l) => l.msg === 'zones reloaded'); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await udpQuery(s.port, 'www.cli.test')).packet.answers).toHaveLength(3);
    s.child.kill('SIGTERM');
    await exited(s.child);
  });
});

describe('state directory', () => {
  it('defaults to ./state in the working directory: created at start, the served serial written there', async () => {
    const cwd = tempDir('cwd');
    const dir = writeZones({ 'cli.test.yaml': GOOD });
    const env = { ...process.env };
    delete env.RRDNS_STATE_DIR;
    const s = await startCli(process.execPath, [MAIN, 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', 'off'], {}, cwd, env);
    const state = JSON.parse(fs.readFileSync(path.join(cwd, 'state', 'state.json'), 'utf8')) as { version: number; serials: Record<string, { serial: number }> };
    expect(state.version).toBe(1);
    expect(state.serials['cli.test.']?.serial).toBe(1);
    s.child.kill('SIGTERM');
    await exited(s.child);
  });
});

describe('admin listener', () => {
  it('refuses a non-loopback admin address without a token, --admin-allow-remote or not', () => {
    const dir = writeZones({ 'cli.test.yaml': GOOD });
    for (const extra of [[], ['--admin-allow-remote']]) {
      const r = spawnSync(process.execPath, [MAIN, 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', '0.0.0.0:0', ...extra], { encoding: 'utf8', timeout: 20_000, env: serveEnv() });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--admin-token-file FILE \(RRDNS_ADMIN_TOKEN_FILE=FILE\)/);
    }
  });

  it('serves health, readiness, pool state, overrides and metrics from the real server', async () => {
    const dir = writeZones({
      'cli.test.yaml': GOOD + `  app:\n    A: [127.0.0.71]\n    pool: { check: { type: tcp, port: 9, interval: 1s, timeout: 500ms }, allDown: nodata }\n`,
    });
    const s = await startCli(process.execPath, [MAIN, 'serve', '--zones', dir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    const admin = `http://${s.listening.admin as string}`;
    expect((await fetch(`${admin}/healthz`)).status).toBe(200);
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    const health = (await (await fetch(`${admin}/api/v1/health`)).json()) as { pools: { name: string; members: { address: string; health: string; served: boolean }[] }[] };
    const app = health.pools.find((p) => p.name === 'app.cli.test.')!;
    expect(app.members).toEqual([expect.objectContaining({ address: '127.0.0.71', health: 'down', served: false })]);
    // Force it up through the API: DNS answers change at once.
    expect((await udpQuery(s.port, 'app.cli.test')).packet.answers).toHaveLength(0);
    const put = await fetch(`${admin}/api/v1/pools/app.cli.test./members/127.0.0.71/override`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ override: 'force-up' }) });
    expect(put.status).toBe(200);
    expect((await udpQuery(s.port, 'app.cli.test')).packet.answers).toHaveLength(1);
    expect((await fetch(`${admin}/api/v1/pools/app.cli.test./members/127.0.0.71/override`, { method: 'DELETE' })).status).toBe(200);
    expect((await udpQuery(s.port, 'app.cli.test')).packet.answers).toHaveLength(0);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(metrics).toMatch(/rrdns_queries_total\{[^}]*zone="cli\.test\."[^}]*\} [1-9]/);
    expect(metrics).toMatch(/rrdns_health_checks_total\{[^}]*address="127\.0\.0\.71"/);
    expect(s.lines.some((l) => l.msg === 'admin override set')).toBe(true);
    s.child.kill('SIGTERM');
    await exited(s.child);
  });
});
