/**
 * Reload faults: a reload that fails in any way (a broken file, a directory
 * replaced by a file, a log sink that throws) never stops later reloads; a
 * zones directory that suddenly holds no zone (a failed mount) is refused
 * unless the reload was asked for (SIGHUP / the API), and the refusal shows
 * in the log, /readyz and /api/v1/health while the previous zones serve.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { addresses, udpQuery } from '../support/dnsclient.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { createLogger } from '../../src/observability/log.ts';
import { waitUntil } from '../support/spawn.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

const eventually = (check: () => Promise<boolean> | boolean, what: string) => waitUntil(async () => await check(), { what, attempts: 200, intervalMs: 50 });
const WATCH = { enabled: true, pollMs: 200, debounceMs: 50 };

function zoneText(address: string, serial = 1): string {
  return `soa: { mname: ns1, rname: hostmaster, serial: ${serial} }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n  www: { A: ${address} }\n`;
}

function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** A logger whose lines land in `lines`; `failOn` makes the next line matching it throw from the write (a broken log sink). */
function fragileLogger() {
  const lines: Record<string, unknown>[] = [];
  let failOn: RegExp | undefined;
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const dest = {
    write(s: string) {
      if (failOn && failOn.test(s)) {
        failOn = undefined;
        throw new Error('log sink broken');
      }
      stream.write(s);
    },
  };
  return { logger: createLogger('info', dest), lines, failNext: (re: RegExp) => (failOn = re) };
}

const wwwOf = async (port: number, zone: string) => addresses((await udpQuery(port, `www.${zone}`)).packet)[0];
const rcodeOf = async (port: number, name: string) => (await udpQuery(port, name)).raw.readUInt8(3) & 0x0f;

describe('a failed reload never blocks later ones', () => {
  const faults: { name: string; fault: (t: TestServer, fragile: ReturnType<typeof fragileLogger>) => () => void }[] = [
    {
      name: 'a broken file, while the log sink throws on the error line',
      fault: (t, fragile) => {
        fragile.failNext(/zone reload/);
        writeAtomically(path.join(t.dir, 'r.test.yaml'), zoneText('300.1.1.1', 2));
        return () => writeAtomically(path.join(t.dir, 'r.test.yaml'), zoneText('192.0.2.3', 3));
      },
    },
    {
      name: 'the zones directory replaced by a file, while the log sink throws on the error line',
      fault: (t, fragile) => {
        fragile.failNext(/zone reload/);
        const aside = `${t.dir}.aside`;
        fs.renameSync(t.dir, aside);
        fs.writeFileSync(t.dir, 'not a directory');
        return () => {
          fs.rmSync(t.dir);
          fs.renameSync(aside, t.dir);
          writeAtomically(path.join(t.dir, 'r.test.yaml'), zoneText('192.0.2.3', 3));
        };
      },
    },
  ];
  for (const c of faults) {
    it(`API reloads: ${c.name}`, async () => {
      const fragile = fragileLogger();
      const t = await startTestServer({ 'r.test.yaml': zoneText('192.0.2.1') }, {}, fragile.logger);
      servers.push(t);
      const repair = c.fault(t, fragile);
      const failed = await t.server.reload('api');
      expect(failed.ok).toBe(false);
      expect(await wwwOf(t.port, 'r.test')).toBe('192.0.2.1');
      // And again, still failing: the queue is not stuck on the first failure.
      expect((await t.server.reload('api')).ok).toBe(false);
      repair();
      expect(await t.server.reload('api')).toEqual({ ok: true, zones: 1 });
      expect(await wwwOf(t.port, 'r.test')).toBe('192.0.2.3');
      expect(t.server.lastReload.ok).toBe(true);
    });

    it(`watcher reloads: ${c.name}`, async () => {
      const fragile = fragileLogger();
      const t = await startTestServer({ 'r.test.yaml': zoneText('192.0.2.1') }, { watch: WATCH }, fragile.logger);
      servers.push(t);
      const repair = c.fault(t, fragile);
      await eventually(() => !t.server.lastReload.ok, 'the failed reload to be recorded');
      expect(await wwwOf(t.port, 'r.test')).toBe('192.0.2.1');
      repair();
      await eventually(async () => (await wwwOf(t.port, 'r.test')) === '192.0.2.3', 'the repaired zone to be served');
      await eventually(() => t.server.lastReload.ok, 'a clean reload');
    });
  }
});

describe('a reload that would remove every zone', () => {
  it('the watcher refuses an emptied directory: previous zones serve, the error is logged and shown in /readyz and /api/v1/health; SIGHUP applies it', async () => {
    const fragile = fragileLogger();
    const t = await startTestServer(
      { 'a.test.yaml': zoneText('192.0.2.1'), 'b.test.yaml': zoneText('192.0.2.2') },
      { watch: WATCH, admin: { listen: '127.0.0.1:0' } },
      fragile.logger,
    );
    servers.push(t);
    const admin = `http://127.0.0.1:${t.server.adminAddress!.port}`;
    for (const f of fs.readdirSync(t.dir)) fs.rmSync(path.join(t.dir, f));

    await eventually(() => t.server.lastReload.errors.some((e) => e.includes('holds no zone')), 'the refusal to be recorded');
    expect(await wwwOf(t.port, 'a.test')).toBe('192.0.2.1');
    expect(await wwwOf(t.port, 'b.test')).toBe('192.0.2.2');
    const logged = fragile.lines.find((l) => String(l.msg).startsWith('zone reload refused'));
    expect(logged?.level).toBe(50); // error
    expect(logged?.zones).toEqual(['a.test.', 'b.test.']);

    const ready = await fetch(`${admin}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; zoneErrors: string[]; keptPrevious: string[] };
    expect(body.status).toBe('ready');
    expect(body.zoneErrors.join('\n')).toContain('holds no zone');
    expect(body.keptPrevious).toEqual(['a.test.', 'b.test.']);
    const health = (await (await fetch(`${admin}/api/v1/health`)).json()) as { reload: { ok: boolean; errors: string[] } };
    expect(health.reload.ok).toBe(false);
    expect(health.reload.errors.join('\n')).toContain('holds no zone');

    // The deliberate way: SIGHUP (or the API) after emptying the directory.
    expect(await t.server.reload('SIGHUP')).toEqual({ ok: true, zones: 0 });
    expect(await rcodeOf(t.port, 'www.a.test')).toBe(5); // REFUSED: not ours any more
    expect(((await (await fetch(`${admin}/readyz`)).json()) as Record<string, unknown>)).toEqual({ status: 'ready' });
  });

  it('the mount comes back: the watcher reloads it and the error clears', async () => {
    const t = await startTestServer({ 'a.test.yaml': zoneText('192.0.2.1') }, { watch: WATCH });
    servers.push(t);
    const file = path.join(t.dir, 'a.test.yaml');
    const aside = `${t.dir}.aside.yaml`;
    fs.renameSync(file, aside);
    await eventually(() => t.server.lastReload.errors.some((e) => e.includes('holds no zone')), 'the refusal to be recorded');
    expect(await wwwOf(t.port, 'a.test')).toBe('192.0.2.1');
    fs.writeFileSync(file, zoneText('192.0.2.9', 2));
    fs.rmSync(aside);
    await eventually(async () => (await wwwOf(t.port, 'a.test')) === '192.0.2.9', 'the returned zone to be served');
    await eventually(() => t.server.lastReload.ok, 'a clean reload');
  });

  it('a missing zones directory keeps every zone, whoever asks', async () => {
    const t = await startTestServer({ 'a.test.yaml': zoneText('192.0.2.1') });
    servers.push(t);
    const aside = `${t.dir}.gone`;
    fs.renameSync(t.dir, aside);
    try {
      const r = await t.server.reload('SIGHUP');
      expect(r.ok).toBe(false);
      expect(await wwwOf(t.port, 'a.test')).toBe('192.0.2.1');
    } finally {
      fs.renameSync(aside, t.dir);
    }
  });
});
