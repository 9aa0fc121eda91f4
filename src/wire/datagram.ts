/**
 * What both UDP paths (udp.ts: node:dgram; udp-batch.ts: batched, native)
 * share: the handler they call per datagram, the listener they return, and
 * the limits they answer within.
 */
import type { QueryView } from './query.ts';
import { EDNS_UDP_SIZE } from './message.ts';
import type { Peer } from '../zone/address.ts';
import type { TransportHooks } from './transport.ts';

/**
 * Answers one datagram `msg[0..length)` from `peer` into `out` at `at`
 * (room for UDP_ANSWER_ROOM octets); returns the answer's length, 0 for
 * none. QueryPipeline.answerDatagram is the one the server uses.
 */
export type DatagramHandler = (msg: Buffer, length: number, view: QueryView, peer: Peer, out: Buffer, at: number) => number;

/** Room for one answer: no UDP answer is larger than EDNS_UDP_SIZE (response.ts udpLimit). */
export const UDP_ANSWER_ROOM = EDNS_UDP_SIZE;

/** Which path answers UDP: `auto` (batched when the addon loads, else dgram), or one forced. */
export type UdpIo = 'auto' | 'native' | 'dgram';

export interface UdpListener {
  readonly path: 'native' | 'dgram';
  /** The bound port (the ephemeral one when 0 was asked for). */
  readonly port: number;
  /** Idempotent; resolves once the socket is closed. */
  close(): Promise<void>;
}

export interface UdpOptions {
  /** Several sockets (one per thread) on the same address and port; the kernel spreads senders over them (SO_REUSEPORT). */
  reusePort?: boolean;
  hooks?: TransportHooks;
  io?: UdpIo;
}

/** Socket buffer sizes asked for; the kernel may cap them (net.core.rmem_max), the defaults still work. */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** What dgram's send throws for port 0 (Node validates before the system call). */
export const BAD_PORT = Object.assign(new Error('UDP reply to source port 0 dropped'), { code: 'ERR_SOCKET_BAD_PORT' });
// Shared by every such drop: a stack would only point at this line.
BAD_PORT.stack = `Error: ${BAD_PORT.message}`;

