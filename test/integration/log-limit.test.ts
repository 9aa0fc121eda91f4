/**
 * Repetitive log lines are rate-limited: a TCP client pipelining 1,000
 * refused AXFRs gets every answer but writes a bounded number of lines, plus
 * periodic "suppressed N similar" lines that account for the rest; the
 * transport error sink is limited the same way. Unit tables for the limiter.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { frame, parseHeader, rawQuery, TcpPeer, waitUntil } from '../support/rawdns.ts';
import { captureLogger, writeZones } from '../support/server.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { RrdnsServer } from '../../src/server/server.ts';
import { LogLimiter } from '../../src/observability/log-limiter.ts';
import { logStats } from '../../src/observability/log.ts';

const AXFR = 252;
const ZONE = `soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n`;

const servers: RrdnsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(level = 'info') {
  const { logger, lines } = captureLogger(level);
  const config = parseConfig({ zonesDir: writeZones({ 'lim.test.yaml': ZONE }), listen: ['127.0.0.1:0'], admin: { listen: 'off' }, watch: { enabled: false }, stateDir: 'off' });
  const server = new RrdnsServer(config, { logger, logLimit: { reportEveryMs: 200 } });
  await server.start();
  servers.push(server);
  return { server, lines, port: server.addresses[0]!.port };
}

describe('rate-limited log lines', () => {
  it('1,000 refused AXFRs pipelined over one TCP connection: every one answered REFUSED, a bounded number of lines, the rest reported as suppressed', async () => {
    const { server, lines, port } = await serve();
    const N = 1000;
    const peer = await TcpPeer.connect(port);
    try {
      // Transfer is off for this zone: each one is refused, and each used to log an info line.
      peer.write(Buffer.concat(Array.from({ length: N }, (_, i) => frame(rawQuery('lim.test', { id: i, qtype: AXFR })))));
      await waitUntil(() => peer.messages.length >= N || peer.closed, 20_000, `${N} answers`);
      expect(peer.messages).toHaveLength(N);
      for (const m of peer.messages) expect(parseHeader(m).rcode).toBe(5);
    } finally {
      peer.destroy();
    }
    const suppressedLines = () => lines.filter((l) => String(l.msg) === 'suppressed ' + String(l.suppressed) + ' similar: zone transfer refused');
    const suppressed = () => suppressedLines().reduce((n, l) => n + Number(l.suppressed), 0);
    const refused = () => lines.filter((l) => l.msg === 'zone transfer refused').length;
    // The report comes within a report period (200 ms here); bounded wait.
    await waitUntil(() => refused() + suppressed() === N, 10_000, 'every refusal logged or reported as suppressed');
    expect(refused()).toBeLessThanOrEqual(50);
    expect(suppressedLines().length).toBeGreaterThan(0);
    expect(suppressedLines()[0]).toMatchObject({ peer: '127.0.0.1', qtype: 'AXFR', level: 30 });
    expect(server.logLimiter.size).toBeLessThanOrEqual(1024 + 2);
  });

  it('the transport error sink: 1,000 errors from one place make a bounded number of lines', async () => {
    const { server, lines } = await serve();
    const N = 1000;
    const err = Object.assign(new Error('send EPERM'), { code: 'EPERM' });
    for (let i = 0; i < N; i++) server.transportError(err, 'udp send', '127.0.0.1');
    const written = lines.filter((l) => l.msg === 'transport error').length;
    expect(written).toBeLessThanOrEqual(20);
    await waitUntil(() => lines.some((l) => String(l.msg) === 'suppressed ' + String(N - written) + ' similar: transport error'), 10_000, 'the suppressed report');
  });
});

describe('LogLimiter', () => {
  function limiter(opts: Partial<ConstructorParameters<typeof LogLimiter>[1]> = {}) {
    const { logger, lines } = captureLogger('info');
    let now = 0;
    const l = new LogLimiter(logger, { burst: 3, perSecond: 1, maxKeys: 4, reportEveryMs: 1_000_000, ...opts }, () => now);
    return { l, lines, advance: (ms: number) => (now += ms), written: (msg: string) => lines.filter((x) => x.msg === msg).length };
  }

  it('a key writes its burst, then nothing until tokens come back', () => {
    const { l, advance, written } = limiter();
    for (let i = 0; i < 10; i++) l.write('info', 'k', 'a', {}, 'line');
    expect(written('line')).toBe(3);
    advance(2000);
    for (let i = 0; i < 10; i++) l.write('info', 'k', 'a', {}, 'line');
    expect(written('line')).toBe(5);
  });

  it('keys are independent; past maxKeys, new keys share one overflow bucket per kind', () => {
    const { l, written } = limiter();
    for (const key of ['a', 'b', 'c']) for (let i = 0; i < 5; i++) l.write('info', 'k', key, {}, 'line');
    expect(written('line')).toBe(9);
    // 100 new keys: one slot left, then the overflow bucket: its burst (3) for all of them, plus the one slot's 3.
    for (let k = 0; k < 100; k++) for (let i = 0; i < 5; i++) l.write('info', 'k', `x${k}`, {}, 'line');
    expect(written('line')).toBe(9 + 3 + 3);
    expect(l.size).toBe(5);
  });

  it('report() writes one "suppressed N similar" line per key, at the level of the line, and counts it', () => {
    const { l, lines } = limiter();
    const before = logStats().suppressed['unit-kind'] ?? 0;
    for (let i = 0; i < 13; i++) l.write('warn', 'unit-kind', 'peer1', { peer: 'peer1' }, 'denied');
    l.report();
    const report = lines.filter((x) => String(x.msg).startsWith('suppressed'));
    expect(report).toEqual([expect.objectContaining({ msg: 'suppressed 10 similar: denied', suppressed: 10, peer: 'peer1', level: 40 })]);
    expect(logStats().suppressed['unit-kind']).toBe(before + 10);
    l.report();
    expect(lines.filter((x) => String(x.msg).startsWith('suppressed'))).toHaveLength(1);
  });
});
