/**
 * UDP listeners (RFC 1035 §4.2.1). Two paths answer the same datagrams with
 * the same bytes, through the same DatagramHandler:
 * - batched (udp-batch.ts): a native addon reads and sends a batch of
 *   datagrams per system call (recvmmsg/sendmmsg) — the default on Linux
 *   when the addon was built by `npm ci`;
 * - node:dgram (here): one 'message' event and one send per datagram — the
 *   fallback where the addon is not built or cannot load, and the path
 *   `udpIo: dgram` (RRDNS_UDP_IO=dgram) forces.
 * Which one serves is decided once per process (udpPath) and logged at start.
 *
 * A fault costs one datagram, never the listener: a reply to source port 0
 * is not attempted (spoofed, or a broken client; dgram's send would throw),
 * a send the kernel refuses and a handler that throws are counted through
 * TransportHooks and reported to the ErrorSink.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { QueryView } from './query.ts';
import { Peer } from '../zone/address.ts';
import { guarded, type ErrorSink, type TransportHooks } from './transport.ts';
import { batchBinding, BatchUdpListener } from './udp-batch.ts';
import { BAD_PORT, SOCKET_BUFFER_BYTES, UDP_ANSWER_ROOM, type DatagramHandler, type UdpIo, type UdpListener, type UdpOptions } from './datagram.ts';

export { UDP_ANSWER_ROOM, type DatagramHandler, type UdpIo, type UdpListener, type UdpOptions } from './datagram.ts';

/**
 * The path this process uses for `io`, and why (for the start-up log line).
 * `auto` follows RRDNS_UDP_IO when it is set, so one environment variable
 * switches every server of a test run (CI runs the suite on both paths).
 * Throws when `native` is asked for and the addon does not load.
 */
export function udpPath(io: UdpIo = 'auto'): { path: 'native' | 'dgram'; why: string } {
  const env = process.env.RRDNS_UDP_IO;
  const asked: UdpIo = io === 'auto' && (env === 'native' || env === 'dgram') ? env : io;
  const binding = batchBinding();
  if (asked === 'dgram') return { path: 'dgram', why: io === 'dgram' ? 'udpIo: dgram' : 'RRDNS_UDP_IO=dgram' };
  if ('error' in binding) {
    if (asked === 'native') throw new Error(`the batched UDP path was asked for but is not available: ${binding.error}`);
    return { path: 'dgram', why: binding.error };
  }
  return { path: 'native', why: 'recvmmsg/sendmmsg batches (native/udp_batch.c)' };
}

/** Binds one UDP socket on the process's path; resolves once it listens. */
export async function bindUdp(host: string, port: number, handler: DatagramHandler, onError: ErrorSink, opts: UdpOptions = {}): Promise<UdpListener> {
  const { path } = udpPath(opts.io);
  if (path === 'native') {
    const binding = batchBinding();
    // A host the native side cannot parse (an IPv6 zone index, say) still gets served, by dgram.
    if (!('error' in binding) && net.isIP(host) !== 0 && !host.includes('%')) return new BatchUdpListener(binding, host, port, handler, onError, opts);
  }
  return bindDgram(host, port, handler, onError, opts);
}

function bindDgram(host: string, port: number, handler: DatagramHandler, onError: ErrorSink, opts: UdpOptions): Promise<UdpListener> {
  const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: net.isIPv6(host), reusePort: opts.reusePort ?? false });
  return new Promise((resolve, reject) => {
    const onBindError = (err: Error) => reject(err);
    socket.once('error', onBindError);
    socket.bind(port, host, () => {
      socket.off('error', onBindError);
      try {
        socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
        socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
      } catch {
        // The kernel may cap buffer sizes; defaults still work.
      }
      serveUdp(socket, handler, onError, opts.hooks);
      let closed: Promise<void> | undefined;
      resolve({
        path: 'dgram',
        port: socket.address().port,
        close: () => (closed ??= new Promise((done) => socket.close(() => done()))),
      });
    });
  });
}

/** The send side of a UDP socket, as serveUdp uses it (a stub in unit tests). */
export type UdpSocketLike = Pick<dgram.Socket, 'on' | 'send'>;

/**
 * Answers every datagram `socket` receives with `handler` (the dgram path).
 * The answer is written into scratch memory and copied into a Buffer of its
 * own, which dgram keeps until the send completes. Exported for the unit
 * test of the send guard; bindUdp is the way in.
 */
export function serveUdp(socket: UdpSocketLike, handler: DatagramHandler, onError: ErrorSink, hooks: TransportHooks = {}): void {
  const view = new QueryView();
  const peer = new Peer();
  const scratch = Buffer.allocUnsafe(UDP_ANSWER_ROOM);
  const g = guarded(onError, hooks);
  // A failed send (the kernel refused it, the client's port is gone) concerns only that client.
  const sendDone = (err: Error | null) => {
    if (err) {
      g.sendError('udp', err);
      g.report(err, 'udp send');
    }
  };
  socket.on('error', (err) => g.report(err, 'udp socket'));
  socket.on('message', (msg, rinfo) => {
    // A reply to port 0 cannot be sent (dgram throws): not worth handling. Spoofed, or a broken client.
    if (rinfo.port === 0) {
      g.sendError('udp', BAD_PORT);
      g.report(BAD_PORT, 'udp send');
      return;
    }
    let length: number;
    try {
      peer.setText(rinfo.address, rinfo.port);
      length = handler(msg, msg.length, view, peer, scratch, 0);
    } catch (err) {
      g.handlerError('udp');
      g.report(err, 'udp handler');
      return;
    }
    if (length <= 0) return;
    const out = Buffer.allocUnsafe(length);
    scratch.copy(out, 0, 0, length);
    try {
      socket.send(out, rinfo.port, rinfo.address, sendDone);
    } catch (err) {
      // Thrown synchronously: bad port, a closed socket, an invalid address.
      sendDone(err as Error);
    }
  });
}
