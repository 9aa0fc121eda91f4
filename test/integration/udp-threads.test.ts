/**
 * UDP answer threads (--udp-threads): several sockets on one port, one per
 * thread. Every query below comes from a fresh socket (a new source port), so
 * the kernel spreads them over the threads; what must hold is that the
 * threads answer as one server: one rotation cycle, the same health view,
 * the same zone version, their queries counted in /metrics.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, type Backend } from '../support/backends.ts';
import { sleep } from '../support/rawdns.ts';

const servers: TestServer[] = [];
const backends: Backend[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const b of backends.splice(0)) await b.close();
});

const RR = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'];

function zoneText(extra = ''): string {
  return `soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: [${RR.join(', ')}] }\n${extra}`;
}

async function serve(files: Record<string, string>): Promise<TestServer> {
  const t = await startTestServer(files, { udpThreads: 2 });
  servers.push(t);
  return t;
}

/** Bounded wait until the workers have reported answering at least `n` queries (they report once a second). */
async function workersAnswered(t: TestServer, n: number): Promise<number> {
  for (let i = 0; i < 60 && t.server.udpThreadStats().answeredByWorkers < n; i++) await sleep(100);
  return t.server.udpThreadStats().answeredByWorkers;
}

describe('UDP answer threads', () => {
  it('two threads share the port; each answers, and their queries reach /metrics', async () => {
    const t = await serve({ 'mt.test.yaml': zoneText() });
    expect(t.server.udpThreadStats().workers).toBe(1);
    const N = 60;
    for (let i = 0; i < N; i++) expect(addresses((await udpQuery(t.port, 'www.mt.test')).packet).sort()).toEqual(RR);
    // With 60 source ports the chance that the kernel sent none to the worker is 2^-59.
    const byWorker = await workersAnswered(t, 1);
    expect(byWorker).toBeGreaterThan(0);
    expect(byWorker).toBeLessThan(N);
    // The worker reports once a second, possibly in two parts: wait (bounded) for the total.
    const counted = async () =>
      [...(await t.server.metrics.text()).matchAll(/^rrdns_queries_total\{[^}]*zone="mt\.test\."[^}]*transport="udp"[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    for (let i = 0; i < 60 && (await counted()) < N; i++) await sleep(100);
    expect(await counted()).toBe(N);
  });

  it('rotation stays one cycle across threads: over k·n queries each address comes first exactly k times, in order', async () => {
    const t = await serve({ 'mt.test.yaml': zoneText() });
    const firsts: string[] = [];
    for (let i = 0; i < RR.length * 10; i++) firsts.push(addresses((await udpQuery(t.port, 'www.mt.test')).packet)[0]!);
    for (const a of RR) expect(firsts.filter((f) => f === a)).toHaveLength(10);
    // Strictly cyclic: each query starts one step after the previous one, whichever thread answered.
    const start = RR.indexOf(firsts[0]!);
    expect(firsts).toEqual(firsts.map((_, i) => RR[(start + i) % RR.length]));
    expect(await workersAnswered(t, 1)).toBeGreaterThan(0);
  });

  it('a master-file zone (kept as text, built when asked for: lazy-zone.ts) answers from both threads, rotates as one cycle and reloads in both', async () => {
    const master = (extra = '') => `$ORIGIN lz.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\n${RR.map((a) => `www A ${a}`).join('\n')}\n${extra}`;
    const t = await serve({ 'lz.test.zone': master() });
    const firsts: string[] = [];
    for (let i = 0; i < RR.length * 10; i++) {
      const answer = addresses((await udpQuery(t.port, 'www.lz.test')).packet);
      expect([...answer].sort()).toEqual(RR);
      firsts.push(answer[0]!);
    }
    const start = RR.indexOf(firsts[0]!);
    expect(firsts).toEqual(firsts.map((_, i) => RR[(start + i) % RR.length]));
    expect(await workersAnswered(t, 1)).toBeGreaterThan(0);
    fs.writeFileSync(path.join(t.dir, 'lz.test.zone'), master('new A 192.0.2.99\n'));
    expect((await t.server.reload()).ok).toBe(true);
    for (let i = 0; i < 40; i++) expect(addresses((await udpQuery(t.port, 'new.lz.test')).packet)).toEqual(['192.0.2.99']);
  });

  it('a reload reaches every thread', async () => {
    const t = await serve({ 'mt.test.yaml': zoneText() });
    fs.writeFileSync(path.join(t.dir, 'mt.test.yaml'), zoneText('  new: { A: 192.0.2.99 }\n'));
    expect((await t.server.reload()).ok).toBe(true);
    for (let i = 0; i < 40; i++) expect(addresses((await udpQuery(t.port, 'new.mt.test')).packet)).toEqual(['192.0.2.99']);
    expect(await workersAnswered(t, 1)).toBeGreaterThan(0);
  });

  it('a reload sends the worker only what changed: an edited, an added and a removed zone reach it, the unchanged one keeps answering', async () => {
    const other = (origin: string, a: string) => `origin: ${origin}\nsoa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: ${a} }\n`;
    const t = await serve({ 'mt.test.yaml': zoneText(), 'keep.test.yaml': other('keep.test', '192.0.2.10'), 'gone.test.yaml': other('gone.test', '192.0.2.11') });
    const before = t.server.udpThreadStats().zonesPosted;
    expect(before).toBe(3);
    fs.writeFileSync(path.join(t.dir, 'mt.test.yaml'), zoneText('  new: { A: 192.0.2.99 }\n'));
    fs.writeFileSync(path.join(t.dir, 'added.test.yaml'), other('added.test', '192.0.2.12'));
    fs.rmSync(path.join(t.dir, 'gone.test.yaml'));
    expect((await t.server.reload()).ok).toBe(true);
    // One worker: the edited zone and the added one cross, the kept and the removed ones do not.
    expect(t.server.udpThreadStats().zonesPosted - before).toBe(2);
    for (let i = 0; i < 40; i++) {
      expect(addresses((await udpQuery(t.port, 'new.mt.test')).packet)).toEqual(['192.0.2.99']);
      expect(addresses((await udpQuery(t.port, 'www.added.test')).packet)).toEqual(['192.0.2.12']);
      expect(addresses((await udpQuery(t.port, 'www.keep.test')).packet)).toEqual(['192.0.2.10']);
      expect((await udpQuery(t.port, 'www.gone.test')).packet.header.rcode).toBe(5); // REFUSED: no zone
    }
    expect(await workersAnswered(t, 1)).toBeGreaterThan(0);
  });

  it('a health change reaches every thread: a stopped backend leaves every answer', async () => {
    const a = await startHttpBackend({ mode: 'ok' });
    const b = await startHttpBackend({ mode: 'ok' });
    backends.push(a, b);
    const check = '{ interval: 300ms, timeout: 250ms, fall: 2, rise: 2 }';
    const t = await serve({
      'mt.test.yaml': zoneText(
        `  app:\n    A: [${a.address}, ${b.address}]\n    pool:\n      check: ${check}\n      members:\n        ${a.address}: { check: { port: ${a.port} } }\n        ${b.address}: { check: { port: ${b.port} } }\n`,
      ),
    });
    for (let i = 0; i < 20; i++) expect(addresses((await udpQuery(t.port, 'app.mt.test')).packet).sort()).toEqual([a.address, b.address].sort());
    await b.stop();
    // Bounded: wait for 30 answers in a row, from 30 source ports, without the stopped backend.
    let clean = 0;
    for (let i = 0; i < 400 && clean < 30; i++) {
      const got = addresses((await udpQuery(t.port, 'app.mt.test')).packet);
      clean = got.includes(b.address) ? 0 : clean + 1;
      if (clean === 0) await sleep(20);
    }
    expect(clean).toBe(30);
    expect(await workersAnswered(t, 1)).toBeGreaterThan(0);
  });

  it('close() ends the worker threads: nobody answers afterwards', async () => {
    const t = await startTestServer({ 'mt.test.yaml': zoneText() }, { udpThreads: 3 });
    expect(t.server.udpThreadStats().workers).toBe(2);
    await t.close();
    for (let i = 0; i < 10; i++) await expect(udpQuery(t.port, 'www.mt.test', { timeoutMs: 200 })).rejects.toThrow(/no UDP reply/);
  });
});
