/**
 * Who may use the admin API: the bearer token (RFC 6750) and the Host check
 * against DNS rebinding.
 *
 * DNS rebinding: a web page on attacker.example re-resolves its own name to
 * 127.0.0.1 (or to the address the admin API listens on), and the browser
 * then sends that page's requests to the admin listener, as same-origin,
 * with `Host: attacker.example`. Such a request can carry no bearer token
 * (the page does not know it), and its Host is a DNS name that is not ours.
 * So every request must name the listener in Host (its IP literal; `localhost`
 * too when it listens on loopback, since browsers resolve `localhost` to
 * loopback themselves and never through DNS), unless it carries the valid
 * token. The port in Host is not compared: a port mapping (Docker `-p
 * 9000:8053`, kubectl port-forward) changes it, and the defence rests on the
 * name, which the attacker cannot make ours.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { ErrorCode, RrdnsError } from '../errors.ts';
import { Address, addressText, parseAddress } from '../zone/address.ts';

/** Shortest token accepted: 16 characters (128 bits as hex would be 32; `openssl rand -hex 32` gives 64). */
export const MIN_TOKEN_CHARS = 16;

/**
 * Reads the admin token from `path`: the file's contents without trailing
 * whitespace (a final newline). Throws RrdnsError(CONFIG_INVALID) naming the
 * path when the file cannot be read, is empty, or holds a token too short.
 */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new RrdnsError(ErrorCode.CONFIG_INVALID, `admin token file ${path} (--admin-token-file / RRDNS_ADMIN_TOKEN_FILE) cannot be read: ${code}`, { cause: e });
  }
  const token = text.replace(/\s+$/u, '');
  if (token.length === 0) {
    throw new RrdnsError(ErrorCode.CONFIG_INVALID, `admin token file ${path} (--admin-token-file / RRDNS_ADMIN_TOKEN_FILE) is empty`);
  }
  if (token.length < MIN_TOKEN_CHARS) {
    throw new RrdnsError(ErrorCode.CONFIG_INVALID, `admin token file ${path} (--admin-token-file / RRDNS_ADMIN_TOKEN_FILE) holds ${token.length} characters; at least ${MIN_TOKEN_CHARS} are needed (e.g. openssl rand -hex 32)`);
  }
  if (/[\s\u0000-\u001f\u007f]/u.test(token)) {
    throw new RrdnsError(ErrorCode.CONFIG_INVALID, `admin token file ${path} (--admin-token-file / RRDNS_ADMIN_TOKEN_FILE): the token must be one line without spaces or control characters`);
  }
  return token;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** What a request's Authorization header amounts to. */
export type Credential = 'none' | 'valid' | 'invalid';

/** Checks bearer tokens in constant time (over SHA-256 digests, so neither length nor content leaks). */
export class TokenCheck {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  /** `none`: no Authorization header; `valid`: `Bearer <the token>`; `invalid`: anything else. */
  check(authorization: string | undefined): Credential {
    if (authorization === undefined) return 'none';
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(authorization);
    if (!m) return 'invalid';
    return timingSafeEqual(digest(m[1]!), this.expected) ? 'valid' : 'invalid';
  }
}

const scratch = new Address();

/** An IP address in one form: IPv6 compressed lower case (RFC 5952), IPv4-mapped IPv6 as IPv4; undefined if not an IP. */
export function canonicalIp(text: string): string | undefined {
  if (net.isIP(text) === 0 || !parseAddress(text, scratch)) return undefined;
  return addressText(scratch.family as 4 | 6, scratch.w);
}

/**
 * A Host header split into its host (brackets removed, lower case) and port;
 * undefined when it is not `host[:port]` (RFC 9110 §7.2, RFC 3986 §3.2.2).
 */
export function parseHostHeader(value: string): { host: string; port: number | undefined } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(value) ?? /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value);
  if (!m) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && port > 65535) return undefined;
  const host = m[1]!.toLowerCase();
  // A bracketed host must be IPv6; an unbracketed one must not be.
  if (value.startsWith('[') ? !net.isIPv6(host) : net.isIPv6(host)) return undefined;
  return { host, port };
}

const WILDCARDS = new Set(['0.0.0.0', '::']);
const isLoopbackIp = (ip: string) => ip === '::1' || ip.startsWith('127.');

/**
 * Whether a Host header names the listener bound to `listenHost` (an IP
 * literal as the socket reports it). A missing Host (HTTP/1.0) is refused:
 * nothing shows that the request was meant for us.
 */
export function hostAllowed(hostHeader: string | undefined, listenHost: string): boolean {
  if (hostHeader === undefined) return false;
  const parsed = parseHostHeader(hostHeader.trim());
  if (!parsed) return false;
  const listener = canonicalIp(listenHost);
  if (listener === undefined) return false;
  const wildcard = WILDCARDS.has(listener);
  const name = parsed.host.endsWith('.') ? parsed.host.slice(0, -1) : parsed.host;
  if (name === 'localhost') return wildcard || isLoopbackIp(listener);
  const ip = canonicalIp(parsed.host);
  if (ip === undefined) return false; // a DNS name: never ours to trust
  return wildcard || ip === listener;
}
