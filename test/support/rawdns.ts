/**
 * Raw DNS over UDP and TCP for hostile-input tests: build exact bytes (valid
 * or not), send them, and wait for replies with a bounded timeout. Nothing here
 * parses replies beyond the fixed header; tests use dns2 for that.
 */
import dgram from 'node:dgram';
import net from 'node:net';

/** Rejects with `what` unless `promise` settles within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `intervalMs` until it returns true; rejects after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs: number, what: string, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Deterministic PRNG (mulberry32): same seed, same packets, so a failure can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// Building messages byte by byte

/** Uncompressed wire form of a dotted name ('' or '.' is the root). */
export function encodeName(name: string): Buffer {
  return encodeLabels(name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.'));
}

/** Uncompressed wire form of raw labels (each label one latin1 octet per char; a label may hold '.'). */
export function encodeLabels(labels: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const label of labels) {
    const b = Buffer.from(label, 'latin1');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export interface HeaderFields {
  id?: number;
  qr?: boolean;
  opcode?: number;
  rd?: boolean;
  /** Low 4 bits of the second flags octet. */
  rcode?: number;
  qdcount?: number;
  ancount?: number;
  nscount?: number;
  arcount?: number;
}

export function encodeHeader(h: HeaderFields = {}): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE((h.id ?? 0x1234) & 0xffff, 0);
  out[2] = (h.qr ? 0x80 : 0) | (((h.opcode ?? 0) & 0xf) << 3) | (h.rd === false ? 0 : 0x01);
  out[3] = (h.rcode ?? 0) & 0xf;
  out.writeUInt16BE(h.qdcount ?? 1, 4);
  out.writeUInt16BE(h.ancount ?? 0, 6);
  out.writeUInt16BE(h.nscount ?? 0, 8);
  out.writeUInt16BE(h.arcount ?? 0, 10);
  return out;
}

/** QTYPE and QCLASS (or TYPE and CLASS) as 4 octets. */
export function typeClass(type: number, cls: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(cls, 2);
  return out;
}

export interface OptFields {
  udpSize?: number;
  extRcode?: number;
  version?: number;
  do?: boolean;
  /** Raw RDATA (options), written as given. */
  rdata?: Buffer;
  /** RDLENGTH to claim; defaults to rdata's length. */
  rdlength?: number;
  /** Owner name in wire form; defaults to the root. */
  owner?: Buffer;
}

/** An OPT pseudo-record (RFC 6891 §6.1.2). */
export function encodeOpt(o: OptFields = {}): Buffer {
  const rdata = o.rdata ?? Buffer.alloc(0);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(41, 0);
  fixed.writeUInt16BE(o.udpSize ?? 1232, 2);
  fixed[4] = o.extRcode ?? 0;
  fixed[5] = o.version ?? 0;
  fixed[6] = o.do ? 0x80 : 0;
  fixed[7] = 0;
  fixed.writeUInt16BE(o.rdlength ?? rdata.length, 8);
  return Buffer.concat([o.owner ?? Buffer.from([0]), fixed, rdata]);
}

/** One EDNS option {code, length, data}. */
export function ednsOption(code: number, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(code, 0);
  head.writeUInt16BE(data.length, 2);
  return Buffer.concat([head, data]);
}

export interface QueryFields extends HeaderFields {
  qtype?: number;
  qclass?: number;
  /** Adds an OPT record (and counts it in ARCOUNT unless arcount is given). */
  opt?: OptFields;
}

/** A query for `name` built exactly as asked; counts default to what is actually written. */
export function rawQuery(name: string, q: QueryFields = {}): Buffer {
  const opt = q.opt ? encodeOpt(q.opt) : Buffer.alloc(0);
  const header = encodeHeader({ ...q, arcount: q.arcount ?? (q.opt ? 1 : 0) });
  return Buffer.concat([header, encodeName(name), typeClass(q.qtype ?? 1, q.qclass ?? 1), opt]);
}

/** The fixed header of a message. */
export function parseHeader(raw: Buffer) {
  return {
    id: raw.readUInt16BE(0),
    qr: (raw[2]! & 0x80) !== 0,
    opcode: (raw[2]! >> 3) & 0xf,
    aa: (raw[2]! & 0x04) !== 0,
    tc: (raw[2]! & 0x02) !== 0,
    rd: (raw[2]! & 0x01) !== 0,
    ra: (raw[3]! & 0x80) !== 0,
    rcode: raw[3]! & 0x0f,
    qdcount: raw.readUInt16BE(4),
    ancount: raw.readUInt16BE(6),
    nscount: raw.readUInt16BE(8),
    arcount: raw.readUInt16BE(10),
  };
}

/** RFC 1035 §4.2.2: a 2-octet length, then the message. */
export function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

// ---------------------------------------------------------------------------
// UDP

/** One UDP socket that keeps every datagram it receives, in order. */
export class UdpPeer {
  readonly socket: dgram.Socket;
  readonly received: Buffer[] = [];
  private waiters: Array<() => void> = [];

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    socket.on('message', (msg) => {
      this.received.push(msg);
      for (const w of this.waiters.splice(0)) w();
    });
    // A send error (nothing listening) must not become an unhandled 'error' event.
    socket.on('error', () => {});
  }

  static open(host = '127.0.0.1'): Promise<UdpPeer> {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => {
        socket.off('error', reject);
        try {
          // Fuzz batches arrive in bursts; keep the kernel from dropping replies.
          socket.setRecvBufferSize(4 * 1024 * 1024);
        } catch {
          // Capped by the kernel: fine.
        }
        resolve(new UdpPeer(socket));
      });
    });
  }

  send(msg: Buffer, port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(msg, port, host, (err) => (err ? reject(err) : resolve())));
  }

  /** Removes and returns everything received so far. */
  take(): Buffer[] {
    return this.received.splice(0);
  }

  /**
   * Waits until a received datagram satisfies `match`; returns every datagram
   * received up to and including it (and removes them from the queue).
   */
  async until(match: (msg: Buffer) => boolean, timeoutMs: number, what: string): Promise<Buffer[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const idx = this.received.findIndex((m) => m.length >= 12 && match(m));
      if (idx >= 0) return this.received.splice(0, idx + 1);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await withTimeout(new Promise<void>((resolve) => this.waiters.push(resolve)), left, what).catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------
// TCP

/** A TCP client that splits the stream into DNS messages and records how it ended. */
export class TcpPeer {
  readonly socket: net.Socket;
  readonly messages: Buffer[] = [];
  /** Set once 'close' fires. */
  closed = false;
  /** True when the server ended or reset the connection (rather than us). */
  endedByPeer = false;
  error: Error | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private readonly closedPromise: Promise<void>;
  private destroyedByUs = false;

  private constructor(socket: net.Socket, read: boolean) {
    this.socket = socket;
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        if (!this.destroyedByUs) this.endedByPeer = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('end', () => {
      if (!this.destroyedByUs) this.endedByPeer = true;
    });
    if (read) this.startReading();
  }

  /** Connects; with `read: false` nothing is read until startReading() (the socket stays paused). */
  static connect(port: number, opts: { host?: string; localAddress?: string; read?: boolean; timeoutMs?: number } = {}): Promise<TcpPeer> {
    const host = opts.host ?? '127.0.0.1';
    const socket = net.connect({ port, host, noDelay: true, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    const peer = new TcpPeer(socket, opts.read ?? true);
    return withTimeout(
      new Promise<TcpPeer>((resolve, reject) => {
        socket.once('connect', () => resolve(peer));
        socket.once('close', () => reject(peer.error ?? new Error('closed before connecting')));
      }),
      opts.timeoutMs ?? 5000,
      `TCP connect to ${host}:${port}`,
    );
  }

  startReading(): void {
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      while (this.buffer.length >= 2) {
        const size = this.buffer.readUInt16BE(0);
        if (this.buffer.length < 2 + size) break;
        this.messages.push(Buffer.from(this.buffer.subarray(2, 2 + size)));
        this.buffer = this.buffer.subarray(2 + size);
      }
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  /** Sends one message with its length prefix. */
  send(msg: Buffer): boolean {
    return this.socket.write(frame(msg));
  }

  /** Waits until at least `count` messages have arrived; rejects on timeout or if the connection closes first. */
  async waitForMessages(count: number, timeoutMs: number): Promise<Buffer[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (this.closed) throw new Error(`connection closed after ${this.messages.length} of ${count} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms with ${this.messages.length} of ${count} messages`);
      await withTimeout(new Promise<void>((resolve) => this.waiters.push(resolve)), left, 'messages').catch(() => undefined);
    }
    return this.messages;
  }

  /** Sends `msg` and waits for the next message. */
  async exchange(msg: Buffer, timeoutMs = 3000): Promise<Buffer> {
    const before = this.messages.length;
    this.send(msg);
    await this.waitForMessages(before + 1, timeoutMs);
    return this.messages[before]!;
  }

  /** Resolves once the connection has closed; rejects after `timeoutMs`. */
  waitClosed(timeoutMs: number): Promise<void> {
    return withTimeout(this.closedPromise, timeoutMs, 'TCP connection to close');
  }

  destroy(): void {
    if (!this.closed) this.destroyedByUs = true;
    this.socket.destroy();
  }
}
