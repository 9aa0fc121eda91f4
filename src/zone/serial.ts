/**
 * The SOA serial rrdns serves. Secondaries only pull a zone when its serial
 * grows (RFC 1034 §4.3.5, RFC 1982 arithmetic), so every content change must
 * raise it, even when the operator edited a file and forgot to. Pure: the
 * previous served zone and the clock come in, a zone with the serial to serve
 * goes out; the caller logs.
 */
import crypto from 'node:crypto';
import { RRType, type RData } from './records.ts';
import type { RRset, Zone, ZoneNode } from './zone.ts';
import { withNode } from './node-index.ts';
import { NameNode } from './name-node.ts';
import { LazyZone } from './lazy-zone.ts';

const HALF = 2 ** 31;
const SPACE = 2 ** 32;

/** RFC 1982 §3.2: is `a` greater than `b` in 32-bit serial arithmetic? (Undefined pairs, 2^31 apart, are not.) */
export function serialGt(a: number, b: number): boolean {
  return (a < b && b - a > HALF) || (a > b && a - b < HALF);
}

/** RFC 1982 §3.1: serial + n (0 <= n < 2^31), wrapping at 2^32. */
export function serialAdd(serial: number, n: number): number {
  return (serial + n) % SPACE;
}

export function serialOf(zone: Zone): number {
  // A lazy zone knows its serial without building its records.
  if (zone instanceof LazyZone) return zone.serial;
  return (zone.soa.records[0] as Extract<RData, { kind: 'SOA' }>).serial;
}

function canonicalRecord(data: RData): string {
  // The serial is what this module decides; it is not content.
  const d = data.kind === 'SOA' ? { ...data, serial: 0 } : data;
  return JSON.stringify(d, (_k, v: unknown) =>
    v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v,
  );
}

const digests = new WeakMap<Zone, string>();

/**
 * SHA-256 of the zone's static records as a secondary would receive them
 * (owner, type, served TTL, rdata), in canonical order, SOA serial excluded.
 * Health state, pools and rotation are not content: secondaries never see them.
 * Computed once per zone version (cached), linear in the records.
 */
export function contentDigest(zone: Zone): string {
  if (zone instanceof LazyZone) return zone.digest;
  const cached = digests.get(zone);
  if (cached !== undefined) return cached;
  const hash = crypto.createHash('sha256');
  const nodes: ZoneNode[] = [...zone.nodes.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const node of nodes) {
    const sets: RRset[] = [...node.rrsets.values()].sort((a, b) => a.type - b.type);
    for (const set of sets) {
      const records = set.records.map(canonicalRecord).sort();
      hash.update(`${set.owner}\u0000${set.type}\u0000${set.ttl}\u0000${records.join('\u0001')}\n`, 'latin1');
    }
  }
  const digest = hash.digest('hex');
  digests.set(zone, digest);
  return digest;
}

/** A copy of `zone` serving `serial` in its SOA; every other part is shared. */
export function withSerial(zone: Zone, serial: number): Zone {
  if (serialOf(zone) === serial) return zone;
  if (zone instanceof LazyZone) return zone.withSerial(serial);
  return reserial(zone, serial);
}

/** withSerial for a built zone: the apex node and SOA RRset copied, every other part shared. */
export function reserial(zone: Zone, serial: number): Zone {
  const soaData = { ...(zone.soa.records[0] as Extract<RData, { kind: 'SOA' }>), serial };
  const soa: RRset = { ...zone.soa, records: Object.freeze([soaData]) };
  const apex = zone.nodes.get(zone.originKey)!;
  const nodes = withNode(zone.nodes, new NameNode(apex.name, apex.key, apex.rrsets.with(soa).list));
  const next: Zone = { ...zone, soa, nodes };
  const digest = digests.get(zone);
  if (digest !== undefined) digests.set(next, digest);
  return next;
}

export interface SerialDecision {
  /** The zone to serve, its SOA carrying the chosen serial. */
  zone: Zone;
  serial: number;
  /** The served serial differs from the previous version's (or there was none): time to NOTIFY. */
  changed: boolean;
  /** Set when the file's own serial was not raised although the content changed (or went backwards): log it. */
  warning: string | undefined;
}

/**
 * A version served before, as far as choosing the next serial needs it: a
 * served Zone in memory, or what the state directory kept of the version
 * served before a restart (src/state/), so a serial never goes backwards
 * across restarts either.
 */
export interface ServedVersion {
  serial: number;
  /** contentDigest() of that version. */
  digest: string;
  /** The serial its file declared (0 for auto). */
  declared: number;
  auto: boolean;
}

/** What the state directory keeps of a served zone. */
export function servedVersion(zone: Zone): ServedVersion {
  const serial = serialOf(zone);
  return { serial, digest: contentDigest(zone), declared: declaredSerials.get(zone) ?? (zone instanceof LazyZone ? zone.declaredSerial : serial), auto: zone.serialAuto };
}

const isZone = (v: Zone | ServedVersion): v is Zone => 'nodes' in v;

/**
 * Chooses the serial to serve for `next`, given the version served before
 * (undefined on first load or for a new zone). `nowSeconds` is the clock for
 * `serial: auto` zones, so their first serial also grows across restarts.
 *
 * - unchanged content: the previous serial stays, unless the file raised it;
 * - changed content: the file's serial if it is greater than the previous one,
 *   else previous + 1 (with a warning for a file that states its serial);
 * - auto: the current unix time when that is greater, else previous + 1.
 *
 * A previous version from the state directory counts like one in memory: a
 * file restored from a backup with an older serial is served at stored + 1
 * (Knot does the same from its journal with `zonefile-load:
 * difference-no-serial`; with a plain reload it keeps the journal's zone and
 * warns that the zone file's serial went backwards).
 */
export function assignSerial(previous: Zone | ServedVersion | undefined, next: Zone, nowSeconds = Math.floor(Date.now() / 1000)): SerialDecision {
  const declared = serialOf(next);
  const now = nowSeconds % SPACE;
  let serial: number;
  let warning: string | undefined;
  const prev = previous === undefined ? undefined : isZone(previous) ? servedVersion(previous) : previous;
  if (!prev) {
    serial = next.serialAuto ? now : declared;
  } else {
    const before = prev.serial;
    const same = prev.digest === contentDigest(next);
    if (next.serialAuto) {
      serial = same ? before : serialGt(now, before) ? now : serialAdd(before, 1);
    } else if (serialGt(declared, before)) {
      serial = declared;
    } else if (same) {
      serial = before;
      if (declared !== prev.declared && !prev.auto) {
        warning = `the file's SOA serial went from ${prev.declared} to ${declared} with no content change; serving ${before} so secondaries do not go backwards`;
      }
    } else {
      serial = serialAdd(before, 1);
      warning = `zone content changed but the file's SOA serial ${declared} is not greater than the served ${before}; serving ${serial}`;
    }
  }
  const zone = withSerial(next, serial);
  // A lazy zone carries the serial its file declared: an entry each was ~30 octets a zone.
  if (!(zone instanceof LazyZone && zone.declaredSerial === declared)) declaredSerials.set(zone, declared);
  return { zone, serial, changed: prev === undefined || serial !== prev.serial, warning };
}

/** The serial each served zone's file declared (0 for auto), so an unchanged file is not mistaken for a lowered one. */
const declaredSerials = new WeakMap<Zone, number>();
