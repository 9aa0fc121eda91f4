import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, RrdnsError } from '../../src/errors.ts';
import { emptyState, parseState, patchOverride, patchSerials, STATE_FILE, stateText, type StoredSerial } from '../../src/state/format.ts';
import { withLock } from '../../src/state/lock.ts';
import { atomicIo, StateStore } from '../../src/state/store.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-state-unit-'));
  dirs.push(d);
  return d;
}
const entry = (serial: number, digest = 'a'.repeat(64)): StoredSerial => ({ serial, digest, declared: serial, auto: false, savedAt: '2026-01-01T00:00:00.000Z' });

function startError(fn: () => unknown): RrdnsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RrdnsError);
    return e as RrdnsError;
  }
  throw new Error('expected an error');
}

describe('state format', () => {
  it.each([
    { name: 'garbage', text: '{not json', want: 'is not valid JSON' },
    { name: 'an array', text: '[]', want: 'does not hold a JSON object' },
    { name: 'another format', text: '{"format":"other","version":1}', want: 'is not an rrdns state file' },
    { name: 'a newer version', text: JSON.stringify({ ...emptyState(), version: 2 }), want: 'has format version 2; this rrdns reads version 1' },
    { name: 'a bad serial', text: JSON.stringify({ ...emptyState(), serials: { 'a.test.': { ...entry(1), serial: -1 } } }), want: 'serials.a.test..serial' },
    { name: 'a bad override', text: JSON.stringify({ ...emptyState(), overrides: { k: { owner: 'a.', address: '192.0.2.1', override: 'maybe', setAt: '' } } }), want: 'overrides.k.override' },
    { name: 'an unknown top-level key', text: JSON.stringify({ ...emptyState(), extra: 1 }), want: 'does not match the state format' },
  ])('rejects $name', ({ text, want }) => {
    const r = parseState(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toContain(want);
  });

  it('round-trips', () => {
    const s = patchSerials(patchOverride(emptyState(), 'www.a.test.', '192.0.2.1', 'drain', 't'), new Map([['a.test.', entry(7)]]));
    expect(parseState(stateText(s))).toEqual({ ok: true, state: s });
  });

  it.each([
    { name: 'greater wins', stored: 10, ours: 11, want: 11 },
    { name: 'a greater stored one is kept', stored: 12, ours: 11, want: 12 },
    { name: 'across the wrap 0 follows 2^32-1', stored: 0xffffffff, ours: 0, want: 0 },
    { name: 'across the wrap 2^32-1 does not replace 3', stored: 3, ours: 0xffffffff, want: 3 },
  ])('serials merge by RFC 1982 max: $name', ({ stored, ours, want }) => {
    const s = patchSerials(patchSerials(emptyState(), new Map([['a.test.', entry(stored)]])), new Map([['a.test.', entry(ours)]]));
    expect(s.serials['a.test.']!.serial).toBe(want);
  });

  it('an override patch touches only its key', () => {
    const s = patchOverride(patchOverride(emptyState(), 'a.', '192.0.2.1', 'drain', 't'), 'b.', '192.0.2.2', 'force-down', 't');
    const cleared = patchOverride(s, 'a.', '192.0.2.1', null, 't');
    expect(Object.keys(cleared.overrides)).toEqual(['b.|192.0.2.2']);
  });
});

describe('StateStore', () => {
  it('a missing file is an empty state; the directory is created', () => {
    const dir = path.join(tmp(), 'nested', 'state');
    const store = StateStore.open(dir);
    expect(store.overrides()).toEqual([]);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    expect(fs.existsSync(path.join(dir, STATE_FILE))).toBe(false);
  });

  it('writes atomically and reads back; no temporary or lock file is left', () => {
    const dir = tmp();
    const a = StateStore.open(dir);
    a.setOverride('www.a.test.', '192.0.2.1', 'drain');
    a.saveSerials(new Map([['a.test.', entry(42)]]));
    expect(fs.readdirSync(dir)).toEqual([STATE_FILE]);
    const b = StateStore.open(dir);
    expect(b.overrides().map((o) => [o.owner, o.address, o.override])).toEqual([['www.a.test.', '192.0.2.1', 'drain']]);
    expect(b.serial('a.test.')?.serial).toBe(42);
    b.setOverride('www.a.test.', '192.0.2.1', null);
    expect(StateStore.open(dir).overrides()).toEqual([]);
  });

  it('two stores on one directory keep each other\'s entries', () => {
    const dir = tmp();
    const a = StateStore.open(dir);
    const b = StateStore.open(dir);
    a.setOverride('www.a.test.', '192.0.2.1', 'drain');
    b.setOverride('www.b.test.', '192.0.2.2', 'force-down');
    a.saveSerials(new Map([['a.test.', entry(5)]]));
    b.saveSerials(new Map([['b.test.', entry(9)], ['a.test.', entry(3)]]));
    const c = StateStore.open(dir);
    expect(c.overrides().map((o) => o.owner).sort()).toEqual(['www.a.test.', 'www.b.test.']);
    expect(c.serial('a.test.')?.serial).toBe(5); // b's lower one did not lower it
    expect(c.serial('b.test.')?.serial).toBe(9);
  });

  it.each([
    { name: 'garbage JSON', make: (f: string) => fs.writeFileSync(f, 'garbage{'), want: 'is not valid JSON' },
    { name: 'a wrong version', make: (f: string) => fs.writeFileSync(f, JSON.stringify({ ...emptyState(), version: 99 })), want: 'has format version 99' },
    { name: 'a directory in place of the file', make: (f: string) => fs.mkdirSync(f), want: 'cannot read the state file' },
  ])('refuses to start on $name, naming the file and how to recover', ({ make, want }) => {
    const dir = tmp();
    const file = path.join(dir, STATE_FILE);
    make(file);
    const e = startError(() => StateStore.open(dir));
    expect(e.code).toBe(ErrorCode.STATE_INVALID);
    expect(e.message).toContain(file);
    expect(e.message).toContain(want);
    expect(e.message).toContain('move it aside');
  });

  it('refuses a state directory that cannot be created (a file in the way)', () => {
    const file = path.join(tmp(), 'plain-file');
    fs.writeFileSync(file, '');
    const e = startError(() => StateStore.open(path.join(file, 'state')));
    expect(e.code).toBe(ErrorCode.STATE_INVALID);
    expect(e.message).toContain(path.join(file, 'state'));
  });

  it('a failing write throws STATE_WRITE_FAILED, counts it, and keeps the previous state', () => {
    const dir = tmp();
    let fail = false;
    const store = StateStore.open(dir, { read: atomicIo.read, write: (f, t) => (fail ? (() => { throw Object.assign(new Error('disk full'), { code: 'ENOSPC' }); })() : atomicIo.write(f, t)) });
    store.setOverride('www.a.test.', '192.0.2.1', 'drain');
    fail = true;
    const e = startError(() => store.setOverride('www.a.test.', '192.0.2.2', 'drain'));
    expect(e.code).toBe(ErrorCode.STATE_WRITE_FAILED);
    expect(e.message).toContain('ENOSPC');
    expect(e.message).toContain(path.join(dir, STATE_FILE));
    expect(store.writeFailures).toBe(1);
    expect(store.hasOverride('www.a.test.', '192.0.2.2')).toBe(false);
    expect(StateStore.open(dir).overrides().map((o) => o.address)).toEqual(['192.0.2.1']);
  });

  it('the cookie master key is generated once and kept: a second store on the directory gets the first one\'s key', () => {
    const dir = tmp();
    const a = StateStore.open(dir);
    const b = StateStore.open(dir);
    const key = a.cookieMasterKey(() => Buffer.alloc(32, 1));
    expect(key.equals(Buffer.alloc(32, 1))).toBe(true);
    // b read the file before a stored its key; its write keeps a's (another instance chose first).
    expect(b.cookieMasterKey(() => Buffer.alloc(32, 2)).equals(key)).toBe(true);
    expect(StateStore.open(dir).cookieMasterKey(() => Buffer.alloc(32, 3)).equals(key)).toBe(true);
    expect(fs.statSync(path.join(dir, STATE_FILE)).mode & 0o077).toBe(0);
    expect(parseState(JSON.stringify({ ...emptyState(), cookieMasterKey: 'xyz' })).ok).toBe(false);
  });

  it("'off' keeps the state in memory and touches no file", () => {
    const store = StateStore.open('off');
    store.setOverride('www.a.test.', '192.0.2.1', 'drain');
    expect(store.file).toBeUndefined();
    expect(store.hasOverride('www.a.test.', '192.0.2.1')).toBe(true);
  });
});

describe('directory lock', () => {
  it('takes over a lock left by a process that is gone', () => {
    const lock = path.join(tmp(), 'x.lock');
    // PID 2^22 + 1 is above Linux's pid_max limit: never a running process.
    fs.writeFileSync(lock, `${2 ** 22 + 1}\n`);
    expect(withLock(lock, () => 'ran')).toBe('ran');
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('does not take a lock held by a running process: it gives up after the wait, naming the holder', () => {
    const lock = path.join(tmp(), 'x.lock');
    fs.writeFileSync(lock, `${process.ppid}\n`);
    expect(() => withLock(lock, () => 'ran', 50)).toThrow(`held by pid ${process.ppid}`);
    expect(fs.readFileSync(lock, 'utf8').trim()).toBe(String(process.ppid));
  });
});
