/**
 * `npm run bench:answer-path`: nanoseconds per answer of the JavaScript
 * answer path alone, in-process (no socket, no kernel): QueryPipeline's
 * answerDatagram (what both UDP paths call: the answer written into the
 * caller's buffer) against handle (a Buffer per answer, as TCP uses), for a
 * static name, a health-checked pool name (weighted rotation, resolver-aware
 * TTLs, ECS) and an NXDOMAIN, with response rate limiting and cookies on
 * (test/support/answer-fixture.ts). Sources cycle over 1,024 addresses.
 *
 *   BENCH_ANSWERS   answers per measurement (default 500,000, at most 10,000,000)
 *   BENCH_ROUNDS    rounds, each measuring every case once (default 3); the best round is printed too
 *
 * A benchmark, not a test: the figures are printed, never asserted.
 */
import { answerFixture, QUERY_KINDS } from '../test/support/answer-fixture.ts';
import { QueryView } from '../src/wire/query.ts';
import { Peer } from '../src/zone/address.ts';

const ANSWERS = Math.min(Math.max(Math.round(Number(process.env.BENCH_ANSWERS ?? 500_000) || 500_000), 1000), 10_000_000);
const ROUNDS = Math.min(Math.max(Math.round(Number(process.env.BENCH_ROUNDS ?? 3) || 3), 1), 20);
const SOURCES = 1024;

const fx = answerFixture();
await fx.warm();
const view = new QueryView();
const peer = new Peer();
const out = Buffer.alloc(65536);
const cases = (['static', 'pool', 'nxdomain'] as const).map((name) => ({ name, msg: QUERY_KINDS[name]() }));

function setPeer(i: number): void {
  peer.setWords(4, (10 << 24) | ((i & (SOURCES - 1)) << 8) | 7, 0, 0, 0, 40000 + (i & 1023));
}

function viaDatagram(msg: Buffer, n: number): number {
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    setPeer(i);
    bytes += fx.pipeline.answerDatagram(msg, msg.length, view, peer, out, 0);
  }
  return bytes;
}

function viaHandle(msg: Buffer, n: number): number {
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    setPeer(i);
    const answer = fx.pipeline.handle(msg, msg.length, 'udp', view, peer.text);
    if (answer instanceof Uint8Array) bytes += answer.length;
  }
  return bytes;
}

function measure(fn: (msg: Buffer, n: number) => number, msg: Buffer): number {
  fn(msg, Math.min(ANSWERS, 50_000));
  const t0 = process.hrtime.bigint();
  const bytes = fn(msg, ANSWERS);
  const ns = Number(process.hrtime.bigint() - t0) / ANSWERS;
  if (bytes === 0) throw new Error('no answers were written');
  return ns;
}

const best = new Map<string, number>();
console.log(`answer path, in-process: ${ANSWERS} answers per figure, ${ROUNDS} round(s), RRL + cookies + resolver demand on (measured on a shared machine)`);
for (let round = 1; round <= ROUNDS; round++) {
  const line: string[] = [];
  for (const c of cases) {
    const d = measure(viaDatagram, c.msg);
    const h = measure(viaHandle, c.msg);
    line.push(`${c.name.padEnd(8)} answerDatagram ${d.toFixed(0).padStart(5)} ns  handle ${h.toFixed(0).padStart(5)} ns`);
    best.set(`${c.name} d`, Math.min(best.get(`${c.name} d`) ?? Infinity, d));
    best.set(`${c.name} h`, Math.min(best.get(`${c.name} h`) ?? Infinity, h));
  }
  console.log(`round ${round}\n  ${line.join('\n  ')}`);
}
console.log('best');
for (const c of cases) console.log(`  ${c.name.padEnd(8)} answerDatagram ${best.get(`${c.name} d`)!.toFixed(0).padStart(5)} ns/answer  handle ${best.get(`${c.name} h`)!.toFixed(0).padStart(5)} ns/answer`);
