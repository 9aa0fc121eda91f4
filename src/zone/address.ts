/**
 * Peer addresses as the transports report them (`rinfo.address`,
 * `socket.remoteAddress`), parsed into four 32-bit words without building
 * any string (IPv4 in the first word; IPv4-mapped IPv6 counted as IPv4), and
 * masked to a prefix. One parser for every per-client decision: rate-limit
 * accounting (src/rrl/), the client IP a server cookie hashes (src/cookies/)
 * and the per-client TCP caps (src/wire/tcp-client-limits.ts).
 */

/** A parsed address: family 4 or 6, and words w[0..3] (IPv4: w[0] only). Reused scratch. */
export class Address {
  family: 0 | 4 | 6 = 0;
  readonly w = new Uint32Array(4);

  /** Takes `other`'s family and words (scratch that is masked next must not mask the caller's address). */
  copyFrom(other: Address): void {
    this.family = other.family;
    this.w.set(other.w);
  }
}

function parseIpv4(s: string, from: number, end: number, out: Address, word: number): boolean {
  let value = 0;
  let part = -1;
  let dots = 0;
  for (let i = from; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (part < 0 || dots === 3) return false;
      value = value * 256 + part;
      part = -1;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      part = part < 0 ? c - 0x30 : part * 10 + (c - 0x30);
      if (part > 255) return false;
    } else {
      return false;
    }
  }
  if (part < 0 || dots !== 3) return false;
  out.w[word] = value * 256 + part;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Scratch for the groups of one IPv6 address (8 x 16 bits). */
const groups = new Uint16Array(8);

/**
 * Parses an IPv4 or IPv6 address text into `out`; false when it is neither.
 * A zone index (`fe80::1%eth0`) is ignored. IPv4-mapped (`::ffff:a.b.c.d`)
 * becomes IPv4: a dual-stack socket reports IPv4 clients that way, and they
 * must share buckets with the same clients seen over an IPv4 socket.
 */
export function parseAddress(s: string, out: Address): boolean {
  out.w[0] = 0;
  out.w[1] = 0;
  out.w[2] = 0;
  out.w[3] = 0;
  out.family = 0;
  if (s.indexOf(':') < 0) {
    if (!parseIpv4(s, 0, s.length, out, 0)) return false;
    out.family = 4;
    return true;
  }
  let end = s.indexOf('%');
  if (end < 0) end = s.length;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 0x3a) {
    if (s.charCodeAt(1) !== 0x3a) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    // An embedded IPv4 tail: the rest holds a '.'.
    let j = i;
    let value = 0;
    let digits = 0;
    while (j < end) {
      const c = s.charCodeAt(j);
      if (c === 0x2e) break;
      const d = hexDigit(c);
      if (d < 0) break;
      value = value * 16 + d;
      digits++;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 0x2e) {
      if (n > 6) return false;
      if (!parseIpv4(s, i, end, out, 3)) return false;
      groups[n++] = out.w[3]! >>> 16;
      groups[n++] = out.w[3]! & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4 || n === 8) return false;
    groups[n++] = value;
    i = j;
    if (i === end) break;
    if (s.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (i < end && s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) {
      return false;
    }
  }
  if (gap < 0 && n !== 8) return false;
  if (gap >= 0 && n > 7) return false;
  // Expand the '::' gap: groups after it move to the end.
  const w = out.w;
  const tailCount = gap < 0 ? 0 : n - gap;
  const g = (k: number): number => {
    if (gap < 0) return groups[k]!;
    if (k < gap) return groups[k]!;
    const fromEnd = 8 - k;
    return fromEnd <= tailCount ? groups[n - fromEnd]! : 0;
  };
  w[0] = ((g(0) << 16) | g(1)) >>> 0;
  w[1] = ((g(2) << 16) | g(3)) >>> 0;
  w[2] = ((g(4) << 16) | g(5)) >>> 0;
  w[3] = ((g(6) << 16) | g(7)) >>> 0;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) {
    w[0] = w[3]!;
    w[2] = 0;
    w[3] = 0;
    out.family = 4;
    return true;
  }
  out.family = 6;
  return true;
}

/** Keeps the first `bits` bits of a 32-bit word. */
export function maskWord(word: number, bits: number): number {
  if (bits >= 32) return word >>> 0;
  if (bits <= 0) return 0;
  return (word & (0xffffffff << (32 - bits))) >>> 0;
}

/** Masks `a` in place to its first `bits` bits (of 32 for IPv4, 128 for IPv6). */
export function maskAddress(a: Address, bits: number): void {
  const w = a.w;
  if (a.family === 4) {
    w[0] = maskWord(w[0]!, bits);
    return;
  }
  for (let k = 0; k < 4; k++) w[k] = maskWord(w[k]!, bits - 32 * k);
}

/** The text of an address: `192.0.2.1`, `2001:db8::1` (RFC 5952 §4.2: the longest run of zero groups as '::'). For logs and keys, not the hot path. */
export function addressText(family: 4 | 6, w: ArrayLike<number>): string {
  if (family === 4) {
    const v = w[0]! >>> 0;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const parts: string[] = [];
  for (let k = 0; k < 4; k++) parts.push(((w[k]! >>> 16) & 0xffff).toString(16), (w[k]! & 0xffff).toString(16));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  return best < 0 ? parts.join(':') : `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

/** The text of a (masked) address with its prefix length: `192.0.2.0/24`, `2001:db8::/56`. For logs, not the hot path. */
export function prefixText(family: 4 | 6, w: ArrayLike<number>, bits: number): string {
  return `${addressText(family, w)}/${bits}`;
}

/**
 * The sender of one datagram, filled in place by the UDP transport for every
 * packet (no object or string per packet): its parsed address and port. The
 * address text is made only when something asks for it (logs, the dgram
 * path's reply address is its own).
 */
export class Peer {
  readonly address = new Address();
  port = 0;
  private textCache: string | undefined;

  /** From the words the batched path's native code read out of the kernel's sockaddr (IPv4-mapped already folded to IPv4). */
  setWords(family: 4 | 6, w0: number, w1: number, w2: number, w3: number, port: number): void {
    const a = this.address;
    a.family = family;
    a.w[0] = w0;
    a.w[1] = w1;
    a.w[2] = w2;
    a.w[3] = w3;
    this.port = port;
    this.textCache = undefined;
  }

  /** From dgram's rinfo.address; false (family 0) when it is not an address. */
  setText(text: string, port: number): boolean {
    this.port = port;
    this.textCache = text;
    return parseAddress(text, this.address);
  }

  /** The address as text (`192.0.2.1`, `2001:db8::1`). */
  get text(): string {
    if (this.textCache === undefined) this.textCache = this.address.family === 0 ? '' : addressText(this.address.family, this.address.w);
    return this.textCache;
  }
}
