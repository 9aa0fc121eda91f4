import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/errors.ts';
import { parseNativeZone } from '../../src/zone/native.ts';
import { assignSerial, contentDigest, serialAdd, serialGt, serialOf, withSerial } from '../../src/zone/serial.ts';
import { buildZone, type Zone } from '../../src/zone/zone.ts';
import { zoneFromText } from '../support/zone-text.ts';

const zoneText = (serial: number | string, extra = '') => `$TTL 300
@ IN SOA ns1 hostmaster ${serial} 3600 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A 192.0.2.10
www IN A 192.0.2.11
${extra}`;

const zone = (serial: number, extra = '') => zoneFromText('s.test', zoneText(serial, extra));

function nativeZone(yaml: string): Zone {
  const parsed = parseNativeZone(yaml, { file: 's.test.yaml', defaultOrigin: 's.test', readMasterFile: () => '' });
  if (!parsed.input) throw new Error(parsed.issues.map(formatIssue).join('\n'));
  const built = buildZone(parsed.input);
  if (!built.zone) throw new Error(built.issues.map(formatIssue).join('\n'));
  return built.zone;
}
const autoYaml = (extra = '') => `soa: { mname: ns1, rname: hostmaster, serial: auto }
records:
  "@": { NS: ns1 }
  ns1: { A: 192.0.2.53 }
${extra}`;

describe('RFC 1982 serial arithmetic', () => {
  it('compares across the wrap', () => {
    expect(serialGt(2, 1)).toBe(true);
    expect(serialGt(1, 2)).toBe(false);
    expect(serialGt(1, 1)).toBe(false);
    expect(serialGt(0, 0xffffffff)).toBe(true); // 0 follows 2^32-1
    expect(serialGt(0xffffffff, 0)).toBe(false);
    expect(serialGt(5, 0xfffffff0)).toBe(true);
    expect(serialGt(2 ** 31 - 1, 0)).toBe(true);
    // Exactly 2^31 apart is undefined (RFC 1982 §3.2): neither is greater.
    expect(serialGt(2 ** 31, 0)).toBe(false);
    expect(serialGt(0, 2 ** 31)).toBe(false);
  });

  it('adds with wrap-around', () => {
    expect(serialAdd(0xffffffff, 1)).toBe(0);
    expect(serialAdd(41, 1)).toBe(42);
    expect(serialGt(serialAdd(0xffffffff, 1), 0xffffffff)).toBe(true);
  });
});

describe('content digest', () => {
  it('ignores the serial, record order and name case of lookups, but sees every record, TTL and rdata change', () => {
    const base = contentDigest(zone(1));
    expect(contentDigest(zone(99))).toBe(base);
    // Same records, different order in the file.
    const reordered = zoneFromText(
      's.test',
      `$TTL 300
www IN A 192.0.2.11
@ IN SOA ns1 hostmaster 7 3600 900 1209600 60
www IN A 192.0.2.10
ns1 IN A 192.0.2.53
@ IN NS ns1
`,
    );
    expect(contentDigest(reordered)).toBe(base);
    expect(contentDigest(zone(1, 'new IN TXT "x"'))).not.toBe(base);
    expect(contentDigest(zoneFromText('s.test', zoneText(1).replace('192.0.2.11', '192.0.2.12')))).not.toBe(base);
    expect(contentDigest(zoneFromText('s.test', zoneText(1).replace('www IN A 192.0.2.10', 'www 60 IN A 192.0.2.10')))).not.toBe(base);
    // SOA fields other than the serial are content.
    expect(contentDigest(zoneFromText('s.test', zoneText(1).replace('3600 900', '7200 900')))).not.toBe(base);
  });

  it('is computed once per zone version', () => {
    const z = zone(1);
    expect(contentDigest(z)).toBe(contentDigest(z));
    expect(contentDigest(withSerial(z, 5))).toBe(contentDigest(z));
  });

  it('handles a large zone (5000 names)', () => {
    const extra = Array.from({ length: 5000 }, (_, i) => `h${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).join('\n');
    const big = zone(1, extra);
    expect(contentDigest(big)).toMatch(/^[0-9a-f]{64}$/);
    expect(contentDigest(zone(2, extra))).toBe(contentDigest(big));
  });
});

describe('assignSerial', () => {
  it('first load serves the declared serial', () => {
    const d = assignSerial(undefined, zone(2026112501), 1_800_000_000);
    expect(d).toMatchObject({ serial: 2026112501, changed: true, warning: undefined });
    expect(serialOf(d.zone)).toBe(2026112501);
  });

  it('unchanged content keeps the served serial, quietly', () => {
    const first = assignSerial(undefined, zone(10)).zone;
    const d = assignSerial(first, zone(10));
    expect(d).toMatchObject({ serial: 10, changed: false, warning: undefined });
  });

  it('a change with a bumped file serial serves the file serial', () => {
    const first = assignSerial(undefined, zone(10)).zone;
    const d = assignSerial(first, zone(11, 'new IN A 192.0.2.99'));
    expect(d).toMatchObject({ serial: 11, changed: true, warning: undefined });
  });

  it('a change without a bump serves previous + 1 and warns; the next unchanged reload stays put', () => {
    const first = assignSerial(undefined, zone(10)).zone;
    const d = assignSerial(first, zone(10, 'new IN A 192.0.2.99'));
    expect(d.serial).toBe(11);
    expect(d.changed).toBe(true);
    expect(d.warning).toMatch(/not greater than the served 10; serving 11/);
    expect(serialOf(d.zone)).toBe(11);
    const again = assignSerial(d.zone, zone(10, 'new IN A 192.0.2.99'));
    expect(again).toMatchObject({ serial: 11, changed: false, warning: undefined });
    // Another unbumped change goes on from the served serial.
    expect(assignSerial(again.zone, zone(10, 'new IN A 192.0.2.98')).serial).toBe(12);
  });

  it('a lowered file serial never makes the served serial go backwards', () => {
    const first = assignSerial(undefined, zone(10)).zone;
    const same = assignSerial(first, zone(5));
    expect(same.serial).toBe(10);
    expect(same.warning).toMatch(/went from 10 to 5/);
    expect(assignSerial(first, zone(5, 'x IN A 192.0.2.1')).serial).toBe(11);
  });

  it('wraps per RFC 1982 at 2^32 - 1', () => {
    const first = assignSerial(undefined, zone(0xffffffff)).zone;
    const d = assignSerial(first, zone(0xffffffff, 'x IN A 192.0.2.1'));
    expect(d.serial).toBe(0);
    expect(serialGt(d.serial, 0xffffffff)).toBe(true);
  });

  it('serial: auto starts at the clock and follows content changes', () => {
    const t0 = 1_800_000_000;
    const first = assignSerial(undefined, nativeZone(autoYaml()), t0);
    expect(first.serial).toBe(t0);
    expect(first.zone.serialAuto).toBe(true);
    // Unchanged: stays, even later.
    expect(assignSerial(first.zone, nativeZone(autoYaml()), t0 + 100)).toMatchObject({ serial: t0, changed: false });
    // Changed later: the clock, which is greater.
    const later = assignSerial(first.zone, nativeZone(autoYaml('  x: { A: 192.0.2.1 }\n')), t0 + 100);
    expect(later).toMatchObject({ serial: t0 + 100, changed: true, warning: undefined });
    // Changed twice within the same second: +1.
    const fast = assignSerial(later.zone, nativeZone(autoYaml('  x: { A: 192.0.2.2 }\n')), t0 + 100);
    expect(fast.serial).toBe(t0 + 101);
  });

  it('a native zone without a serial is auto', () => {
    const z = nativeZone(autoYaml().replace(', serial: auto', ''));
    expect(z.serialAuto).toBe(true);
    expect(assignSerial(undefined, z, 1234).serial).toBe(1234);
  });
});

describe('a version kept by the state directory counts as the previous one (restart)', () => {
  const kept = (z: Zone, serial: number, declared = serial) => ({ serial, digest: contentDigest(z), declared, auto: z.serialAuto });
  it.each([
    { name: 'unchanged content keeps the stored serial', stored: () => kept(zone(10), 10), next: () => zone(10), now: 0, want: 10, changed: false },
    { name: 'unchanged content, file lowered: stored serial stays (warned)', stored: () => kept(zone(10), 10), next: () => zone(5), now: 0, want: 10, changed: false, warns: true },
    { name: 'changed content, file lowered: stored + 1', stored: () => kept(zone(10), 10), next: () => zone(5, 'x IN A 192.0.2.1'), now: 0, want: 11, changed: true, warns: true },
    { name: 'changed content, file raised: the file wins', stored: () => kept(zone(10), 10), next: () => zone(20, 'x IN A 192.0.2.1'), now: 0, want: 20, changed: true },
    { name: 'changed content across the wrap: stored 2^32-1 + 1 = 0', stored: () => kept(zone(0xfffffff0), 0xffffffff, 0xfffffff0), next: () => zone(0xfffffff0, 'x IN A 192.0.2.1'), now: 0, want: 0, changed: true, warns: true },
    { name: 'auto, changed in the same second as stored: stored + 1', stored: () => kept(nativeZone(autoYaml()), 1_700_000_000, 0), next: () => nativeZone(autoYaml('  x: { A: 192.0.2.1 }')), now: 1_700_000_000, want: 1_700_000_001, changed: true },
    { name: 'auto, changed later: now', stored: () => kept(nativeZone(autoYaml()), 1_700_000_000, 0), next: () => nativeZone(autoYaml('  x: { A: 192.0.2.1 }')), now: 1_700_000_500, want: 1_700_000_500, changed: true },
    { name: 'auto, unchanged: the stored serial even with a clock behind it', stored: () => kept(nativeZone(autoYaml()), 1_700_000_000, 0), next: () => nativeZone(autoYaml()), now: 1_600_000_000, want: 1_700_000_000, changed: false },
  ])('$name', ({ stored, next, now, want, changed, warns }) => {
    const d = assignSerial(stored(), next(), now);
    expect(d.serial).toBe(want);
    expect(serialOf(d.zone)).toBe(want);
    expect(d.changed).toBe(changed);
    expect(d.warning !== undefined).toBe(warns === true);
  });
});

it('after the wrap, a file serial of 1 follows a stored 2^32-1 and is served as it is', () => {
  const d = assignSerial({ serial: 0xffffffff, digest: contentDigest(zone(0xffffffff)), declared: 0xffffffff, auto: false }, zone(1, 'x IN A 192.0.2.1'), 0);
  expect(d.serial).toBe(1);
  expect(d.warning).toBeUndefined();
});
