/**
 * `type: icmp` checks with the real fping: loopback addresses answer (IPv4 and
 * IPv6), addresses inside a network namespace this test creates answer or
 * not as the test says (test/support/netns.ts). Covers up, down after `fall`
 * misses and back after `rise`, one fping for every target, a target added
 * and removed (by setTargets and by a real server's reload), fping killed by
 * PID and restarted, fping missing, and close() leaving no fping behind.
 * No timing assertions: every wait is a bounded poll for a condition.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckSchema, type CheckConfigInput } from '../../src/config/health-check.ts';
import { createChecker, type CheckOutcome } from '../../src/health/checkers.ts';
import type { IcmpLogLevel } from '../../src/health/icmp/icmp-checker.ts';
import { HealthMonitor, type MemberHealth, type TargetState } from '../../src/health/monitor.ts';
import { makeTarget, type CheckTarget } from '../../src/health/target.ts';
import { createWorkerChecker } from '../../src/health/worker-checker.ts';
import { waitFor } from '../support/backends.ts';
import { dig } from '../support/dig.ts';
import { createNetns, netnsUnavailable, type Netns } from '../support/netns.ts';
import { captureLogger, startTestServer } from '../support/server.ts';
import { REPO_ROOT, RRDNS_MAIN, tempDir } from '../support/spawn.ts';

/** Polls an async condition every 50 ms, at most 15 s. */
async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after 15000ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The one fping child, when there is exactly one. */
function onlyFping(): FpingChild | undefined {
  const c = fpingChildren();
  return c.length === 1 ? c[0] : undefined;
}

interface FpingChild {
  pid: number;
  args: string[];
}

/** The fping processes this test process started (its children named fping), from /proc. */
function fpingChildren(): FpingChild[] {
  const out: FpingChild[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'latin1');
      // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm !== 'fping' || ppid !== process.pid) continue;
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (state === 'Z') continue;
      out.push({ pid: Number(entry), args: fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0').filter(Boolean).slice(1) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const BASE: CheckConfigInput = { type: 'icmp', interval: '300ms', timeout: '200ms', fall: 2, rise: 2 };
const icmpTarget = (address: string, input: CheckConfigInput = {}): CheckTarget => makeTarget(address, 'www.example.test', CheckSchema.parse({ ...BASE, ...input }));

interface Harness {
  monitor: HealthMonitor;
  state(t: CheckTarget): TargetState;
  results: Map<string, CheckOutcome[]>;
  changes: { key: string; to: MemberHealth; consecutiveFail: number; consecutiveOk: number; reason: string }[];
  logs: { level: IcmpLogLevel; msg: string; fields: Record<string, unknown> }[];
  close(): Promise<void>;
}

function harness(targets: CheckTarget[], locate?: () => string | undefined): Harness {
  const logs: Harness['logs'] = [];
  const checker = createChecker({ icmp: { log: (level, msg, fields) => logs.push({ level, msg, fields }), sweepMs: 100, ...(locate ? { locate } : {}) } });
  const results = new Map<string, CheckOutcome[]>();
  const changes: Harness['changes'] = [];
  const monitor = new HealthMonitor({
    check: checker.check,
    onResult: (s, o) => {
      const list = results.get(s.key) ?? [];
      list.push(o);
      results.set(s.key, list);
    },
    onChange: (s, _prev, reason) => changes.push({ key: s.key, to: s.health, consecutiveFail: s.consecutiveFail, consecutiveOk: s.consecutiveOk, reason }),
  });
  monitor.setTargets(targets);
  return {
    monitor,
    state: (t) => monitor.state(t.key)!,
    results,
    changes,
    logs,
    async close() {
      await monitor.close();
      await checker.close();
      await checker.close();
    },
  };
}

const unavailable = netnsUnavailable();

describe.skipIf(unavailable !== undefined)(`icmp checks with fping${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let ns: Netns;
  beforeAll(() => {
    ns = createNetns();
  });
  afterAll(() => ns?.close());

  it('loopback and the namespace peer answer, the silent addresses do not (IPv4 and IPv6), all through one fping; close() stops it', async () => {
    const up = ['127.0.0.1', '127.0.0.2', '::1', ns.peer4, ns.peer6].map((a) => icmpTarget(a));
    const down = [ns.silent4, ns.silent6].map((a) => icmpTarget(a));
    const h = harness([...up, ...down]);
    try {
      await h.monitor.firstRound();
      await waitFor(() => [...up, ...down].every((t) => h.state(t).checks >= 3), 15_000, 'three checks of every target');
      for (const t of up) expect(h.state(t), t.address).toMatchObject({ health: 'up', lastOutcome: { ok: true, detail: expect.stringMatching(/^ICMP echo reply in [\d.]+ms$/) } });
      for (const t of down) expect(h.state(t), t.address).toMatchObject({ health: 'down', lastOutcome: { ok: false, detail: expect.stringMatching(/^no ICMP echo reply within 200ms/) } });
      const children = fpingChildren();
      expect(children).toHaveLength(1);
      expect(new Set(children[0]!.args.slice(children[0]!.args.indexOf('-i') + 2))).toEqual(new Set([...up, ...down].map((t) => t.address)));
    } finally {
      await h.close();
    }
    expect(fpingChildren()).toEqual([]);
  });

  it('a host that stops answering goes down after `fall` misses and comes back after `rise` replies (IPv4 and IPv6)', async () => {
    const targets = [ns.answering4, ns.answering6].map((a) => icmpTarget(a, { fall: 3, rise: 2 }));
    const h = harness(targets);
    try {
      await waitFor(() => targets.every((t) => h.state(t).checks >= 2 && h.state(t).health === 'up'), 15_000, 'both up');
      ns.stopAnswering(ns.answering4);
      ns.stopAnswering(ns.answering6);
      await waitFor(() => targets.every((t) => h.state(t).health === 'down'), 15_000, 'both down');
      for (const t of targets) {
        const flip = h.changes.find((c) => c.key === t.key && c.to === 'down')!;
        expect(flip, t.address).toMatchObject({ consecutiveFail: 3, reason: expect.stringMatching(/^3 consecutive failures: no ICMP echo reply within 200ms/) });
      }
      ns.startAnswering(ns.answering4);
      ns.startAnswering(ns.answering6);
      await waitFor(() => targets.every((t) => h.state(t).health === 'up'), 15_000, 'both back up');
      for (const t of targets) {
        const back = h.changes.filter((c) => c.key === t.key && c.to === 'up').at(-1)!;
        expect(back, t.address).toMatchObject({ consecutiveOk: 2, reason: expect.stringMatching(/^2 consecutive successes: ICMP echo reply/) });
      }
    } finally {
      ns.startAnswering(ns.answering4);
      ns.startAnswering(ns.answering6);
      await h.close();
    }
  });

  it('a target added restarts fping with it, the others keep their state; a target removed leaves fping', async () => {
    const lo = icmpTarget('127.0.0.1');
    const added = icmpTarget(ns.peer6);
    const h = harness([lo]);
    try {
      await waitFor(() => h.state(lo).checks >= 2, 15_000, 'two checks of 127.0.0.1');
      const before = fpingChildren();
      expect(before.map((c) => c.args.at(-1))).toEqual(['127.0.0.1']);
      const since = h.state(lo).since;
      h.monitor.setTargets([lo, added]);
      await waitFor(() => (h.state(added)?.checks ?? 0) >= 1, 15_000, 'the added target checked');
      expect(h.state(added)).toMatchObject({ health: 'up', lastOutcome: { ok: true } });
      await waitFor(() => onlyFping()?.args.includes(ns.peer6) === true, 5000, 'one fping, with the added address');
      const after = onlyFping()!;
      expect(after.pid).not.toBe(before[0]!.pid);
      expect(after.args).toEqual(expect.arrayContaining(['127.0.0.1', ns.peer6]));
      const checks = h.state(lo).checks;
      await waitFor(() => h.state(lo).checks >= checks + 2, 15_000, 'two more checks of 127.0.0.1');
      expect(h.state(lo)).toMatchObject({ health: 'up', since, lastOutcome: { ok: true } });
      expect(h.changes.filter((c) => c.key === lo.key)).toEqual([]);

      h.monitor.setTargets([lo]);
      await waitFor(() => onlyFping()?.args.at(-1) === '127.0.0.1', 15_000, 'fping without the removed address');
      expect(h.state(lo).health).toBe('up');
    } finally {
      await h.close();
    }
    expect(fpingChildren()).toEqual([]);
  });

  it('fping killed by PID is restarted (with a growing delay, logged); meanwhile probes fail saying why; then checks pass again', async () => {
    const targets = ['127.0.0.1', '::1'].map((a) => icmpTarget(a, { fall: 100 }));
    const h = harness(targets);
    try {
      await waitFor(() => targets.every((t) => h.state(t).checks >= 1) && onlyFping() !== undefined, 15_000, 'first checks');
      // Killed again as soon as it is back: the restart delay doubles (100, 200, 400, 800 ms) past the 200 ms timeout.
      let pid = onlyFping()!.pid;
      for (let kill = 0; kill < 4; kill++) {
        process.kill(pid, 'SIGKILL');
        await waitFor(() => (onlyFping()?.pid ?? pid) !== pid, 15_000, `fping restarted after kill ${kill + 1}`);
        pid = onlyFping()!.pid;
      }
      const deaths = h.logs.filter((l) => l.level === 'error' && /fping/.test(l.msg));
      expect(deaths.map((d) => d.fields.reason)).toEqual(['fping was killed by SIGKILL', 'fping was killed by SIGKILL', 'fping was killed by SIGKILL', 'fping was killed by SIGKILL']);
      expect(deaths.map((d) => d.fields.restartInMs)).toEqual([100, 200, 400, 800]);
      const failed = targets.flatMap((t) => h.results.get(t.key) ?? []).filter((o) => !o.ok);
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.map((o) => o.detail)).toContain('no ICMP echo reply within 200ms: fping was killed by SIGKILL; restarting it in 800ms');
      const counts = targets.map((t) => h.state(t).checks);
      await waitFor(() => targets.every((t, i) => h.state(t).checks >= counts[i]! + 2 && h.state(t).consecutiveOk >= 2), 15_000, 'passing checks again');
      expect(targets.map((t) => h.state(t).health)).toEqual(['up', 'up']);
    } finally {
      await h.close();
    }
    expect(fpingChildren()).toEqual([]);
  });

  it('on the health-check worker thread: fping ends with a worker that dies, the restarted worker starts a new one; close leaves none', async () => {
    const logs: unknown[][] = [];
    const worker = createWorkerChecker({ onLog: (...a) => logs.push(a) });
    const t = icmpTarget('::1');
    try {
      expect(await worker.check(t, new AbortController().signal)).toMatchObject({ ok: true });
      const first = onlyFping();
      expect(first?.args.at(-1)).toBe('::1');
      await worker.workerForTest()!.terminate();
      // Its pipes closed with the thread: fping's next line ends it (SIGPIPE). It stays a zombie of this process.
      await waitFor(() => fpingChildren().length === 0, 5000, 'fping gone with its worker');
      await waitFor(() => worker.restarts === 1 && worker.workerForTest() !== undefined, 15_000, 'the worker restarted');
      let outcome = await worker.check(t, new AbortController().signal);
      // The new worker's first probe may end while fping starts (or on the monitor-less path's own timeout); the next passes.
      if (!outcome.ok) outcome = await worker.check(t, new AbortController().signal);
      expect(outcome).toMatchObject({ ok: true, detail: expect.stringMatching(/^ICMP echo reply in/) });
      expect(onlyFping()?.pid).not.toBe(first?.pid);
    } finally {
      await worker.close();
      await worker.close();
    }
    await waitFor(() => fpingChildren().length === 0, 5000, 'no fping after close');
    expect(logs).toEqual([]);
  });

  it('fping missing: probes fail with a message naming it, logged; nothing is spawned', async () => {
    const t = icmpTarget('127.0.0.1');
    const h = harness([t], () => undefined);
    try {
      await waitFor(() => h.state(t).checks >= 1, 15_000, 'a check');
      expect(h.state(t)).toMatchObject({ health: 'down', lastOutcome: { ok: false, detail: expect.stringContaining('check type icmp needs fping') } });
      expect(h.logs[0]).toMatchObject({ level: 'error', fields: { reason: expect.stringContaining('apt-get install fping') } });
      expect(fpingChildren()).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('the real server: only the members that answer are served; a reload adds one (fping restarted with it) and removes it again; close leaves no fping', async () => {
    const zone = (a: string[], aaaa: string[]) =>
      [
        'origin: example.test',
        'soa: { mname: ns1, rname: hostmaster, serial: 1 }',
        'records:',
        '  "@": { NS: [ns1] }',
        '  ns1: { A: 127.0.0.53 }',
        '  www:',
        `    A: [${a.join(', ')}]`,
        `    AAAA: [${aaaa.map((x) => `'${x}'`).join(', ')}]`,
        '    pool:',
        '      check: { type: icmp, interval: 500ms, timeout: 200ms, fall: 1, rise: 1 }',
        '',
      ].join('\n');
    const { logger } = captureLogger('warn');
    const s = await startTestServer({ 'example.test.yaml': zone(['127.0.0.1', ns.silent4], ['::1', ns.silent6]) }, {}, logger);
    try {
      const served = async (type: 'A' | 'AAAA') => (await dig(s.port, ['www.example.test', type])).answer.map((r) => r.data).sort();
      // Usually already so when the server starts answering; but a first round that outlasts its bound (the
      // worker thread and fping starting on a busy machine) leaves members provisionally up until their check is in.
      await until(async () => (await served('A')).join() === '127.0.0.1' && (await served('AAAA')).join() === '::1', 'only the answering members served');
      // (A first check can also end on the monitor's guard while the worker thread is still starting; the next is fping's.)
      const downs = () => s.server.monitor.states().filter((x) => x.health === 'down').map((x) => [x.address, x.lastOutcome?.detail]);
      await waitFor(() => downs().every(([, d]) => d === 'no ICMP echo reply within 200ms'), 15_000, 'the silent members failing on fping');
      expect(downs()).toEqual([
        [ns.silent4, 'no ICMP echo reply within 200ms'],
        [ns.silent6, 'no ICMP echo reply within 200ms'],
      ]);
      expect(fpingChildren()).toHaveLength(1);

      fs.writeFileSync(path.join(s.dir, 'example.test.yaml'), zone(['127.0.0.1', ns.silent4, ns.peer4], ['::1', ns.silent6]));
      await s.server.reload('test');
      await until(async () => (await served('A')).join() === ['127.0.0.1', ns.peer4].sort().join(), 'the added member served');
      await waitFor(() => onlyFping()?.args.includes(ns.peer4) === true, 5000, 'fping with the added member');

      fs.writeFileSync(path.join(s.dir, 'example.test.yaml'), zone(['127.0.0.1', ns.silent4], ['::1', ns.silent6]));
      await s.server.reload('test');
      await until(async () => (await served('A')).join() === '127.0.0.1', 'the removed member no longer served');
      await waitFor(() => onlyFping()?.args.includes(ns.peer4) === false, 15_000, 'fping without the removed member');
    } finally {
      await s.close();
    }
    await waitFor(() => fpingChildren().length === 0, 5000, 'no fping after close');
  });
});

describe('icmp checks without fping', () => {
  const zone = (check: string) =>
    ['origin: example.test', 'soa: { mname: ns1, rname: hostmaster, serial: 1 }', 'records:', '  "@": { NS: [ns1] }', '  ns1: { A: 127.0.0.53 }', '  www:', '    A: [127.0.0.1]', `    pool: { check: ${check} }`, ''].join('\n');

  it('the server refuses to start with icmp zones, and a reload to icmp zones keeps the zones it serves, naming fping', async () => {
    const saved = process.env.PATH;
    try {
      process.env.PATH = '/nonexistent';
      await expect(startTestServer({ 'example.test.yaml': zone('{ type: icmp }') })).rejects.toThrow(/check type icmp needs fping/);
      process.env.PATH = saved;
      const s = await startTestServer({ 'example.test.yaml': zone('{ type: tcp, port: 9 }') });
      try {
        fs.writeFileSync(path.join(s.dir, 'example.test.yaml'), zone('{ type: icmp }'));
        process.env.PATH = '/nonexistent';
        const r = await s.server.reload('test');
        process.env.PATH = saved;
        expect(r).toMatchObject({ ok: false, issues: [{ message: expect.stringContaining('check type icmp needs fping') }] });
        expect((await dig(s.port, ['ns1.example.test', 'A'])).answer.map((x) => x.data)).toEqual(['127.0.0.53']);
      } finally {
        process.env.PATH = saved;
        await s.close();
      }
    } finally {
      process.env.PATH = saved;
    }
  });

  it('rrdns check refuses a zone with icmp checks, naming fping, when it is not on PATH; passes with it', () => {
    const dir = tempDir('icmp-zones');
    fs.writeFileSync(
      path.join(dir, 'example.test.yaml'),
      ['origin: example.test', 'soa: { mname: ns1, rname: hostmaster, serial: 1 }', 'records:', '  "@": { NS: [ns1] }', '  ns1: { A: 127.0.0.53 }', '  www:', '    A: [127.0.0.1]', '    pool: { check: { type: icmp } }', ''].join('\n'),
    );
    const without = spawnSync(process.execPath, [RRDNS_MAIN, 'check', dir], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
    expect(without.status).toBe(1);
    expect(without.stderr).toMatch(/^rrdns check: check type icmp needs fping .* no executable fping is on PATH \(\/nonexistent\): install it \(Debian\/Ubuntu: apt-get install fping\)\n$/);
    const fping = spawnSync('sh', ['-c', 'command -v fping'], { encoding: 'utf8' }).stdout.trim();
    if (fping === '') return;
    const withIt = spawnSync(process.execPath, [RRDNS_MAIN, 'check', dir], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(withIt.status).toBe(0);
    expect(withIt.stdout).toContain('icmp echo (layer 3: host up, service not checked; an echo every 1s), every 5s, timeout 2s, fall 3, rise 2');
  });
});
