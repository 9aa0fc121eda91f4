/**
 * Reassembly of one TCP connection's byte stream into DNS messages (RFC 1035
 * §4.2.2: each message behind a 2-octet length), in time linear in the bytes
 * received whatever the segmentation.
 *
 * The bytes not yet taken are `buffer[start..end)`. A segment is appended in
 * the spare room behind `end`; taking a message only moves `start`. When a
 * segment does not fit, the live bytes move to a fresh buffer of twice what
 * they and the segment need. Since a fresh buffer is at most half full, the
 * next move comes only after at least half its size has been received, and a
 * move copies at most its size: every octet received is copied a bounded
 * number of times (`stats.copiedBytes <= 3 * stats.receivedBytes`; the unit test drives
 * adversarial segmentations against that bound). Concatenating on every
 * segment instead would copy up to 64 KiB per octet of a message dribbled in
 * one octet per segment.
 *
 * Bytes once written are never overwritten: a message handed out (a view into
 * the buffer) stays valid for as long as its holder keeps it. When everything
 * received has been taken the buffer is let go, so an idle connection holds
 * no reassembly memory, and a segment holding whole messages is used in place
 * without any copy (the common case).
 */

/** Least size of a buffer allocated for reassembly (a typical query and then some). */
const MIN_BUFFER = 512;

/** Octets received and copied, summed over every connection that shares it (a listener's). */
export interface ReassemblyStats {
  receivedBytes: number;
  copiedBytes: number;
}

export class TcpReassembly {
  private buffer: Buffer | null = null;
  private start = 0;
  private end = 0;
  /** True while `buffer` is a segment used in place (not ours to append into). */
  private borrowed = false;
  /** receivedBytes: octets given to append(); copiedBytes: octets copied while reassembling them. */
  readonly stats: ReassemblyStats;

  constructor(stats: ReassemblyStats = { receivedBytes: 0, copiedBytes: 0 }) {
    this.stats = stats;
  }

  /** Octets received and not yet taken. */
  get length(): number {
    return this.end - this.start;
  }

  append(chunk: Buffer): void {
    const n = chunk.length;
    this.stats.receivedBytes += n;
    if (n === 0) return;
    const buffer = this.buffer;
    if (buffer === null) {
      // Nothing pending: the segment is used as it is.
      this.buffer = chunk;
      this.start = 0;
      this.end = n;
      this.borrowed = true;
      return;
    }
    if (!this.borrowed && this.end + n <= buffer.length) {
      chunk.copy(buffer, this.end);
      this.end += n;
      this.stats.copiedBytes += n;
      return;
    }
    const live = this.end - this.start;
    const next = Buffer.allocUnsafe(Math.max(2 * (live + n), MIN_BUFFER));
    buffer.copy(next, 0, this.start, this.end);
    chunk.copy(next, live);
    this.stats.copiedBytes += live + n;
    this.buffer = next;
    this.start = 0;
    this.end = live + n;
    this.borrowed = false;
  }

  /** The length field of the next message, or -1 while fewer than 2 octets are pending. */
  nextSize(): number {
    if (this.end - this.start < 2) return -1;
    return this.buffer!.readUInt16BE(this.start);
  }

  /** True when a whole message (length field and body) is pending. */
  hasMessage(): boolean {
    const size = this.nextSize();
    return size >= 0 && this.end - this.start >= 2 + size;
  }

  /**
   * Takes the next message (without its length field), or undefined when it is
   * not all here yet. The view stays valid: these octets are never overwritten.
   */
  take(): Buffer | undefined {
    if (!this.hasMessage()) return undefined;
    const size = this.buffer!.readUInt16BE(this.start);
    const from = this.start + 2;
    const msg = this.buffer!.subarray(from, from + size);
    this.start = from + size;
    if (this.start === this.end) this.clear();
    return msg;
  }

  /** Drops everything pending (the connection is gone). */
  clear(): void {
    this.buffer = null;
    this.start = 0;
    this.end = 0;
    this.borrowed = false;
  }
}
