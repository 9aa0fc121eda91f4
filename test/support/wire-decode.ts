/**
 * A strict decoder of whole response messages for unit tests of the writers:
 * names are decompressed with every pointer checked (it must point backwards,
 * at a label, inside the message), so a test sees exactly what a resolver
 * would read, and also where compression was used.
 */

export interface DecodedRecord {
  name: string;
  type: number;
  cls: number;
  ttl: number;
  /** Raw rdata as written (may hold pointers). */
  rdata: Buffer;
  /** Offset of rdata in the message. */
  rdataAt: number;
  /** The rdata's names decompressed, for NS/CNAME/PTR/MX/SOA/SRV; else undefined. */
  names?: string[];
  /** The rdata contains a compression pointer. */
  compressedRdata: boolean;
}

export interface DecodedMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  cd: boolean;
  rcode: number;
  question: { name: string; type: number; cls: number }[];
  answer: DecodedRecord[];
  authority: DecodedRecord[];
  additional: DecodedRecord[];
}

/** Reads a name at `at`; returns it (labels joined by '.', octets as latin1) and the offset after it. Throws on anything malformed. */
export function readName(msg: Buffer, at: number, limit = msg.length): { name: string; next: number; compressed: boolean } {
  const labels: string[] = [];
  let pos = at;
  let next = -1;
  let compressed = false;
  let octets = 1;
  for (let hops = 0; ; ) {
    if (pos >= limit) throw new Error(`name at ${at} runs past the end`);
    const len = msg[pos]!;
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= limit) throw new Error(`pointer at ${pos} cut`);
      const target = ((len & 0x3f) << 8) | msg[pos + 1]!;
      if (target >= pos) throw new Error(`pointer at ${pos} points forward to ${target}`);
      if (next < 0) next = pos + 2;
      compressed = true;
      pos = target;
      if (++hops > 127) throw new Error('pointer loop');
      continue;
    }
    if (len > 63) throw new Error(`reserved label type ${len} at ${pos}`);
    labels.push(msg.subarray(pos + 1, pos + 1 + len).toString('latin1'));
    octets += len + 1;
    if (octets > 255) throw new Error('name longer than 255 octets');
    pos += 1 + len;
  }
  return { name: labels.join('.'), next, compressed };
}

function rdataNames(msg: Buffer, type: number, at: number, end: number): { names?: string[]; compressed: boolean } {
  const names: string[] = [];
  let compressed = false;
  const take = (pos: number) => {
    const r = readName(msg, pos, end);
    names.push(r.name);
    compressed ||= r.compressed;
    return r.next;
  };
  switch (type) {
    case 2:
    case 5:
    case 12:
      take(at);
      return { names, compressed };
    case 15:
      take(at + 2);
      return { names, compressed };
    case 6:
      take(take(at));
      return { names, compressed };
    case 33:
      take(at + 6);
      return { names, compressed };
    default: {
      // Any other type: report whether its bytes contain what looks like a pointer only if it is a name-bearing type; opaque otherwise.
      return { compressed: false };
    }
  }
}

export function decodeMessage(msg: Buffer): DecodedMessage {
  if (msg.length < 12) throw new Error('shorter than a header');
  const counts = [msg.readUInt16BE(4), msg.readUInt16BE(6), msg.readUInt16BE(8), msg.readUInt16BE(10)];
  let pos = 12;
  const question: DecodedMessage['question'] = [];
  for (let i = 0; i < counts[0]!; i++) {
    const n = readName(msg, pos);
    pos = n.next;
    question.push({ name: n.name, type: msg.readUInt16BE(pos), cls: msg.readUInt16BE(pos + 2) });
    pos += 4;
  }
  const section = (count: number) => {
    const out: DecodedRecord[] = [];
    for (let i = 0; i < count; i++) {
      const n = readName(msg, pos);
      pos = n.next;
      if (pos + 10 > msg.length) throw new Error('record header cut');
      const type = msg.readUInt16BE(pos);
      const cls = msg.readUInt16BE(pos + 2);
      const ttl = msg.readUInt32BE(pos + 4);
      const len = msg.readUInt16BE(pos + 8);
      const rdataAt = pos + 10;
      if (rdataAt + len > msg.length) throw new Error('rdata cut');
      const rd = rdataNames(msg, type, rdataAt, rdataAt + len);
      out.push({ name: n.name, type, cls, ttl, rdata: msg.subarray(rdataAt, rdataAt + len), rdataAt, names: rd.names, compressedRdata: rd.compressed });
      pos = rdataAt + len;
    }
    return out;
  };
  const answer = section(counts[1]!);
  const authority = section(counts[2]!);
  const additional = section(counts[3]!);
  if (pos !== msg.length) throw new Error(`${msg.length - pos} octets after the last record`);
  return {
    id: msg.readUInt16BE(0),
    qr: (msg[2]! & 0x80) !== 0,
    opcode: (msg[2]! >> 3) & 0x0f,
    aa: (msg[2]! & 0x04) !== 0,
    tc: (msg[2]! & 0x02) !== 0,
    rd: (msg[2]! & 0x01) !== 0,
    cd: (msg[3]! & 0x10) !== 0,
    rcode: msg[3]! & 0x0f,
    question,
    answer,
    authority,
    additional,
  };
}

/** "owner TYPE rdata-summary" lines, lower-cased owners, for set comparisons; OPT left out. */
export function summarize(records: readonly DecodedRecord[]): string[] {
  return records.filter((r) => r.type !== 41).map((r) => {
    const data = r.names ? r.names.join(' ').toLowerCase() : r.type === 1 ? [...r.rdata].join('.') : r.rdata.toString('hex');
    return `${r.name.toLowerCase()} ${r.type} ${data}`;
  });
}
