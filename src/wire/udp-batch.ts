/**
 * The batched UDP path: a native addon (native/udp_batch.c, built by
 * `npm ci` through node-gyp) reads up to BATCH datagrams per recvmmsg(2)
 * into a receive buffer and sends their answers with one sendmmsg(2); this
 * side answers a whole batch in one call from JavaScript. Node's dgram
 * spends a receive callback, a Buffer, an rinfo object and a send request
 * on every datagram, and under load that, not answering, is most of the
 * server's CPU.
 *
 * Memory is handed over once: three ArrayBuffers allocated here (received
 * datagrams, one slot each; answers, one slot each; a meta array of Uint32
 * cells per datagram: length, family, port, address words, answer length),
 * with a Buffer view per slot made up front, so a batch allocates nothing.
 * The native side checks before every batch that none was detached.
 *
 * Faults are counted natively (by errno) and read here once a second and at
 * close, into the same TransportHooks the dgram path reports to: a send
 * refused for one address drops that answer only; a full socket send
 * buffer (EAGAIN) stops reading until the queued answers are sent.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QueryView } from './query.ts';
import { Peer } from '../zone/address.ts';
import { guarded, type ErrorSink } from './transport.ts';
import { BAD_PORT, SOCKET_BUFFER_BYTES, UDP_ANSWER_ROOM, type DatagramHandler, type UdpListener, type UdpOptions } from './datagram.ts';

/** The addon's exports (native/udp_batch.c). */
export interface BatchBinding {
  open(host: string, port: number, reusePort: boolean, recvBufferBytes: number, sendBufferBytes: number, recv: ArrayBuffer, send: ArrayBuffer, meta: ArrayBuffer, batch: number, recvSlot: number, sendSlot: number, onBatch: (n: number) => void): object;
  port(handle: object): number;
  close(handle: object): void;
  stats(handle: object, out: Float64Array): void;
  /** Fault injection for the tests: the next `count` sendmmsg calls fail with `errno`. */
  injectSendErrors(handle: object, errno: number, count: number): void;
  readonly metaStride: number;
  readonly maxBatch: number;
  readonly statCount: number;
  readonly errnoSlots: number;
}

/** Datagrams per system call. recvmmsg returns what is queued, up to this; a larger batch saves little more. */
export const BATCH = 64;
/** A receive slot holds any UDP payload (65,507 octets over IPv4), so no query is cut short: both paths see the same bytes. */
const RECV_SLOT = 65_536;
/** Answer slots: UDP answers are at most UDP_ANSWER_ROOM; rounded up to whole cache lines. */
const SEND_SLOT = (UDP_ANSWER_ROOM + 63) & ~63;

/** Meta cells per datagram (native/udp_batch.c META_STRIDE). */
const M_LENGTH = 0;
const M_FAMILY = 1;
const M_PORT = 2;
const M_W0 = 3;
const M_OUT = 7;

/** Stats cells (native/udp_batch.c ST_*). */
const ST_RECEIVED = 0;
const ST_SENT = 1;
const ST_BATCHES = 2;
const ST_SEND_WAITS = 3;
const ST_DROPPED = 4;
const ST_CALLBACK_ERRORS = 5;
const ST_RECV_ERRORS = 6;

/** How often native fault counts are read into the hooks. */
const STATS_EVERY_MS = 1000;

const ADDON = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'Release', 'udp_batch.node');

let loaded: BatchBinding | { error: string } | undefined;

/**
 * The addon, loaded once per thread, or why it cannot be used.
 * RRDNS_UDP_ADDON names another file (tests point it at one that is not
 * there, to see the fallback).
 */
export function batchBinding(): BatchBinding | { error: string } {
  loaded ??= loadBinding(process.env.RRDNS_UDP_ADDON || ADDON);
  return loaded;
}

function loadBinding(file: string): BatchBinding | { error: string } {
  if (process.platform !== 'linux') return { error: `${process.platform}: recvmmsg/sendmmsg are Linux's` };
  try {
    const binding = createRequire(import.meta.url)(file) as BatchBinding;
    if (typeof binding.open !== 'function' || binding.metaStride !== 8 || binding.maxBatch < BATCH) return { error: `${file} is not this version's addon` };
    return binding;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return { error: `${path.relative(process.cwd(), file) || file} did not load (${code}); \`npm run build:native\` builds it` };
  }
}

/** errno numbers to their names (EPERM, ...), for counting under the same codes as dgram's errors. */
const ERRNO_NAMES = (() => {
  const names: string[] = [];
  for (const [name, n] of Object.entries(os.constants.errno)) names[n] ??= name;
  return names;
})();

export class BatchUdpListener implements UdpListener {
  readonly path = 'native' as const;
  readonly port: number;
  private readonly binding: BatchBinding;
  private handle: object | undefined;
  private readonly meta: Uint32Array;
  private readonly msgs: Buffer[] = [];
  private readonly answers: Buffer;
  private readonly handler: DatagramHandler;
  private readonly g: ReturnType<typeof guarded>;
  private readonly view = new QueryView();
  private readonly peer = new Peer();
  private readonly stats: Float64Array;
  /** Stats as last read, to report only what is new. */
  private readonly seen: Float64Array;
  private readonly timer: NodeJS.Timeout;
  private closed: Promise<void> | undefined;

  constructor(binding: BatchBinding, host: string, port: number, handler: DatagramHandler, onError: ErrorSink, opts: UdpOptions) {
    this.binding = binding;
    this.handler = handler;
    this.g = guarded(onError, opts.hooks ?? {});
    const recv = new ArrayBuffer(BATCH * RECV_SLOT);
    const send = new ArrayBuffer(BATCH * SEND_SLOT);
    const meta = new ArrayBuffer(BATCH * binding.metaStride * 4);
    this.meta = new Uint32Array(meta);
    for (let i = 0; i < BATCH; i++) this.msgs.push(Buffer.from(recv, i * RECV_SLOT, RECV_SLOT));
    this.answers = Buffer.from(send);
    this.stats = new Float64Array(binding.statCount + 2 * binding.errnoSlots);
    this.seen = new Float64Array(this.stats.length);
    // Throws with the errno's code (EADDRINUSE, EACCES, ...), as dgram's bind does.
    this.handle = binding.open(host, port, opts.reusePort ?? false, SOCKET_BUFFER_BYTES, SOCKET_BUFFER_BYTES, recv, send, meta, BATCH, RECV_SLOT, SEND_SLOT, this.onBatch);
    this.port = binding.port(this.handle);
    this.timer = setInterval(() => this.readStats(), STATS_EVERY_MS);
    this.timer.unref();
  }

  /** Datagrams received and answers sent so far (for tests and the benchmark). */
  counts(): { received: number; sent: number; batches: number; sendWaits: number; dropped: number } {
    this.readStats();
    const s = this.seen;
    return { received: s[ST_RECEIVED]!, sent: s[ST_SENT]!, batches: s[ST_BATCHES]!, sendWaits: s[ST_SEND_WAITS]!, dropped: s[ST_DROPPED]! };
  }

  /**
   * For the tests of the error paths loopback cannot provoke on demand: the
   * next `count` sendmmsg calls fail with `code` (EAGAIN, ENOBUFS, EPERM, ...).
   */
  injectSendErrors(code: keyof typeof os.constants.errno, count: number): void {
    if (this.handle !== undefined) this.binding.injectSendErrors(this.handle, os.constants.errno[code], count);
  }

  /** Answers `n` datagrams of the batch (n < 0: the native side stopped, its buffers were detached). Never throws. */
  private readonly onBatch = (n: number): void => {
    if (n < 0) {
      this.g.report(Object.assign(new Error('batched UDP socket stopped: its buffers were detached'), { code: 'ERR_BUFFER_DETACHED' }), 'udp socket');
      return;
    }
    const meta = this.meta;
    const stride = this.binding.metaStride;
    for (let i = 0; i < n; i++) {
      const m = i * stride;
      meta[m + M_OUT] = 0;
      const port = meta[m + M_PORT]!;
      const family = meta[m + M_FAMILY]!;
      // Not worth handling: a reply to port 0 cannot be sent (the dgram path counts it the same way).
      if (port === 0 || (family !== 4 && family !== 6)) {
        this.g.sendError('udp', BAD_PORT);
        this.g.report(BAD_PORT, 'udp send');
        continue;
      }
      try {
        this.peer.setWords(family, meta[m + M_W0]!, meta[m + M_W0 + 1]!, meta[m + M_W0 + 2]!, meta[m + M_W0 + 3]!, port);
        const length = this.handler(this.msgs[i]!, meta[m + M_LENGTH]!, this.view, this.peer, this.answers, i * SEND_SLOT);
        if (length > 0) meta[m + M_OUT] = length;
      } catch (err) {
        this.g.handlerError('udp');
        this.g.report(err, 'udp handler');
      }
    }
  };

  /** Reports what the native side counted since the last read: failed sends and receives by errno. */
  private readStats(): void {
    if (this.handle === undefined) return;
    const s = this.stats;
    const seen = this.seen;
    this.binding.stats(this.handle, s);
    const base = this.binding.statCount;
    const slots = this.binding.errnoSlots;
    for (let e = 0; e < slots; e++) {
      const sendNew = s[base + e]! - seen[base + e]!;
      if (sendNew > 0) {
        const code = ERRNO_NAMES[e] ?? 'unknown';
        this.g.sendError('udp', Object.assign(new Error(code), { code }), sendNew);
        this.g.report(Object.assign(new Error(`UDP send failed (${code}) ${sendNew} time(s)`), { code }), 'udp send');
      }
      const recvNew = s[base + slots + e]! - seen[base + slots + e]!;
      if (recvNew > 0) {
        const code = ERRNO_NAMES[e] ?? 'unknown';
        this.g.report(Object.assign(new Error(`UDP receive failed (${code}) ${recvNew} time(s)`), { code }), 'udp socket');
      }
    }
    const thrown = s[ST_CALLBACK_ERRORS]! - seen[ST_CALLBACK_ERRORS]!;
    if (thrown > 0) this.g.handlerError('udp', thrown);
    void ST_RECV_ERRORS;
    seen.set(s);
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      clearInterval(this.timer);
      this.readStats();
      const handle = this.handle;
      this.handle = undefined;
      if (handle !== undefined) this.binding.close(handle);
      // The descriptor is closed in libuv's close phase of this loop turn; a timer fires after it.
      setTimeout(resolve, 0);
    });
    return this.closed;
  }
}
