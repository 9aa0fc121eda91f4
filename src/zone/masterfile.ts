/**
 * RFC 1035 §5 master files, as BIND, Knot and NSD write them, so an exported
 * zone loads unchanged. A pure function of the text: no I/O, and `$INCLUDE`
 * is refused so that a zone is always self-contained.
 *
 * Every problem in the file is reported (file, line, message); a bad entry is
 * skipped and parsing goes on with the next one.
 */
import { capIssues, MAX_ISSUES_PER_FILE, shortMessage, type ZoneIssue } from '../errors.ts';
// The one import against the layering (zone below wire): RFC 3597's `\# n hex` form puts
// RDATA octets in zone files, so reading them needs the rdata codec, which stays in one place.
import { CAA_TAG, MAX_CHARACTER_STRING_OCTETS, MAX_RDATA_OCTETS, RdataError, decodeRdata, normalizeIPv6, parseIPv4 } from '../wire/rdata.ts';
import { NameError, parseName } from './name.ts';
import { SUPPORTED_TYPES, typeFromText, typeToText, type RData, type ZoneRecord } from './records.ts';

export interface MasterFileResult {
  records: ZoneRecord[];
  issues: ZoneIssue[];
  /** The zone origin (`opts.origin`, normalized); `$ORIGIN` lines do not change it. */
  origin: string;
}

export interface MasterFileOptions {
  /** Shown in issues. */
  file: string;
  /** Initial origin: an internal name, or presentation form with a trailing dot. */
  origin: string;
  /** TTL for records when neither the record, `$TTL` nor an earlier record gives one. */
  defaultTtl?: number;
  /**
   * Parsing stops after this many records plus one (reported by buildZone as
   * over the zone limit), so a huge file cannot make us hold all of it.
   */
  maxRecords?: number | undefined;
}

/** RFC 2181 §8: TTLs are 31-bit. */
const MAX_TTL = 0x7fffffff;
const MAX_U32 = 0xffffffff;

/* ------------------------------------------------------------------------ */
/* Lexing (RFC 1035 §5.1)                                                     */
/* ------------------------------------------------------------------------ */

interface Token {
  /** Raw text: escapes are kept, quotes removed. */
  text: string;
  quoted: boolean;
  line: number;
}

/** One logical entry: a physical line, or several joined by parentheses. */
interface Entry {
  line: number;
  /** Starts with a blank: the owner is the previous entry's (RFC 1035 §5.1). */
  inheritsOwner: boolean;
  tokens: Token[];
}

/** A problem pinned to a line; thrown by the per-field parsers, caught per entry. */
class LineError extends Error {
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super(message);
    this.line = line;
  }
}

const isBlank = (c: string) => c === ' ' || c === '\t' || c === '\r';
const ENDS_WORD = new Set([' ', '\t', '\r', ';', '(', ')', '"']);

/** Reads a quoted string starting after its opening quote; returns the index past the closing quote, or -1. */
function scanQuoted(s: string, from: number): number {
  for (let j = from; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '"') return j + 1;
  }
  return -1;
}

/** Reads a bare word; a backslash escapes the next char, delimiters included. */
function scanWord(s: string, from: number): number {
  let j = from;
  while (j < s.length && !ENDS_WORD.has(s[j]!)) j += s[j] === '\\' ? 2 : 1;
  return Math.min(j, s.length);
}

/**
 * Splits the text into entries. Parentheses join lines, `;` starts a comment
 * outside quotes, and a quoted string may not span lines (as in BIND). An entry
 * with a lexical error is reported and dropped.
 */
function* lex(text: string, report: (line: number, message: string) => void, comments = true): Generator<Entry> {
  // A generator: entries are parsed as they are read, so a large file never has
  // all of its tokens in memory at once beside its records.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let entry: Entry | undefined;
  let broken = false;
  let depth = 0;
  let openedAt = 0;
  let line = 0;
  for (let start = 0; start <= body.length; ) {
    let end = body.indexOf('\n', start);
    if (end < 0) end = body.length;
    const s = body.slice(start, end);
    start = end + 1;
    line++;
    if (depth === 0) {
      if (entry && !broken && entry.tokens.length > 0) yield entry;
      broken = false;
      entry = { line, inheritsOwner: s.length > 0 && isBlank(s[0]!), tokens: [] };
    }
    const current = entry!;
    let j = 0;
    while (j < s.length) {
      const c = s[j]!;
      if (isBlank(c)) {
        j++;
      } else if (c === ';') {
        if (!comments) {
          report(line, 'a ";" outside quotes would start a comment and cut the value here; quote the string or escape it as \\;');
          broken = true;
        }
        break;
      } else if (c === '(') {
        if (depth++ === 0) openedAt = line;
        j++;
      } else if (c === ')') {
        if (depth === 0) {
          report(line, 'unbalanced ")"');
          broken = true;
        } else depth--;
        j++;
      } else if (c === '"') {
        const end = scanQuoted(s, j + 1);
        if (end < 0) {
          report(line, 'unterminated quoted string (a string cannot span lines)');
          broken = true;
          break;
        }
        current.tokens.push({ text: s.slice(j + 1, end - 1), quoted: true, line });
        j = end;
      } else {
        const end = scanWord(s, j);
        current.tokens.push({ text: s.slice(j, end), quoted: false, line });
        j = end;
      }
    }
  }
  if (depth > 0) {
    report(openedAt, '"(" is never closed');
    broken = true;
  }
  if (entry && !broken && entry.tokens.length > 0) yield entry;
}

/* ------------------------------------------------------------------------ */
/* Field parsers                                                             */
/* ------------------------------------------------------------------------ */

/**
 * A <character-string> (RFC 1035 §5.1): `\X` is X, `\DDD` the octet DDD.
 * Unescaped non-ASCII text is taken as UTF-8, which is what the file held.
 */
function characterString(tok: Token): Buffer {
  const out: number[] = [];
  const s = tok.text;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== '\\') {
      const code = s.charCodeAt(i);
      if (code < 0x80) out.push(code);
      else {
        const cp = s.codePointAt(i)!;
        out.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
        if (cp > 0xffff) i++;
      }
      continue;
    }
    const next = s[i + 1];
    if (next === undefined) throw new LineError(`"${s}" ends with a lone backslash`, tok.line);
    if (next >= '0' && next <= '9') {
      const digits = s.slice(i + 1, i + 4);
      if (!/^[0-9]{3}$/.test(digits)) throw new LineError(`"${s}": a \\DDD escape needs three digits`, tok.line);
      const octet = Number(digits);
      if (octet > 255) throw new LineError(`"${s}": \\${digits} is not an octet (000-255)`, tok.line);
      out.push(octet);
      i += 3;
    } else {
      out.push(...Buffer.from(next, 'utf8'));
      i += 1;
    }
  }
  return Buffer.from(out);
}

function unquoted(tok: Token, what: string): string {
  if (tok.quoted) throw new LineError(`${what} "${tok.text}" must not be quoted`, tok.line);
  return tok.text;
}

function name(tok: Token, origin: string, what: string): string {
  try {
    return parseName(unquoted(tok, what), origin);
  } catch (e) {
    if (e instanceof NameError) throw new LineError(`${what}: ${e.message}`, tok.line);
    throw e;
  }
}

function integer(tok: Token, max: number, what: string): number {
  const text = unquoted(tok, what);
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(value <= max)) throw new LineError(`${what} "${text}" is not an integer from 0 to ${max}`, tok.line);
  return value;
}

const UNIT_SECONDS: Record<string, number> = { w: 604800, d: 86400, h: 3600, m: 60, s: 1 };

/** Seconds, or BIND units such as 1h30m, 1d, 2W (case-insensitive); undefined if neither. No range check: callers bound it. */
export function parseTimeValue(text: string): number | undefined {
  if (/^[0-9]+$/.test(text)) return Number(text);
  if (!/^(?:[0-9]+[wdhms])+$/i.test(text)) return undefined;
  let total = 0;
  for (const [, n, unit] of text.matchAll(/([0-9]+)([wdhms])/gi)) total += Number(n) * UNIT_SECONDS[unit!.toLowerCase()]!;
  return total;
}

function time(tok: Token, max: number, what: string): number {
  const text = unquoted(tok, what);
  const value = parseTimeValue(text);
  if (value === undefined) throw new LineError(`${what} "${text}" is not a time (seconds, or units like 1h30m, 1d, 1w)`, tok.line);
  if (value > max) throw new LineError(`${what} "${text}" is ${value} seconds, over the limit of ${max}${max === MAX_TTL ? ' (RFC 2181 §8)' : ''}`, tok.line);
  return value;
}

/* ------------------------------------------------------------------------ */
/* Rdata in presentation form                                                */
/* ------------------------------------------------------------------------ */

type RdataParser = (args: readonly Token[], origin: string, at: number) => RData;

function fieldCount(type: string, args: readonly Token[], fields: readonly string[], at: number): void {
  if (args.length !== fields.length) {
    const line = args.length > fields.length ? args[fields.length]!.line : at;
    throw new LineError(`${type} takes ${fields.length} field${fields.length === 1 ? '' : 's'} (${fields.join(' ')}), got ${args.length}`, line);
  }
}

const TYPED: Record<(typeof SUPPORTED_TYPES)[number], RdataParser> = {
  A(args, _origin, at) {
    fieldCount('A', args, ['address'], at);
    const tok = args[0]!;
    if (tok.quoted || !parseIPv4(tok.text)) throw new LineError(`"${tok.text}" is not an IPv4 address`, tok.line);
    return { kind: 'A', address: tok.text };
  },
  AAAA(args, _origin, at) {
    fieldCount('AAAA', args, ['address'], at);
    const tok = args[0]!;
    const address = tok.quoted ? undefined : normalizeIPv6(tok.text);
    if (address === undefined) throw new LineError(`"${tok.text}" is not an IPv6 address`, tok.line);
    return { kind: 'AAAA', address };
  },
  NS(args, origin, at) {
    fieldCount('NS', args, ['nsdname'], at);
    return { kind: 'NS', ns: name(args[0]!, origin, 'NS name') };
  },
  CNAME(args, origin, at) {
    fieldCount('CNAME', args, ['target'], at);
    return { kind: 'CNAME', domain: name(args[0]!, origin, 'CNAME target') };
  },
  PTR(args, origin, at) {
    fieldCount('PTR', args, ['target'], at);
    return { kind: 'PTR', domain: name(args[0]!, origin, 'PTR target') };
  },
  MX(args, origin, at) {
    fieldCount('MX', args, ['preference', 'exchange'], at);
    return { kind: 'MX', priority: integer(args[0]!, 0xffff, 'MX preference'), exchange: name(args[1]!, origin, 'MX exchange') };
  },
  SRV(args, origin, at) {
    fieldCount('SRV', args, ['priority', 'weight', 'port', 'target'], at);
    return {
      kind: 'SRV',
      priority: integer(args[0]!, 0xffff, 'SRV priority'),
      weight: integer(args[1]!, 0xffff, 'SRV weight'),
      port: integer(args[2]!, 0xffff, 'SRV port'),
      target: name(args[3]!, origin, 'SRV target'),
    };
  },
  SOA(args, origin, at) {
    fieldCount('SOA', args, ['mname', 'rname', 'serial', 'refresh', 'retry', 'expire', 'minimum'], at);
    const [mname, rname, serial, refresh, retry, expire, minimum] = args as [Token, Token, Token, Token, Token, Token, Token];
    return {
      kind: 'SOA',
      primary: name(mname, origin, 'SOA mname'),
      admin: name(rname, origin, 'SOA rname'),
      // The serial is a sequence number (RFC 1982), not a time: no units.
      serial: integer(serial, MAX_U32, 'SOA serial'),
      refresh: time(refresh, MAX_U32, 'SOA refresh'),
      retry: time(retry, MAX_U32, 'SOA retry'),
      expiration: time(expire, MAX_U32, 'SOA expire'),
      minimum: time(minimum, MAX_U32, 'SOA minimum'),
    };
  },
  TXT(args, _origin, at) {
    // RFC 1035 §3.3.14: one or more strings, quoted or bare words, each ≤ 255 octets.
    if (args.length === 0) throw new LineError('TXT needs at least one string', at);
    const data = args.map((tok) => {
      const octets = characterString(tok);
      if (octets.length > MAX_CHARACTER_STRING_OCTETS) {
        throw new LineError(`TXT string of ${octets.length} octets is over the ${MAX_CHARACTER_STRING_OCTETS}-octet limit; split it into several quoted strings`, tok.line);
      }
      return octets;
    });
    const total = data.reduce((n, s) => n + 1 + s.length, 0);
    if (total > MAX_RDATA_OCTETS) throw new LineError(`TXT rdata is ${total} octets, over the ${MAX_RDATA_OCTETS}-octet limit`, at);
    return { kind: 'TXT', data };
  },
  CAA(args, _origin, at) {
    // RFC 8659 §4.1.1: flags, tag, then the value as one string (no 255-octet limit).
    fieldCount('CAA', args, ['flags', 'tag', 'value'], at);
    const [flags, tag, value] = args as [Token, Token, Token];
    const tagText = unquoted(tag, 'CAA tag');
    if (!CAA_TAG.test(tagText)) throw new LineError(`CAA tag "${tagText}" must be 1 to 15 ASCII letters and digits (RFC 8659 §4.1)`, tag.line);
    const octets = characterString(value);
    if (octets.length + 2 + tagText.length > MAX_RDATA_OCTETS) throw new LineError(`CAA value is too long for one record`, value.line);
    return { kind: 'CAA', flags: integer(flags, 255, 'CAA flags'), tag: tagText, value: octets.toString('latin1') };
  },
};

const isTypedType = (mnemonic: string): mnemonic is keyof typeof TYPED => Object.hasOwn(TYPED, mnemonic);

/**
 * RFC 3597 §5 generic rdata: `\# <length> <hex>...`, hex possibly split by
 * blanks. Known types are decoded into their typed form so later code can
 * read, say, a CNAME target; others stay opaque.
 */
function genericRdata(type: number, args: readonly Token[], at: number): RData {
  const lengthTok = args[1];
  if (lengthTok === undefined) throw new LineError('\\# needs the rdata length and then its hex octets', at);
  const length = integer(lengthTok, MAX_RDATA_OCTETS, '\\# length');
  const hex = args
    .slice(2)
    .map((t) => unquoted(t, '\\# hex'))
    .join('');
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new LineError(`\\# rdata "${hex}" is not hexadecimal`, lengthTok.line);
  if (hex.length !== length * 2) {
    throw new LineError(`\\# says ${length} octet${length === 1 ? '' : 's'} but ${hex.length % 2 ? `${hex.length} hex digits follow` : `${hex.length / 2} follow`}`, lengthTok.line);
  }
  try {
    return decodeRdata(type, Buffer.from(hex, 'hex'));
  } catch (e) {
    if (e instanceof RdataError) throw new LineError(`malformed \\# rdata: ${e.message}`, lengthTok.line);
    throw e;
  }
}

/**
 * Types that never live in a zone: 0 is reserved, OPT is a per-message
 * pseudo-record (RFC 6891 §6.1.1), and 128-255 are meta-types and QTYPEs
 * such as AXFR and ANY (RFC 6895 §3.1).
 */
function zoneType(type: number): boolean {
  return type !== 0 && type !== 41 && (type < 128 || type > 255);
}

function rdata(type: number, args: readonly Token[], origin: string, at: number): RData {
  const first = args[0];
  if (first && !first.quoted && first.text === '\\#') return genericRdata(type, args, at);
  const mnemonic = typeToText(type);
  if (!isTypedType(mnemonic)) {
    throw new LineError(`type ${mnemonic} can only be written in RFC 3597 form: \\# <length> <hex>`, at);
  }
  return TYPED[mnemonic](args, origin, at);
}

/* ------------------------------------------------------------------------ */
/* Entries                                                                   */
/* ------------------------------------------------------------------------ */

interface ParserState {
  origin: string;
  /** From `$TTL` (RFC 2308 §4). */
  ttlDirective: number | undefined;
  /** TTL of the last record, the RFC 1035 §5.1 default. */
  lastTtl: number | undefined;
  /** Owner of the last record; null when it was invalid (its lines are then skipped quietly). */
  lastOwner: string | null | undefined;
}

// NONE and ANY are query/update classes, never a record's; leaving them out
// lets `x ANY ...` read as the type ANY and get the clearer message.
const CLASS_TEXT = /^(?:IN|CH|CS|HS|CLASS[0-9]+)$/i;
const isClassIN = (text: string) => /^(?:IN|CLASS0*1)$/i.test(text);

function directive(entry: Entry, state: ParserState): void {
  const [head, ...args] = entry.tokens as [Token, ...Token[]];
  const keyword = head.text.toUpperCase();
  const one = (what: string): Token => {
    if (args.length !== 1) throw new LineError(`${keyword} takes one argument (${what}), got ${args.length}`, entry.line);
    return args[0]!;
  };
  switch (keyword) {
    case '$ORIGIN':
      // A relative $ORIGIN is relative to the current one, as in BIND.
      state.origin = name(one('a domain name'), state.origin, '$ORIGIN');
      return;
    case '$TTL':
      state.ttlDirective = time(one('a TTL'), MAX_TTL, '$TTL');
      return;
    case '$INCLUDE':
      throw new LineError('$INCLUDE is not supported: a zone file must be self-contained, so paste the included records here', entry.line);
    default:
      throw new LineError(`unknown directive ${head.text} (rrdns knows $ORIGIN and $TTL)`, entry.line);
  }
}

/**
 * `[owner] [ttl] [class] type rdata` with TTL and class in either order
 * (RFC 1035 §5.1). Returns the record, or undefined when the entry had issues
 * (already reported through `report`).
 */
function record(entry: Entry, state: ParserState, defaultTtl: number | undefined, report: (e: LineError) => void): ZoneRecord | undefined {
  const tokens = entry.tokens;
  let failed = false;
  const fail = (e: LineError): undefined => {
    failed = true;
    report(e);
    return undefined;
  };
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      if (e instanceof LineError) return fail(e);
      throw e;
    }
  };

  let i = 0;
  let owner: string | undefined;
  if (entry.inheritsOwner) {
    if (state.lastOwner === null) return undefined; // its owner was already reported as invalid
    owner = state.lastOwner ?? fail(new LineError('no owner name: the line starts with a blank but no record comes before it', entry.line));
  } else {
    i = 1;
    owner = attempt(() => name(tokens[0]!, state.origin, 'owner'));
    state.lastOwner = owner ?? null;
  }

  let ttlTok: Token | undefined;
  let classTok: Token | undefined;
  for (let n = 0; n < 2 && i < tokens.length; n++, i++) {
    const tok = tokens[i]!;
    if (tok.quoted) break;
    if (classTok === undefined && CLASS_TEXT.test(tok.text)) classTok = tok;
    else if (ttlTok === undefined && /^[0-9]/.test(tok.text)) ttlTok = tok;
    else break;
  }
  if (classTok && !isClassIN(classTok.text)) fail(new LineError(`class ${classTok.text} is not supported: rrdns serves class IN only`, classTok.line));
  const ttl = ttlTok ? attempt(() => time(ttlTok, MAX_TTL, 'TTL')) : (state.ttlDirective ?? state.lastTtl ?? defaultTtl);
  if (ttl !== undefined) state.lastTtl = ttl;
  else if (!ttlTok) fail(new LineError('no TTL: give one on the record or set $TTL', entry.line));

  const typeTok = tokens[i];
  if (typeTok === undefined) return fail(new LineError('missing record type', entry.line));
  const type = typeTok.quoted ? undefined : typeFromText(typeTok.text);
  if (type === undefined) return fail(new LineError(`"${typeTok.text}" is not a record type`, typeTok.line));
  if (!zoneType(type)) return fail(new LineError(`type ${typeToText(type)} cannot appear in a zone`, typeTok.line));
  const data = attempt(() => rdata(type, tokens.slice(i + 1), state.origin, typeTok.line));
  if (failed || owner === undefined || ttl === undefined || data === undefined) return undefined;
  return { name: owner, type, ttl, data, line: entry.line };
}

export interface RdataValueOptions {
  file: string;
  /** Origin that relative names in the rdata are relative to (an internal name). */
  origin: string;
  /** Line the value is on, for issues. */
  line?: number | undefined;
}

/**
 * One record's rdata in presentation form, on its own (native zone values):
 * the same grammar and checks as the rdata of a master-file line, but the text
 * is never spliced into a line, so nothing in it can act as master-file
 * syntax around the rdata. A line break (which would start a new record) and
 * a ';' outside quotes (which would silently cut the value) are refused;
 * `$INCLUDE` or an owner name in it is just a field of the rdata.
 */
export function parseRdataValue(type: number, text: string, opts: RdataValueOptions): { data?: RData; issues: ZoneIssue[] } {
  const issues: ZoneIssue[] = [];
  const report = (message: string) => issues.push({ file: opts.file, line: opts.line, message });
  if (!zoneType(type)) {
    report(`type ${typeToText(type)} cannot appear in a zone`);
    return { issues };
  }
  if (/[\n\r]/.test(text)) {
    report('a value must be on one line: a line break in rdata would start another record');
    return { issues };
  }
  const tokens = [...lex(text, (_line, message) => report(message), false)].flatMap((e) => e.tokens);
  if (issues.length > 0) return { issues };
  try {
    return { data: rdata(type, tokens, opts.origin, 1), issues };
  } catch (e) {
    if (!(e instanceof LineError)) throw e;
    report(e.message);
    return { issues };
  }
}

function normalizeOrigin(origin: string): string {
  if (origin === '' || origin === '.') return '';
  return parseName(origin.endsWith('.') ? origin : `${origin}.`, '');
}

/** Parses a whole master file; see the module comment. */
export function parseMasterFile(text: string, opts: MasterFileOptions): MasterFileResult {
  let issues: ZoneIssue[] = [];
  let dropped = 0;
  // Bounded as it goes (capIssues): lexing reports before parsing, so the kept ones are sorted below.
  const report = (line: number | undefined, message: string) => {
    if (issues.length < MAX_ISSUES_PER_FILE) issues.push({ file: opts.file, line, message: shortMessage(message) });
    else dropped++;
  };
  let origin: string;
  try {
    origin = normalizeOrigin(opts.origin);
  } catch (e) {
    report(undefined, `origin: ${(e as Error).message}`);
    return { records: [], issues, origin: opts.origin };
  }

  const state: ParserState = { origin, ttlDirective: undefined, lastTtl: undefined, lastOwner: undefined };
  const records: ZoneRecord[] = [];
  for (const entry of lex(text, report)) {
    const onError = (e: LineError) => report(e.line ?? entry.line, e.message);
    const head = entry.tokens[0]!;
    if (!entry.inheritsOwner && !head.quoted && head.text.startsWith('$')) {
      try {
        directive(entry, state);
      } catch (e) {
        if (!(e instanceof LineError)) throw e;
        onError(e);
      }
      continue;
    }
    const rec = record(entry, state, opts.defaultTtl, onError);
    if (rec) {
      records.push(rec);
      if (opts.maxRecords !== undefined && records.length > opts.maxRecords) break;
    }
  }
  // Lexical problems are found in a first pass; list everything in file order.
  issues.sort((x, y) => (x.line ?? 0) - (y.line ?? 0));
  issues = capIssues(issues, opts.file, dropped);
  return { records, issues, origin };
}
