/**
 * The TCP transport (RFC 1035 §4.2.2, RFC 7766) and what it shares with the
 * UDP ones (udp.ts, udp-batch.ts): hooks, error sink, the guard around them.
 * Transports own sockets, framing
 * and resource limits, and hand each message to a synchronous handler. Nothing
 * a peer sends can throw out of here, stall other clients or grow memory
 * without bound: TCP connections are capped (in all, per client address and
 * per IPv6 /64: see tcp-client-limits.ts), idle or dribbling ones are closed,
 * reassembly copies linearly (tcp-reassembly.ts), and a client that does not
 * read its answers stops being read from.
 *
 * A fault costs one message, never a listener: every send is guarded (a
 * spoofed source port 0 makes dgram's send throw synchronously; the kernel
 * refuses others later, in the callback), every event listener catches what
 * it calls, and a TCP message whose handler throws is answered SERVFAIL so the
 * client need not wait for the idle timeout. Faults are counted through
 * TransportHooks and reported to the ErrorSink; neither is called in a way
 * that can throw back in here.
 */
import net from 'node:net';
import { QueryView } from './query.ts';
import { monotonicMs } from '../zone/clock.ts';
import { servfailFor } from './response.ts';
import { TcpReassembly, type ReassemblyStats } from './tcp-reassembly.ts';
import { ClientConnectionCounts, type TcpRefusal } from './tcp-client-limits.ts';

/**
 * A response of several messages (a zone transfer), pulled one message at a
 * time so the transport writes only as fast as the client reads. `next()`
 * returns undefined when done and may throw, which ends the connection (a
 * transfer cut short must not look complete); `cancel()` is called when the
 * connection goes away first.
 */
export interface ResponseStream {
  next(): Buffer | undefined;
  cancel(): void;
}

/** `remote` is the peer's address (transfer ACLs); a stream is only ever returned for TCP. */
export type MessageHandler = (msg: Uint8Array, length: number, transport: 'udp' | 'tcp', view: QueryView, remote: string) => Buffer | ResponseStream | null;

export interface TcpLimits {
  /** Concurrent TCP connections accepted; further ones are closed at once. */
  maxConnections: number;
  /** Close a connection with no traffic for this long (RFC 7766 §6.2.3). */
  idleTimeoutMs: number;
  /** Answers queued but not yet taken by the client before we stop reading from it. */
  maxPendingAnswers: number;
  /** Bytes queued towards the client before we stop reading from it. */
  maxQueuedBytes: number;
  /** Concurrent connections from one client address (IPv4-mapped IPv6 counts as IPv4); further ones are closed at once. */
  maxPerClient: number;
  /** Concurrent connections from one IPv6 /64. */
  maxPerPrefix: number;
}

/** On shutdown, how long a drained connection must stay quiet before we end it (see finishIfDone). */
const SHUTDOWN_QUIET_MS = 25;

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  maxConnections: 512,
  idleTimeoutMs: 10_000,
  maxPendingAnswers: 64,
  maxQueuedBytes: 256 * 1024,
  maxPerClient: 16,
  maxPerPrefix: 64,
};

export interface ErrorSink {
  (err: unknown, where: string): void;
}

export type TransportName = 'udp' | 'tcp';

/**
 * Counters the transports bump on faults (Metrics.faults has these methods).
 * Called once per failed send or throwing handler, so they must be cheap.
 */
export interface TransportHooks {
  /** An answer could not be sent and was dropped; `code` is the error's code (e.g. EPERM), or `unknown`. */
  sendError?(transport: TransportName, code: string, n?: number): void;
  /** Handling one message threw (UDP: dropped; TCP: answered SERVFAIL). */
  handlerError?(transport: TransportName, n?: number): void;
  /** A TCP connection was closed at once: over the per-address, per-/64 or global cap. */
  tcpRefused?(reason: TcpRefusal): void;
}

/** The error code of a failed send, for counting. */
function codeOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown';
}

/** Hooks and sink wrapped so that neither can throw into a socket event (which would end the process). */
export function guarded(onError: ErrorSink, hooks: TransportHooks) {
  return {
    report(err: unknown, where: string): void {
      try {
        onError(err, where);
      } catch {
        // A failing sink must not take the listener down with it.
      }
    },
    sendError(transport: TransportName, err: unknown, n = 1): void {
      try {
        hooks.sendError?.(transport, codeOf(err), n);
      } catch {
        // Counting is best effort.
      }
    },
    handlerError(transport: TransportName, n = 1): void {
      try {
        hooks.handlerError?.(transport, n);
      } catch {
        // Counting is best effort.
      }
    },
    tcpRefused(reason: TcpRefusal): void {
      try {
        hooks.tcpRefused?.(reason);
      } catch {
        // Counting is best effort.
      }
    },
  };
}

/** RFC 1035 §4.2.2: a TCP message's length is a 2-octet field. */
const MAX_TCP_MESSAGE = 0xffff;
const tooBig = (out: Uint8Array) => new RangeError(`TCP message of ${out.length} octets cannot be framed (at most ${MAX_TCP_MESSAGE})`);

export class TcpListener {
  readonly server: net.Server;
  /** Open connections, each with what shutdown calls on it (treat it as half-closed by us: answer what was received, then end). */
  private readonly connections = new Map<net.Socket, () => void>();
  private readonly handler: MessageHandler;
  private readonly limits: TcpLimits;
  private readonly g: ReturnType<typeof guarded>;
  /** Open connections per client address and /64 (entries only for addresses with one open). */
  readonly clients: ClientConnectionCounts;
  /** Octets received on every connection and octets copied reassembling them (linear: see tcp-reassembly.ts). */
  readonly reassembly: ReassemblyStats = { receivedBytes: 0, copiedBytes: 0 };

  constructor(handler: MessageHandler, limits: TcpLimits, onError: ErrorSink, hooks: TransportHooks = {}) {
    this.handler = handler;
    this.limits = limits;
    this.g = guarded(onError, hooks);
    this.clients = new ClientConnectionCounts(limits);
    // allowHalfOpen: a client may send its queries, half-close, and still read every answer.
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false, allowHalfOpen: true }, (socket) => {
      try {
        this.accept(socket);
      } catch (err) {
        this.g.report(err, 'tcp accept');
        socket.destroy();
      }
    });
    this.server.maxConnections = limits.maxConnections;
    // net.Server closes connections beyond maxConnections itself and tells us with 'drop'.
    this.server.on('drop', () => this.refused('total', undefined));
  }

  /**
   * Counts a refused connection and reports it to the sink, which rate-limits
   * by place and code: a client opening connections in a loop costs a counter
   * increment each, not a log line each.
   */
  private refused(reason: TcpRefusal, remote: string | undefined): void {
    this.g.tcpRefused(reason);
    const err = Object.assign(new Error(`TCP connection from ${remote ?? 'a client'} refused: ${reason} connection limit reached`), { code: `TCP_LIMIT_${reason.toUpperCase().replace('-', '_')}` });
    this.g.report(err, 'tcp accept');
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onErr = (err: Error) => reject(err);
      this.server.once('error', onErr);
      this.server.listen({ host, port, ipv6Only: net.isIPv6(host), backlog: 511 }, () => {
        this.server.off('error', onErr);
        // Errors while listening belong to start(); only those after it are transport errors.
        // Accept failures (EMFILE, ENFILE, ENOMEM) arrive here; the server keeps listening
        // (libuv sheds the pending connection) and accepts again once descriptors free up.
        this.server.on('error', (err) => this.g.report(err, 'tcp server'));
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Most bytes ever queued towards one client; stays near maxQueuedBytes whatever clients do. */
  peakQueuedBytes = 0;

  /**
   * Graceful stop: accepts no new connection, answers every query each
   * connection has already received (including ones held back by
   * backpressure), ends each connection once its answers are flushed, and
   * destroys whatever is left after `graceMs`. Idempotent.
   */
  close(graceMs = 2000): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const finish of this.connections.values()) finish();
      const timer = setTimeout(() => {
        for (const socket of this.connections.keys()) socket.destroy();
      }, graceMs);
      timer.unref();
    });
    return this.closing;
  }
  private closing: Promise<void> | undefined;

  private accept(socket: net.Socket): void {
    const remote = socket.remoteAddress ?? '';
    // Over a per-client cap: closed before anything is read or allocated for it.
    const admitted = this.clients.admit(remote);
    if (typeof admitted === 'string') {
      socket.destroy();
      this.refused(admitted, remote);
      return;
    }
    // Uncounted exactly once, whichever way the connection ends ('close' follows every destroy).
    socket.once('close', admitted);
    const view = new QueryView();
    const limits = this.limits;
    // Bytes received but not yet answered; linear in the bytes received whatever the segmentation.
    const input = new TcpReassembly(this.reassembly);
    let partialSince = 0;
    let paused = false;
    let queuedAnswers = 0; // written to the socket, not yet flushed to the kernel
    let clientEnded = false; // the client half-closed: answer what it sent, then close
    // A multi-message response in progress; later queries wait until it is written (their answers stay in order).
    let stream: ResponseStream | null = null;
    const gone = () => socket.destroyed || !socket.writable;
    /** After a half-close, end our side once every complete query has been answered and flushed. */
    let shuttingDown = false;
    let quietTimer: NodeJS.Timeout | undefined;
    const finishIfDone = () => {
      if (!(clientEnded || shuttingDown) || queuedAnswers > 0 || stream !== null || paused || gone()) return;
      if (input.hasMessage()) return;
      if (clientEnded) {
        socket.end();
        return;
      }
      // Shutting down: queries the client already sent may still sit in the kernel's buffer
      // (we stopped reading under backpressure). End only after a quiet moment with nothing more arriving.
      clearTimeout(quietTimer);
      quietTimer = setTimeout(() => {
        if (!gone() && queuedAnswers === 0 && stream === null && !paused) socket.end();
      }, SHUTDOWN_QUIET_MS);
      quietTimer.unref();
    };
    /**
     * Ends the connection at once, after what was already written: answers
     * held back by a cork (drainCorked) go out first, as they would uncorked;
     * destroy() alone would drop them.
     */
    const cut = () => {
      while (socket.writableCorked > 0) socket.uncork();
      socket.destroy();
    };
    const send = (out: Buffer) => {
      if (out.length > MAX_TCP_MESSAGE) {
        // Callers check first (tooBig); a message that cannot be framed must never be cut into a wrong one.
        this.g.report(tooBig(out), 'tcp send');
        cut();
        return;
      }
      const framed = Buffer.allocUnsafe(2 + out.length);
      framed.writeUInt16BE(out.length, 0);
      out.copy(framed, 2);
      queuedAnswers++;
      try {
        socket.write(framed, flushed);
      } catch (err) {
        queuedAnswers--;
        this.g.sendError('tcp', err);
        this.g.report(err, 'tcp send');
        socket.destroy();
        return;
      }
      if (socket.writableLength > this.peakQueuedBytes) this.peakQueuedBytes = socket.writableLength;
    };
    /** Writes the stream's messages while the client keeps up; flushed() calls again as the queue drains. */
    const pump = () => {
      while (stream) {
        if (gone()) {
          const s = stream;
          stream = null;
          try {
            s.cancel();
          } catch (err) {
            this.g.report(err, 'tcp response stream');
          }
          return;
        }
        if (congested()) return;
        let out: Buffer | undefined;
        try {
          out = stream.next();
        } catch (err) {
          this.g.report(err, 'tcp response stream');
          stream = null;
          cut();
          return;
        }
        if (out && out.length > MAX_TCP_MESSAGE) {
          // Like a throwing next(): a transfer cut short must not look complete.
          this.g.report(tooBig(out), 'tcp response stream');
          stream = null;
          cut();
          return;
        }
        if (out) send(out);
        else stream = null;
      }
      // Done: queries that arrived meanwhile get their turn (if the queue allows; else flushed() resumes).
      if (paused && !congested()) {
        paused = false;
        socket.resume();
      }
      drainInput();
      finishIfDone();
    };
    /** Runs a socket callback so that a bug in it costs this connection only, never the process. */
    const guard =
      <A extends unknown[]>(where: string, fn: (...args: A) => void) =>
      (...args: A): void => {
        try {
          fn(...args);
        } catch (err) {
          this.g.report(err, where);
          socket.destroy();
        }
      };
    const flushed = guard('tcp connection', (err?: Error | null) => {
      queuedAnswers--;
      // The first write to fail carries the real cause (EPIPE, ECONNRESET); the socket is then
      // destroyed and the writes queued behind it fail as ERR_STREAM_DESTROYED: not counted again.
      if (err && codeOf(err) !== 'ERR_STREAM_DESTROYED') this.g.sendError('tcp', err);
      // A reset connection fails its queued writes: nothing more to do for it.
      if (gone()) return;
      if (stream) {
        pump();
        return;
      }
      if (paused && !congested()) {
        paused = false;
        socket.resume();
        drainCorked();
      }
      finishIfDone();
    });

    socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(quietTimer);
      this.connections.delete(socket);
      input.clear();
      if (stream) {
        const s = stream;
        stream = null;
        try {
          s.cancel();
        } catch (err) {
          this.g.report(err, 'tcp response stream');
        }
      }
    });
    socket.on(
      'end',
      guard('tcp connection', () => {
        clientEnded = true;
        finishIfDone();
      }),
    );
    // Shutdown: the same path as a client half-close; queries already received still get answered.
    const finish = () => {
      shuttingDown = true;
      finishIfDone();
    };
    this.connections.set(socket, finish);
    if (this.closing) finish();

    // Counting answers as well as bytes: many tiny answers would otherwise pile up under the byte cap.
    const congested = () => socket.writableLength > limits.maxQueuedBytes || queuedAnswers >= limits.maxPendingAnswers;

    const drainInput = () => {
      let consumed = false;
      while (input.length >= 2) {
        if (gone()) {
          input.clear();
          return;
        }
        if (congested() || stream) {
          // RFC 7766 §6.2.2 lets us stop reading; the client must read to make progress.
          if (!paused) {
            paused = true;
            socket.pause();
          }
          return;
        }
        const msg = input.take();
        if (msg === undefined) break;
        const size = msg.length;
        consumed = true;
        let out: Buffer | ResponseStream | null = null;
        try {
          out = this.handler(msg, size, 'tcp', view, remote);
        } catch (err) {
          // This message alone fails: SERVFAIL now, not a silent wait for the idle timeout;
          // the queries pipelined behind it are answered as usual.
          this.g.handlerError('tcp');
          this.g.report(err, 'tcp handler');
          out = servfailFor(msg, size);
        }
        if (out instanceof Uint8Array && out.length > MAX_TCP_MESSAGE) {
          // An answer no 2-octet length can frame (RFC 1035 §4.2.2): a failure like a throw.
          this.g.handlerError('tcp');
          this.g.report(tooBig(out), 'tcp handler');
          out = servfailFor(msg, size);
        }
        if (out instanceof Uint8Array) send(out);
        else if (out) {
          stream = out;
          pump();
          // pump() ran drainInput() itself if the stream is already done.
          return;
        }
      }
      // The clock runs per message: it restarts whenever a message completes.
      partialSince = input.length > 0 ? (consumed || !partialSince ? monotonicMs() : partialSince) : 0;
    };

    /**
     * Answers what has arrived with the socket corked: the answers to one read's
     * pipelined queries leave in one writev (one system call, fewer segments)
     * instead of one write each, which is most of what a TCP answer costs.
     */
    const drainCorked = () => {
      socket.cork();
      try {
        drainInput();
      } finally {
        socket.uncork();
      }
    };

    socket.on(
      'data',
      guard('tcp connection', (chunk: Buffer) => {
        clearTimeout(quietTimer);
        input.append(chunk);
        // A message dribbled in slower than the idle timeout is as bad as silence.
        if (partialSince && monotonicMs() - partialSince > limits.idleTimeoutMs) {
          socket.destroy();
          return;
        }
        drainCorked();
      }),
    );
  }
}
