import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/errors.ts';
import { parseNativeText } from '../support/zone-text.ts';
import { parseAllowEntry, parseNotifyTarget, transferSettings } from '../../src/zone/transfer.ts';

const parse = (text: string, masterFiles: Record<string, string> = {}) => parseNativeText(text, 't.test', masterFiles);

const BASE = `soa: { mname: ns1, rname: hostmaster, serial: 1 }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
`;

describe('transfer allow list', () => {
  it('matches addresses and CIDRs of both families, IPv4-mapped peers included', () => {
    const t = transferSettings(['127.0.0.1', '10.0.0.0/8', '::1', '2001:db8::/32'], []);
    expect(t.allows('127.0.0.1')).toBe(true);
    expect(t.allows('::ffff:127.0.0.1')).toBe(true);
    expect(t.allows('127.0.0.2')).toBe(false);
    expect(t.allows('10.255.1.2')).toBe(true);
    expect(t.allows('11.0.0.1')).toBe(false);
    expect(t.allows('::1')).toBe(true);
    expect(t.allows('2001:db8:ffff::5')).toBe(true);
    expect(t.allows('2001:db9::5')).toBe(false);
    expect(t.allows('')).toBe(false);
    expect(t.allows('not-an-address')).toBe(false);
  });

  it('allows no one by default', () => {
    const t = transferSettings([], []);
    expect(t.allows('127.0.0.1')).toBe(false);
    expect(t.allows('::1')).toBe(false);
  });

  it('rejects what is not an address or a CIDR', () => {
    expect(parseAllowEntry('192.0.2.0/24')).toEqual({ address: '192.0.2.0', prefix: 24, family: 'ipv4' });
    expect(parseAllowEntry('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(() => parseAllowEntry('10.0.0.0/33')).toThrow(/prefix length must be 0\.\.32/);
    expect(() => parseAllowEntry('2001:db8::/129')).toThrow(/0\.\.128/);
    expect(() => parseAllowEntry('10.0.0.0/x')).toThrow(/prefix length/);
    expect(() => parseAllowEntry('secondary.example')).toThrow(/not an IP address or CIDR/);
    expect(() => parseAllowEntry('fe80::1%eth0')).toThrow(/not an IP address/);
  });

  it('notify targets: address with port, bracketed IPv6, bare address on port 53', () => {
    expect(parseNotifyTarget('127.0.0.1:5300')).toEqual({ host: '127.0.0.1', port: 5300 });
    expect(parseNotifyTarget('[::1]:5300')).toEqual({ host: '::1', port: 5300 });
    expect(parseNotifyTarget('192.0.2.7')).toEqual({ host: '192.0.2.7', port: 53 });
    expect(parseNotifyTarget('::1')).toEqual({ host: '::1', port: 53 });
    expect(() => parseNotifyTarget('ns2.example:53')).toThrow(/not an IP address/);
    expect(() => parseNotifyTarget('127.0.0.1:0')).toThrow(/port 0/);
    expect(() => parseNotifyTarget('127.0.0.1:70000')).toThrow(/out of range/);
  });
});

describe('transfer settings in the native zone format', () => {
  it('parses allow and notify into the zone input', () => {
    const { input, issues } = parse(`${BASE}transfer:
  allow: [127.0.0.1, 10.0.0.0/8, "::1"]
  notify: [127.0.0.1:5300, "[::1]:5301"]
`);
    expect(issues).toEqual([]);
    expect(input!.transfer!.allow).toEqual(['127.0.0.1', '10.0.0.0/8', '::1']);
    expect(input!.transfer!.notify).toEqual([
      { host: '127.0.0.1', port: 5300 },
      { host: '::1', port: 5301 },
    ]);
    expect(input!.transfer!.allows('10.1.2.3')).toBe(true);
  });

  it('is off when absent', () => {
    const { input } = parse(BASE);
    expect(input!.transfer).toBeUndefined();
  });

  it('reports bad entries with file, line and path, all at once', () => {
    const { issues } = parse(`${BASE}transfer:
  allow:
    - 127.0.0.1
    - 10.0.0.0/40
    - ns2.example
  notify: [127.0.0.1:99999]
`);
    expect(issues.map(formatIssue)).toEqual([
      'zones/t.test.yaml:8 transfer.allow[1]: "10.0.0.0/40": the prefix length must be 0..32',
      'zones/t.test.yaml:9 transfer.allow[2]: "ns2.example" is not an IP address or CIDR (e.g. 192.0.2.1, 10.0.0.0/8, 2001:db8::/32)',
      'zones/t.test.yaml:10 transfer.notify[0]: port 99999 in "127.0.0.1:99999" is out of range',
    ]);
  });

  it('rejects unknown keys and notify without allow', () => {
    expect(parse(`${BASE}transfer:\n  allow: [127.0.0.1]\n  alow: [127.0.0.2]\n`).issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^zones\/t\.test\.yaml:6 transfer: .*alow/),
    ]);
    expect(parse(`${BASE}transfer:\n  notify: 127.0.0.1:5300\n`).issues.map(formatIssue)).toEqual([
      'zones/t.test.yaml:6 transfer.notify: notify needs transfer.allow: the secondaries notified must be allowed to transfer the zone',
    ]);
  });

  it('works on a native zone that wraps a master file', () => {
    const master = `$TTL 300
@ IN SOA ns1 hostmaster 7 3600 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.53
`;
    const { input, issues } = parse(`masterFile: t.test.zone\ntransfer: { allow: 127.0.0.1 }\n`, { 't.test.zone': master });
    expect(issues).toEqual([]);
    expect(input!.transfer!.allows('127.0.0.1')).toBe(true);
    expect(input!.serialAuto).toBe(false);
  });

  it('serial: auto, or no serial, in a native SOA; other words are errors', () => {
    expect(parse(BASE.replace('serial: 1', 'serial: auto')).input!.serialAuto).toBe(true);
    expect(parse(BASE.replace(', serial: 1', '')).input!.serialAuto).toBe(true);
    expect(parse(BASE).input!.serialAuto).toBe(false);
    expect(parse(BASE.replace('serial: 1', 'serial: later')).issues.map(formatIssue)[0]).toMatch(/^zones\/t\.test\.yaml:1 soa\.serial: /);
  });
});
