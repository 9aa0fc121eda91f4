import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/errors.ts';
import { loadNativeParser, loadZoneDir } from '../../src/zone/load.ts';
import { parseNativeText } from '../support/zone-text.ts';
import { buildZone } from '../../src/zone/zone.ts';
import { writeZones } from '../support/server.ts';

// The readers here parse native zones synchronously (readSync, loadZoneDir): the parser is loaded on demand.
await loadNativeParser();

const parse = (text: string, masterFiles: Record<string, string> = {}) => parseNativeText(text, 'example.test', masterFiles);

const BASE = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
`;

describe('native zone format', () => {
  it('names file, line and path of a bad value, e.g. a bad IPv4 address', () => {
    const text = `${BASE}  www:
    A:
      - 192.0.2.1
      - 192.0.2.2
      - 300.1.1.1
`;
    const { issues } = parse(text);
    expect(issues.map(formatIssue)).toEqual(['zones/example.test.yaml:9 records.www.A[2]: "300.1.1.1" is not an IPv4 address']);
  });

  it('lists every error of a file at once', () => {
    const text = `${BASE}  a: { A: 1.2.3 }
  b: { AAAA: "not-v6" }
  c: { MX: "x mail" }
  d: { BOGUS: "1" }
`;
    const { issues } = parse(text);
    const lines = issues.map(formatIssue);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^zones\/example\.test\.yaml:5 records\.a\.A: /);
    expect(lines[1]).toMatch(/^zones\/example\.test\.yaml:6 records\.b\.AAAA: /);
    expect(lines[2]).toMatch(/^zones\/example\.test\.yaml:7 records\.c\.MX: /);
    expect(lines[3]).toMatch(/^zones\/example\.test\.yaml:8 records\.d\.BOGUS: .*neither a record type/);
  });

  it.each([
    { name: 'unknown top-level key', text: `${BASE}extra: 1\n`, want: /extra|Unrecognized/ },
    { name: 'bad TTL text', text: `ttl: { default: "5 minutes" }\n${BASE}`, want: /^zones\/example\.test\.yaml:1 ttl\.default: .*not a TTL/ },
    { name: 'min above max', text: `ttl: { min: 100, max: 10 }\n${BASE}`, want: /ttl\.min must not exceed ttl\.max/ },
    { name: 'YAML syntax error', text: `records: [\n`, want: /^zones\/example\.test\.yaml:\d+: / },
    { name: 'missing master file', text: `masterFile: gone.zone\n${BASE}`, want: /masterFile: cannot read gone\.zone: ENOENT/ },
    { name: 'maxAnswers zero', text: `${BASE}  www: { maxAnswers: 0, A: 192.0.2.1 }\n`, want: /records\.www\.maxAnswers/ },
    { name: 'a weight that is not whole', text: `${BASE}  www:\n    A: [127.0.0.1, 127.0.0.2]\n    pool: { members: { 127.0.0.1: { weight: 1.5 } } }\n`, want: /records\.www\.pool\.members\.127\.0\.0\.1\.weight: .*whole number/ },
    { name: 'a weight above 1000', text: `${BASE}  www:\n    A: [127.0.0.1, 127.0.0.2]\n    pool: { members: { 127.0.0.1: { weight: 5000 } } }\n`, want: /weight/ },
    { name: 'load feedback on load with a member whose check reads none', text: `${BASE}  www:\n    A: [127.0.0.1, 127.0.0.2]\n    pool:\n      members: { 127.0.0.1: { check: { load: { header: X-Load } } } }\n      balance: { feedback: { signal: load } }\n`, want: /balance\.feedback\.signal: signal: load needs check\.load/ },
    { name: 'a load JSON path with HEAD', text: `${BASE}  www:\n    A: 127.0.0.1\n    pool: { check: { method: HEAD, load: { json: a.b } } }\n`, want: /load\.json: a HEAD request has no body/ },
    { name: 'an ECS scope beyond the family', text: `${BASE}  www:\n    A: 127.0.0.1\n    pool: { balance: { ecs: { ipv4: 33 } } }\n`, want: /balance\.ecs\.ipv4/ },
    { name: 'a quorum that is neither a word nor a number', text: `${BASE}  www:\n    A: 127.0.0.1\n    pool: { quorum: most }\n`, want: /records\.www\.pool\.quorum/ },
    { name: 'a quorum of 0', text: `${BASE}  www:\n    A: 127.0.0.1\n    pool: { quorum: 0 }\n`, want: /records\.www\.pool\.quorum/ },
    { name: 'checkers that are not whole', text: `${BASE}  www:\n    A: 127.0.0.1\n    pool: { checkers: 1.5 }\n`, want: /records\.www\.pool\.checkers: .*whole number/ },
    { name: 'a feedback gain above 1', text: `${BASE}  www:\n    A: 127.0.0.1\n    pool: { balance: { feedback: { signal: latency, gain: 2 } } }\n`, want: /balance\.feedback\.gain/ },
  ])('rejects $name', ({ text, want }) => {
    const { issues } = parse(text);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.map(formatIssue).join('\n')).toMatch(want);
  });

  it('applies TTL precedence: value ttl, then name ttl, then zone default', () => {
    const { input, issues } = parse(`ttl: { default: 120 }\n${BASE}  www:\n    ttl: 30\n    A: [192.0.2.1, { value: 192.0.2.2, ttl: 10 }]\n  mail: { A: 192.0.2.25 }\n`);
    expect(issues).toEqual([]);
    const ttl = (name: string, addr: string) => input!.records.find((r) => r.name === name && JSON.stringify(r.data).includes(addr))!.ttl;
    expect(ttl('www.example.test', '192.0.2.1"')).toBe(30);
    expect(ttl('www.example.test', '192.0.2.2"')).toBe(10);
    expect(ttl('mail.example.test', '192.0.2.25')).toBe(120);
  });

  it('takes static records from a master file and adds round-robin settings on top', () => {
    const master = `$TTL 3600\n@ IN SOA ns1 hostmaster 5 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.1\nwww IN A 192.0.2.2\nwww IN A 192.0.2.3\n`;
    const { input, issues } = parse(`masterFile: example.test.zone\nttl: { max: 600 }\nrecords:\n  www: { ttl: 20, maxAnswers: 2 }\n`, { 'example.test.zone': master });
    expect(issues).toEqual([]);
    const built = buildZone(input!);
    const www = built.zone!.nodes.get('www.example.test')!.rrsets.get(1)!;
    expect(www.ttl).toBe(20);
    expect(www.maxAnswers).toBe(2);
    expect(www.rotates).toBe(true);
    expect(built.zone!.nodes.get('example.test')!.rrsets.get(2)!.ttl).toBe(600);
  });

  it('accepts signal: load when every member reads a load, its own check or the pool\'s', () => {
    const { issues } = parse(`${BASE}  www:\n    A: [127.0.0.1, 127.0.0.2]\n    pool:\n      members: { 127.0.0.1: { check: { load: { header: X-Load } } }, 127.0.0.2: { check: { load: { json: load } } } }\n      balance: { feedback: { signal: load } }\n`);
    expect(issues).toEqual([]);
  });

  it.each([
    { quorum: 'majority', checkers: undefined },
    { quorum: 'all', checkers: 1 },
    { quorum: 2, checkers: 3 },
  ])('keeps quorum $quorum and checkers $checkers in the pool spec', ({ quorum, checkers }) => {
    const extra = checkers === undefined ? '' : `, checkers: ${checkers}`;
    const { input, issues } = parse(`${BASE}  www:\n    A: [127.0.0.1, 127.0.0.2]\n    pool: { quorum: ${quorum}${extra} }\n`);
    expect(issues).toEqual([]);
    const zone = buildZone(input!).zone!;
    const spec = zone.nodes.get('www.example.test')!.rrsets.get(1)!.pool!;
    expect(spec.quorum).toBe(quorum);
    expect(spec.checkers).toBe(checkers);
  });

  it('rejects settings for a name that has no records', () => {
    const { issues } = parse(`${BASE}  ghost: { ttl: 30 }\n`);
    expect(issues.map(formatIssue).join('\n')).toMatch(/records\.ghost: settings given for ghost\.example\.test\., which has no records/);
  });
});

describe('zones directory', () => {
  const dirWith = writeZones;
  it('loads native and master-file zones, and does not load a claimed master file twice', () => {
    const master = `$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n`;
    const dir = dirWith({
      'a.test.yaml': `masterFile: a.test.zone\n`,
      'a.test.zone': master,
      'b.test.zone': master,
      'c.test.json': JSON.stringify({ soa: { mname: 'ns1', rname: 'h', serial: 1 }, records: { '@': { NS: 'ns1' }, ns1: { A: '192.0.2.1' } } }),
      'README.md': '# not a zone',
    });
    const result = loadZoneDir(dir);
    expect(result.issues).toEqual([]);
    expect(result.zones.map((z) => z.origin).sort()).toEqual(['a.test', 'b.test', 'c.test']);
  });
  it('reports a zone defined twice', () => {
    const dir = dirWith({
      'x.test.yaml': `soa: { mname: ns1, rname: h, serial: 1 }\nrecords: { "@": { NS: ns1 } }\n`,
      'other.yaml': `origin: x.test\nsoa: { mname: ns1, rname: h, serial: 1 }\nrecords: { "@": { NS: ns1 } }\n`,
    });
    expect(loadZoneDir(dir).issues.map(formatIssue).join('\n')).toMatch(/zone x\.test\. is also defined by/);
  });
});

describe('TXT values in YAML', () => {
  it.each([
    { name: 'unquoted value is one string, spaces and ; included', value: 'v=spf1 mx -all; x', want: ['v=spf1 mx -all; x'] },
    { name: 'quotes and backslashes survive', value: 'say "hi" \\o/', want: ['say "hi" \\o/'] },
    { name: 'quoted value is master-file rdata: several strings', value: '"a b" "c"', want: ['a b', 'c'] },
  ])('$name', ({ value, want }) => {
    const { input, issues } = parse(`${BASE}  t: { TXT: ${JSON.stringify(value)} }\n`);
    expect(issues).toEqual([]);
    const rec = input!.records.find((r) => r.name === 't.example.test')!;
    expect(rec.data.kind === 'TXT' && rec.data.data.map((b) => b.toString('latin1'))).toEqual(want);
  });
});

describe('pool standby forms', () => {
  const withStandby = (standby: string, allDown = 'backup') =>
    parse(`${BASE}  www:\n    A: [127.0.0.1, 127.0.0.2]\n    pool:\n      allDown: ${allDown}\n      standby: ${standby}\n`);
  const spec = (text: ReturnType<typeof withStandby>) => buildZone(text.input!).zone!.nodes.get('www.example.test')!.rrsets.get(1)!.pool!;
  const cases: { name: string; standby: string; addresses: string[]; mode: 'hot' | 'cold' }[] = [
    { name: 'a list is hot standby (as before)', standby: '[127.0.0.3]', addresses: ['127.0.0.3'], mode: 'hot' },
    { name: 'mode: cold', standby: '{ mode: cold, addresses: [127.0.0.3, "::3"] }', addresses: ['127.0.0.3', '::3'], mode: 'cold' },
    { name: 'mode: hot', standby: '{ mode: hot, addresses: [127.0.0.3] }', addresses: ['127.0.0.3'], mode: 'hot' },
    { name: 'the object form without a mode is hot', standby: '{ addresses: [127.0.0.3] }', addresses: ['127.0.0.3'], mode: 'hot' },
  ];
  for (const c of cases)
    it(c.name, () => {
      const r = withStandby(c.standby);
      expect(r.issues.map(formatIssue)).toEqual([]);
      expect(spec(r)).toMatchObject({ standby: c.addresses, standbyMode: c.mode });
    });

  const bad: { name: string; standby: string; allDown?: string; want: RegExp }[] = [
    { name: 'an unknown mode', standby: '{ mode: warm, addresses: [127.0.0.3] }', want: /records\.www\.pool\.standby/ },
    { name: 'a bad address names its place in addresses', standby: '{ mode: cold, addresses: [127.0.0.3, nope] }', want: /records\.www\.pool\.standby\.addresses\[1\]: "nope" is not an IP address/ },
    { name: 'an unknown key', standby: '{ mode: cold, address: [127.0.0.3] }', want: /records\.www\.pool\.standby/ },
    { name: 'cold without allDown: backup', standby: '{ mode: cold, addresses: [127.0.0.3] }', allDown: 'serveAll', want: /records\.www\.pool\.standby\.mode: cold standby addresses serve \(and are probed\) only under allDown: backup/ },
    { name: 'backup with an empty cold list', standby: '{ mode: cold, addresses: [] }', want: /allDown: backup needs standby addresses/ },
  ];
  for (const c of bad)
    it(`rejects ${c.name}`, () => {
      const lines = withStandby(c.standby, c.allDown).issues.map(formatIssue);
      expect(lines.join('\n')).toMatch(c.want);
    });
});
