/**
 * The interoperable server cookie of RFC 9018 §4 (updating RFC 7873 §4.2):
 *
 *   Server Cookie = Version (1) | Reserved (3, zero) | Timestamp (4) | Hash (8)
 *   Hash = SipHash-2-4(Client Cookie | Version | Reserved | Timestamp | Client-IP, Server Secret)
 *
 * Client-IP is the client's address as 4 or 16 octets; the timestamp is unix
 * seconds modulo 2^32 compared in serial arithmetic (RFC 1982). Every instance
 * with the same secret computes the same cookie, so a resolver's cookie is
 * good at each (anycast, several servers behind one name).
 *
 * Pure functions over caller-owned bytes: they read the cookie where it sits
 * in the query and write ours where it goes in the response, so a query
 * costs no allocation. Module-level scratch is per thread (each worker thread
 * loads its own copy of this module) and nothing here is re-entrant.
 */
import { createRequire } from 'node:module';
import siphash24 from 'siphash24';

export const CLIENT_COOKIE_SIZE = 8;
/** Our server cookies are always 16 octets (RFC 9018 §4). */
export const SERVER_COOKIE_SIZE = 16;
/** RFC 9018 §4.1: the only version. */
export const COOKIE_VERSION = 1;
/** Octets of the SipHash-2-4 key, the per-period secret. */
export const SECRET_SIZE = 16;
/** RFC 9018 §4.3: a cookie older than an hour is not accepted... */
export const COOKIE_MAX_AGE = 3600;
/** ...nor one stamped more than five minutes ahead (clock skew between servers sharing a secret). */
export const COOKIE_MAX_FUTURE = 300;
/** RFC 9018 §4.3: a valid cookie younger than this may be handed back as it is; older ones are renewed. */
export const COOKIE_REUSE_AGE = 1800;

/** Seconds from `timestamp` to `now` in serial arithmetic: positive in the past, negative in the future. */
export function cookieAge(timestamp: number, now: number): number {
  return (now - timestamp) | 0;
}

/** RFC 9018 §4.3: stamped within the last hour and no more than five minutes ahead. */
export function timestampAcceptable(timestamp: number, now: number): boolean {
  const age = cookieAge(timestamp, now);
  return age <= COOKIE_MAX_AGE && age >= -COOKIE_MAX_FUTURE;
}

/** Hash input: client cookie (8), version + reserved (4), timestamp (4), address (4 or 16). */
const input = new Uint8Array(CLIENT_COOKIE_SIZE + 8 + 16);
const input4 = input.subarray(0, CLIENT_COOKIE_SIZE + 8 + 4);
const hash = new Uint8Array(8);

/**
 * The same package's WebAssembly SipHash, called directly: its wrapper
 * (index.js) makes a subarray of the wasm memory for every hash it copies
 * out, an object per query on the answer path. Its layout, as index.js uses
 * it: the 8-octet result at 0, the key at 8, the data from 24. Undefined
 * where WebAssembly is not available: the wrapper's JavaScript fallback then.
 */
interface SipWasm {
  memory: { buffer: ArrayBuffer };
  siphash(at: number, length: number): void;
}
const sipWasm: SipWasm | undefined = (() => {
  if (!('WebAssembly' in globalThis)) return undefined;
  try {
    return (createRequire(import.meta.url)('siphash24/siphash24.js') as (imports?: object) => SipWasm)();
  } catch {
    return undefined;
  }
})();
/** A view of the wasm memory (it never grows: our input is at most 40 octets). */
const sipMemory = sipWasm ? new Uint8Array(sipWasm.memory.buffer) : undefined;
const KEY_AT = 8;
const DATA_AT = 24;

/** SipHash-2-4 over `head` (client cookie, version, reserved, timestamp: 16 octets at `headAt`) and the address; result in `hash`. */
function hashInto(head: Uint8Array, headAt: number, ip: Uint8Array, ipLength: number, secret: Uint8Array): void {
  const mem = sipMemory;
  if (mem === undefined || sipWasm === undefined) {
    for (let i = 0; i < 16; i++) input[i] = head[headAt + i]!;
    for (let i = 0; i < ipLength; i++) input[16 + i] = ip[i]!;
    siphash24(ipLength === 4 ? input4 : input, secret, hash, true);
    return;
  }
  for (let i = 0; i < 16; i++) mem[KEY_AT + i] = secret[i]!;
  for (let i = 0; i < 16; i++) mem[DATA_AT + i] = head[headAt + i]!;
  for (let i = 0; i < ipLength; i++) mem[DATA_AT + 16 + i] = ip[i]!;
  sipWasm.siphash(DATA_AT, 16 + ipLength);
  for (let i = 0; i < 8; i++) hash[i] = mem[i]!;
}

/**
 * Writes our 16-octet server cookie for the client cookie at
 * `client[clientAt..+8)` into `out[at..+16)`: version 1, reserved zero,
 * `timestamp`, and the hash with `secret`. `ip` holds `ipLength` (4 or 16) octets.
 */
export function writeServerCookie(out: Uint8Array, at: number, client: Uint8Array, clientAt: number, timestamp: number, ip: Uint8Array, ipLength: number, secret: Uint8Array): void {
  const head = input;
  for (let i = 0; i < CLIENT_COOKIE_SIZE; i++) head[i] = client[clientAt + i]!;
  head[8] = COOKIE_VERSION;
  head[9] = 0;
  head[10] = 0;
  head[11] = 0;
  head[12] = (timestamp >>> 24) & 0xff;
  head[13] = (timestamp >>> 16) & 0xff;
  head[14] = (timestamp >>> 8) & 0xff;
  head[15] = timestamp & 0xff;
  hashInto(head, 0, ip, ipLength, secret);
  for (let i = 0; i < 8; i++) out[at + i] = head[8 + i]!;
  for (let i = 0; i < 8; i++) out[at + 8 + i] = hash[i]!;
}

/** The timestamp of the server cookie in a COOKIE option whose data starts at `at`. */
export function serverCookieTimestamp(msg: Uint8Array, at: number): number {
  return ((msg[at + 12]! << 24) | (msg[at + 13]! << 16) | (msg[at + 14]! << 8) | msg[at + 15]!) >>> 0;
}

/**
 * Whether the COOKIE option data at `msg[at..+length)` carries a server
 * cookie of ours that is valid now for this client: 16 octets of version 1,
 * a timestamp inside the window, and the hash made with `secretFor(timestamp)`
 * (the secret of the period the cookie was made in) over what the client sent
 * (its reserved octets included, RFC 9018 §4.2). Anything else, including a
 * server cookie of another length or version (another server's), is not valid.
 */
export function serverCookieValid(msg: Uint8Array, at: number, length: number, now: number, ip: Uint8Array, ipLength: number, secretFor: (timestamp: number) => Uint8Array): boolean {
  if (length !== CLIENT_COOKIE_SIZE + SERVER_COOKIE_SIZE || msg[at + 8] !== COOKIE_VERSION) return false;
  const timestamp = serverCookieTimestamp(msg, at);
  if (!timestampAcceptable(timestamp, now)) return false;
  hashInto(msg, at, ip, ipLength, secretFor(timestamp));
  let diff = 0;
  for (let i = 0; i < 8; i++) diff |= hash[i]! ^ msg[at + 16 + i]!;
  return diff === 0;
}
