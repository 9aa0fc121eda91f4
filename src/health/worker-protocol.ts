/** The messages between worker-checker.ts (the answering thread) and checker-worker.ts (the probing thread). */
import type { CheckOutcome } from './checkers.ts';
import type { IcmpLogLevel } from './icmp/icmp-checker.ts';
import type { CheckTarget } from './target.ts';

export type ToChecker =
  | {
      kind: 'batch';
      /** Targets the worker has not been sent yet (by key). */
      targets: CheckTarget[];
      /** Keys the worker can drop. */
      forget: string[];
      /** Probes to start, flat: id, key, id, key… */
      probes: (number | string)[];
      /** Ids of probes to abort. */
      cancels: number[];
    }
  | { kind: 'close' };

/** `ready`: the thread has loaded its modules and listens (sent once, first). */
export type FromChecker =
  | { kind: 'ready' }
  | { kind: 'results'; ids: number[]; outcomes: CheckOutcome[] }
  | { kind: 'closed' }
  /** Something the checker logs (fping dying, say): the logger lives on the main thread. */
  | { kind: 'log'; level: IcmpLogLevel; msg: string; fields: Record<string, unknown> };
