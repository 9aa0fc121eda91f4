/**
 * Response classes of rate limiting, as BIND's `rate-limit` and Knot's
 * mod-rrl account them. Identical answers to one client prefix share a
 * bucket; answers that do not depend on the exact name share one per what
 * they do depend on, so that a flood of random names cannot spread over
 * buckets of its own:
 *
 * - answer: per qname and qtype; a wildcard answer per wildcard owner and
 *   qtype (BIND keys synthesised answers by the wildcard's name).
 * - nodata: per zone. nxdomain: per zone (BIND: "NXDOMAIN responses for
 *   one zone share one account").
 * - referral: per delegation point.
 * - error: REFUSED, FORMERR, NOTIMP, SERVFAIL, BADVERS, NOTAUTH: per client
 *   prefix only.
 *
 * Computed once when an answer is compiled and kept on the plan (plans are
 * cached), so a query pays nothing for it.
 */

export const ResponseClass = { ANSWER: 0, NODATA: 1, NXDOMAIN: 2, REFERRAL: 3, ERROR: 4 } as const;
export type ResponseClass = (typeof ResponseClass)[keyof typeof ResponseClass];

/** Label values for /metrics and logs, by class number. */
export const RESPONSE_CLASS_NAMES = ['answer', 'nodata', 'nxdomain', 'referral', 'error'] as const;
export const RESPONSE_CLASSES = RESPONSE_CLASS_NAMES.length;

/**
 * FNV-1a of a string's UTF-16 code units, kept to 30 bits: the name part of
 * a bucket key (the table mixes it with a secret seed). 30 bits so that it is
 * a small integer to V8: a plan's hash passed on every answer (rate limit,
 * resolver demand) would otherwise be boxed into a new heap number each time.
 */
export function nameHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) & 0x3fffffff;
}

/** What a resolution says about itself (the resolver's Resolution fits). */
export interface Classifiable {
  readonly outcome: 'HIT' | 'NODATA' | 'NXDOMAIN' | 'DELEGATION' | 'SERVFAIL';
  readonly sharedKey: string | undefined;
  readonly sharedSuffix: string | undefined;
}

export interface LimitKey {
  readonly limitClass: ResponseClass;
  readonly limitName: number;
}

/** The class and name hash of a resolution of `qnameKey`/`qtype` in the zone `originKey`. */
export function classify(res: Classifiable, qnameKey: string, qtype: number, originKey: string): LimitKey {
  switch (res.outcome) {
    case 'HIT':
      // A wildcard answer's sharedKey names the wildcard and the qtype (W:<owner>:<qtype>).
      return { limitClass: ResponseClass.ANSWER, limitName: nameHash(res.sharedKey ?? `${qtype}:${qnameKey}`) };
    case 'NODATA':
      return { limitClass: ResponseClass.NODATA, limitName: nameHash(originKey) };
    case 'NXDOMAIN':
      return { limitClass: ResponseClass.NXDOMAIN, limitName: nameHash(originKey) };
    case 'DELEGATION':
      // From below a cut the sharedSuffix is the cut; otherwise the qname is (or leads through a CNAME to) it.
      return { limitClass: ResponseClass.REFERRAL, limitName: nameHash(res.sharedSuffix ?? qnameKey) };
    case 'SERVFAIL':
      return ERROR_KEY;
  }
}

/** Errors are accounted per prefix alone. */
export const ERROR_KEY: LimitKey = Object.freeze({ limitClass: ResponseClass.ERROR, limitName: 0 });

/** The class of an answer with this rcode that did not come from a zone resolution (CHAOS, errors). */
export function classOfRcode(rcode: number): ResponseClass {
  if (rcode === 0) return ResponseClass.ANSWER;
  if (rcode === 3) return ResponseClass.NXDOMAIN;
  return ResponseClass.ERROR;
}
