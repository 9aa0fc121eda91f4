/**
 * DNS cookies end to end with the real dig (BIND 9.18, which sends a client
 * cookie by default): a server cookie comes back to every query with a client
 * cookie, a returned one validates (counted in /metrics), a forged one is
 * answered anyway with a fresh cookie, a malformed option is FORMERR, and
 * only with require-cookies do UDP queries get BADCOOKIE or TC. Several real
 * processes sharing a secret file accept each other's cookies; UDP worker
 * threads run the same schedule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dig, digAll, type DigResult } from '../support/dig.ts';
import { metricSum } from '../support/metrics-text.ts';
import { sleep } from '../support/rawdns.ts';
import { startTestServer, writeZones, type TestServer } from '../support/server.ts';
import { startRrdns, tempDir, type RrdnsProcess } from '../support/spawn.ts';
import { execFile } from 'node:child_process';
import { ensureTool, toolPath } from '../support/tools.ts';

const ZONE = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www: { A: [192.0.2.1, 192.0.2.2] }
`;
const CLIENT = '0102030405060708';

/** The COOKIE line of a dig reply: the option's hex and dig's verdict on the client half ("good" when it is the one sent). */
function cookieOf(r: DigResult): { hex: string; verdict: string } | undefined {
  const line = r.ednsOptions.find((o) => o.startsWith('COOKIE:'));
  if (!line) return undefined;
  const m = /^COOKIE: ([0-9a-f]+)(?: \((\w+)\))?/.exec(line);
  if (!m) throw new Error(`unreadable COOKIE line: ${line}`);
  return { hex: m[1]!, verdict: m[2] ?? '' };
}

const cookieCount = async (t: TestServer, result: string) => metricSum(await t.server.metrics.text(), 'rrdns_cookies_total', { result });

describe('cookies on (the default)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ 'ck.test.yaml': ZONE });
  });
  afterAll(() => t.close());

  it('dig +cookie gets its client cookie back with a 16-octet server cookie (good), and the answer', async () => {
    const r = await dig(t.port, ['www.ck.test', 'A', `+cookie=${CLIENT}`]);
    expect(r.rcode).toBe('NOERROR');
    expect(r.answer).toHaveLength(2);
    const c = cookieOf(r)!;
    expect(c.verdict).toBe('good');
    expect(c.hex).toMatch(new RegExp(`^${CLIENT}01000000[0-9a-f]{24}$`));
    // The timestamp is now (RFC 9018 §4.3), within a minute of this machine's clock.
    expect(Math.abs(parseInt(c.hex.slice(24, 32), 16) - Date.now() / 1000)).toBeLessThan(60);
  });

  it('the server cookie returned is valid: counted valid, handed back as it is; over TCP too', async () => {
    const before = await cookieCount(t, 'valid');
    const first = cookieOf(await dig(t.port, ['www.ck.test', `+cookie=${CLIENT}`]))!;
    const again = await dig(t.port, ['www.ck.test', `+cookie=${first.hex}`]);
    expect(again.answer).toHaveLength(2);
    expect(cookieOf(again)).toEqual({ hex: first.hex, verdict: 'good' });
    const tcp = await dig(t.port, ['www.ck.test', '+tcp', `+cookie=${first.hex}`]);
    expect(cookieOf(tcp)?.hex).toBe(first.hex);
    expect(await cookieCount(t, 'valid')).toBe(before + 2);
  });

  it('a forged server cookie is invalid but still answered (no BADCOOKIE by default), with a fresh cookie that then validates', async () => {
    const invalid = await cookieCount(t, 'invalid');
    const first = cookieOf(await dig(t.port, ['www.ck.test', `+cookie=${CLIENT}`]))!;
    const forged = first.hex.slice(0, 32) + 'deadbeefdeadbeef';
    const r = await dig(t.port, ['www.ck.test', `+cookie=${forged}`]);
    expect(r.rcode).toBe('NOERROR');
    expect(r.answer).toHaveLength(2);
    const fresh = cookieOf(r)!;
    expect(fresh.hex.slice(0, 16)).toBe(CLIENT);
    expect(fresh.hex).not.toBe(forged);
    expect(await cookieCount(t, 'invalid')).toBe(invalid + 1);
    const valid = await cookieCount(t, 'valid');
    await dig(t.port, ['www.ck.test', `+cookie=${fresh.hex}`]);
    expect(await cookieCount(t, 'valid')).toBe(valid + 1);
  });

  it('a client cookie only is counted client-only; no cookie gets no COOKIE option back', async () => {
    const before = await cookieCount(t, 'client-only');
    await dig(t.port, ['www.ck.test', `+cookie=${CLIENT}`]);
    expect(await cookieCount(t, 'client-only')).toBe(before + 1);
    const none = await dig(t.port, ['www.ck.test', '+nocookie']);
    expect(none.answer).toHaveLength(2);
    expect(none.opt).toBeDefined();
    expect(cookieOf(none)).toBeUndefined();
  });

  it.each([
    { name: '9 octets (a server cookie of 1)', hex: CLIENT + 'ff' },
    { name: '7 octets (a short client cookie)', hex: '01020304050607' },
    { name: '41 octets (a server cookie of 33)', hex: CLIENT + 'ab'.repeat(33) },
  ])('a COOKIE option of $name is FORMERR, with OPT and no cookie echoed (RFC 7873 §5.2.2)', async ({ hex }) => {
    const before = await cookieCount(t, 'malformed');
    const r = await dig(t.port, ['www.ck.test', '+nocookie', `+ednsopt=10:${hex}`]);
    expect(r.rcode).toBe('FORMERR');
    expect(r.opt).toBeDefined();
    expect(cookieOf(r)).toBeUndefined();
    expect(r.answer).toHaveLength(0);
    expect(await cookieCount(t, 'malformed')).toBe(before + 1);
  });
});

/** Knot's kdig, a second client implementation: the COOKIE line of its reply (upper-case hex), bounded in time. */
function kdigCookie(port: number, cookie: string): Promise<{ status: string; cookie: string | undefined }> {
  return new Promise((resolve, reject) => {
    execFile(toolPath('kdig')!, [`@127.0.0.1`, '-p', String(port), 'www.ck.test', '+norec', '+retry=1', '+timeout=3', `+cookie=${cookie}`], { timeout: 20_000 }, (err, stdout) => {
      const status = /status: (\w+)/.exec(stdout)?.[1];
      if (!status) return reject(new Error(`kdig got no answer: ${err?.message ?? ''}\n${stdout}`));
      resolve({ status, cookie: /;; COOKIE: ([0-9A-Fa-f]+)/.exec(stdout)?.[1]?.toLowerCase() });
    });
  });
}

describe.skipIf(!ensureTool('kdig', 'knot-dnsutils'))('interoperability with kdig (Knot)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ 'ck.test.yaml': ZONE });
  });
  afterAll(() => t.close());

  it('kdig gets a server cookie, and the one it returns is valid', async () => {
    const first = await kdigCookie(t.port, CLIENT);
    expect(first.status).toBe('NOERROR');
    expect(first.cookie).toMatch(new RegExp(`^${CLIENT}01000000[0-9a-f]{24}$`));
    const valid = await cookieCount(t, 'valid');
    const again = await kdigCookie(t.port, first.cookie!);
    expect([again.status, again.cookie]).toEqual(['NOERROR', first.cookie]);
    expect(await cookieCount(t, 'valid')).toBe(valid + 1);
  });
});

describe('cookies off', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ 'ck.test.yaml': ZONE }, { cookies: { enabled: false } });
  });
  afterAll(() => t.close());

  it('the option is ignored: no cookie back, and a malformed one is not FORMERR (RFC 7873 §5.2)', async () => {
    const r = await dig(t.port, ['www.ck.test', `+cookie=${CLIENT}`]);
    expect([r.rcode, r.answer.length, cookieOf(r)]).toEqual(['NOERROR', 2, undefined]);
    const bad = await dig(t.port, ['www.ck.test', '+nocookie', `+ednsopt=10:${CLIENT}ff`]);
    expect([bad.rcode, bad.answer.length]).toEqual(['NOERROR', 2]);
  });
});

describe('require-cookies', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ 'ck.test.yaml': ZONE }, { cookies: { require: true } });
  });
  afterAll(() => t.close());

  it('UDP with a client cookie only: BADCOOKIE with a fresh server cookie; the retry with it is answered', async () => {
    const r = await dig(t.port, ['www.ck.test', `+cookie=${CLIENT}`, '+nobadcookie']);
    expect(r.rcode).toBe('BADCOOKIE');
    expect(r.answer).toHaveLength(0);
    const c = cookieOf(r)!;
    expect(c.hex).toHaveLength(48);
    const retry = await dig(t.port, ['www.ck.test', `+cookie=${c.hex}`]);
    expect([retry.rcode, retry.answer.length]).toEqual(['NOERROR', 2]);
    expect(await cookieCount(t, 'badcookie')).toBeGreaterThanOrEqual(1);
  });

  it('UDP with a forged server cookie: BADCOOKIE', async () => {
    const r = await dig(t.port, ['www.ck.test', `+cookie=${CLIENT}01000000${Math.floor(Date.now() / 1000).toString(16)}0000000000000000`, '+nobadcookie']);
    expect(r.rcode).toBe('BADCOOKIE');
  });

  it('UDP without any cookie: an empty TC answer; over TCP the same query is answered', async () => {
    const udp = await dig(t.port, ['www.ck.test', '+nocookie', '+ignore']);
    expect(udp.flags).toContain('tc');
    expect([udp.rcode, udp.answer.length]).toEqual(['NOERROR', 0]);
    const noEdns = await dig(t.port, ['www.ck.test', '+noedns', '+ignore']);
    expect(noEdns.flags).toContain('tc');
    const tcp = await dig(t.port, ['www.ck.test', '+nocookie', '+tcp']);
    expect([tcp.rcode, tcp.answer.length]).toEqual(['NOERROR', 2]);
    // Without +ignore dig itself retries over TCP on TC, as a resolver does, and gets the answer.
    const retried = await dig(t.port, ['www.ck.test', '+nocookie']);
    expect(retried.answer).toHaveLength(2);
    expect(await cookieCount(t, 'truncated')).toBeGreaterThanOrEqual(2);
  });

  it('TCP with a client cookie only is answered (TCP is never required)', async () => {
    const r = await dig(t.port, ['www.ck.test', '+tcp', `+cookie=${CLIENT}`]);
    expect([r.rcode, r.answer.length]).toEqual(['NOERROR', 2]);
    expect(cookieOf(r)?.hex).toHaveLength(48);
  });
});

describe('UDP worker threads', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ 'ck.test.yaml': ZONE }, { udpThreads: 2, cookies: { require: true } });
  });
  afterAll(() => t.close());

  it('every thread accepts the cookie any thread made, and worker counts reach /metrics', async () => {
    // Each dig uses a fresh source port, so the kernel spreads them over both threads.
    const first = cookieOf(await dig(t.port, ['www.ck.test', `+cookie=${CLIENT}`, '+nobadcookie']))!;
    const N = 30;
    for (let i = 0; i < N; i++) {
      const r = await dig(t.port, ['www.ck.test', `+cookie=${first.hex}`, '+nobadcookie']);
      // With require-cookies a thread that rejected it would answer BADCOOKIE.
      expect([r.rcode, r.answer.length]).toEqual(['NOERROR', 2]);
    }
    const byWorker = t.server.udpThreadStats().answeredByWorkers;
    for (let i = 0; i < 60 && (await cookieCount(t, 'valid')) < N; i++) await sleep(100);
    expect(await cookieCount(t, 'valid')).toBe(N);
    // With 31 source ports the chance that the kernel sent none to the worker is 2^-30.
    for (let i = 0; i < 60 && t.server.udpThreadStats().answeredByWorkers === byWorker && byWorker === 0; i++) await sleep(100);
    expect(t.server.udpThreadStats().answeredByWorkers).toBeGreaterThan(0);
  });
});

describe('instances sharing a secret file (real processes)', () => {
  const procs: RrdnsProcess[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.close();
  });

  it('a cookie one instance made is valid at the other; an instance with another secret rejects it', async () => {
    const dir = tempDir('cookie-secret');
    const shared = path.join(dir, 'shared.key');
    const other = path.join(dir, 'other.key');
    fs.writeFileSync(shared, 'e5e973e5a6b2a43f48e7dc849e37bfcf\n00112233445566778899aabbccddeeff\n');
    fs.writeFileSync(other, 'ff'.repeat(32) + '\n');
    const zonesDir = writeZones({ 'ck.test.yaml': ZONE });
    // B and C require cookies: a cookie they do not accept gets BADCOOKIE, one they accept gets the answer.
    const [a, b, c] = await Promise.all([
      startRrdns({ zonesDir, args: ['--admin', 'off', '--cookie-secret-file', shared] }),
      startRrdns({ zonesDir, args: ['--admin', 'off', '--cookie-secret-file', shared, '--require-cookies'] }),
      startRrdns({ zonesDir, args: ['--admin', 'off', '--cookie-secret-file', other, '--require-cookies'] }),
    ]);
    procs.push(a, b, c);
    const fromA = cookieOf(await dig(a.port, ['www.ck.test', `+cookie=${CLIENT}`]))!;
    const atB = await dig(b.port, ['www.ck.test', `+cookie=${fromA.hex}`, '+nobadcookie']);
    expect([atB.rcode, atB.answer.length]).toEqual(['NOERROR', 2]);
    const atC = await dig(c.port, ['www.ck.test', `+cookie=${fromA.hex}`, '+nobadcookie']);
    expect(atC.rcode).toBe('BADCOOKIE');
  });

  it('an unreadable or malformed secret file stops the start with an error naming it', async () => {
    const zonesDir = writeZones({ 'ck.test.yaml': ZONE });
    const dir = tempDir('cookie-secret');
    const short = path.join(dir, 'short.key');
    fs.writeFileSync(short, 'abcd\n');
    for (const [file, message] of [
      [path.join(dir, 'missing.key'), 'cannot be read: ENOENT'],
      [short, '2 bytes of secret; at least 16 are needed'],
    ] as const) {
      const err = await startRrdns({ zonesDir, args: ['--admin', 'off', '--cookie-secret-file', file], startTimeoutMs: 15_000 }).then(
        (p) => (procs.push(p), new Error('started')),
        (e: Error) => e,
      );
      expect(err.message).toContain('exited before');
      expect(err.message).toContain(`cookie secret file ${file}`);
      expect(err.message).toContain(message);
    }
  });
});

describe('cookies and rate limiting', () => {
  let t: TestServer;
  beforeAll(async () => {
    // Two answers per second per name and prefix, every limited one slipped (TC): easy to see which were limited.
    t = await startTestServer({ 'ck.test.yaml': ZONE }, { rrl: { mode: 'on', responsesPerSecond: 2, window: 60, slip: 1 } });
  });
  afterAll(() => t.close());

  it('a query with a valid server cookie is never limited; the same client without one is (RFC 7873 §5.2.5)', async () => {
    // digAll: many queries in one dig run, +ignore so a TC answer is shown as it came (no retry over TCP).
    const cookie = cookieOf(await dig(t.port, ['www.ck.test', 'A', `+cookie=${CLIENT}`, '+ignore']))!.hex;
    const slippedBefore = await metricSum(await t.server.metrics.text(), 'rrdns_rrl_slipped_total', {});
    const proven = await digAll(t.port, ['+ignore', '+tries=1', ...Array.from({ length: 20 }, () => ['www.ck.test', 'A', `+cookie=${cookie}`]).flat()]);
    expect(proven).toHaveLength(20);
    for (const r of proven) {
      expect(r.flags).not.toContain('tc');
      expect(r.answer).toHaveLength(2);
    }
    expect(await metricSum(await t.server.metrics.text(), 'rrdns_rrl_slipped_total', {})).toBe(slippedBefore);
    expect(await cookieCount(t, 'valid')).toBeGreaterThanOrEqual(20);
    // The same source and name with a client cookie only (or a forged server cookie): limited.
    const forged = `${cookie.slice(0, 16)}01000000${cookie.slice(24, 32)}${'00'.repeat(8)}`;
    const unproven = await digAll(t.port, ['+ignore', '+tries=1', ...Array.from({ length: 10 }, (_, i) => ['www.ck.test', 'A', `+cookie=${i % 2 ? CLIENT : forged}`]).flat()]);
    const truncated = unproven.filter((r) => r.flags.includes('tc'));
    expect(truncated.length).toBeGreaterThanOrEqual(6);
    for (const r of truncated) expect(r.answer).toHaveLength(0);
    expect(await metricSum(await t.server.metrics.text(), 'rrdns_rrl_slipped_total', {})).toBe(slippedBefore + truncated.length);
  });
});

describe('the cookie secret across a restart (real processes)', () => {
  const procs: RrdnsProcess[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.close();
  });

  it('without a secret file the master key is kept in the state directory: a cookie made before a restart is valid after it', async () => {
    const zonesDir = writeZones({ 'ck.test.yaml': ZONE });
    const stateDir = tempDir('cookie-state');
    const first = await startRrdns({ zonesDir, args: ['--admin', 'off', '--state-dir', stateDir] });
    procs.push(first);
    const cookie = cookieOf(await dig(first.port, ['www.ck.test', `+cookie=${CLIENT}`]))!.hex;
    await first.close();
    procs.length = 0;
    const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as { cookieMasterKey?: string };
    expect(state.cookieMasterKey).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.statSync(path.join(stateDir, 'state.json')).mode & 0o077).toBe(0);
    // require-cookies makes validity visible: a cookie it does not accept gets BADCOOKIE.
    const again = await startRrdns({ zonesDir, args: ['--admin', 'off', '--state-dir', stateDir, '--require-cookies'] });
    const elsewhere = await startRrdns({ zonesDir, args: ['--admin', 'off', '--state-dir', tempDir('cookie-state'), '--require-cookies'] });
    procs.push(again, elsewhere);
    const after = await dig(again.port, ['www.ck.test', `+cookie=${cookie}`, '+nobadcookie']);
    expect([after.rcode, after.answer.length]).toEqual(['NOERROR', 2]);
    expect((await dig(elsewhere.port, ['www.ck.test', `+cookie=${cookie}`, '+nobadcookie'])).rcode).toBe('BADCOOKIE');
  });
});
