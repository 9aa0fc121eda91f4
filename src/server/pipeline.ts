/**
 * The query pipeline: packet in, packet out (or nothing). Decode → cookie
 * step (RFC 7873: may answer FORMERR or, with require-cookies, BADCOOKIE/TC;
 * prepares the response cookie) → policy checks (opcode, EDNS version, a
 * malformed ECS option (RFC 7871), class, qtype) → zone by longest suffix →
 * compiled answer → response bytes.
 * Synchronous and exception-safe: whatever a packet contains, `handle` returns.
 */
import { nameToText, parentOf } from '../zone/name.ts';
import { RRClass, RRType, typeToText } from '../zone/records.ts';
import type { ZoneStore } from '../zone/store.ts';
import { chaosTxtPlan, type AnswerPlan } from '../wire/answer.ts';
import { decodeQuery, QueryStatus, QueryView, Rcode } from '../wire/query.ts';
import { responseLimit, writeAnswer, writeEmpty } from '../wire/response.ts';
import type { ServedZone } from './served-zone.ts';
import type { Logger } from '../observability/log.ts';
import type { ResponseStream } from '../wire/transport.ts';
import type { TransferService } from './transfer.ts';
import { Decision, type ResponseLimiter } from '../rrl/limiter.ts';
import { ResponseClass } from '../rrl/classify.ts';
import { CookieVerdict, RESPONSE_COOKIE_SIZE, type ServerCookies } from '../cookies/server-cookies.ts';
import { CookieCell, type CookieCounts } from '../observability/metrics.ts';
import { ResolverTtl, type DemandOptions } from './resolver-ttl.ts';
import type { Peer } from '../zone/address.ts';

export type Transport = 'udp' | 'tcp';

/** Called once per answered query; keep it cheap (it runs on the hot path). */
export type QueryObserver = (view: QueryView, rcode: number, zone: ServedZone | undefined, transport: Transport) => void;

/**
 * The observer every thread's pipeline uses: count each query, and log it
 * only at debug level (per-query logging costs; below debug it does not exist).
 */
export function countingObserver(count: (zone: string | undefined, qtype: number, rcode: number, transport: Transport) => void, log: Logger): QueryObserver {
  const counted: QueryObserver = (q, rcode, zone, transport) => count(zone?.label, q.qtype, rcode, transport);
  if (!log.isLevelEnabled('debug')) return counted;
  return (q, rcode, zone, transport) => {
    counted(q, rcode, zone, transport);
    log.debug({ qname: nameToText(q.qname), qtype: typeToText(q.qtype), rcode, zone: zone?.label, transport }, 'query');
  };
}

export interface PipelineOptions {
  /** When set, CHAOS-class TXT queries for id.server / hostname.bind answer with it (RFC 4892). */
  chaosIdentity?: string | undefined;
  observe?: QueryObserver | undefined;
  /** Answers AXFR/IXFR; without it every transfer is REFUSED. */
  transfer?: TransferService | undefined;
  /** Response rate limiting of UDP answers (src/rrl/); none when RRL is off. */
  rrl?: ResponseLimiter | undefined;
  /** DNS cookies (RFC 7873 / RFC 9018); without it the COOKIE option is ignored, as by a server that does not implement it. */
  cookies?: CookieOptions | undefined;
  /** Resolver-aware TTLs (server/resolver-ttl.ts): the shared demand table and its clock; without it pools' balance.resolvers does nothing. */
  demand?: DemandOptions | undefined;
}

export interface CookieOptions {
  server: ServerCookies;
  /** require-cookies: UDP queries without a valid server cookie get BADCOOKIE (with a client cookie) or an empty TC answer (without). */
  require: boolean;
  counts: CookieCounts;
}

/** RFC 1996 NOTIFY opcode. */
const OPCODE_NOTIFY = 4;
/** RFC 2136 §2.2 NOTAUTH. */
const RCODE_NOTAUTH = 9;

const CHAOS_IDENTITY_NAMES = new Set(['id.server', 'hostname.bind']);

export class QueryPipeline {
  private readonly store: ZoneStore<ServedZone>;
  private readonly chaos: AnswerPlan | undefined;
  private readonly observe: QueryObserver | undefined;
  private readonly transfer: TransferService | undefined;
  private readonly rrl: ResponseLimiter | undefined;
  private readonly cookies: CookieOptions | undefined;
  private readonly resolverTtl: ResolverTtl | undefined;

  constructor(store: ZoneStore<ServedZone>, options: PipelineOptions = {}) {
    this.store = store;
    this.cookies = options.cookies;
    this.transfer = options.transfer;
    this.chaos = options.chaosIdentity ? chaosTxtPlan(options.chaosIdentity) : undefined;
    this.observe = options.observe;
    this.rrl = options.rrl;
    this.resolverTtl = options.demand ? new ResolverTtl(options.demand) : undefined;
  }

  /**
   * Answers one message. `view` is scratch space owned by the caller's
   * transport. Returns null when the message deserves no answer.
   */
  handle(msg: Uint8Array, length: number, transport: Transport, view: QueryView, remote = ''): Buffer | ResponseStream | null {
    const status = decodeQuery(msg, length, view);
    switch (status) {
      case QueryStatus.DROP:
        return null;
      case QueryStatus.FORMERR:
        return this.error(msg, view, Rcode.FORMERR, view.questionEnd > 12, transport, remote);
      case QueryStatus.NOTIMP:
        // We are a primary only: a NOTIFY sent to us is answered NOTAUTH, as Knot answers one it does not accept.
        if (view.opcode === OPCODE_NOTIFY && view.questionEnd > 12) return this.error(msg, view, RCODE_NOTAUTH, true, transport, remote);
        return this.error(msg, view, Rcode.NOTIMP, view.questionEnd > 12, transport, remote);
    }
    // Before anything else answers, so that BADVERS and REFUSED carry the cookie too (BIND does the same).
    if (this.cookies) {
      const refused = this.cookieStep(msg, view, transport, remote, this.cookies);
      if (refused !== undefined) return refused;
    }
    // RFC 6891 §6.1.3: we implement EDNS version 0 only.
    if (view.hasEdns && view.ednsVersion > 0) return this.error(msg, view, Rcode.BADVERS, true, transport, remote);
    // RFC 7871 §7.2.1: a wrongly formatted ECS option is FORMERR (with OPT and any cookie, without ECS). After the
    // cookie step so that the FORMERR carries the cookie, after BADVERS because options of another EDNS version are
    // not ours to judge; an error like any other to rate limiting.
    if (view.ecsMalformed) return this.error(msg, view, Rcode.FORMERR, true, transport, remote);

    if (view.qclass !== RRClass.IN) {
      if (view.qclass === RRClass.CH && this.chaos && view.qtype === RRType.TXT && CHAOS_IDENTITY_NAMES.has(view.qnameKey)) {
        return this.answer(msg, view, this.chaos, undefined, transport, remote);
      }
      return this.error(msg, view, Rcode.REFUSED, true, transport, remote);
    }
    const qtype = view.qtype;
    if (qtype === RRType.OPT) return this.error(msg, view, Rcode.FORMERR, true, transport, remote);
    if (qtype === RRType.AXFR || qtype === RRType.IXFR) {
      if (!this.transfer) return this.error(msg, view, Rcode.REFUSED, true, transport, remote);
      const served = this.store.get(view.qnameKey);
      const { out, rcode } = this.transfer.answer(msg, length, view, transport, remote, served);
      return this.done(view, out, rcode, served, transport);
    }
    if (qtype === RRType.MAILA || qtype === RRType.MAILB) return this.error(msg, view, Rcode.NOTIMP, true, transport, remote);

    const served = this.zoneFor(view.qnameKey, qtype);
    if (!served) return this.error(msg, view, Rcode.REFUSED, true, transport, remote);
    const plan = served.plan(view.qname, view.qnameKey, view.qnameWireLength, qtype);
    return this.answer(msg, view, plan, served, transport, remote);
  }

  /**
   * Answers one UDP datagram from `peer` into `out` at `at` (room for
   * EDNS_UDP_SIZE octets: no UDP answer is larger); returns the answer's
   * length, 0 when it gets none. The batched UDP path (src/wire/udp-batch.ts)
   * calls this for every datagram of a batch, the dgram path too, so both
   * send the same bytes.
   */
  answerDatagram(msg: Uint8Array, length: number, view: QueryView, peer: Peer, out: Uint8Array, at: number): number {
    const answer = this.handle(msg, length, 'udp', view, peer.text);
    if (!(answer instanceof Uint8Array)) return 0;
    out.set(answer, at);
    return answer.length;
  }

  /**
   * The rate-limit step (UDP only; TCP proves the source and is never
   * limited): decided from the plan's precomputed class and name, before any
   * answer bytes are written, so a dropped response costs less than an
   * answered one. A query whose source a server cookie proved is exempt.
   */
  private limit(view: QueryView, cls: number, name: number, transport: Transport, remote: string): Decision {
    if (this.rrl === undefined || transport !== 'udp' || view.sourceProven) return Decision.SEND;
    return this.rrl.decide(remote, cls, name);
  }

  /** An answer from a plan, through the rate limit. */
  private answer(msg: Uint8Array, view: QueryView, plan: AnswerPlan, served: ServedZone | undefined, transport: Transport, remote: string): Buffer | null {
    const decision = this.limit(view, plan.limitClass, plan.limitName, transport, remote);
    if (decision === Decision.DROP) return null;
    if (decision === Decision.SLIP) return this.done(view, writeEmpty(msg, view, plan.rcode, true, plan.authoritative, true), plan.rcode, served, transport);
    let k = served ? served.nextVariant(plan) : 0;
    const resolvers = served && this.resolverTtl && ResolverTtl.applies(plan) ? this.resolverTtl : undefined;
    if (resolvers) k = resolvers.step(plan, served!.zone.ttlPolicy.minTtl, remote, k);
    served?.countFirst(plan, k);
    const out = writeAnswer(msg, view, plan, k, responseLimit(view, transport));
    resolvers?.finish(out, view, plan);
    return this.done(view, out, plan.rcode, served, transport);
  }

  /** An error response (no records), through the rate limit as class error. */
  private error(msg: Uint8Array, view: QueryView, rcode: number, withQuestion: boolean, transport: Transport, remote: string): Buffer | null {
    const decision = this.limit(view, ResponseClass.ERROR, 0, transport, remote);
    if (decision === Decision.DROP) return null;
    return this.done(view, writeEmpty(msg, view, rcode, withQuestion, false, decision === Decision.SLIP), rcode, undefined, transport);
  }

  /**
   * RFC 7873 §5.2 for one query: a malformed COOKIE option is FORMERR (with
   * OPT, no cookie echoed; §5.2.2); a client cookie gets a server cookie back
   * in whatever the response is (the view's responseCookie), and a valid
   * server cookie marks the source proven (RRL exempts it). Only with
   * require-cookies, and only over UDP (TCP proves the address by itself),
   * does a query without a valid server cookie go unanswered: BADCOOKIE with
   * the fresh cookie when it sent a client cookie (§5.2.3, §5.2.4), an empty
   * TC answer when it sent none, so that it retries over TCP. Returns the
   * response when the step answers (null: rate limiting dropped it), else
   * undefined (the query goes on). FORMERR and BADCOOKIE are errors to rate
   * limiting like any other: a spoofed flood of them must not be answered in full.
   */
  private cookieStep(msg: Uint8Array, view: QueryView, transport: Transport, remote: string, cookies: CookieOptions): Buffer | null | undefined {
    if (view.cookieMalformed) {
      cookies.counts.count(CookieCell.MALFORMED);
      return this.error(msg, view, Rcode.FORMERR, true, transport, remote);
    }
    if (view.cookieLength === 0) {
      if (!cookies.require || transport !== 'udp') return undefined;
      cookies.counts.count(CookieCell.TRUNCATED);
      return this.done(view, writeEmpty(msg, view, Rcode.NOERROR, true, false, true), Rcode.NOERROR, undefined, transport);
    }
    const verdict = cookies.server.judge(msg, view.cookieAt, view.cookieLength, remote, view.responseCookie);
    if (verdict === CookieVerdict.NONE) return undefined;
    view.responseCookieLength = RESPONSE_COOKIE_SIZE;
    if (verdict === CookieVerdict.VALID) {
      view.sourceProven = true;
      cookies.counts.count(CookieCell.VALID);
      return undefined;
    }
    cookies.counts.count(verdict === CookieVerdict.CLIENT_ONLY ? CookieCell.CLIENT_ONLY : CookieCell.INVALID);
    if (!cookies.require || transport !== 'udp') return undefined;
    cookies.counts.count(CookieCell.BADCOOKIE);
    return this.error(msg, view, Rcode.BADCOOKIE, true, transport, remote);
  }

  /**
   * The zone that answers: the longest suffix (RFC 1034 §4.3.2 step 2), except
   * that DS at the apex of a zone we serve belongs to the parent side of the
   * cut when we serve the parent too (RFC 4035 §3.1.4.1).
   */
  private zoneFor(qnameKey: string, qtype: number): ServedZone | undefined {
    const served = this.store.find(qnameKey);
    if (qtype !== RRType.DS || served === undefined || served.zone.originKey !== qnameKey || qnameKey === '') return served;
    return this.store.find(parentOf(qnameKey)!) ?? served;
  }

  private done<T extends Buffer | ResponseStream>(view: QueryView, out: T, rcode: number, zone: ServedZone | undefined, transport: Transport): T {
    if (this.observe) this.observe(view, rcode, zone, transport);
    return out;
  }
}
