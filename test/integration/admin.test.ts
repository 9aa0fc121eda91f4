import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AdminServer, isLoopbackHost, MAX_BODY_BYTES } from '../../src/observability/admin.ts';
import { FakeSource } from '../support/admin-fake.ts';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection (no agent), with full control of headers and body. */
function request(
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.chunks) {
      // Chunked transfer encoding, no Content-Length: the server has to count.
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

const json = (r: Reply): Record<string, unknown> => JSON.parse(r.body) as Record<string, unknown>;
const overridePath = (name: string, address: string) =>
  `/api/v1/pools/${encodeURIComponent(name)}/members/${encodeURIComponent(address)}/override`;
const jsonBody = (v: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(v) });

describe('AdminServer construction', () => {
  it('refuses a non-loopback host unless a token is configured', () => {
    const src = new FakeSource();
    for (const host of ['0.0.0.0', '::', '192.0.2.1', '10.0.0.1', 'example.com', '::ffff:192.0.2.1']) {
      expect(() => new AdminServer(src, { host, port: 0 }), host).toThrow(/non-loopback.*token/);
    }
    // Allowed with a token; constructed only (test/integration/admin-auth.test.ts starts one on 0.0.0.0).
    expect(() => new AdminServer(src, { host: '0.0.0.0', port: 0, token: 'a-token-of-enough-length' })).not.toThrow();
    for (const host of ['127.0.0.1', '127.0.0.53', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) {
      expect(() => new AdminServer(src, { host, port: 0 }), host).not.toThrow();
    }
  });

  it('refuses a bad port', () => {
    expect(() => new AdminServer(new FakeSource(), { host: '127.0.0.1', port: 70000 })).toThrow(/port/);
    expect(() => new AdminServer(new FakeSource(), { host: '127.0.0.1', port: 1.5 })).toThrow(/port/);
  });

  it('knows loopback addresses', () => {
    expect(isLoopbackHost('127.255.255.254')).toBe(true);
    expect(isLoopbackHost('0:0:0:0:0:0:0:1')).toBe(true);
    expect(isLoopbackHost('128.0.0.1')).toBe(false);
    expect(isLoopbackHost('::2')).toBe(false);
  });
});

describe('AdminServer lifecycle', () => {
  it('reports the port bound, closes idempotently and gracefully, and cannot be restarted', async () => {
    const admin = new AdminServer(new FakeSource(), { host: '127.0.0.1', port: 0 });
    const addr = await admin.start();
    expect(addr.host).toBe('127.0.0.1');
    expect(addr.port).toBeGreaterThan(0);
    await expect(admin.start()).rejects.toThrow(/already started/);

    // An idle keep-alive connection must not hold close() up.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const r = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: addr.port, path: '/healthz', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    expect(r).toBe(200);

    const first = admin.close();
    const second = admin.close();
    expect(second).toBe(first);
    await first;
    await admin.close();
    agent.destroy();
    await expect(request(addr.port, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/);
    await expect(admin.start()).rejects.toThrow(/closed/);
  });

  it('close() lets a request in flight finish, and refuses new connections meanwhile', async () => {
    const src = new FakeSource();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    src.metrics = async () => {
      entered();
      await gate;
      return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'late 1\n' };
    };
    const admin = new AdminServer(src, { host: '127.0.0.1', port: 0 });
    const { port } = await admin.start();
    const slow = request(port, 'GET', '/metrics');
    await inside;
    const closed = admin.close();
    await expect(request(port, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/);
    release();
    const r = await slow;
    expect(r.status).toBe(200);
    expect(r.body).toBe('late 1\n');
    expect(r.headers.connection).toBe('close');
    await closed;
  });

  it('close() before start() resolves', async () => {
    await new AdminServer(new FakeSource(), { host: '127.0.0.1', port: 0 }).close();
  });

  it('start() rejects when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const admin = new AdminServer(new FakeSource(), { host: '127.0.0.1', port });
      await expect(admin.start()).rejects.toThrow(/EADDRINUSE/);
      await admin.close();
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

describe('AdminServer routes', () => {
  let src: FakeSource;
  let admin: AdminServer;
  let port: number;

  beforeAll(async () => {
    src = new FakeSource();
    admin = new AdminServer(src, { host: '127.0.0.1', port: 0 });
    port = (await admin.start()).port;
  });
  afterAll(async () => {
    await admin.close();
  });
  beforeEach(() => {
    src.isReady = false;
    src.snapshot = new FakeSource().snapshot;
    src.calls.length = 0;
    src.metricsError = undefined;
  });
  afterEach(() => {
    src.metricsError = undefined;
  });

  it('GET /healthz: 200 {"status":"ok"}, JSON, not cached', async () => {
    const r = await request(port, 'GET', '/healthz');
    expect(r.status).toBe(200);
    expect(json(r)).toEqual({ status: 'ok' });
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('HEAD /healthz: 200 without a body', async () => {
    const r = await request(port, 'HEAD', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
  });

  it('GET /readyz: 503 until the source is ready, then 200', async () => {
    let r = await request(port, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(json(r)).toMatchObject({ status: 'not_ready', code: 'not_ready' });
    src.isReady = true;
    r = await request(port, 'GET', '/readyz');
    expect(r.status).toBe(200);
    expect(json(r)).toEqual({ status: 'ready' });
  });

  it('GET /api/v1/health: every pool and member as the source has them', async () => {
    const r = await request(port, 'GET', '/api/v1/health?pretty=1');
    expect(r.status).toBe(200);
    const body = json(r);
    expect(body.pools).toEqual(src.pools());
    expect(body).toMatchObject({ ready: false, version: '0.1.0-test', startedAt: '2026-01-02T03:00:00.000Z' });
    const down = (body.pools as Array<{ members: Array<Record<string, unknown>> }>)[0]!.members[1]!;
    expect(down).toMatchObject({
      address: '192.0.2.11',
      health: 'down',
      served: false,
      lastResult: 'connect ECONNREFUSED 192.0.2.11:80',
      consecutiveFail: 4,
    });
  });

  it('GET /metrics: the source text with its content type', async () => {
    const r = await request(port, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.body).toBe(src.metricsBody);
  });

  it('GET /metrics when the source fails: 500 internal_error, and the server goes on', async () => {
    src.metricsError = new Error('registry broke');
    const r = await request(port, 'GET', '/metrics');
    expect(r.status).toBe(500);
    expect(json(r)).toEqual({ code: 'internal_error', error: 'internal error' });
    expect((await request(port, 'GET', '/healthz')).status).toBe(200);
  });

  it('GET /: an HTML page with every address, zone data escaped, a strict CSP', async () => {
    const r = await request(port, 'GET', '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'nonce-[A-Za-z0-9+/=]+'/);
    for (const p of src.snapshot) for (const m of p.members) expect(r.body).toContain(`data-address="${m.address}"`);
    expect(r.body).toContain('body did not match &quot;&lt;b&gt;ok&lt;/b&gt;&quot; &amp; more');
    expect(r.body).not.toContain('<b>ok</b>');
    // Self-contained: nothing loaded from anywhere (the favicon is an empty data: URL).
    expect(r.body).not.toMatch(/<(img|iframe)\b|(src|href)="(https?:)?\/\//);
  });

  it('PUT then DELETE an override: round trip through the source', async () => {
    let r = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.10'), jsonBody({ override: 'drain' }));
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({
      zone: 'example.test.',
      name: 'www.example.test.',
      type: 'A',
      member: { address: '192.0.2.10', override: 'drain', overrideSource: 'api', served: false },
    });
    expect(src.calls).toEqual([{ name: 'www.example.test', address: '192.0.2.10', override: 'drain' }]);

    const health = json(await request(port, 'GET', '/api/v1/health')) as { pools: Array<{ members: Array<{ address: string; override: string | null }> }> };
    expect(health.pools[0]!.members.find((m) => m.address === '192.0.2.10')!.override).toBe('drain');

    r = await request(port, 'DELETE', overridePath('www.example.test.', '192.0.2.10'));
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({ member: { address: '192.0.2.10', override: null, served: true } });
    expect(src.calls[1]).toEqual({ name: 'www.example.test.', address: '192.0.2.10', override: null });

    r = await request(port, 'PUT', overridePath('WWW.Example.Test.', '192.0.2.11'), jsonBody({ override: 'force-up' }));
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({ member: { address: '192.0.2.11', override: 'force-up', served: true } });

    r = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.11'), jsonBody({ override: null }));
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({ member: { override: null } });
  });

  it('IPv6 members: URL-encoded, raw, bracketed or uncompressed, all reach the source in canonical form', async () => {
    for (const [i, spelled] of ['2001%3Adb8%3A%3A11', '2001:db8::11', '%5B2001%3Adb8%3A%3A11%5D', '2001%3ADB8%3A0%3A0%3A0%3A0%3A0%3A11'].entries()) {
      const r = await request(port, 'PUT', `/api/v1/pools/www.example.test/members/${spelled}/override`, jsonBody({ override: 'force-up' }));
      expect(r.status, spelled).toBe(200);
      expect(json(r)).toMatchObject({ type: 'AAAA', member: { address: '2001:db8::11', override: 'force-up' } });
      expect(src.calls[i]).toEqual({ name: 'www.example.test', address: '2001:db8::11', override: 'force-up' });
    }
  });

  it('404 no_such_member for an unknown name or address, after asking the source', async () => {
    let r = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.99'), jsonBody({ override: 'drain' }));
    expect(r.status).toBe(404);
    expect(json(r)).toMatchObject({ code: 'no_such_member' });
    r = await request(port, 'DELETE', overridePath('nope.example.test', '192.0.2.10'));
    expect(r.status).toBe(404);
    expect(json(r)).toMatchObject({ code: 'no_such_member' });
    expect(src.calls).toHaveLength(2);
  });

  it('400 on bad input, without calling the source', async () => {
    const cases: Array<[string, string, { headers?: Record<string, string>; body?: string }, string]> = [
      ['bad JSON', overridePath('www.example.test', '192.0.2.10'), { body: '{override: drain' }, 'bad_json'],
      ['empty body', overridePath('www.example.test', '192.0.2.10'), { body: '' }, 'bad_json'],
      ['not an object', overridePath('www.example.test', '192.0.2.10'), jsonBody(['drain']), 'bad_override'],
      ['missing field', overridePath('www.example.test', '192.0.2.10'), jsonBody({}), 'bad_override'],
      ['unknown value', overridePath('www.example.test', '192.0.2.10'), jsonBody({ override: 'up' }), 'bad_override'],
      ['extra field', overridePath('www.example.test', '192.0.2.10'), jsonBody({ override: 'drain', ttl: 5 }), 'bad_override'],
      ['not an address', overridePath('www.example.test', 'www.example.test'), jsonBody({ override: 'drain' }), 'bad_address'],
      ['bad encoding', '/api/v1/pools/www.example.test/members/192.0.2.%ZZ/override', jsonBody({ override: 'drain' }), 'bad_address'],
      ['bad name', overridePath('bad name', '192.0.2.10'), jsonBody({ override: 'drain' }), 'bad_name'],
    ];
    for (const [what, path, opts, code] of cases) {
      const r = await request(port, 'PUT', path, opts);
      expect(r.status, what).toBe(400);
      expect(json(r), what).toMatchObject({ code });
      expect(typeof json(r).error, what).toBe('string');
    }
    expect(src.calls).toEqual([]);
  });

  it('404 not_found for unknown paths, 405 with Allow for other methods', async () => {
    for (const path of ['/nope', '/healthz/', '/api/v1/pools/www.example.test/members', '/api/v1/pools/a/b/members/192.0.2.1/override', '/metrics/x']) {
      const r = await request(port, 'GET', path);
      expect(r.status, path).toBe(404);
      expect(json(r), path).toMatchObject({ code: 'not_found' });
    }
    let r = await request(port, 'POST', '/healthz', { body: '{}' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
    expect(json(r)).toMatchObject({ code: 'method_not_allowed' });
    r = await request(port, 'GET', overridePath('www.example.test', '192.0.2.10'));
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('PUT, DELETE');
    r = await request(port, 'DELETE', '/api/v1/health');
    expect(r.status).toBe(405);
    r = await request(port, 'POST', overridePath('www.example.test', '192.0.2.10'), jsonBody({ override: 'drain' }));
    expect(r.status).toBe(405);
    expect(src.calls).toEqual([]);
  });

  it(`413 for a body over ${MAX_BODY_BYTES} bytes, declared or streamed`, async () => {
    const big = JSON.stringify({ override: 'drain', pad: 'x'.repeat(MAX_BODY_BYTES) });
    let r = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.10'), { headers: { 'content-type': 'application/json' }, body: big });
    expect(r.status).toBe(413);
    expect(json(r)).toMatchObject({ code: 'payload_too_large' });
    expect(r.headers.connection).toBe('close');

    const chunk = Buffer.alloc(1024, 0x20);
    r = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.10'), { chunks: [chunk, chunk, chunk, chunk, chunk, chunk] });
    expect(r.status).toBe(413);
    expect(json(r)).toMatchObject({ code: 'payload_too_large' });
    expect(src.calls).toEqual([]);

    // Just under the limit is read (and then judged on its content).
    const fits = JSON.stringify({ override: 'drain' }).padEnd(MAX_BODY_BYTES, ' ');
    r = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.10'), { body: fits });
    expect(r.status).toBe(200);
  });

  it('403 bad_host for a request addressed to a foreign Host (DNS rebinding), GET included', async () => {
    const r = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.10'), {
      headers: { host: 'rebind.example:8053', 'content-type': 'application/json' },
      body: JSON.stringify({ override: 'drain' }),
    });
    expect(r.status).toBe(403);
    expect(json(r)).toMatchObject({ code: 'bad_host' });
    expect(src.calls).toEqual([]);
    const ok = await request(port, 'PUT', overridePath('www.example.test', '192.0.2.10'), {
      headers: { host: `localhost:${port}` },
      body: JSON.stringify({ override: 'drain' }),
    });
    expect(ok.status).toBe(200);
    // Reading is checked too: a rebinding page must not read the state either.
    const get = await request(port, 'GET', '/api/v1/health', { headers: { host: 'rebind.example' } });
    expect(get.status).toBe(403);
    expect(json(get)).toMatchObject({ code: 'bad_host' });
    expect((await request(port, 'GET', '/healthz', { headers: { host: `127.0.0.1:${port}` } })).status).toBe(200);
  });
});
