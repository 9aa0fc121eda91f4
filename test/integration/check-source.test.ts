/**
 * --check-source-address: health checks connect from the configured local
 * address (HTTP fresh and keep-alive, HTTPS, TCP; in this thread, in the
 * health-check worker and through the real CLI), targets of the other family
 * keep the default source, and a backend that refuses that one source is down
 * for that prober only. Backends on 127.0.0.11+, sources on 127.0.0.201+ (all
 * of 127/8 is on lo); every wait is a bounded poll.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { createChecker } from '../../src/health/checkers.ts';
import { assertLocalAddress, localAddressFor } from '../../src/health/source-address.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';
import { createWorkerChecker } from '../../src/health/worker-checker.ts';
import { startHttpBackend, startHttpsBackend, startTcpBackend, type Backend } from '../support/backends.ts';
import { writeZones } from '../support/server.ts';
import { RRDNS_MAIN, startRrdns, waitUntil, type RrdnsProcess } from '../support/spawn.ts';

const SOURCE = '127.0.0.201';
const OTHER_SOURCE = '127.0.0.202';
const NAME = 'www.example.test';

const backends: Backend[] = [];
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await Promise.all(backends.splice(0).map((b) => b.close()));
});

async function track<T extends Backend>(b: Promise<T>): Promise<T> {
  const x = await b;
  backends.push(x);
  return x;
}

function target(b: Backend, input: CheckConfigInput = {}): CheckTarget {
  return makeTarget(b.address, NAME, CheckSchema.parse({ port: b.port, interval: '1s', timeout: '500ms', ...input }));
}

function checker(sourceAddress?: string) {
  const c = createChecker(sourceAddress ? { sourceAddress } : {});
  closers.push(() => c.close());
  return (t: CheckTarget) => c.check(t, new AbortController().signal);
}

describe('localAddressFor: which probes use the configured source', () => {
  const cases: { name: string; source: string | undefined; family: 4 | 6; want: string | undefined }[] = [
    { name: 'no source configured: the default', source: undefined, family: 4, want: undefined },
    { name: 'IPv4 source, IPv4 target: the source', source: '127.0.0.5', family: 4, want: '127.0.0.5' },
    { name: 'IPv4 source, IPv6 target: the default', source: '127.0.0.5', family: 6, want: undefined },
    { name: 'IPv6 source, IPv6 target: the source', source: '::1', family: 6, want: '::1' },
    { name: 'IPv6 source, IPv4 target: the default', source: '::1', family: 4, want: undefined },
  ];
  it.each(cases)('$name', ({ source, family, want }) => {
    expect(localAddressFor(source, family)).toBe(want);
  });
});

describe('configuration', () => {
  const base = { zonesDir: 'zones', listen: ['127.0.0.1:5353'] };
  it.each([
    { name: 'IPv4', value: '127.0.0.201' },
    { name: 'IPv6', value: '::1' },
  ])('accepts an $name address', ({ value }) => {
    expect(parseConfig({ ...base, checkSourceAddress: value }).checkSourceAddress).toBe(value);
  });
  it.each([
    { name: 'a host name', value: 'localhost' },
    { name: 'an address with a port', value: '127.0.0.1:80' },
    { name: 'an empty string', value: '' },
    { name: 'a CIDR', value: '127.0.0.0/8' },
  ])('refuses $name, naming the setting', ({ value }) => {
    expect(() => parseConfig({ ...base, checkSourceAddress: value })).toThrow(/checkSourceAddress: must be an IPv4 or IPv6 address/);
  });
  it('an address this host does not have is refused before any probe (EADDRNOTAVAIL)', async () => {
    // Only a bind attempt: nothing is sent anywhere.
    await expect(assertLocalAddress('10.255.255.254')).rejects.toThrow(/--check-source-address 10\.255\.255\.254: not an address of this host \(EADDRNOTAVAIL\)/);
    await expect(assertLocalAddress(SOURCE)).resolves.toBeUndefined();
  });
});

describe('probes connect from the configured source', () => {
  it('HTTP, a fresh connection per probe: the backend sees the source; without the option it sees the default', async () => {
    const b = await track(startHttpBackend());
    expect(await checker(SOURCE)(target(b))).toMatchObject({ ok: true });
    expect(b.requests.at(-1)?.from).toBe(SOURCE);
    expect(await checker()(target(b))).toMatchObject({ ok: true });
    expect(b.requests.at(-1)?.from).toBe('127.0.0.1');
  });

  it('HTTP keep-alive: pooled connections come from the source too', async () => {
    const b = await track(startHttpBackend());
    const check = checker(SOURCE);
    const t = target(b, { keepAlive: true });
    for (let i = 0; i < 3; i++) expect(await check(t)).toMatchObject({ ok: true });
    expect(b.hitsFrom.get(SOURCE)).toBe(3);
    expect([...b.peers.keys()]).toEqual([SOURCE]);
  });

  it('HTTPS: the TLS connection comes from the source', async () => {
    const b = await track(startHttpsBackend());
    expect(await checker(SOURCE)(target(b, { type: 'https', host: b.certName, tls: { ca: b.caPath } }))).toMatchObject({ ok: true });
    expect(b.requests.at(-1)?.from).toBe(SOURCE);
  });

  it('TCP: the connection comes from the source', async () => {
    const b = await track(startTcpBackend());
    expect(await checker(SOURCE)(target(b, { type: 'tcp' }))).toMatchObject({ ok: true });
    expect([...b.hitsFrom]).toEqual([[SOURCE, 1]]);
  });

  it('a target of the other family is probed from the default source', async () => {
    const v6 = await track(startHttpBackend({ address: '::1' }));
    expect(await checker(SOURCE)(target(v6))).toMatchObject({ ok: true });
    expect(v6.requests.at(-1)?.from).toBe('::1');
    const v4 = await track(startHttpBackend());
    expect(await checker('::1')(target(v4))).toMatchObject({ ok: true });
    expect(v4.requests.at(-1)?.from).toBe('127.0.0.1');
  });

  it('the health-check worker thread uses the source it was given', async () => {
    const b = await track(startHttpBackend());
    const w = createWorkerChecker({ sourceAddress: OTHER_SOURCE });
    closers.push(() => w.close());
    expect(await w.check(target(b), new AbortController().signal)).toMatchObject({ ok: true });
    expect(b.requests.at(-1)?.from).toBe(OTHER_SOURCE);
  });
});

describe('a backend that refuses one source', () => {
  it('is down for the prober using that source and up for the others', async () => {
    const b = await track(startHttpBackend());
    b.refuseFrom([SOURCE]);
    const refused = await checker(SOURCE)(target(b));
    expect(refused.ok).toBe(false);
    expect(refused.detail).toMatch(/ECONNRESET|connection closed|socket/i);
    expect(await checker(OTHER_SOURCE)(target(b))).toMatchObject({ ok: true });
    expect(await checker()(target(b))).toMatchObject({ ok: true });
    expect(b.peers.get(SOURCE)).toBe(1);
    expect(b.hitsFrom.get(SOURCE)).toBeUndefined();
    b.refuseFrom([]);
    expect(await checker(SOURCE)(target(b))).toMatchObject({ ok: true });
  });
});

describe('the CLI', () => {
  it('rrdns serve --check-source-address: the pool is probed from that address', async () => {
    const b = await track(startHttpBackend());
    const zonesDir = writeZones({
      'src.test.yaml': JSON.stringify({
        origin: 'src.test',
        soa: { mname: 'ns1', rname: 'hostmaster', serial: 1 },
        records: { '@': { NS: 'ns1' }, ns1: { A: '192.0.2.53' }, www: { A: [b.address], pool: { check: { port: b.port, interval: '500ms', timeout: '300ms' } } } },
      }),
    });
    const rr: RrdnsProcess = await startRrdns({ zonesDir, args: ['--admin', 'off', '--check-source-address', SOURCE] });
    closers.push(() => rr.close());
    await waitUntil(async () => b.hitsFrom.get(SOURCE) !== undefined, { what: `a probe from ${SOURCE}`, attempts: 100, intervalMs: 100, proc: rr });
    expect([...b.hitsFrom.keys()]).toEqual([SOURCE]);
  });

  it.each([
    { name: 'flag, not an IP', args: ['--check-source-address', 'nope'], env: {}, message: /--check-source-address \/ RRDNS_CHECK_SOURCE_ADDRESS: must be an IPv4 or IPv6 address/ },
    { name: 'env, not an IP', args: [], env: { RRDNS_CHECK_SOURCE_ADDRESS: '127.0.0.1:80' }, message: /--check-source-address \/ RRDNS_CHECK_SOURCE_ADDRESS: must be an IPv4 or IPv6 address/ },
    { name: 'not an address of this host', args: ['--check-source-address', '10.255.255.254'], env: {}, message: /10\.255\.255\.254: not an address of this host \(EADDRNOTAVAIL\)/ },
  ])('refuses a bad value ($name) with exit 2 and a message naming it', ({ args, env, message }) => {
    const zonesDir = writeZones({ 'x.test.yaml': 'soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n' });
    const r = spawnSync(process.execPath, [RRDNS_MAIN, 'serve', '--zones', zonesDir, '--listen', '127.0.0.1:0', '--admin', 'off', '--state-dir', 'off', ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('rrdns help lists the option and its variable', () => {
    const r = spawnSync(process.execPath, [RRDNS_MAIN, 'help'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toContain('--check-source-address IP');
    expect(r.stdout).toContain('env RRDNS_CHECK_SOURCE_ADDRESS');
  });
});
