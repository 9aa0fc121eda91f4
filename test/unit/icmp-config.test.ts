/** `type: icmp` in the check schema, the target key and the `rrdns check` text. */
import { describe, expect, it } from 'vitest';
import { CheckSchema } from '../../src/config/health-check.ts';
import { describeTarget, makeTarget } from '../../src/health/target.ts';

function issues(input: unknown): string[] {
  const r = CheckSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('icmp checks in the schema', () => {
  it('take interval, timeout, fall and rise like the others, with the same defaults; no port', () => {
    const c = CheckSchema.parse({ type: 'icmp' });
    expect(c).toMatchObject({ type: 'icmp', port: 0, interval: 5000, timeout: 2000, fall: 3, rise: 2 });
    expect(CheckSchema.parse({ type: 'icmp', interval: '1s', fall: 2, rise: 4 })).toMatchObject({ interval: 1000, timeout: 500, fall: 2, rise: 4 });
  });

  const refused: [string, Record<string, unknown>, string][] = [
    ['a port', { port: 80 }, 'port: port does not apply to icmp checks (an echo request has no port; use type: tcp to check a port)'],
    ['a path', { path: '/health' }, 'path: path applies to http/https checks only'],
    ['a method', { method: 'HEAD' }, 'method: method applies to http/https checks only'],
    ['tls', { tls: { verify: false } }, 'tls: tls applies to https checks only'],
    ['a body match', { body: { match: 'ok' } }, 'body: body applies to http/https checks only'],
    ['headers', { headers: { 'x-a': 'b' } }, 'headers: headers applies to http/https checks only'],
    ['keepAlive', { keepAlive: true }, 'keepAlive: keepAlive applies to http/https checks only'],
    ['a load source', { load: { header: 'X-Load' } }, 'load: load applies to http/https checks only'],
    ['a timeout under 20ms', { interval: '1s', timeout: '15ms' }, 'timeout: an icmp timeout must be at least 20ms (an echo is sent every timeout/2, at least 10ms apart), got 15ms'],
    ['a timeout not shorter than the interval', { interval: '1s', timeout: '1s' }, 'timeout: timeout (1000ms) must be shorter than interval (1000ms)'],
  ];
  it.each(refused)('refuses %s with a clear error', (_name, fields, message) => {
    expect(issues({ type: 'icmp', ...fields })).toEqual([message]);
  });

  it('a target per address and timing: icmp://address, IPv6 in brackets; the Host name is not part of the key', () => {
    const c = CheckSchema.parse({ type: 'icmp', interval: '2s' });
    const a = makeTarget('127.0.0.1', 'www.example.test', c);
    expect(describeTarget(a)).toBe('icmp://127.0.0.1');
    expect(describeTarget(makeTarget('::1', 'www.example.test', c))).toBe('icmp://[::1]');
    expect(makeTarget('127.0.0.1', 'other.example.test', c).key).toBe(a.key);
    expect(makeTarget('127.0.0.1', 'www.example.test', CheckSchema.parse({ type: 'icmp', interval: '2s', fall: 1 })).key).not.toBe(a.key);
    expect(makeTarget('127.0.0.1', 'www.example.test', CheckSchema.parse({ type: 'tcp', port: 80, interval: '2s' })).key).not.toBe(a.key);
  });
});
