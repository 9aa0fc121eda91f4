/**
 * What the answering thread loads, and what happens when the probing thread
 * cannot run. Fresh processes, so that nothing another test imported counts,
 * and a backend that must see the probes, so the checks did run.
 *
 * - With HTTP checks running, undici (~13 MB of RSS) is loaded by the probing
 *   thread only. An `import { type X }` (inline type specifiers only) keeps
 *   the module as a side-effect import under type stripping, which is how
 *   undici had come back onto this thread.
 * - Nor is Node's bundled undici (what fetch and WebSocket use): an ESM
 *   import of node:http builds its namespace from every export, the lazy
 *   WebSocket among them, which loaded it with http2, tls and zlib.
 * - A probing thread that dies before it says anything, again and again (here:
 *   `--input-type=module`, inherited by worker threads, which refuse it for a
 *   file), does not leave start() waiting for a first round forever: after
 *   three such deaths the checks run in the answering thread.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type Backend } from '../support/backends.ts';
import { REPO_ROOT, tempDir } from '../support/spawn.ts';

const execFileAsync = promisify(execFile);

describe('modules of the answering thread', () => {
  let backend: Backend;
  let zones: string;
  beforeAll(async () => {
    backend = await startHttpBackend();
    zones = tempDir('main-thread-zones');
    fs.writeFileSync(
      path.join(zones, 'mt.test.yaml'),
      JSON.stringify({
        origin: 'mt.test',
        soa: { mname: 'ns1', rname: 'h', serial: 1 },
        records: { '@': { NS: 'ns1' }, ns1: { A: '192.0.2.53' }, www: { A: [backend.address], pool: { check: { type: 'http', port: backend.port, path: '/', interval: '1s', timeout: '500ms' } } } },
      }),
    );
  });
  afterAll(async () => {
    await backend?.stop();
    fs.rmSync(zones, { recursive: true, force: true });
  });

  const src = (p: string) => JSON.stringify(path.join(REPO_ROOT, p));
  const script = () => `
    import { createRequire } from 'node:module';
    import { parseConfig } from ${src('src/config/schema.ts')};
    import { RrdnsServer } from ${src('src/server/server.ts')};
    import { createLogger } from ${src('src/observability/log.ts')};
    const s = new RrdnsServer(parseConfig({ zonesDir: ${JSON.stringify(zones)}, listen: ['127.0.0.1:0'], admin: { listen: 'off' }, stateDir: 'off', watch: { enabled: false }, udpThreads: 1 }), { logger: createLogger('silent') });
    // The probing thread and the monitor's timers do not hold the process (in rrdns its sockets do).
    const hold = setInterval(() => {}, 1000);
    await s.start();
    clearInterval(hold);
    const cache = Object.keys(createRequire(import.meta.url)('node:module')._cache);
    console.log(JSON.stringify({ undici: cache.some((k) => k.includes('/undici/')), bundledUndici: process.moduleLoadList.some((m) => m.includes('internal/deps/undici')) }));
    await s.close();
    process.exit(0);`;
  const result = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as { undici: boolean; bundledUndici: boolean };

  it('HTTP checks run, and undici is loaded by the probing thread, not by the thread that answers', async () => {
    const file = path.join(tempDir('main-thread-script'), 'start.mjs');
    fs.writeFileSync(file, script());
    const before = backend.hits;
    const { stdout } = await execFileAsync(process.execPath, [file], { cwd: REPO_ROOT, timeout: 60_000 });
    expect(result(stdout).undici).toBe(false);
    // Nor Node's own bundled undici (fetch, WebSocket): an ESM import of node:http reads its lazy
    // exports and loaded it, with http2, tls and zlib (admin.ts takes http through getBuiltinModule).
    expect(result(stdout).bundledUndici).toBe(false);
    // start() waits for the first round of checks: the probing thread did probe.
    expect(backend.hits).toBeGreaterThan(before);
  }, 90_000);

  it('a probing thread that cannot start does not hold start() forever: the checks run in the answering thread', async () => {
    const before = backend.hits;
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script()], { cwd: REPO_ROOT, timeout: 60_000 });
    expect(result(stdout).undici).toBe(true);
    expect(backend.hits).toBeGreaterThan(before);
  }, 90_000);
});
