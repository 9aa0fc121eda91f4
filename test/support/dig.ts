/**
 * Runs the real `dig` (BIND 9.18) and parses its default presentation output
 * into header flags, sections and the OPT pseudo-section.
 *
 *   const r = await dig(port, ['www.example.test', 'A', '+tcp']);
 *   r.rcode          // 'NOERROR' (also as r.status)
 *   r.flags          // ['qr', 'aa']
 *   r.answer[0]      // { name: 'www.example.test.', ttl: 30, class: 'IN', type: 'A', data: '192.0.2.10' }
 *   r.opt            // { udp: 1232, version: 0 }, undefined for +noedns or a reply without OPT
 *
 * Always passed: +norecurse +tries=1 +time=3 +nocmd +nostats (later args win,
 * e.g. '+recurse' or '+time=1'). Output formats that change the layout
 * (+short, +multiline, +yaml, +json, +nottlid, +noclass, ...) are rejected.
 */
import { execFile } from 'node:child_process';
import { toolPath } from './tools.ts';

export interface DigRecord {
  name: string;
  ttl: number;
  class: string;
  type: string;
  /** The RDATA exactly as dig prints it (TXT keeps its quotes). */
  data: string;
}

export interface DigQuestion {
  name: string;
  class: string;
  type: string;
}

export interface DigResult {
  /** NOERROR, NXDOMAIN, REFUSED, FORMERR, BADVERS, ... */
  rcode: string;
  /** Same as rcode (dig's word for it). */
  status: string;
  opcode: string;
  id: number;
  /** Header flags as dig prints them: qr aa tc rd ra ad cd. */
  flags: string[];
  counts: { query: number; answer: number; authority: number; additional: number };
  /** The OPT record: advertised UDP size and EDNS version; absent without OPT. */
  opt?: { udp: number; version: number };
  /** The OPT record with its flags (e.g. ['do']); absent without OPT. */
  edns?: { version: number; flags: string[]; udp: number };
  /** Other OPT pseudo-section lines, as printed: 'NSID: ... ("id")', 'COOKIE: ...', 'EDE: ...'. */
  ednsOptions: string[];
  question: DigQuestion[];
  answer: DigRecord[];
  authority: DigRecord[];
  additional: DigRecord[];
  /** dig's lines starting with ';;' that are neither header nor section titles (warnings, "Truncated, retrying..."). */
  notes: string[];
  /** The whole dig output this result was parsed from. */
  raw: string;
}

export class DigError extends Error {
  readonly raw: string;
  readonly exitCode: number | null;
  constructor(message: string, raw: string, exitCode: number | null) {
    super(`${message}\n--- dig output ---\n${raw}`);
    this.name = 'DigError';
    this.raw = raw;
    this.exitCode = exitCode;
  }
}

type Section = 'question' | 'answer' | 'authority' | 'additional';
const SECTION_TITLE = /^;; (QUESTION|ANSWER|AUTHORITY|ADDITIONAL) SECTION:\s*$/;
const HEADER = /^;; ->>HEADER<<- opcode: ([^,]+), status: ([^,]+), id: (\d+)/;
const FLAGS = /^;; flags:([^;]*);\s*\w+: (\d+), \w+: (\d+), \w+: (\d+), \w+: (\d+)/;
const EDNS = /^; EDNS: version: (\d+), flags:([^;]*);\s*(?:MBZ: 0x[0-9a-fA-F]+, )?udp: (\d+)/;
const RECORD = /^(\S+)\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+(.*?))?\s*$/;
const QUESTION = /^;(\S+)\s+(\S+)\s+(\S+)\s*$/;

function words(s: string): string[] {
  return s.trim().split(/\s+/).filter(Boolean);
}

/** Parses one response block (starting at its ->>HEADER<<- line). */
function parseBlock(lines: string[], raw: string, preamble: string[]): DigResult {
  const header = HEADER.exec(lines[0]!)!;
  const result: DigResult = {
    rcode: header[2]!.trim(),
    status: header[2]!.trim(),
    opcode: header[1]!.trim(),
    id: Number(header[3]),
    flags: [],
    counts: { query: 0, answer: 0, authority: 0, additional: 0 },
    ednsOptions: [],
    question: [],
    answer: [],
    authority: [],
    additional: [],
    notes: [...preamble],
    raw,
  };
  let sawFlags = false;
  let section: Section | 'opt' | undefined;
  for (const line of lines.slice(1)) {
    if (line.trim() === '') {
      section = undefined;
      continue;
    }
    const flags = FLAGS.exec(line);
    if (flags && !sawFlags) {
      sawFlags = true;
      result.flags = words(flags[1]!);
      result.counts = { query: Number(flags[2]), answer: Number(flags[3]), authority: Number(flags[4]), additional: Number(flags[5]) };
      continue;
    }
    const title = SECTION_TITLE.exec(line);
    if (title) {
      section = title[1]!.toLowerCase() as Section;
      continue;
    }
    if (/^;; OPT PSEUDOSECTION:/.test(line)) {
      section = 'opt';
      continue;
    }
    if (section === 'opt') {
      const edns = EDNS.exec(line);
      if (edns) {
        result.opt = { udp: Number(edns[3]), version: Number(edns[1]) };
        result.edns = { version: Number(edns[1]), flags: words(edns[2]!), udp: Number(edns[3]) };
      } else result.ednsOptions.push(line.replace(/^;\s*/, ''));
      continue;
    }
    if (line.startsWith(';;')) {
      result.notes.push(line.replace(/^;;\s*/, ''));
      section = undefined;
      continue;
    }
    if (section === 'question') {
      const q = QUESTION.exec(line);
      if (!q) throw new DigError(`unparseable question line: ${JSON.stringify(line)}`, raw, null);
      result.question.push({ name: q[1]!, class: q[2]!, type: q[3]! });
      continue;
    }
    if (section) {
      const r = RECORD.exec(line);
      if (!r) throw new DigError(`unparseable ${section} record: ${JSON.stringify(line)}`, raw, null);
      result[section].push({ name: r[1]!, ttl: Number(r[2]), class: r[3]!, type: r[4]!, data: r[5] ?? '' });
      continue;
    }
    // Anything else outside a section (e.g. a bare ';' comment) is not part of the message.
  }
  if (!sawFlags) throw new DigError('dig header without a flags line', raw, null);
  return result;
}

/**
 * Every response in dig's output, in order (several with +keepopen and
 * several names, or when dig prints more than one reply).
 */
export function parseDigAll(raw: string): DigResult[] {
  const lines = raw.split('\n').map((l) => l.replace(/\r$/, ''));
  const starts: number[] = [];
  lines.forEach((l, i) => {
    if (HEADER.test(l)) starts.push(i);
  });
  if (starts.length === 0) throw new DigError('no response in dig output', raw, null);
  const preamble = lines
    .slice(0, starts[0])
    .filter((l) => l.startsWith(';;') && !/^;; Got answer:/.test(l))
    .map((l) => l.replace(/^;;\s*/, ''));
  return starts.map((start, i) => parseBlock(lines.slice(start, starts[i + 1] ?? lines.length), raw, i === 0 ? preamble : []));
}

/** The first response in dig's output (dig prints one per query). */
export function parseDig(raw: string): DigResult {
  return parseDigAll(raw)[0]!;
}

const LAYOUT_OPTIONS = /^\+(no)?(short|multi(line)?|yaml|json|ttlid|ttlunits|cl(ass)?|rrcomments|comments|question|answer|authority|additional|all|qr|identify)/;

function runDig(port: number, args: string[], host: string): Promise<string> {
  const layout = args.find((a) => LAYOUT_OPTIONS.test(a));
  if (layout) return Promise.reject(new Error(`dig(): ${layout} changes dig's output layout, which the parser does not read`));
  const bin = toolPath('dig') ?? 'dig';
  const argv = [`@${host}`, '-p', String(port), '+norecurse', '+tries=1', '+time=3', '+nocmd', '+nostats', ...args];
  return new Promise((resolve, reject) => {
    execFile(bin, argv, { timeout: 20_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      const exitCode = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      if (!stdout.includes('->>HEADER<<-')) {
        return reject(new DigError(`dig ${argv.join(' ')} got no response (exit ${exitCode ?? err?.message})`, stdout + stderr, exitCode));
      }
      resolve(stdout);
    });
  });
}

/**
 * `dig @host -p port ARGS`: recursion off, one try, 3 s per try (override
 * with later args). Resolves with the first response; rejects with a
 * DigError (carrying dig's output) when no response came back.
 */
export async function dig(port: number, args: string[], host = '127.0.0.1'): Promise<DigResult> {
  return parseDig(await runDig(port, args, host));
}

/** Like dig(), for several queries in one dig run: every response. */
export async function digAll(port: number, args: string[], host = '127.0.0.1'): Promise<DigResult[]> {
  return parseDigAll(await runDig(port, args, host));
}

/** A section as sorted "name ttl TYPE data" lines, names lower-cased: compares sets. */
export function asSet(records: DigRecord[], withTtl = true): string[] {
  return records.map((r) => `${r.name.toLowerCase()} ${withTtl ? r.ttl + ' ' : ''}${r.type} ${r.data.toLowerCase()}`).sort();
}
