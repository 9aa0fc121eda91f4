/**
 * StateStore.saveSerialsAsync: the serials reach the file (read back by a new
 * store, as after a restart), the lock is released afterwards, and an
 * override set while the write is in flight is not lost: the file ends up
 * with both.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applySerials, emptyState, parseState, patchSerials, SERIALS_PER_SLICE, STATE_FILE, stateText, stateTextChunks, stateTextInSteps, type StoredSerial } from '../../src/state/format.ts';
import { atomicIo, StateStore } from '../../src/state/store.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-state-async-'));
  dirs.push(d);
  return d;
}
const entry = (serial: number): StoredSerial => ({ serial, digest: 'b'.repeat(64), declared: serial, auto: false, savedAt: '2026-01-01T00:00:00.000Z' });
const many = (n: number, serial: number) => new Map(Array.from({ length: n }, (_, i) => [`z${i}.test.`, entry(serial)] as const));

describe('StateStore.saveSerialsAsync', () => {
  it('writes the serials durably and releases the lock', async () => {
    const dir = tmp();
    const store = StateStore.open(dir);
    await store.saveSerialsAsync(many(1000, 5));
    expect(fs.existsSync(path.join(dir, `${STATE_FILE}.lock`))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const reopened = StateStore.open(dir);
    expect(reopened.serial('z999.test.')?.serial).toBe(5);
    // Only changed entries are written: the same serials again do not touch the file.
    const before = fs.statSync(path.join(dir, STATE_FILE)).mtimeMs;
    await store.saveSerialsAsync(many(1000, 5));
    expect(fs.statSync(path.join(dir, STATE_FILE)).mtimeMs).toBe(before);
  });

  it('a write that fails leaves the serials as they were (they are patched in place, and undone), so the next write does not skip them', async () => {
    const dir = tmp();
    let fail = false;
    const io = { ...atomicIo, writeAsync: (file: string, text: string | AsyncIterable<string>, commit: () => boolean) => (fail ? Promise.reject(new Error('disk full')) : atomicIo.writeAsync!(file, text, commit)) };
    const store = StateStore.open(dir, io);
    await store.saveSerialsAsync(many(3, 5));
    fail = true;
    await expect(store.saveSerialsAsync(new Map([['z1.test.', entry(6)], ['new.test.', entry(1)]]))).rejects.toThrow(/disk full/);
    expect(store.serial('z1.test.')?.serial).toBe(5);
    expect(store.serial('new.test.')).toBeUndefined();
    expect(StateStore.open(dir).serial('z1.test.')?.serial).toBe(5);
    fail = false;
    await store.saveSerialsAsync(new Map([['z1.test.', entry(6)], ['new.test.', entry(1)]]));
    const reopened = StateStore.open(dir);
    expect(reopened.serial('z1.test.')?.serial).toBe(6);
    expect(reopened.serial('new.test.')?.serial).toBe(1);
    expect(reopened.serial('z2.test.')?.serial).toBe(5);
  });

  // The slices a write does not reuse are freed at its end (format.ts release): a write that fails part way
  // (disk full after two chunks) or after its last chunk (the fsync fails) must leave the next write whole.
  it.each([
    { name: 'fails after two chunks', failAfter: 2 },
    { name: 'fails after every chunk was written', failAfter: Infinity },
  ])('a write that $name: the next ones still write exactly stateText, from slices none of which was freed under them', async ({ failAfter }) => {
    const dir = tmp();
    let fail = false;
    const io = {
      ...atomicIo,
      async writeAsync(file: string, text: string | AsyncIterable<string | Buffer>, commit: () => boolean) {
        if (!fail || typeof text === 'string') return atomicIo.writeAsync!(file, text, commit);
        let n = 0;
        for await (const chunk of text) {
          expect(chunk.length).toBeGreaterThan(0);
          if (++n >= failAfter) throw new Error('disk full');
        }
        throw new Error('fsync: I/O error');
      },
    };
    const store = StateStore.open(dir, io);
    await store.saveSerialsAsync(many(1000, 5));
    fail = true;
    await expect(store.saveSerialsAsync(new Map([['z10.test.', entry(6)], ['z900.test.', entry(7)]]))).rejects.toThrow(/disk full|I\/O error/);
    fail = false;
    // The first write after the failure reads the file again (its stamp is not the last written one);
    // the next two reuse the slices of the one before them, and free those they replace.
    await store.saveSerialsAsync(new Map([['z10.test.', entry(6)]]));
    await store.saveSerialsAsync(new Map([['z900.test.', entry(8)]]));
    await store.saveSerialsAsync(new Map([['z300.test.', entry(9)]]));
    const text = fs.readFileSync(path.join(dir, STATE_FILE), 'utf8');
    const parsed = parseState(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(text).toBe(stateText(parsed.state));
    expect(Object.keys(parsed.state.serials)).toHaveLength(1000);
    expect(parsed.state.serials['z10.test.']!.serial).toBe(6);
    expect(parsed.state.serials['z900.test.']!.serial).toBe(8);
    expect(parsed.state.serials['z300.test.']!.serial).toBe(9);
    expect(parsed.state.serials['z500.test.']!.serial).toBe(5);
  });

  it('an override set while the write is in flight keeps both the override and the serials', async () => {
    const dir = tmp();
    const store = StateStore.open(dir);
    const writing = store.saveSerialsAsync(many(2000, 7));
    // One turn: the write has taken the lock and is waiting on the file system.
    await new Promise((r) => setImmediate(r));
    expect(fs.existsSync(path.join(dir, `${STATE_FILE}.lock`))).toBe(true);
    store.setOverride('pool.a.test.', '192.0.2.1', 'drain');
    await writing;
    const reopened = StateStore.open(dir);
    expect(reopened.serial('z1999.test.')?.serial).toBe(7);
    expect(reopened.overrides().map((o) => [o.owner, o.address, o.override])).toEqual([['pool.a.test.', '192.0.2.1', 'drain']]);
    expect(fs.existsSync(path.join(dir, `${STATE_FILE}.lock`))).toBe(false);
    // And later writes still land.
    await store.saveSerialsAsync(many(2000, 8));
    expect(StateStore.open(dir).serial('z0.test.')?.serial).toBe(8);
    expect(StateStore.open(dir).overrides()).toHaveLength(1);
  });
});

describe('stateTextInSteps', () => {
  it.each([
    { name: 'empty state', state: () => emptyState() },
    { name: 'overrides, a cookie key and 1,234 serials (several slices)', state: () => ({ ...patchSerials(emptyState(), many(1234, 7)), overrides: { 'www.a.test.|127.0.0.1': { owner: 'www.a.test.', address: '127.0.0.1', override: 'drain' as const, setAt: '2026-01-01T00:00:00.000Z' } }, cookieMasterKey: 'ab'.repeat(32) }) },
    { name: 'exactly one slice of serials', state: () => patchSerials(emptyState(), many(500, 1)) },
    { name: 'origins that need escaping', state: () => patchSerials(emptyState(), new Map([['a"b\\\\c.test.', entry(3)], ['\u00e9.test.', entry(4)]])) },
    { name: 'entry fields that need escaping', state: () => patchSerials(emptyState(), new Map([['a.test.', { ...entry(3), savedAt: 'x"\\\u2028\ny' }], ['b.test.', { ...entry(4), savedAt: '\u00e9\t\u0001' }]])) },
  ])('$name: the same octets as stateText, with a pause between slices', async ({ state }) => {
    const s = state();
    let pauses = 0;
    const text = await stateTextInSteps(s, async () => void pauses++, 500);
    expect(text).toBe(stateText(s));
    expect(pauses).toBe(Math.max(0, Math.ceil(Object.keys(s.serials).length / 500) - 1));
    expect(parseState(text)).toEqual({ ok: true, state: s });
  });

  it('writes after a patch give the same octets as stateText: a kept slice is only reused where its entries are unchanged', async () => {
    let s = patchSerials(emptyState(), many(1200, 1));
    expect(await stateTextInSteps(s, async () => undefined)).toBe(stateText(s));
    // A reload's change: a few entries replaced, the others the same objects.
    s = patchSerials(s, new Map([['z3.test.', entry(9)], ['z700.test.', entry(10)], ['new.test.', entry(2)]]));
    const text = await stateTextInSteps(s, async () => undefined);
    expect(text).toBe(stateText(s));
    expect(text).toContain('"serial": 9');
  });

  it('a record patched in place (as a reload does) is written anew from its entries, each slice in one reused Buffer: nothing is kept or made per write', async () => {
    const s = patchSerials(emptyState(), many(1600, 1));
    const buffers = new Set<ArrayBufferLike>();
    const chunks = async () => {
      const out: string[] = [];
      // A slice is a view good until the next chunk is asked for: read each one then, as a writer does.
      for await (const c of stateTextChunks(s, async () => undefined, 500)) {
        if (typeof c !== 'string') buffers.add(c.buffer);
        out.push(typeof c === 'string' ? c : c.toString('utf8'));
      }
      return out;
    };
    const first = await chunks();
    const undo = applySerials(s.serials, new Map([['z700.test.', entry(9)]]));
    const second = await chunks();
    expect(second.join('')).toBe(stateText(s));
    expect(second.join('')).toContain('"serial": 9');
    // The header, four slices of 500, the closing; only the second slice changed.
    expect(second).toHaveLength(6);
    expect(second.map((c, i) => c === first[i])).toEqual([true, true, false, true, true, true]);
    // Both writes' slices were views of one Buffer.
    expect(buffers.size).toBe(1);
    undo();
    expect(s.serials['z700.test.']!.serial).toBe(1);
    expect((await chunks()).join('')).toBe(stateText(s));
  });

  it('two writes whose chunks interleave (two stores in one process) each write their own octets', async () => {
    const a = patchSerials(emptyState(), many(1000, 1));
    const b = patchSerials(emptyState(), many(1000, 2));
    const ga = stateTextChunks(a, async () => undefined, 100);
    const gb = stateTextChunks(b, async () => undefined, 100);
    let ta = '';
    let tb = '';
    const text = (c: string | Buffer) => (typeof c === 'string' ? c : c.toString('utf8'));
    for (;;) {
      const [ra, rb] = [await ga.next(), await gb.next()];
      if (!ra.done) ta += text(ra.value);
      if (!rb.done) tb += text(rb.value);
      if (ra.done && rb.done) break;
    }
    expect(ta).toBe(stateText(a));
    expect(tb).toBe(stateText(b));
  });

  it('a write its writer gives up on halfway leaves nothing behind for the next', async () => {
    const s = patchSerials(emptyState(), many(1000, 3));
    for await (const c of stateTextChunks(s, async () => undefined, 100)) if (typeof c !== 'string') break;
    expect(await stateTextInSteps(s, async () => undefined, 100)).toBe(stateText(s));
  });

  it('an origin that needs escaping or more room than the Buffer has is written as JSON.stringify writes it', async () => {
    const long = `${'a'.repeat(63)}.`.repeat(3) + 'test.';
    const s = patchSerials(emptyState(), new Map([...many(99, 1), ['\u00e9t\u00e9.test.', entry(2)], ['q"uo\\te.test.', entry(3)], ...Array.from({ length: 400 }, (_, i) => [`${i}.${long}`, entry(4)] as const)]));
    expect(await stateTextInSteps(s, async () => undefined, 500)).toBe(stateText(s));
    expect(parseState(stateText(s))).toEqual({ ok: true, state: s });
  });

  it.each([
    { name: 'fields in another order (a hand-edited file, or an older writer)', entry: { savedAt: '2026-01-01T00:00:00.000Z', auto: true, declared: 0, digest: 'd'.repeat(64), serial: 5 } },
    { name: 'a field missing', entry: { serial: 5, digest: 'd'.repeat(64), declared: 0, auto: true } },
    { name: 'a field of another type', entry: { serial: 5, digest: 'd'.repeat(64), declared: 0, auto: 'yes', savedAt: 'x' } },
    { name: 'a field more', entry: { serial: 5, digest: 'd'.repeat(64), declared: 0, auto: true, savedAt: 'x', extra: [1, { a: null }] } },
  ])('an entry with $name is written as JSON.stringify writes it', async ({ entry: odd }) => {
    const s = patchSerials(emptyState(), new Map([...many(250, 1), ['odd.test.', odd as unknown as StoredSerial]]));
    expect(await stateTextInSteps(s, async () => undefined, 100)).toBe(stateText(s));
  });

  it('an entry gone from the middle of the record (an undo of one added before) shifts every later slice: they are encoded again, not reused out of place', async () => {
    const s = patchSerials(emptyState(), many(1600, 1));
    const text = async () => stateTextInSteps(s, async () => undefined, 500);
    expect(await text()).toBe(stateText(s));
    delete s.serials['z100.test.'];
    const after = await text();
    expect(after).toBe(stateText(s));
    expect(after).not.toContain('"z100.test."');
    expect(parseState(after)).toEqual({ ok: true, state: s });
  });
});

describe('parseState', () => {
  it('gives each serial entry its fields in the order the store writes them, whatever order the file has, and the same values', () => {
    const text = JSON.stringify({ format: 'rrdns-state', version: 1, overrides: {}, serials: { 'a.test.': { savedAt: '2026-01-01T00:00:00.000Z', auto: true, declared: 0, digest: 'd'.repeat(64), serial: 5 }, 'b.test.': entry(7) } });
    const parsed = parseState(text);
    if (!parsed.ok) throw new Error(parsed.problem);
    expect(Object.keys(parsed.state.serials['a.test.']!)).toEqual(['serial', 'digest', 'declared', 'auto', 'savedAt']);
    expect(parsed.state.serials).toEqual({ 'a.test.': { serial: 5, digest: 'd'.repeat(64), declared: 0, auto: true, savedAt: '2026-01-01T00:00:00.000Z' }, 'b.test.': entry(7) });
    // Written again, the file has the store's own order.
    expect(stateText(parsed.state)).toContain('"a.test.": {\n      "serial": 5,');
  });
});
