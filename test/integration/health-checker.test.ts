/**
 * The checkers and the monitor against real backends on loopback addresses
 * 127.0.0.11+. Short check timeouts keep the failure cases fast; every wait is
 * bounded and waits for an event, never asserts on elapsed time.
 */
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import { createChecker } from '../../src/health/checkers.ts';
import { HealthMonitor, type MemberHealth, type TargetState } from '../../src/health/monitor.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';
import {
  startHttpBackend,
  startHttpsBackend,
  startTcpBackend,
  waitFor,
  type Backend,
  type HttpsBackend,
} from '../support/backends.ts';

const NAME = 'www.example.test';

function target(b: Backend, input: CheckConfigInput = {}, name = NAME): CheckTarget {
  return makeTarget(b.address, name, CheckSchema.parse({ port: b.port, interval: '1s', timeout: '300ms', ...input }));
}

const tcpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

describe('HTTP checker against real backends', () => {
  let b: Backend;
  const checker = createChecker();
  const check = (t: CheckTarget) => checker.check(t, new AbortController().signal);

  beforeAll(async () => {
    b = await startHttpBackend();
  });
  afterAll(async () => {
    await checker.close();
    await b.close();
  });

  it('ok: 200 within the default 200-399, Host and User-Agent as configured', async () => {
    b.setMode('ok');
    const out = await check(target(b, { path: '/health?x=1' }));
    expect(out).toMatchObject({ ok: true, status: 200, detail: 'HTTP 200' });
    expect(out.latencyMs).toBeGreaterThanOrEqual(0);
    expect(b.requests.at(-1)).toMatchObject({
      method: 'GET',
      url: '/health?x=1',
      host: NAME,
      userAgent: 'rrdns-health-check/0.1',
    });
    await waitFor(() => b.connections === 0, 5000, 'the check connection to close');
  });

  it('500 fails with the status and the accepted set named', async () => {
    b.setMode('status500');
    expect(await check(target(b))).toMatchObject({ ok: false, status: 500, detail: 'HTTP 500 not in 200-399' });
    expect(await check(target(b, { expectStatus: ['5xx'] }))).toMatchObject({ ok: true, status: 500 });
  });

  it('body match: substring and regex, on the right and the wrong body', async () => {
    const sub = target(b, { body: { match: 'OK body' } });
    const re = target(b, { body: { match: '^OK\\s+bo[a-z]+$', regex: true } });
    b.setMode('ok');
    expect(await check(sub)).toMatchObject({ ok: true, detail: 'HTTP 200' });
    expect(await check(re)).toMatchObject({ ok: true, detail: 'HTTP 200' });
    b.setMode('wrongBody');
    const bad = await check(sub);
    expect(bad.ok).toBe(false);
    expect(bad.detail).toContain('body does not match');
    expect((await check(re)).detail).toContain('body does not match');
  });

  it('hang: fails with the timeout, and the connection is released', async () => {
    b.setMode('hang');
    expect(await check(target(b))).toMatchObject({ ok: false, detail: 'timeout after 300ms' });
    await waitFor(() => b.connections === 0, 5000, 'the hung connection to close');
  });

  it('a body that stalls after the headers: the check times out at its own timeout and the connection is released (keep-alive drain, body match, plain)', async () => {
    b.setMode('stallBody');
    // Keep-alive reads the body to its end to reuse the connection; a body match needs it; a plain check does not.
    for (const input of [{ keepAlive: true }, { body: { match: 'OK body' } }, { keepAlive: true, body: { match: 'OK' } }] as const) {
      expect(await check(target(b, input))).toMatchObject({ ok: false, detail: 'timeout after 300ms' });
      await waitFor(() => b.connections === 0, 5000, 'the stalled connection to close');
    }
    // Without a body to read, the status decides at once and the connection goes.
    expect(await check(target(b))).toMatchObject({ ok: true, status: 200 });
    await waitFor(() => b.connections === 0, 5000, 'the connection to close');
  });

  it('reset: the connection reset is the detail', async () => {
    b.setMode('reset');
    expect(await check(target(b))).toMatchObject({ ok: false, detail: 'ECONNRESET' });
  });

  it('refused: a stopped backend is ECONNREFUSED; started again it is ok', async () => {
    b.setMode('ok');
    await b.stop();
    expect(await check(target(b))).toMatchObject({ ok: false, detail: 'ECONNREFUSED' });
    await b.start();
    expect(await check(target(b))).toMatchObject({ ok: true });
  });

  it('redirects are not followed by default: the 3xx is judged by expectStatus', async () => {
    b.setMode('redirect');
    const before = b.hits;
    expect(await check(target(b))).toMatchObject({ ok: true, status: 302, detail: 'HTTP 302' });
    expect(await check(target(b, { expectStatus: [200] }))).toMatchObject({ ok: false, status: 302, detail: 'HTTP 302 not in 200' });
    expect(b.hits - before).toBe(2);
    expect(b.requests.at(-1)!.url).toBe('/');
  });

  it('followRedirects follows a same-host redirect, to the same address', async () => {
    b.setMode('redirect');
    const out = await check(target(b, { expectStatus: [200], followRedirects: 1 }));
    expect(out).toMatchObject({ ok: true, status: 200, detail: 'HTTP 200 (after 1 redirect)' });
    expect(b.requests.at(-1)).toMatchObject({ url: '/elsewhere', host: NAME });
  });

  it('a redirect to another host is never followed (that would need DNS)', async () => {
    b.setMode('redirectAway');
    const before = b.hits;
    const out = await check(target(b, { expectStatus: [200], followRedirects: 3 }));
    expect(out).toMatchObject({ ok: false, status: 302, detail: 'HTTP 302 redirect to http://elsewhere.test/ not followed (other host)' });
    expect(b.hits - before).toBe(1);
  });

  it('HEAD method, custom Host and extra headers', async () => {
    b.setMode('ok');
    const out = await check(target(b, { method: 'HEAD', host: 'vhost.example.test', headers: { 'X-Probe': 'rrdns' } }));
    expect(out).toMatchObject({ ok: true, status: 200 });
    const seen = b.requests.at(-1)!;
    expect(seen).toMatchObject({ method: 'HEAD', host: 'vhost.example.test', userAgent: 'rrdns-health-check/0.1' });
    expect(seen.headers['x-probe']).toBe('rrdns');
    expect(seen.headers['connection']).toBe('close');
  });

  it('body reads stop at maxBytes: a 1 MiB never-ending body still completes', async () => {
    b.setMode('big');
    // 'BEGIN' is in the first bytes: found without reading on, although the response never ends.
    expect(await check(target(b, { timeout: '2s', interval: '5s', body: { match: 'BEGIN', maxBytes: 4096 } }))).toMatchObject({
      ok: true,
      detail: 'HTTP 200',
    });
    // 'END' lies past 1 MiB: not found within maxBytes, and the check does not wait for it.
    const far = await check(target(b, { timeout: '2s', interval: '5s', body: { match: 'END', maxBytes: 1024 * 1024 } }));
    expect(far.ok).toBe(false);
    expect(far.detail).toContain('body does not match');
    await waitFor(() => b.connections === 0, 5000, 'the big-body connections to close');
  });

  it('keep-alive drains a body it does not need only up to a bound: a never-ending body passes on its status and the connection is dropped, not kept', async () => {
    b.setMode('big');
    const ka = target(b, { timeout: '2s', interval: '5s', keepAlive: true });
    expect(await check(ka)).toMatchObject({ ok: true, status: 200, detail: 'HTTP 200' });
    // With a body match the bound is the check's maxBytes, as without keep-alive.
    expect(await check(target(b, { timeout: '2s', interval: '5s', keepAlive: true, body: { match: 'BEGIN', maxBytes: 4096 } }))).toMatchObject({ ok: true });
    await waitFor(() => b.connections === 0, 5000, 'the undrained connections to close');
    // Back to normal bodies, the same keep-alive check passes on a new connection.
    b.setMode('ok');
    expect(await check(ka)).toMatchObject({ ok: true, status: 200 });
  });
});

describe('HTTPS checker with a self-signed certificate', () => {
  let b: HttpsBackend;
  const checker = createChecker();
  const check = (t: CheckTarget) => checker.check(t, new AbortController().signal);

  beforeAll(async () => {
    b = await startHttpsBackend();
  });
  afterAll(async () => {
    await checker.close();
    await b.close();
  });

  it('fails verification by default', async () => {
    const out = await check(target(b, { type: 'https' }, b.certName));
    expect(out.ok).toBe(false);
    expect(out.detail).toMatch(/^TLS .*SELF_SIGNED/);
  });

  it('is ok with its CA configured; SNI and Host are the name', async () => {
    const out = await check(target(b, { type: 'https', tls: { ca: b.caPath } }, b.certName));
    expect(out).toMatchObject({ ok: true, status: 200 });
    expect(b.requests.at(-1)).toMatchObject({ servername: b.certName, host: b.certName });
  });

  it('with the CA but another name, the certificate does not match', async () => {
    const out = await check(target(b, { type: 'https', tls: { ca: b.caPath } }, 'other.test'));
    expect(out.ok).toBe(false);
    expect(out.detail).toMatch(/ALTNAME/);
  });

  it('is ok with verify off', async () => {
    const out = await check(target(b, { type: 'https', tls: { verify: false } }, 'anything.test'));
    expect(out).toMatchObject({ ok: true, status: 200 });
    expect(b.requests.at(-1)).toMatchObject({ servername: 'anything.test', host: 'anything.test' });
  });
});

describe('TCP checker', () => {
  it('up while listening, ECONNREFUSED when stopped, and it closes what it opened', async () => {
    const b = await startTcpBackend();
    const checker = createChecker();
    try {
      const t = makeTarget(b.address, NAME, CheckSchema.parse({ type: 'tcp', port: b.port, interval: '1s', timeout: '300ms' }));
      expect(await checker.check(t, new AbortController().signal)).toMatchObject({ ok: true });
      expect(b.hits).toBe(1);
      await waitFor(() => b.connections === 0, 5000, 'the TCP probe connection to close');
      await b.stop();
      expect(await checker.check(t, new AbortController().signal)).toMatchObject({ ok: false, detail: 'ECONNREFUSED' });
    } finally {
      await checker.close();
      await b.close();
    }
  });
});

describe('IPv6 loopback', () => {
  it('checks [::1] when the host has IPv6', async (ctx) => {
    let b: Backend;
    try {
      b = await startHttpBackend({ address: '::1' });
    } catch {
      ctx.skip();
      return;
    }
    const checker = createChecker();
    try {
      const t = target(b);
      expect(t.family).toBe(6);
      expect(await checker.check(t, new AbortController().signal)).toMatchObject({ ok: true, status: 200 });
      expect(b.requests.at(-1)!.host).toBe(NAME);
    } finally {
      await checker.close();
      await b.close();
    }
  });
});

describe('no leaked sockets', () => {
  it('close() aborts in-flight checks and leaves no open connection or socket handle', async () => {
    const b = await startHttpBackend({ mode: 'hang' });
    const tcp = await startTcpBackend();
    const checker = createChecker();
    try {
      const baseline = tcpSockets();
      const t = target(b, { interval: '10s', timeout: '5s' });
      const pending = Array.from({ length: 5 }, () => checker.check(t, new AbortController().signal));
      await waitFor(() => b.connections === 5, 5000, 'five hanging check connections');
      expect(tcpSockets()).toBeGreaterThanOrEqual(baseline + 10); // both ends live in this process
      await checker.close();
      const outcomes = await Promise.all(pending);
      for (const o of outcomes) expect(o).toMatchObject({ ok: false, detail: 'checker closed' });
      await waitFor(() => b.connections === 0, 5000, 'backend connections to drop to 0');
      await waitFor(() => tcpSockets() <= baseline, 5000, 'no TCPSocketWrap left over');
      // A closed checker does not open anything.
      expect(await checker.check(t, new AbortController().signal)).toMatchObject({ ok: false, detail: 'checker closed' });
    } finally {
      await checker.close();
      await b.close();
      await tcp.close();
    }
  });

  it('the caller signal aborts a check', async () => {
    const b = await startHttpBackend({ mode: 'hang' });
    const checker = createChecker();
    try {
      const ac = new AbortController();
      const p = checker.check(target(b, { interval: '10s', timeout: '5s' }), ac.signal);
      await waitFor(() => b.connections === 1, 5000, 'the check connection');
      ac.abort();
      expect(await p).toMatchObject({ ok: false, detail: 'aborted' });
      await waitFor(() => b.connections === 0, 5000, 'backend connections to drop to 0');
    } finally {
      await checker.close();
      await b.close();
    }
  });

  it('one signal for many probes: one listener on it, and its abort stops every probe in flight under it', async () => {
    const ok = await startHttpBackend();
    const hang = await startHttpBackend({ mode: 'hang' });
    const checker = createChecker();
    try {
      const ac = new AbortController();
      // Probes that end: the signal keeps a single listener however many used it (the monitor's case).
      for (let i = 0; i < 5; i++) expect(await checker.check(target(ok), ac.signal)).toMatchObject({ ok: true });
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
      // Two probes in flight under the same signal: one abort ends both.
      const a = checker.check(target(hang, { interval: '10s', timeout: '5s' }), ac.signal);
      const c = checker.check(target(hang, { interval: '10s', timeout: '5s' }, 'other.example.test'), ac.signal);
      await waitFor(() => hang.connections === 2, 5000, 'both check connections');
      ac.abort();
      expect(await a).toMatchObject({ ok: false, detail: 'aborted' });
      expect(await c).toMatchObject({ ok: false, detail: 'aborted' });
      await waitFor(() => hang.connections === 0, 5000, 'backend connections to drop to 0');
      // A probe under the aborted signal does not start.
      expect(await checker.check(target(ok), ac.signal)).toMatchObject({ ok: false, detail: 'aborted' });
    } finally {
      await checker.close();
      await ok.close();
      await hang.close();
    }
  });
});

/** Collects onChange events and waits (bounded) for the next one matching. */
function changeLog() {
  const events: { key: string; health: MemberHealth; previous: MemberHealth; reason: string }[] = [];
  return {
    events,
    onChange: (s: TargetState, previous: MemberHealth, reason: string) => events.push({ key: s.key, health: s.health, previous, reason }),
    async next(health: MemberHealth, from: number, timeoutMs = 10_000) {
      await waitFor(() => events.slice(from).some((e) => e.health === health), timeoutMs, `a change to ${health}`);
      return events.slice(from).find((e) => e.health === health)!;
    },
  };
}

describe('HealthMonitor with a real checker', () => {
  it('a stopped backend goes down after fall failures and comes back after rise successes', async () => {
    const b = await startHttpBackend();
    const checker = createChecker();
    const log = changeLog();
    const monitor = new HealthMonitor({ check: checker.check, onChange: log.onChange });
    try {
      const t = target(b, { interval: '200ms', timeout: '150ms', fall: 2, rise: 2 });
      monitor.setTargets([t]);
      await monitor.firstRound();
      expect(monitor.state(t.key)).toMatchObject({ health: 'up', checks: 1, consecutiveOk: 1 });

      let mark = log.events.length;
      await b.stop();
      const down = await log.next('down', mark);
      expect(down).toMatchObject({ key: t.key, previous: 'up' });
      expect(down.reason).toBe('2 consecutive failures: ECONNREFUSED');

      mark = log.events.length;
      await b.start();
      const up = await log.next('up', mark);
      expect(up.reason).toBe('2 consecutive successes: HTTP 200');
      expect(monitor.state(t.key)).toMatchObject({ health: 'up' });
    } finally {
      await monitor.close();
      await checker.close();
      await b.close();
    }
  });

  it('targets with the same key are checked once per interval, not once per name', async () => {
    const b = await startHttpBackend();
    const checker = createChecker();
    const hitsAtResult: number[] = [];
    const monitor = new HealthMonitor({ check: checker.check, onResult: () => hitsAtResult.push(b.hits) });
    try {
      const input: CheckConfigInput = { interval: '200ms', timeout: '150ms', host: 'shared.example.test' };
      const targets = ['a.example.test', 'b.example.test', 'c.example.test'].map((n) => target(b, input, n));
      expect(new Set(targets.map((t) => t.key)).size).toBe(1);
      monitor.setTargets(targets);
      expect(monitor.states()).toHaveLength(1);
      await monitor.firstRound();
      const ROUNDS = 5;
      await waitFor(() => hitsAtResult.length >= 1 + ROUNDS, 10_000, `${ROUNDS} more rounds`);
      // Each round (one interval) cost exactly one request, where three names use the check.
      expect(hitsAtResult[ROUNDS]! - hitsAtResult[0]!).toBe(ROUNDS);
      expect(b.requests.every((r) => r.host === 'shared.example.test')).toBe(true);
    } finally {
      await monitor.close();
      await checker.close();
      await b.close();
    }
  });

  it('close() while checks hang releases every connection', async () => {
    const b = await startHttpBackend({ mode: 'hang' });
    const checker = createChecker();
    const monitor = new HealthMonitor({ check: checker.check });
    try {
      const targets = [1, 2, 3].map((i) => target(b, { interval: '10s', timeout: '5s' }, `n${i}.example.test`));
      monitor.setTargets(targets);
      await waitFor(() => b.connections === 3, 5000, 'three checks in flight');
      await monitor.close();
      await monitor.close(); // idempotent
      await waitFor(() => b.connections === 0, 5000, 'connections to close');
    } finally {
      await checker.close();
      await b.close();
    }
  });
});
