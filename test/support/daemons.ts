/**
 * Real peers for tests: Knot (the reference authoritative server) and Unbound
 * (a recursive resolver), each started on a free loopback port in a temp dir,
 * waited for with a bounded number of probes, and stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { dig } from './dig.ts';
import { toolPath } from './tools.ts';

export interface Daemon {
  port: number;
  dir: string;
  close(): Promise<void>;
}

/** A port free for both UDP and TCP on 127.0.0.1. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise<number>((r) => udp.bind(0, '127.0.0.1', () => r(udp.address().port)));
    const tcpOk = await new Promise<boolean>((r) => {
      const srv = net.createServer();
      srv.once('error', () => r(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => r(true)));
    });
    udp.close();
    if (tcpOk) return port;
  }
  throw new Error('no free port found in 20 attempts');
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      const done = () => {
        fs.rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => {
        clearTimeout(kill);
        done();
      });
      child.kill('SIGTERM');
    });
}

/** Polls with dig until the daemon answers `probe` (bounded), or throws with its stderr. */
async function waitForAnswer(port: number, probe: string[], child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}: ${stderr()}`);
    try {
      const r = await dig(port, [...probe, '+time=1']);
      if (r.status) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`daemon did not answer on port ${port}: ${stderr()}`);
}

/** Knot serving one zone from a master file, no DNSSEC, nothing written back. */
export async function startKnot(zone: string, masterFileText: string): Promise<Daemon> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-knot-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, `${zone}.zone`), masterFileText);
  fs.writeFileSync(
    path.join(dir, 'knot.conf'),
    `server:
    listen: 127.0.0.1@${port}
    rundir: ${dir}
database:
    storage: ${dir}
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: ${dir}
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: ${zone}
    file: ${dir}/${zone}.zone
`,
  );
  let stderr = '';
  const child = spawn(toolPath('knotd') ?? 'knotd', ['-c', path.join(dir, 'knot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => (stderr += d));
  const close = stopper(child, dir);
  try {
    await waitForAnswer(port, [zone, 'SOA'], child, () => stderr);
  } catch (e) {
    await close();
    throw e;
  }
  return { port, dir, close };
}

/**
 * Unbound as a recursive resolver whose only way out is a stub zone pointing
 * at 127.0.0.1@`authPort`; every other name is answered locally, so it never
 * sends a packet off loopback.
 */
export async function startUnbound(stubZone: string, authPort: number): Promise<Daemon> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-unbound-'));
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, 'unbound.conf'),
    `server:
    interface: 127.0.0.1@${port}
    port: ${port}
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "${dir}"
    pidfile: "${dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    qname-minimisation: yes
    qname-minimisation-strict: no
    module-config: "iterator"
    harden-referral-path: no
    num-threads: 1
    so-reuseport: no
    local-zone: "." refuse
    local-zone: "${stubZone}." transparent
    root-hints: ""
stub-zone:
    name: "${stubZone}."
    stub-addr: 127.0.0.1@${authPort}
    stub-first: no
remote-control:
    control-enable: no
`,
  );
  let stderr = '';
  const child = spawn(toolPath('unbound') ?? 'unbound', ['-d', '-c', path.join(dir, 'unbound.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => (stderr += d));
  const close = stopper(child, dir);
  try {
    await waitForAnswer(port, ['+recurse', stubZone, 'SOA'], child, () => stderr);
  } catch (e) {
    await close();
    throw e;
  }
  return { port, dir, close };
}
