/**
 * Reading fping's output (5.x, loop mode `-l`): stdout carries one line per
 * echo, a reply or a timeout; stderr carries ICMP errors and fping's own
 * complaints. Pure: bytes in, events out. Anything that is not one of those
 * lines is garbage and ignored (counted), and no line, however long, is
 * buffered past `maxLineBytes`.
 *
 *   127.0.0.1            : [3], 64 bytes, 0.044 ms (0.077 avg, 0% loss)
 *   10.213.8.5           : [0], timed out (NaN avg, 100% loss)
 *   ICMP Host Unreachable from 10.213.7.2 for ICMP Echo sent to 10.213.8.200
 */

export type FpingLine =
  | { kind: 'reply'; address: string; seq: number; rttMs: number }
  | { kind: 'timeout'; address: string; seq: number };

export interface FpingError {
  /** The target the echo was sent to. */
  address: string;
  /** `ICMP Host Unreachable from 10.213.7.2` */
  message: string;
}

// An optional -D timestamp, the target as given on the command line (padded), its sequence number, then
// either the reply's size and round trip or "timed out". Duplicates ("duplicate for [n]") do not match.
const ECHO_LINE = /^(?:\[\d+(?:\.\d+)?\] )?([0-9A-Fa-f.:]{2,45}) *: \[(\d{1,9})\], (?:\d{1,5} bytes, (\d{1,9}(?:\.\d{1,6})?) ms|(timed out))(?: \(|$)/;
const ICMP_ERROR = /^(ICMP [A-Za-z0-9 ]{1,80}) from ([0-9A-Fa-f.:]{2,45}) for ICMP Echo sent to ([0-9A-Fa-f.:]{2,45})$/;

/** One stdout line: a reply or a timeout for a target, or undefined (garbage, a summary, a duplicate). */
export function parseFpingLine(line: string): FpingLine | undefined {
  const m = ECHO_LINE.exec(line);
  if (!m) return undefined;
  const address = m[1]!;
  const seq = Number(m[2]);
  if (m[4] !== undefined) return { kind: 'timeout', address, seq };
  const rttMs = Number(m[3]);
  return Number.isFinite(rttMs) ? { kind: 'reply', address, seq, rttMs } : undefined;
}

/** One stderr line naming the target an ICMP error was about; undefined for anything else. */
export function parseFpingError(line: string): FpingError | undefined {
  const m = ICMP_ERROR.exec(line);
  return m ? { address: m[3]!, message: `${m[1]} from ${m[2]}` } : undefined;
}

/**
 * Splits a byte stream into lines (LF, a trailing CR dropped) with bounded
 * memory: a line longer than `maxLineBytes` is dropped whole (counted in
 * `dropped`), and at most that many bytes of an unfinished line are held.
 */
export class LineSplitter {
  readonly #max: number;
  readonly #onLine: (line: string) => void;
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** Skipping the rest of an over-long line until its newline. */
  #skipping = false;
  /** Lines dropped for being too long. */
  dropped = 0;

  constructor(maxLineBytes: number, onLine: (line: string) => void) {
    this.#max = maxLineBytes;
    this.#onLine = onLine;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.#skipping) {
        if (this.#heldBytes + (end - start) > this.#max) {
          this.#skipping = true;
          this.#held = [];
          this.#heldBytes = 0;
          this.dropped++;
        } else if (end > start) {
          this.#held.push(chunk.subarray(start, end));
          this.#heldBytes += end - start;
        }
      }
      if (nl === -1) break;
      if (this.#skipping) this.#skipping = false;
      else this.#emit();
      start = nl + 1;
    }
  }

  #emit(): void {
    const buf = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held, this.#heldBytes);
    this.#held = [];
    this.#heldBytes = 0;
    let line = buf.toString('latin1');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.#onLine(line);
  }
}
