/**
 * The cookie secret schedule. One master key (from cookies.secretFile, or
 * random at start) yields a 16-octet SipHash secret per period:
 *
 *   secret(p) = first 16 octets of HMAC-SHA256(master, "rrdns-cookie-v1" | p as 8 octets big-endian)
 *   p         = floor(unix seconds / secretLifetime)
 *
 * so every instance given the same file derives the same secret at the same
 * time and rotates in lockstep with no coordination (RFC 9018 §5 asks for a
 * shared secret across an anycast set, and for rolling it regularly; RFC 7873
 * §7.1 suggests 26 hours to 36 days, Knot's secret-lifetime defaults to 26 h).
 *
 * A cookie is checked with the secret of the period its own timestamp falls
 * in: the secret it was made with. A cookie is only good for an hour (and five
 * minutes ahead) and a period lasts at least an hour, so that is always the
 * current period, the previous one (a cookie made before the last rollover)
 * or the next (a peer whose clock runs a little ahead). One SipHash per query,
 * and the previous secret keeps working after a rollover without a list of
 * old secrets (BIND's cookie-secret list does this by hand).
 *
 * Per-period secrets are derived once and cached; the clock is injectable.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { ErrorCode, RrdnsError } from '../errors.ts';
import { SECRET_SIZE } from './cookie.ts';

/** Shortest master key accepted from a file: the SipHash key size. */
export const MIN_MASTER_KEY_BYTES = 16;
/** Size of a master key made at random. */
export const RANDOM_MASTER_KEY_BYTES = 32;
const LABEL = Buffer.from('rrdns-cookie-v1', 'latin1');

/** Unix seconds now. */
export const systemClock = (): number => Math.floor(Date.now() / 1000);

/** The master key in a secret file's text: hex, whitespace anywhere ignored, at least 16 octets. Throws naming `path`. */
export function parseMasterKey(text: string, path: string): Buffer {
  const hex = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new RrdnsError(ErrorCode.CONFIG_INVALID, `cookie secret file ${path}: expected hex digits (an even number of them), e.g. from \`openssl rand -hex 32\``);
  const key = Buffer.from(hex, 'hex');
  if (key.length < MIN_MASTER_KEY_BYTES) throw new RrdnsError(ErrorCode.CONFIG_INVALID, `cookie secret file ${path}: ${key.length} bytes of secret; at least ${MIN_MASTER_KEY_BYTES} are needed (32 hex digits)`);
  return key;
}

/** Reads and parses a cookie secret file; a clear error naming the path when it cannot be read or is malformed. */
export function readMasterKey(path: string): Buffer {
  let text: string;
  try {
    text = fs.readFileSync(path, 'latin1');
  } catch (err) {
    throw new RrdnsError(ErrorCode.CONFIG_INVALID, `cookie secret file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parseMasterKey(text, path);
}

export function randomMasterKey(): Buffer {
  return crypto.randomBytes(RANDOM_MASTER_KEY_BYTES);
}

/** The master key a configuration asks for: the file's, or a random one (cookies from before a restart then stop validating). */
export function masterKeyFor(config: { secretFile?: string | undefined }): Buffer {
  return config.secretFile ? readMasterKey(config.secretFile) : randomMasterKey();
}

/** secret(p) for `master` (see the file comment). */
export function periodSecret(master: Uint8Array, period: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeBigUInt64BE(BigInt(period));
  return crypto.createHmac('sha256', master).update(LABEL).update(p).digest().subarray(0, SECRET_SIZE);
}

export class CookieSecrets {
  private master: Uint8Array;
  readonly lifetime: number;
  readonly clock: () => number;
  /** A few recent periods' secrets: current, previous, next are all a query can need. */
  private readonly cache = new Map<number, Buffer>();

  constructor(master: Uint8Array, lifetime: number, clock: () => number = systemClock) {
    if (master.length < MIN_MASTER_KEY_BYTES) throw new RrdnsError(ErrorCode.CONFIG_INVALID, `cookie master key of ${master.length} bytes; at least ${MIN_MASTER_KEY_BYTES} are needed`);
    if (!Number.isInteger(lifetime) || lifetime < 1) throw new RrdnsError(ErrorCode.CONFIG_INVALID, `cookie secret lifetime ${lifetime}: a whole number of seconds is needed`);
    this.master = Uint8Array.from(master);
    this.lifetime = lifetime;
    this.clock = clock;
  }

  /** Uses another master key from now on (e.g. one kept in the state directory); cookies made with the old one stop validating. */
  setMasterKey(master: Uint8Array): void {
    if (master.length < MIN_MASTER_KEY_BYTES) throw new RrdnsError(ErrorCode.CONFIG_INVALID, `cookie master key of ${master.length} bytes; at least ${MIN_MASTER_KEY_BYTES} are needed`);
    this.master = Uint8Array.from(master);
    this.cache.clear();
  }

  /** A copy of the master key (to hand to worker threads, which derive the same schedule). */
  masterKey(): Uint8Array {
    return Uint8Array.from(this.master);
  }

  /** Unix seconds now, modulo 2^32 as cookie timestamps are. */
  now(): number {
    return this.clock() >>> 0;
  }

  /** The period a timestamp falls in. */
  periodOf(timestamp: number): number {
    return Math.floor((timestamp >>> 0) / this.lifetime);
  }

  secretForPeriod(period: number): Buffer {
    let secret = this.cache.get(period);
    if (!secret) {
      if (this.cache.size >= 4) this.cache.clear();
      secret = periodSecret(this.master, period);
      this.cache.set(period, secret);
    }
    return secret;
  }

  /** The secret a cookie stamped `timestamp` was made with (and is checked with). */
  readonly secretFor = (timestamp: number): Buffer => this.secretForPeriod(this.periodOf(timestamp));
}
