/**
 * A loaded Zone as an RFC 1035 §5 master file that parseMasterFile (and BIND,
 * Knot, NSD) read back to the same records: one record per line, absolute
 * names, the served TTL on every line, class IN, and every type in its typed
 * form or as RFC 3597 `\# n hex`. Octets that are not printable ASCII, in names
 * and in strings, are written as \DDD, so the text is plain ASCII whatever the
 * zone holds. Serving options that master files cannot express (maxAnswers,
 * pools, transfer settings) are not printed.
 */
import { nameToText } from './name.ts';
import { RRType, typeToText, type RData } from './records.ts';
import type { RRset, Zone } from './zone.ts';

/** A <character-string> in quotes: `"` and `\` escaped, octets outside 0x20-0x7E as \DDD. */
export function quotedString(octets: Uint8Array): string {
  let out = '"';
  for (const c of octets) {
    if (c === 0x22 || c === 0x5c) out += '\\' + String.fromCharCode(c);
    else if (c < 0x20 || c > 0x7e) out += '\\' + String(c).padStart(3, '0');
    else out += String.fromCharCode(c);
  }
  return out + '"';
}

/** Presentation form of one record's rdata. */
export function rdataToText(data: RData): string {
  switch (data.kind) {
    case 'A':
    case 'AAAA':
      return data.address;
    case 'NS':
      return nameToText(data.ns);
    case 'CNAME':
    case 'PTR':
      return nameToText(data.domain);
    case 'MX':
      return `${data.priority} ${nameToText(data.exchange)}`;
    case 'TXT':
      return data.data.map(quotedString).join(' ');
    case 'SOA':
      return `${nameToText(data.primary)} ${nameToText(data.admin)} ${data.serial} ${data.refresh} ${data.retry} ${data.expiration} ${data.minimum}`;
    case 'SRV':
      return `${data.priority} ${data.weight} ${data.port} ${nameToText(data.target)}`;
    case 'CAA':
      // The value is an octet string (one latin1 char per octet).
      return `${data.flags} ${data.tag} ${quotedString(Buffer.from(data.value, 'latin1'))}`;
    case 'UNKNOWN':
      return data.data.length === 0 ? '\\# 0' : `\\# ${data.data.length} ${data.data.toString('hex')}`;
  }
}

function rrsetLines(rrset: RRset): string[] {
  const head = `${nameToText(rrset.owner)} ${rrset.ttl} IN ${typeToText(rrset.type)} `;
  return rrset.records.map((r) => head + rdataToText(r));
}

/** The zone as master-file text: SOA first, then every other RRset, node by node. */
export function printZone(zone: Zone): string {
  const out: string[] = [`; zone ${nameToText(zone.origin)} from ${zone.source.replace(/[\r\n]/g, ' ')}`];
  out.push(...rrsetLines(zone.soa));
  for (const node of zone.nodes.values()) {
    for (const rrset of node.rrsets.values()) {
      if (rrset.type === RRType.SOA && node.key === zone.originKey) continue;
      for (const line of rrsetLines(rrset)) out.push(line);
    }
  }
  return out.join('\n') + '\n';
}
