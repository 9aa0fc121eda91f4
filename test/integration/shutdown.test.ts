/**
 * Graceful shutdown of the real CLI: SIGTERM and SIGINT stop accepting,
 * answer every query already sent (a TCP client held back by backpressure
 * still gets all its answers), stop the health checks and exit 0, within a
 * bound even when a client never reads.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { buildQuery, udpExchange } from '../support/dnsclient.ts';
import { frame, sleep, TcpPeer } from '../support/rawdns.ts';
import { writeZones } from '../support/server.ts';
import { startRrdns, stopAll, tcpConnects, type RrdnsProcess } from '../support/spawn.ts';
import { startHttpBackend, type Backend } from '../support/backends.ts';

const backends: Backend[] = [];
afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
});
afterAll(() => stopAll());

/** A TXT RRset of about 4 KB, so a few thousand answers outgrow every socket buffer. */
const BIG_TXT = Array.from({ length: 16 }, (_, i) => `"${String(i).padStart(2, '0')}${'x'.repeat(240)}"`).join(' ');

function zones(backend: Backend): string {
  return [
    'soa: { mname: ns1, rname: hostmaster, serial: 1 }',
    'records:',
    '  "@": { NS: ns1 }',
    '  ns1: { A: 192.0.2.53 }',
    `  big: { TXT: [${JSON.stringify(BIG_TXT)}] }`,
    '  app:',
    `    A: ${backend.address}`,
    '    pool:',
    `      check: { port: ${backend.port}, interval: 200ms, timeout: 150ms }`,
    '',
  ].join('\n');
}

/** Bounded wait for the process to exit. */
async function exitOf(p: RrdnsProcess, ms = 15_000) {
  return Promise.race([p.exited, sleep(ms).then(() => ({ code: 'still running', signal: null }))]);
}

/** True when a UDP query gets any answer within half a second. */
const udpAnswered = (port: number) => udpExchange(port, buildQuery('app.stop.test'), 500).then(() => true, () => false);

/** A paused client starts reading: resolves once the server has ended the connection (bounded; the assertions on what arrived tell the rest). */
const readToEnd = (client: TcpPeer) => {
  client.startReading();
  return client.waitClosed(15_000).catch(() => undefined);
};

async function start(backend: Backend, extra: string[] = []): Promise<RrdnsProcess> {
  const dir = writeZones({ 'stop.test.yaml': zones(backend) });
  return startRrdns({
    zonesDir: dir,
    args: ['--admin', 'off', '--no-watch', '--tcp-max-pending', '8', '--tcp-max-queued-bytes', '8192', ...extra],
  });
}

describe('graceful shutdown', () => {
  it('SIGTERM: new clients are turned away, a TCP client that had not read yet still gets every answer, checks stop, exit 0', async () => {
    const backend = await startHttpBackend({ mode: 'ok' });
    backends.push(backend);
    const p = await start(backend, ['--shutdown-grace-ms', '10000']);
    expect(await udpAnswered(p.port)).toBe(true);

    // A client sends many queries for a large answer and does not read: the server stops reading it (backpressure).
    const N = 4000;
    const client = await TcpPeer.connect(p.port, { read: false });
    client.write(Buffer.concat(Array.from({ length: N }, (_, i) => frame(buildQuery('big.stop.test', { type: 16, id: i })))));
    await sleep(300);

    process.kill(p.pid, 'SIGTERM');
    // Wait (bounded) until the listeners are closed: then nobody new gets in.
    for (let i = 0; i < 100 && (await tcpConnects(p.port)); i++) await sleep(20);
    expect(await tcpConnects(p.port)).toBe(false);
    expect(await udpAnswered(p.port)).toBe(false);
    expect(p.running()).toBe(true); // still draining our client

    // Now read: every query gets its answer, then the server ends the connection.
    await readToEnd(client);
    expect(new Set(client.messages.map((m) => m.readUInt16BE(0))).size).toBe(N);

    expect(await exitOf(p)).toEqual({ code: 0, signal: null });
    expect(p.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'rrdns stopped']));
    expect(p.logs.find((l) => l.msg === 'shutting down')?.signal).toBe('SIGTERM');
    // The checks stopped with it.
    const hits = backend.hits;
    await sleep(600);
    expect(backend.hits).toBe(hits);
  });

  it('a zone transfer in progress at SIGTERM is completed before the connection ends (exit 0)', async () => {
    const backend = await startHttpBackend({ mode: 'ok' });
    backends.push(backend);
    const names = Array.from({ length: 3000 }, (_, i) => `  h${i}: { A: 192.0.2.${i % 250} }`).join('\n');
    const dir = writeZones({ 'stop.test.yaml': zones(backend) + names + '\ntransfer: { allow: [127.0.0.1] }\n' });
    const p = await startRrdns({ zonesDir: dir, args: ['--admin', 'off', '--no-watch', '--tcp-max-queued-bytes', '8192', '--shutdown-grace-ms', '10000'] });
    const client = await TcpPeer.connect(p.port, { read: false });
    client.send(buildQuery('stop.test', { type: 252, id: 7 }));
    await sleep(300);
    process.kill(p.pid, 'SIGTERM');
    for (let i = 0; i < 100 && (await tcpConnects(p.port)); i++) await sleep(20);

    await readToEnd(client);
    const types = client.messages.flatMap((m) => Packet.parse(m).answers.map((a) => a.type));
    // SOA first and last, every name in between: the transfer was not cut.
    expect(types[0]).toBe(6);
    expect(types.at(-1)).toBe(6);
    expect(types.filter((t) => t === 1).length).toBeGreaterThanOrEqual(3000);
    expect(await exitOf(p)).toEqual({ code: 0, signal: null });
  });

  it('SIGINT exits 0 the same way', async () => {
    const backend = await startHttpBackend({ mode: 'ok' });
    backends.push(backend);
    const p = await start(backend);
    process.kill(p.pid, 'SIGINT');
    expect(await exitOf(p)).toEqual({ code: 0, signal: null });
    expect(p.logs.find((l) => l.msg === 'shutting down')?.signal).toBe('SIGINT');
    expect(p.logs.some((l) => l.msg === 'rrdns stopped')).toBe(true);
  });

  it('a TCP client that never reads cannot hold the shutdown: connections are cut after the grace period and the exit is still 0', async () => {
    const backend = await startHttpBackend({ mode: 'ok' });
    backends.push(backend);
    const p = await start(backend, ['--shutdown-grace-ms', '500']);
    const client = await TcpPeer.connect(p.port, { read: false });
    client.write(Buffer.concat(Array.from({ length: 4000 }, () => frame(buildQuery('big.stop.test', { type: 16 })))));
    await sleep(300);
    process.kill(p.pid, 'SIGTERM');
    expect(await exitOf(p)).toEqual({ code: 0, signal: null });
    client.destroy();
  });
});
