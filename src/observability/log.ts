/**
 * pino JSON logs to stdout (or a given stream, for tests).
 *
 * Logging never blocks query handling: lines go to process.stdout, which on
 * a pipe or socket writes without blocking (libuv queues what the reader has
 * not taken yet), and BoundedStdout caps that queue (1 MiB by default). A
 * line that does not fit while stdout is stalled is dropped and counted
 * (rrdns_log_lines_dropped_total); once stdout drains, one line says how
 * many were lost. At exit, flushLogs() waits for the queue to empty, bounded
 * in time, so a stalled reader cannot keep the process from exiting.
 */
import type { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Bytes that may wait for a slow stdout before lines are dropped. */
export const DEFAULT_LOG_BUFFER_BYTES = 1024 * 1024;

/** Counters of this thread's logging faults, read by /metrics. */
const stats: LogFaults = { dropped: 0, suppressed: {} };

/** Log lines dropped (stdout stalled) and suppressed (rate limiter, by kind) so far in this thread. */
export function logStats(): { dropped: number; suppressed: Readonly<Record<string, number>> } {
  return stats;
}

/** Log faults counted in one thread. */
export interface LogFaults {
  dropped: number;
  suppressed: Record<string, number>;
}

/** Adds what a UDP worker thread counted, so the main thread's /metrics shows every thread. */
export function addLogFaults(f: LogFaults): void {
  stats.dropped += f.dropped;
  for (const [kind, n] of Object.entries(f.suppressed)) countSuppressed(kind, n);
}

/** Counts lines the rate limiter held back (log-limiter.ts). */
export function countSuppressed(kind: string, n: number): void {
  stats.suppressed[kind] = (stats.suppressed[kind] ?? 0) + n;
}

/**
 * A pino destination over a non-blocking Writable (process.stdout) that
 * never queues more than `maxBytes`: lines past that are dropped, counted,
 * and reported in one line when the stream drains.
 */
export class BoundedStdout implements DestinationStream {
  private readonly out: Writable;
  private maxBytes: number;
  /** Dropped since the last report. */
  private droppedSince = 0;
  private broken = false;

  constructor(out: Writable, maxBytes = DEFAULT_LOG_BUFFER_BYTES) {
    this.out = out;
    this.maxBytes = maxBytes;
    // A closed stdout (the reader went away) must not take the DNS service down with it.
    out.on('error', () => {
      this.broken = true;
    });
    out.on('drain', () => this.reportDropped());
  }

  /**
   * While lines are being dropped, looks every 50 ms whether stdout has made
   * room (half the bound free) and then reports. Not only on 'drain': with a
   * bound below the stream's high-water mark no write ever returns false, so
   * 'drain' never comes.
   */
  private watchForRoom(): void {
    if (this.roomTimer) return;
    this.roomTimer = setInterval(() => {
      if (this.broken || this.out.destroyed || this.out.writableLength <= this.maxBytes / 2) this.reportDropped();
    }, 50);
    this.roomTimer.unref();
  }
  private roomTimer: NodeJS.Timeout | undefined;

  setMaxBytes(bytes: number): void {
    this.maxBytes = bytes;
  }

  /** Bytes waiting for the reader. */
  get queuedBytes(): number {
    return this.out.writableLength;
  }

  write(line: string): void {
    if (this.broken || this.out.destroyed) return;
    if (this.out.writableLength + line.length > this.maxBytes) {
      this.droppedSince++;
      stats.dropped++;
      this.watchForRoom();
      return;
    }
    try {
      this.out.write(line);
    } catch {
      this.broken = true;
    }
  }

  private reportDropped(): void {
    clearInterval(this.roomTimer);
    this.roomTimer = undefined;
    if (this.droppedSince === 0 || this.broken) return;
    const n = this.droppedSince;
    this.droppedSince = 0;
    // Written directly (not through pino): the report must not itself be dropped for the limit.
    const line = JSON.stringify({ level: 40, time: new Date().toISOString(), name: 'rrdns', dropped: n, msg: `${n} log lines dropped while stdout was stalled` });
    try {
      this.out.write(line + '\n');
    } catch {
      this.broken = true;
    }
  }

  /** pino's logger.flush(cb): as flushWithin, bounded by 2 s. */
  flush(cb?: (err?: Error) => void): void {
    void this.flushWithin(2000).then(() => cb?.());
  }

  /** Resolves once everything queued is written, or after `timeoutMs` (whatever is left is then lost). */
  flushWithin(timeoutMs: number): Promise<void> {
    this.reportDropped();
    if (this.broken || this.out.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.out.off('drain', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.out.on('drain', done);
    });
  }
}

/** One bounded stdout destination per thread, shared by every logger made here. */
let stdoutDestination: BoundedStdout | undefined;
let stdoutBufferBytes = DEFAULT_LOG_BUFFER_BYTES;

function stdout(): BoundedStdout {
  stdoutDestination ??= new BoundedStdout(process.stdout, stdoutBufferBytes);
  return stdoutDestination;
}

/** Sets the stdout bound (config logBufferBytes); call before the first logger of this thread is made. */
export function setStdoutBufferBytes(bytes: number): void {
  stdoutBufferBytes = bytes;
  stdoutDestination?.setMaxBytes(bytes);
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { name: 'rrdns' }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? stdout());
}

/** Writes out what the stdout logger still holds, waiting at most `timeoutMs` (for exit paths). */
export function flushLogs(timeoutMs = 2000): Promise<void> {
  return stdoutDestination ? stdoutDestination.flushWithin(timeoutMs) : Promise.resolve();
}
