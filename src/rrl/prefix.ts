/**
 * Rate-limit exemptions (BIND `exempt-clients`): CIDRs matched against client
 * addresses parsed by src/zone/address.ts, which also masks them to the
 * accounting prefix (BIND `ipv4-prefix-length` 24 and `ipv6-prefix-length`
 * 56; Knot's mod-rrl uses the same /24 and /56).
 */
import { Address, maskAddress, maskWord, parseAddress } from '../zone/address.ts';

/** A CIDR as config gives it (schema.ts parseCidr). */
export interface CidrSpec {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
}

/** Clients exempt from rate limiting: a list of masked CIDRs, checked word by word. */
export class CidrSet {
  private readonly v4: { net: number; bits: number }[] = [];
  private readonly v6: { net: Uint32Array; bits: number }[] = [];

  constructor(cidrs: readonly CidrSpec[]) {
    const a = new Address();
    for (const c of cidrs) {
      if (!parseAddress(c.address, a)) throw new Error(`"${c.address}" is not an address`);
      // An IPv4-mapped IPv6 CIDR (::ffff:192.0.2.0/120) covers those IPv4 clients.
      const bits = c.family === 6 && a.family === 4 ? c.prefix - 96 : c.prefix;
      maskAddress(a, bits);
      if (a.family === 4) this.v4.push({ net: a.w[0]!, bits });
      else this.v6.push({ net: Uint32Array.from(a.w), bits });
    }
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  /** Whether the (unmasked) address falls in one of the CIDRs. */
  has(a: Address): boolean {
    const w = a.w;
    if (a.family === 4) {
      for (const c of this.v4) if (maskWord(w[0]!, c.bits) === c.net) return true;
      return false;
    }
    if (a.family !== 6) return false;
    for (const c of this.v6) {
      let ok = true;
      for (let k = 0; k < 4 && ok; k++) ok = maskWord(w[k]!, c.bits - 32 * k) === c.net[k];
      if (ok) return true;
    }
    return false;
  }
}
