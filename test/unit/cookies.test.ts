/**
 * DNS cookies as pure logic: the RFC 9018 server cookie against the
 * Appendix A test vectors, the validity window (an hour back, five minutes
 * ahead, serial arithmetic), the secret schedule (rotation by period,
 * instances sharing a secret file), and the per-query judgement.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addressBytes } from '../../src/cookies/address.ts';
import { serverCookieValid, timestampAcceptable, writeServerCookie } from '../../src/cookies/cookie.ts';
import { CookieSecrets, parseMasterKey, periodSecret, readMasterKey } from '../../src/cookies/secrets.ts';
import { CookieVerdict, ServerCookies } from '../../src/cookies/server-cookies.ts';
import { tempDir } from '../support/spawn.ts';

const hex = (s: string) => Buffer.from(s, 'hex');
const ipOf = (text: string) => {
  const out = new Uint8Array(16);
  const n = addressBytes(text, out);
  return { ip: out, n };
};

/** RFC 9018 Appendix A: the server cookie each reply carries. */
const VECTORS = [
  { name: 'A.1 learning a new server cookie', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', client: '2464c4abcf10c957', ip: '198.51.100.100', at: 1559731985, cookie: '010000005cf79f111f8130c3eee29480' },
  { name: 'A.2 the same client, 40 minutes later', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', client: '2464c4abcf10c957', ip: '198.51.100.100', at: 1559734385, cookie: '010000005cf7a871d4a564a1442aca77' },
  { name: 'A.3 another resolver', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', client: 'fc93fc62807ddb86', ip: '203.0.113.203', at: 1559734700, cookie: '010000005cf7a9acf73a7810aca2381e' },
  { name: 'A.4 an IPv6 client after the secret rolled over', secret: '445536bcd2513298075a5d379663c962', client: '22681ab97d52c298', ip: '2001:db8:220:1:59de:d0f4:8769:82b8', at: 1559741961, cookie: '010000005cf7c609a6bb79d16625507a' },
];

describe('RFC 9018 server cookie (Appendix A vectors)', () => {
  it.each(VECTORS)('$name: writes the cookie the RFC shows', ({ secret, client, ip, at, cookie }) => {
    const { ip: bytes, n } = ipOf(ip);
    const out = new Uint8Array(16);
    writeServerCookie(out, 0, hex(client), 0, at, bytes, n, hex(secret));
    expect(Buffer.from(out).toString('hex')).toBe(cookie);
  });

  it.each([
    { name: 'A.2: the cookie A.1 handed out, returned 40 minutes later', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '198.51.100.100', option: '2464c4abcf10c957010000005cf79f111f8130c3eee29480', now: 1559734385, valid: true },
    // A.3's query carries reserved octets the client chose (abcdef): they are part of the hash.
    { name: 'A.3: reserved octets as sent are hashed (checked at its own time)', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '203.0.113.203', option: 'fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5', now: 0x5cf78f71, valid: true },
    { name: 'A.3: the same cookie 1 h 52 min after it was made is too old', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '203.0.113.203', option: 'fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5', now: 1559734700, valid: false },
    { name: 'A.4: the cookie the old secret made is valid with the old secret', secret: 'dd3bdf9344b678b185a6f5cb60fca715', ip: '2001:db8:220:1:59de:d0f4:8769:82b8', option: '22681ab97d52c298010000005cf7c57926556bd0934c72f8', now: 1559741961, valid: true },
    { name: 'A.4: ...and not with the new one', secret: '445536bcd2513298075a5d379663c962', ip: '2001:db8:220:1:59de:d0f4:8769:82b8', option: '22681ab97d52c298010000005cf7c57926556bd0934c72f8', now: 1559741961, valid: false },
    { name: 'a valid cookie presented from another address is not', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '198.51.100.101', option: '2464c4abcf10c957010000005cf79f111f8130c3eee29480', now: 1559734385, valid: false },
    { name: 'one flipped hash bit is not valid', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '198.51.100.100', option: '2464c4abcf10c957010000005cf79f111f8130c3eee29481', now: 1559734385, valid: false },
    { name: 'another client cookie with the same server cookie is not valid', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '198.51.100.100', option: '2464c4abcf10c958010000005cf79f111f8130c3eee29480', now: 1559734385, valid: false },
    { name: 'version 2 is not ours', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '198.51.100.100', option: '2464c4abcf10c957020000005cf79f111f8130c3eee29480', now: 1559734385, valid: false },
    { name: 'an 8-octet server cookie (another implementation\'s) is not ours', secret: 'e5e973e5a6b2a43f48e7dc849e37bfcf', ip: '198.51.100.100', option: '2464c4abcf10c9570100000011223344', now: 1559734385, valid: false },
  ])('$name', ({ secret, ip, option, now, valid }) => {
    const { ip: bytes, n } = ipOf(ip);
    const msg = hex(option);
    expect(serverCookieValid(msg, 0, msg.length, now, bytes, n, () => hex(secret))).toBe(valid);
  });
});

describe('cookie timestamp window (RFC 9018 §4.3)', () => {
  const now = 1559731985;
  it.each([
    { name: 'stamped now', ts: now, ok: true },
    { name: 'an hour old: the last second it holds', ts: now - 3600, ok: true },
    { name: 'an hour and a second old', ts: now - 3601, ok: false },
    { name: 'five minutes ahead (clock skew between servers)', ts: now + 300, ok: true },
    { name: 'five minutes and a second ahead', ts: now + 301, ok: false },
    { name: 'a day old', ts: now - 86400, ok: false },
  ])('$name', ({ ts, ok }) => {
    expect(timestampAcceptable(ts >>> 0, now)).toBe(ok);
  });
  it('an hour old across the 2^32 wrap is an hour, not four billion seconds', () => {
    expect(timestampAcceptable(0xffffffff - 3000, 500)).toBe(true);
    expect(timestampAcceptable(0xffffffff - 3200, 500)).toBe(false);
  });
});

describe('peer addresses as hashed', () => {
  it.each([
    { text: '198.51.100.100', bytes: 'c6336464' },
    { text: '::ffff:198.51.100.100', bytes: 'c6336464' },
    { text: '::1', bytes: '00000000000000000000000000000001' },
    { text: '2001:db8:220:1:59de:d0f4:8769:82b8', bytes: '20010db80220000159ded0f4876982b8' },
    { text: 'fe80::1%eth0', bytes: 'fe800000000000000000000000000001' },
    { text: '', bytes: '' },
    { text: '1.2.3', bytes: '' },
    { text: '1:::2', bytes: '' },
    { text: '256.0.0.1', bytes: '' },
  ])('$text', ({ text, bytes }) => {
    const { ip, n } = ipOf(text);
    expect(Buffer.from(ip.subarray(0, n)).toString('hex')).toBe(bytes);
  });
});

describe('secret file', () => {
  it('reads hex with whitespace anywhere', () => {
    expect(parseMasterKey(' 0011 2233445566778899\naabbccddeeff\n', 'f').toString('hex')).toBe('00112233445566778899aabbccddeeff');
  });
  it.each([
    { name: 'too short', text: '00112233', message: /4 bytes of secret; at least 16/ },
    { name: 'not hex', text: 'zz'.repeat(16), message: /expected hex digits/ },
    { name: 'an odd number of digits', text: '0'.repeat(33), message: /expected hex digits/ },
    { name: 'empty', text: '\n', message: /expected hex digits/ },
  ])('refuses a secret that is $name, naming the file', ({ text, message }) => {
    expect(() => parseMasterKey(text, '/etc/rrdns/cookie.key')).toThrow(message);
    expect(() => parseMasterKey(text, '/etc/rrdns/cookie.key')).toThrow(/cookie secret file \/etc\/rrdns\/cookie\.key/);
  });
  it('an unreadable file is an error naming it', () => {
    const missing = path.join(tempDir('cookie'), 'nope.key');
    expect(() => readMasterKey(missing)).toThrow(`cookie secret file ${missing} cannot be read: ENOENT`);
  });
  it('reads a file', () => {
    const file = path.join(tempDir('cookie'), 'cookie.key');
    fs.writeFileSync(file, 'e5e973e5a6b2a43f48e7dc849e37bfcf\n');
    expect(readMasterKey(file).toString('hex')).toBe('e5e973e5a6b2a43f48e7dc849e37bfcf');
  });
});

/** A query's COOKIE option data and what the response carries, through ServerCookies. */
function judge(server: ServerCookies, option: Buffer, remote: string) {
  const out = new Uint8Array(24);
  const verdict = server.judge(option, 0, option.length, remote, out);
  return { verdict, cookie: Buffer.from(out) };
}

const MASTER = hex('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff');
const LIFETIME = 26 * 3600;

describe('the secret schedule', () => {
  it('derives the period secret from the master key: HMAC-SHA256(master, "rrdns-cookie-v1" | period), first 16 octets', () => {
    const s = new CookieSecrets(MASTER, LIFETIME, () => 0);
    const t = 1_700_000_000;
    expect(s.secretFor(t)).toEqual(periodSecret(MASTER, Math.floor(t / LIFETIME)));
    expect(s.secretFor(t)).toHaveLength(16);
    expect(periodSecret(MASTER, 1)).not.toEqual(periodSecret(MASTER, 2));
  });

  it('rotates by period: a cookie made before the rollover stays valid after it, then expires with its hour', () => {
    // The rollover falls 10 minutes after the first query.
    const boundary = (Math.floor(1_700_000_000 / LIFETIME) + 1) * LIFETIME;
    let now = boundary - 600;
    const server = new ServerCookies(new CookieSecrets(MASTER, LIFETIME, () => now));
    const client = hex('0102030405060708');
    const first = judge(server, client, '192.0.2.1');
    expect(first.verdict).toBe(CookieVerdict.CLIENT_ONLY);
    now = boundary + 600; // the next period: a new secret
    const again = judge(server, first.cookie, '192.0.2.1');
    expect(again.verdict).toBe(CookieVerdict.VALID);
    // 20 minutes old: handed back as it is (RFC 9018 §4.3 lets a young cookie be reused).
    expect(again.cookie).toEqual(first.cookie);
    now = boundary - 600 + 3601;
    expect(judge(server, first.cookie, '192.0.2.1').verdict).toBe(CookieVerdict.INVALID);
  });

  it('renews a cookie older than half an hour, stamped now and valid', () => {
    let now = 1_700_000_000;
    const server = new ServerCookies(new CookieSecrets(MASTER, LIFETIME, () => now));
    const first = judge(server, hex('0102030405060708'), '192.0.2.1');
    now += 1801;
    const renewed = judge(server, first.cookie, '192.0.2.1');
    expect(renewed.verdict).toBe(CookieVerdict.VALID);
    expect(renewed.cookie).not.toEqual(first.cookie);
    expect(renewed.cookie.readUInt32BE(12)).toBe(now);
    expect(judge(server, renewed.cookie, '192.0.2.1').verdict).toBe(CookieVerdict.VALID);
  });

  it('two instances with the same master key (secret file) accept each other\'s cookies; with different keys they do not', () => {
    const now = 1_700_000_000;
    const a = new ServerCookies(new CookieSecrets(MASTER, LIFETIME, () => now));
    const b = new ServerCookies(new CookieSecrets(Uint8Array.from(MASTER), LIFETIME, () => now + 120)); // its clock two minutes ahead
    const other = new ServerCookies(new CookieSecrets(hex('ff'.repeat(32)), LIFETIME, () => now));
    const fromA = judge(a, hex('0102030405060708'), '2001:db8::53');
    expect(judge(b, fromA.cookie, '2001:db8::53').verdict).toBe(CookieVerdict.VALID);
    const fromB = judge(b, hex('0102030405060708'), '2001:db8::53');
    expect(judge(a, fromB.cookie, '2001:db8::53').verdict).toBe(CookieVerdict.VALID);
    expect(judge(other, fromA.cookie, '2001:db8::53').verdict).toBe(CookieVerdict.INVALID);
  });

  it('an instance whose clock is ahead across a rollover still accepts (the next period\'s secret)', () => {
    const boundary = (Math.floor(1_700_000_000 / LIFETIME) + 1) * LIFETIME;
    const ahead = new ServerCookies(new CookieSecrets(MASTER, LIFETIME, () => boundary + 100));
    const behind = new ServerCookies(new CookieSecrets(MASTER, LIFETIME, () => boundary - 100));
    const made = judge(ahead, hex('0102030405060708'), '192.0.2.7');
    expect(judge(behind, made.cookie, '192.0.2.7').verdict).toBe(CookieVerdict.VALID);
  });

  it('a replaced master key (setMasterKey) no longer accepts cookies of the old one', () => {
    const secrets = new CookieSecrets(MASTER, LIFETIME, () => 1_700_000_000);
    const server = new ServerCookies(secrets);
    const made = judge(server, hex('0102030405060708'), '192.0.2.1');
    secrets.setMasterKey(hex('aa'.repeat(16)));
    expect(judge(server, made.cookie, '192.0.2.1').verdict).toBe(CookieVerdict.INVALID);
  });

  it('echoes the client cookie and answers an invalid server cookie with a fresh valid one', () => {
    const server = new ServerCookies(new CookieSecrets(MASTER, LIFETIME, () => 1_700_000_000));
    const forged = hex('0102030405060708' + '01000000' + (1_700_000_000).toString(16) + '0000000000000000');
    const r = judge(server, forged, '192.0.2.1');
    expect(r.verdict).toBe(CookieVerdict.INVALID);
    expect(r.cookie.subarray(0, 8)).toEqual(forged.subarray(0, 8));
    expect(judge(server, r.cookie, '192.0.2.1').verdict).toBe(CookieVerdict.VALID);
  });

  it('judges nothing for a peer that is not an IP address', () => {
    const server = new ServerCookies(new CookieSecrets(MASTER, LIFETIME, () => 1_700_000_000));
    expect(judge(server, hex('0102030405060708'), '').verdict).toBe(CookieVerdict.NONE);
  });
});
