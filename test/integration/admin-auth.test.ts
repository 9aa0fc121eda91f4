/**
 * Admin API access on the real process (node src/main.ts serve): the bearer
 * token on PUT/DELETE, the Host check on every request (DNS rebinding), the
 * token requirement off loopback, and the token file's errors. Each refusal
 * is checked, and so is the request that is let through (an override that
 * changes what dig gets).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../support/dig.ts';
import { RRDNS_MAIN, REPO_ROOT, startRrdns, tempDir, type RrdnsProcess } from '../support/spawn.ts';
import { writeZones } from '../support/server.ts';

const TOKEN = 'c0ffee-7e57-70ken-0123456789abcdef';
const ZONE = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  app:
    A: [127.0.0.71]
    pool: { check: { type: tcp, port: 9, interval: 1s, timeout: 500ms }, allDown: nodata }
`;
const OVERRIDE = '/api/v1/pools/app.auth.test./members/127.0.0.71/override';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** One request on its own connection, Host and Authorization exactly as given. */
function request(port: number, method: string, urlPath: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent: false, headers, setHost: headers.host === undefined }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const put = (port: number, headers: Record<string, string>, override: string | null = 'force-up') =>
  request(port, 'PUT', OVERRIDE, { 'content-type': 'application/json', ...headers }, JSON.stringify({ override }));

/** A raw HTTP/1.0 request without a Host header (node:http always sends one). */
function http10(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.write(`GET ${urlPath} HTTP/1.0\r\n\r\n`);
  });
}

function writeToken(content: string): string {
  const dir = tempDir('token');
  const file = path.join(dir, 'admin-token');
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

const adminPort = (p: RrdnsProcess) => Number(String(p.logs.find((l) => l.msg === 'rrdns listening')!.admin).split(':').pop());
const appAnswers = async (p: RrdnsProcess) => (await dig(p.port, ['app.auth.test', 'A'])).answer.map((r) => r.data);

describe('admin API with a token, on loopback', () => {
  let rrdns: RrdnsProcess;
  let port: number;
  beforeAll(async () => {
    // A trailing newline, as `echo` or an editor writes it: not part of the token.
    const tokenFile = writeToken(`${TOKEN}\n`);
    rrdns = await startRrdns({ zonesDir: writeZones({ 'auth.test.yaml': ZONE }), args: ['--admin', '127.0.0.1:0', '--admin-token-file', tokenFile] });
    port = adminPort(rrdns);
  });
  afterAll(() => rrdns?.close());

  it('PUT without a token: 401 with the Bearer challenge; nothing changes', async () => {
    const r = await put(port, {});
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="rrdns"');
    expect(r.body).toMatchObject({ code: 'unauthorized' });
    expect(await appAnswers(rrdns)).toEqual([]);
  });

  it('PUT with a wrong or malformed token: 401 invalid_token; nothing changes', async () => {
    for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer x', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, TOKEN, 'Bearer']) {
      const r = await put(port, { authorization });
      expect(r.status, authorization).toBe(401);
      expect(r.headers['www-authenticate'], authorization).toBe('Bearer realm="rrdns", error="invalid_token"');
      expect(r.body, authorization).toMatchObject({ code: 'invalid_token' });
    }
    expect(await appAnswers(rrdns)).toEqual([]);
  });

  it('PUT and DELETE with the token: 200, and dig sees the override come and go', async () => {
    const r = await put(port, { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ member: { address: '127.0.0.71', override: 'force-up', served: true } });
    expect(await appAnswers(rrdns)).toEqual(['127.0.0.71']);
    // DELETE is mutating too.
    expect((await request(port, 'DELETE', OVERRIDE)).status).toBe(401);
    expect(await appAnswers(rrdns)).toEqual(['127.0.0.71']);
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    expect((await request(port, 'DELETE', OVERRIDE, { authorization: `bearer ${TOKEN}` })).status).toBe(200);
    expect(await appAnswers(rrdns)).toEqual([]);
  });

  it('GET with a foreign Host is refused (DNS rebinding); the listener\'s own Host and localhost are accepted', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, 'rebind.127.0.0.1.nip.io', '127.0.0.2', '[::1]']) {
      const r = await request(port, 'GET', '/api/v1/health', { host });
      expect(r.status, host).toBe(403);
      expect(r.body, host).toMatchObject({ code: 'bad_host' });
    }
    // Even routes that do not exist: a rebinding page learns nothing.
    expect((await request(port, 'GET', '/nope', { host: 'evil.example' })).status).toBe(403);
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST']) {
      const r = await request(port, 'GET', '/api/v1/health', { host });
      expect(r.status, host).toBe(200);
      expect(r.body.pools).toBeDefined();
    }
    // The status page and what the Docker HEALTHCHECK fetches.
    expect((await request(port, 'GET', '/', { host: `127.0.0.1:${port}` })).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('a foreign Host with the valid token is accepted (a client that proved who it is)', async () => {
    const r = await request(port, 'GET', '/api/v1/health', { host: 'admin.example', authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(200);
    expect((await request(port, 'GET', '/api/v1/health', { host: 'admin.example', authorization: `Bearer ${TOKEN}0` })).status).toBe(403);
    const w = await put(port, { host: 'admin.example', authorization: `Bearer ${TOKEN}` }, 'drain');
    expect(w.status).toBe(200);
    expect((await put(port, { host: 'admin.example', authorization: `Bearer ${TOKEN}` }, null)).status).toBe(200);
  });

  it('an HTTP/1.0 request without Host is refused', async () => {
    const raw = await http10(port, '/healthz');
    expect(raw).toMatch(/^HTTP\/1\.1 403 /);
    expect(raw).toMatch(/"code":"bad_host"/);
  });

  it('refusals are logged, rate-limited: a client retrying in a loop gets a few lines, not one per request', async () => {
    const before = rrdns.logs.filter((l) => l.msg === 'admin request refused').length;
    const started = Date.now();
    for (let i = 0; i < 60; i++) await put(port, { authorization: `Bearer wrong-${i}` });
    const seconds = Math.ceil((Date.now() - started) / 1000);
    // Let the last lines reach us (bounded).
    for (let i = 0; i < 20 && rrdns.logs.filter((l) => l.msg === 'admin request refused').length === before; i++) await new Promise((r) => setTimeout(r, 50));
    const lines = rrdns.logs.filter((l) => l.msg === 'admin request refused').length - before;
    expect(lines).toBeGreaterThan(0);
    // Burst 10, then 1 a second (log-limiter.ts defaults).
    expect(lines).toBeLessThanOrEqual(10 + seconds + 1);
    expect(rrdns.logs.find((l) => l.msg === 'admin request refused' && l.reason === 'invalid_token')).toMatchObject({ remote: '127.0.0.1' });
  });
});

describe('admin API off loopback', () => {
  const zones = () => writeZones({ 'auth.test.yaml': ZONE });
  const serve = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [RRDNS_MAIN, 'serve', '--zones', zones(), '--listen', '127.0.0.1:0', '--rrl', 'off', '--state-dir', 'off', ...args], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, ...env },
    });

  it('without a token the process exits non-zero naming --admin-token-file (flag, env, and with --admin-allow-remote)', () => {
    for (const [args, env] of [[['--admin', '0.0.0.0:0'], {}], [[], { RRDNS_ADMIN: '0.0.0.0:0' }], [['--admin', '[::]:0', '--admin-allow-remote'], {}]] as const) {
      const r = serve([...args], env);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/admin API on (0\.0\.0\.0|::) would be reachable off this host/);
      expect(r.stderr).toMatch(/--admin-token-file FILE \(RRDNS_ADMIN_TOKEN_FILE=FILE\)/);
    }
  });

  it('with a token it starts on 0.0.0.0; writes still need the token and the Host check still applies', async () => {
    const tokenFile = writeToken(TOKEN);
    const rrdns = await startRrdns({ zonesDir: zones(), args: ['--admin', '0.0.0.0:0', '--admin-token-file', tokenFile] });
    try {
      const port = adminPort(rrdns);
      expect(String(rrdns.logs.find((l) => l.msg === 'rrdns listening')!.admin)).toMatch(/^0\.0\.0\.0:/);
      // A wildcard listener accepts any IP literal in Host, never a DNS name.
      expect((await request(port, 'GET', '/healthz', { host: `127.0.0.1:${port}` })).status).toBe(200);
      expect((await request(port, 'GET', '/healthz', { host: `192.0.2.7:${port}` })).status).toBe(200);
      expect((await request(port, 'GET', '/healthz', { host: `[2001:db8::7]:${port}` })).status).toBe(200);
      expect((await request(port, 'GET', '/healthz', { host: `ns.example:${port}` })).status).toBe(403);
      expect((await put(port, {})).status).toBe(401);
      expect((await put(port, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
      expect(await appAnswers(rrdns)).toEqual(['127.0.0.71']);
    } finally {
      await rrdns.close();
    }
  });
});

describe('admin token file errors', () => {
  const serve = (tokenFile: string) =>
    spawnSync(process.execPath, [RRDNS_MAIN, 'serve', '--zones', writeZones({ 'auth.test.yaml': ZONE }), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--admin-token-file', tokenFile, '--rrl', 'off', '--state-dir', 'off'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
  const cases: [name: string, file: () => string, message: RegExp][] = [
    ['missing', () => path.join(tempDir('token'), 'absent'), /cannot be read: ENOENT/],
    ['a directory', () => tempDir('token'), /cannot be read: EISDIR/],
    ['empty', () => writeToken(''), /is empty/],
    ['only whitespace', () => writeToken(' \n\n'), /is empty/],
    ['too short', () => writeToken('short-token\n'), /holds 11 characters; at least 16/],
    ['two words', () => writeToken('first-half-of-it second-half\n'), /one line without spaces/],
  ];
  for (const [name, file, message] of cases) {
    it(`${name}: exits non-zero with an error naming the path`, () => {
      const f = file();
      const r = serve(f);
      expect(r.status, r.stderr).not.toBe(0);
      expect(r.status).not.toBeNull();
      expect(r.stderr).toContain(`admin token file ${f}`);
      expect(r.stderr).toMatch(message);
    });
  }
});
