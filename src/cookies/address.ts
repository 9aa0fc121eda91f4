/**
 * A peer address as the octets the server cookie hashes (RFC 9018 §4.2:
 * 4 for IPv4, 16 for IPv6). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what
 * a dual-stack socket reports for an IPv4 client) counts as the IPv4 address,
 * so the client's cookie is the same whichever socket it reached. No
 * allocation: octets go into the caller's 16-octet buffer.
 */

/** Parses dotted-quad `s[from..end)` into `out[at..at+4)`; false when it is not one. */
function ipv4(s: string, from: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = from; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 255 || n > 3) return false;
      out[at + n++] = part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else return false;
  }
  return n === 4;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const groups = new Uint16Array(8);
const quad = new Uint8Array(4);

/** Parses IPv6 text (with '::' and an optional trailing dotted quad) into `out[0..16)`; false when it is not one. */
function ipv6(s: string, out: Uint8Array): boolean {
  let end = s.indexOf('%'); // a zone index (fe80::1%eth0) is not part of the address
  if (end < 0) end = s.length;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.startsWith('::')) {
    gap = 0;
    i = 2;
  }
  while (i < end) {
    // A dotted quad takes the last 32 bits.
    const dot = s.indexOf('.', i);
    const colon = s.indexOf(':', i);
    if (dot >= 0 && dot < end && (colon < 0 || colon > dot)) {
      if (n > 6 || !ipv4(s, i, end, quad, 0)) return false;
      groups[n++] = (quad[0]! << 8) | quad[1]!;
      groups[n++] = (quad[2]! << 8) | quad[3]!;
      i = end;
      break;
    }
    let v = 0;
    let digits = 0;
    while (i < end && s.charCodeAt(i) !== 58) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0 || digits === 4) return false;
      v = (v << 4) | h;
      digits++;
      i++;
    }
    if (digits === 0 || n === 8) return false;
    groups[n++] = v;
    if (i < end) {
      i++; // ':'
      if (i < end && s.charCodeAt(i) === 58) {
        if (gap >= 0) return false;
        gap = n;
        i++;
      } else if (i === end) return false;
    }
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  const zeros = 8 - n;
  for (let g = 0, w = 0; g < 8; g++) {
    const value = gap >= 0 && g >= gap && g < gap + zeros ? 0 : groups[w++]!;
    out[2 * g] = value >> 8;
    out[2 * g + 1] = value & 0xff;
  }
  return true;
}

/**
 * Writes the address in `text` into `out` and returns its length (4 or 16),
 * or 0 when `text` is not an IP address.
 */
export function addressBytes(text: string, out: Uint8Array): number {
  if (text.indexOf(':') < 0) return ipv4(text, 0, text.length, out, 0) ? 4 : 0;
  if (!ipv6(text, out)) return 0;
  // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) is an IPv4 client.
  let mapped = out[10] === 0xff && out[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (out[i] !== 0) mapped = false;
  if (!mapped) return 16;
  for (let i = 0; i < 4; i++) out[i] = out[12 + i]!;
  return 4;
}
