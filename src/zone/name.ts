/**
 * Domain names inside rrdns: absolute, no trailing dot, root = ''. Labels are
 * octet strings (one char per octet) joined by '.'. Comparison is by
 * `nameKey` (ASCII lower-casing only, RFC 4343); the original case is kept for output.
 *
 * A '.' octet inside a label (`john\.doe` in presentation form, RFC 1035 §5.1;
 * common in SOA rnames) is stored as the char U+012E (LABEL_DOT, 0x100 + 0x2E),
 * so '.' stays the only label separator and every split, suffix and
 * `isAtOrBelow` test stays a plain string operation. Its low 8 bits are the
 * octet: every wire writer keeps `charCodeAt(i) & 0xff` (Uint8Array stores,
 * dns2's bit writer), so it goes out as 0x2E. The query and rdata decoders map
 * a 0x2E octet inside a label back to LABEL_DOT. No other char above 0xFF
 * ever appears in a name (parseName refuses them). A '\' octet is a plain
 * '\' char: only '.' separates labels.
 */

export const MAX_LABEL_OCTETS = 63;
export const MAX_NAME_OCTETS = 255;

/** Stands for a '.' octet inside a label (see the module comment). */
export const LABEL_DOT = '\u012e';
const LABEL_DOT_CODE = 0x12e;

export class NameError extends Error {}

/** ASCII-only lower-casing (RFC 4343 §3): bytes above 0x7F are left alone. */
export function nameKey(name: string): string {
  // toLowerCase would also fold latin1 letters (e.g. 'À'), which DNS must not.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return asciiLower(name);
  }
  return name;
}

function asciiLower(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}

export function labels(name: string): string[] {
  return name === '' ? [] : name.split('.');
}

/** Octets the name takes on the wire, uncompressed (RFC 1035 §3.1). */
export function wireLength(name: string): number {
  return name === '' ? 1 : name.length + 2;
}

/** True when `name` equals `parent` or lies below it. Both must be keys (lower case). */
export function isAtOrBelow(name: string, parent: string): boolean {
  if (parent === '') return true;
  if (name.length === parent.length) return name === parent;
  return name.length > parent.length && name.endsWith(parent) && name.charCodeAt(name.length - parent.length - 1) === 46;
}

/** Parent name ('' for a single label; undefined for the root). */
export function parentOf(name: string): string | undefined {
  if (name === '') return undefined;
  const dot = name.indexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

export function joinName(relative: string, origin: string): string {
  if (relative === '') return origin;
  if (origin === '') return relative;
  return `${relative}.${origin}`;
}

/**
 * Parses a presentation-format name (RFC 1035 §5.1: `\X` and `\DDD` escapes).
 * Relative names get `origin` appended; `@` is the origin. Throws NameError with
 * a message fit for the operator.
 */
export function parseName(text: string, origin: string): string {
  if (text === '@') return origin;
  if (text === '.') return '';
  if (text.length === 0) throw new NameError('empty name');
  const out: string[] = [];
  let label = '';
  let absolute = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\') {
      const next = text[i + 1];
      if (next === undefined) throw new NameError(`name "${text}" ends with a lone backslash`);
      if (/[0-9]/.test(next)) {
        const digits = text.slice(i + 1, i + 4);
        if (!/^[0-9]{3}$/.test(digits)) throw new NameError(`name "${text}": \\DDD escape needs three digits`);
        const code = Number(digits);
        if (code > 255) throw new NameError(`name "${text}": \\${digits} is not an octet`);
        label += code === 46 ? LABEL_DOT : String.fromCharCode(code);
        i += 3;
      } else {
        if (next.charCodeAt(0) > 255) throw new NameError(`name "${text}" has a character outside one octet; write IDNs in punycode (xn--)`);
        label += next === '.' ? LABEL_DOT : next;
        i += 1;
      }
      continue;
    }
    if (ch === '.') {
      if (label.length === 0) throw new NameError(`name "${text}" has an empty label`);
      out.push(label);
      label = '';
      if (i === text.length - 1) absolute = true;
      continue;
    }
    const code = ch.charCodeAt(0);
    if (code > 255) throw new NameError(`name "${text}" has a character outside one octet; write IDNs in punycode (xn--)`);
    label += ch;
  }
  if (!absolute) {
    if (label.length === 0) throw new NameError(`name "${text}" has an empty label`);
    out.push(label);
  }
  for (const l of out) {
    if (l.length > MAX_LABEL_OCTETS) throw new NameError(`name "${text}" has a label longer than ${MAX_LABEL_OCTETS} octets`);
  }
  const joined = out.join('.');
  const name = absolute ? joined : joinName(joined, origin);
  if (wireLength(name) > MAX_NAME_OCTETS) throw new NameError(`name "${text}" is longer than ${MAX_NAME_OCTETS} octets`);
  return name;
}

/**
 * Presentation form with trailing dot, which parseName reads back to the same
 * name: non-printable octets as \DDD, a '.' octet in a label as `\.`, and the
 * chars special in master files (`\ " ( ) ; @ $`) escaped.
 */
export function nameToText(name: string): string {
  if (name === '') return '.';
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 46) out += '.';
    else if (c === LABEL_DOT_CODE) out += '\\.';
    else if (c === 92) out += '\\\\';
    else if (c <= 32 || c >= 127) out += '\\' + String(c).padStart(3, '0');
    else if (c === 34 || c === 40 || c === 41 || c === 59 || c === 64 || c === 36) out += '\\' + name[i];
    else out += name[i];
  }
  return out + '.';
}
