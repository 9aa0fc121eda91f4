/**
 * A probe's error in a few stable words, for health state details and logs.
 * Apart from checkers.ts so that the main thread, which only reads outcomes,
 * does not load undici (~13 MB of RSS) to describe one.
 */
const SYSCALL_CODE = /^E[A-Z0-9]+$/;

/** A short, stable description: 'ECONNREFUSED', 'ECONNRESET', 'TLS DEPTH_ZERO_SELF_SIGNED_CERT: …'. */
export function describeError(e: unknown): string {
  const seen = new Set<unknown>();
  // Walk cause chains and AggregateErrors (bounded) for the most specific code.
  const queue: unknown[] = [e];
  let firstTls: { code: string; message: string } | undefined;
  let firstOther: { code?: string; message: string } | undefined;
  for (let i = 0; i < queue.length && i < 16; i++) {
    const err = queue[i];
    if (!err || typeof err !== 'object' || seen.has(err)) continue;
    seen.add(err);
    const { code, message, cause, errors } = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    const msg = typeof message === 'string' ? message : String(err);
    if (typeof code === 'string') {
      if (SYSCALL_CODE.test(code)) return code;
      if (/CERT|TLS|SSL|SIGNATURE|ISSUER/.test(code) && !firstTls) firstTls = { code, message: msg };
    }
    if (!firstOther) firstOther = typeof code === 'string' ? { code, message: msg } : { message: msg };
    if (cause) queue.push(cause);
    if (Array.isArray(errors)) queue.push(...errors);
  }
  if (firstTls) return `TLS ${firstTls.code}: ${firstTls.message}`;
  if (firstOther?.code === 'UND_ERR_SOCKET') return `connection closed: ${firstOther.message}`;
  if (firstOther?.code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timeout';
  if (firstOther) return firstOther.code ? `${firstOther.code}: ${firstOther.message}` : firstOther.message;
  return String(e);
}
