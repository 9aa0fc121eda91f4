/** Runs the real `dig` and parses its output into flags and sections. */
import { execFile } from 'node:child_process';
import { toolPath } from './tools.ts';

export interface DigRecord {
  name: string;
  ttl: number;
  class: string;
  type: string;
  data: string;
}

export interface DigResult {
  status: string;
  flags: string[];
  counts: { query: number; answer: number; authority: number; additional: number };
  edns?: { version: number; udp: number; flags: string[] };
  question: { name: string; class: string; type: string }[];
  answer: DigRecord[];
  authority: DigRecord[];
  additional: DigRecord[];
  raw: string;
}

export function parseDig(raw: string): DigResult {
  const header = /->>HEADER<<- opcode: (\S+), status: (\S+), id: (\d+)/.exec(raw);
  if (!header) throw new Error(`no dig header in:\n${raw}`);
  const flagsLine = /;; flags:([^;]*); QUERY: (\d+), ANSWER: (\d+), AUTHORITY: (\d+), ADDITIONAL: (\d+)/.exec(raw)!;
  const ednsLine = /; EDNS: version: (\d+), flags:([^;]*); udp: (\d+)/.exec(raw);
  const result: DigResult = {
    status: header[2]!,
    flags: flagsLine[1]!.trim().split(/\s+/).filter(Boolean),
    counts: { query: Number(flagsLine[2]), answer: Number(flagsLine[3]), authority: Number(flagsLine[4]), additional: Number(flagsLine[5]) },
    question: [],
    answer: [],
    authority: [],
    additional: [],
    raw,
  };
  if (ednsLine) result.edns = { version: Number(ednsLine[1]), flags: ednsLine[2]!.trim().split(/\s+/).filter(Boolean), udp: Number(ednsLine[3]) };
  let section: 'question' | 'answer' | 'authority' | 'additional' | undefined;
  for (const line of raw.split('\n')) {
    const m = /^;; (QUESTION|ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line);
    if (m) {
      section = m[1]!.toLowerCase() as typeof section;
      continue;
    }
    if (line.trim() === '' || (line.startsWith(';;') && !m)) {
      if (line.trim() === '') section = undefined;
      continue;
    }
    if (!section) continue;
    if (section === 'question') {
      const [name, cls, type] = line.replace(/^;/, '').trim().split(/\s+/);
      result.question.push({ name: name!, class: cls!, type: type! });
      continue;
    }
    const parts = line.trim().split(/\s+/);
    if (parts.length < 4) continue;
    result[section].push({ name: parts[0]!, ttl: Number(parts[1]), class: parts[2]!, type: parts[3]!, data: parts.slice(4).join(' ') });
  }
  return result;
}

/** `dig @host -p port ARGS`; recursion off, one try, bounded wait. */
export function dig(port: number, args: string[], host = '127.0.0.1'): Promise<DigResult> {
  const bin = toolPath('dig') ?? 'dig';
  return new Promise((resolve, reject) => {
    execFile(bin, [`@${host}`, '-p', String(port), '+norecurse', '+tries=1', '+time=3', '+nocmd', '+nostats', ...args], { timeout: 15_000 }, (err, stdout) => {
      if (err && !stdout) return reject(err);
      try {
        resolve(parseDig(stdout));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** A section as sorted "name ttl TYPE data" lines, names lower-cased: compares sets. */
export function asSet(records: DigRecord[], withTtl = true): string[] {
  return records.map((r) => `${r.name.toLowerCase()} ${withTtl ? r.ttl + ' ' : ''}${r.type} ${r.data.toLowerCase()}`).sort();
}
