/**
 * What every HTTP(S) probe of one target sends and judges by, made once per
 * target instead of once per probe (5,000 probes a second): the request
 * headers, the first hop and its origin, the accepted status ranges, how much
 * body to read. A target and its config never change (a changed check is a
 * new target with a new key), so the cache is keyed by the target object and
 * goes with it.
 */
import { parseStatusSpec, type StatusRange } from '../config/health-check.ts';
import { hostHeader, urlHost, type CheckTarget } from './target.ts';

export interface Hop {
  scheme: 'http' | 'https';
  port: number;
  path: string;
}

export interface PreparedHttp {
  host: string;
  /** Sent with every request of the probe (undici reads it, never writes it). */
  headers: Readonly<Record<string, string>>;
  firstHop: Hop;
  /** `scheme://address:port` of the first hop. */
  firstOrigin: string;
  /** The parsed `expectStatus`. */
  accepted: readonly StatusRange[];
  /** Body bytes wanted for the body match or JSON load (0: none). */
  wantBody: boolean;
  limit: number;
}

const cache = new WeakMap<CheckTarget, PreparedHttp>();

/** The origin of `hop` for the target's address. */
export function originOf(target: CheckTarget, hop: Hop): string {
  return `${hop.scheme}://${urlHost(target.address, target.family)}:${hop.port}`;
}

/** Whether `status` is in one of the ranges (statusAccepted, with the specs parsed once). */
export function inRanges(status: number, ranges: readonly StatusRange[]): boolean {
  for (const r of ranges) if (status >= r.lo && status <= r.hi) return true;
  return false;
}

export function prepareHttp(target: CheckTarget, loadBodyBytes: number): PreparedHttp {
  let p = cache.get(target);
  if (p) return p;
  const c = target.config;
  const host = hostHeader(target);
  const firstHop: Hop = { scheme: c.type === 'https' ? 'https' : 'http', port: c.port, path: c.path };
  const jsonLoad = c.load !== undefined && 'json' in c.load;
  p = {
    host,
    headers: { ...c.headers, host, 'user-agent': c.userAgent },
    firstHop,
    firstOrigin: originOf(target, firstHop),
    accepted: c.expectStatus.map(parseStatusSpec).filter((r): r is StatusRange => r !== undefined),
    wantBody: c.body !== undefined || jsonLoad,
    // One read serves both the body match and the JSON load, bounded by the check's body limit.
    limit: c.body?.maxBytes ?? loadBodyBytes,
  };
  cache.set(target, p);
  return p;
}
