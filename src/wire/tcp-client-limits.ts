/**
 * Per-client caps on concurrent TCP connections, so that one host cannot take
 * every slot of the listener's global cap from the others (RFC 7766 §6.2.2
 * lets a server limit connections per client; BIND's `tcp-clients` is global
 * only, which is what this guards against).
 *
 * Connections are counted per remote address and, for IPv6, per /64 as well:
 * one host usually holds a whole /64 (SLAAC, privacy addresses) and can pick
 * a fresh source address for every connection. An IPv4-mapped IPv6 address
 * (::ffff:192.0.2.1, as a dual-stack socket reports IPv4 peers) counts as its
 * IPv4 address. Memory is bounded by the open connections: an entry goes as
 * soon as its count drops to zero.
 */
import { Address, addressText, parseAddress } from '../zone/address.ts';

export type TcpRefusal = 'per-client' | 'per-prefix' | 'total';

export interface ClientKeys {
  /** The address in one canonical form (IPv4 dotted quad; IPv6 as eight full hextets). */
  address: string;
  /** The /64 an IPv6 address is in (`2001:db8:0:1::/64`); undefined for IPv4. */
  prefix: string | undefined;
}

const peer = new Address();

/** An IPv6 address's groups from `from` to `to` (exclusive), in hex without padding, joined by ':'. */
function hextets(w: Uint32Array, from: number, to: number): string {
  const out: string[] = [];
  for (let g = from; g < to; g++) out.push(((w[g >> 1]! >>> (g & 1 ? 0 : 16)) & 0xffff).toString(16));
  return out.join(':');
}

/** The keys a connection from `remote` is counted under (a peer address as node:net reports it). */
export function clientKeys(remote: string): ClientKeys {
  if (!parseAddress(remote, peer)) return { address: remote, prefix: undefined };
  if (peer.family === 4) return { address: addressText(4, peer.w), prefix: undefined };
  return { address: hextets(peer.w, 0, 8), prefix: `${hextets(peer.w, 0, 4)}::/64` };
}

export interface PerClientLimits {
  /** Concurrent connections from one address. */
  maxPerClient: number;
  /** Concurrent connections from one IPv6 /64. */
  maxPerPrefix: number;
}

/** Counts open connections per address and per /64; see admit(). */
export class ClientConnectionCounts {
  private readonly limits: PerClientLimits;
  private readonly perAddress = new Map<string, number>();
  private readonly perPrefix = new Map<string, number>();

  constructor(limits: PerClientLimits) {
    this.limits = limits;
  }

  /**
   * Counts a new connection from `remote` if it is within both caps and
   * returns the function that uncounts it (idempotent: calling it twice
   * uncounts once); otherwise counts nothing and returns why it is refused.
   */
  admit(remote: string): (() => void) | Exclude<TcpRefusal, 'total'> {
    const { address, prefix } = clientKeys(remote);
    const a = this.perAddress.get(address) ?? 0;
    if (a >= this.limits.maxPerClient) return 'per-client';
    const p = prefix === undefined ? 0 : (this.perPrefix.get(prefix) ?? 0);
    if (prefix !== undefined && p >= this.limits.maxPerPrefix) return 'per-prefix';
    this.perAddress.set(address, a + 1);
    if (prefix !== undefined) this.perPrefix.set(prefix, p + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      decrement(this.perAddress, address);
      if (prefix !== undefined) decrement(this.perPrefix, prefix);
    };
  }

  /** Distinct addresses and /64s with open connections (for tests: the maps hold nothing else). */
  get size(): { addresses: number; prefixes: number } {
    return { addresses: this.perAddress.size, prefixes: this.perPrefix.size };
  }

  /** Open connections counted for `remote`'s address and /64. */
  countFor(remote: string): { address: number; prefix: number } {
    const { address, prefix } = clientKeys(remote);
    return { address: this.perAddress.get(address) ?? 0, prefix: prefix === undefined ? 0 : (this.perPrefix.get(prefix) ?? 0) };
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
