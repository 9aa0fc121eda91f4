/**
 * `npm run bench:zones`: how long loading takes and how much memory it keeps,
 * for zones shaped to find non-linear costs. Each case is generated into a
 * temporary directory and loaded by the real loader (loadZoneDir: parse,
 * group, validate) in a child process of its own, so its memory figures
 * start clean: RSS growth, peak RSS and the heap retained after a full GC.
 * Pairs of cases 4x apart in size show whether time grows linearly.
 *
 * Bounded: every child is killed (by its PID) after CASE_TIMEOUT_MS, and the
 * temporary directories are removed. A benchmark, not a test: it prints figures.
 *
 *   npm run bench:zones [-- --only NAME]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ZONE_LIMIT_DEFAULTS, type ZoneLimits } from '../src/config/schema.ts';
import { formatIssue } from '../src/errors.ts';
import { loadNativeParser, loadZoneDir } from '../src/zone/load.ts';

await loadNativeParser();

const CASE_TIMEOUT_MS = 60_000;
const HEAD = (origin: string) => `$ORIGIN ${origin}.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\n`;
const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

interface Case {
  name: string;
  /** What loading should end in. */
  expect: 'loads' | 'refused';
  limits?: ZoneLimits;
  /** Writes the zone files into `dir`. */
  write: (dir: string) => void;
}

/** One master file with `n` records in all (3 in the head, the rest spread over names with 1 A each and some TXT). */
function bigZone(n: number): (dir: string) => void {
  return (dir) => {
    const parts = [HEAD('big.test')];
    for (let i = 0; i < n - 3; i++) parts.push(i % 4 === 3 ? `h${i >> 2} TXT "record ${i}"\n` : `h${i} A ${ip(i)}\n`);
    fs.writeFileSync(path.join(dir, 'big.test.zone'), parts.join(''));
  };
}

/** `count` zones of 10 records each, one master file per zone. */
function manyZones(count: number): (dir: string) => void {
  return (dir) => {
    for (let z = 0; z < count; z++) {
      let text = HEAD(`z${z}.test`);
      for (let i = 0; i < 7; i++) text += `${['www', 'mail', 'api', 'a', 'b', 'c', 'd'][i]} A ${ip(z * 8 + i)}\n`;
      fs.writeFileSync(path.join(dir, `z${z}.test.zone`), text);
    }
  };
}

/** A native YAML zone with `names` names of one A record each. */
function nativeZone(names: number): (dir: string) => void {
  return (dir) => {
    const parts = ['soa: { mname: ns1, rname: hostmaster, serial: 1 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.53 }\n'];
    for (let i = 0; i < names; i++) parts.push(`  n${i}: { A: ${ip(i)} }\n`);
    fs.writeFileSync(path.join(dir, 'native.test.yaml'), parts.join(''));
  };
}

/** One name holding `n` A records. */
function wideName(n: number): (dir: string) => void {
  return (dir) => {
    const parts = [HEAD('wide.test')];
    for (let i = 0; i < n; i++) parts.push(`www A ${ip(i)}\n`);
    fs.writeFileSync(path.join(dir, 'wide.test.zone'), parts.join(''));
  };
}

// 12 header + ("www.wide.test." = 15) + 4 question + 11 OPT, then 16 octets per A record.
const MOST_A_THAT_FIT = Math.floor((65_535 - 12 - 15 - 4 - 11) / 16);
const RAISED = { maxRecords: ZONE_LIMIT_DEFAULTS.maxRecords, maxRRsetRecords: 65_535 };

const CASES: Case[] = [
  { name: '2,500 zones x 10 records', expect: 'loads', write: manyZones(2_500) },
  { name: '10,000 zones x 10 records', expect: 'loads', write: manyZones(10_000) },
  { name: '1 zone, 250,000 records', expect: 'loads', write: bigZone(250_000) },
  { name: '1 zone, 1,000,000 records', expect: 'loads', write: bigZone(1_000_000) },
  { name: '1 zone, 1,000,001 records', expect: 'refused', write: bigZone(1_000_001) },
  { name: 'native YAML, 25,000 names', expect: 'loads', write: nativeZone(25_000) },
  { name: 'native YAML, 100,000 names', expect: 'loads', write: nativeZone(100_000) },
  { name: `1 name, ${MOST_A_THAT_FIT} A (most that fit)`, expect: 'loads', write: wideName(MOST_A_THAT_FIT) },
  { name: '1 name, 10,000 A (RRset limit)', expect: 'refused', write: wideName(10_000) },
  { name: '1 name, 10,000 A (size check)', expect: 'refused', limits: RAISED, write: wideName(10_000) },
  { name: '1 name, 40,000 A (size check)', expect: 'refused', limits: RAISED, write: wideName(40_000) },
];

interface Figures {
  loadMs: number;
  /** CPU time of the load (user + system): less noisy than wall time on a shared machine. */
  cpuMs: number;
  zones: number;
  records: number;
  issues: number;
  firstIssue?: string;
  rssDeltaMB: number;
  peakRssMB: number;
  heapRetainedMB: number;
}

const MB = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;

/** Child side: load `dir` once and print the figures as JSON. */
function measure(dir: string, limits: ZoneLimits | undefined): Figures {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rss0 = process.memoryUsage.rss();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const result = loadZoneDir(dir, limits ? { limits } : {});
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const rss1 = process.memoryUsage.rss();
  gc?.();
  const heap1 = process.memoryUsage().heapUsed;
  let records = 0;
  for (const z of result.zones) for (const n of z.nodes.values()) for (const r of n.rrsets.values()) records += r.records.length;
  const figures: Figures = {
    loadMs: Math.round(loadMs),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    zones: result.zones.length,
    records,
    issues: result.issues.length,
    firstIssue: result.issues[0] && formatIssue(result.issues[0]).replace(dir + path.sep, ''),
    rssDeltaMB: MB(rss1 - rss0),
    peakRssMB: MB(process.resourceUsage().maxRSS * 1024),
    heapRetainedMB: MB(heap1 - heap0),
  };
  // Keep the zones alive until after the last measurement.
  if (result.zones.length < 0) console.log(result);
  return figures;
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const limits = args[2] ? (JSON.parse(args[2]) as ZoneLimits) : undefined;
    process.stdout.write(JSON.stringify(measure(args[1]!, limits)) + '\n');
    return;
  }
  const only = args[0] === '--only' ? args[1] : undefined;
  const rows: string[][] = [['case', 'result', 'load ms', 'cpu ms', 'records', 'RSS +MB', 'peak RSS MB', 'heap kept MB']];
  const notes: string[] = [];
  let failed = false;
  for (const c of CASES) {
    if (only && !c.name.includes(only)) continue;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-bench-zones-'));
    try {
      c.write(dir);
      const child = spawnSync(process.execPath, ['--expose-gc', import.meta.filename, '--child', dir, c.limits ? JSON.stringify(c.limits) : ''], {
        encoding: 'utf8',
        timeout: CASE_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
      });
      if (child.status !== 0) {
        failed = true;
        rows.push([c.name, child.signal ? `killed (${child.signal}) after ${CASE_TIMEOUT_MS} ms` : `exit ${child.status}`, '', '', '', '', '', '']);
        notes.push(`${c.name}: ${child.stderr.split('\n').slice(0, 3).join(' ')}`);
        continue;
      }
      const f = JSON.parse(child.stdout.trim().split('\n').pop()!) as Figures;
      const outcome = f.issues === 0 ? 'loads' : 'refused';
      if (outcome !== c.expect) failed = true;
      rows.push([c.name, outcome === c.expect ? outcome : `${outcome} (expected ${c.expect})`, String(f.loadMs), String(f.cpuMs), String(f.records), String(f.rssDeltaMB), String(f.peakRssMB), String(f.heapRetainedMB)]);
      if (f.firstIssue) notes.push(`${c.name}: ${f.firstIssue}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => (i === 0 || i === 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  if (notes.length) console.log('\n' + notes.map((n) => `  ${n}`).join('\n'));
  console.log(`\nnode ${process.version}, ${os.cpus().length} CPUs; load = loadZoneDir (read, parse, group, validate), wall and CPU time; heap kept = after a full GC.`);
  if (failed) process.exitCode = 1;
}

main();
