/**
 * What the server does with a query's COOKIE option (RFC 7873 §5.2): judge
 * the server cookie it carries and build the one the response returns.
 * Knows nothing of DNS messages beyond the option's bytes.
 */
import { addressBytes, wordsToBytes } from './address.ts';
import type { Address } from '../zone/address.ts';
import { CLIENT_COOKIE_SIZE, COOKIE_REUSE_AGE, cookieAge, SERVER_COOKIE_SIZE, serverCookieTimestamp, serverCookieValid, writeServerCookie } from './cookie.ts';
import type { CookieSecrets } from './secrets.ts';

/** Client cookie + our server cookie: what every response to a cookie query carries. */
export const RESPONSE_COOKIE_SIZE = CLIENT_COOKIE_SIZE + SERVER_COOKIE_SIZE;

export const CookieVerdict = {
  /** No cookie was judged (the peer address is not an IP address; nothing is written). */
  NONE: 0,
  /** A client cookie alone (RFC 7873 §5.2.3): a first contact, or a client that lost our cookie. */
  CLIENT_ONLY: 1,
  /** A server cookie we made for this client, still in its window (§5.2.5): the source address is proven. */
  VALID: 2,
  /** A server cookie that is not ours, not for this address, or too old (§5.2.4): treated as client-only. */
  INVALID: 3,
} as const;
export type CookieVerdict = (typeof CookieVerdict)[keyof typeof CookieVerdict];

export class ServerCookies {
  readonly secrets: CookieSecrets;
  private readonly ip = new Uint8Array(16);
  private ipLength = 0;
  /** The peer address last parsed (a TCP connection, a busy resolver: the same one again and again). */
  private lastRemote: string | undefined;

  constructor(secrets: CookieSecrets) {
    this.secrets = secrets;
  }

  /**
   * Judges the COOKIE option data at `msg[at..+length)` (a length RFC 7873
   * §5.2.2 accepts) from `remote`, and writes the response's option data
   * (RESPONSE_COOKIE_SIZE octets) into `out`: the client cookie echoed and
   * our server cookie: the one the client sent when it is valid and younger
   * than half an hour (RFC 9018 §4.3 lets a server reuse it, as Knot does),
   * otherwise a fresh one stamped now.
   */
  judge(msg: Uint8Array, at: number, length: number, remote: string, out: Uint8Array): CookieVerdict {
    if (remote !== this.lastRemote) {
      this.ipLength = addressBytes(remote, this.ip);
      this.lastRemote = remote;
    }
    return this.judgeIp(msg, at, length, out);
  }

  /** judge() for an address already parsed (the UDP paths' Peer): its words become the hashed octets, no string read or made. */
  judgeAddress(msg: Uint8Array, at: number, length: number, address: Address, out: Uint8Array): CookieVerdict {
    this.ipLength = wordsToBytes(address, this.ip);
    this.lastRemote = undefined;
    return this.judgeIp(msg, at, length, out);
  }

  private judgeIp(msg: Uint8Array, at: number, length: number, out: Uint8Array): CookieVerdict {
    if (this.ipLength === 0) return CookieVerdict.NONE;
    const secrets = this.secrets;
    const now = secrets.now();
    for (let i = 0; i < CLIENT_COOKIE_SIZE; i++) out[i] = msg[at + i]!;
    if (length === CLIENT_COOKIE_SIZE) {
      writeServerCookie(out, CLIENT_COOKIE_SIZE, msg, at, now, this.ip, this.ipLength, secrets.secretFor(now));
      return CookieVerdict.CLIENT_ONLY;
    }
    if (!serverCookieValid(msg, at, length, now, this.ip, this.ipLength, secrets.secretFor)) {
      writeServerCookie(out, CLIENT_COOKIE_SIZE, msg, at, now, this.ip, this.ipLength, secrets.secretFor(now));
      return CookieVerdict.INVALID;
    }
    const age = cookieAge(serverCookieTimestamp(msg, at), now);
    // Reuse only a cookie exactly as we make them (reserved octets zero), so a response never carries the client's choice of them back.
    if (age < COOKIE_REUSE_AGE && msg[at + 9] === 0 && msg[at + 10] === 0 && msg[at + 11] === 0) {
      for (let i = CLIENT_COOKIE_SIZE; i < RESPONSE_COOKIE_SIZE; i++) out[i] = msg[at + i]!;
    } else {
      writeServerCookie(out, CLIENT_COOKIE_SIZE, msg, at, now, this.ip, this.ipLength, secrets.secretFor(now));
    }
    return CookieVerdict.VALID;
  }
}
