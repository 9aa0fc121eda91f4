/**
 * The Docker image, built from the real Dockerfile and run without a Docker
 * engine: ../shared/container (see its README) makes a stand-in for the
 * node:24-bookworm-slim base, builds the Dockerfile with buildah and runs the
 * image on the host network as its USER. The container listens on free
 * loopback ports (RRDNS_LISTEN, RRDNS_ADMIN), gets its zones from a mounted
 * temp dir, and is queried from outside with the real dig.
 *
 * Needs root and the scripts (../shared/container next to the project, or
 * /work/shared/container); skipped with a notice otherwise, or when
 * RRDNS_DOCKER_TEST=0. The first build on a machine takes minutes (Debian
 * bootstrap, buildah install, npm ci), hence the long hook timeout.
 *
 * Also here, with no container needed: the docker-compose example (its zone,
 * its backend script, and the file itself with `docker compose config` when
 * a compose tool is installed).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { dig } from '../support/dig.ts';
import { freePort, removeDir, REPO_ROOT, RRDNS_MAIN, startProcess, stopAll, tempDir, waitUntil, type ManagedProcess } from '../support/spawn.ts';
import { toolPath } from '../support/tools.ts';
import { chooseUdpThreads } from '../../src/server/udp-thread-count.ts';

const IMAGE = 'rrdns:test';
const BUILD_TIMEOUT_MS = 25 * 60_000;
const CAP_NET_BIND_SERVICE = 1n << 10n;

function findContainerScripts(): { dir?: string; looked: string[] } {
  const looked = [path.resolve(REPO_ROOT, '../shared/container'), '/work/shared/container'];
  const dir = looked.find((d) => ['base-image.sh', 'build.sh', 'run.sh'].every((f) => fs.existsSync(path.join(d, f))));
  return dir ? { dir, looked } : { looked };
}

const scripts = findContainerScripts();
const skipReason =
  process.env.RRDNS_DOCKER_TEST === '0'
    ? 'RRDNS_DOCKER_TEST=0'
    : !scripts.dir
      ? `no container scripts (base-image.sh, build.sh, run.sh) in ${scripts.looked.join(' or ')}`
      : process.getuid?.() !== 0
        ? 'not root (buildah needs root)'
        : undefined;
if (skipReason) console.warn(`[rrdns tests] skipping the Docker image tests: ${skipReason}`);
const script = (name: string) => path.join(scripts.dir ?? '', name);

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command from the project root to completion; SIGKILLs its process group after `timeoutMs`. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  const started = performance.now();
  // Own process group, so a timeout can also end what the script started (buildah).
  const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-256 * 1024)));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-256 * 1024)));
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, timeoutMs);
  return new Promise((resolve) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}\n${e.message}`, ms: performance.now() - started });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

const describeRun = (r: RunResult) => `exit ${r.code ?? r.signal}\n--- stderr ---\n${r.stderr.slice(-4000)}\n--- stdout ---\n${r.stdout.slice(-4000)}`;

/** `run.sh [-e K=V]... [-v H:C]... IMAGE [CMD...]` to completion. */
function runImage(opts: { env?: Record<string, string>; volumes?: string[]; cmd?: string[] }, timeoutMs = 60_000): Promise<RunResult> {
  return run(script('run.sh'), runArgs(opts), timeoutMs);
}

function runArgs(opts: { env?: Record<string, string>; volumes?: string[]; cmd?: string[] }): string[] {
  return [
    ...Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...(opts.volumes ?? []).flatMap((v) => ['-v', v]),
    IMAGE,
    ...(opts.cmd ?? []),
  ];
}

/** Parent PID of every process, from /proc. */
function processTree(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  return children;
}

/**
 * The rrdns node process among the descendants of `rootPid` (the run.sh we
 * started): in a real container it would be PID 1, the process `docker stop`
 * signals. buildah may kill rather than forward SIGTERM, so the tests signal it
 * directly.
 */
function findRrdnsNode(rootPid: number): number | undefined {
  const tree = processTree();
  const queue = [...(tree.get(rootPid) ?? [])];
  for (let i = 0; i < queue.length && i < 1000; i++) {
    const pid = queue[i]!;
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0] ?? '') === 'node' && argv.includes('/opt/rrdns/dist/main.js')) return pid;
    } catch {
      // exited meanwhile
    }
    queue.push(...(tree.get(pid) ?? []));
  }
  return undefined;
}

/** argv of every descendant of `rootPid`. */
function descendantArgv(rootPid: number): string[][] {
  const tree = processTree();
  const queue = [...(tree.get(rootPid) ?? [])];
  const out: string[][] = [];
  for (let i = 0; i < queue.length && i < 1000; i++) {
    try {
      out.push(fs.readFileSync(`/proc/${queue[i]}/cmdline`, 'utf8').split('\0').filter(Boolean));
    } catch {
      // exited meanwhile
    }
    queue.push(...(tree.get(queue[i]!) ?? []));
  }
  return out;
}

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The HEALTHCHECK instruction of the Dockerfile: its options and its exec-form CMD. */
function dockerfileHealthcheck(): { options: string; cmd: string[] } {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const m = /^HEALTHCHECK\s+(.*?)\s*CMD\s+(\[.*\])\s*$/m.exec(text);
  if (!m) throw new Error('no exec-form HEALTHCHECK ... CMD [...] in the Dockerfile');
  return { options: m[1]!, cmd: JSON.parse(m[2]!) as string[] };
}

/** A zone dir the container's user (uid 10053) can read: mkdtemp makes 0700 dirs. */
function readableZoneDir(files: Record<string, string>): string {
  const dir = tempDir('docker-zones');
  fs.chmodSync(dir, 0o755);
  for (const [name, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), text);
    fs.chmodSync(path.join(dir, name), 0o644);
  }
  return dir;
}

const RR_ZONE = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
  www:
    ttl: 30
    A: [192.0.2.101, 192.0.2.102, 192.0.2.103]
`;
const RR_SET = ['192.0.2.101', '192.0.2.102', '192.0.2.103'];

const COMPOSE_ZONE = path.join(REPO_ROOT, 'examples/compose/zones/compose.test.yaml');
const BACKEND = path.join(REPO_ROOT, 'examples/compose/backend.mjs');

/** The compose example's backend script on the host, on `address:port`; resolves once /healthz answers. */
async function startBackend(address: string, port: number, name: string): Promise<ManagedProcess> {
  const proc = startProcess(name, process.execPath, [BACKEND], { env: { ...process.env, ADDRESS: address, PORT: String(port), NAME: name } });
  await waitUntil(async () => (await fetch(`http://${address}:${port}/healthz`)).ok, { what: `${name} /healthz on ${address}:${port}`, proc, attempts: 100 });
  return proc;
}

/** Stops a container run by run.sh that is still up: SIGTERM to its rrdns node (graceful), then the run.sh process by PID. */
async function stopContainer(proc: ReturnType<typeof startProcess>): Promise<void> {
  if (!proc.running()) return;
  const node = findRrdnsNode(proc.pid);
  if (node !== undefined) process.kill(node, 'SIGTERM');
  await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 10_000))]);
  await proc.stop();
}

describe.skipIf(skipReason !== undefined)('Docker image (Dockerfile built with buildah via ../shared/container)', () => {
  beforeAll(async () => {
    const base = await run(script('base-image.sh'), [], BUILD_TIMEOUT_MS);
    if (base.code !== 0) throw new Error(`base-image.sh failed: ${describeRun(base)}`);
    const build = await run(script('build.sh'), [IMAGE], BUILD_TIMEOUT_MS);
    if (build.code !== 0) throw new Error(`build.sh ${IMAGE} failed: ${describeRun(build)}`);
    const size = spawnSync('buildah', ['images', '--format', '{{.Size}}', `localhost/${IMAGE}`], { encoding: 'utf8' }).stdout.trim();
    console.log(`[docker test] base-image.sh ${(base.ms / 1000).toFixed(1)} s, build.sh ${(build.ms / 1000).toFixed(1)} s, image ${size}`);
  }, 2 * BUILD_TIMEOUT_MS);

  it('declares a non-root user, port 53 over UDP and TCP, the zones volume, every setting as env, an exec-form entrypoint', () => {
    const r = spawnSync('buildah', ['inspect', '--type', 'image', `localhost/${IMAGE}`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const config = (JSON.parse(r.stdout) as { OCIv1: { config: Record<string, unknown> } }).OCIv1.config;
    expect(config.User).toBe('rrdns');
    expect(Object.keys(config.ExposedPorts as object).sort()).toEqual(['53/tcp', '53/udp']);
    expect(Object.keys(config.Volumes as object).sort()).toEqual(['/etc/rrdns/zones', '/var/lib/rrdns']);
    expect(config.Env).toEqual(
      expect.arrayContaining(['NODE_ENV=production', 'RRDNS_LISTEN=0.0.0.0:53', 'RRDNS_ZONES=/etc/rrdns/zones', 'RRDNS_ADMIN=127.0.0.1:8053', 'RRDNS_LOG_LEVEL=info', 'RRDNS_UDP_THREADS=auto', 'RRDNS_STATE_DIR=/var/lib/rrdns']),
    );
    // Exec form (no /bin/sh -c wrapper), so the entrypoint script can exec node as PID 1.
    expect(config.Entrypoint).toEqual(['/opt/rrdns/entrypoint.sh']);
    expect(config.Cmd).toEqual(['serve']);
    // The OCI format buildah writes has no HEALTHCHECK field (it warns and drops it);
    // the instruction itself is checked below by running its command.
    const hc = dockerfileHealthcheck();
    expect(hc.options).toMatch(/--interval=\d+s/);
    expect(hc.options).toMatch(/--timeout=\d+s/);
    expect(hc.options).toMatch(/--start-period=\d+s/);
    expect(hc.cmd[0]).toBe('node');
  });

  it('ships the compiled dist/ and production dependencies only, and runs as rrdns', async () => {
    const probe = `
      const fs = require('node:fs'), os = require('node:os');
      const pkg = JSON.parse(fs.readFileSync('/opt/rrdns/package.json', 'utf8'));
      const has = (p) => fs.existsSync(p);
      const tsFiles = (dir) => fs.readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.ts'));
      console.log(JSON.stringify({
        uid: process.getuid(), user: os.userInfo().username,
        main: has('/opt/rrdns/dist/main.js'), src: has('/opt/rrdns/src'), tsInDist: tsFiles('/opt/rrdns/dist'),
        // A dev package that an installed production package depends on (etcd3 → protobufjs → @types/node) belongs there.
        devInstalled: (() => {
          const nm = '/opt/rrdns/node_modules/';
          const dirs = fs.readdirSync(nm).flatMap((d) => (d.startsWith('@') ? fs.readdirSync(nm + d).map((x) => d + '/' + x) : [d]));
          const needed = new Set(dirs.flatMap((d) => { try { return Object.keys(JSON.parse(fs.readFileSync(nm + d + '/package.json', 'utf8')).dependencies ?? {}); } catch { return []; } }));
          return Object.keys(pkg.devDependencies).filter((d) => has(nm + d) && !needed.has(d));
        })(),
        prodMissing: Object.keys(pkg.dependencies).filter((d) => !has('/opt/rrdns/node_modules/' + d)),
        zones: fs.readdirSync('/etc/rrdns/zones'),
        stateDir: (() => { const s = fs.statSync('/var/lib/rrdns'); return { dir: s.isDirectory(), uid: s.uid }; })(),
      }));`;
    const r = await runImage({ cmd: ['node', '-e', probe] });
    expect(r.code, describeRun(r)).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(seen).toMatchObject({ user: 'rrdns', main: true, src: false, tsInDist: [], devInstalled: [], prodMissing: [] });
    expect(seen.uid).not.toBe(0);
    expect(seen.zones).toContain('example.test.yaml');
    // RRDNS_STATE_DIR: the process can write its state there (a fresh volume copies this ownership).
    expect(seen.stateDir).toEqual({ dir: true, uid: seen.uid });
  }, 120_000);

  it('has fping for icmp checks, with CAP_NET_RAW as a file capability (it runs as rrdns, not root)', async () => {
    const r = await runImage({ cmd: ['/usr/sbin/getcap', '/usr/bin/fping'] });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(/^\/usr\/bin\/fping cap_net_raw=ep$/m);
  }, 120_000);

  it('passes CMD on to rrdns: `check` validates the zones baked into the image', async () => {
    const r = await runImage({ cmd: ['/opt/rrdns/entrypoint.sh', 'check'] });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toContain('ok example.test. (/etc/rrdns/zones/example.test.yaml)');
  }, 120_000);

  describe('serving mounted zones', () => {
    let container: ManagedProcess;
    let zones: string;
    let port: number;
    let adminPort: number;
    const logLines = () => container.stdout().split('\n').filter((l) => l.startsWith('{'));

    beforeAll(async () => {
      // Two of the compose example's three backends, on the host (the container
      // shares its network); the third address stays down.
      const backendPort = await freePort('127.0.0.21');
      await startBackend('127.0.0.21', backendPort, 'web1');
      await startBackend('127.0.0.22', backendPort, 'web2');
      const composeZone = fs.readFileSync(COMPOSE_ZONE, 'utf8');
      expect(composeZone).toContain('port: 8080');
      zones = readableZoneDir({ 'docker.test.yaml': RR_ZONE, 'compose.test.yaml': composeZone.replace('port: 8080', `port: ${backendPort}`) });

      port = await freePort();
      adminPort = await freePort();
      container = startProcess('run.sh rrdns', script('run.sh'), runArgs({
        env: { RRDNS_LISTEN: `127.0.0.1:${port}`, RRDNS_ADMIN: `127.0.0.1:${adminPort}` },
        volumes: [`${zones}:/etc/rrdns/zones:ro`],
      }), { cwd: REPO_ROOT });
      // Ready = zones loaded and the first round of health checks done.
      await waitUntil(async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200, {
        what: `/readyz of the container on 127.0.0.1:${adminPort}`,
        proc: container,
        attempts: 300,
        intervalMs: 100,
      });
    }, 120_000);

    afterAll(async () => {
      if (container?.running()) {
        const node = findRrdnsNode(container.pid);
        if (node !== undefined) process.kill(node, 'SIGTERM');
        await Promise.race([container.exited, new Promise((r) => setTimeout(r, 10_000))]);
      }
      await stopAll();
      if (zones) removeDir(zones);
    }, 60_000);

    it('answers a round-robin name over UDP and TCP, rotating', async () => {
      const udp1 = await dig(port, ['www.docker.test', 'A']);
      const udp2 = await dig(port, ['www.docker.test', 'A']);
      const tcp = await dig(port, ['www.docker.test', 'A', '+tcp']);
      for (const r of [udp1, udp2, tcp]) {
        expect(r.rcode).toBe('NOERROR');
        expect(r.flags).toContain('aa');
        expect(r.answer.map((a) => a.data).sort()).toEqual(RR_SET);
      }
      // Cyclic rotation: the next query starts one address further (the image runs RRDNS_UDP_THREADS=auto:
      // with several UDP threads they share the rotation counters).
      const first = udp1.answer.map((a) => a.data);
      expect(udp2.answer.map((a) => a.data)).toEqual([...first.slice(1), first[0]]);
      const listeningLine = () => container.stdout().split('\n').find((l) => l.includes('"rrdns listening"'));
      await waitUntil(async () => listeningLine() !== undefined, { what: 'the start-up line', proc: container });
      const listening = listeningLine();
      expect(listening && (JSON.parse(listening) as { udpThreads: number }).udpThreads).toBe(chooseUdpThreads('auto', os.availableParallelism()).threads);
      // The image built the batched UDP addon (Dockerfile deps stage) and serves through it.
      expect(listening && (JSON.parse(listening) as { udpIo: { path: string } }).udpIo.path).toBe('native');
      // The malloc_trim addon is in the image too (native/memory.c): the C heap's free pages go back.
      expect(listening && (JSON.parse(listening) as { mallocTrim: boolean }).mallocTrim).toBe(true);
    });

    it('health-checks the compose example backends from inside the container: only the live ones are served', async () => {
      const r = await dig(port, ['www.compose.test', 'A']);
      expect(r.rcode).toBe('NOERROR');
      expect(r.answer.map((a) => a.data).sort()).toEqual(['127.0.0.21', '127.0.0.22']);
      const health = (await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/health`)).json()) as unknown;
      expect(JSON.stringify(health)).toContain('ECONNREFUSED');
    });

    it('serves /healthz, and the Dockerfile HEALTHCHECK command run in the image reports healthy, unhealthy, or (admin off) healthy', async () => {
      const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
      expect(res.status).toBe(200);
      const { cmd } = dockerfileHealthcheck();
      const healthy = await runImage({ env: { RRDNS_ADMIN: `127.0.0.1:${adminPort}` }, cmd });
      expect(healthy.code, describeRun(healthy)).toBe(0);
      const closed = await freePort();
      const unhealthy = await runImage({ env: { RRDNS_ADMIN: `127.0.0.1:${closed}` }, cmd });
      expect(unhealthy.code, describeRun(unhealthy)).toBe(1);
      expect(unhealthy.stderr).toMatch(/fetch failed|ECONNREFUSED/);
      const off = await runImage({ env: { RRDNS_ADMIN: 'off' }, cmd });
      expect(off.code, describeRun(off)).toBe(0);
    }, 180_000);

    it('runs node as rrdns (not root) with CAP_NET_BIND_SERVICE and no other capability', () => {
      const node = findRrdnsNode(container.pid);
      expect(node, 'rrdns node process under run.sh').toBeDefined();
      const status = procStatus(node!);
      const [realUid, effectiveUid] = status.Uid!.split(/\s+/).map(Number);
      expect(realUid).toBe(10053);
      expect(effectiveUid).toBe(10053);
      expect(BigInt(`0x${status.CapEff}`)).toBe(CAP_NET_BIND_SERVICE);
      expect(BigInt(`0x${status.CapAmb}`)).toBe(CAP_NET_BIND_SERVICE);
    });

    it('node took the entrypoint\'s place: no shell or capsh is left running above it', () => {
      const argvs = descendantArgv(container.pid);
      expect(argvs.some((a) => path.basename(a[0] ?? '') === 'node' && a.includes('/opt/rrdns/dist/main.js'))).toBe(true);
      const wrappers = argvs.filter((a) => ['sh', 'dash', 'bash', 'capsh'].includes(path.basename(a[0] ?? '')));
      expect(wrappers).toEqual([]);
    });

    // Last: it stops the container.
    it('stops gracefully on SIGTERM to node, the signal `docker stop` sends to PID 1', async () => {
      const node = findRrdnsNode(container.pid);
      expect(node).toBeDefined();
      process.kill(node!, 'SIGTERM');
      const outcome = await Promise.race([container.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
      expect(outcome, 'run.sh still running 20 s after SIGTERM to node').not.toBe('timeout');
      // node exited 0, so buildah run and run.sh did too.
      expect(outcome).toEqual({ code: 0, signal: null });
      const msgs = logLines().map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(msgs).toContain('shutting down');
      expect(msgs.at(-1)).toBe('rrdns stopped');
    }, 60_000);
  });

  // Its own run: the buildah stand-in honours only one -v per run (a second one gets the image's
  // anonymous volume instead), so the zones baked into the image are served here.
  it('keeps its state in the /var/lib/rrdns volume: the served serials are written there before it answers', async () => {
    // A bind mount owned by the image's rrdns user (uid 10053), as a fresh volume is.
    const stateDir = tempDir('docker-state');
    fs.chownSync(stateDir, 10053, 10053);
    const file = path.join(stateDir, 'state.json');
    const port = await freePort();
    const proc = startProcess('run.sh rrdns (state volume)', script('run.sh'), runArgs({
      env: { RRDNS_LISTEN: `127.0.0.1:${port}`, RRDNS_ADMIN: 'off' },
      volumes: [`${stateDir}:/var/lib/rrdns`],
    }), { cwd: REPO_ROOT });
    try {
      await waitUntil(async () => (await dig(port, ['example.test', 'SOA', '+time=1'])).answer.length === 1, { what: `answers on 127.0.0.1:${port}`, proc, attempts: 200, intervalMs: 100 });
      const served = Number((await dig(port, ['example.test', 'SOA'])).answer[0]!.data.split(' ')[2]);
      const state = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: number; serials: Record<string, { serial: number }> };
      expect(state.version).toBe(1);
      expect(state.serials['example.test.']?.serial).toBe(served);
      expect(fs.statSync(file).uid).toBe(10053);
    } finally {
      await stopContainer(proc);
      removeDir(stateDir);
    }
  }, 120_000);

  it('without the capability (no-new-privileges), says so and still serves a port >= 1024', async () => {
    const zones = readableZoneDir({ 'docker.test.yaml': RR_ZONE });
    const port = await freePort();
    const proc = startProcess('run.sh rrdns (no-new-privs)', script('run.sh'), runArgs({
      env: { RRDNS_LISTEN: `127.0.0.1:${port}`, RRDNS_ADMIN: 'off' },
      volumes: [`${zones}:/etc/rrdns/zones:ro`],
      // setpriv (util-linux, in every Debian image) sets no_new_privs, as
      // Kubernetes' allowPrivilegeEscalation: false does; file capabilities then do not apply.
      cmd: ['setpriv', '--no-new-privs', '/opt/rrdns/entrypoint.sh', 'serve'],
    }), { cwd: REPO_ROOT });
    try {
      await waitUntil(async () => (await dig(port, ['www.docker.test', 'A', '+time=1'])).answer.length === 3, { what: `answers on 127.0.0.1:${port}`, proc, attempts: 200, intervalMs: 100 });
      expect(proc.stderr()).toContain('CAP_NET_BIND_SERVICE not available');
      const node = findRrdnsNode(proc.pid);
      expect(node).toBeDefined();
      expect(BigInt(`0x${procStatus(node!).CapEff}`)).toBe(0n);
      process.kill(node!, 'SIGTERM');
      expect(await proc.exited).toEqual({ code: 0, signal: null });
    } finally {
      await stopContainer(proc);
      removeDir(zones);
    }
  }, 120_000);
});

describe('docker-compose example', () => {
  afterAll(() => stopAll());

  it('its zone is valid: a pool of the three backends, checked over HTTP on /healthz', () => {
    const r = spawnSync(process.execPath, [RRDNS_MAIN, 'check', 'examples/compose/zones'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('ok compose.test.');
    expect(r.stdout).toContain('pool www.compose.test. A: 3 primaries, 0 standby; http GET /healthz port 8080');
  });

  it('wires rrdns to the zone and the backends on the addresses the zone checks, all on the host network', () => {
    const compose = parseYaml(fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { network_mode?: string; environment?: Record<string, string>; volumes?: string[]; build?: unknown; command?: string[] }>;
    };
    const services = compose.services;
    expect(Object.keys(services).sort()).toEqual(['rrdns', 'web1', 'web2', 'web3']);
    for (const s of Object.values(services)) expect(s.network_mode).toBe('host');
    const rrdns = services.rrdns!;
    expect(rrdns.build).toBe('.');
    expect(rrdns.environment?.RRDNS_LISTEN).toBe('127.0.0.1:5353');
    const zoneMount = rrdns.volumes?.find((v) => v.split(':')[1] === '/etc/rrdns/zones');
    expect(zoneMount?.split(':')[0]).toBe('./examples/compose/zones');
    const zone = parseYaml(fs.readFileSync(COMPOSE_ZONE, 'utf8')) as { records: { www: { A: string[]; pool: { check: { port: number } } } } };
    const backends = ['web1', 'web2', 'web3'].map((n) => services[n]!);
    expect(backends.map((b) => b.environment?.ADDRESS).sort()).toEqual([...zone.records.www.A].sort());
    for (const b of backends) {
      expect(Number(b.environment?.PORT)).toBe(zone.records.www.pool.check.port);
      expect(b.volumes).toContain('./examples/compose/backend.mjs:/app/backend.mjs:ro');
      expect(b.command).toEqual(['node', '/app/backend.mjs']);
    }
  });

  const composeTool = toolPath('docker') && spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0 ? ['docker', 'compose'] : toolPath('docker-compose') ? ['docker-compose'] : undefined;
  if (!composeTool) console.warn("[rrdns tests] skipping 'docker compose config': neither the docker compose plugin nor docker-compose (Debian package docker-compose) is installed");
  it.skipIf(!composeTool)('is accepted by `docker compose config`', () => {
    const [cmd, ...pre] = composeTool!;
    const r = spawnSync(cmd!, [...pre, '-f', 'docker-compose.yml', 'config', '--services'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['rrdns', 'web1', 'web2', 'web3']);
  });

  it('its backend script answers /healthz and names itself, and exits 0 on SIGTERM', async () => {
    const port = await freePort('127.0.0.21');
    const web = await startBackend('127.0.0.21', port, 'web-test');
    const health = await fetch(`http://127.0.0.21:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    expect(await (await fetch(`http://127.0.0.21:${port}/`)).text()).toBe(`hello from web-test (127.0.0.21:${port})\n`);
    process.kill(web.pid, 'SIGTERM');
    expect(await web.exited).toEqual({ code: 0, signal: null });
  });
});
