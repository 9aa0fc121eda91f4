/**
 * Reload that loses nothing: the zones directory is watched, every version is
 * validated in full before one swap, a broken file keeps its zone's previous
 * version serving (and says so in the log, /readyz and /api/v1/health), health
 * checks keep their state across reloads, and clients querying without pause
 * through many reloads get no lost or wrong answer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Packet } from 'dns2';
import { addresses, buildQuery, udpQuery } from '../support/dnsclient.ts';
import { captureLogger, startTestServer, type TestServer } from '../support/server.ts';
import { startHttpBackend, type Backend } from '../support/backends.ts';
import { sleep, TcpPeer } from '../support/rawdns.ts';
import { waitUntil } from '../support/spawn.ts';

const servers: TestServer[] = [];
const backends: Backend[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const b of backends.splice(0)) await b.close();
});

/** Polls `check` (bounded: 200 × 50 ms) until it holds. */
const eventually = (check: () => Promise<boolean> | boolean, what: string) => waitUntil(async () => await check(), { what, attempts: 200, intervalMs: 50 });

const WATCH = { enabled: true, pollMs: 200, debounceMs: 50 };

function zoneText(records: string, serial = 1): string {
  return `soa: { mname: ns1, rname: hostmaster, serial: ${serial} }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n${records}`;
}

/** Writes a file the way editors and config tools do: a temporary file renamed over the old one. */
function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function serve(files: Record<string, string>, overrides: Record<string, unknown> = {}, logger?: ReturnType<typeof captureLogger>['logger']): Promise<TestServer> {
  const t = await startTestServer(files, { watch: WATCH, ...overrides }, logger);
  servers.push(t);
  return t;
}

const rcodeOf = (raw: Buffer) => raw.readUInt8(3) & 0x0f;
const txtOf = async (port: number, name: string) => {
  const { packet } = await udpQuery(port, name, { type: Packet.TYPE.TXT });
  return packet.answers.map((a) => (a as unknown as { data: string | string[] }).data).flat().join('');
};

describe('reload on change', () => {
  it('an edit in the zones directory is picked up by itself: renamed over, written in place, a new file, a removed file', async () => {
    const t = await serve({ 'watch.test.yaml': zoneText('  www: { A: 192.0.2.1 }\n') });
    const file = path.join(t.dir, 'watch.test.yaml');
    expect(addresses((await udpQuery(t.port, 'www.watch.test')).packet)).toEqual(['192.0.2.1']);

    writeAtomically(file, zoneText('  www: { A: 192.0.2.2 }\n', 2));
    await eventually(async () => addresses((await udpQuery(t.port, 'www.watch.test')).packet)[0] === '192.0.2.2', 'the renamed-over version to be served');

    fs.writeFileSync(file, zoneText('  www: { A: 192.0.2.3 }\n', 3));
    await eventually(async () => addresses((await udpQuery(t.port, 'www.watch.test')).packet)[0] === '192.0.2.3', 'the in-place edit to be served');

    fs.writeFileSync(path.join(t.dir, 'added.test.yaml'), zoneText('  www: { A: 192.0.2.4 }\n'));
    await eventually(async () => addresses((await udpQuery(t.port, 'www.added.test')).packet)[0] === '192.0.2.4', 'a new zone file to be served');

    fs.rmSync(path.join(t.dir, 'added.test.yaml'));
    // REFUSED: no zone of ours any more.
    await eventually(async () => rcodeOf((await udpQuery(t.port, 'www.added.test')).raw) === 5, 'a removed zone file to stop being served');
    expect(t.server.lastReload).toMatchObject({ ok: true, trigger: 'file change', errors: [] });
  });

  it('an invalid edit keeps the old zone serving, shows the error with file and line in the log, /readyz and /api/v1/health; other zones still reload', async () => {
    const { logger, lines } = captureLogger();
    const t = await serve(
      {
        'a.test.yaml': zoneText('  www: { A: [192.0.2.1, 192.0.2.2] }\n'),
        'b.test.yaml': zoneText('  www: { A: 192.0.2.10 }\n'),
      },
      { admin: { listen: '127.0.0.1:0' } },
      logger,
    );
    const admin = `http://127.0.0.1:${t.server.adminAddress!.port}`;
    const fileA = path.join(t.dir, 'a.test.yaml');
    // Line 6 holds the bad address.
    writeAtomically(fileA, zoneText('  www:\n    A: [192.0.2.1, 300.1.1.1]\n'));
    writeAtomically(path.join(t.dir, 'b.test.yaml'), zoneText('  www: { A: 192.0.2.11 }\n', 2));

    await eventually(async () => addresses((await udpQuery(t.port, 'www.b.test')).packet)[0] === '192.0.2.11', 'the valid sibling edit to be served');
    await eventually(() => t.server.lastReload.errors.length > 0, 'the reload error to be recorded');
    expect(addresses((await udpQuery(t.port, 'www.a.test')).packet).sort()).toEqual(['192.0.2.1', '192.0.2.2']);

    const wanted = `${fileA}:6 records.www.A[1]: "300.1.1.1" is not an IPv4 address`;
    const logged = lines.find((l) => /^zone reload (failed|found errors)/.test(String(l.msg)));
    expect(logged?.issues).toContain(wanted);
    expect(logged?.keptPrevious).toEqual(['a.test.']);

    const ready = await fetch(`${admin}/readyz`);
    expect(ready.status).toBe(200); // the previous version serves: still ready
    const readyBody = (await ready.json()) as { status: string; zoneErrors: string[]; keptPrevious: string[] };
    expect(readyBody.status).toBe('ready');
    expect(readyBody.zoneErrors).toContain(wanted);
    expect(readyBody.keptPrevious).toEqual(['a.test.']);
    const health = (await (await fetch(`${admin}/api/v1/health`)).json()) as { reload: { ok: boolean; errors: string[] } };
    expect(health.reload.ok).toBe(false);
    expect(health.reload.errors).toContain(wanted);

    // Fixing the file clears the error.
    writeAtomically(fileA, zoneText('  www: { A: 192.0.2.5 }\n', 2));
    await eventually(async () => addresses((await udpQuery(t.port, 'www.a.test')).packet)[0] === '192.0.2.5', 'the fixed version to be served');
    await eventually(() => t.server.lastReload.ok, 'a clean reload');
    const clean = (await (await fetch(`${admin}/readyz`)).json()) as Record<string, unknown>;
    expect(clean).toEqual({ status: 'ready' });
  });

  it('SIGHUP-style reload() with the watcher off: nothing changes until asked', async () => {
    const t = await serve({ 'manual.test.yaml': zoneText('  www: { A: 192.0.2.1 }\n') }, { watch: { enabled: false } });
    writeAtomically(path.join(t.dir, 'manual.test.yaml'), zoneText('  www: { A: 192.0.2.2 }\n', 2));
    // The watcher would have acted within a few poll periods; without it the old version stays.
    await sleep(600);
    expect(addresses((await udpQuery(t.port, 'www.manual.test')).packet)).toEqual(['192.0.2.1']);
    expect(await t.server.reload('SIGHUP')).toEqual({ ok: true, zones: 1 });
    expect(addresses((await udpQuery(t.port, 'www.manual.test')).packet)).toEqual(['192.0.2.2']);
  });
});

describe('health checks across reloads', () => {
  const FAST = { interval: '300ms', timeout: '250ms', fall: 2, rise: 2 };
  function poolZone(members: Backend[], extra = ''): string {
    const lines = members.map((b) => `        ${b.address}: { check: { port: ${b.port} } }`).join('\n');
    return zoneText(
      `  www:\n    A: [${members.map((b) => b.address).join(', ')}]\n    pool:\n      check: { interval: ${FAST.interval}, timeout: ${FAST.timeout}, fall: ${FAST.fall}, rise: ${FAST.rise} }\n      members:\n${lines}\n${extra}`,
    );
  }
  const member = (t: TestServer, address: string) => t.server.healthSnapshot().find((p) => p.name === 'www.hc.test.')?.members.find((m) => m.address === address);

  it('unchanged checks keep their state (a down address stays down, no new first round); removed checks stop', async () => {
    const good = await startHttpBackend({ mode: 'ok' });
    const bad = await startHttpBackend({ mode: 'status500' });
    backends.push(good, bad);
    const t = await serve({ 'hc.test.yaml': poolZone([good, bad]) }, { watch: { enabled: false } });
    await eventually(() => member(t, bad.address)?.health === 'down', 'the failing backend to go down');
    const before = member(t, bad.address)!;

    // Another record changes; the pool's checks are the same.
    fs.writeFileSync(path.join(t.dir, 'hc.test.yaml'), poolZone([good, bad], '  txt: { TXT: "v2" }\n'));
    expect((await t.server.reload()).ok).toBe(true);
    const after = member(t, bad.address)!;
    expect(after.health).toBe('down');
    expect(after.since).toBe(before.since);
    expect(after.consecutiveFail).toBeGreaterThanOrEqual(before.consecutiveFail);
    expect(addresses((await udpQuery(t.port, 'www.hc.test')).packet)).toEqual([good.address]);

    // The failing backend leaves the zone: its check stops.
    fs.writeFileSync(path.join(t.dir, 'hc.test.yaml'), poolZone([good]));
    expect((await t.server.reload()).ok).toBe(true);
    expect(t.server.monitor.states().map((s) => s.address)).toEqual([good.address]);
    await sleep(350); // a check already on the wire may still land
    const hits = bad.hits;
    const goodHits = good.hits;
    await sleep(1000); // three intervals
    expect(bad.hits).toBe(hits);
    expect(good.hits).toBeGreaterThan(goodHits);
  });
});

describe('reload under load', () => {
  it('zones edited in a loop (valid and invalid versions, renamed and in place) while clients query without pause: zero lost, zero wrong', async () => {
    const app = await startHttpBackend({ mode: 'ok' });
    backends.push(app);
    const STATIC = ['192.0.2.1', '192.0.2.2', '192.0.2.3'];
    const version = (k: number) =>
      zoneText(
        `  www: { A: [${STATIC.join(', ')}] }\n  v: { TXT: "v=${k}" }\n  n${k}: { A: 192.0.2.9 }\n` +
          `  app:\n    A: ${app.address}\n    pool:\n      check: { port: ${app.port}, interval: 300ms, timeout: 250ms }\n`,
        k,
      );
    const broken = (k: number) => version(k).replace('192.0.2.2', '192.0.2.256');
    const t = await serve({ 'loop.test.yaml': version(0), 'other.test.yaml': zoneText('  www: { A: 192.0.2.77 }\n') });
    const file = path.join(t.dir, 'loop.test.yaml');

    let editing = true;
    const stats = { udp: 0, tcp: 0, lost: 0, wrong: [] as string[] };
    const names = ['www.loop.test', 'v.loop.test', 'app.loop.test', 'www.other.test'];
    const check = (raw: Buffer, name: string, lastV: { k: number }) => {
      const p = Packet.parse(raw);
      const rcode = rcodeOf(raw);
      const aa = (raw.readUInt8(2) & 0x04) !== 0;
      if (rcode !== 0 || !aa) return `${name}: rcode ${rcode} aa ${aa}`;
      if (name === 'www.loop.test' && addresses(p).sort().join() !== STATIC.join()) return `${name}: ${addresses(p).join()}`;
      if (name === 'app.loop.test' && addresses(p).join() !== app.address) return `${name}: ${addresses(p).join()}`;
      if (name === 'www.other.test' && addresses(p).join() !== '192.0.2.77') return `${name}: ${addresses(p).join()}`;
      if (name === 'v.loop.test') {
        const txt = p.answers.map((a) => (a as unknown as { data: string | string[] }).data).flat().join('');
        const m = /^v=(\d+)$/.exec(txt);
        // Versions only move forward: a reload never serves an older one, and a broken file keeps the last good one.
        if (!m || Number(m[1]) < lastV.k) return `${name}: "${txt}" after v=${lastV.k}`;
        lastV.k = Number(m[1]);
      }
      return undefined;
    };
    const udpClient = (async () => {
      const lastV = { k: 0 };
      for (let i = 0; editing && i < 200_000; i++) {
        const name = names[i % names.length]!;
        const type = name.startsWith('v.') ? Packet.TYPE.TXT : Packet.TYPE.A;
        try {
          const { raw } = await udpQuery(t.port, name, { type, timeoutMs: 2000 });
          stats.udp++;
          const bad = check(raw, name, lastV);
          if (bad) stats.wrong.push(`udp ${bad}`);
        } catch {
          stats.lost++;
        }
      }
    })();
    const tcp = await TcpPeer.connect(t.port);
    const tcpClient = (async () => {
      const lastV = { k: 0 };
      for (let i = 0; editing && i < 200_000; i++) {
        const name = names[(i + 1) % names.length]!;
        const type = name.startsWith('v.') ? Packet.TYPE.TXT : Packet.TYPE.A;
        let raw: Buffer;
        try {
          raw = await tcp.exchange(buildQuery(name, { type, id: i & 0xffff }), 2000);
        } catch {
          stats.lost++;
          continue;
        }
        stats.tcp++;
        const bad = check(raw, name, lastV);
        if (bad) stats.wrong.push(`tcp ${bad}`);
      }
    })();

    let applied = 0;
    let refused = 0;
    for (let k = 1; k <= 60; k++) {
      const text = k % 5 === 0 ? broken(k) : version(k);
      if (k % 2 === 0) writeAtomically(file, text);
      else fs.writeFileSync(file, text);
      const r = await t.server.reload('test');
      if (r.ok) applied++;
      else refused++;
      await sleep(20);
    }
    // Let the watcher see the last write too, then stop the clients.
    await sleep(400);
    editing = false;
    await Promise.all([udpClient, tcpClient]);
    tcp.destroy();

    expect(applied).toBe(48);
    expect(refused).toBe(12);
    expect(stats.wrong).toEqual([]);
    expect(stats.lost).toBe(0);
    // The clients really ran through the reloads.
    expect(stats.udp).toBeGreaterThan(100);
    expect(stats.tcp).toBeGreaterThan(100);
    expect(await txtOf(t.port, 'v.loop.test')).toBe('v=59');
    expect(t.server.monitor.states()).toHaveLength(1);
  });
});
