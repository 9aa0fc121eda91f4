/**
 * Run as its own process by test/integration/answer-alloc.test.ts: answers
 * ANSWERS datagrams through QueryPipeline.answerDatagram (or, with
 * `handle`, through handle, which makes a Buffer per answer: the control)
 * over the answer fixture (static names, a health-checked pool with
 * rotation, resolver demand, ECS, NXDOMAIN, errors; RRL and cookies on),
 * after a warm-up, and prints one JSON line: the heap octets allocated per
 * answer and the garbage collections seen while answering.
 *
 * Run with a young generation large enough (--max-semi-space-size) that
 * the measured loop needs no collection: then heapUsed after minus before is
 * exactly what the loop allocated, and the GC count says whether that held.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { answerFixture, QUERY_KINDS } from './answer-fixture.ts';
import { QueryView } from '../../src/wire/query.ts';
import { Peer } from '../../src/zone/address.ts';

const mode = process.argv[2] === 'handle' ? 'handle' : 'datagram';
const ANSWERS = Math.min(Number(process.argv[3] ?? 200_000) || 200_000, 2_000_000);
const SOURCES = 256;

const fx = answerFixture();
await fx.warm();
const view = new QueryView();
const peer = new Peer();
const out = Buffer.alloc(64 * 1232);
const only = process.argv[4];
const kinds = Object.entries(QUERY_KINDS)
  .filter(([name]) => only === undefined || name === only)
  .map(([, make]) => make());
// Different letter case for the same names: each spelling its own hot-table entry, same plans.
if (only === undefined) {
  kinds.push(Buffer.from(kinds[0]!), Buffer.from(kinds[1]!));
  kinds.at(-2)![13] = 0x57;
  kinds.at(-1)![13] = 0x50;
}

let bytes = 0;
function run(n: number): void {
  for (let i = 0; i < n; i++) {
    const msg = kinds[i % kinds.length]!;
    peer.setWords(4, (10 << 24) | ((i % SOURCES) << 8) | 9, 0, 0, 0, 1024 + (i & 4095));
    if (mode === 'datagram') {
      bytes += fx.pipeline.answerDatagram(msg, msg.length, view, peer, out, (i & 63) * 1232);
    } else {
      const a = fx.pipeline.handle(msg, msg.length, 'udp', view, peer.text);
      if (a instanceof Uint8Array) bytes += a.length;
    }
  }
}

// Warm up: every plan compiled, every function optimised.
run(100_000);
const gcs = { minor: 0, major: 0, other: 0 };
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.minor++;
    else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gcs.major++;
    else gcs.other++;
  }
});
obs.observe({ entryTypes: ['gc'] });
// A collection now, so the young generation starts empty and the loop has all of it.
(globalThis as { gc?: () => void }).gc?.();
await new Promise((r) => setTimeout(r, 20));
const before = process.memoryUsage().heapUsed;
const gcBefore = { ...gcs };
run(ANSWERS);
const after = process.memoryUsage().heapUsed;
// GC entries are delivered asynchronously.
await new Promise((r) => setTimeout(r, 50));
obs.disconnect();
console.log(JSON.stringify({ mode, answers: ANSWERS, bytesAnswered: bytes, heapBytesPerAnswer: (after - before) / ANSWERS, minorGcs: gcs.minor - gcBefore.minor, majorGcs: gcs.major - gcBefore.major }));
