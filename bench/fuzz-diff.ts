/**
 * `npm run fuzz:diff -- --runs N --seed S`: the generative differential test
 * against Knot without vitest, for any number of queries. Generates random
 * zones (test/support/zone-gen.ts), serves each batch from ONE Knot and ONE
 * rrdns, asks both every generated query and prints every difference as a
 * replayable case (zone text + query + both answers), grouped by class.
 *
 *   --runs N          queries in all (default 2400)
 *   --seed S          run seed (default: random; always printed)
 *   --per-zone Q      queries per generated zone (default 40)
 *   --batch Z         generated zones per server pair (default 60)
 *   --detail K        cases printed in full per class (default 2; all with --all)
 *   --out DIR         also write every case as DIR/case-<n>.json
 *   --replay FILE     serve the zones of one case file and ask its query again
 *                     (after the same-qtype queries that preceded it: a cached answer may matter)
 *   --shrink          with --replay: drop zone lines while the same class of difference
 *                     shows, write FILE.min.json; in a run: shrink one case per class
 *   --escaped-dots    generate labels with escaped dots (a\.b)
 *   --max-seconds T   stop starting new batches after T seconds (default 600)
 *
 * Exit status: 0 when no difference was found, 1 otherwise. Every loop is
 * bounded by count and by time; servers are stopped by PID (their close()).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { caseText, compareAll, groupCases, queryText, replayCase, shrinkCase, startServers, type DiffCase, type ReplayCase } from '../test/support/diff-compare.ts';
import { generateBatch } from '../test/support/zone-gen.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '2400' },
    seed: { type: 'string' },
    'per-zone': { type: 'string', default: '40' },
    batch: { type: 'string', default: '60' },
    detail: { type: 'string', default: '2' },
    all: { type: 'boolean', default: false },
    shrink: { type: 'boolean', default: false },
    out: { type: 'string' },
    replay: { type: 'string' },
    'escaped-dots': { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '600' },
  },
});

const int = (v: string | undefined, name: string, min: number, max: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be an integer in ${min}..${max}`);
    process.exit(2);
  }
  return n;
};

async function replay(file: string): Promise<number> {
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as ReplayCase;
  const { found, ports } = await replayCase(c);
  if (!found) {
    console.log(`query: ${queryText(c.query)}\nsame answers from both servers (after ${c.earlier?.length ?? 0} earlier queries)`);
    return 0;
  }
  console.log(caseText(found, ports));
  if (!values.shrink) return 1;
  const small = await shrinkCase(found, { log: (l) => console.log(l) });
  const out = file.replace(/\.json$/, '') + '.min.json';
  fs.writeFileSync(out, `${JSON.stringify(small, null, 2)}\n`);
  console.log(`\nshrunk case (written to ${out}):\n${caseText(small)}`);
  return 1;
}

async function main(): Promise<number> {
  if (values.replay) return replay(values.replay);
  const runs = int(values.runs, 'runs', 1, 10_000_000);
  const seed = values.seed !== undefined ? int(values.seed, 'seed', -(2 ** 31), 2 ** 31 - 1) : Math.floor(Math.random() * 2 ** 31);
  const perZone = int(values['per-zone'], 'per-zone', 1, 10_000);
  const batchZones = int(values.batch, 'batch', 1, 500);
  const detail = values.all ? Infinity : int(values.detail, 'detail', 0, 1_000_000);
  const maxMs = int(values['max-seconds'], 'max-seconds', 1, 86_400) * 1000;
  const opts = { escapedDots: values['escaped-dots'] };
  console.log(`fuzz:diff seed=${seed} runs=${runs} per-zone=${perZone} batch=${batchZones}${opts.escapedDots ? ' escaped-dots' : ''}`);
  console.log(`replay this run: npm run fuzz:diff -- --runs ${runs} --seed ${seed} --per-zone ${perZone} --batch ${batchZones}${opts.escapedDots ? ' --escaped-dots' : ''}`);

  const started = Date.now();
  const cases: DiffCase[] = [];
  let asked = 0;
  let zonesServed = 0;
  const zoneCount = Math.ceil(runs / perZone);
  for (let first = 0; first < zoneCount && Date.now() - started < maxMs; first += batchZones) {
    const count = Math.min(batchZones, zoneCount - first);
    const batch = generateBatch(seed, first, count, perZone, opts);
    const queries = batch.queries.slice(0, runs - asked);
    const servers = await startServers(batch.zones);
    try {
      cases.push(...(await compareAll(servers, batch.zones, queries)));
    } finally {
      await servers.close();
    }
    asked += queries.length;
    zonesServed += batch.zones.length;
    console.log(`  batch of ${batch.zones.length} zones (${count} generated + children): ${queries.length} queries, ${cases.length} differences so far, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const seconds = (Date.now() - started) / 1000;

  if (values.out) {
    fs.mkdirSync(values.out, { recursive: true });
    cases.forEach((c, i) => fs.writeFileSync(path.join(values.out!, `case-${i}.json`), `${JSON.stringify(c, null, 2)}\n`));
  }
  const groups = groupCases(cases);
  for (const [cls, list] of groups) {
    console.log(`\n=== ${list.length} x ${cls}`);
    if (values.shrink && list[0]) {
      // Bounded: each class gets at most 60 s of server restarts.
      const small = await shrinkCase(list[0], { maxMs: 60_000 });
      console.log(`(shrunk)\n${caseText(small)}`);
      if (values.out) fs.writeFileSync(path.join(values.out, `class-${groups.findIndex(([k]) => k === cls)}.min.json`), `${JSON.stringify(small, null, 2)}\n`);
    }
    for (const c of list.slice(values.shrink ? 1 : 0, detail)) console.log(caseText(c));
  }
  console.log(`\nseed=${seed}: ${asked} queries over ${zonesServed} zones in ${seconds.toFixed(1)} s (${(asked / seconds).toFixed(0)} q/s per server); ${cases.length} differences in ${groups.length} classes`);
  if (values.out && cases.length) console.log(`cases written to ${values.out}/case-N.json; replay one: npm run fuzz:diff -- --replay ${values.out}/case-0.json`);
  return cases.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
