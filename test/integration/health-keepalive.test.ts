/**
 * The keepAlive option of HTTP checks against real backends on loopback:
 * with it, probes reuse one connection (the backend accepts one over many
 * probes); without it (the default) every probe opens its own, so the check
 * proves the accept path. A keep-alive connection the server closed as we
 * reused it is retried once on a new one, not reported as the backend failing;
 * a backend that really fails still fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import { createChecker } from '../../src/health/checkers.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';
import { startHttpBackend, startHttpsBackend, waitFor, type Backend, type HttpsBackend } from '../support/backends.ts';

/** Checks come an interval apart, never back to back: a pause lets the pool see its connection free again. */
const pause = () => new Promise((r) => setTimeout(r, 20));

function target(b: Backend, input: CheckConfigInput = {}): CheckTarget {
  return makeTarget(b.address, 'www.example.test', CheckSchema.parse({ port: b.port, interval: '1s', timeout: '500ms', ...input }));
}

describe('keepAlive in the check schema', () => {
  it('defaults to off, is accepted for http and https, refused for tcp', () => {
    expect(CheckSchema.parse({}).keepAlive).toBe(false);
    expect(CheckSchema.parse({ keepAlive: true }).keepAlive).toBe(true);
    expect(CheckSchema.parse({ type: 'https', keepAlive: true }).keepAlive).toBe(true);
    const tcp = CheckSchema.safeParse({ type: 'tcp', port: 7, keepAlive: true });
    expect(tcp.success).toBe(false);
    expect(JSON.stringify(tcp.error?.issues)).toContain('keepAlive applies to http/https checks only');
  });

  it('is part of the target key only when on: keys of existing checks do not change', () => {
    const off = makeTarget('127.0.0.1', 'a.test', CheckSchema.parse({}));
    const explicitOff = makeTarget('127.0.0.1', 'a.test', CheckSchema.parse({ keepAlive: false }));
    const on = makeTarget('127.0.0.1', 'a.test', CheckSchema.parse({ keepAlive: true }));
    expect(explicitOff.key).toBe(off.key);
    expect(on.key).not.toBe(off.key);
  });
});

describe('HTTP checks and connections', () => {
  let b: Backend;
  let tls: HttpsBackend;
  const checker = createChecker();
  const check = (t: CheckTarget) => checker.check(t, new AbortController().signal);

  beforeAll(async () => {
    b = await startHttpBackend();
    tls = await startHttpsBackend();
  });
  afterAll(async () => {
    await checker.close();
    await b.close();
    await tls.close();
  });

  it('default: a new connection per probe, each closed after it', async () => {
    b.setMode('ok');
    const t = target(b);
    const before = b.accepted;
    for (let i = 0; i < 8; i++) expect(await check(t)).toMatchObject({ ok: true, status: 200 });
    expect(b.accepted - before).toBe(8);
    await waitFor(() => b.connections === 0, 5000, 'every probe connection to close');
  });

  it('keepAlive: one connection over many probes, requests all seen', async () => {
    b.setMode('ok');
    const t = target(b, { keepAlive: true, path: '/ka' });
    const accepted = b.accepted;
    const hits = b.hits;
    for (let i = 0; i < 8; i++) {
      expect(await check(t)).toMatchObject({ ok: true, status: 200, detail: 'HTTP 200' });
      await pause();
    }
    expect(b.accepted - accepted).toBe(1);
    expect(b.hits - hits).toBe(8);
    expect(b.connections).toBe(1); // kept open for the next probe
  });

  it('keepAlive with a body match reads the body and still reuses the connection', async () => {
    b.setMode('ok');
    const t = target(b, { keepAlive: true, path: '/body', body: { match: 'OK body' } });
    const accepted = b.accepted;
    for (let i = 0; i < 4; i++) {
      expect(await check(t)).toMatchObject({ ok: true });
      await pause();
    }
    b.setMode('wrongBody');
    expect((await check(t)).detail).toContain('body does not match');
    expect(b.accepted - accepted).toBeLessThanOrEqual(1);
  });

  it('keepAlive over https: one TLS connection over many probes', async () => {
    const t = makeTarget(tls.address, tls.certName, CheckSchema.parse({ type: 'https', port: tls.port, interval: '2s', timeout: '1500ms', keepAlive: true, tls: { ca: tls.caPath } }));
    const accepted = tls.accepted;
    for (let i = 0; i < 4; i++) {
      expect(await check(t)).toMatchObject({ ok: true, status: 200 });
      await pause();
    }
    expect(tls.accepted - accepted).toBe(1);
  });

  it('a keep-alive connection the server dropped is retried once on a new one: no false failure', async () => {
    b.setMode('dropReused');
    const t = target(b, { keepAlive: true, path: '/stale' });
    const accepted = b.accepted;
    const outcomes = [];
    for (let i = 0; i < 5; i++) {
      outcomes.push(await check(t));
      await pause();
    }
    expect(outcomes.map((o) => `${o.ok} ${o.detail}`)).toEqual(Array(5).fill('true HTTP 200'));
    // Probes 2-5 each found their reused connection dropped and succeeded on a new one.
    expect(b.accepted - accepted).toBe(5);
  });

  it('keepAlive does not hide a failing backend: 500, a hang and a refused connection still fail', async () => {
    const t = target(b, { keepAlive: true, path: '/fail' });
    b.setMode('ok');
    expect((await check(t)).ok).toBe(true);
    b.setMode('status500');
    expect(await check(t)).toMatchObject({ ok: false, status: 500 });
    b.setMode('hang');
    expect(await check(t)).toMatchObject({ ok: false, detail: 'timeout after 500ms' });
    b.setMode('ok');
    await b.stop();
    try {
      expect(await check(t)).toMatchObject({ ok: false, detail: 'ECONNREFUSED' });
    } finally {
      await b.start();
    }
  });

  it('close() closes the idle keep-alive connections', async () => {
    const own = createChecker();
    b.setMode('ok');
    const t = target(b, { keepAlive: true, path: '/close' });
    expect((await own.check(t, new AbortController().signal)).ok).toBe(true);
    await waitFor(() => b.connections >= 1, 5000, 'the kept connection');
    const open = b.connections;
    await own.close();
    await waitFor(() => b.connections <= open - 1, 5000, 'the kept connection to close');
  });
});
