/**
 * The native (YAML/JSON) zone parser is loaded only when a native zone file is
 * first read (src/zone/load.ts, loadNativeParser). A server that started with
 * master files alone has not loaded it: a YAML zone added later, then
 * SIGHUP, must load it and serve the zone; a broken YAML file added later must
 * be refused with its issue while the served zones stay as they were.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { startRrdns, tempDir, type RrdnsProcess } from '../support/spawn.ts';

const MASTER = '$ORIGIN m.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n';
const NATIVE = 'soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: [192.0.2.7, 192.0.2.8] }\n';
const RELOAD_WAIT_MS = 30_000;

const reloadLines = (p: RrdnsProcess) => p.logs.filter((l) => l.msg === 'zones reloaded' || String(l.msg).startsWith('zone reload'));

async function sighupAndWait(p: RrdnsProcess): Promise<Record<string, unknown>> {
  const before = reloadLines(p).length;
  process.kill(p.pid, 'SIGHUP');
  const until = Date.now() + RELOAD_WAIT_MS;
  while (reloadLines(p).length <= before) {
    if (Date.now() > until || !p.running()) throw new Error(`no reload line after SIGHUP; stderr: ${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return reloadLines(p).at(-1)!;
}

describe('a native zone added to a directory of master files', () => {
  let dir: string;
  let rrdns: RrdnsProcess;

  beforeAll(async () => {
    dir = tempDir('native-later');
    fs.writeFileSync(path.join(dir, 'm.test.zone'), MASTER);
    rrdns = await startRrdns({ zonesDir: dir, args: ['--admin', 'off', '--no-watch'] });
  }, 60_000);
  afterAll(() => rrdns?.close());

  it('a broken YAML file is refused with its issue; the master zone keeps answering, the new one is not served', async () => {
    fs.writeFileSync(path.join(dir, 'bad.test.yaml'), 'soa: { mname: ns1\nrecords: [\n');
    const line = await sighupAndWait(rrdns);
    expect(line.msg).not.toBe('zones reloaded');
    expect(JSON.stringify(line)).toContain('bad.test.yaml');
    expect(addresses((await udpQuery(rrdns.port, 'www.m.test')).packet)).toEqual(['192.0.2.1']);
    expect((await udpQuery(rrdns.port, 'www.bad.test')).packet.header.rcode).toBe(5);
    fs.rmSync(path.join(dir, 'bad.test.yaml'));
  }, 60_000);

  it('a valid YAML zone is loaded on SIGHUP and answers, beside the master zone', async () => {
    fs.writeFileSync(path.join(dir, 'y.test.yaml'), NATIVE);
    const line = await sighupAndWait(rrdns);
    expect(line.msg).toBe('zones reloaded');
    expect(addresses((await udpQuery(rrdns.port, 'www.y.test')).packet).sort()).toEqual(['192.0.2.7', '192.0.2.8']);
    expect(addresses((await udpQuery(rrdns.port, 'www.m.test')).packet)).toEqual(['192.0.2.1']);
  }, 60_000);
});
