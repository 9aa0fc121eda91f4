/**
 * The pending-clears file (server/cluster-glue.ts): what a restart reads back
 * of the override clears etcd has not heard of. A damaged file never stops the
 * start: it is logged and read as empty; only well-formed entries are taken.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pendingClearsFile } from '../../src/server/cluster-glue.ts';
import type { Logger } from '../../src/observability/log.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-clears-'));
  dirs.push(dir);
  const errors: string[] = [];
  const log = { error: (_o: unknown, msg: string) => void errors.push(msg) } as unknown as Logger;
  const file = path.join(dir, 'cluster-pending-clears.json');
  return { file, errors, clears: pendingClearsFile(file, log) };
}

describe('pending override clears file', () => {
  it('round-trips what is saved; saving nothing removes the file', () => {
    const { file, clears } = setup();
    expect([...clears.load()]).toEqual([]);
    clears.save(new Map([['www.a.test.|127.0.0.1', 1700000000000]]));
    expect([...clears.load()]).toEqual([['www.a.test.|127.0.0.1', 1700000000000]]);
    clears.save(new Map());
    expect(fs.existsSync(file)).toBe(false);
  });

  it.each([
    { name: 'garbage', text: '\u0000\u00ff{{{ not json' },
    { name: 'an array', text: '[1, 2, 3]' },
    { name: 'null', text: 'null' },
    { name: 'truncated', text: '{"www.a.test.|127.0.0.1": 17' },
  ])('$name: logged and read as empty', ({ text }) => {
    const { file, errors, clears } = setup();
    fs.writeFileSync(file, text);
    expect([...clears.load()]).toEqual([]);
    expect(errors).toHaveLength(1);
  });

  it('keeps only well-formed entries (owner|address keys, finite times)', () => {
    const { file, clears } = setup();
    fs.writeFileSync(file, JSON.stringify({ 'www.a.test.|127.0.0.1': 5, nobar: 6, 'x.|::1': 'soon', 'y.|127.0.0.2': null, 'z.|127.0.0.3': 1e400 }));
    expect([...clears.load()]).toEqual([['www.a.test.|127.0.0.1', 5]]);
  });
});
