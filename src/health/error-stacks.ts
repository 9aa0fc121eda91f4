/**
 * Errors made in the probing thread carry no stack trace.
 *
 * undici makes an error for every connection it closes (a SocketError when
 * the socket closes, an InformationalError for `connection: close`, a
 * ClientDestroyedError), and Node's streams read each one's stack as they
 * destroy the socket. With a new connection per probe (the default), capturing
 * and formatting those stacks was over a third of a probe's CPU: ~375 against
 * ~237 µs per probe without (measured with the client floor of
 * `npm run bench:checks`, bench/check-floor.ts). A probe's failure is reported
 * by its code and message (describe-error.ts), never by its stack.
 *
 * The price: an error thrown by a bug in this thread comes without a stack.
 * The same code on the answering thread (where the probes run after the
 * probing thread died repeatedly, remote-monitor.ts) keeps full stacks.
 */
export const PROBING_STACK_TRACE_LIMIT = 0;

/** For the probing threads only (monitor-worker.ts, checker-worker.ts): this thread's errors capture no stack. */
export function dropErrorStacks(): void {
  Error.stackTraceLimit = PROBING_STACK_TRACE_LIMIT;
}
