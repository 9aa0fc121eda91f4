/**
 * A native zone's `transfer:` settings, parsed: who may pull the zone (AXFR,
 * IXFR) and which secondaries get a NOTIFY. Matching uses node:net's
 * BlockList, which handles IPv4 and IPv6 subnets and matches IPv4-mapped IPv6
 * peers (`::ffff:127.0.0.1`, what a dual-stack socket reports) against IPv4
 * entries, so no CIDR library is needed.
 */
import net from 'node:net';
import { parseListen } from '../config/schema.ts';
import type { TransferSettings } from './zone.ts';

/** NOTIFY goes to port 53 unless the entry names another (RFC 1996 §3.6 sends to the server's DNS port). */
export const DEFAULT_NOTIFY_PORT = 53;

export interface AllowEntry {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `192.0.2.1`, `10.0.0.0/8`, `::1`, `2001:db8::/32`; throws an Error fit for the operator. */
export function parseAllowEntry(text: string): AllowEntry {
  const t = text.trim();
  const slash = t.indexOf('/');
  const address = slash < 0 ? t : t.slice(0, slash);
  const kind = net.isIP(address);
  if (kind === 0 || address.includes('%')) throw new Error(`"${text}" is not an IP address or CIDR (e.g. 192.0.2.1, 10.0.0.0/8, 2001:db8::/32)`);
  const family = kind === 4 ? 'ipv4' : 'ipv6';
  const max = kind === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const prefixText = t.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > max) throw new Error(`"${text}": the prefix length must be 0..${max}`);
  return { address, prefix, family };
}

/** `127.0.0.1:53`, `[::1]:5300`, or a bare address (port 53). */
export function parseNotifyTarget(text: string): { host: string; port: number } {
  const t = text.trim();
  const bare = t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t;
  if (net.isIP(bare)) {
    if (bare.includes('%')) throw new Error(`"${text}": zone identifiers (%) are not supported`);
    return { host: bare, port: DEFAULT_NOTIFY_PORT };
  }
  const target = parseListen(t);
  if (target.port === 0) throw new Error(`"${text}": port 0 is not a port a secondary listens on`);
  return target;
}

/** Builds the settings from already-validated entries. */
export function transferSettings(allow: readonly string[], notify: readonly string[]): TransferSettings {
  const list = new net.BlockList();
  for (const text of allow) {
    const e = parseAllowEntry(text);
    list.addSubnet(e.address, e.prefix, e.family);
  }
  const allows = (address: string): boolean => {
    const kind = net.isIP(address);
    if (kind === 0) return false;
    return list.check(address, kind === 4 ? 'ipv4' : 'ipv6');
  };
  return Object.freeze({
    allow: Object.freeze(allow.slice()),
    allows,
    notify: Object.freeze(notify.map((n) => Object.freeze(parseNotifyTarget(n)))),
  });
}
