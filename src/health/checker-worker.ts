/**
 * The health-check worker thread (see worker-checker.ts): runs the probes of
 * the real checker (checkers.ts) off the answering thread. It receives, in
 * batches, the targets it has not seen yet, the probes to start (id, target
 * key) and the ids of probes to abort; it posts the outcomes back in batches,
 * at most one message per BATCH_MS however many probes finished meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createChecker, type CheckOutcome } from './checkers.ts';
import { dropErrorStacks } from './error-stacks.ts';
import { lowerThisThread } from './thread-priority.ts';
import type { CheckTarget } from './target.ts';
import type { FromChecker, ToChecker } from './worker-protocol.ts';

const port = parentPort!;

export { CHECKER_NICE } from './thread-priority.ts';
lowerThisThread();
dropErrorStacks();
/**
 * Outcomes wait this long to travel together: each message wakes the main
 * thread, and per-turn batches (a few outcomes each at 5,000 probes/s) made the
 * messages themselves a large part of the cost. A verdict is at most this late.
 */
const BATCH_MS = 10;
const sourceAddress = (workerData as { sourceAddress?: string } | null)?.sourceAddress;
// fping (icmp checks) is spawned from this thread too: its stream is parsed here, off the answering thread.
const checker = createChecker({
  ...(sourceAddress ? { sourceAddress } : {}),
  icmp: { log: (level, msg, fields) => port.postMessage({ kind: 'log', level, msg, fields } satisfies FromChecker) },
});
const targets = new Map<string, CheckTarget>();
const running = new Map<number, AbortController>();
let ids: number[] = [];
let outcomes: CheckOutcome[] = [];
let flushQueued = false;
let closing = false;

function flush(): void {
  flushQueued = false;
  if (ids.length === 0) return;
  const msg: FromChecker = { kind: 'results', ids, outcomes };
  ids = [];
  outcomes = [];
  port.postMessage(msg);
}

function start(id: number, key: string): void {
  const target = targets.get(key);
  const controller = new AbortController();
  running.set(id, controller);
  const done = (outcome: CheckOutcome) => {
    running.delete(id);
    ids.push(id);
    outcomes.push(outcome);
    if (!flushQueued) {
      flushQueued = true;
      setTimeout(flush, BATCH_MS);
    }
  };
  if (!target) return done({ ok: false, detail: `checker error: unknown target ${key}`, latencyMs: 0 });
  void checker.check(target, controller.signal).then(done);
}

port.on('message', (m: ToChecker) => {
  if (m.kind === 'batch') {
    for (const t of m.targets) {
      // A Buffer arrives as a plain Uint8Array; TLS wants the Buffer back.
      if (t.ca) t.ca = Buffer.from(t.ca.buffer, t.ca.byteOffset, t.ca.byteLength);
      targets.set(t.key, t);
    }
    for (const key of m.forget) targets.delete(key);
    if (!closing) for (let i = 0; i < m.probes.length; i += 2) start(m.probes[i] as number, m.probes[i + 1] as string);
    for (const id of m.cancels) running.get(id)?.abort();
  } else if (m.kind === 'close') {
    closing = true;
    void checker.close().then(() => {
      flush();
      port.postMessage({ kind: 'closed' } satisfies FromChecker);
      port.close();
    });
  }
});

port.postMessage({ kind: 'ready' } satisfies FromChecker);
