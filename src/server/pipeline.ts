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
import { responseLimit, udpLimit, writeAnswer, writeAnswerInto, writeEmpty, writeEmptyInto } from '../wire/response.ts';
import type { ServedZone } from './served-zone.ts';
import type { Logger } from '../observability/log.ts';
import type { ResponseStream } from '../wire/transport.ts';
import type { TransferService } from './transfer.ts';
import { Decision, type ResponseLimiter } from '../rrl/limiter.ts';
import { ResponseClass } from '../rrl/classify.ts';
import { CookieVerdict, RESPONSE_COOKIE_SIZE, type ServerCookies } from '../cookies/server-cookies.ts';
import { CookieCell, type CookieCounts } from '../observability/metrics.ts';
import { ResolverTtl, type DemandOptions } from './resolver-ttl.ts';
import { Peer } from '../zone/address.ts';
import { HotAnswers } from './hot-answers.ts';

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

/** What decide() concluded; OTHER is also the cookie step's "go on". */
const Reply = { NONE: 0, ANSWER: 1, EMPTY: 2, OTHER: 3 } as const;
type Reply = (typeof Reply)[keyof typeof Reply];

const CHAOS_IDENTITY_NAMES = new Set(['id.server', 'hostname.bind']);

export class QueryPipeline {
  private readonly store: ZoneStore<ServedZone>;
  private readonly chaos: AnswerPlan | undefined;
  private readonly observe: QueryObserver | undefined;
  private readonly transfer: TransferService | undefined;
  private readonly rrl: ResponseLimiter | undefined;
  private readonly cookies: CookieOptions | undefined;
  private readonly resolverTtl: ResolverTtl | undefined;
  /** handle()'s peer: the remote text parsed once per message, so the rest of the path reads words as for UDP. */
  private readonly textPeer = new Peer();
  /** Recent (qname bytes, qtype) → zone and plan, so a repeated question makes no string (hot-answers.ts). */
  private readonly hot = new HotAnswers();
  private hotVersion = -1;
  // The reply decide() chose (see there); valid until the next message.
  private rPlan: AnswerPlan | undefined = undefined;
  private rK = 0;
  private rResolvers = false;
  private rRcode = 0;
  private rWithQuestion = false;
  private rAa = false;
  private rTc = false;
  private rZone: ServedZone | undefined = undefined;
  private rOther: Buffer | ResponseStream | null = null;

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
   * transport; `remote` is the peer's address text (TCP's remoteAddress;
   * '' when there is none). Returns null when the message deserves no answer.
   * A Buffer per answer: TCP frames it; UDP uses answerDatagram, which
   * writes the same bytes with the same writers into its send slot.
   */
  handle(msg: Uint8Array, length: number, transport: Transport, view: QueryView, remote = ''): Buffer | ResponseStream | null {
    const peer = this.textPeer;
    peer.setText(remote, 0);
    switch (this.decide(msg, length, transport, view, peer)) {
      case Reply.NONE:
        return null;
      case Reply.ANSWER: {
        const plan = this.rPlan!;
        const out = writeAnswer(msg, view, plan, this.rK, responseLimit(view, transport));
        if (this.rResolvers) this.resolverTtl!.finish(out, view, plan);
        this.done(view, plan.rcode, this.rZone, transport);
        return out;
      }
      case Reply.EMPTY: {
        const out = writeEmpty(msg, view, this.rRcode, this.rWithQuestion, this.rAa, this.rTc);
        this.done(view, this.rRcode, this.rZone, transport);
        return out;
      }
      default: {
        const out = this.rOther;
        this.rOther = null;
        this.done(view, this.rRcode, this.rZone, transport);
        return out;
      }
    }
  }

  /**
   * Answers one UDP datagram from `peer` into `out` at `at` (room for
   * EDNS_UDP_SIZE octets: no UDP answer is larger); returns the answer's
   * length, 0 when it gets none. The batched UDP path (src/wire/udp-batch.ts)
   * calls this for every datagram of a batch, the dgram path too, so both
   * send the same bytes. Allocates nothing per datagram: the answer is
   * written in place, the peer's parsed address goes to rate limiting,
   * cookies and resolver demand as words (its text is never made here).
   */
  answerDatagram(msg: Uint8Array, length: number, view: QueryView, peer: Peer, out: Uint8Array, at: number): number {
    switch (this.decide(msg, length, 'udp', view, peer)) {
      case Reply.NONE:
        return 0;
      case Reply.ANSWER: {
        const plan = this.rPlan!;
        const n = writeAnswerInto(out, at, msg, view, plan, this.rK, udpLimit(view));
        if (this.rResolvers) this.resolverTtl!.finish(out, view, plan, at, n);
        this.done(view, plan.rcode, this.rZone, 'udp');
        return n;
      }
      case Reply.EMPTY: {
        const n = writeEmptyInto(out, at, msg, view, this.rRcode, this.rWithQuestion, this.rAa, this.rTc);
        this.done(view, this.rRcode, this.rZone, 'udp');
        return n;
      }
      default: {
        // A transfer asked over UDP: REFUSED or a single-message answer, built by the transfer service (rare).
        const reply = this.rOther;
        this.rOther = null;
        this.done(view, this.rRcode, this.rZone, 'udp');
        if (!(reply instanceof Uint8Array)) return 0;
        out.set(reply, at);
        return reply.length;
      }
    }
  }

  /**
   * What the response to one message is, without writing it: NONE, an
   * ANSWER from rPlan at step rK, an EMPTY response (rRcode, rWithQuestion,
   * rAa, rTc) or OTHER (rOther, from the transfer service). The decision's
   * details are left in this pipeline's r* fields (one pipeline per thread,
   * synchronous), so that the two callers write it their way and nothing is
   * allocated to carry it.
   */
  private decide(msg: Uint8Array, length: number, transport: Transport, view: QueryView, peer: Peer): Reply {
    const status = decodeQuery(msg, length, view);
    switch (status) {
      case QueryStatus.DROP:
        return Reply.NONE;
      case QueryStatus.FORMERR:
        return this.error(view, Rcode.FORMERR, view.questionEnd > 12, transport, peer);
      case QueryStatus.NOTIMP:
        // We are a primary only: a NOTIFY sent to us is answered NOTAUTH, as Knot answers one it does not accept.
        if (view.opcode === OPCODE_NOTIFY && view.questionEnd > 12) return this.error(view, RCODE_NOTAUTH, true, transport, peer);
        return this.error(view, Rcode.NOTIMP, view.questionEnd > 12, transport, peer);
    }
    // Before anything else answers, so that BADVERS and REFUSED carry the cookie too (BIND does the same).
    if (this.cookies) {
      const refused = this.cookieStep(msg, view, transport, peer, this.cookies);
      if (refused !== Reply.OTHER) return refused;
    }
    // RFC 6891 §6.1.3: we implement EDNS version 0 only.
    if (view.hasEdns && view.ednsVersion > 0) return this.error(view, Rcode.BADVERS, true, transport, peer);
    // RFC 7871 §7.2.1: a wrongly formatted ECS option is FORMERR (with OPT and any cookie, without ECS). After the
    // cookie step so that the FORMERR carries the cookie, after BADVERS because options of another EDNS version are
    // not ours to judge; an error like any other to rate limiting.
    if (view.ecsMalformed) return this.error(view, Rcode.FORMERR, true, transport, peer);

    if (view.qclass !== RRClass.IN) {
      if (view.qclass === RRClass.CH && this.chaos && view.qtype === RRType.TXT && CHAOS_IDENTITY_NAMES.has(view.qnameKey)) {
        return this.answer(view, this.chaos, undefined, transport, peer);
      }
      return this.error(view, Rcode.REFUSED, true, transport, peer);
    }
    const qtype = view.qtype;
    if (qtype === RRType.OPT) return this.error(view, Rcode.FORMERR, true, transport, peer);
    if (qtype === RRType.AXFR || qtype === RRType.IXFR) {
      if (!this.transfer) return this.error(view, Rcode.REFUSED, true, transport, peer);
      const served = this.store.get(view.qnameKey);
      const { out, rcode } = this.transfer.answer(msg, length, view, transport, peer.text, served);
      this.rOther = out;
      this.rRcode = rcode;
      this.rZone = served;
      return Reply.OTHER;
    }
    if (qtype === RRType.MAILA || qtype === RRType.MAILB) return this.error(view, Rcode.NOTIMP, true, transport, peer);

    const hot = this.hot;
    if (this.store.version !== this.hotVersion) {
      hot.clear();
      this.hotVersion = this.store.version;
    }
    const kept = hot.lookup(msg, view);
    if (kept === null) return this.error(view, Rcode.REFUSED, true, transport, peer);
    if (kept !== undefined) return this.answer(view, kept, hot.zone, transport, peer);
    const served = this.zoneFor(view.qnameKey, qtype);
    if (!served) {
      hot.store(msg, view, undefined, undefined);
      return this.error(view, Rcode.REFUSED, true, transport, peer);
    }
    const plan = served.plan(view.qname, view.qnameKey, view.qnameWireLength, qtype);
    hot.store(msg, view, served, plan);
    return this.answer(view, plan, served, transport, peer);
  }

  /**
   * The rate-limit step (UDP only; TCP proves the source and is never
   * limited): decided from the plan's precomputed class and name, before any
   * answer bytes are written, so a dropped response costs less than an
   * answered one. A query whose source a server cookie proved is exempt.
   */
  private limit(view: QueryView, cls: number, name: number, transport: Transport, peer: Peer): Decision {
    if (this.rrl === undefined || transport !== 'udp' || view.sourceProven) return Decision.SEND;
    return this.rrl.decideAddress(peer.address, cls, name);
  }

  /** An answer from a plan, through the rate limit. */
  private answer(view: QueryView, plan: AnswerPlan, served: ServedZone | undefined, transport: Transport, peer: Peer): Reply {
    const decision = this.limit(view, plan.limitClass, plan.limitName, transport, peer);
    if (decision === Decision.DROP) return Reply.NONE;
    if (decision === Decision.SLIP) return this.empty(plan.rcode, true, plan.authoritative, true, served);
    let k = served ? served.nextVariant(plan) : 0;
    const resolvers = served !== undefined && this.resolverTtl !== undefined && ResolverTtl.applies(plan);
    if (resolvers) k = this.resolverTtl!.step(plan, served!.zone.ttlPolicy.minTtl, peer.address, k);
    served?.countFirst(plan, k);
    this.rPlan = plan;
    this.rK = k;
    this.rResolvers = resolvers;
    this.rZone = served;
    return Reply.ANSWER;
  }

  /** A response without records for the writers (see decide). */
  private empty(rcode: number, withQuestion: boolean, aa: boolean, tc: boolean, zone: ServedZone | undefined): Reply {
    this.rRcode = rcode;
    this.rWithQuestion = withQuestion;
    this.rAa = aa;
    this.rTc = tc;
    this.rZone = zone;
    return Reply.EMPTY;
  }

  /** An error response (no records), through the rate limit as class error. */
  private error(view: QueryView, rcode: number, withQuestion: boolean, transport: Transport, peer: Peer): Reply {
    const decision = this.limit(view, ResponseClass.ERROR, 0, transport, peer);
    if (decision === Decision.DROP) return Reply.NONE;
    return this.empty(rcode, withQuestion, false, decision === Decision.SLIP, undefined);
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
   * reply when the step answers (NONE: rate limiting dropped it), else
   * OTHER (the query goes on). FORMERR and BADCOOKIE are errors to rate
   * limiting like any other: a spoofed flood of them must not be answered in full.
   */
  private cookieStep(msg: Uint8Array, view: QueryView, transport: Transport, peer: Peer, cookies: CookieOptions): Reply {
    if (view.cookieMalformed) {
      cookies.counts.count(CookieCell.MALFORMED);
      return this.error(view, Rcode.FORMERR, true, transport, peer);
    }
    if (view.cookieLength === 0) {
      if (!cookies.require || transport !== 'udp') return Reply.OTHER;
      cookies.counts.count(CookieCell.TRUNCATED);
      return this.empty(Rcode.NOERROR, true, false, true, undefined);
    }
    const verdict = cookies.server.judgeAddress(msg, view.cookieAt, view.cookieLength, peer.address, view.responseCookie);
    if (verdict === CookieVerdict.NONE) return Reply.OTHER;
    view.responseCookieLength = RESPONSE_COOKIE_SIZE;
    if (verdict === CookieVerdict.VALID) {
      view.sourceProven = true;
      cookies.counts.count(CookieCell.VALID);
      return Reply.OTHER;
    }
    cookies.counts.count(verdict === CookieVerdict.CLIENT_ONLY ? CookieCell.CLIENT_ONLY : CookieCell.INVALID);
    if (!cookies.require || transport !== 'udp') return Reply.OTHER;
    cookies.counts.count(CookieCell.BADCOOKIE);
    return this.error(view, Rcode.BADCOOKIE, true, transport, peer);
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

  private done(view: QueryView, rcode: number, zone: ServedZone | undefined, transport: Transport): void {
    if (this.observe) this.observe(view, rcode, zone, transport);
  }
}
