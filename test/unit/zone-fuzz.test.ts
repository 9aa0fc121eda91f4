/**
 * Zone-parser fuzz (issue 8, acceptance 5): any master file or native
 * (YAML/JSON) document ends in a loaded zone or in issues that name the file
 * and a line inside it, never in an exception of another kind or a hang.
 * Inputs are valid zones mutated by inserting, deleting and duplicating text
 * (with the tokens that are syntax: `$ORIGIN`, `$INCLUDE`, `$TTL`, parentheses,
 * `;`, quotes, backslashes, `\#`, huge numbers...) and arbitrary strings.
 * The seeds are fixed so a failure replays; fast-check prints the input.
 *
 * Linear time is not asserted here (no wall-clock assertions in tests):
 * `npm run bench:zones` prints load times for 1x and 4x inputs.
 *
 * Also: a native value can never add records or be cut short by master-file
 * syntax inside it (it is parsed as rdata alone, see parseRdataValue).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIssue, type ZoneIssue } from '../../src/errors.ts';
import { parseMasterFile } from '../../src/zone/masterfile.ts';
import { parseNativeZone } from '../../src/zone/native.ts';
import { buildZone } from '../../src/zone/zone.ts';
import { parseNativeText } from '../support/zone-text.ts';

const MASTER_SEEDS = [
  `$ORIGIN fz.test.
$TTL 300
@ IN SOA ns1 hostmaster ( 1 3600 900
  604800 60 ) ; comment
  IN NS ns1
  NS ns2.other.test.
ns1 A 192.0.2.1
www 60 IN A 192.0.2.2
    AAAA 2001:db8::1
mail MX 10 mail
txt TXT "a \\"quoted\\" ; string" bare \\065\\066
*.wild CNAME www
srv SRV 1 2 3 target
caa CAA 0 issue "ca.test"
x TYPE65280 \\# 3 010203
a\\.b A 192.0.2.3
`,
  `@ SOA ns1 john\\.doe 2024010101 1h 15m 1w 1d
@ NS ns1.fz.test.
sub NS ns.sub
ns.sub A 192.0.2.53
$ORIGIN sub.fz.test.
deep.er A 192.0.2.4
`,
];

const NATIVE_SEEDS = [
  `origin: fz.test
ttl: { default: 300, min: 10, max: 86400 }
soa: { mname: ns1, rname: hostmaster, serial: 7 }
records:
  "@": { NS: [ns1, ns2.other.test.], MX: "10 mail" }
  ns1: { A: 192.0.2.1 }
  www:
    ttl: 30
    maxAnswers: 2
    A: [192.0.2.2, 192.0.2.3, { value: 192.0.2.4, ttl: 5 }]
  txt: { TXT: v=spf1 mx -all }
  quoted: { TXT: '"a" "b"' }
  blob: { TYPE65280: '\\# 2 abcd' }
transfer: { allow: [127.0.0.1] }
`,
  `{"soa": {"mname": "ns1", "rname": "h", "serial": "auto"}, "records": {"@": {"NS": "ns1"}, "ns1": {"A": "192.0.2.1"}, "app": {"A": ["127.0.0.1"], "pool": {"check": {"type": "tcp", "port": 9}}}}}`,
  `masterFile: fz.db
records:
  extra: { A: 192.0.2.9 }
`,
];

const TOKENS = [
  '$ORIGIN', '$INCLUDE', '$TTL', '$GENERATE', '(', ')', ';', '"', '\\', '\\#', '\\0', '\\999', '\\.', '\n', '\r\n', ' ', '\t', '@', '.', '..',
  '99999999999999999999', '4294967296', '2147483648', '-1', '1e9', 'IN', 'CH', 'CLASS1', 'TYPE65535', 'TYPE0', 'TYPE41', 'ANY', 'SOA', 'CNAME',
  'NS', '*', 'A', 'TXT', 'MX', '\uFEFF', 'é', '\u0000', '\u012e', 'a'.repeat(64), 'b'.repeat(300), '::', '1.2.3.4', '0x10',
  // YAML / JSON syntax
  ':', '- ', '{', '}', '[', ']', ',', "'", '&a', '*a', '!!binary', '? ', '|', '>', '#', '---', '...', '%YAML 1.2', 'null', '~', 'true', '<<: *a',
  'records:', 'soa:', 'ttl:', 'pool:', 'masterFile:', 'value:', 'maxAnswers: 99999',
];

type Mutation = { op: 'insert'; at: number; text: string } | { op: 'delete'; at: number; len: number } | { op: 'duplicate'; at: number; len: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 })) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 200 }) }),
);

function mutate(text: string, mutations: readonly Mutation[]): string {
  let s = text;
  for (const m of mutations) {
    const at = s.length === 0 ? 0 : m.at % (s.length + 1);
    if (m.op === 'insert') s = s.slice(0, at) + m.text + s.slice(at);
    else if (m.op === 'delete') s = s.slice(0, at) + s.slice(at + m.len);
    else s = s.slice(0, at) + s.slice(at, at + m.len) + s.slice(at);
  }
  return s;
}

const inputs = (seeds: readonly string[]) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 8 })).map(([seed, ms]) => mutate(seed, ms)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((ts) => ts.join(' ')) },
  );

/** Issues that are about the zone as a whole, or the count of issues not listed: no one line to point at. */
const WHOLE_ZONE = /has no SOA record at its apex|has no NS records at its apex|more problems? not listed/;

function lineCount(text: string): number {
  return text.split('\n').length;
}

/** Every issue names `files` and, unless it is about the whole zone, a line that exists in its file. */
function checkIssues(issues: readonly ZoneIssue[], lines: Record<string, number>): void {
  for (const i of issues) {
    expect(Object.keys(lines), formatIssue(i)).toContain(i.file);
    expect(typeof i.message).toBe('string');
    expect(i.message.length).toBeGreaterThan(0);
    if (WHOLE_ZONE.test(i.message)) continue;
    expect(Number.isInteger(i.line), formatIssue(i)).toBe(true);
    expect(i.line!, formatIssue(i)).toBeGreaterThanOrEqual(1);
    expect(i.line!, formatIssue(i)).toBeLessThanOrEqual(lines[i.file]!);
  }
}

const POLICY = { defaultTtl: 3600, minTtl: 0, maxTtl: 0x7fffffff };

describe('zone-parser fuzz', () => {
  it('master files: a zone, or issues with file and line; nothing else', () => {
    let loaded = 0;
    fc.assert(
      fc.property(inputs(MASTER_SEEDS), (text) => {
        const parsed = parseMasterFile(text, { file: 'fz.zone', origin: 'fz.test', defaultTtl: 3600 });
        checkIssues(parsed.issues, { 'fz.zone': lineCount(text) });
        if (parsed.issues.length > 0) return;
        const built = buildZone({ origin: 'fz.test', source: 'fz.zone', records: parsed.records, ttlPolicy: POLICY });
        checkIssues(built.issues, { 'fz.zone': lineCount(text) });
        // Exactly one of: a zone, or at least one issue.
        expect(built.zone === undefined).toBe(built.issues.length > 0);
        if (built.zone) loaded++;
      }),
      { numRuns: 1500, seed: 0x5eed8 },
    );
    // The mutations are not so destructive that nothing ever loads.
    expect(loaded).toBeGreaterThan(20);
  });

  it('native YAML/JSON zones: a zone, or issues with file and line; nothing else', () => {
    let loaded = 0;
    fc.assert(
      fc.property(inputs(NATIVE_SEEDS), fc.oneof({ weight: 2, arbitrary: fc.constant(MASTER_SEEDS[1]!) }, { weight: 1, arbitrary: inputs(MASTER_SEEDS) }), (text, master) => {
        // Issues of the master file are reported against the name `masterFile:` gives it.
        const lines: Record<string, number> = { 'fz.test.yaml': lineCount(text) };
        const readMasterFile = (rel: string) => {
          lines[rel] = lineCount(master);
          return master;
        };
        const result = parseNativeZone(text, { file: 'fz.test.yaml', defaultOrigin: 'fz.test', readMasterFile });
        checkIssues(result.issues, lines);
        expect(result.input === undefined).toBe(result.issues.length > 0);
        if (!result.input) return;
        const built = buildZone(result.input);
        checkIssues(built.issues, lines);
        expect(built.zone === undefined).toBe(built.issues.length > 0);
        if (built.zone) loaded++;
      }),
      { numRuns: 1500, seed: 0x5eed9 },
    );
    expect(loaded).toBeGreaterThan(20);
  });
});

const NATIVE_HEAD = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
`;

/** Records a native zone yields besides NATIVE_HEAD's, as `name type rdata-json`. */
function extraRecords(entry: string): { records: string[]; issues: string[] } {
  const { input, issues } = parseNativeText(NATIVE_HEAD + entry, 'sp.test');
  const records = (input?.records ?? [])
    .filter((r) => !(r.name === 'sp.test' && (r.type === 6 || r.type === 2)) && r.name !== 'ns1.sp.test')
    .map((r) => `${r.name} ${r.type} ${JSON.stringify(r.data.kind === 'TXT' ? r.data.data.map((b) => b.toString('latin1')) : r.data)}`);
  return { records, issues: issues.map(formatIssue) };
}

describe('a native value cannot act as master-file syntax', () => {
  it.each([
    // Refused, with the path of the value: no record comes from them.
    { name: 'a line break adds a record', entry: `  x: { A: "192.0.2.1\\nevil 300 IN A 6.6.6.6" }\n`, refused: /records\.x\.A: a value must be on one line/ },
    { name: 'CR LF adds a record', entry: `  x: { CNAME: "www.\\r\\nevil A 6.6.6.6" }\n`, refused: /records\.x\.CNAME: a value must be on one line/ },
    { name: "';' cuts the value", entry: `  x: { MX: "10 mail ; 20 other" }\n`, refused: /records\.x\.MX: a ";" outside quotes would start a comment/ },
    { name: "';' in quoted TXT rdata cuts it", entry: `  x: { TXT: '"a" ; "b"' }\n`, refused: /records\.x\.TXT: a ";" outside quotes/ },
    { name: "')' outside quotes", entry: `  x: { NS: "ns1 )" }\n`, refused: /records\.x\.NS: unbalanced "\)"/ },
    { name: "'(' joining the next lines", entry: `  x: { NS: "( ns1" }\n`, refused: /records\.x\.NS: "\(" is never closed/ },
    { name: '$INCLUDE as an A value', entry: `  x: { A: "$INCLUDE /etc/passwd" }\n`, refused: /records\.x\.A: A takes 1 field/ },
    { name: 'an owner and type before the rdata', entry: `  x: { A: "evil 300 IN A 6.6.6.6" }\n`, refused: /records\.x\.A: A takes 1 field/ },
    { name: 'a meta type as the key', entry: `  x: { ANY: "1" }\n`, refused: /records\.x\.ANY: type ANY cannot appear in a zone/ },
  ])('refuses: $name', ({ entry, refused }) => {
    const { records, issues } = extraRecords(entry);
    expect(records).toEqual([]);
    expect(issues.join('\n')).toMatch(refused);
    expect(issues.every((i) => /^zones\/sp\.test\.yaml:5 /.test(i))).toBe(true);
  });

  it.each([
    // Kept exactly, as one record.
    { name: "unquoted TXT with ';'", entry: `  x: { TXT: "v=spf1 ; -all" }\n`, want: ['x.sp.test 16 ["v=spf1 ; -all"]'] },
    { name: 'unquoted TXT with a line break', entry: `  x: { TXT: "a\\nevil A 6.6.6.6" }\n`, want: ['x.sp.test 16 ["a\\nevil A 6.6.6.6"]'] },
    { name: 'unquoted TXT with quotes, backslashes and parentheses', entry: `  x: { TXT: 'say "hi" \\ (now)' }\n`, want: ['x.sp.test 16 ["say \\"hi\\" \\\\ (now)"]'] },
    { name: 'unquoted TXT with $INCLUDE', entry: `  x: { TXT: "$INCLUDE /etc/passwd" }\n`, want: ['x.sp.test 16 ["$INCLUDE /etc/passwd"]'] },
    { name: "';' inside a quoted CAA value", entry: `  x: { CAA: '0 issue "ca.test; account=1"' }\n`, want: ['x.sp.test 257 {"kind":"CAA","flags":0,"tag":"issue","value":"ca.test; account=1"}'] },
    { name: 'escaped \\; in an unquoted TXT string of quoted rdata', entry: `  x: { TXT: '"a" b\\;c' }\n`, want: ['x.sp.test 16 ["a","b;c"]'] },
  ])('keeps: $name', ({ entry, want }) => {
    const { records, issues } = extraRecords(entry);
    expect(issues).toEqual([]);
    expect(records).toEqual(want);
  });

  it('a duplicate key is refused with its line (checked in one pass, not by yaml)', () => {
    const { issues } = extraRecords(`  x: { A: 192.0.2.1 }\n  x: { A: 192.0.2.2 }\n`);
    expect(issues).toEqual(['zones/sp.test.yaml:6: key "x" appears twice in the same mapping']);
  });

  it('alias bombs are refused with a line, not thrown', () => {
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`;
    const { input, issues } = parseNativeText(bomb, 'sp.test');
    expect(input).toBeUndefined();
    expect(issues.map(formatIssue).join('\n')).toMatch(/^zones\/sp\.test\.yaml:1: cannot read the document: .*alias/i);
  });
});
