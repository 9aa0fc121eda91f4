/**
 * One running fping (loop mode) and its two streams, read as they come: every
 * reply, timeout and ICMP error is an event the moment its line arrives.
 * Memory is bounded whatever fping writes (LineSplitter; the last few stderr
 * lines are kept for the exit message). stop() ends it by its PID (SIGTERM,
 * SIGKILL after a grace) and resolves once it has exited; it is idempotent.
 *
 * If rrdns itself dies without stopping it, fping does not outlive it for
 * long: it writes a line per echo, and the first write to the closed pipe
 * ends it (SIGPIPE).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { LineSplitter, parseFpingError, parseFpingLine, type FpingError, type FpingLine } from './fping-output.ts';

/** No fping line is longer than this (a line per echo, ~80 characters); longer ones are garbage. */
export const MAX_LINE_BYTES = 512;
const STDERR_TAIL_LINES = 5;
const KILL_GRACE_MS = 1000;

export interface FpingProcessEvents {
  /** A stdout line for a target, with the monotonic time (ms) it was read. */
  onLine(line: FpingLine, readAt: number): void;
  onIcmpError(error: FpingError, readAt: number): void;
  /** fping exited (or could not be started) without stop() asking it to; `why` says how. */
  onExit(why: string): void;
  /** A line that is neither (counted; the first few are worth a log line). */
  onGarbage?(line: string, stream: 'stdout' | 'stderr'): void;
}

export interface FpingProcessOptions {
  file: string;
  args: readonly string[];
  events: FpingProcessEvents;
  now?: () => number;
}

export class FpingProcess {
  readonly #child: ChildProcess;
  readonly #events: FpingProcessEvents;
  readonly #now: () => number;
  readonly #stderrTail: string[] = [];
  readonly #exited: Promise<void>;
  #stopping: Promise<void> | undefined;
  #gone = false;
  /** Lines dropped as too long, on either stream. */
  droppedLines = 0;

  constructor(opts: FpingProcessOptions) {
    this.#events = opts.events;
    this.#now = opts.now ?? (() => performance.now());
    const child = spawn(opts.file, [...opts.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let markExited!: () => void;
    this.#exited = new Promise((r) => (markExited = r));

    const out = new LineSplitter(MAX_LINE_BYTES, (line) => {
      const parsed = parseFpingLine(line);
      if (parsed) this.#events.onLine(parsed, this.#now());
      else if (line !== '') this.#events.onGarbage?.(line, 'stdout');
    });
    const err = new LineSplitter(MAX_LINE_BYTES, (line) => {
      const parsed = parseFpingError(line);
      if (parsed) return this.#events.onIcmpError(parsed, this.#now());
      if (line === '') return;
      this.#stderrTail.push(line);
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
      this.#events.onGarbage?.(line, 'stderr');
    });
    child.stdout!.on('data', (b: Buffer) => {
      out.push(b);
      this.droppedLines = out.dropped + err.dropped;
    });
    child.stderr!.on('data', (b: Buffer) => {
      err.push(b);
      this.droppedLines = out.dropped + err.dropped;
    });
    // Like the monitor's timers, fping never keeps a process alive (close() stops it; an exit ends it by SIGPIPE).
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    // A spawn failure (ENOENT, EACCES) comes as 'error' and then 'close'; an exit as 'exit' then 'close'.
    let spawnError: Error | undefined;
    child.on('error', (e) => (spawnError = e));
    child.once('close', (code, signal) => {
      this.#gone = true;
      markExited();
      if (this.#stopping) return;
      const how = spawnError
        ? `could not be started: ${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message}`
        : signal
          ? `was killed by ${signal}`
          : `exited with code ${code}`;
      const tail = this.#stderrTail.length > 0 ? ` (${this.#stderrTail.join(' | ')})` : '';
      this.#events.onExit(`fping ${how}${tail}`);
    });
  }

  /** The child's PID (undefined when it could not be started). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return !this.#gone;
  }

  /** Ends fping by its PID and resolves once it has exited. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#gone) return;
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!this.#gone) this.#child.kill('SIGKILL');
      }, KILL_GRACE_MS);
      await this.#exited;
      clearTimeout(timer);
    })();
    return this.#stopping;
  }
}
