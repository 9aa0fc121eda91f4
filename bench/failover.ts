/**
 * `npm run failover`: measures, with the real CLI server and real `dig`, the time
 * from stopping a backend to its address leaving the answers, and the TTLs
 * served meanwhile. Checks every 1 s, fall 2. Bounded: gives up after 30 s.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { dig } from '../test/support/dig.ts';
import { freePort } from '../test/support/spawn.ts';
import { ensureTool } from '../test/support/tools.ts';
import { poolZone } from './pool-zone.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const INTERVAL_S = 1;
const FALL = 2;
const TIMEOUT_S = 0.5;

function backend(address: string): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.end('ok'));
  return new Promise((resolve) => server.listen(0, address, () => resolve(server)));
}

async function main(): Promise<void> {
  if (!ensureTool('dig', 'bind9-dnsutils')) process.exit(1);
  const victim = await backend('127.0.0.41');
  const survivor = await backend('127.0.0.42');
  const port = (s: http.Server) => (s.address() as { port: number }).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-failover-'));
  const zone = poolZone({
    origin: 'failover.test',
    ttl: 30,
    members: [victim, survivor].map((s, i) => ({ address: `127.0.0.4${i + 1}`, port: port(s) })),
    check: { intervalS: INTERVAL_S, timeoutS: TIMEOUT_S, fall: FALL, rise: 2 },
  });
  fs.writeFileSync(path.join(dir, 'failover.test.yaml'), zone.yaml);
  const dnsPort = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'src/main.ts'), 'serve', '--zones', dir, '--listen', `127.0.0.1:${dnsPort}`, '--log-level', 'warn', '--admin', 'off', '--state-dir', 'off'], { stdio: 'inherit' });
  try {
    let answer = await dig(dnsPort, ['www.failover.test', 'A']).catch(() => undefined);
    for (let i = 0; i < 50 && !answer; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await dig(dnsPort, ['www.failover.test', 'A']).catch(() => undefined);
    }
    if (!answer || answer.answer.length !== 2) throw new Error('rrdns did not start with both addresses');
    console.log(`failover: check every ${INTERVAL_S}s, timeout ${TIMEOUT_S}s, fall ${FALL}, record TTL 30s`);
    console.log(`before: ${answer.answer.map((a) => a.data).join(', ')} (TTL ${answer.answer[0]!.ttl}s)`);
    await new Promise<void>((r) => victim.close(() => r()));
    victim.closeAllConnections();
    const stoppedAt = performance.now();
    const ttls = new Set<number>();
    let goneAfter: number | undefined;
    while (performance.now() - stoppedAt < 30_000) {
      const r = await dig(dnsPort, ['www.failover.test', 'A']);
      for (const a of r.answer) ttls.add(a.ttl);
      if (!r.answer.some((a) => a.data === '127.0.0.41')) {
        goneAfter = performance.now() - stoppedAt;
        console.log(`after:  ${r.answer.map((a) => a.data).join(', ')} (TTL ${r.answer[0]?.ttl}s)`);
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    if (goneAfter === undefined) console.log('the stopped backend was still served after 30 s');
    else console.log(`stopped backend left the answers after ${(goneAfter / 1000).toFixed(2)}s (expected at most interval x fall + timeout = ${INTERVAL_S * FALL + TIMEOUT_S}s)`);
    console.log(`TTLs served meanwhile: ${[...ttls].sort((a, b) => a - b).join(', ')}s (record TTL 30s; health-aware cap interval x fall = ${INTERVAL_S * FALL}s)`);
    console.log(`worst case for a client: ${goneAfter === undefined ? '?' : ((goneAfter / 1000) + Math.max(...ttls)).toFixed(2)}s (detection + largest TTL served)`);
  } finally {
    child.kill('SIGTERM');
    survivor.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
