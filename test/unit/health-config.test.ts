import { describe, expect, it } from 'vitest';
import {
  CheckObjectSchema,
  CheckSchema,
  DEFAULT_USER_AGENT,
  parseDuration,
  parseStatusSpec,
  statusAccepted,
  type CheckConfigInput,
} from '../../src/config/health-check.ts';
import { describeError } from '../../src/health/checkers.ts';
import { hostHeader, makeTarget, serverName } from '../../src/health/target.ts';

/** Issues as 'path: message' lines. */
function issues(input: unknown): string[] {
  const r = CheckSchema.safeParse(input);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('CheckSchema defaults', () => {
  it('an empty check is an HTTP GET / on port 80 with every default', () => {
    expect(CheckSchema.parse({})).toEqual({
      type: 'http',
      port: 80,
      path: '/',
      method: 'GET',
      tls: { verify: true },
      expectStatus: ['200-399'],
      headers: {},
      userAgent: DEFAULT_USER_AGENT,
      followRedirects: 0,
      keepAlive: false,
      interval: 5000,
      timeout: 2000,
      fall: 3,
      rise: 2,
    });
    expect(DEFAULT_USER_AGENT).toBe('rrdns-health-check/0.1');
  });

  it('https defaults to 443 and verification on; body defaults', () => {
    const c = CheckSchema.parse({ type: 'https', body: { match: 'OK' } });
    expect(c).toMatchObject({ port: 443, tls: { verify: true }, body: { match: 'OK', regex: false, maxBytes: 4096 } });
    expect(c.host).toBeUndefined();
  });

  it('durations: seconds as numbers, or ms/s/m/h strings', () => {
    expect(CheckSchema.parse({ interval: 10, timeout: 0.5 })).toMatchObject({ interval: 10_000, timeout: 500 });
    expect(CheckSchema.parse({ interval: '1m', timeout: '2s' })).toMatchObject({ interval: 60_000, timeout: 2000 });
    expect(CheckSchema.parse({ interval: '500ms', timeout: '100ms' })).toMatchObject({ interval: 500, timeout: 100 });
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('5 minutes')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
  });

  it('the default timeout stays below a short interval', () => {
    expect(CheckSchema.parse({ interval: '1s' }).timeout).toBe(500);
    expect(CheckSchema.parse({ interval: '200ms' }).timeout).toBe(100);
    expect(CheckSchema.parse({ interval: '1m' }).timeout).toBe(2000);
  });

  it('tcp needs a port and takes only the common fields', () => {
    expect(CheckSchema.parse({ type: 'tcp', port: 5432, interval: '2s', timeout: '1s', fall: 2, rise: 1 })).toMatchObject({
      type: 'tcp',
      port: 5432,
      interval: 2000,
      timeout: 1000,
      fall: 2,
      rise: 1,
    });
  });
});

describe('CheckObjectSchema (raw, for merging)', () => {
  it('validates fields without converting them: its output parses through CheckSchema like the input', () => {
    const pool = CheckObjectSchema.parse({ interval: '10s', timeout: 1, path: '/health' });
    expect(pool).toEqual({ interval: '10s', timeout: 1, path: '/health' });
    const member = CheckObjectSchema.parse({ port: 8080, interval: '2s' });
    expect(CheckSchema.parse({ ...pool, ...member })).toMatchObject({ interval: 2000, timeout: 1000, path: '/health', port: 8080 });
    expect(CheckSchema.parse(pool)).toEqual(CheckSchema.parse({ interval: '10s', timeout: 1, path: '/health' }));
    expect(CheckObjectSchema.safeParse({ interval: 'soon' }).success).toBe(false);
    // Cross-field rules are CheckSchema's.
    expect(CheckObjectSchema.safeParse({ interval: '1s', timeout: '2s' }).success).toBe(true);
  });
});

describe('CheckSchema errors', () => {
  it('timeout must be shorter than interval', () => {
    expect(issues({ interval: '1s', timeout: '1s' })).toEqual(['timeout: timeout (1000ms) must be shorter than interval (1000ms)']);
    expect(issues({ timeout: '10s' })).toEqual(['timeout: timeout (10000ms) must be shorter than interval (5000ms)']);
  });

  it('fastInterval: a duration from 100ms up to the interval; absent by default', () => {
    expect(CheckSchema.parse({}).fastInterval).toBeUndefined();
    expect(CheckSchema.parse({ interval: '2s', fastInterval: '500ms' })).toMatchObject({ interval: 2000, fastInterval: 500 });
    expect(CheckSchema.parse({ interval: '2s', fastInterval: 2 })).toMatchObject({ fastInterval: 2000 });
    expect(issues({ interval: '2s', fastInterval: '3s' })).toEqual(['fastInterval: fastInterval must be between 100ms and interval (2000ms), got 3000ms']);
    expect(issues({ fastInterval: '10s' })).toEqual(['fastInterval: fastInterval must be between 100ms and interval (5000ms), got 10000ms']);
    expect(issues({ fastInterval: '50ms' })).toEqual(['fastInterval: fastInterval must be between 100ms and interval (5000ms), got 50ms']);
    expect(issues({ fastInterval: 0 })[0]).toMatch(/^fastInterval: fastInterval must be between 100ms/);
    expect(issues({ fastInterval: 'soon' })[0]).toMatch(/^fastInterval: "soon" is not a duration/);
    expect(issues({ type: 'tcp', port: 22, fastInterval: '1s' })).toEqual([]);
  });

  it('bad status specs', () => {
    expect(issues({ expectStatus: ['6xx'] })[0]).toMatch(/^expectStatus\.0: "6xx" is not a status/);
    expect(issues({ expectStatus: ['399-200'] })[0]).toMatch(/^expectStatus\.0: /);
    expect(issues({ expectStatus: [99] })[0]).toMatch(/^expectStatus\.0: /);
    expect(issues({ expectStatus: ['2XX', 404, '500-503'] })).toEqual([]);
    expect(issues({ expectStatus: [] })).toEqual(['expectStatus: expectStatus needs at least one entry']);
  });

  it('bad durations and ranges', () => {
    expect(issues({ interval: '5 sec' })[0]).toMatch(/^interval: "5 sec" is not a duration/);
    expect(issues({ interval: '50ms' })[0]).toMatch(/^interval: interval must be between 100ms and 1h/);
    expect(issues({ port: 0 })[0]).toMatch(/^port: /);
    expect(issues({ port: 65536 })[0]).toMatch(/^port: /);
    expect(issues({ fall: 0 })[0]).toMatch(/^fall: /);
    expect(issues({ rise: 1.5 })[0]).toMatch(/^rise: /);
    expect(issues({ followRedirects: 6 })[0]).toMatch(/^followRedirects: /);
  });

  it('strict: unknown keys, and fields that do not apply to the type', () => {
    expect(issues({ intervall: '5s' })[0]).toMatch(/intervall/);
    expect(issues({ tls: { verify: false, insecure: true } })[0]).toMatch(/insecure/);
    expect(issues({ type: 'tcp' })).toEqual(['port: port is required for tcp checks']);
    expect(issues({ type: 'tcp', port: 22, path: '/x' })).toEqual(['path: path applies to http/https checks only']);
    expect(issues({ type: 'http', tls: { verify: false } })).toEqual(['tls: tls applies to https checks only']);
    expect(issues({ method: 'POST' })[0]).toMatch(/^method: /);
    expect(issues({ method: 'HEAD', body: { match: 'x' } })).toEqual(['body: a HEAD request has no body to match; use method GET']);
  });

  it('path, host, headers and body are checked', () => {
    expect(issues({ path: 'health' })[0]).toMatch(/^path: path must start with "\/"/);
    expect(issues({ path: '/a b' })[0]).toMatch(/^path: /);
    expect(issues({ path: '/a#frag' })[0]).toMatch(/^path: path cannot contain a fragment/);
    expect(issues({ host: 'bad host' })[0]).toMatch(/^host: /);
    expect(issues({ host: 'www.example.test:8080' })).toEqual([]);
    expect(issues({ headers: { Host: 'x' } })).toEqual(['headers.Host: header "Host" is not allowed here: set the Host header with `host`']);
    expect(issues({ headers: { 'bad name': 'x' } })[0]).toMatch(/is not a valid header name/);
    expect(issues({ headers: { 'X-A': 'a\r\nb' } })[0]).toMatch(/CR, LF or NUL/);
    expect(issues({ body: { match: '(' , regex: true } })[0]).toMatch(/^body\.match: invalid regular expression/);
    expect(issues({ body: { match: 'x', maxBytes: 2 * 1024 * 1024 } })[0]).toMatch(/^body\.maxBytes: /);
    expect(issues({ body: { match: 'abcdef', maxBytes: 3 } })[0]).toMatch(/longer than maxBytes/);
  });
});

describe('status specs', () => {
  it('codes, classes and ranges', () => {
    expect(parseStatusSpec(204)).toEqual({ lo: 204, hi: 204 });
    expect(parseStatusSpec('3xx')).toEqual({ lo: 300, hi: 399 });
    expect(parseStatusSpec('200-204')).toEqual({ lo: 200, hi: 204 });
    expect(statusAccepted(302, ['200-399'])).toBe(true);
    expect(statusAccepted(302, [200])).toBe(false);
    expect(statusAccepted(503, ['2xx', '5xx'])).toBe(true);
  });
});

describe('makeTarget and keys', () => {
  const cfg = (input: CheckConfigInput = {}) => CheckSchema.parse(input);

  it('identical checks for different names share a key only when the Host is the same', () => {
    const a = makeTarget('192.0.2.1', 'www.example.test.', cfg());
    const b = makeTarget('192.0.2.1', 'WWW.example.test', cfg());
    const c = makeTarget('192.0.2.1', 'api.example.test', cfg());
    expect(a.name).toBe('www.example.test');
    expect(a.key).toBe(b.key);
    expect(a.key).not.toBe(c.key); // different Host header
    const h1 = makeTarget('192.0.2.1', 'www.example.test', cfg({ host: 'lb.example.test' }));
    const h2 = makeTarget('192.0.2.1', 'api.example.test', cfg({ host: 'lb.example.test' }));
    expect(h1.key).toBe(h2.key);
    expect(hostHeader(h2)).toBe('lb.example.test');
  });

  it('every probe setting is part of the key', () => {
    const base = makeTarget('192.0.2.1', 'www.example.test', cfg()).key;
    const variants: CheckConfigInput[] = [
      { port: 8080 },
      { path: '/health' },
      { method: 'HEAD' },
      { expectStatus: [200] },
      { body: { match: 'OK' } },
      { headers: { 'x-a': '1' } },
      { userAgent: 'other' },
      { followRedirects: 1 },
      { timeout: '1s' },
      { interval: '10s' },
      { fall: 1 },
      { rise: 1 },
      { fastInterval: '500ms' },
      { type: 'https', port: 80 },
    ];
    const keys = variants.map((v) => makeTarget('192.0.2.1', 'www.example.test', cfg(v)).key);
    expect(new Set([base, ...keys]).size).toBe(variants.length + 1);
    expect(makeTarget('192.0.2.2', 'www.example.test', cfg()).key).not.toBe(base);
    // Header order and case do not matter.
    expect(makeTarget('192.0.2.1', 'w.test', cfg({ headers: { 'X-A': '1', 'x-b': '2' } })).key).toBe(
      makeTarget('192.0.2.1', 'w.test', cfg({ headers: { 'x-b': '2', 'x-a': '1' } })).key,
    );
  });

  it('tls settings and CA contents are part of the key; the CA is read once at creation', () => {
    const files: Record<string, string> = { '/ca1.pem': 'CA ONE', '/ca2.pem': 'CA TWO' };
    const reads: string[] = [];
    const read = (p: string) => {
      reads.push(p);
      if (!(p in files)) throw new Error('ENOENT');
      return Buffer.from(files[p]!);
    };
    const k = (input: CheckConfigInput) => makeTarget('192.0.2.1', 'w.test', cfg({ type: 'https', ...input }), read).key;
    const keys = [k({}), k({ tls: { verify: false } }), k({ tls: { ca: '/ca1.pem' } }), k({ tls: { ca: '/ca2.pem' } })];
    expect(new Set(keys).size).toBe(4);
    expect(reads).toEqual(['/ca1.pem', '/ca2.pem']);
    const t = makeTarget('192.0.2.1', 'w.test', cfg({ type: 'https', tls: { ca: '/ca1.pem' } }), read);
    expect(t.ca?.toString()).toBe('CA ONE');
    expect(() => makeTarget('192.0.2.1', 'w.test', cfg({ type: 'https', tls: { ca: '/missing.pem' } }), read)).toThrow(
      /cannot read tls.ca "\/missing.pem": ENOENT/,
    );
  });

  it('tcp keys ignore the name; IPv6 is canonical', () => {
    const tcp = cfg({ type: 'tcp', port: 22 });
    expect(makeTarget('192.0.2.1', 'a.test', tcp).key).toBe(makeTarget('192.0.2.1', 'b.test', tcp).key);
    const v6 = makeTarget('2001:DB8:0::1', 'a.test', cfg());
    expect(v6).toMatchObject({ address: '2001:db8::1', family: 6 });
    expect(v6.key).toBe(makeTarget('2001:db8::1', 'a.test', cfg()).key);
    expect(v6.key.startsWith('http://a.test@[2001:db8::1]:80/#')).toBe(true);
    expect(() => makeTarget('www.example.test', 'a.test', cfg())).toThrow(/not an IP address/);
  });

  it('SNI is the Host without port, and none for IP literals', () => {
    expect(serverName(makeTarget('192.0.2.1', 'w.test', cfg({ type: 'https' })))).toBe('w.test');
    expect(serverName(makeTarget('192.0.2.1', 'w.test', cfg({ type: 'https', host: 'x.test:8443' })))).toBe('x.test');
    expect(serverName(makeTarget('192.0.2.1', 'w.test', cfg({ type: 'https', host: '192.0.2.1' })))).toBeUndefined();
    expect(serverName(makeTarget('192.0.2.1', 'w.test', cfg({ type: 'https', host: '[2001:db8::1]:443' })))).toBeUndefined();
  });
});

describe('error details', () => {
  it('prefers the system code anywhere in the cause chain', () => {
    const inner = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(describeError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET', cause: inner }))).toBe('ECONNRESET');
    expect(describeError(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]))).toBe('ECONNREFUSED');
    expect(describeError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }))).toBe(
      'connection closed: other side closed',
    );
    expect(describeError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).toBe(
      'TLS DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate',
    );
    expect(describeError('weird')).toBe('weird');
  });
});
