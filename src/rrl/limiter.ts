/**
 * The rate-limit decision for one UDP response, per thread, over the shared
 * BucketTable: send it, drop it, or slip it (send it truncated: TC=1 and no
 * records, so a real resolver retries over TCP, which is never limited,
 * while a spoofed victim gets a response no larger than the query).
 *
 * BIND `slip`: every slip-th limited response of a bucket slips (2 = every
 * other one; 1 = all; 0 = none, all dropped). `log-only` (BIND `log-only
 * yes`): decide and count as if limiting, send everything.
 *
 * Counts and a bounded tally of the prefixes limited are kept here and
 * handed over with take() (a worker sends them to the main thread once a
 * second; see server/rate-limit.ts).
 */
import type { ServerConfig } from '../config/schema.ts';
import { RESPONSE_CLASSES } from './classify.ts';
import { Address, maskAddress, parseAddress, prefixText } from '../zone/address.ts';
import { CidrSet } from './prefix.ts';
import { BucketTable, processMs } from './table.ts';

export type RrlSettings = ServerConfig['rrl'];

export const Decision = { SEND: 0, DROP: 1, SLIP: 2 } as const;
export type Decision = (typeof Decision)[keyof typeof Decision];

/** Count cells: action * RESPONSE_CLASSES + class. */
export const Action = { DROPPED: 0, SLIPPED: 1, WOULD_DROP: 2, WOULD_SLIP: 3 } as const;
export const ACTIONS = 4;

/** Distinct prefixes one thread tallies between reports; more are counted as other. */
export const TALLY_KEYS = 64;

/** What one thread limited since its last report. */
export interface RrlReport {
  /** ACTIONS * RESPONSE_CLASSES cells (see Action). */
  counts: number[];
  /** Limited responses by client prefix (text), at most TALLY_KEYS. */
  prefixes: [string, number][];
  /** Limited responses of prefixes beyond the tally. */
  other: number;
}

interface Tally {
  text: string;
  n: number;
}

export class ResponseLimiter {
  readonly settings: RrlSettings;
  private readonly table: BucketTable;
  private readonly exempt: CidrSet;
  private readonly logOnly: boolean;
  /** Per class: responses per second (whole numbers in a plain array: read as small integers, never boxed). */
  private readonly rates: readonly number[];
  private readonly address = new Address();
  private readonly counts = new Float64Array(ACTIONS * RESPONSE_CLASSES);
  private counted = false;
  private readonly tally = new Map<number, Tally>();
  private other = 0;

  constructor(settings: RrlSettings, table: BucketTable) {
    this.settings = settings;
    this.table = table;
    this.exempt = new CidrSet(settings.exempt);
    this.logOnly = settings.mode === 'log-only';
    this.rates = [settings.responsesPerSecond, settings.nodataPerSecond, settings.nxdomainsPerSecond, settings.referralsPerSecond, settings.errorsPerSecond];
  }

  /**
   * The decision for a response of class `cls` (classify.ts) and name hash
   * `name` to the client at `address` (text, as dgram's rinfo.address gives
   * it). Never throws; an address it cannot read is not limited.
   */
  decide(address: string, cls: number, name: number): Decision {
    if (!parseAddress(address, this.address)) return Decision.SEND;
    return this.decideParsed(cls, name);
  }

  /**
   * decide() for an address already parsed (the UDP paths' Peer): the words
   * are copied into this limiter's scratch before masking, so the caller's
   * address is left as it was. Hot path: nothing allocated.
   */
  decideAddress(address: Address, cls: number, name: number): Decision {
    if (address.family === 0) return Decision.SEND;
    this.address.copyFrom(address);
    return this.decideParsed(cls, name);
  }

  private decideParsed(cls: number, name: number): Decision {
    const a = this.address;
    if (this.exempt.size > 0 && this.exempt.has(a)) return Decision.SEND;
    const bits = a.family === 4 ? this.settings.ipv4Prefix : this.settings.ipv6Prefix;
    maskAddress(a, bits);
    const w = a.w;
    this.table.now = processMs();
    const limited = this.table.debitNow(cls | (a.family << 8), w[0]!, w[1]!, w[2]!, w[3]!, name, this.rates[cls]!, this.settings.window);
    if (limited === 0) return Decision.SEND;
    const slip = this.settings.slip;
    const decision = slip > 0 && limited % slip === 0 ? Decision.SLIP : Decision.DROP;
    const action = (this.logOnly ? 2 : 0) + (decision === Decision.SLIP ? 1 : 0);
    const cell = action * RESPONSE_CLASSES + cls;
    this.counts[cell] = this.counts[cell]! + 1;
    this.counted = true;
    this.note(a, bits);
    return this.logOnly ? Decision.SEND : decision;
  }

  /** Tallies a limited response for its (masked) prefix; bounded in keys. */
  private note(a: Address, bits: number): void {
    const w = a.w;
    const key = a.family === 4 ? w[0]! : 2 ** 32 + ((w[0]! ^ Math.imul(w[1]!, 0x9e3779b1) ^ Math.imul(w[2]!, 0x85ebca6b) ^ Math.imul(w[3]!, 0xc2b2ae35)) >>> 0);
    const t = this.tally.get(key);
    if (t) t.n++;
    else if (this.tally.size < TALLY_KEYS) this.tally.set(key, { text: prefixText(a.family as 4 | 6, w, bits), n: 1 });
    else this.other++;
  }

  /** What was limited since the last take(), starting over; undefined when nothing was. */
  take(): RrlReport | undefined {
    if (!this.counted) return undefined;
    const report: RrlReport = { counts: Array.from(this.counts), prefixes: [...this.tally.values()].map((t) => [t.text, t.n]), other: this.other };
    this.counts.fill(0);
    this.counted = false;
    this.tally.clear();
    this.other = 0;
    return report;
  }
}
