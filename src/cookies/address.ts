/**
 * A peer address as the octets the server cookie hashes (RFC 9018 §4.2:
 * 4 for IPv4, 16 for IPv6). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what
 * a dual-stack socket reports for an IPv4 client) counts as the IPv4 address,
 * so the client's cookie is the same whichever socket it reached. Parsed by
 * the shared allocation-free parser (src/zone/address.ts); the octets go into
 * the caller's 16-octet buffer.
 */
import { Address, parseAddress } from '../zone/address.ts';

const scratch = new Address();

/**
 * Writes the address in `text` into `out` and returns its length (4 or 16),
 * or 0 when `text` is not an IP address.
 */
export function addressBytes(text: string, out: Uint8Array): number {
  if (!parseAddress(text, scratch)) return 0;
  return wordsToBytes(scratch, out);
}

/** The octets of a parsed address into `out`; its length (4 or 16), 0 for family 0 (not an address). */
export function wordsToBytes(a: Address, out: Uint8Array): number {
  if (a.family === 0) return 0;
  const words = a.family === 4 ? 1 : 4;
  for (let k = 0; k < words; k++) {
    const w = a.w[k]!;
    out[4 * k] = w >>> 24;
    out[4 * k + 1] = (w >>> 16) & 0xff;
    out[4 * k + 2] = (w >>> 8) & 0xff;
    out[4 * k + 3] = w & 0xff;
  }
  return 4 * words;
}
