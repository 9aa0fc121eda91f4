/**
 * A check target: one probe of one address with one configuration. Its `key`
 * identifies the probe exactly, so identical checks declared for several names
 * (or several zones) are run once and share their state.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { canonicalAddress, type CheckConfig } from '../config/health-check.ts';

export { canonicalAddress };

export interface CheckTarget {
  /** Canonical identity of the probe (address, port and every setting that changes it). */
  key: string;
  /** IP literal the probe connects to (IPv6 in canonical lower-case form, no brackets). */
  address: string;
  family: 4 | 6;
  /** DNS name the target was created for (no trailing dot, lower case): default Host header and SNI. */
  name: string;
  config: CheckConfig;
  /** Contents of `config.tls.ca`, read when the target was made. */
  ca?: Buffer;
}

/** The Host header value the probe sends: `config.host`, or the record's name. */
export function hostHeader(target: CheckTarget): string {
  return target.config.host ?? target.name;
}

/** The TLS server name (SNI): the Host without port or brackets; undefined for IP literals. */
export function serverName(target: CheckTarget): string | undefined {
  const host = hostHeader(target);
  let name = host;
  if (host.startsWith('[')) return undefined;
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && host.indexOf(':') === colon) name = host.slice(0, colon);
  if (name.endsWith('.')) name = name.slice(0, -1);
  return net.isIP(name) || net.isIP(host) ? undefined : name;
}

/** Host part of a URL for an IP literal: IPv6 in brackets. */
export function urlHost(address: string, family: 4 | 6): string {
  return family === 6 ? `[${address}]` : address;
}

/** A short human label for logs and the admin API: `https://www.example.test@192.0.2.1:443/health`. */
export function describeTarget(target: CheckTarget): string {
  const c = target.config;
  if (c.type === 'icmp') return `icmp://${urlHost(target.address, target.family)}`;
  const at = `${urlHost(target.address, target.family)}:${c.port}`;
  return c.type === 'tcp' ? `tcp://${at}` : `${c.type}://${hostHeader(target)}@${at}${c.path}`;
}

function canonicalKey(address: string, name: string, config: CheckConfig, ca: Buffer | undefined): string {
  const c = config;
  // Everything that changes what is sent, how it is judged, or how results are turned into health.
  // fastInterval is undefined when not set, which JSON.stringify leaves out: keys of checks without it do not change.
  const common = { type: c.type, address, port: c.port, interval: c.interval, fastInterval: c.fastInterval, timeout: c.timeout, fall: c.fall, rise: c.rise };
  if (c.type === 'tcp' || c.type === 'icmp') return JSON.stringify(common);
  const headers = Object.entries(c.headers)
    .map(([k, v]) => [k.toLowerCase(), v] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({
    ...common,
    host: (c.host ?? name).toLowerCase(),
    path: c.path,
    method: c.method,
    verify: c.type === 'https' ? c.tls.verify : undefined,
    ca: ca ? createHash('sha256').update(ca).digest('hex') : undefined,
    expect: c.expectStatus.map((s) => String(s).toLowerCase()),
    body: c.body ? [c.body.match, c.body.regex, c.body.maxBytes] : undefined,
    headers,
    userAgent: c.userAgent,
    followRedirects: c.followRedirects,
    // Only when on, so the keys (and the state saved under them) of existing checks do not change.
    keepAlive: c.keepAlive || undefined,
  });
}

/**
 * Builds the target for `address` serving `recordName` with a validated `config`.
 * Reads `config.tls.ca` (https only) with `readFile`; throws with a clear message
 * when the address is not an IP literal or the CA file cannot be read.
 */
export function makeTarget(
  address: string,
  recordName: string,
  config: CheckConfig,
  readFile: (p: string) => Buffer = (p) => fs.readFileSync(p),
): CheckTarget {
  const { address: addr, family } = canonicalAddress(address);
  let name = recordName.toLowerCase();
  if (name.endsWith('.') && name.length > 1) name = name.slice(0, -1);
  let ca: Buffer | undefined;
  if (config.type === 'https' && config.tls.ca !== undefined) {
    try {
      ca = readFile(config.tls.ca);
    } catch (e) {
      throw new Error(`cannot read tls.ca "${config.tls.ca}": ${(e as Error).message}`, { cause: e });
    }
  }
  const canonical = canonicalKey(addr, name, config, ca);
  const digest = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
  const partial: CheckTarget = { key: '', address: addr, family, name, config };
  if (ca) partial.ca = ca;
  partial.key = `${describeTarget(partial)}#${digest}`;
  return partial;
}
