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
import { emptyState, parseState, patchSerials, STATE_FILE, stateText, stateTextInSteps, type StoredSerial } from '../../src/state/format.ts';
import { StateStore } from '../../src/state/store.ts';

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
  ])('$name: the same octets as stateText, with a pause between slices', async ({ state }) => {
    const s = state();
    let pauses = 0;
    const text = await stateTextInSteps(s, async () => void pauses++, 500);
    expect(text).toBe(stateText(s));
    expect(pauses).toBe(Math.max(0, Math.ceil(Object.keys(s.serials).length / 500) - 1));
    expect(parseState(text)).toEqual({ ok: true, state: s });
  });

  it('writes after a patch give the same octets as stateText: the lines it keeps per entry are only reused for unchanged entries', async () => {
    let s = patchSerials(emptyState(), many(1200, 1));
    expect(await stateTextInSteps(s, async () => undefined)).toBe(stateText(s));
    // A reload's change: a few entries replaced, the others the same objects.
    s = patchSerials(s, new Map([['z3.test.', entry(9)], ['z700.test.', entry(10)], ['new.test.', entry(2)]]));
    const text = await stateTextInSteps(s, async () => undefined);
    expect(text).toBe(stateText(s));
    expect(text).toContain('"serial": 9');
  });
});
