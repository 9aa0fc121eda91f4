/**
 * `npm run bench:zones-reload`: 10,000 small zones (10 records each) served by
 * a real rrdns process, under a steady closed-loop query load whose every
 * query's latency is recorded. Prints p50/p99/worst latency with no reloads,
 * then while one zone is edited and reloaded (SIGHUP) again and again, and the
 * server's RSS after start-up and after 100 reloads.
 *
 * Bounded: each load phase runs for PHASE_MS (and at most MAX_QUERIES), every
 * wait for a reload is bounded, rrdns is stopped by its PID, the temporary
 * directory is removed. A benchmark, not a test: it prints figures.
 *
 * `--trigger watch` (the default) edits the file and lets the directory
 * watcher notice it (it names the file, and the reload stats and parses that
 * one alone); `--trigger sighup` sends SIGHUP after each edit, which makes the
 * reload stat every file.
 *
 *   npm run bench:zones-reload [-- --zones N] [--state-dir off] [--trigger watch|sighup] [--node-options '--max-semi-space-size=2'] [--node-args '--no-compact'] [--gc-trace off]
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRrdns, startScriptNodeFlags, type RrdnsProcess } from '../test/support/spawn.ts';
import { parseGcTraceLine, type GcTraceLine } from './measure.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const ZONES = Number(opt('zones', '10000'));
const STATE = opt('state-dir', 'temp');
const PHASE_MS = Number(opt('phase-ms', '5000'));
const EDITS = Number(opt('edits', '20'));
const RELOADS = Number(opt('reloads', '100'));
const TRIGGER = opt('trigger', 'watch') === 'sighup' ? 'sighup' : 'watch';
/** V8 flags for the rrdns process (NODE_OPTIONS), e.g. a smaller young generation. */
const NODE_OPTIONS = opt('node-options', '');
/**
 * rrdns runs with --trace-gc (`--gc-trace off` leaves it out) and each phase
 * counts the pauses of its collections, so that a slow answer can be told
 * from the client's own noise: a pause of rrdns's answering thread holds every
 * answer due meanwhile.
 */
const GC_TRACE = opt('gc-trace', 'on') !== 'off';
/**
 * Node/V8 flags on rrdns's command line, for those NODE_OPTIONS refuses (e.g.
 * '--no-compact'). By default the ones `npm start` gives node (package.json's
 * start script: the young-generation cap), so the figures are those of what
 * an operator runs; `--node-args ''` runs node with none.
 */
const NODE_ARGS = args.includes('--node-args') ? opt('node-args', '').split(' ').filter(Boolean) : startScriptNodeFlags();

/** A collection of rrdns's, any thread, and when the client read its line (performance.now()). */
type GcPause = GcTraceLine & { at: number };
const gcPauses: GcPause[] = [];
function onGcLine(line: string): void {
  const g = parseGcTraceLine(line);
  if (g) gcPauses.push({ at: performance.now(), ...g });
}
/** The collections between `from` and `to`: how many of each kind, the longest pause, how many over 10 ms. */
function gcSummary(from: number, to: number): string {
  const inPhase = gcPauses.filter((p) => p.at >= from && p.at <= to);
  if (!GC_TRACE) return 'not traced';
  const kinds = new Map<string, number>();
  for (const p of inPhase) kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
  const longest = inPhase.reduce<GcPause | undefined>((m, p) => (m === undefined || p.ms > m.ms ? p : m), undefined);
  return `${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}; longest pause ${(longest?.ms ?? 0).toFixed(1)} ms${longest ? ` (${longest.kind}: ${longest.why})` : ''}, ${inPhase.filter((p) => p.ms > 10).length} over 10 ms`;
}
/** Queries in flight at once (closed loop: each answer sends the next query). */
const IN_FLIGHT = 4;
const MAX_QUERIES = 2_000_000;
/** A query unanswered this long is counted lost (and its slot re-used). */
const LOST_MS = 1000;
const RELOAD_WAIT_MS = 30_000;

const HEAD = (origin: string, serial: number) => `$ORIGIN ${origin}.\n$TTL 300\n@ SOA ns1 hostmaster ${serial} 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.53\n`;
const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const LABELS = ['www', 'mail', 'api', 'a', 'b', 'c', 'd'];

function zoneText(z: number, serial = 1, edit = 0): string {
  let text = HEAD(`z${z}.test`, serial);
  for (let i = 0; i < 7; i++) text += `${LABELS[i]} A ${i === 0 && edit > 0 ? `198.51.100.${edit % 250}` : ip(z * 8 + i)}\n`;
  return text;
}

/** A DNS query for `name` A, id 0 (patched per send). */
function query(name: string): Buffer {
  const labels = name.split('.').filter(Boolean);
  const q = Buffer.alloc(12 + labels.reduce((n, l) => n + l.length + 1, 1) + 4);
  q.writeUInt16BE(0x0100, 2); // RD
  q.writeUInt16BE(1, 4);
  let o = 12;
  for (const l of labels) {
    q[o++] = l.length;
    o += q.write(l, o, 'ascii');
  }
  q[o++] = 0;
  q.writeUInt16BE(1, o);
  q.writeUInt16BE(1, o + 2);
  return q;
}

interface Latencies {
  answered: number;
  lost: number;
  p50: number;
  p99: number;
  p999: number;
  worst: number;
  /** Answers that took longer than 10 ms. */
  over10: number;
}

/** Closed-loop load for `ms`: IN_FLIGHT queries out at a time over one socket, each answer's latency kept. */
async function load(port: number, ms: number, during?: () => Promise<void>): Promise<Latencies> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const queries = Array.from({ length: 256 }, (_, i) => query(`${LABELS[i % LABELS.length]}.z${(i * 7919) % ZONES}.test`));
  const sentAt = new Float64Array(65536);
  // Preallocated: a growing array of 400,000 numbers is copied as it grows, and the client's own
  // collections would show up as rrdns's latency.
  const samples = new Float64Array(MAX_QUERIES);
  let count = 0;
  let lost = 0;
  let id = 1;
  let next = 0;
  const deadline = performance.now() + ms;
  let stop = false;
  const send = () => {
    if (stop || count + lost >= MAX_QUERIES || performance.now() >= deadline) return;
    const q = queries[next++ & 255]!;
    id = (id + 1) & 0xffff || 1;
    q.writeUInt16BE(id, 0);
    sentAt[id] = performance.now();
    sock.send(q, port, '127.0.0.1');
  };
  sock.on('message', (msg) => {
    const now = performance.now();
    const rid = msg.readUInt16BE(0);
    const t = sentAt[rid]!;
    if (t === 0) return;
    sentAt[rid] = 0;
    samples[count++] = now - t;
    send();
  });
  // Lost queries are replaced, so the load stays at IN_FLIGHT.
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (let i = 0; i < sentAt.length; i++) {
      const t = sentAt[i]!;
      if (t !== 0 && now - t > LOST_MS) {
        sentAt[i] = 0;
        lost++;
        send();
      }
    }
  }, 250);
  for (let i = 0; i < IN_FLIGHT; i++) send();
  const work = during ? during() : Promise.resolve();
  await new Promise((r) => setTimeout(r, ms));
  await work;
  stop = true;
  clearInterval(sweeper);
  await new Promise((r) => setTimeout(r, 50));
  sock.close();
  const sorted = samples.subarray(0, count).sort();
  const at = (p: number) => round(sorted[Math.min(count - 1, Math.floor(count * p))] ?? NaN);
  let over10 = 0;
  for (let i = count - 1; i >= 0 && sorted[i]! > 10; i--) over10++;
  return { answered: count, lost, p50: at(0.5), p99: at(0.99), p999: at(0.999), worst: round(sorted[count - 1] ?? NaN), over10 };
}

/**
 * The machine's own noise: the longest gap between turns of an idle event
 * loop in a child process that does nothing else, over `ms`. On a shared,
 * loaded machine this alone exceeds 10 ms; latencies below it are not rrdns's.
 */
async function schedulingNoise(ms: number): Promise<number> {
  const { execFileSync } = await import('node:child_process');
  const script = `let last=performance.now(),worst=0;const iv=setInterval(()=>{const t=performance.now();worst=Math.max(worst,t-last);last=t},0);setTimeout(()=>{clearInterval(iv);console.log(worst.toFixed(2))},${ms})`;
  return Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: ms + 10_000 }).trim());
}

const round = (n: number) => Math.round(n * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The server's RSS in MB, and its two parts: anonymous memory (heaps, stacks,
 * buffers: what rrdns's own data costs) and file pages (the node binary's code
 * and data that have been read: shared with every other node process, and
 * what the kernel drops first under pressure).
 */
function rssMB(pid: number): { total: number; anon: number; file: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  const mb = (k: number) => Math.round(k / 1024);
  return { total: mb(kB('VmRSS')), anon: mb(kB('RssAnon')), file: mb(kB('RssFile') + kB('RssShmem')) };
}
const rssText = (r: { total: number; anon: number; file: number }) => `${r.total} (anon ${r.anon} + file ${r.file})`;

/** The reload lines of the trigger this run uses (SIGHUP, or the watcher's 'file change'). */
const linesOf = (p: RrdnsProcess) =>
  p.logs.filter((l) => (l.msg === 'zones reloaded' || String(l.msg).startsWith('zone reload')) && l.trigger === (TRIGGER === 'sighup' ? 'SIGHUP' : 'file change'));

/** Edits z0, sends SIGHUP (or lets the watcher see it), waits (bounded) for the reload's log line; returns its fields. */
async function editAndReload(p: RrdnsProcess, dir: string, n: number): Promise<Record<string, unknown>> {
  const before = linesOf(p).length;
  fs.writeFileSync(path.join(dir, 'z0.test.zone'), zoneText(0, 1 + n, n));
  if (TRIGGER === 'sighup') process.kill(p.pid, 'SIGHUP');
  const until = Date.now() + RELOAD_WAIT_MS;
  while (linesOf(p).length <= before) {
    if (Date.now() > until) throw new Error(`reload ${n} did not finish within ${RELOAD_WAIT_MS} ms`);
    await sleep(5);
  }
  return linesOf(p).at(-1)!;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-bench-reload-'));
  let rrdns: RrdnsProcess | undefined;
  try {
    for (let z = 0; z < ZONES; z++) fs.writeFileSync(path.join(dir, `z${z}.test.zone`), zoneText(z));
    const t0 = performance.now();
    rrdns = await startRrdns({ zonesDir: dir, args: ['--admin', 'off', ...(STATE === 'off' ? ['--state-dir', 'off'] : [])], startTimeoutMs: 60_000, ...(NODE_OPTIONS ? { env: { ...process.env, NODE_OPTIONS } } : {}), nodeArgs: [...NODE_ARGS, ...(GC_TRACE ? ['--trace-gc'] : [])], onOtherLine: onGcLine });
    const startMs = Math.round(performance.now() - t0);
    const startLine = rrdns.logs.find((l) => l.msg === 'rrdns listening');
    const rssStart = rssMB(rrdns.pid);
    // Warm-up: compile the answers the load asks for.
    await load(rrdns.port, 1000);
    const noiseBefore = await schedulingNoise(PHASE_MS);
    const quietFrom = performance.now();
    const quiet = await load(rrdns.port, PHASE_MS);
    const quietTo = performance.now();
    const rssLoaded = rssMB(rrdns.pid);
    const reloadMs: number[] = [];
    const parsed: number[] = [];
    const looked: number[] = [];
    const duringFrom = performance.now();
    const during = await load(rrdns.port, PHASE_MS, async () => {
      for (let n = 1; n <= EDITS; n++) {
        const line = await editAndReload(rrdns!, dir, n);
        reloadMs.push(Number(line.ms));
        parsed.push(Number(line.parsed));
        looked.push(Number(line.looked));
        await sleep(Math.max(0, PHASE_MS / EDITS - 50));
      }
    });
    const duringTo = performance.now();
    for (let n = EDITS + 1; n <= EDITS + RELOADS; n++) {
      const line = await editAndReload(rrdns, dir, n);
      reloadMs.push(Number(line.ms));
    }
    await sleep(500);
    const rssAfter = rssMB(rrdns.pid);
    const row = (name: string, l: Latencies) => `${name.padEnd(26)} ${String(l.answered).padStart(8)} ${String(l.lost).padStart(5)} ${String(l.p50).padStart(7)} ${String(l.p99).padStart(7)} ${String(l.p999).padStart(7)} ${String(l.worst).padStart(7)} ${String(l.over10).padStart(7)}`;
    console.log(`rrdns with ${ZONES} zones x 10 records, reloads by ${TRIGGER === 'sighup' ? 'SIGHUP (every file stat\'ed)' : 'the directory watcher (the edited file named)'}, state dir ${STATE === 'off' ? 'off' : 'on'}${NODE_OPTIONS ? `, NODE_OPTIONS=${NODE_OPTIONS}` : ''}${NODE_ARGS.length ? `, node ${NODE_ARGS.join(' ')}` : ', node without flags'}; start-up ${startMs} ms, start-up log line ${JSON.stringify(startLine ?? {}).length} bytes`);
    console.log(`${'phase'.padEnd(26)} ${'answered'.padStart(8)} ${'lost'.padStart(5)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'p99.9'.padStart(7)} ${'worst'.padStart(7)} ${'>10 ms'.padStart(7)}`);
    console.log(row('no reloads', quiet));
    console.log(row(`${EDITS} edits + reloads`, during));
    const sorted = [...reloadMs].sort((a, b) => a - b);
    console.log(`reloads: ${reloadMs.length}, wall ms per reload median ${sorted[Math.floor(sorted.length / 2)]} max ${sorted.at(-1)}; files stat'ed per reload: ${[...new Set(looked)].join(',')}, parsed: ${[...new Set(parsed)].join(',')}`);
    console.log(`rrdns's collections (--trace-gc), no reloads: ${gcSummary(quietFrom, quietTo)}`);
    console.log(`rrdns's collections (--trace-gc), ${EDITS} edits + reloads: ${gcSummary(duringFrom, duringTo)}`);
    console.log(`scheduling noise: an idle Node process on this machine saw a longest event-loop gap of ${noiseBefore} ms over ${PHASE_MS} ms`);
    console.log(`RSS MB: after start-up ${rssText(rssStart)}, after query load ${rssText(rssLoaded)}, after ${EDITS + RELOADS} reloads ${rssText(rssAfter)}`);
    console.log(`node ${process.version}, ${os.cpus().length} CPUs, closed loop of ${IN_FLIGHT} queries in flight from one socket; latency is measured by the client (its own event loop included). Measured under contention.`);
  } finally {
    await rrdns?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
