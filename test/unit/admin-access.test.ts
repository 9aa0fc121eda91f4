/** Host header checks (DNS rebinding) and bearer token comparison: src/observability/admin-access.ts. */
import { describe, expect, it } from 'vitest';
import { canonicalIp, hostAllowed, parseHostHeader, TokenCheck } from '../../src/observability/admin-access.ts';

describe('parseHostHeader', () => {
  const cases: [name: string, header: string, expected: { host: string; port: number | undefined } | undefined][] = [
    ['IPv4', '127.0.0.1', { host: '127.0.0.1', port: undefined }],
    ['IPv4 with port', '127.0.0.1:8053', { host: '127.0.0.1', port: 8053 }],
    ['IPv6 in brackets', '[::1]', { host: '::1', port: undefined }],
    ['IPv6 in brackets with port', '[::1]:8053', { host: '::1', port: 8053 }],
    ['IPv6 upper case', '[2001:DB8::1]:80', { host: '2001:db8::1', port: 80 }],
    ['name', 'Admin.Example', { host: 'admin.example', port: undefined }],
    ['name with port', 'localhost:8053', { host: 'localhost', port: 8053 }],
    ['IPv6 without brackets', '::1', undefined],
    ['IPv6 without brackets, with what looks like a port', '::1:8053', undefined],
    ['brackets around a name', '[localhost]', undefined],
    ['brackets around IPv4', '[127.0.0.1]', undefined],
    ['port out of range', '127.0.0.1:70000', undefined],
    ['empty port', '127.0.0.1:', undefined],
    ['userinfo', 'user@127.0.0.1', undefined],
    ['two hosts', '127.0.0.1, evil.example', undefined],
    ['empty', '', undefined],
    ['path', '127.0.0.1/x', undefined],
  ];
  for (const [name, header, expected] of cases) it(name, () => expect(parseHostHeader(header)).toEqual(expected));
});

describe('canonicalIp', () => {
  const cases: [string, string | undefined][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:7F00:1', '127.0.0.1'],
    ['2001:0db8::0001', '2001:db8::1'],
    ['localhost', undefined],
    ['127.1', undefined],
  ];
  for (const [text, expected] of cases) it(text, () => expect(canonicalIp(text)).toBe(expected));
});

describe('hostAllowed', () => {
  const cases: [name: string, header: string | undefined, listener: string, allowed: boolean][] = [
    ['own IPv4 with port', '127.0.0.1:8053', '127.0.0.1', true],
    ['own IPv4 without port', '127.0.0.1', '127.0.0.1', true],
    ['own IPv4, other port (port mapping)', '127.0.0.1:9000', '127.0.0.1', true],
    ['localhost on loopback', 'localhost:8053', '127.0.0.1', true],
    ['localhost, any case, trailing dot', 'LocalHost.:8053', '127.0.0.1', true],
    ['localhost on IPv6 loopback', 'localhost', '::1', true],
    ['own IPv6 in brackets', '[::1]:8053', '::1', true],
    ['own IPv6, long form', '[0:0:0:0:0:0:0:1]', '::1', true],
    ['own IPv4 as mapped IPv6', '[::ffff:127.0.0.1]', '127.0.0.1', true],
    ['other loopback address', '127.0.0.2:8053', '127.0.0.1', false],
    ['IPv4 Host for an IPv6 listener', '127.0.0.1', '::1', false],
    ['a DNS name (rebinding)', 'evil.example:8053', '127.0.0.1', false],
    ['a name resolving to loopback (rebinding)', '127.0.0.1.nip.io', '127.0.0.1', false],
    ['missing Host (HTTP/1.0)', undefined, '127.0.0.1', false],
    ['empty Host', '', '127.0.0.1', false],
    ['garbage', '127.0.0.1 evil', '127.0.0.1', false],
    ['specific non-loopback listener: its address', '192.0.2.1:8053', '192.0.2.1', true],
    ['specific non-loopback listener: localhost', 'localhost:8053', '192.0.2.1', false],
    ['specific non-loopback listener: another IP', '192.0.2.2:8053', '192.0.2.1', false],
    ['wildcard IPv4: any IPv4 literal', '198.51.100.9:8053', '0.0.0.0', true],
    ['wildcard IPv4: an IPv6 literal', '[2001:db8::1]:8053', '0.0.0.0', true],
    ['wildcard IPv4: localhost (it includes loopback)', 'localhost:8053', '0.0.0.0', true],
    ['wildcard IPv4: a DNS name', 'rrdns.example:8053', '0.0.0.0', false],
    ['wildcard IPv6: an IPv4 literal', '10.1.2.3', '::', true],
    ['wildcard IPv6: a DNS name', 'rrdns.example', '::', false],
  ];
  for (const [name, header, listener, allowed] of cases) it(name, () => expect(hostAllowed(header, listener)).toBe(allowed));
});

describe('TokenCheck', () => {
  const check = new TokenCheck('s3cret-token-0123456789');
  const cases: [name: string, header: string | undefined, expected: string][] = [
    ['no header', undefined, 'none'],
    ['the token', 'Bearer s3cret-token-0123456789', 'valid'],
    ['scheme in lower case', 'bearer s3cret-token-0123456789', 'valid'],
    ['trailing space', 'Bearer s3cret-token-0123456789 ', 'valid'],
    ['one character more', 'Bearer s3cret-token-01234567890', 'invalid'],
    ['one character less', 'Bearer s3cret-token-012345678', 'invalid'],
    ['a prefix of it', 'Bearer s3cret', 'invalid'],
    ['another scheme', 'Basic s3cret-token-0123456789', 'invalid'],
    ['no scheme', 's3cret-token-0123456789', 'invalid'],
    ['scheme only', 'Bearer', 'invalid'],
    ['two tokens', 'Bearer s3cret-token-0123456789 s3cret-token-0123456789', 'invalid'],
    ['empty', '', 'invalid'],
  ];
  for (const [name, header, expected] of cases) it(name, () => expect(check.check(header)).toBe(expected));
});
