/**
 * Outgoing zone transfers (RFC 5936 AXFR; IXFR per RFC 1995 answered with
 * the full zone). Decides who gets what:
 *
 * - the qname must be the origin of a zone we serve with `transfer.allow`
 *   listing the peer's address; anything else is REFUSED (as BIND and NSD do;
 *   Knot 3.2 says NOTAUTH);
 * - AXFR over UDP is REFUSED whoever asks: RFC 5936 §4.2 defines AXFR over
 *   TCP only, and our contract is "transfers over TCP to listed peers,
 *   REFUSED for everything else" (Knot 3.2 says NOTIMP here);
 * - IXFR must carry the client's SOA in its authority section (RFC 1995 §3),
 *   else FORMERR (as Knot);
 * - IXFR over UDP from an allowed peer gets the SOA alone, which tells it to
 *   come back over TCP (RFC 1995 §2);
 * - IXFR over TCP: the SOA alone when the client's serial is not older than
 *   ours, else the whole zone in AXFR form (RFC 1995 §4 allows it; Knot and
 *   BIND secondaries take it as a full transfer);
 * - at most `maxConcurrent` transfers stream at once; past that, SERVFAIL,
 *   which secondaries retry later.
 */
import type { Logger } from '../observability/log.ts';
import { LogLimiter } from '../observability/log-limiter.ts';
import { axfrMessages, ixfrClientSerial, soaOnlyMessage, type XfrProgress, type XfrQuery } from '../wire/axfr.ts';
import { HEADER_SIZE, Rcode, type QueryView } from '../wire/query.ts';
import { writeEmpty } from '../wire/response.ts';
import type { ResponseStream } from '../wire/transport.ts';
import { RRType } from '../zone/records.ts';
import { nameToText } from '../zone/name.ts';
import { assignSerial, serialGt, serialOf, type ServedVersion } from '../zone/serial.ts';
import type { Zone } from '../zone/zone.ts';
import { monotonicMs } from '../zone/clock.ts';
import type { ServedZone } from './served-zone.ts';

export interface TransferLimits {
  /** Transfers streaming at the same time. */
  maxConcurrent: number;
  /** Target size of each transfer message. */
  messageBytes: number;
}

export const DEFAULT_TRANSFER_LIMITS: TransferLimits = { maxConcurrent: 8, messageBytes: 16 * 1024 };

export interface TransferAnswer {
  out: Buffer | ResponseStream;
  rcode: number;
}

/** A transfer in progress: pulls messages from the encoder, frees its slot once, logs the outcome. */
class TransferStream implements ResponseStream {
  private readonly messages: Generator<Buffer, void, void>;
  private readonly finish: (outcome: 'done' | 'cancelled' | 'failed', err?: unknown) => void;
  private ended = false;

  constructor(messages: Generator<Buffer, void, void>, finish: (outcome: 'done' | 'cancelled' | 'failed', err?: unknown) => void) {
    this.messages = messages;
    this.finish = finish;
  }

  next(): Buffer | undefined {
    if (this.ended) return undefined;
    let r: IteratorResult<Buffer, void>;
    try {
      r = this.messages.next();
    } catch (err) {
      this.end('failed', err);
      throw err;
    }
    if (r.done) {
      this.end('done');
      return undefined;
    }
    return r.value;
  }

  cancel(): void {
    this.end('cancelled');
  }

  private end(outcome: 'done' | 'cancelled' | 'failed', err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.finish(outcome, err);
  }
}

export class TransferService {
  private readonly log: Logger;
  private readonly limits: TransferLimits;
  private active = 0;
  /** Refusals and deferrals are per-peer events any TCP client can repeat: rate-limited per peer. */
  private readonly limited: LogLimiter;

  constructor(log: Logger, limits: Partial<TransferLimits> = {}, limiter?: LogLimiter) {
    this.log = log;
    this.limits = { ...DEFAULT_TRANSFER_LIMITS, ...limits };
    this.limited = limiter ?? new LogLimiter(log);
  }

  /** Transfers streaming now. */
  get activeTransfers(): number {
    return this.active;
  }

  /**
   * Answers an AXFR or IXFR query already decoded into `view` (class IN).
   * `served` is the zone whose origin is exactly the qname, if any.
   */
  answer(msg: Uint8Array, length: number, view: QueryView, transport: 'udp' | 'tcp', remote: string, served: ServedZone | undefined): TransferAnswer {
    const zone = served?.zone;
    const qtype = view.qtype === RRType.AXFR ? 'AXFR' : 'IXFR';
    const refuse = (why: string): TransferAnswer => {
      // Over TCP the peer address is real (no spoofing), so a denial is worth a line; UDP ones are noise.
      if (transport === 'tcp') this.limited.write('info', 'xfr-refused', remote, { zone: served?.label ?? view.qname, peer: remote, qtype, why }, 'zone transfer refused');
      return { out: writeEmpty(msg, view, Rcode.REFUSED, true), rcode: Rcode.REFUSED };
    };
    if (transport === 'udp' && view.qtype === RRType.AXFR) return { out: writeEmpty(msg, view, Rcode.REFUSED, true), rcode: Rcode.REFUSED };
    if (!zone) return refuse('not a zone apex served here');
    if (!zone.transfer || !zone.transfer.allows(remote)) return refuse(zone.transfer ? 'peer not in transfer.allow' : 'transfer is off for this zone');
    const q = xfrQuery(msg, view);
    if (view.qtype === RRType.IXFR) {
      const theirs = ixfrClientSerial(msg, length, view.questionEnd);
      if (theirs === undefined) return { out: writeEmpty(msg, view, Rcode.FORMERR, true), rcode: Rcode.FORMERR };
      // Up to date, or over UDP where a transfer does not fit: the SOA alone.
      if (transport === 'udp' || !serialGt(serialOf(zone), theirs)) return { out: soaOnlyMessage(zone, q), rcode: Rcode.NOERROR };
    }
    if (this.active >= this.limits.maxConcurrent) {
      this.limited.write('warn', 'xfr-deferred', remote, { zone: served.label, peer: remote, qtype, active: this.active }, 'zone transfer deferred: too many transfers at once (SERVFAIL)');
      return { out: writeEmpty(msg, view, Rcode.SERVFAIL, true), rcode: Rcode.SERVFAIL };
    }
    return { out: this.stream(zone, q, served.label, remote, qtype), rcode: Rcode.NOERROR };
  }

  private stream(zone: Zone, q: XfrQuery, label: string, peer: string, qtype: string): ResponseStream {
    this.active++;
    const progress: XfrProgress = { messages: 0, records: 0, bytes: 0 };
    const started = monotonicMs();
    const serial = serialOf(zone);
    // The zone object is immutable: a reload during the transfer does not change what this one sends.
    return new TransferStream(axfrMessages(zone, q, progress, this.limits.messageBytes), (outcome, err) => {
      this.active--;
      const fields = { zone: label, peer, qtype, serial, ...progress, ms: Math.round(monotonicMs() - started) };
      if (outcome === 'done') this.log.info(fields, 'zone transfer sent');
      else if (outcome === 'cancelled') this.log.warn(fields, 'zone transfer cut short: the connection closed');
      else this.log.error({ ...fields, err }, 'zone transfer failed');
    });
  }
}

function xfrQuery(msg: Uint8Array, view: QueryView): XfrQuery {
  return {
    id: view.id,
    flags: view.flags,
    // A copy: the transport reuses its receive buffer for later queries while the transfer streams.
    question: Buffer.from(msg.subarray(HEADER_SIZE, view.questionEnd)),
    qnameKey: view.qnameKey,
    edns: view.hasEdns,
    ednsDo: view.ednsDo,
    cookie: view.responseCookieLength > 0 ? Buffer.from(view.responseCookie.subarray(0, view.responseCookieLength)) : undefined,
  };
}

/**
 * The zone versions to serve after a (re)load: each zone's serial chosen
 * against the version served before (src/zone/serial.ts): the one in memory,
 * or after a restart the one the state directory kept, the file-serial
 * warnings logged, and the zones whose served serial changed (new zones
 * included), which are the ones to NOTIFY.
 */
export function servedVersions(zones: readonly Zone[], previous: (originKey: string) => Zone | undefined, log: Logger, stored: (origin: string) => ServedVersion | undefined = () => undefined): { zones: Zone[]; changed: Zone[] } {
  const out: Zone[] = [];
  const changed: Zone[] = [];
  for (const next of zones) {
    const origin = nameToText(next.origin).toLowerCase();
    const inMemory = previous(next.originKey);
    const kept = inMemory ? undefined : stored(origin);
    const decision = assignSerial(inMemory ?? kept, next);
    if (decision.warning) log.warn({ zone: origin, file: next.source, serial: decision.serial, ...(kept ? { previous: 'state directory' } : {}) }, decision.warning);
    if (decision.changed) changed.push(decision.zone);
    out.push(decision.zone);
  }
  return { zones: out, changed };
}
